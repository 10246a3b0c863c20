#include "client/env.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <optional>
#include <thread>

#include "client/process_identity.h"
#include "client/program_graph.h"
#include "ipc/protocol.capnp.h"
#include "base/syscall.h"

namespace forkgym {
namespace {

// The worker wrote this stack, so it may say anything: counts and indices
// are bounded, strings by their buffers, and the fields are copied once
// (the worker may still be scribbling).
std::vector<StackFrame> crashStackOf(const CrashStack& stack) {
  std::vector<StackFrame> frames;
  const uint32_t moduleCount = std::min(stack.moduleCount, kCrashStackModules);
  std::string modules[kCrashStackModules];
  for (uint32_t i = 0; i < moduleCount; ++i) {
    modules[i].assign(stack.modules[i], strnlen(stack.modules[i], kCrashStackModulePath));
  }
  const uint32_t frameCount = std::min(stack.frameCount, kCrashStackFrames);
  for (uint32_t i = 0; i < frameCount; ++i) {
    const CrashFrame frame = stack.frames[i];
    if (frame.module >= moduleCount) continue;
    frames.push_back({modules[frame.module], frame.offset, frame.exact != 0});
  }
  return frames;
}

Observation toObservation(proto::ObservationValue::Reader value) {
  switch (value.which()) {
    case proto::ObservationValue::INT64:
      return value.getInt64();
    case proto::ObservationValue::INT64_LIST: {
      auto list = value.getInt64List();
      std::vector<int64_t> out(list.size());
      for (unsigned i = 0; i < list.size(); ++i) out[i] = list[i];
      return out;
    }
    case proto::ObservationValue::TEXT: {
      auto text = value.getText();
      return std::string(text.cStr(), text.size());
    }
    case proto::ObservationValue::BYTES: {
      auto bytes = value.getBytes();
      return std::vector<uint8_t>(bytes.begin(), bytes.end());
    }
    case proto::ObservationValue::BOOLEAN:
      return value.getBoolean();
    case proto::ObservationValue::FLOAT64:
      return value.getFloat64();
    case proto::ObservationValue::FLOAT64_LIST: {
      auto list = value.getFloat64List();
      std::vector<double> out(list.size());
      for (unsigned i = 0; i < list.size(); ++i) out[i] = list[i];
      return out;
    }
    case proto::ObservationValue::INT64_MAP: {
      std::vector<NamedCount> out;
      for (auto entry : value.getInt64Map()) out.push_back({entry.getName(), entry.getCount()});
      return out;
    }
  }
  return int64_t{0};
}

// What a worker's last words may claim killed it.
bool isWayToDie(Outcome outcome) {
  return endsEpisode(outcome) && outcome != Outcome::SessionClosed && outcome != Outcome::ServerError;
}

// A failure reply must name a real way for a request to fail: a worker that
// answers "failed: ok" (or a value no build defines) broke the protocol.
void readFailure(proto::Failure::Reader failure, StepResult& result) {
  const uint16_t wire = failure.getOutcome();
  if (!isWireOutcome(wire) || outcomeFromWire(wire) == Outcome::Ok) {
    result.outcome = Outcome::ProtocolMismatch;
    result.message = "the worker sent a failure with outcome " + std::to_string(wire) + ", which names no failure";
    return;
  }
  result.outcome = outcomeFromWire(wire);
  result.message = failure.getMessage();
  result.signal = failure.getSignal();
}

// Checks a step reply against what was asked: one value of the described
// type (and length, for fixed-length lists) per observation, one number per
// reward. Returns what is wrong, or nothing.
std::optional<std::string> shapeMismatch(const StepResult& result, const std::vector<const SpaceDescription*>& asked,
                                         size_t rewards) {
  if (result.observations.size() != asked.size()) {
    return "the worker answered " + std::to_string(result.observations.size()) + " observation(s) for " +
           std::to_string(asked.size()) + " asked";
  }
  if (result.rewards.size() != rewards) {
    return "the worker answered " + std::to_string(result.rewards.size()) + " reward(s) for " +
           std::to_string(rewards) + " asked";
  }
  for (size_t i = 0; i < asked.size(); ++i) {
    const SpaceDescription* space = asked[i];
    if (!space) continue;  // not in the description: the worker refuses such names itself
    // Observation's alternatives are in ValueType's order.
    if (result.observations[i].index() != static_cast<size_t>(space->valueType)) {
      return "the worker answered observation '" + space->name + "' with a value of the wrong type";
    }
    const int64_t length = space->length();
    size_t got = 0;
    if (const auto* ints = std::get_if<std::vector<int64_t>>(&result.observations[i])) got = ints->size();
    if (const auto* reals = std::get_if<std::vector<double>>(&result.observations[i])) got = reals->size();
    const bool list = space->valueType == ValueType::Int64List || space->valueType == ValueType::Float64List;
    if (list && length > 0 && got != static_cast<size_t>(length)) {
      return "the worker answered observation '" + space->name + "' with " + std::to_string(got) + " values, not " +
             std::to_string(length);
    }
    // A program graph is bytes of the right type whatever they hold: read
    // here, so a graph with holes ends the episode as any broken reply does.
    if (space->form == "programGraph" || space->form == "programGraphNodeLink") {
      const auto& bytes = std::get<std::vector<uint8_t>>(result.observations[i]);
      if (auto graph = checkProgramGraph(bytes); !graph.ok()) {
        return "the worker answered observation '" + space->name + "' with " + graph.error().message;
      }
    }
  }
  return std::nullopt;
}

std::string descriptorLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return "unknown";
  return std::to_string(limit.rlim_cur);
}

Error outOfDescriptors(const std::string& what) {
  return makeError(Outcome::ResourceExhausted,
                   what + ": this process is at its file-descriptor limit (RLIMIT_NOFILE soft limit " +
                       descriptorLimit() + "); close descriptors (or envs) or raise the limit (ulimit -n). "
                       "This episode continues");
}

}  // namespace

Env::Env(std::shared_ptr<Connection> connection, EnvOptions options)
    : connection_(std::move(connection)), options_(options), forkWatch_(this, &Env::forgetInChild) {}

Env::Env(Env&& other) noexcept : forkWatch_(this, &Env::forgetInChild) {
  std::scoped_lock lock(other.mutex_, other.channelMutex_);
  takeStateFrom(other);
}

Env& Env::operator=(Env&& other) noexcept {
  if (this == &other) return *this;
  std::scoped_lock lock(mutex_, other.mutex_);
  closeLocked();
  std::scoped_lock channels(channelMutex_, other.channelMutex_);
  takeStateFrom(other);
  return *this;
}

Env::~Env() { close(); }

// Both moves: the caller holds both Envs' locks.
void Env::takeStateFrom(Env& other) {
  connection_ = other.connection_;
  options_ = other.options_;
  channel_ = std::move(other.channel_);
  postedSeq_.store(other.postedSeq_.exchange(0));
  pidfd_ = std::move(other.pidfd_);
  running_.store(other.running_.exchange(false));
  pid_.store(other.pid_.exchange(-1));
  inheritedFrom_.store(other.inheritedFrom_.exchange(0));
  group_ = std::exchange(other.group_, -1);
  parent_ = std::exchange(other.parent_, -1);
  stepPending_ = std::exchange(other.stepPending_, false);
  benchmark_ = std::move(other.benchmark_);
  benchmarkHash_ = std::move(other.benchmarkHash_);
  actions_ = std::move(other.actions_);
  deferred_ = std::exchange(other.deferred_, 0);
  stateCommandLine_ = std::move(other.stateCommandLine_);
  pendingActions_ = std::move(other.pendingActions_);
  pendingSpaces_ = std::move(other.pendingSpaces_);
  pendingRewards_ = other.pendingRewards_;
  description_ = std::move(other.description_);
}

void Env::forgetInChild(void* self, pid_t parentPid) noexcept {
  auto* env = static_cast<Env*>(self);
  // A parent thread may have held the mutex at fork(); it does not exist here.
  new (&env->mutex_) std::mutex();
  new (&env->channelMutex_) std::mutex();
  if (env->running_.load(std::memory_order_relaxed)) env->inheritedFrom_.store(parentPid, std::memory_order_relaxed);
  // Our copies of the channel close (the parent's stay open: its worker
  // never hears from this process); the worker is the parent's to end.
  env->channel_ = Channel();
  env->pidfd_.reset();
  env->running_.store(false, std::memory_order_relaxed);
  env->pid_.store(-1, std::memory_order_relaxed);
  env->stepPending_ = false;
}

void Env::close() {
  std::lock_guard lock(mutex_);
  closeLocked();
}

void Env::setChannelLocked(Channel channel) {
  std::lock_guard lock(channelMutex_);
  channel_ = std::move(channel);
  postedSeq_.store(0, std::memory_order_relaxed);
}

bool Env::requestStarted() const {
  std::lock_guard lock(channelMutex_);
  const uint64_t posted = postedSeq_.load(std::memory_order_acquire);
  return posted != 0 && channel_.valid() &&
         channel_.region().header().startedSeq.load(std::memory_order_acquire) == posted;
}

uint64_t Env::requestsStarted() const {
  std::lock_guard lock(channelMutex_);
  return channel_.valid() ? channel_.region().header().startedSeq.load(std::memory_order_acquire) : 0;
}

void Env::closeLocked() {
  // Closing our doorbell end is what tells the worker to exit.
  setChannelLocked(Channel());
  pidfd_.reset();
  running_.store(false, std::memory_order_release);
  pid_.store(-1, std::memory_order_relaxed);
  group_ = -1;
  parent_ = -1;
  stepPending_ = false;
}

void Env::killWorkerLocked() {
  if (pidfd_) syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0);
}

std::string Env::benchmark() const {
  std::lock_guard lock(mutex_);
  return benchmark_;
}

std::string Env::benchmarkHash() const {
  std::lock_guard lock(mutex_);
  return benchmarkHash_;
}

std::vector<uint32_t> Env::actions() const {
  std::lock_guard lock(mutex_);
  return actions_;
}

EnvOptions Env::options() const {
  std::lock_guard lock(mutex_);
  return options_;
}

void Env::setStepTimeout(std::chrono::milliseconds timeout) {
  std::lock_guard lock(mutex_);
  options_.stepTimeout = timeout;
}

Status Env::requireEpisodeLocked(const char* what) const {
  if (running_.load(std::memory_order_relaxed)) return okStatus();
  if (const pid_t owner = inheritedFrom_.load(std::memory_order_relaxed)) {
    return makeError(Outcome::SessionClosed,
                     "this episode belongs to process " + std::to_string(owner) + "; this process (" +
                         std::to_string(currentPid()) + ") was fork()ed from it and cannot use its worker. "
                         "Call reset() to start an episode in this process");
  }
  return makeError(Outcome::SessionClosed, std::string("no episode ") + what + "; call reset() first");
}

Status Env::reset(const std::string& benchmark, const RunConfig* runConfig) {
  std::lock_guard lock(mutex_);
  // The previous episode is let go while the zygote hands over the next
  // worker: unmapping its region and closing its descriptors (which ends
  // its worker) overlap with the round trip instead of preceding it.
  Channel previousChannel;
  {
    std::lock_guard channelLock(channelMutex_);
    previousChannel = std::move(channel_);
  }
  UniqueFd previousPidfd = std::move(pidfd_);
  const auto letPreviousGo = [&] {
    previousChannel = Channel();
    previousPidfd.reset();
  };
  closeLocked();
  actions_.clear();
  deferred_ = 0;
  stateCommandLine_.clear();
  pendingActions_.clear();
  inheritedFrom_.store(0, std::memory_order_relaxed);
  auto ends = connection_->newSession(benchmark, options_.limits, options_.resetTimeout, options_.backend,
                                     letPreviousGo, runConfig);
  if (!ends && !connection_->alive()) {
    // The zygote died. Running episodes carry on without it (workers need
    // only their channels); this reset gets a new zygote, once.
    if (auto renewed = connection_->reviveIfDead(); !renewed) {
      return makeError(Outcome::ServerError, "the forkgym server died and could not be replaced: " +
                                                 renewed.error().message);
    }
    ends = connection_->newSession(benchmark, options_.limits, options_.resetTimeout, options_.backend, {},
                                   runConfig);
  }
  if (!ends) return ends.takeError();
  // What steps check replies against and reproducers name, fetched once
  // per episode so that steps never wait for the connection.
  if (auto description = connection_->describe(options_.backend)) description_ = *description;
  auto channel = Channel::attach(std::move(ends->channel));
  if (!channel) return channel.takeError();
  setChannelLocked(std::move(*channel));
  pidfd_ = std::move(ends->pidfd);
  pid_.store(ends->pid, std::memory_order_relaxed);
  group_ = ends->group;
  parent_ = ends->zygotePid;
  benchmark_ = ends->benchmark;
  benchmarkHash_ = ends->benchmarkHash;
  running_.store(true, std::memory_order_release);
  return okStatus();
}

Reproducer Env::reproducer() const {
  std::lock_guard lock(mutex_);
  return reproducerLocked();
}

Reproducer Env::reproducerLocked() const {
  Reproducer reproducer{benchmark_, benchmarkHash_, actions_, {}};
  // The backend's own replay (for LLVM the server's opt, by absolute path:
  // another LLVM's opt on PATH would misread this bitcode).
  if (!description_) return reproducer;
  if (!description_->replay.fromState || stateCommandLine_.empty()) {
    // Before any reply the state is the reset state, which no action wrote.
    reproducer.commandline = description_->commandLine(description_->replay.fromState ? std::span<const uint32_t>()
                                                                                      : std::span(actions_));
    return reproducer;
  }
  // The state as of the worker's last reply (the actions may also name a
  // step that never answered). Checked only here: steps pay nothing for it.
  if (auto checked = description_->checkStateCommandLine(stateCommandLine_); !checked) {
    // A comment: pasted into a shell it runs nothing, and says why.
    reproducer.commandline = "# no command line: " + checked.error().message;
    return reproducer;
  }
  reproducer.commandline = stateCommandLine_;
  return reproducer;
}

StepResult Env::endEpisodeLocked(Error error) {
  StepResult result;
  result.outcome = error.outcome;
  result.message = std::move(error.message);
  result.signal = error.signal;
  if (error.outcome == Outcome::SessionClosed) {
    // The worker died. Its crash reporter usually left last words; if not
    // (SIGKILL, or death before the reporter was set up) ask the zygote.
    const LastWords& words = channel_.lastWords();
    if (words.written.load(std::memory_order_acquire)) {
      // The worker wrote these, so they may say anything; they are read
      // once (the worker may still be scribbling) and must name a way to die.
      const uint16_t outcome = words.outcome;
      result.outcome = isWireOutcome(outcome) && isWayToDie(outcomeFromWire(outcome)) ? outcomeFromWire(outcome)
                                                                                       : Outcome::Crashed;
      result.signal = words.signal;
      result.message.assign(words.message, strnlen(words.message, sizeof(words.message)));
      result.stack = crashStackOf(channel_.region().header().crashStack);
      if (result.outcome != outcomeFromWire(outcome)) {
        result.message = "the worker died; its last words named outcome " + std::to_string(outcome) +
                         ", which is not a way to die: " + result.message;
      }
    } else {
      result.outcome = Outcome::Crashed;
      result.message = "the worker died without a report";
      const pid_t pid = pid_.load(std::memory_order_relaxed);
      for (int attempt = 0; attempt < 50; ++attempt) {
        auto exit = connection_->workerExit(pid);
        if (!exit || exit->known) {
          if (exit && exit->signal) {
            result.signal = exit->signal;
            result.message = std::string("the worker was killed by SIG") + (sigabbrev_np(exit->signal) ?: "?");
          } else if (exit) {
            result.outcome = exit->explanation.empty() ? Outcome::Crashed : Outcome::SetupFailed;
            result.message = "the worker exited with code " + std::to_string(exit->exitCode) +
                             (exit->explanation.empty() ? "" : ": " + exit->explanation);
          }
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    }
  } else if (error.outcome == Outcome::TimedOut) {
    result.message = "the step took longer than " + std::to_string(timeoutLocked().count()) + " ms" +
                     (deferred_ ? " (" + std::to_string(options_.stepTimeout.count()) + " ms, once more for each of the " +
                                      std::to_string(deferred_) + " actions answered from the state cache it applied first)"
                                : std::string()) +
                     "; the worker was killed";
  } else if (error.outcome == Outcome::Interrupted) {
    result.message = "the step was interrupted; the worker was killed";
  }
  result.reproducer = reproducerLocked();
  // A worker whose channel closed may still be running (it dropped the
  // channel, or its last words were a lie): make sure the episode is over.
  killWorkerLocked();
  closeLocked();
  return result;
}

StepResult Env::step(std::span<const uint32_t> actions, std::span<const std::string> observations,
                     std::span<const std::string> rewards, const Interruption* interruption) {
  std::lock_guard lock(mutex_);
  return stepLocked(actions, observations, rewards, interruption);
}

StepResult Env::stepLocked(std::span<const uint32_t> actions, std::span<const std::string> observations,
                           std::span<const std::string> rewards, const Interruption* interruption) {
  if (auto posted = beginStepLocked(actions, observations, rewards); !posted) {
    StepResult result;
    result.outcome = posted.error().outcome;
    result.message = posted.error().message;
    if (running_.load(std::memory_order_relaxed) && endsEpisode(result.outcome)) {
      return endEpisodeLocked(posted.takeError());
    }
    return result;
  }
  return finishStepLocked(interruption);
}

Status Env::beginStep(std::span<const uint32_t> actions, std::span<const std::string> observations,
                      std::span<const std::string> rewards) {
  std::lock_guard lock(mutex_);
  return beginStepLocked(actions, observations, rewards);
}

Status Env::beginStepLocked(std::span<const uint32_t> actions, std::span<const std::string> observations,
                            std::span<const std::string> rewards) {
  if (auto running = requireEpisodeLocked("is running"); !running) return running;
  if (stepPending_) {
    return makeError(Outcome::InvalidRequest,
                     "a step posted with beginStep() is still waiting for finishStep(); one step at a time per env");
  }
  capnp::MallocMessageBuilder request;
  auto step = request.initRoot<proto::Request>().initStep();
  auto actionList = step.initActions(static_cast<unsigned>(actions.size()));
  for (size_t i = 0; i < actions.size(); ++i) actionList.set(static_cast<unsigned>(i), actions[i]);
  auto observationList = step.initObservations(static_cast<unsigned>(observations.size()));
  for (size_t i = 0; i < observations.size(); ++i) observationList.set(static_cast<unsigned>(i), observations[i]);
  auto rewardList = step.initRewards(static_cast<unsigned>(rewards.size()));
  for (size_t i = 0; i < rewards.size(); ++i) rewardList.set(static_cast<unsigned>(i), rewards[i]);
  pendingActions_.assign(actions.begin(), actions.end());
  // What the reply must look like (checked by finishStep()), from the
  // description this episode started with: no lock shared with other envs.
  pendingSpaces_.clear();
  pendingRewards_ = rewards.size();
  for (const auto& name : observations) {
    pendingSpaces_.push_back(description_ ? description_->findObservation(name) : nullptr);
  }
  auto posted = channel_.post(request);
  stepPending_ = posted.ok();
  pendingDeadline_ = std::chrono::steady_clock::now() + timeoutLocked();
  if (posted) {
    postedSeq_.store(channel_.region().header().requestSeq.load(std::memory_order_relaxed), std::memory_order_release);
  }
  return posted;
}

StepResult Env::finishStep(const Interruption* interruption) {
  std::lock_guard lock(mutex_);
  return finishStepLocked(interruption);
}

StepResult Env::finishStepLocked(const Interruption* interruption) {
  if (!stepPending_) {
    StepResult result;
    auto running = requireEpisodeLocked("is running");
    result.outcome = running ? Outcome::InvalidRequest : running.error().outcome;
    result.message = running ? "no step was posted; call beginStep() first" : running.error().message;
    return result;
  }
  stepPending_ = false;
  // The timeout runs from the post: a vector environment may collect a
  // step long after posting it.
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(pendingDeadline_ - std::chrono::steady_clock::now());
  auto reply = channel_.collect(std::max(left, std::chrono::milliseconds(0)), 0, interruption);
  if (!reply) {
    // The actions were posted: they belong in the reproducer.
    actions_.insert(actions_.end(), pendingActions_.begin(), pendingActions_.end());
    if (reply.error().outcome != Outcome::SessionClosed) killWorkerLocked();
    return endEpisodeLocked(reply.takeError());
  }

  StepResult result;
  kj::Maybe<kj::Exception> exception = kj::runCatchingExceptions([&] {
    auto root = reply->reader->getRoot<proto::Reply>();
    noteStateLocked(root);
    if (root.isFailure()) {
      readFailure(root.getFailure(), result);
      return;
    }
    if (!root.isStep()) {
      result.outcome = Outcome::ProtocolMismatch;
      result.message = "the worker answered a step with something else";
      return;
    }
    auto stepResult = root.getStep();
    result.actionHadNoEffect = stepResult.getActionHadNoEffect();
    // Bounded by what the episode has stepped: a worker cannot buy itself time.
    deferred_ = static_cast<uint32_t>(std::min<uint64_t>(stepResult.getActionsDeferred(),
                                                         actions_.size() + pendingActions_.size()));
    for (auto value : stepResult.getObservations()) result.observations.push_back(toObservation(value));
    for (double reward : stepResult.getRewards()) result.rewards.push_back(reward);
  });
  KJ_IF_MAYBE(e, exception) {
    result = StepResult();
    result.outcome = Outcome::ProtocolMismatch;
    result.message = std::string("malformed reply from the worker: ") + e->getDescription().cStr();
  }
  if (result.ok()) {
    if (auto wrong = shapeMismatch(result, pendingSpaces_, pendingRewards_)) {
      result = StepResult{};
      result.outcome = Outcome::ProtocolMismatch;
      result.message = *wrong;
    }
  }
  if (result.ok()) {
    actions_.insert(actions_.end(), pendingActions_.begin(), pendingActions_.end());
  } else if (endsEpisode(result.outcome) || result.outcome == Outcome::ProtocolMismatch) {
    // e.g. a verifier failure: the worker answered, then exited. A reply
    // that breaks the protocol ends the episode too: the worker can no
    // longer be trusted with it.
    if (result.outcome == Outcome::ProtocolMismatch) result.message += "; the episode was ended";
    actions_.insert(actions_.end(), pendingActions_.begin(), pendingActions_.end());
    result.reproducer = reproducerLocked();
    killWorkerLocked();
    closeLocked();
  }
  pendingActions_.clear();
  return result;
}

template <typename Answer, typename Build, typename Read>
Result<Answer> Env::requestLocked(const char* name, const char* purpose, const std::string& doing, Build build,
                                  Read read) {
  if (auto running = requireEpisodeLocked(purpose); !running) return running.takeError();
  if (stepPending_) {
    return makeError(Outcome::InvalidRequest, "a step posted with beginStep() is still waiting for finishStep()");
  }
  capnp::MallocMessageBuilder request;
  build(request.initRoot<proto::Request>());
  auto reply = channel_.call(request, timeoutLocked(), 0);
  if (!reply) {
    if (reply.error().outcome != Outcome::SessionClosed) killWorkerLocked();
    StepResult ended = endEpisodeLocked(reply.takeError());
    return Error{ended.outcome, doing + ended.message, ended.signal};
  }
  StepResult failed;
  Answer answer{};
  kj::Maybe<kj::Exception> exception = kj::runCatchingExceptions([&] {
    auto root = reply->reader->getRoot<proto::Reply>();
    noteStateLocked(root);
    if (root.isFailure()) {
      readFailure(root.getFailure(), failed);
    } else if (!read(root, answer, failed)) {
      failed.outcome = Outcome::ProtocolMismatch;
      failed.message = std::string("the worker answered ") + name + " with something else";
    }
  });
  KJ_IF_MAYBE(e, exception) {
    failed = StepResult{};
    failed.outcome = Outcome::ProtocolMismatch;
    failed.message = std::string("malformed ") + name + " reply from the worker: " + e->getDescription().cStr();
  }
  if (!failed.ok()) return failedReplyLocked(std::move(failed));
  return answer;
}

Result<std::string> Env::setParameter(const std::string& key, const std::string& value) {
  std::lock_guard lock(mutex_);
  return requestLocked<std::string>(
      "setParameter", "to set a parameter", "setting parameter '" + key + "' failed: ",
      [&](proto::Request::Builder request) {
        auto parameter = request.initSetParameter();
        parameter.setKey(key);
        parameter.setValue(value);
      },
      [](proto::Reply::Reader reply, std::string& answer, StepResult&) {
        if (!reply.isParameter()) return false;
        answer = reply.getParameter();
        return true;
      });
}

Result<std::vector<Env::Peeked>> Env::peek(const std::vector<uint32_t>& actions, const std::string& reward) {
  std::lock_guard lock(mutex_);
  return requestLocked<std::vector<Peeked>>(
      "peek", "to peek", "peeking failed: ",
      [&](proto::Request::Builder request) {
        auto peek = request.initPeek();
        auto list = peek.initActions(static_cast<unsigned>(actions.size()));
        for (unsigned i = 0; i < actions.size(); ++i) list.set(i, actions[i]);
        peek.setReward(reward);
      },
      [&](proto::Reply::Reader reply, std::vector<Peeked>& answers, StepResult& failed) {
        if (!reply.isPeek()) return false;
        auto result = reply.getPeek();
        const auto known = result.getKnown();
        const auto rewards = result.getRewards();
        const auto noEffect = result.getActionHadNoEffect();
        if (known.size() != actions.size() || rewards.size() != actions.size() || noEffect.size() != actions.size()) {
          failed.outcome = Outcome::ProtocolMismatch;
          failed.message = "the worker answered a peek at " + std::to_string(actions.size()) + " actions with " +
                           std::to_string(known.size()) + " answers";
          return true;
        }
        answers.resize(actions.size());
        for (unsigned i = 0; i < actions.size(); ++i) answers[i] = Peeked{known[i], rewards[i], noEffect[i]};
        return true;
      });
}

std::chrono::milliseconds Env::timeoutLocked() const {
  // At most a year: now() plus it must still be a time point.
  constexpr std::chrono::milliseconds kLongest = std::chrono::hours(24 * 365);
  if (options_.stepTimeout >= kLongest / (int64_t{deferred_} + 1)) return kLongest;
  return options_.stepTimeout * (int64_t{deferred_} + 1);
}

Error Env::failedReplyLocked(StepResult failed) {
  // A worker that broke the protocol can no longer be trusted with this
  // episode.
  if (failed.outcome == Outcome::ProtocolMismatch) {
    killWorkerLocked();
    closeLocked();
    failed.message += "; the episode was ended";
  }
  return Error{failed.outcome, failed.message, failed.signal};
}

Result<RunResult> Env::run(const RunRequest& runRequest) {
  std::lock_guard lock(mutex_);
  return requestLocked<RunResult>(
      "run", "to run the program", "running the program failed: ",
      [&](proto::Request::Builder request) { writeRunRequest(runRequest, request.initRun()); },
      [](proto::Reply::Reader reply, RunResult& answer, StepResult& failed) {
        if (!reply.isRun()) return false;
        answer = readRunResult(reply.getRun());
        // A worker is not trusted: an outcome the client cannot name is a
        // broken protocol, not a result.
        bool known = isWireOutcome(answer.buildOutcome);
        for (const ProgramRun& run : answer.runs) known = known && isWireOutcome(run.outcome);
        if (!known) {
          failed.outcome = Outcome::ProtocolMismatch;
          failed.message = "the worker's run reply holds an outcome forkgym does not define";
        }
        return true;
      });
}

Result<Env> Env::fork() {
  std::lock_guard lock(mutex_);
  if (auto running = requireEpisodeLocked("to fork"); !running) return running.takeError();
  if (stepPending_) {
    return makeError(Outcome::InvalidRequest, "a step posted with beginStep() is still waiting for finishStep()");
  }
  {
    // The copy arrives as three descriptors. Without room for them the
    // kernel would drop them mid-reply; find out before asking. (Another
    // thread may still take the room meanwhile: the doorbell then says so.)
    std::array<UniqueFd, 3> room;
    for (auto& slot : room) {
      slot.reset(fcntl(channel_.doorbell().fd(), F_DUPFD_CLOEXEC, 0));
      if (!slot && (errno == EMFILE || errno == ENFILE)) return outOfDescriptors("cannot fork the episode");
      if (!slot) return makeError(Outcome::ServerError, errnoMessage("fcntl(F_DUPFD)"));
    }
  }
  capnp::MallocMessageBuilder request;
  request.initRoot<proto::Request>().setFork();
  auto reply = channel_.call(request, options_.stepTimeout, 3);
  if (!reply && reply.error().outcome == Outcome::ResourceExhausted) {
    // This process's own trouble: the worker answered and waits for the
    // next request, and the copy exits once the ends it sent are gone.
    return outOfDescriptors("the forked episode's descriptors could not be received");
  }
  if (!reply) {
    if (reply.error().outcome != Outcome::SessionClosed) killWorkerLocked();
    StepResult ended = endEpisodeLocked(reply.takeError());
    return Error{ended.outcome, "fork failed: " + ended.message, ended.signal};
  }
  StepResult failed;  // a failure reply, or what is wrong with the reply
  int32_t copyPid = -1;
  kj::Maybe<kj::Exception> exception = kj::runCatchingExceptions([&] {
    auto root = reply->reader->getRoot<proto::Reply>();
    if (root.isFailure()) {
      readFailure(root.getFailure(), failed);
    } else if (!root.isFork() || reply->fds.size() != 3) {
      failed.outcome = Outcome::ProtocolMismatch;
      failed.message = "the worker answered a fork without a new channel";
    } else {
      copyPid = root.getFork().getPid();
    }
  });
  KJ_IF_MAYBE(e, exception) {
    failed = StepResult{};
    failed.outcome = Outcome::ProtocolMismatch;
    failed.message = std::string("malformed fork reply from the worker: ") + e->getDescription().cStr();
  }
  Result<Channel> channel = makeError(Outcome::ProtocolMismatch, "no channel");
  if (failed.ok()) {
    channel = Channel::attach(ClientEnds{std::move(reply->fds[0]), std::move(reply->fds[1])});
    if (!channel) {
      failed.outcome = channel.error().outcome;
      failed.message = "the worker's fork reply carried a bad channel: " + channel.error().message;
    }
  }
  if (failed.ok()) {
    // The client will SIGKILL the copy through this pidfd: it must name a
    // clone of this episode's worker — a sibling (CLONE_PARENT) in its
    // process group, not the worker itself — and nothing else the worker
    // could open.
    auto copy = identify(reply->fds[2].get(), copyPid);
    // From here on the copy is named as this process sees it, not as the
    // worker did (inside the workers' PID namespace).
    if (copy && !copy->exited) copyPid = copy->pid;
    const pid_t workerPid = pid_.load(std::memory_order_relaxed);
    // The common case needs no second /proc read: a sibling of the worker
    // as it was verified (same parent, same group, another process). Only
    // when that does not hold (say the zygote died and the worker was
    // reparented) is the worker itself read again before refusing.
    const bool knownSibling =
        copy && !copy->exited && copy->pid != workerPid && copy->parent == parent_ && copy->group == group_;
    std::string why;
    if (!knownSibling) {
      auto self = identify(pidfd_.get(), workerPid);
      if (!self || self->exited) {
        why = "this episode's worker exited during the fork";
      } else if (!copy) {
        why = copy.error().message;
      } else if (copy->exited) {
        why = "it exited before it could be verified";
      } else if (copy->pid == self->pid || copy->parent != self->parent || copy->group != group_) {
        why = "its pidfd names process " + std::to_string(copy->pid) + " (parent " + std::to_string(copy->parent) +
              ", group " + std::to_string(copy->group) + "), not a clone of this episode's worker " +
              std::to_string(self->pid) + " (parent " + std::to_string(self->parent) + ", group " +
              std::to_string(group_) + ")";
      }
    }
    if (!why.empty()) {
      failed.outcome = Outcome::ProtocolMismatch;
      failed.message = "refusing the forked worker: " + why + "; its descriptors were closed and it was not signalled";
    }
  }
  if (!failed.ok()) {
    // Nothing it sent is used (its descriptors close here).
    Error error = failedReplyLocked(std::move(failed));
    error.message = "fork failed: " + error.message;
    return error;
  }
  Env forked(connection_, options_);
  forked.channel_ = std::move(*channel);
  forked.pidfd_ = std::move(reply->fds[2]);
  forked.pid_.store(copyPid, std::memory_order_relaxed);
  forked.group_ = group_;
  forked.parent_ = parent_;
  forked.description_ = description_;
  forked.benchmark_ = benchmark_;
  forked.benchmarkHash_ = benchmarkHash_;
  forked.actions_ = actions_;
  forked.deferred_ = deferred_;  // the copy has the same actions to apply
  forked.stateCommandLine_ = stateCommandLine_;
  forked.running_.store(true, std::memory_order_release);
  return forked;
}

Env::PostedStep Env::postedStep() {
  std::lock_guard lock(mutex_);
  if (!stepPending_) return {};
  std::lock_guard channelLock(channelMutex_);
  return {channel_.doorbell().fd(), pendingDeadline_};
}

Result<std::vector<size_t>> waitForSteps(std::span<Env* const> envs, size_t atLeast,
                                         const Interruption* interruption) {
  using Clock = std::chrono::steady_clock;
  if (envs.empty()) return std::vector<size_t>();
  std::vector<pollfd> fds(envs.size());
  std::vector<Clock::time_point> deadlines(envs.size());
  for (size_t i = 0; i < envs.size(); ++i) {
    const Env::PostedStep posted = envs[i]->postedStep();
    if (posted.fd < 0) {
      return makeError(Outcome::InvalidRequest, "waitForSteps: environment " + std::to_string(i) +
                                                    " has no step posted; call beginStep() on it first");
    }
    fds[i] = {posted.fd, POLLIN, 0};
    deadlines[i] = posted.deadline;
  }
  atLeast = std::min(atLeast, envs.size());
  std::vector<size_t> ready;
  std::vector<bool> isReady(envs.size(), false);
  // As Doorbell::wait: a reply that comes within the spin is caught awake,
  // without paying a wake-up that costs more than a cheap step.
  const auto spinUntil = Clock::now() + kDefaultSpin;
  for (bool spinning = true;;) {
    auto wake = std::optional<Clock::time_point>();
    for (size_t i = 0; i < envs.size(); ++i) {
      if (!isReady[i] && (!wake || deadlines[i] < *wake)) wake = deadlines[i];
    }
    if (spinning) {
      wake = Clock::now();
    } else if (interruption) {
      const auto sliceEnd = Clock::now() + interruption->slice;
      if (!wake || sliceEnd < *wake) wake = sliceEnd;
    }
    auto polled = sysUntil("poll(doorbells)", wake, [&](int timeoutMs) {
      return poll(fds.data(), static_cast<nfds_t>(fds.size()), timeoutMs);
    });
    if (!polled) return polled.takeError();
    const auto now = Clock::now();
    for (size_t i = 0; i < envs.size(); ++i) {
      if (isReady[i] || (fds[i].revents == 0 && now < deadlines[i])) continue;
      isReady[i] = true;
      ready.push_back(i);
      fds[i].fd = -1;  // poll() skips it from now on: it stays readable until finished
    }
    if (ready.size() >= atLeast) {
      std::sort(ready.begin(), ready.end());
      return ready;
    }
    if (spinning) {
      spinning = now < spinUntil;
      continue;
    }
    if (*polled == 0 && interruption && interruption->requested && interruption->requested()) {
      return makeError(Outcome::Interrupted, "the wait for the steps was interrupted");
    }
  }
}

}  // namespace forkgym
