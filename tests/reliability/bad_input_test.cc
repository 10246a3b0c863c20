// Bad inputs through the public C++ API (invariant 4): each gives a clear
// error naming the problem; nothing crashes, and the zygote, a running
// episode and the env itself carry on.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "tests/forkserver/runtime_fixture.h"

namespace forkgym::testing {
namespace {

namespace fs = std::filesystem;

class BadInputs : public RuntimeTest {
 protected:
  void SetUp() override {
    bystander_ = std::make_unique<Env>(newEnv());
    ASSERT_TRUE(bystander_->reset(fileUri("crc32.c")));
    const uint32_t mem2reg[] = {action("-mem2reg")};
    ASSERT_TRUE(bystander_->step(mem2reg).ok());
    char dir[] = "/tmp/fgtest-badinput-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    // Searchable by all: a server started as root loads benchmarks as its
    // sandbox user (nobody), as it would a researcher's shared directory.
    ASSERT_EQ(chmod(dir, 0755), 0);
    dir_ = dir;
  }
  void TearDown() override {
    // Nothing lost: the running episode still steps with its history, the
    // zygote starts new ones.
    const uint32_t instcombine[] = {action("-instcombine")};
    EXPECT_TRUE(bystander_->step(instcombine).ok());
    EXPECT_EQ(bystander_->actions().size(), 2u);
    Env fresh = newEnv();
    EXPECT_TRUE(fresh.reset(fileUri("crc32.c")));
    // Only ever the directory mkdtemp made for this test.
    if (dir_.filename().string().starts_with("fgtest-badinput-")) {
      std::error_code ec;
      fs::remove_all(dir_, ec);
    }
  }
  std::string write(const std::string& name, const std::string& bytes) {
    const auto path = dir_ / name;
    std::ofstream(path, std::ios::binary) << bytes;
    return path.string();
  }
  void expectError(const std::string& uri, std::initializer_list<Outcome> outcomes, const std::string& names) {
    SCOPED_TRACE(uri);
    Env env = newEnv();
    auto status = env.reset(uri);
    ASSERT_FALSE(status) << "accepted";
    EXPECT_NE(std::find(outcomes.begin(), outcomes.end(), status.error().outcome), outcomes.end())
        << outcomeName(status.error().outcome) << ": " << status.error().message;
    EXPECT_NE(status.error().message.find(names), std::string::npos) << status.error().message;
    // The same env works right after.
    EXPECT_TRUE(env.reset(fileUri("crc32.c")));
  }
  std::unique_ptr<Env> bystander_;
  fs::path dir_;
};

TEST_F(BadInputs, MalformedAndTruncatedBitcodeNameTheFile) {
  run(llvmTool("clang") + " -c -emit-llvm -O0 " + dataPath("crc32.c") + " -o " + (dir_ / "good.bc").string());
  std::ifstream in(dir_ / "good.bc", std::ios::binary);
  const std::string bitcode((std::istreambuf_iterator<char>(in)), {});
  ASSERT_GT(bitcode.size(), 100u);
  for (size_t keep : {bitcode.size() / 2, bitcode.size() - 7, size_t{4}, size_t{37}}) {
    const std::string path = write("truncated_" + std::to_string(keep) + ".bc", bitcode.substr(0, keep));
    expectError("file://" + path, {Outcome::BenchmarkError}, path);
  }
  std::string flipped = bitcode;
  for (size_t i = 64; i < flipped.size(); i += 97) flipped[i] = static_cast<char>(~flipped[i]);
  const std::string corrupt = write("corrupt.bc", flipped);
  expectError("file://" + corrupt, {Outcome::BenchmarkError}, corrupt);
  expectError(fileUri("malformed.bc"), {Outcome::BenchmarkError}, "malformed.bc");
}

TEST_F(BadInputs, IrThatFailsTheVerifierIsRefusedWithTheVerifiersMessage) {
  expectError(fileUri("verifier_failure.ll"), {Outcome::BenchmarkError}, "dominate");
  expectError(fileUri("verifier_failure.ll"), {Outcome::BenchmarkError}, "verifier_failure.ll");
}

TEST_F(BadInputs, HugeModuleLoadsAndSteps) {
  // ~800 functions, ~15k instructions after mem2reg: ~10x crc32, and still a
  // few seconds to compile, cost (-O0/-O3/-Oz baselines) and step.
  std::ostringstream source;
  for (int i = 0; i < 800; ++i) {
    source << "int f" << i << "(int *a, int n) { int s = " << i << "; for (int j = 0; j < n; ++j) s += a[j] * "
           << (i % 7 + 1) << " ^ s; return s; }\n";
  }
  const std::string path = write("huge.c", source.str());
  EnvOptions options;
  options.resetTimeout = std::chrono::seconds(120);
  Env env = newEnv(options);
  const auto started = std::chrono::steady_clock::now();
  auto status = env.reset("file://" + path);
  ASSERT_TRUE(status) << status.error().message;
  const uint32_t actions[] = {action("-mem2reg"), action("-instcombine")};
  auto result = env.step(actions, std::vector<std::string>{"IrInstructionCount"});
  ASSERT_TRUE(result.ok()) << result.message;
  EXPECT_GT(asInt(result.observations[0]), 10000);
  std::printf("  huge module: %lld instructions after -mem2reg -instcombine, %lld ms\n",
              static_cast<long long>(asInt(result.observations[0])),
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::steady_clock::now() - started).count()));
}

TEST_F(BadInputs, DotDotPathsAndUnknownDatasetsAreClearErrors) {
  expectError("file://" + dataPath("../data/crc32.c"), {Outcome::InvalidRequest}, "'..'");
  expectError("/tmp/../etc/passwd.c", {Outcome::InvalidRequest}, "/tmp/../etc/passwd.c");
  expectError("benchmark://cbench-v1/qsort", {Outcome::BenchmarkError}, "python -m forkgym datasets install cbench-v1");
  expectError("cbench-v1/qsort", {Outcome::BenchmarkError}, "benchmark://cbench-v1/qsort");
  expectError("generator://csmith-v0/not-a-number", {Outcome::InvalidRequest}, "seed");
  expectError("", {Outcome::InvalidRequest}, "empty");
  expectError("file://relative.c", {Outcome::InvalidRequest}, "absolute");
}

// benchmark://<dataset>/<path> of a dataset that cannot serve it: each
// error names the dataset, what is wrong, and the fix.
TEST_F(BadInputs, DatasetsThatCannotServeABenchmarkSayWhichAndWhatToDo) {
  TestSite site;  // the server below resolves datasets here
  site.install("fgtest-half-v0", "kind = prebuilt\nroot = contents\nsuffix = .bc\n", {}, /*marker=*/false);
  site.install("fgtest-bad-v0", "kind = prebuilt\nroot = contents\nsuffix = .bc\nlanguage = c\n", {});
  site.install("fgtest-src-v0", "kind = source\nroot = contents\nsuffix = .c\nlanguage = c\nflags = -ferror-limit=1 -w\n",
               {{"contents/broken.c", "int f(void) {\n  return missing_name;\n}\n"},
                {"contents/fine.c", "int g(int x) { return x + 1; }\n"}});
  auto connection = Connection::spawn(testServer());
  ASSERT_TRUE(connection) << connection.error().message;
  const auto expect = [&](const std::string& uri, Outcome outcome, std::initializer_list<std::string> says) {
    SCOPED_TRACE(uri);
    Env env(*connection);
    auto status = env.reset(uri);
    ASSERT_FALSE(status) << "accepted";
    EXPECT_EQ(status.error().outcome, outcome) << outcomeName(status.error().outcome) << ": " << status.error().message;
    for (const std::string& part : says) {
      EXPECT_NE(status.error().message.find(part), std::string::npos) << part << " in: " << status.error().message;
    }
    // The same env works right after, on a dataset that can serve it.
    auto fine = env.reset("benchmark://fgtest-src-v0/fine");
    EXPECT_TRUE(fine) << fine.error().message;
  };
  expect("benchmark://fgtest-none-v0/x", Outcome::BenchmarkError,
         {"unknown dataset 'fgtest-none-v0'", "fgtest-src-v0", "python -m forkgym datasets install fgtest-none-v0"});
  expect("benchmark://fgtest-half-v0/x", Outcome::BenchmarkError,
         {"the dataset fgtest-half-v0 is not installed", "python -m forkgym datasets install fgtest-half-v0"});
  expect("benchmark://fgtest-bad-v0/x", Outcome::BenchmarkError,
         {site.datasetDir("fgtest-bad-v0") + "/dataset.ini:4:", "language", "uninstall fgtest-bad-v0"});
  expect("benchmark://fgtest-src-v0/missing", Outcome::BenchmarkError,
         {"no benchmark 'missing' in the dataset fgtest-src-v0", "manifest.txt"});
  expect("benchmark://fgtest-src-v0/../fgtest-half-v0/x", Outcome::InvalidRequest, {"'..'"});
  // The compiler's own words, naming the file as the dataset does.
  expect("benchmark://fgtest-src-v0/broken", Outcome::BenchmarkError,
         {"dataset fgtest-src-v0", "broken.c:2:", "undeclared identifier 'missing_name'"});
}

TEST_F(BadInputs, PathsOutsideTheBenchmarkRootsAreRefusedNamingTheRoots) {
  const std::string outside = write("outside.c", "int main(void) { return 0; }\n");
  // A root of the test's own, within the sandbox user's reach as every root
  // must be (the test data may sit under a directory only root can search,
  // e.g. a clone in /root: such a root is refused at start-up).
  const fs::path root = dir_ / "root";
  fs::create_directory(root);
  fs::permissions(root, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                            fs::perms::others_read | fs::perms::others_exec);
  fs::copy_file(dataPath("crc32.c"), root / "crc32.c");
  const std::string inside = "file://" + (root / "crc32.c").string();
  ServerOptions server;
  server.benchmarkRoots = {root.string()};
  auto confined = Connection::spawn(testServer(server));
  ASSERT_TRUE(confined) << confined.error().message;
  Env env(*confined);
  EXPECT_TRUE(env.reset(inside)) << "inside the root";
  auto refused = env.reset("file://" + outside);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().outcome, Outcome::InvalidRequest);
  const std::string& message = refused.error().message;
  EXPECT_NE(message.find(outside), std::string::npos) << message;
  EXPECT_NE(message.find(fs::canonical(root).string()), std::string::npos) << message;
  EXPECT_NE(message.find("--benchmark-root"), std::string::npos) << message;
  EXPECT_TRUE(env.reset(inside));
}

TEST_F(BadInputs, InvalidActionsAndSpaceNamesLoseNothing) {
  Env env = newEnv();
  ASSERT_TRUE(env.reset(fileUri("crc32.c")));
  const uint32_t mem2reg[] = {action("-mem2reg")};
  ASSERT_TRUE(env.step(mem2reg).ok());
  for (uint32_t bad : {9999u, 0xffffffffu, static_cast<uint32_t>(description_->actions.size())}) {
    const uint32_t actions[] = {action("-instcombine"), bad};
    auto result = env.step(actions);
    EXPECT_EQ(result.outcome, Outcome::InvalidRequest);
    EXPECT_NE(result.message.find(std::to_string(bad)), std::string::npos) << result.message;
  }
  auto observation = env.step({}, std::vector<std::string>{"IrInstructionCount", "Nope"});
  EXPECT_EQ(observation.outcome, Outcome::InvalidRequest);
  EXPECT_NE(observation.message.find("'Nope'"), std::string::npos);
  auto reward = env.step(mem2reg, {}, std::vector<std::string>{std::string(3, '\0')});
  EXPECT_EQ(reward.outcome, Outcome::InvalidRequest);
  EXPECT_EQ(env.actions().size(), 1u) << "rejected steps apply nothing";
  EXPECT_TRUE(env.alive());
}

}  // namespace
}  // namespace forkgym::testing
