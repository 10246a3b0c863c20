// Baselines: left out of a benchmark's load, computed when a reward or an
// observation needs them, filled in by the zygote in the background and
// kept on disk (forkserver/baseline_cache.h) — where a torn, forged or
// foreign file means "compute again", never a number. The probe: a file
// planted with a number no computation gives (an -Oz instruction count of
// 12345) is served only when the cache must accept it.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "forkserver/baseline_cache.h"
#include "passes/llvm/backend.h"
#include "passes/llvm/benchmark.h"
#include "passes/llvm/benchmark_costs.h"
#include "passes/llvm/benchmark_loader.h"
#include "passes/llvm/session.h"
#include "tests/forkserver/runtime_fixture.h"

namespace forkgym::testing {
namespace {

using forkserver::BaselineCache;

constexpr int64_t kPlanted = 12345;

class Baselines : public ::testing::Test {
 protected:
  void SetUp() override {
    passes::initializeLlvm();
    auto loaded = passes::loadBenchmark(fileUri("crc32.c"));
    ASSERT_TRUE(loaded) << loaded.error().message;
    auto parsed = passes::parseTrustedBitcode(*loaded);
    ASSERT_TRUE(parsed) << parsed.error().message;
    benchmark_ = std::make_unique<passes::ParsedBenchmark>(std::move(*parsed));
    key_ = passes::kLlvmBackend.baselines->key(*benchmark_);
    ASSERT_FALSE(key_.empty()) << "a loaded benchmark comes without its baselines";
    auto eager = passes::computeBenchmarkCosts(benchmark_->bitcode);
    ASSERT_TRUE(eager) << eager.error().message;
    eager_ = *eager;
    directory_ = dir_.path + "/baselines";
  }

  // The encoded costs, with -Oz's instruction count replaced.
  std::string planted() const {
    passes::BenchmarkCosts costs = eager_;
    costs.instructionCount[passes::kOz] = kPlanted;
    std::string encoded;
    passes::encodeCosts(encoded, costs);
    return encoded;
  }
  BaselineCache cache() const {
    auto opened = BaselineCache::open(directory_);
    EXPECT_TRUE(opened) << opened.error().message;
    return std::move(*opened);
  }
  // The one file the cache holds (named by its key's hash).
  std::string storedFile() const {
    for (const auto& entry : std::filesystem::directory_iterator(directory_)) {
      if (!entry.path().filename().string().starts_with(".")) return entry.path().string();
    }
    return {};
  }

  // A new server on the cache directory: the benchmark's -Oz instruction
  // count as the first episode's worker sees it. `server` keeps the server
  // (and its background work) alive after the call.
  int64_t ozCountFromNewServer(std::shared_ptr<Connection>* server = nullptr) {
    // No state cache: it would answer IrInstructionCountOz from an earlier
    // server's episode, whatever the baseline cache holds.
    auto connection =
        Connection::spawn(testServer({.extraArgs = {"--baseline-cache", directory_, "--no-state-cache"}}));
    EXPECT_TRUE(connection) << connection.error().message;
    if (!connection) return -1;
    if (server != nullptr) *server = *connection;
    Env env(*connection);
    auto reset = env.reset(fileUri("crc32.c"));
    EXPECT_TRUE(reset) << reset.error().message;
    auto result = env.observe(std::vector<std::string>{"IrInstructionCountOz"});
    EXPECT_TRUE(result.ok()) << result.message;
    return result.ok() ? asInt(result.observations[0]) : -1;
  }

  TestDir dir_;
  std::string directory_;
  std::unique_ptr<passes::ParsedBenchmark> benchmark_;
  std::string key_;
  passes::BenchmarkCosts eager_;
};

TEST_F(Baselines, AWholeFileOfTheServersOwnIsServed) {
  ASSERT_TRUE(cache().write(key_, planted()));
  EXPECT_EQ(ozCountFromNewServer(), kPlanted);
}

TEST_F(Baselines, NoFileMeansComputeAndTheServerStoresWhatItComputed) {
  cache();  // the directory, empty
  std::shared_ptr<Connection> server;  // a private server lives as long as its client
  EXPECT_EQ(ozCountFromNewServer(&server), eager_.instructionCount[passes::kOz]);
  // The zygote's baseline child finishes in the background and the zygote
  // stores its numbers; they are all the eager ones.
  std::optional<std::string> stored;
  ASSERT_TRUE(eventually([&] { return (stored = cache().read(key_)).has_value(); }))
      << "the server stored no baselines in " << directory_;
  std::string expected;
  passes::encodeCosts(expected, eager_);
  EXPECT_EQ(*stored, expected);
}

TEST_F(Baselines, ATornFileIsComputedAgain) {
  ASSERT_TRUE(cache().write(key_, planted()));
  const std::string file = storedFile();
  ASSERT_FALSE(file.empty());
  std::filesystem::resize_file(file, std::filesystem::file_size(file) - 1);
  EXPECT_FALSE(cache().read(key_).has_value());
  EXPECT_EQ(ozCountFromNewServer(), eager_.instructionCount[passes::kOz]);
}

TEST_F(Baselines, AFileOthersMayWriteIsNotTrusted) {
  ASSERT_TRUE(cache().write(key_, planted()));
  const std::string file = storedFile();
  ASSERT_EQ(chmod(file.c_str(), 0622), 0);
  EXPECT_FALSE(cache().read(key_).has_value());
  EXPECT_EQ(ozCountFromNewServer(), eager_.instructionCount[passes::kOz]);
}

TEST_F(Baselines, AFileOfAnotherUserIsNotTrusted) {
  if (geteuid() != 0) GTEST_SKIP() << "giving a file away needs root";
  ASSERT_TRUE(cache().write(key_, planted()));
  const std::string file = storedFile();
  ASSERT_EQ(chown(file.c_str(), 65534, 65534), 0);
  EXPECT_FALSE(cache().read(key_).has_value());
  EXPECT_EQ(ozCountFromNewServer(), eager_.instructionCount[passes::kOz]);
}

TEST_F(Baselines, ASymbolicLinkIsNotFollowed) {
  ASSERT_TRUE(cache().write(key_, planted()));
  const std::string file = storedFile();
  std::filesystem::rename(file, dir_.path + "/elsewhere");
  std::filesystem::create_symlink(dir_.path + "/elsewhere", file);
  EXPECT_FALSE(cache().read(key_).has_value());
  EXPECT_EQ(ozCountFromNewServer(), eager_.instructionCount[passes::kOz]);
}

// A whole, well-formed file of another key (another benchmark, LLVM or
// definition) renamed to this key's name.
TEST_F(Baselines, AnotherKeysFileUnderThisKeysNameIsNotServed) {
  ASSERT_TRUE(cache().write(key_ + " (another LLVM)", planted()));
  const std::string other = storedFile();
  ASSERT_TRUE(cache().write(key_, planted()));
  std::string mine;
  for (const auto& entry : std::filesystem::directory_iterator(directory_)) {
    if (entry.path().string() != other) mine = entry.path().string();
  }
  std::filesystem::rename(other, mine);
  EXPECT_FALSE(cache().read(key_).has_value());
  EXPECT_EQ(ozCountFromNewServer(), eager_.instructionCount[passes::kOz]);
}

// What a cache file says must be possible for the benchmark: adopt()
// refuses a missing point or another module's initial count.
TEST_F(Baselines, NumbersOfAnotherModuleAreRefused) {
  passes::BenchmarkCosts costs = eager_;
  costs.instructionCount[passes::kInitial] += 1;
  std::string encoded;
  passes::encodeCosts(encoded, costs);
  EXPECT_FALSE(passes::kLlvmBackend.baselines->adopt(*benchmark_, encoded));
  costs = eager_;
  costs.objectTextSize[passes::kO3] = passes::kNotComputed;
  encoded.clear();
  passes::encodeCosts(encoded, costs);
  EXPECT_FALSE(passes::kLlvmBackend.baselines->adopt(*benchmark_, encoded));
  EXPECT_FALSE(benchmark_->costs.complete());
}

TEST_F(Baselines, ADirectoryOthersMayWriteIsRefused) {
  std::filesystem::create_directories(directory_);
  ASSERT_EQ(chmod(directory_.c_str(), 0777), 0);
  auto opened = BaselineCache::open(directory_);
  ASSERT_FALSE(opened);
  EXPECT_NE(opened.error().message.find("writable by it alone"), std::string::npos) << opened.error().message;
}

}  // namespace
}  // namespace forkgym::testing
