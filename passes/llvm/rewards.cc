#include "passes/llvm/rewards.h"

#include <algorithm>

#include "passes/llvm/session.h"

namespace forkgym::passes {
namespace {

const int64_t* costArray(const BenchmarkCosts& costs, RewardCost cost) {
  return cost == RewardCost::InstructionCount ? costs.instructionCount : costs.objectTextSize;
}

double divisor(const RewardDefinition& reward, const BenchmarkCosts& costs) {
  const int64_t* c = costArray(costs, reward.cost);
  switch (reward.scale) {
    case RewardDefinition::Scale::None:
      return 1.0;
    case RewardDefinition::Scale::Initial:
      // An empty module has nothing to normalise by; 1 keeps the reward
      // finite (and it can only be zero anyway).
      return static_cast<double>(std::max<int64_t>(c[kInitial], 1));
    case RewardDefinition::Scale::VsO3:
      return static_cast<double>(std::max<int64_t>(c[kInitial] - c[kO3], 1));
    case RewardDefinition::Scale::VsOz:
      return static_cast<double>(std::max<int64_t>(c[kInitial] - c[kOz], 1));
  }
  return 1.0;
}

// All deterministic; object size depends on the host's code generator,
// instruction counts do not.
constexpr std::array<RewardSpaceInfo, kRewardCount> makeSpaces() {
  std::array<RewardSpaceInfo, kRewardCount> spaces{};
  for (size_t i = 0; i < kRewardCount; ++i) {
    spaces[i] = {kRewards[i].name, /*deterministic=*/true,
                 /*platformDependent=*/kRewards[i].cost == RewardCost::ObjectTextSize};
  }
  return spaces;
}
constexpr std::array<RewardSpaceInfo, kRewardCount> kSpaces = makeSpaces();

}  // namespace

std::span<const RewardSpaceInfo> rewardSpaces() { return kSpaces; }

std::optional<size_t> findReward(std::string_view name) {
  for (size_t i = 0; i < kRewardCount; ++i) {
    if (kRewards[i].name == name) return i;
  }
  return std::nullopt;
}

RewardTracker::RewardTracker(const BenchmarkCosts& costs) : costs_(costs) {
  for (size_t i = 0; i < kRewardCount; ++i) {
    previous_[i] = costArray(costs, kRewards[i].cost)[kInitial];
  }
}

double RewardTracker::advance(size_t reward, int64_t cost) {
  const double difference = static_cast<double>(previous_[reward] - cost);
  previous_[reward] = cost;
  return difference / divisor(kRewards[reward], costs_);
}

}  // namespace forkgym::passes
