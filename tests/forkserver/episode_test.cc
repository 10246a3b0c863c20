// Episodes end to end: client -> zygote -> sandboxed worker, on every kind
// of benchmark, checked against LLVM's own tools.
#include <fstream>
#include <random>

#include "tests/forkserver/runtime_fixture.h"

namespace forkgym::testing {
namespace {

class Episode : public RuntimeTest {};

// Writes the episode's initial bitcode to a temp file for LLVM's tools.
struct TempBitcode {
  std::string dir;
  std::string path;
  explicit TempBitcode(const std::vector<uint8_t>& bytes) {
    char pattern[] = "/tmp/fgtest-episode-XXXXXX";
    dir = mkdtemp(pattern);
    path = dir + "/input.bc";
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  }
  ~TempBitcode() { run("rm -rf " + dir); }
};

const std::vector<std::string> kBenchmarks = {
    "generator://csmith-v0/1",
    "generator://llvm-stress-v0/1",
    "file://" FORKGYM_TEST_DATA "/crc32.c",
    "file://" FORKGYM_TEST_DATA "/multi_file/",
};

TEST_F(Episode, EveryActionStepsOrGivesItsClearErrorOnEveryBenchmarkKind) {
  for (const auto& benchmark : kBenchmarks) {
    SCOPED_TRACE(benchmark);
    Env env = newEnv();
    ASSERT_TRUE(env.reset(benchmark));
    for (uint32_t i = 0; i < 124; ++i) {
      const auto& row = description_->actions[i];
      const uint32_t one[] = {i};
      auto result = env.step(one, std::vector<std::string>{"IrInstructionCount"});
      if (!row.unavailableReason.empty()) {
        EXPECT_EQ(result.outcome, Outcome::InvalidRequest) << row.flag;
        EXPECT_NE(result.message.find("unavailable"), std::string::npos) << result.message;
        EXPECT_TRUE(env.alive()) << "an unavailable action must not end the episode";
      } else {
        ASSERT_TRUE(result.ok()) << row.flag << ": " << result.message;
        EXPECT_GT(asInt(result.observations[0]), 0);
      }
    }
  }
}

TEST_F(Episode, BaselinesAndSizesMatchOptClangAndLlvmSize) {
  Env env = newEnv();
  ASSERT_TRUE(env.reset(fileUri("crc32.c")));
  auto result = env.observe(std::vector<std::string>{"Bitcode", "IrInstructionCountOz", "ObjectTextSizeBytes",
                                                     "IrInstructionCountO3"});
  ASSERT_TRUE(result.ok()) << result.message;
  TempBitcode input(std::get<std::vector<uint8_t>>(result.observations[0]));

  // opt -Oz, then count instructions the way Module::getInstructionCount does.
  const std::string ozText = run(llvmTool("opt") + " -Oz -S " + input.path + " -o -");
  auto countInstructions = [](const std::string& ir) {
    int64_t count = 0;
    bool inFunction = false;
    std::istringstream lines(ir);
    for (std::string line; std::getline(lines, line);) {
      if (line.starts_with("define ")) inFunction = true;
      else if (line == "}") inFunction = false;
      else if (inFunction && line.starts_with("  ") && line.find_first_not_of(' ') == 2) ++count;
    }
    return count;
  };
  EXPECT_EQ(asInt(result.observations[1]), countInstructions(ozText));
  const std::string o3Text = run(llvmTool("opt") + " -O3 -S " + input.path + " -o -");
  EXPECT_EQ(asInt(result.observations[3]), countInstructions(o3Text));

  // clang -c -x ir (CompilerGym's definition) + llvm-size (Berkeley "text").
  const std::string size = run(llvmTool("clang") + " -c -x ir " + input.path + " -o " + input.dir + "/a.o && " +
                               llvmTool("llvm-size") + " " + input.dir + "/a.o | tail -1 | awk '{print $1}'");
  EXPECT_EQ(asInt(result.observations[2]), std::stoll(size));
}

TEST_F(Episode, CommandLineReplayedWithOptGivesTheSameIrHash) {
  std::mt19937 rng(7);
  std::vector<uint32_t> usable;
  for (uint32_t i = 0; i < 124; ++i) {
    if (description_->actions[i].unavailableReason.empty()) usable.push_back(i);
  }
  for (const auto& benchmark : kBenchmarks) {
    SCOPED_TRACE(benchmark);
    Env env = newEnv();
    ASSERT_TRUE(env.reset(benchmark));
    auto initial = env.observe(std::vector<std::string>{"Bitcode"});
    ASSERT_TRUE(initial.ok());
    std::vector<uint32_t> actions;
    for (int i = 0; i < 15; ++i) actions.push_back(usable[rng() % usable.size()]);
    auto result = env.step(actions, std::vector<std::string>{"IrSha1"});
    ASSERT_TRUE(result.ok()) << result.message;

    TempBitcode input(std::get<std::vector<uint8_t>>(initial.observations[0]));
    std::string passes;
    for (uint32_t a : actions) passes += (passes.empty() ? "" : ",") + description_->actions[a].replay;
    const std::string hash = run(llvmTool("opt") + " -preserve-bc-uselistorder=false -passes='" + passes + "' " + input.path + " -o " + input.dir +
                                 "/out.bc && sha1sum " + input.dir + "/out.bc | cut -c1-40");
    EXPECT_EQ(asText(result.observations[0]) + "\n", hash) << "opt -passes='" << passes << "'";
    EXPECT_EQ(env.reproducer().commandline.find(llvmTool("opt") + " -passes='" + passes + "'"), 0u)
        << env.reproducer().commandline;
  }
}

// The reproducer names the exact opt the server was built against (another
// LLVM's `opt` on PATH would refuse or misread the bitcode), and that command
// line, run as it is, replays the episode to the same IR hash.
TEST_F(Episode, ReproducerCommandLineNamesTheServersOptAndReplaysAsIs) {
  const std::string optPath = connection_->server().backend("llvm")->property("optPath");
  ASSERT_FALSE(optPath.empty());
  EXPECT_EQ(optPath, llvmTool("opt"));
  Env env = newEnv();
  ASSERT_TRUE(env.reset(fileUri("crc32.c")));
  auto initial = env.observe(std::vector<std::string>{"Bitcode"});
  ASSERT_TRUE(initial.ok());
  const uint32_t actions[] = {action("-mem2reg"), action("-instcombine"), action("-licm"), action("-gvn")};
  auto result = env.step(actions, std::vector<std::string>{"IrSha1"});
  ASSERT_TRUE(result.ok()) << result.message;

  const std::string commandline = env.reproducer().commandline;
  ASSERT_EQ(commandline.find(optPath + " "), 0u) << commandline;
  TempBitcode input(std::get<std::vector<uint8_t>>(initial.observations[0]));
  const std::string hash =
      run("cd " + input.dir + " && " + commandline + " && sha1sum output.bc | cut -c1-40");
  EXPECT_EQ(asText(result.observations[0]) + "\n", hash) << commandline;
}

TEST_F(Episode, RewardsFollowCompilerGymFormulas) {
  Env env = newEnv();
  ASSERT_TRUE(env.reset(fileUri("crc32.c")));
  auto start = env.observe(std::vector<std::string>{"IrInstructionCount", "IrInstructionCountOz"});
  const double c0 = static_cast<double>(asInt(start.observations[0]));
  const double cOz = static_cast<double>(asInt(start.observations[1]));
  const uint32_t mem2reg[] = {action("-mem2reg")};
  auto result = env.step(mem2reg, std::vector<std::string>{"IrInstructionCount"},
                         std::vector<std::string>{"IrInstructionCount", "IrInstructionCountNorm", "IrInstructionCountOz"});
  ASSERT_TRUE(result.ok()) << result.message;
  const double c1 = static_cast<double>(asInt(result.observations[0]));
  EXPECT_LT(c1, c0);
  EXPECT_DOUBLE_EQ(result.rewards[0], c0 - c1);
  EXPECT_DOUBLE_EQ(result.rewards[1], (c0 - c1) / c0);
  EXPECT_DOUBLE_EQ(result.rewards[2], (c0 - c1) / std::max(c0 - cOz, 1.0));
  EXPECT_FALSE(result.actionHadNoEffect);
  // Running the same pass again finds nothing left to promote.
  auto again = env.step(mem2reg, {}, std::vector<std::string>{"IrInstructionCount"});
  ASSERT_TRUE(again.ok());
  EXPECT_DOUBLE_EQ(again.rewards[0], 0.0);
}

TEST_F(Episode, ObservationsHaveCompilerGymShapes) {
  Env env = newEnv();
  ASSERT_TRUE(env.reset(fileUri("crc32.c")));
  auto result = env.observe(std::vector<std::string>{"InstCount", "Autophase", "Ir", "IrSha1"});
  ASSERT_TRUE(result.ok()) << result.message;
  EXPECT_EQ(std::get<std::vector<int64_t>>(result.observations[0]).size(), 70u);
  EXPECT_EQ(std::get<std::vector<int64_t>>(result.observations[1]).size(), 56u);
  EXPECT_NE(asText(result.observations[2]).find("define"), std::string::npos);
  EXPECT_EQ(asText(result.observations[3]).size(), 40u);
}

TEST_F(Episode, ResetStartsAgainFromTheInitialState) {
  Env env = newEnv();
  ASSERT_TRUE(env.reset("generator://csmith-v0/3"));
  auto first = env.observe(std::vector<std::string>{"IrSha1"});
  const uint32_t dce[] = {action("-mem2reg")};
  ASSERT_TRUE(env.step(dce).ok());
  ASSERT_TRUE(env.reset("generator://csmith-v0/3"));
  auto second = env.observe(std::vector<std::string>{"IrSha1"});
  EXPECT_EQ(asText(first.observations[0]), asText(second.observations[0]));
}

}  // namespace
}  // namespace forkgym::testing
