// The compiler-neutral contract (passes/backend.h, session.h, spaces.h,
// benchmark_uri.h, benchmark_load.h) and the LLVM backend's record: what
// the zygote, the worker and the clients rely on without knowing LLVM.
#include "passes/backend.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "passes/benchmark_load.h"
#include "passes/benchmark_uri.h"
#include "passes/llvm/action_table.h"
#include "passes/llvm/autophase.h"
#include "passes/llvm/backend.h"
#include "passes/llvm/benchmark_loader.h"
#include "passes/llvm/inst_count.h"
#include "passes/llvm/llvm_tools.h"
#include "passes/llvm/session.h"
#include "test_benchmarks.h"

namespace forkgym::passes {
namespace {

using testing::parseForTest;
using testing::smallProgramUri;
using testing::TempDir;

// A row's form must fit its value type and shape, or every client shows the
// value wrongly (a dict with keys and values out of step, a file of text).
TEST(Contract, EveryObservationsFormFitsItsType) {
  for (const auto& row : LlvmSession::observationRows()) {
    const Space& space = row.space;
    switch (space.form) {
      case ValueForm::Plain:
        break;
      case ValueForm::FeatureDict:
        EXPECT_TRUE(space.type == ValueType::Int64List || space.type == ValueType::Float64List) << space.name;
        EXPECT_EQ(space.shape, std::vector<int64_t>{static_cast<int64_t>(space.featureNames.size())}) << space.name;
        break;
      case ValueForm::Json:
        EXPECT_EQ(space.type, ValueType::Text) << space.name;
        break;
      case ValueForm::Records:
        EXPECT_EQ(space.type, ValueType::Text) << space.name;
        EXPECT_FALSE(space.featureNames.empty()) << space.name;
        break;
      case ValueForm::File:
        EXPECT_EQ(space.type, ValueType::Bytes) << space.name;
        EXPECT_FALSE(space.fileSuffix.empty()) << space.name;
        break;
      case ValueForm::ProgramGraph:
      case ValueForm::ProgramGraphNodeLink:
        EXPECT_EQ(space.type, ValueType::Bytes) << space.name;
        break;
    }
    if (space.float32) EXPECT_TRUE(space.type == ValueType::Float64List || space.type == ValueType::Float64);
    if (!space.featureNames.empty() && space.type != ValueType::Text) {
      EXPECT_EQ(space.shape, std::vector<int64_t>{static_cast<int64_t>(space.featureNames.size())}) << space.name;
    }
  }
}

TEST(Contract, LlvmRecordServesItsTablesAsData) {
  const Backend& llvm = kLlvmBackend;
  EXPECT_EQ(llvm.name, "llvm");
  EXPECT_EQ(llvm.startUp, StartUp::Preloaded);
  auto identity = llvm.initialize();
  ASSERT_TRUE(identity.ok()) << identity.error().message;
  EXPECT_TRUE(identity->version.starts_with("19.")) << identity->version;
  std::map<std::string, std::string> facts;
  for (const auto& property : identity->properties) facts[property.key] = property.value;
  EXPECT_EQ(facts["optPath"], llvmToolPath("opt"));
  EXPECT_EQ(facts["hostTriple"], initializeLlvm().triple);
  EXPECT_EQ(facts["hostCpu"], initializeLlvm().cpu);

  // The observation spaces are the rows' spaces, in order, each described.
  const auto observations = llvm.observationSpaces();
  ASSERT_EQ(observations.size(), LlvmSession::observationRows().size());
  for (size_t i = 0; i < observations.size(); ++i) {
    EXPECT_EQ(observations[i].name, LlvmSession::observationRows()[i].space.name);
    EXPECT_FALSE(observations[i].description.empty()) << observations[i].name;
  }
  const Space& instCount = observations[*findSpace(observations, "InstCount")];
  EXPECT_EQ(instCount.type, ValueType::Int64List);
  EXPECT_EQ(instCount.shape, std::vector<int64_t>{70});
  EXPECT_EQ(instCount.featureNames, toStrings(instCountFeatureNames()));
  EXPECT_EQ(instCount.low, 0);
  EXPECT_EQ(instCount.high, kUnbounded);
  const Space& autophase = observations[*findSpace(observations, "Autophase")];
  EXPECT_EQ(autophase.shape, std::vector<int64_t>{56});
  EXPECT_EQ(autophase.featureNames, toStrings(autophaseFeatureNames()));
  const Space& ir = observations[*findSpace(observations, "Ir")];
  EXPECT_EQ(ir.type, ValueType::Text);
  EXPECT_TRUE(ir.shape.empty());

  const auto rewards = llvm.rewardSpaces();
  ASSERT_EQ(rewards.size(), LlvmSession::rewardRows().size());
  for (const Space& space : rewards) {
    EXPECT_EQ(space.type, ValueType::Float64) << space.name;
    EXPECT_EQ(space.low, -kUnbounded) << space.name;
    EXPECT_FALSE(space.description.empty()) << space.name;
  }

  const ActionSpace& actions = llvm.actionSpace();
  EXPECT_EQ(actions.hash, actionTableHash());
  ASSERT_EQ(actions.actions.size(), actionTable().size());
  EXPECT_EQ(actions.actions[findAction("-dce")].replay, "function(dce)");
  EXPECT_EQ(actions.replay.program, llvmToolPath("opt"));
}

TEST(Contract, ReplayCommandLineJoinsTheActionsReplayTexts) {
  ActionSpace space;
  space.actions = {{"-a", "a", "", "", false}, {"-t", "", "", "", true}, {"-b", "b<x>", "", "", false}};
  space.replay = {"/usr/bin/tool", " --do='", ";", "'", " in out"};
  const uint32_t some[] = {0, 1, 2, 0};
  EXPECT_EQ(replayCommandLine(space, some), "/usr/bin/tool --do='a;b<x>;a' in out");
  EXPECT_EQ(replayCommandLine(space, {}), "/usr/bin/tool in out");
  space.replay.program = "/opt/my tools/tool";
  EXPECT_EQ(replayCommandLine(space, {}), "'/opt/my tools/tool' in out");
}

TEST(Contract, LlvmSessionCommandLineIsTheOptReplay) {
  ParsedBenchmark benchmark = parseForTest(smallProgramUri());
  LlvmSession session(*benchmark.module, benchmark.costs, &benchmark.bitcode);
  const uint32_t actions[] = {static_cast<uint32_t>(findAction("-mem2reg")),
                              static_cast<uint32_t>(findAction("-dce"))};
  ASSERT_TRUE(session.applyActions(actions).ok());
  EXPECT_EQ(session.commandLine(), llvmToolPath("opt") + " -passes='" + pipelineText(actions) +
                                       "' -preserve-bc-uselistorder=false input.bc -o output.bc");
}

TEST(Contract, ObservationByRowRunsThatRowsFunction) {
  ParsedBenchmark benchmark = parseForTest(smallProgramUri());
  LlvmSession session(*benchmark.module, benchmark.costs, &benchmark.bitcode);
  const auto rows = LlvmSession::observationRows();
  for (size_t i = 0; i < rows.size(); ++i) {
    auto byRow = session.observe(i);
    auto byName = session.observe(std::string_view(rows[i].space.name));
    if (rows[i].space.needsRunConfig) {
      // This benchmark has no run configuration: both say so, the same way.
      ASSERT_FALSE(byRow.ok() || byName.ok()) << rows[i].space.name;
      EXPECT_EQ(byRow.error().outcome, Outcome::InvalidRequest) << rows[i].space.name;
      EXPECT_EQ(byRow.error().message, byName.error().message) << rows[i].space.name;
      EXPECT_NE(byRow.error().message.find("no run configuration"), std::string::npos) << byRow.error().message;
      continue;
    }
    ASSERT_TRUE(byRow.ok() && byName.ok()) << rows[i].space.name;
    EXPECT_TRUE(*byRow == *byName) << rows[i].space.name;
    EXPECT_TRUE(checkValue(rows[i].space, *byRow).ok()) << rows[i].space.name;
  }
  auto past = session.observe(rows.size());
  ASSERT_FALSE(past.ok());
  EXPECT_EQ(past.error().outcome, Outcome::InvalidRequest);
}

TEST(Contract, LlvmParametersAreTheRuntimeOnesAndAnUnknownKeySaysSo) {
  ParsedBenchmark benchmark = parseForTest(smallProgramUri());
  LlvmSession session(*benchmark.module, benchmark.costs, &benchmark.bitcode);
  auto set = session.setParameter("choices", "1,2");
  ASSERT_FALSE(set.ok());
  EXPECT_EQ(set.error().outcome, Outcome::InvalidRequest);
  EXPECT_NE(set.error().message.find("'choices'"), std::string::npos) << set.error().message;
  EXPECT_NE(set.error().message.find("accepts runtime_observation_count, runtime_warmup_runs_count"),
            std::string::npos)
      << set.error().message;
  auto count = session.setParameter("runtime_observation_count", "30");
  ASSERT_TRUE(count.ok()) << count.error().message;
  EXPECT_EQ(*count, "30");
  EXPECT_EQ(session.runtimeObservationCount(), 30u);
  for (const char* bad : {"0", "-1", "1001", "3x", ""}) {
    auto refused = session.setParameter("runtime_observation_count", bad);
    ASSERT_FALSE(refused.ok()) << bad;
    EXPECT_EQ(refused.error().outcome, Outcome::InvalidRequest) << bad;
  }
  EXPECT_EQ(session.runtimeObservationCount(), 30u);
  ASSERT_TRUE(session.setParameter("runtime_warmup_runs_count", "0").ok());
  const std::string_view keys[] = {"choices", "timeout"};
  EXPECT_NE(unknownParameter("gcc", "x", keys).message.find("accepts choices, timeout"), std::string::npos);
}

TEST(Contract, CheckValueRefusesWhatTheSpaceDoesNotPromise) {
  Space list{.name = "L", .type = ValueType::Int64List, .shape = {3}};
  EXPECT_TRUE(checkValue(list, std::vector<int64_t>{1, 2, 3}).ok());
  auto shortList = checkValue(list, std::vector<int64_t>{1, 2});
  ASSERT_FALSE(shortList.ok());
  EXPECT_EQ(shortList.error().outcome, Outcome::ServerError);
  EXPECT_NE(shortList.error().message.find("'L'"), std::string::npos);
  auto wrongType = checkValue(list, std::string("x"));
  ASSERT_FALSE(wrongType.ok());
  EXPECT_NE(wrongType.error().message.find("text"), std::string::npos) << wrongType.error().message;
  Space counts{.name = "M", .type = ValueType::Int64Map};
  EXPECT_TRUE(checkValue(counts, std::vector<NamedCount>{{"add", 3}}).ok());
  Space real{.name = "F", .type = ValueType::Float64};
  EXPECT_TRUE(checkValue(real, 0.5).ok());
  EXPECT_FALSE(checkValue(real, int64_t{1}).ok());
}

TEST(Contract, LoadedBenchmarkRoundTripsAndRefusesTruncation) {
  LoadedBenchmark loaded;
  loaded.uri = "file:///x.c";
  loaded.contentHash = "abc";
  loaded.inputs.files.push_back(InputFile{"/x.c", 1, 2, 3, 4, 5, S_IFREG});
  loaded.payload = std::string("\0payload\xff", 9);
  const std::string bytes = encodeLoadedBenchmark(loaded);
  auto decoded = decodeLoadedBenchmark(bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_EQ(decoded->uri, loaded.uri);
  EXPECT_EQ(decoded->payload, loaded.payload);
  EXPECT_EQ(decoded->inputs.files, loaded.inputs.files);
  for (size_t length = 0; length < bytes.size(); ++length) {
    EXPECT_FALSE(decodeLoadedBenchmark(std::string_view(bytes).substr(0, length)).ok()) << length;
  }
  EXPECT_FALSE(decodeLoadedBenchmark(bytes + "!").ok());
  // An LLVM payload that lies about its bitcode's length.
  LoadedBenchmark lying = loaded;
  lying.payload = std::string(8, '\xff');
  EXPECT_FALSE(fromLoadedBenchmark(lying).ok());
}

// ---------------------------------------------------------------- URIs --

class BenchmarkUris : public ::testing::Test {
 protected:
  void SetUp() override {
    bundled_.write("crc32.c", "int main(void) { return 0; }\n");
    bundled_.write("small.c", "int f(void) { return 1; }\n");
    bundled_.write("notes.txt", "not a program\n");
    cache_.write("0123abcd.bc", "BC");
    context_.bundledDir = bundled_.path().string();
    context_.userCacheDir = cache_.path().string();
  }
  TempDir bundled_, cache_;
  ResolveContext context_;
};

TEST_F(BenchmarkUris, BundledProgramsResolveToTheirSourceAndKeepTheirName) {
  auto crc = resolveLlvmBenchmark("benchmark://forkgym-v0/crc32", context_);
  ASSERT_TRUE(crc.ok()) << crc.error().message;
  EXPECT_EQ(crc->uri, "benchmark://forkgym-v0/crc32");
  EXPECT_EQ(crc->source, "file://" + (bundled_.path() / "crc32.c").string());
  // CompilerGym's bare spelling.
  auto bare = resolveLlvmBenchmark("forkgym-v0/small", context_);
  ASSERT_TRUE(bare.ok()) << bare.error().message;
  EXPECT_EQ(bare->uri, "benchmark://forkgym-v0/small");

  for (const char* bad : {"benchmark://forkgym-v0/nope", "benchmark://forkgym-v0/notes",
                          "benchmark://forkgym-v0/../crc32", "benchmark://forkgym-v0/"}) {
    auto missing = resolveLlvmBenchmark(bad, context_);
    ASSERT_FALSE(missing.ok()) << bad;
    EXPECT_EQ(missing.error().outcome, Outcome::BenchmarkError) << bad;
    EXPECT_NE(missing.error().message.find("benchmark://forkgym-v0/crc32, benchmark://forkgym-v0/small"),
              std::string::npos)
        << missing.error().message;
  }
}

TEST_F(BenchmarkUris, UserBenchmarksResolveToMakeBenchmarksCache) {
  auto made = resolveLlvmBenchmark("benchmark://user-v0/0123abcd", context_);
  ASSERT_TRUE(made.ok()) << made.error().message;
  EXPECT_EQ(made->uri, "benchmark://user-v0/0123abcd");
  EXPECT_EQ(made->source, "file://" + (cache_.path() / "0123abcd.bc").string());

  auto unknown = resolveLlvmBenchmark("benchmark://user-v0/ffff", context_);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().outcome, Outcome::BenchmarkError);
  EXPECT_NE(unknown.error().message.find("not in this user's benchmark cache (" + context_.userCacheDir + ")"),
            std::string::npos)
      << unknown.error().message;

  // With benchmark roots, the cache is a directory like any other.
  TempDir elsewhere;
  context_.roots = {std::filesystem::canonical(elsewhere.path()).string()};
  auto outside = resolveLlvmBenchmark("benchmark://user-v0/0123abcd", context_);
  ASSERT_FALSE(outside.ok());
  EXPECT_NE(outside.error().message.find("--benchmark-root"), std::string::npos) << outside.error().message;
}

TEST_F(BenchmarkUris, OtherDatasetsResolveInTheSiteDataDirectory) {
  TempDir site;
  context_.datasets = std::make_shared<InstalledDatasets>(site.path().string());
  auto other = resolveLlvmBenchmark("benchmark://cbench-v1/qsort", context_);
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.error().outcome, Outcome::BenchmarkError);
  EXPECT_NE(other.error().message.find("not installed"), std::string::npos) << other.error().message;
  EXPECT_NE(other.error().message.find("python -m forkgym datasets install cbench-v1"), std::string::npos)
      << other.error().message;

  // A dataset of yours registered in place (its root elsewhere): with
  // benchmark roots (the server adds its datasets directory to them), its
  // files must be under one like any file.
  TempDir yours;
  const std::string program = yours.write("prog.c", "int main(void) { return 0; }\n");
  std::filesystem::create_directories(site.path() / "datasets/fgtest-yours-v0");
  site.write("datasets/fgtest-yours-v0/dataset.ini",
             "kind = source\nroot = " + yours.path().string() + "\nsuffix = .c\nlanguage = c\n");
  site.write("datasets/fgtest-yours-v0/.installed", "");
  auto found = resolveLlvmBenchmark("fgtest-yours-v0/prog", context_);
  ASSERT_TRUE(found.ok()) << found.error().message;
  EXPECT_EQ(found->uri, "benchmark://fgtest-yours-v0/prog");
  EXPECT_EQ(found->source, "file://" + program);
  EXPECT_EQ(found->recipe.language, "c");
  context_.roots = {std::filesystem::canonical(site.path() / "datasets").string()};
  auto outside = resolveLlvmBenchmark("fgtest-yours-v0/prog", context_);
  ASSERT_FALSE(outside.ok());
  EXPECT_NE(outside.error().message.find("--benchmark-root"), std::string::npos) << outside.error().message;
  context_.roots.push_back(std::filesystem::canonical(yours.path()).string());
  EXPECT_TRUE(resolveLlvmBenchmark("fgtest-yours-v0/prog", context_).ok());
}

TEST(BenchmarkUri, UserCacheDirFollowsThePythonPackagesRule) {
  setenv("FORKGYM_CACHE_DIR", "/somewhere", 1);
  setenv("FORKGYM_CACHE", "/datasets-cache", 1);
  EXPECT_EQ(defaultUserCacheDir(), "/somewhere/benchmarks");
  unsetenv("FORKGYM_CACHE_DIR");
  // The dataset cache's variable moves it too (forkgym.datasets.paths.cache_dir()).
  EXPECT_EQ(defaultUserCacheDir(), "/datasets-cache/benchmarks");
  unsetenv("FORKGYM_CACHE");
  setenv("XDG_CACHE_HOME", "/xdg", 1);
  EXPECT_EQ(defaultUserCacheDir(), "/xdg/forkgym/benchmarks");
  unsetenv("XDG_CACHE_HOME");
  setenv("HOME", "/home/someone", 1);
  // Root's is readable by a root server's sandbox user; anyone else's is theirs.
  EXPECT_EQ(defaultUserCacheDir(),
            geteuid() == 0 ? "/var/cache/forkgym/benchmarks" : "/home/someone/.cache/forkgym/benchmarks");
}

}  // namespace
}  // namespace forkgym::passes
