#include "passes/llvm/rewards.h"

#include <gtest/gtest.h>

#include <map>
#include <utility>

#include "passes/llvm/action_table.h"
#include "passes/llvm/benchmark_costs.h"
#include "passes/llvm/session.h"
#include "test_benchmarks.h"

namespace forkgym::passes {
namespace {

BenchmarkCosts exampleCosts() {
  BenchmarkCosts costs;
  // Instruction counts: start 100, O0 100, O3 70, Oz 60.
  costs.instructionCount[kInitial] = 100;
  costs.instructionCount[kO0] = 100;
  costs.instructionCount[kO3] = 70;
  costs.instructionCount[kOz] = 60;
  // Object sizes: start 1000, O3 900, Oz 500.
  costs.objectTextSize[kInitial] = 1000;
  costs.objectTextSize[kO0] = 1000;
  costs.objectTextSize[kO3] = 900;
  costs.objectTextSize[kOz] = 500;
  return costs;
}

constexpr auto IC = RewardCost::InstructionCount;
constexpr auto Size = RewardCost::ObjectTextSize;

// What a session keeps for its rewards: one running state per reward.
struct Tracker {
  BenchmarkCosts costs;
  std::map<std::pair<RewardCost, RewardScale>, RewardState> states;
  double advance(RewardCost cost, RewardScale scale, int64_t now) {
    return advanceCostReward(costs, cost, scale, states[{cost, scale}], now);
  }
};

TEST(Rewards, MatchCompilerGymFormulas) {
  Tracker tracker{exampleCosts(), {}};
  // C(s_{t-1}) - C(s_t)
  EXPECT_DOUBLE_EQ(tracker.advance(IC, RewardScale::None, 90), 10.0);
  // ... / C(s_0)
  EXPECT_DOUBLE_EQ(tracker.advance(IC, RewardScale::Initial, 90), 0.1);
  // ... / (C(s_0) - C(O3))
  EXPECT_DOUBLE_EQ(tracker.advance(IC, RewardScale::VsO3, 90), 10.0 / 30.0);
  // ... / (C(s_0) - C(Oz))
  EXPECT_DOUBLE_EQ(tracker.advance(IC, RewardScale::VsOz, 90), 10.0 / 40.0);
  EXPECT_DOUBLE_EQ(tracker.advance(Size, RewardScale::None, 800), 200.0);
  EXPECT_DOUBLE_EQ(tracker.advance(Size, RewardScale::Initial, 800), 0.2);
  EXPECT_DOUBLE_EQ(tracker.advance(Size, RewardScale::VsO3, 800), 2.0);
  EXPECT_DOUBLE_EQ(tracker.advance(Size, RewardScale::VsOz, 800), 0.4);
}

TEST(Rewards, EachRewardKeepsItsOwnPreviousCost) {
  Tracker tracker{exampleCosts(), {}};
  EXPECT_DOUBLE_EQ(tracker.advance(IC, RewardScale::None, 90), 10.0);
  EXPECT_DOUBLE_EQ(tracker.advance(IC, RewardScale::None, 90), 0.0);
  EXPECT_DOUBLE_EQ(tracker.advance(IC, RewardScale::None, 95), -5.0);
  // Not asked for until now: measured from s_0.
  EXPECT_DOUBLE_EQ(tracker.advance(IC, RewardScale::VsOz, 95), 5.0 / 40.0);
}

TEST(Rewards, BaselineNoBetterThanTheStartDividesByOne) {
  BenchmarkCosts costs = exampleCosts();
  costs.instructionCount[kOz] = 120;  // -Oz made it bigger
  Tracker tracker{costs, {}};
  EXPECT_DOUBLE_EQ(tracker.advance(IC, RewardScale::VsOz, 97), 3.0);
}

TEST(Rewards, SpacesAreCompilerGymsEightAndRuntime) {
  std::vector<std::string_view> names;
  for (const Space& space : rewardSpaces()) {
    names.push_back(space.name);
    EXPECT_EQ(space.type, ValueType::Float64) << space.name;
    // Runtime is measured: neither deterministic nor portable, and only
    // for benchmarks that run.
    const bool runtime = space.name == "Runtime";
    EXPECT_EQ(space.deterministic, !runtime) << space.name;
    EXPECT_EQ(space.needsRunConfig, runtime) << space.name;
    EXPECT_EQ(space.platformDependent, space.name.starts_with("ObjectTextSize") || runtime) << space.name;
  }
  EXPECT_EQ(names, (std::vector<std::string_view>{
                       "IrInstructionCount", "IrInstructionCountNorm", "IrInstructionCountO3",
                       "IrInstructionCountOz", "ObjectTextSizeBytes", "ObjectTextSizeNorm",
                       "ObjectTextSizeO3", "ObjectTextSizeOz", "Runtime"}));
}

TEST(Rewards, SessionEpisodeReturnTelescopesToTheFormula) {
  ParsedBenchmark benchmark = testing::parseForTest(testing::smallProgramUri());
  LlvmSession session(*benchmark.module, benchmark.costs, &benchmark.bitcode);
  // The benchmark comes without its baselines (the session computes them):
  // the formula's are computed here, all at once, as the zygote's baseline
  // child does.
  auto eager = computeBenchmarkCosts(benchmark.bitcode);
  ASSERT_TRUE(eager.ok()) << eager.error().message;
  const BenchmarkCosts& costs = *eager;
  double icReturn = 0;
  double sizeReturn = 0;
  for (const char* flag : {"-mem2reg", "-instcombine", "-simplifycfg", "-gvn", "-dce"}) {
    const uint32_t action[] = {static_cast<uint32_t>(findAction(flag))};
    ASSERT_TRUE(session.applyActions(action).ok()) << flag;
    auto ic = session.reward("IrInstructionCountOz");
    auto size = session.reward("ObjectTextSizeOz");
    ASSERT_TRUE(ic.ok() && size.ok());
    icReturn += *ic;
    sizeReturn += *size;
  }
  const int64_t ic = std::get<int64_t>(*session.observe("IrInstructionCount"));
  const int64_t size = std::get<int64_t>(*session.observe("ObjectTextSizeBytes"));
  EXPECT_NEAR(icReturn,
              double(costs.instructionCount[kInitial] - ic) /
                  std::max<int64_t>(costs.instructionCount[kInitial] - costs.instructionCount[kOz], 1),
              1e-9);
  EXPECT_NEAR(sizeReturn,
              double(costs.objectTextSize[kInitial] - size) /
                  std::max<int64_t>(costs.objectTextSize[kInitial] - costs.objectTextSize[kOz], 1),
              1e-9);
  EXPECT_GT(icReturn, 0.0);
  // Asked again without a step: nothing changed, so nothing is earned.
  EXPECT_DOUBLE_EQ(*session.reward("IrInstructionCountOz"), 0.0);
}

}  // namespace
}  // namespace forkgym::passes
