// Session: one episode of one backend, inside a worker — the interface the
// worker loop drives, whatever the compiler.
//
// Lifecycle (worker process only):
//   1. The worker asks its backend (backend.h) to start a session on the
//      benchmark it inherited from the zygote (copy-on-write), before it
//      applies its sandbox.
//   2. applyActions() validates every index first (nothing is applied if one
//      is bad), applies them in order and records them.
//   3. observe()/reward() compute the spaces of the backend's tables
//      (spaces.h) by index; the worker has checked the names already.
//      setParameter() changes a backend setting (CompilerGym's send_param,
//      e.g. gcc's choices) and answers with text.
//   4. On env.fork() the worker process is forked; the session is copied
//      with it, so nothing here needs to know about forks.
//   Runnable benchmarks: the worker attaches the episode's run
//   configuration (run_config.h) before its sandbox; run() then builds the
//   program from the backend's programObject() and runs it (runner.h), and
//   the backend's run-dependent spaces (LLVM's Runtime, TextSizeBytes, ...)
//   use it too. Without one they are InvalidRequest (noRunConfig()).
// Errors: InvalidRequest for a bad index, key or value (the episode goes
// on); an outcome that ends the episode (endsEpisode(), base/outcome.h) when
// the session can no longer be trusted (e.g. LLVM's verifier failed).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <functional>
#include <optional>

#include "base/result.h"
#include "ipc/run_config.h"
#include "passes/spaces.h"

namespace forkgym::passes {

struct ApplyResult {
  bool actionHadNoEffect = true;  // no action reported a change
};

class Session {
 public:
  virtual ~Session() = default;

  virtual Result<ApplyResult> applyActions(std::span<const uint32_t> actions) = 0;
  // `index` is a row of the backend's observation (reward) table.
  virtual Result<ObservationValue> observe(size_t index) = 0;
  virtual Result<double> reward(size_t index) = 0;
  // InvalidRequest naming the keys the backend accepts for an unknown key.
  virtual Result<std::string> setParameter(std::string_view key, std::string_view value) = 0;
  // The backend's replay command line for this episode's state (LLVM: opt
  // -passes=...; gcc: the gcc command line), absolute program path first.
  virtual std::string commandLine() const = 0;
  // The actions applied so far, in order.
  virtual const std::vector<uint32_t>& actions() const = 0;

  // Worker, before its sandbox, in a spare (forked before any client asked
  // for it): does ahead what the first step would do whatever its action
  // (e.g. pass-manager set-up, faulting in pages), and nothing a step can
  // observe. Returns as soon as `idle` is false: the client has spoken.
  virtual void prepareFirstStep(const std::function<bool()>& idle) { (void)idle; }

  // A reward's running state (RewardState.previous), which the worker's state
  // cache (forkserver/cached_session.h) reads to key a cached reward and sets
  // when it answers one from the cache, exactly as computing it would have.
  // Default: no rewards, nothing to set (false).
  virtual std::optional<double> rewardPrevious(size_t) const { return std::nullopt; }
  virtual bool setRewardPrevious(size_t, std::optional<double>) { return false; }

  // The object file of the program to run: the state's, the benchmark's as
  // loaded, or the state's instrumented by AddressSanitizer. Default: an
  // InvalidRequest saying this backend builds no programs.
  virtual Result<std::string> programObject(RunProgram program);

  // Worker, before its sandbox: the episode's run configuration (none: the
  // benchmark does not run).
  void attachRunConfig(std::optional<RunConfig> config) { runConfig_ = std::move(config); }
  const std::optional<RunConfig>& runConfig() const { return runConfig_; }
  // Request.run: builds the program asked for and runs it (runner.h).
  // InvalidRequest without a run configuration.
  Result<RunResult> run(const RunRequest& request);
  // The measured runs of `program` on the first input set:
  // runtimeObservationCount() of them after runtimeWarmupRuns() warm-ups
  // (CompilerGym's Runtime). Errors, all leaving the episode going: no run
  // configuration (naming `what`), BuildFailed, and BenchmarkError for the
  // first run that did not exit (a crashing program is the program's
  // outcome, not the worker's).
  Result<RunResult> measuredRuns(RunProgram program, std::string_view what);

  // CompilerGym's runtime session parameters: how many measured runs a
  // Runtime observation takes, after how many unmeasured ones.
  uint32_t runtimeObservationCount() const { return runtimeObservationCount_; }
  uint32_t runtimeWarmupRuns() const { return runtimeWarmupRuns_; }
  // The keys below, or nullopt when `key` is none of them (the backend's
  // own keys then).
  std::optional<Result<std::string>> setRunParameter(std::string_view key, std::string_view value);
  static constexpr std::string_view kRuntimeObservationCount = "runtime_observation_count";
  static constexpr std::string_view kRuntimeWarmupRunsCount = "runtime_warmup_runs_count";

 private:
  std::optional<RunConfig> runConfig_;
  uint32_t runtimeObservationCount_ = 1;
  uint32_t runtimeWarmupRuns_ = 0;
};

// The error setParameter() gives for a key its backend does not have.
Error unknownParameter(std::string_view backend, std::string_view key, std::span<const std::string_view> accepted);

// A session whose observations and rewards are its backend's tables: the
// dispatch every backend shares. Derived must provide
//   static std::span<const ObservationRow<Derived>> observationRows();
//   static std::span<const RewardRow<Derived>> rewardRows();
template <typename Derived>
class TableSession : public Session {
 public:
  TableSession() : rewardStates_(Derived::rewardRows().size()) {}

  Result<ObservationValue> observe(size_t index) override {
    const auto rows = Derived::observationRows();
    if (index >= rows.size()) return outOfRange("observation", index, rows.size());
    return rows[index].compute(static_cast<Derived&>(*this));
  }
  Result<double> reward(size_t index) override {
    const auto rows = Derived::rewardRows();
    if (index >= rows.size()) return outOfRange("reward", index, rows.size());
    return rows[index].compute(static_cast<Derived&>(*this), rewardStates_[index]);
  }

  std::optional<double> rewardPrevious(size_t index) const override {
    return index < rewardStates_.size() ? rewardStates_[index].previous : std::nullopt;
  }
  bool setRewardPrevious(size_t index, std::optional<double> previous) override {
    if (index >= rewardStates_.size()) return false;
    rewardStates_[index].previous = previous;
    return true;
  }

  // By name (for tests and tools; the worker looks names up once).
  Result<ObservationValue> observe(std::string_view name) {
    for (size_t i = 0; i < Derived::observationRows().size(); ++i) {
      if (Derived::observationRows()[i].space.name == name) return observe(i);
    }
    return unknownName("observation", name);
  }
  Result<double> reward(std::string_view name) {
    for (size_t i = 0; i < Derived::rewardRows().size(); ++i) {
      if (Derived::rewardRows()[i].space.name == name) return reward(i);
    }
    return unknownName("reward", name);
  }

 private:
  static Error outOfRange(std::string_view kind, size_t index, size_t size) {
    return makeError(Outcome::InvalidRequest, std::string(kind) + " " + std::to_string(index) +
                                                  " is not in the table (it has " + std::to_string(size) + ")");
  }
  static Error unknownName(std::string_view kind, std::string_view name) {
    return makeError(Outcome::InvalidRequest, "unknown " + std::string(kind) + " space '" + std::string(name) +
                                                  "'; the backend's description lists the names");
  }

  std::vector<RewardState> rewardStates_;
};

// A table session's spaces, in row order, built once (a backend record's
// observationSpaces/rewardSpaces).
template <typename Derived>
std::span<const Space> observationSpacesOf() {
  static const std::vector<Space> spaces = spacesOf(Derived::observationRows());
  return spaces;
}
template <typename Derived>
std::span<const Space> rewardSpacesOf() {
  static const std::vector<Space> spaces = spacesOf(Derived::rewardRows());
  return spaces;
}

}  // namespace forkgym::passes
