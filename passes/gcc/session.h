// GccSession: gcc-v0's Session (passes/session.h), a GccEpisode behind the
// neutral interface, with CompilerGym's observation and reward tables.
//
// Lifecycle (worker process only):
//   1. backend.cc's startSession() makes it from the cached preprocessed
//      source, before the worker applies its sandbox.
//   2. applyActions()/setParameter() move the episode (episode.h: a state
//      gcc refuses is refused and nothing changes); observe()/reward() run
//      the rows below on the current state.
//   3. env.fork() forks the worker and the session with it.
//
// Observations (CompilerGym's names and types; obj_text_size is new):
//   source rtl asm asm_hash obj_hash command_line     text
//   asm_size obj_size obj_text_size                   int64 (bytes)
//   instruction_counts                                int64Map (mnemonic -> count)
//   obj                                               bytes
//   choices                                           int64List, one per option
// Rewards asm_size and obj_size: r = previous - now, previous starting at
// the reset state's size.
#pragma once

#include <memory>
#include <span>
#include <string>

#include "passes/gcc/episode.h"
#include "passes/session.h"
#include "passes/spaces.h"

namespace forkgym::passes::gcc {

class GccSession : public TableSession<GccSession> {
 public:
  GccSession(const GccSpec& spec, const GccActionSpace& actions, std::string source, std::string workBase);
  ~GccSession() override;

  Result<ApplyResult> applyActions(std::span<const uint32_t> actions) override;
  Result<std::string> setParameter(std::string_view key, std::string_view value) override;
  std::string commandLine() const override { return episode_.commandLine(); }
  const std::vector<uint32_t>& actions() const override { return episode_.actions(); }

  using TableSession::observe;
  using TableSession::reward;
  static std::span<const ObservationRow<GccSession>> observationRows();
  static std::span<const RewardRow<GccSession>> rewardRows();

  GccEpisode& episode() { return episode_; }

 private:
  GccEpisode episode_;
};

// The spaces of the two tables, in row order (what describe carries); the
// choices row's shape and bounds come from the spec.
std::vector<Space> gccObservationSpaces(const GccSpec& spec);
std::vector<Space> gccRewardSpaces();

}  // namespace forkgym::passes::gcc
