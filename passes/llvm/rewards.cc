// LLVM's reward table: one row per reward space, with the function that
// computes it (rewards.h has the formulas).
#include "passes/llvm/rewards.h"

#include <llvm/IR/Module.h>

#include <algorithm>
#include <span>

#include "passes/llvm/object_size.h"
#include "passes/llvm/session.h"
#include "passes/run_config.h"
#include "passes/runner.h"

namespace forkgym::passes {
namespace {

const int64_t* costArray(const BenchmarkCosts& costs, RewardCost cost) {
  return cost == RewardCost::InstructionCount ? costs.instructionCount : costs.objectTextSize;
}

double divisor(RewardScale scale, const int64_t* c) {
  switch (scale) {
    case RewardScale::None:
      return 1.0;
    case RewardScale::Initial:
      // An empty module has nothing to normalise by; 1 keeps the reward
      // finite (and it can only be zero anyway).
      return static_cast<double>(std::max<int64_t>(c[kInitial], 1));
    case RewardScale::VsO3:
      return static_cast<double>(std::max<int64_t>(c[kInitial] - c[kO3], 1));
    case RewardScale::VsOz:
      return static_cast<double>(std::max<int64_t>(c[kInitial] - c[kOz], 1));
  }
  return 1.0;
}

template <RewardCost cost, RewardScale scale>
Result<double> costReward(LlvmSession& session, RewardState& state) {
  Result<int64_t> now = cost == RewardCost::InstructionCount
                            ? Result<int64_t>(static_cast<int64_t>(session.module().getInstructionCount()))
                            : session.objectTextSize();
  if (!now.ok()) return now.takeError();
  // The points this reward's formula reads, computed now if the benchmark
  // came without them.
  const bool vsBaseline = scale == RewardScale::VsO3 || scale == RewardScale::VsOz;
  const CostPoint points[] = {kInitial, scale == RewardScale::VsO3 ? kO3 : kOz};
  for (CostPoint point : std::span(points, vsBaseline ? 2 : 1)) {
    auto value = session.baseline(cost, point);
    if (!value.ok()) return value.takeError();
    if (*value == kNoObjectFile) return noObjectFile(session.module().getTargetTriple());
  }
  return advanceCostReward(session.costs(), cost, scale, state, *now);
}

// The median of the state's Runtime (CompilerGym's point estimate).
Result<double> runtimeEstimate(LlvmSession& session, RunProgram program) {
  auto ran = session.measuredRuns(program, "the Runtime reward");
  if (!ran.ok()) return ran.takeError();
  std::vector<double> seconds;
  for (const ProgramRun& run : ran->runs) seconds.push_back(run.wallSeconds);
  std::sort(seconds.begin(), seconds.end());
  const size_t n = seconds.size();
  return n % 2 ? seconds[n / 2] : (seconds[n / 2 - 1] + seconds[n / 2]) / 2;
}

// Seconds saved since the previous step (the first time: since the
// benchmark as loaded).
Result<double> runtimeReward(LlvmSession& session, RewardState& state) {
  if (!state.previous) {
    auto initial = runtimeEstimate(session, RunProgram::Original);
    if (!initial.ok()) return initial.takeError();
    state.previous = *initial;
  }
  auto now = runtimeEstimate(session, RunProgram::Current);
  if (!now.ok()) return now.takeError();
  const double reward = *state.previous - *now;
  state.previous = *now;
  return reward;
}

// All deterministic; object size depends on the host's code generator,
// instruction counts do not.
Space reward(std::string name, RewardCost cost, std::string description) {
  return {.name = std::move(name),
          .type = ValueType::Float64,
          .platformDependent = cost == RewardCost::ObjectTextSize,
          .description = std::move(description)};
}

constexpr auto IC = RewardCost::InstructionCount;
constexpr auto Size = RewardCost::ObjectTextSize;

const std::vector<RewardRow<LlvmSession>>& rows() {
  static const std::vector<RewardRow<LlvmSession>> table = {
      {reward("IrInstructionCount", IC, "instructions removed since the previous step"),
       &costReward<IC, RewardScale::None>},
      {reward("IrInstructionCountNorm", IC, "instructions removed, over the initial count"),
       &costReward<IC, RewardScale::Initial>},
      {reward("IrInstructionCountO3", IC, "instructions removed, over what -O3 removes"),
       &costReward<IC, RewardScale::VsO3>},
      {reward("IrInstructionCountOz", IC, "instructions removed, over what -Oz removes"),
       &costReward<IC, RewardScale::VsOz>},
      {reward("ObjectTextSizeBytes", Size, "object .text bytes removed since the previous step"),
       &costReward<Size, RewardScale::None>},
      {reward("ObjectTextSizeNorm", Size, "object .text bytes removed, over the initial size"),
       &costReward<Size, RewardScale::Initial>},
      {reward("ObjectTextSizeO3", Size, "object .text bytes removed, over what -O3 removes"),
       &costReward<Size, RewardScale::VsO3>},
      {reward("ObjectTextSizeOz", Size, "object .text bytes removed, over what -Oz removes"),
       &costReward<Size, RewardScale::VsOz>},
      {{.name = "Runtime",
        .type = ValueType::Float64,
        .deterministic = false,
        .platformDependent = true,
        .needsRunConfig = true,
        .description = "seconds of the program's median run time saved since the previous step (runnable "
                       "benchmarks)"},
       &runtimeReward},
  };
  return table;
}

}  // namespace

double advanceCostReward(const BenchmarkCosts& costs, RewardCost cost, RewardScale scale, RewardState& state,
                         int64_t now) {
  const int64_t* c = costArray(costs, cost);
  const double previous = state.previous.value_or(static_cast<double>(c[kInitial]));
  state.previous = static_cast<double>(now);
  return (previous - static_cast<double>(now)) / divisor(scale, c);
}

std::span<const RewardRow<LlvmSession>> LlvmSession::rewardRows() { return rows(); }

}  // namespace forkgym::passes
