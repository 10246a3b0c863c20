// CompilerGym's LLVM reward spaces: for a cost C (IR instruction count or
// object .text size), state s_t, initial state s_0 and baseline s_b,
//   cost        r_t = C(s_{t-1}) - C(s_t)
//   ...Norm     r_t = (C(s_{t-1}) - C(s_t)) / C(s_0)
//   ...O3/Oz    r_t = (C(s_{t-1}) - C(s_t)) / max(C(s_0) - C(s_b), 1)
// so an episode's return on an Oz reward is 1.0 when it is as small as -Oz.
//
// Worker process only (part of LlvmSession's state). Each reward keeps its
// own previous cost, starting at C(s_0), and moves it on when asked.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string_view>

#include "passes/llvm/benchmark.h"

namespace forkgym::passes {

enum class RewardCost : uint8_t { InstructionCount, ObjectTextSize };

struct RewardDefinition {
  std::string_view name;
  RewardCost cost;
  // Which cost divides the difference: none, C(s_0), or C(s_0) - C(baseline).
  enum class Scale : uint8_t { None, Initial, VsO3, VsOz } scale;
};

inline constexpr RewardDefinition kRewards[] = {
    {"IrInstructionCount", RewardCost::InstructionCount, RewardDefinition::Scale::None},
    {"IrInstructionCountNorm", RewardCost::InstructionCount, RewardDefinition::Scale::Initial},
    {"IrInstructionCountO3", RewardCost::InstructionCount, RewardDefinition::Scale::VsO3},
    {"IrInstructionCountOz", RewardCost::InstructionCount, RewardDefinition::Scale::VsOz},
    {"ObjectTextSizeBytes", RewardCost::ObjectTextSize, RewardDefinition::Scale::None},
    {"ObjectTextSizeNorm", RewardCost::ObjectTextSize, RewardDefinition::Scale::Initial},
    {"ObjectTextSizeO3", RewardCost::ObjectTextSize, RewardDefinition::Scale::VsO3},
    {"ObjectTextSizeOz", RewardCost::ObjectTextSize, RewardDefinition::Scale::VsOz},
};
inline constexpr size_t kRewardCount = std::size(kRewards);

std::optional<size_t> findReward(std::string_view name);

class RewardTracker {
 public:
  explicit RewardTracker(const BenchmarkCosts& costs);

  // The reward for moving from this reward's previous cost to `cost`, which
  // becomes the new previous cost.
  double advance(size_t reward, int64_t cost);

 private:
  BenchmarkCosts costs_;
  std::array<int64_t, kRewardCount> previous_;
};

}  // namespace forkgym::passes
