// forkgym::Env — one episode of one backend (LLVM phase ordering by
// default), driven from C++.
//
// Lifecycle (client process, any thread):
//   1. Env(connection, options): no worker yet.
//   2. reset(benchmark): asks the zygote for a fresh worker of the options'
//      backend, forked from the cached benchmark (the previous worker, if
//      any, is closed first).
//   3. step(actions, observations, rewards): one round trip through shared
//      memory; the worker applies the actions and answers everything asked.
//      observe() is a step without actions.
//   4. fork(): the worker clones itself; the returned Env owns the copy once
//      the client has checked the copy's pidfd names the worker's own clone.
//   5. close() (or destruction): closing the channel ends the worker.
// Every call returns a typed outcome. A crash, timeout, memory blow-up or
// sandbox violation ends only this episode: the StepResult says which, with
// a reproducer, and reset() starts a new one at once.
//
// Threads: every public function may be called from any thread; calls on
// one Env are serialised by its mutex (steps of different Envs run in
// parallel). beginStep() and finishStep() are separate calls: between them
// only finishStep() may be called; other calls that need the channel fail.
// fork() of the client process: in the child, an Env's episode belongs to
// the parent. The child forgets it (closes its copies of the channel, never
// signals the worker); step() then says whose episode it was, and reset()
// starts one of the child's own.
// Interruption: step()/finishStep() take an optional Interruption, asked
// while a slow step is waited for; when it says stop, the worker is killed
// and the StepResult's outcome is Interrupted, with the reproducer.
// Many episodes at once (a vector environment): beginStep() on each, then
// waitForSteps() until some can finish without waiting, finishStep() on
// those, beginStep() on them again: the workers never wait for the slowest.
// A step's timeout runs from its beginStep().
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "client/connection.h"
#include "client/fork_watch.h"
#include "ipc/channel.h"
#include "base/outcome.h"
#include "base/result.h"

namespace forkgym {

struct NamedCount {
  std::string name;
  int64_t count = 0;
  bool operator==(const NamedCount&) const = default;
};

// In ValueType's order (client/connection.h).
using Observation = std::variant<int64_t, std::vector<int64_t>, std::string, std::vector<uint8_t>, bool, double,
                                 std::vector<double>, std::vector<NamedCount>>;

struct Reproducer {
  std::string benchmark;
  // What the benchmark's content was (the server's hex content hash): a
  // replay on other content is not this episode.
  std::string benchmarkHash;
  std::vector<uint32_t> actions;
  // The backend's replay command line (LLVM: <the server's opt, absolute
  // path> -passes='...'), from the description's ReplayCommand.
  std::string commandline;
};

// One frame of a crashed worker's stack as its crash reporter recorded it:
// a file virtual address in a module (symbolise with llvm-symbolizer --obj).
struct StackFrame {
  std::string module;  // the module's path in the worker (the server's executable or a library)
  uint64_t offset = 0;
  bool exact = false;  // the faulting instruction itself rather than a return address
};

struct StepResult {
  Outcome outcome = Outcome::Ok;
  std::string message;
  int signal = 0;
  std::vector<StackFrame> stack;  // a crash's stack, innermost first (empty if none was recorded)
  std::vector<Observation> observations;
  std::vector<double> rewards;
  bool actionHadNoEffect = false;
  Reproducer reproducer;  // filled when the outcome ends the episode

  bool ok() const { return outcome == Outcome::Ok; }
};

struct EnvOptions {
  std::string backend = kDefaultBackend;  // one of the server's (ServerInfo::backends)
  std::chrono::milliseconds stepTimeout{300'000};   // wall clock per step; the worker is killed after it
  std::chrono::milliseconds resetTimeout{300'000};  // includes compiling an uncached benchmark
  Limits limits;
};

class Env {
 public:
  Env(std::shared_ptr<Connection> connection, EnvOptions options = {});
  Env(Env&&) noexcept;
  Env& operator=(Env&&) noexcept;
  ~Env();

  // runConfig: how to build and run the benchmark's program (make_benchmark's
  // keywords, a Benchmark object's); null: the server attaches its
  // dataset's, if it has one. The worker keeps it; fork() copies carry it.
  Status reset(const std::string& benchmark, const RunConfig* runConfig = nullptr);
  StepResult step(std::span<const uint32_t> actions, std::span<const std::string> observations = {},
                  std::span<const std::string> rewards = {}, const Interruption* interruption = nullptr);
  StepResult observe(std::span<const std::string> observations) { return step({}, observations, {}); }
  // step() in two halves: post the request, then collect the reply. Lets a
  // vector environment post to every worker before waiting for any.
  Status beginStep(std::span<const uint32_t> actions, std::span<const std::string> observations = {},
                   std::span<const std::string> rewards = {});
  StepResult finishStep(const Interruption* interruption = nullptr);
  // The step posted with beginStep(), for waitForSteps(): the descriptor
  // that becomes readable once its reply is there or its worker died (-1
  // without a posted step), and when it times out.
  struct PostedStep {
    int fd = -1;
    std::chrono::steady_clock::time_point deadline;
  };
  PostedStep postedStep();
  Result<Env> fork();
  // A backend setting (CompilerGym's send_param, e.g. gcc's choices): the
  // session's answer, or InvalidRequest naming the keys the backend accepts.
  Result<std::string> setParameter(const std::string& key, const std::string& value);
  // What stepping each of `actions` alone from this state would return for
  // reward space `reward`, for the actions the node-wide state cache holds
  // (unknown elsewhere, and everywhere on a server without the cache).
  // Changes nothing: no pass runs, the episode stays where it is.
  struct Peeked {
    bool known = false;
    double reward = 0;
    bool actionHadNoEffect = false;
  };
  Result<std::vector<Peeked>> peek(const std::vector<uint32_t>& actions, const std::string& reward);
  // Builds the episode's program (the current state, the original
  // benchmark, or an ASan build of the state) and runs it as asked: one
  // ProgramRun per measured run. InvalidRequest when the benchmark has no
  // run configuration; a failed build is a RunResult saying so (the
  // episode goes on).
  Result<RunResult> run(const RunRequest& request);
  void close();

  bool alive() const { return running_.load(std::memory_order_acquire); }
  // True once the worker has started on the step last posted (it bumps a
  // counter in the region): a test waits on this, not on a sleep. Callable
  // from any thread, also while another one waits in that step.
  bool requestStarted() const;
  // How many requests of this episode the worker has started (its counter
  // in the region; 0 without an episode): a test that must act once a step
  // is under way reads it before posting and waits for it to grow.
  uint64_t requestsStarted() const;
  pid_t workerPid() const { return pid_.load(std::memory_order_relaxed); }
  // In a fork() child: the pid of the process whose episode this Env held
  // when the child was made (0 otherwise, and after the child's reset()).
  pid_t inheritedFrom() const { return inheritedFrom_.load(std::memory_order_relaxed); }
  std::string benchmark() const;
  // The content hash of this episode's benchmark, as the server loaded it
  // at reset() (file bytes, preprocessed sources and compile options, or a
  // generator's output): states and reproducers record it.
  std::string benchmarkHash() const;
  std::vector<uint32_t> actions() const;
  Reproducer reproducer() const;
  Connection& connection() { return *connection_; }
  const std::shared_ptr<Connection>& sharedConnection() const { return connection_; }
  EnvOptions options() const;
  void setStepTimeout(std::chrono::milliseconds timeout);

 private:
  static void forgetInChild(void* self, pid_t parentPid) noexcept;
  // The *Locked functions require mutex_.
  void closeLocked();
  // The move constructor's and move assignment's shared part.
  void takeStateFrom(Env& other);
  void setChannelLocked(Channel channel);
  StepResult stepLocked(std::span<const uint32_t> actions, std::span<const std::string> observations,
                        std::span<const std::string> rewards, const Interruption* interruption);
  Status beginStepLocked(std::span<const uint32_t> actions, std::span<const std::string> observations,
                         std::span<const std::string> rewards);
  StepResult finishStepLocked(const Interruption* interruption);
  Status requireEpisodeLocked(const char* what) const;
  Reproducer reproducerLocked() const;
  // Keeps a reply's Reply.stateCommandLine (if it has one) for reproducers.
  template <typename ReplyReader>
  void noteStateLocked(ReplyReader reply) {
    if (description_ && description_->replay.fromState && reply.hasStateCommandLine()) {
      stateCommandLine_ = reply.getStateCommandLine();
    }
  }
  // Turns a dead or unresponsive worker into the StepResult that says why.
  StepResult endEpisodeLocked(Error error);
  void killWorkerLocked();
  // The error for a reply that failed; one that broke the protocol also
  // ends the episode (the worker is killed, the channel closed).
  Error failedReplyLocked(StepResult failed);
  // How long the next request may take: the step timeout, once more for
  // each action the worker deferred (it applies them first).
  std::chrono::milliseconds timeoutLocked() const;
  // One request other than a step on a running, idle episode, whose reply is
  // a failure or `name`'s answer: setParameter(), run() and peek(). `build`
  // fills the request; `read` takes the answer from a reply that is not a
  // failure (false: it is not `name`'s answer), or says in `failed` (a
  // ProtocolMismatch) what is wrong with it. `purpose` completes "no episode
  // ..." and `doing` heads the message when the worker never answered.
  template <typename Answer, typename Build, typename Read>
  Result<Answer> requestLocked(const char* name, const char* purpose, const std::string& doing, Build build,
                               Read read);

  std::shared_ptr<Connection> connection_;
  EnvOptions options_;
  mutable std::mutex mutex_;
  // Held (besides mutex_) to replace channel_, so requestStarted() can read
  // the region while a step holds mutex_.
  mutable std::mutex channelMutex_;
  Channel channel_;
  std::atomic<uint64_t> postedSeq_{0};  // the number of the request last posted
  UniqueFd pidfd_;
  std::atomic<bool> running_{false};  // channel_ is attached
  std::atomic<pid_t> pid_{-1};
  std::atomic<pid_t> inheritedFrom_{0};
  pid_t group_ = -1;  // the worker's process group: its verified forks belong to it
  pid_t parent_ = -1;  // the worker's parent when it was verified (the zygote): its forks' too
  bool stepPending_ = false;  // beginStep() posted, finishStep() not yet called
  std::chrono::steady_clock::time_point pendingDeadline_;  // when the posted step times out
  std::string benchmark_;
  std::string benchmarkHash_;
  std::vector<uint32_t> actions_;
  // StepResult.actionsDeferred as the worker last said (at most actions_'s
  // length): the next request's time limit is one step's per deferred action
  // more (deadlineLocked()).
  uint32_t deferred_ = 0;
  // The worker's line for its state as of its last reply, unchecked
  // (Reply.stateCommandLine); empty before any. Only for a backend whose
  // ReplayCommand.fromState.
  std::string stateCommandLine_;
  std::vector<uint32_t> pendingActions_;  // posted by beginStep(), not yet answered
  // The shape the posted step's reply must have (finishStep() checks it).
  std::vector<const SpaceDescription*> pendingSpaces_;  // point into description_
  size_t pendingRewards_ = 0;
  // Fetched at reset(): steps and reproducers never wait for the connection.
  std::shared_ptr<const Description> description_;
  ForkWatch forkWatch_;  // last: unregisters before the rest is destroyed
};

// Waits until at least `atLeast` of `envs` (each with a step posted by
// beginStep()) can finish without waiting — the reply came, the worker died,
// or the step's timeout passed — and returns the indices of every env ready
// by then, in order. The caller then calls finishStep() on those. Between
// the two, no other thread may finish, close or re-post these envs (a
// vector environment serialises its calls). Errors: InvalidRequest when an
// env has no posted step; Interrupted when `interruption` asked to stop
// (checked every slice while nothing is ready).
Result<std::vector<size_t>> waitForSteps(std::span<Env* const> envs, size_t atLeast,
                                         const Interruption* interruption = nullptr);

}  // namespace forkgym
