// gcc-v0 served: sessions of the gcc backend through the real server, its
// external-compiler sandbox and the C++ client (what Python's GccEnv rides
// on). An object observation is the file its command line writes when run
// by hand; choices round-trip; a reproducer names the state's own command
// line, also after the worker is gone; bad choices and combinations gcc
// rejects are clear errors and the episode goes on. (The external-compiler
// sandbox's fault rows, with a hostile "gcc", are rows of the fault matrix:
// tests/reliability/fault_matrix_test.cc.)
#include <filesystem>
#include <fstream>

#include "tests/forkserver/runtime_fixture.h"

namespace forkgym::testing {
namespace {

class GccServed : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ServerOptions options; options.logLevel = getenv("FG_LOG") ? getenv("FG_LOG") : "warn";
    auto connection = Connection::spawn(testServer(options));
    ASSERT_TRUE(connection) << connection.error().message;
    connection_ = *connection;
    auto description = connection_->describe("gcc");
    ASSERT_TRUE(description) << description.error().message;
    description_ = *description;
  }
  static void TearDownTestSuite() {
    description_.reset();
    connection_.reset();
  }

  Env reset(const std::string& file = "small.c") {
    Env env(connection_, EnvOptions{.backend = "gcc"});
    auto started = env.reset(fileUri(file));
    EXPECT_TRUE(started) << started.error().message;
    return env;
  }
  uint32_t action(const std::string& name) {
    const int index = description_->findAction(name);
    EXPECT_GE(index, 0) << name;
    return static_cast<uint32_t>(index);
  }
  // An action that moves an integer option by +1 (it has no argument of
  // its own: the state decides what it means).
  uint32_t stepAction() {
    for (uint32_t i = 0; i < description_->actions.size(); ++i) {
      if (description_->actions[i].flag.starts_with("--param=max-unroll-times") &&
          description_->actions[i].flag.ends_with("[+1]")) {
        return i;
      }
    }
    ADD_FAILURE() << "no +1 step for --param=max-unroll-times";
    return 0;
  }
  template <typename T>
  static T observed(Env& env, const std::string& name) {
    auto result = env.observe(std::vector<std::string>{name});
    EXPECT_TRUE(result.ok()) << name << ": " << result.message;
    if (!result.ok()) return T{};
    return std::get<T>(result.observations.at(0));
  }

  static inline std::shared_ptr<Connection> connection_;
  static inline std::shared_ptr<const Description> description_;
};

// Runs `commandLine` by hand in a fresh directory holding `source` as
// src.c; returns obj.o's bytes ("" if gcc wrote none).
std::string compileByHand(const std::string& commandLine, const std::string& source) {
  char pattern[] = "/tmp/fgtest-gcc-XXXXXX";
  const std::string directory = mkdtemp(pattern);
  std::ofstream(directory + "/src.c", std::ios::binary) << source;
  run("cd " + directory + " && " + commandLine + " 2>&1");
  std::ifstream in(directory + "/obj.o", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::filesystem::remove_all(directory);
  return bytes;
}

TEST_F(GccServed, TheServerDescribesGccWithItsSpaces) {
  const ServerInfo server = connection_->server();
  const BackendInfo* gcc = server.backend("gcc");
  ASSERT_NE(gcc, nullptr);
  EXPECT_NE(gcc->version.find("gcc"), std::string::npos) << gcc->version;
  EXPECT_EQ(gcc->property("gccBinary"), description_->replay.program);
  EXPECT_TRUE(description_->replay.program.starts_with("/")) << "replays name gcc by absolute path";
  EXPECT_TRUE(description_->replay.fromState);
  for (const char* name : {"source", "rtl", "asm", "asm_size", "asm_hash", "instruction_counts", "obj", "obj_size",
                           "obj_hash", "obj_text_size", "choices", "command_line"}) {
    EXPECT_NE(description_->findObservation(name), nullptr) << name;
  }
  EXPECT_NE(description_->findReward("obj_size"), nullptr);
  EXPECT_NE(description_->findReward("asm_size"), nullptr);
}

TEST_F(GccServed, ObjSizeIsTheSizeOfTheObjectTheCommandLineWritesByHand) {
  Env env = reset();
  const std::string source = observed<std::string>(env, "source");
  for (const std::vector<uint32_t>& steps :
       {std::vector<uint32_t>{}, {action("-O2")}, {stepAction(), stepAction()}, {action("-fno-inline")}}) {
    auto stepped = env.step(steps, std::vector<std::string>{"obj_size", "obj", "command_line"});
    ASSERT_TRUE(stepped.ok()) << stepped.message;
    const int64_t size = std::get<int64_t>(stepped.observations[0]);
    const auto& object = std::get<std::vector<uint8_t>>(stepped.observations[1]);
    const std::string commandLine = std::get<std::string>(stepped.observations[2]);
    const std::string byHand = compileByHand(commandLine, source);
    EXPECT_GT(size, 0);
    EXPECT_EQ(static_cast<int64_t>(byHand.size()), size) << commandLine;
    EXPECT_EQ(byHand, std::string(object.begin(), object.end())) << commandLine;
  }
}

TEST_F(GccServed, ChoicesRoundTripThroughTheParameter) {
  Env env = reset();
  auto stepped = env.step(std::vector<uint32_t>{action("-O3"), stepAction()});
  ASSERT_TRUE(stepped.ok()) << stepped.message;
  const std::vector<int64_t> choices = observed<std::vector<int64_t>>(env, "choices");
  std::string text;
  for (size_t i = 0; i < choices.size(); ++i) text += (i ? "," : "") + std::to_string(choices[i]);

  Env other = reset();
  auto set = other.setParameter("choices", text);
  ASSERT_TRUE(set) << set.error().message;
  EXPECT_EQ(*set, text);
  EXPECT_EQ(observed<std::vector<int64_t>>(other, "choices"), choices);
  EXPECT_EQ(observed<std::string>(other, "command_line"), observed<std::string>(env, "command_line"));
  EXPECT_EQ(observed<std::string>(other, "obj_hash"), observed<std::string>(env, "obj_hash"));
}

// A ±N step has no argument of its own and the choices parameter no action
// at all: the reproducer names the state's command line, even when the
// worker is gone.
TEST_F(GccServed, AReproducerNamesTheStatesCommandLineAfterStepsAndChoices) {
  Env env = reset();
  EXPECT_EQ(env.reproducer().commandline, observed<std::string>(env, "command_line")) << "the reset state";
  ASSERT_TRUE(env.step(std::vector<uint32_t>{action("-Os"), stepAction(), stepAction()}).ok());
  const std::string stepped = observed<std::string>(env, "command_line");
  EXPECT_NE(stepped.find("--param=max-unroll-times="), std::string::npos) << stepped;
  EXPECT_EQ(env.reproducer().commandline, stepped);

  std::vector<int64_t> choices = observed<std::vector<int64_t>>(env, "choices");
  choices[0] = -1;  // the -O level leaves the line
  std::string text;
  for (size_t i = 0; i < choices.size(); ++i) text += (i ? "," : "") + std::to_string(choices[i]);
  ASSERT_TRUE(env.setParameter("choices", text));
  const std::string set = observed<std::string>(env, "command_line");
  EXPECT_EQ(set.find("-Os"), std::string::npos) << set;
  EXPECT_EQ(env.reproducer().commandline, set);

  // The worker dies: the reproducer still names the last state it reported.
  ASSERT_EQ(kill(env.workerPid(), SIGKILL), 0);
  auto ended = env.step(std::vector<uint32_t>{action("-O1")});
  ASSERT_FALSE(ended.ok());
  EXPECT_EQ(ended.reproducer.commandline, set);
  EXPECT_EQ(env.reproducer().commandline, set);
}

TEST_F(GccServed, ARejectedCombinationOrBadChoicesAreClearErrorsAndTheEpisodeGoesOn) {
  Env env = reset();
  ASSERT_TRUE(env.step(std::vector<uint32_t>{action("-fsection-anchors")}).ok());
  auto rejected = env.step(std::vector<uint32_t>{action("-fno-toplevel-reorder")});
  ASSERT_FALSE(rejected.ok());
  EXPECT_EQ(rejected.outcome, Outcome::InvalidRequest);
  EXPECT_NE(rejected.message.find("section anchors must be disabled"), std::string::npos) << rejected.message;

  auto outOfRange = env.setParameter("choices", "7");
  ASSERT_FALSE(outOfRange);
  EXPECT_EQ(outOfRange.error().outcome, Outcome::InvalidRequest);
  EXPECT_NE(outOfRange.error().message.find("give one value per option"), std::string::npos)
      << outOfRange.error().message;

  auto unknown = env.setParameter("no_such_key", "1");
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().message.find("choices"), std::string::npos) << unknown.error().message;

  EXPECT_EQ(observed<std::string>(env, "command_line").find("-fno-toplevel-reorder"), std::string::npos);
  EXPECT_GT(observed<int64_t>(env, "obj_size"), 0) << "the episode goes on";
}

TEST_F(GccServed, AForkCompilesOnItsOwnAndKeepsItsReproducer) {
  Env env = reset();
  ASSERT_TRUE(env.step(std::vector<uint32_t>{action("-O2")}).ok());
  auto copy = env.fork();
  ASSERT_TRUE(copy) << copy.error().message;
  ASSERT_TRUE(copy->step(std::vector<uint32_t>{stepAction()}).ok());
  EXPECT_EQ(observed<std::string>(env, "command_line").find("max-unroll-times"), std::string::npos);
  const std::string copied = observed<std::string>(*copy, "command_line");
  EXPECT_NE(copied.find("max-unroll-times"), std::string::npos);
  EXPECT_EQ(copy->reproducer().commandline, copied);
  EXPECT_GT(observed<int64_t>(*copy, "obj_size"), 0);
  EXPECT_GT(observed<int64_t>(env, "obj_size"), 0);
}

// gcc-v0 reaches the installed datasets of C sources (gcc-c-torture-v0's
// kind) by URI, compiling them with its own options; a dataset of bitcode,
// or of another language, is refused saying which backend takes it.
TEST(GccDatasets, ACSourceDatasetResetsAndOthersAreRefusedSayingWhy) {
  TestSite site;
  site.install("fgtest-c-v0", "kind = source\nroot = contents\nsuffix = .c\nlanguage = c\nflags = -ferror-limit=1 -w\n",
               {{"contents/execute/small.c", readFile(dataPath("small.c"))}});
  site.install("fgtest-bc-v0", "kind = prebuilt\nroot = contents\nsuffix = .bc\n", {{"contents/x.bc", "BC"}});
  site.install("fgtest-cxx-v0", "kind = source\nroot = contents\nsuffix = .cc\nlanguage = c++\n",
               {{"contents/x.cc", "int f() { return 1; }\n"}});
  auto connection = Connection::spawn(testServer());
  ASSERT_TRUE(connection) << connection.error().message;
  Env env(*connection, EnvOptions{.backend = "gcc"});
  auto reset = env.reset("benchmark://fgtest-c-v0/execute/small");
  ASSERT_TRUE(reset) << reset.error().message;
  EXPECT_EQ(env.benchmark(), "benchmark://fgtest-c-v0/execute/small");
  auto size = env.observe(std::vector<std::string>{"obj_size"});
  ASSERT_TRUE(size.ok()) << size.message;
  EXPECT_GT(std::get<int64_t>(size.observations[0]), 0);
  for (const auto& [uri, holds] : {std::pair<std::string, std::string>{"benchmark://fgtest-bc-v0/x", "LLVM bitcode"},
                                   {"benchmark://fgtest-cxx-v0/x", "c++ sources"}}) {
    SCOPED_TRACE(uri);
    Env refused(*connection, EnvOptions{.backend = "gcc"});
    auto status = refused.reset(uri);
    ASSERT_FALSE(status);
    EXPECT_EQ(status.error().outcome, Outcome::InvalidRequest);
    EXPECT_NE(status.error().message.find(holds), std::string::npos) << status.error().message;
    EXPECT_NE(status.error().message.find("llvm-v0"), std::string::npos) << status.error().message;
  }
}

}  // namespace
}  // namespace forkgym::testing
