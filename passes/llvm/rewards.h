// CompilerGym's LLVM reward spaces: for a cost C (IR instruction count or
// object .text size), state s_t, initial state s_0 and baseline s_b,
//   cost        r_t = C(s_{t-1}) - C(s_t)
//   ...Norm     r_t = (C(s_{t-1}) - C(s_t)) / C(s_0)
//   ...O3/Oz    r_t = (C(s_{t-1}) - C(s_t)) / max(C(s_0) - C(s_b), 1)
// so an episode's return on an Oz reward is 1.0 when it is as small as -Oz.
//
// The rows are LlvmSession::rewardRows() (rewards.cc). Worker process only:
// each reward keeps its own previous cost (its RewardState, kept by the
// session), starting at C(s_0), and moves it on when asked.
#pragma once

#include <cstdint>

#include "passes/llvm/benchmark.h"
#include "passes/spaces.h"

namespace forkgym::passes {

enum class RewardCost : uint8_t { InstructionCount, ObjectTextSize };

// Which cost divides the difference: none, C(s_0), or C(s_0) - C(baseline).
enum class RewardScale : uint8_t { None, Initial, VsO3, VsOz };

// The reward for moving from `state`'s previous cost (C(s_0) the first
// time) to `now`, which becomes the previous cost.
double advanceCostReward(const BenchmarkCosts& costs, RewardCost cost, RewardScale scale, RewardState& state,
                         int64_t now);

}  // namespace forkgym::passes
