// The server's backends as the protocol shows them (protocol 2): the hello
// lists them, describeBackend describes one with its spaces as data, a
// session names its backend, a backend's session answers setParameter, and
// benchmark URIs are resolved by the server — so the C++ client reaches the
// bundled programs and make_benchmark()'s cache as Python does. A backend
// whose compiler is missing (gcc) leaves the others served.
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>

#include "ipc/action_table_hash.h"
#include "passes/backend.h"
#include "tests/forkserver/runtime_fixture.h"

namespace forkgym::testing {
namespace {

// One ReplayCommand (base/replay_command.h): what a backend declares is the
// type the client writes its command line from, not a copy to keep in step.
static_assert(std::is_same_v<decltype(passes::ActionSpace::replay), decltype(Description::replay)>);

class Backends : public RuntimeTest {};

TEST_F(Backends, HelloListsEachBackendWithItsVersionAndFacts) {
  const ServerInfo server = connection_->server();
  // LLVM is the first row of the server's table (the test build has more).
  ASSERT_FALSE(server.backends.empty());
  EXPECT_EQ(server.backends[0].name, "llvm");
  const BackendInfo* llvm = server.backend("llvm");
  ASSERT_NE(llvm, nullptr);
  EXPECT_TRUE(llvm->version.starts_with("19.")) << llvm->version;
  EXPECT_EQ(llvm->actionTableHash, kActionTableHash);
  EXPECT_EQ(llvm->property("optPath"), llvmTool("opt"));
  EXPECT_FALSE(llvm->property("hostTriple").empty());
  EXPECT_FALSE(llvm->property("hostCpu").empty());
  // gcc-v0 is the second row (tests/passes/gcc/served_test.cc serves it).
  ASSERT_GE(server.backends.size(), 2u);
  EXPECT_EQ(server.backends[1].name, "gcc");
}

TEST_F(Backends, AnUnknownBackendIsAClearErrorListingTheServersBackends) {
  auto session = connection_->newSession(fileUri("crc32.c"), {}, std::chrono::seconds(60), "no-such-compiler");
  ASSERT_FALSE(session);
  EXPECT_EQ(session.error().outcome, Outcome::InvalidRequest);
  EXPECT_NE(session.error().message.find("unknown backend 'no-such-compiler'; this server has llvm"),
            std::string::npos)
      << session.error().message;

  auto unnamed = connection_->newSession(fileUri("crc32.c"), {}, std::chrono::seconds(60), "");
  ASSERT_FALSE(unnamed);
  EXPECT_NE(unnamed.error().message.find("no backend named; this server has llvm"), std::string::npos)
      << unnamed.error().message;

  auto description = connection_->describe("no-such-compiler");
  ASSERT_FALSE(description);
  EXPECT_EQ(description.error().outcome, Outcome::InvalidRequest);
  EXPECT_NE(description.error().message.find("this server has llvm"), std::string::npos);

  // The connection carries on.
  Env env = newEnv();
  EXPECT_TRUE(env.reset(fileUri("crc32.c")));
}

TEST_F(Backends, TheDescriptionCarriesEachSpaceAsData) {
  const Description& d = *description_;
  EXPECT_EQ(d.backend, "llvm");
  EXPECT_EQ(d.version, connection_->server().backend("llvm")->version);
  EXPECT_FALSE(d.actionSpace.empty());
  EXPECT_FALSE(d.description.empty());
  EXPECT_EQ(d.replay.program, llvmTool("opt"));

  const SpaceDescription* instCount = d.findObservation("InstCount");
  ASSERT_NE(instCount, nullptr);
  EXPECT_EQ(instCount->valueType, ValueType::Int64List);
  EXPECT_EQ(instCount->shape, std::vector<int64_t>{70});
  ASSERT_EQ(instCount->featureNames.size(), 70u);
  EXPECT_EQ(instCount->featureNames[0], "TotalInsts");
  EXPECT_EQ(instCount->low, 0);
  EXPECT_TRUE(std::isinf(instCount->high) && instCount->high > 0);
  const SpaceDescription* autophase = d.findObservation("Autophase");
  ASSERT_NE(autophase, nullptr);
  EXPECT_EQ(autophase->featureNames.size(), 56u);
  const SpaceDescription* size = d.findObservation("ObjectTextSizeBytes");
  ASSERT_NE(size, nullptr);
  EXPECT_TRUE(size->platformDependent);
  EXPECT_FALSE(size->description.empty());
  ASSERT_EQ(d.rewards.size(), 9u);  // CompilerGym's eight, and Runtime
  for (const auto& reward : d.rewards) EXPECT_EQ(reward.valueType, ValueType::Float64) << reward.name;
  // Which spaces need a runnable benchmark travels with the description.
  const SpaceDescription* runtime = d.findObservation("Runtime");
  ASSERT_NE(runtime, nullptr);
  EXPECT_TRUE(runtime->needsRunConfig);
  EXPECT_FALSE(size->needsRunConfig);
  ASSERT_NE(d.findReward("Runtime"), nullptr);
  EXPECT_TRUE(d.findReward("Runtime")->needsRunConfig);
}

TEST_F(Backends, SetParameterIsAnsweredByTheBackendsSession) {
  Env env = newEnv();
  ASSERT_TRUE(env.reset(fileUri("crc32.c")));
  auto set = env.setParameter("choices", "1,2,3");
  ASSERT_FALSE(set);
  EXPECT_EQ(set.error().outcome, Outcome::InvalidRequest);
  EXPECT_NE(set.error().message.find("the llvm backend has no parameter 'choices'; it accepts "
                                     "runtime_observation_count, runtime_warmup_runs_count"),
            std::string::npos)
      << set.error().message;
  // A refused setting ends nothing.
  EXPECT_TRUE(env.alive());
  EXPECT_TRUE(env.observe(std::vector<std::string>{"IrInstructionCount"}).ok());
}

TEST_F(Backends, TheServerResolvesBundledBenchmarks) {
  Env bundled = newEnv();
  ASSERT_TRUE(bundled.reset("benchmark://forkgym-v0/crc32"));
  // The session keeps the name it was asked for: reproducers stay portable.
  EXPECT_EQ(bundled.benchmark(), "benchmark://forkgym-v0/crc32");
  EXPECT_EQ(bundled.reproducer().benchmark, "benchmark://forkgym-v0/crc32");
  // The bundled copy of tests/data/crc32.c: the same program.
  Env file = newEnv();
  ASSERT_TRUE(file.reset(fileUri("crc32.c")));
  const std::vector<std::string> count = {"IrInstructionCount"};
  EXPECT_EQ(asInt(bundled.observe(count).observations.at(0)), asInt(file.observe(count).observations.at(0)));

  auto missing = newEnv().reset("benchmark://forkgym-v0/no-such-program");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().outcome, Outcome::BenchmarkError);
  EXPECT_NE(missing.error().message.find("benchmark://forkgym-v0/crc32"), std::string::npos)
      << missing.error().message;
}

// make_benchmark() keeps what it made in $FORKGYM_CACHE_DIR/benchmarks (and
// the like): a server started with the same environment finds it there.
TEST(BackendsUserCache, TheServerResolvesMakeBenchmarksCache) {
  TestDir cache;
  std::filesystem::create_directories(cache.path + "/benchmarks");
  auto connection = [&] {
    const ScopedVariable set("FORKGYM_CACHE_DIR", cache.path);
    return Connection::spawn(testServer());
  }();
  ASSERT_TRUE(connection) << connection.error().message;

  Env original(*connection);
  ASSERT_TRUE(original.reset(fileUri("crc32.c")));
  auto state = original.observe(std::vector<std::string>{"Bitcode", "IrSha1"});
  ASSERT_TRUE(state.ok()) << state.message;
  const auto& bitcode = std::get<std::vector<uint8_t>>(state.observations[0]);
  std::ofstream(cache.path + "/benchmarks/feedc0de.bc", std::ios::binary)
      .write(reinterpret_cast<const char*>(bitcode.data()), static_cast<std::streamsize>(bitcode.size()));

  Env made(*connection);
  ASSERT_TRUE(made.reset("benchmark://user-v0/feedc0de"));
  EXPECT_EQ(made.benchmark(), "benchmark://user-v0/feedc0de");
  auto again = made.observe(std::vector<std::string>{"IrSha1"});
  ASSERT_TRUE(again.ok()) << again.message;
  EXPECT_EQ(asText(again.observations[0]), asText(state.observations[1]));

  auto unknown = Env(*connection).reset("benchmark://user-v0/0000");
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().message.find("not in this user's benchmark cache (" + cache.path + "/benchmarks)"),
            std::string::npos)
      << unknown.error().message;
}

// A server spawned with `variable` set to `value` (restored afterwards),
// its standard error (inherited from ours) written to `log`.
Result<std::shared_ptr<Connection>> spawnWith(const char* variable, const std::string& value, const std::string& log) {
  const ScopedVariable set(variable, value);
  fflush(stderr);
  const int ourStderr = dup(STDERR_FILENO);
  const int logFd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  dup2(logFd, STDERR_FILENO);
  close(logFd);
  auto connection = Connection::spawn(testServer());
  dup2(ourStderr, STDERR_FILENO);
  close(ourStderr);
  return connection;
}

// Without gcc (not installed, or FORKGYM_GCC naming nothing) the server
// starts and serves LLVM; it logs why gcc is unavailable, its hello lists
// only the backends it serves, and a gcc description or session is a
// backend_unavailable error saying what is missing and how to get it.
void servesLlvmWithoutGcc(const char* variable, const std::string& value, const std::string& missing) {
  TestDir dir;
  const std::string log = dir.path + "/server.log";
  auto connection = spawnWith(variable, value, log);
  ASSERT_TRUE(connection) << "the server must start without gcc: " << connection.error().message;

  // Written before the server answered the hello that spawn waited for.
  std::ifstream in(log);
  const std::string logged((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(logged.find("the gcc backend is unavailable"), std::string::npos) << logged;
  EXPECT_NE(logged.find(missing), std::string::npos) << logged;

  const ServerInfo server = (*connection)->server();
  EXPECT_NE(server.backend("llvm"), nullptr);
  EXPECT_EQ(server.backend("gcc"), nullptr) << "the hello lists only the backends the server serves";

  auto description = (*connection)->describe("gcc");
  ASSERT_FALSE(description);
  EXPECT_EQ(description.error().outcome, Outcome::BackendUnavailable) << description.error().message;
  for (const std::string& words : {std::string("the gcc backend is unavailable"), missing,
                                   std::string("apt-get install gcc"), std::string("FORKGYM_GCC")}) {
    EXPECT_NE(description.error().message.find(words), std::string::npos) << words << "\n"
                                                                           << description.error().message;
  }
  auto session = (*connection)->newSession(fileUri("small.c"), {}, std::chrono::seconds(60), "gcc");
  ASSERT_FALSE(session);
  EXPECT_EQ(session.error().outcome, Outcome::BackendUnavailable) << session.error().message;
  EXPECT_EQ(session.error().message, description.error().message);

  Env llvm(*connection);
  ASSERT_TRUE(llvm.reset(fileUri("crc32.c")));
  const int mem2reg = (*(*connection)->describe())->findAction("-mem2reg");
  ASSERT_GE(mem2reg, 0);
  auto stepped = llvm.step(std::vector<uint32_t>{static_cast<uint32_t>(mem2reg)},
                           std::vector<std::string>{"IrInstructionCount"});
  EXPECT_TRUE(stepped.ok()) << stepped.message;
}

TEST(BackendsWithoutGcc, ANonexistentForkgymGccLeavesLlvmServed) {
  servesLlvmWithoutGcc("FORKGYM_GCC", "/nonexistent/gcc", "'/nonexistent/gcc'");
}

TEST(BackendsWithoutGcc, NoGccOnPathLeavesLlvmServed) {
  TestDir empty;  // a PATH with no gcc (the server runs LLVM's tools by absolute path)
  const ScopedVariable unset("FORKGYM_GCC", std::nullopt);
  servesLlvmWithoutGcc("PATH", empty.path, "no 'gcc' on PATH");
}

}  // namespace
}  // namespace forkgym::testing
