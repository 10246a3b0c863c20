#include "client/env.h"

#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <optional>
#include <thread>

#include "ipc/protocol.capnp.h"

namespace forkgym {
namespace {

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
  }
  return int64_t{0};
}

// Single-quoted for a POSIX shell unless it needs no quoting.
std::string shellQuoted(const std::string& word) {
  const bool plain = !word.empty() && word.find_first_not_of(
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/._-+=:,@") == std::string::npos;
  if (plain) return word;
  std::string quoted = "'";
  for (char c : word) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return quoted + "'";
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
    if (space->valueType == ValueType::Int64List && space->length > 0 &&
        std::get<std::vector<int64_t>>(result.observations[i]).size() != static_cast<size_t>(space->length)) {
      return "the worker answered observation '" + space->name + "' with " +
             std::to_string(std::get<std::vector<int64_t>>(result.observations[i]).size()) + " values, not " +
             std::to_string(space->length);
    }
  }
  return std::nullopt;
}

}  // namespace

Env::Env(std::shared_ptr<Connection> connection, EnvOptions options)
    : connection_(std::move(connection)), options_(options) {}
Env::Env(Env&&) noexcept = default;
Env& Env::operator=(Env&&) noexcept = default;
Env::~Env() { close(); }

void Env::close() {
  // Closing our doorbell end is what tells the worker to exit.
  channel_ = Channel();
  pidfd_.reset();
  pid_ = -1;
}

void Env::killWorker() {
  if (pidfd_) syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0);
}

Status Env::reset(const std::string& benchmark) {
  close();
  actions_.clear();
  auto ends = connection_->newSession(benchmark, options_.limits, options_.resetTimeout);
  if (!ends && !connection_->alive()) {
    // The zygote died. Running episodes carry on without it (workers need
    // only their channels); this reset gets a new zygote, once.
    if (auto renewed = connection_->reconnect(); !renewed) {
      return makeError(Outcome::ServerError, "the forkgym server died and could not be replaced: " +
                                                 renewed.error().message);
    }
    ends = connection_->newSession(benchmark, options_.limits, options_.resetTimeout);
  }
  if (!ends) return ends.takeError();
  auto channel = Channel::attach(std::move(ends->channel));
  if (!channel) return channel.takeError();
  channel_ = std::move(*channel);
  pidfd_ = std::move(ends->pidfd);
  pid_ = ends->pid;
  benchmark_ = ends->benchmark;
  return okStatus();
}

Reproducer Env::reproducer() const {
  Reproducer reproducer{benchmark_, actions_, {}};
  auto description = connection_->describe();
  std::string passes;
  if (description) {
    for (uint32_t action : actions_) {
      // Test-only actions have no pipeline text; skipping them keeps the
      // command line parseable (no empty element between commas).
      if (action >= (*description)->actions.size() || (*description)->actions[action].pipeline.empty()) continue;
      if (!passes.empty()) passes += ',';
      passes += (*description)->actions[action].pipeline;
    }
  }
  // The server's own opt, by absolute path: another LLVM's opt on PATH
  // would misread this bitcode. Without use-list order, as IrSha1 hashes
  // it, so the output's sha1sum is the episode's IrSha1.
  const std::string& opt = connection_->server().optPath;
  reproducer.commandline = shellQuoted(opt.empty() ? "opt" : opt) +
                           (passes.empty() ? "" : " -passes='" + passes + "'") +
                           " -preserve-bc-uselistorder=false input.bc -o output.bc";
  return reproducer;
}

StepResult Env::endEpisode(Error error) {
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
      if (result.outcome != outcomeFromWire(outcome)) {
        result.message = "the worker died; its last words named outcome " + std::to_string(outcome) +
                         ", which is not a way to die: " + result.message;
      }
    } else {
      result.outcome = Outcome::Crashed;
      result.message = "the worker died without a report";
      for (int attempt = 0; attempt < 50; ++attempt) {
        auto exit = connection_->workerExit(pid_);
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
    result.message = "the step took longer than " + std::to_string(options_.stepTimeout.count()) +
                     " ms; the worker was killed";
  }
  result.reproducer = reproducer();
  // A worker whose channel closed may still be running (it dropped the
  // channel, or its last words were a lie): make sure the episode is over.
  killWorker();
  close();
  return result;
}

StepResult Env::step(std::span<const uint32_t> actions, std::span<const std::string> observations,
                     std::span<const std::string> rewards) {
  if (auto posted = beginStep(actions, observations, rewards); !posted) {
    StepResult result;
    result.outcome = posted.error().outcome;
    result.message = posted.error().message;
    if (alive() && endsEpisode(result.outcome)) return endEpisode(posted.takeError());
    return result;
  }
  return finishStep();
}

Status Env::beginStep(std::span<const uint32_t> actions, std::span<const std::string> observations,
                      std::span<const std::string> rewards) {
  if (!alive()) return makeError(Outcome::SessionClosed, "no episode is running; call reset() first");
  capnp::MallocMessageBuilder request;
  auto step = request.initRoot<proto::Request>().initStep();
  auto actionList = step.initActions(static_cast<unsigned>(actions.size()));
  for (size_t i = 0; i < actions.size(); ++i) actionList.set(static_cast<unsigned>(i), actions[i]);
  auto observationList = step.initObservations(static_cast<unsigned>(observations.size()));
  for (size_t i = 0; i < observations.size(); ++i) observationList.set(static_cast<unsigned>(i), observations[i]);
  auto rewardList = step.initRewards(static_cast<unsigned>(rewards.size()));
  for (size_t i = 0; i < rewards.size(); ++i) rewardList.set(static_cast<unsigned>(i), rewards[i]);
  pendingActions_.assign(actions.begin(), actions.end());
  // What the reply must look like (checked by finishStep()).
  pendingSpaces_.clear();
  pendingRewards_ = rewards.size();
  if (auto description = connection_->describe()) {
    pendingDescription_ = *description;
    for (const auto& name : observations) pendingSpaces_.push_back(pendingDescription_->findObservation(name));
  } else {
    pendingSpaces_.assign(observations.size(), nullptr);
  }
  return channel_.post(request);
}

StepResult Env::finishStep() {
  auto reply = channel_.collect(options_.stepTimeout);
  if (!reply) {
    // The actions were posted: they belong in the reproducer.
    actions_.insert(actions_.end(), pendingActions_.begin(), pendingActions_.end());
    if (reply.error().outcome != Outcome::SessionClosed) killWorker();
    return endEpisode(reply.takeError());
  }

  StepResult result;
  kj::Maybe<kj::Exception> exception = kj::runCatchingExceptions([&] {
    auto root = reply->reader->getRoot<proto::Reply>();
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
    for (auto value : stepResult.getObservations()) result.observations.push_back(toObservation(value));
    for (double reward : stepResult.getRewards()) result.rewards.push_back(reward);
  });
  KJ_IF_MAYBE(e, exception) {
    result = StepResult{};
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
    result.reproducer = reproducer();
    killWorker();
    close();
  }
  pendingActions_.clear();
  return result;
}

Result<Env> Env::fork() {
  if (!alive()) return makeError(Outcome::SessionClosed, "no episode to fork; call reset() first");
  capnp::MallocMessageBuilder request;
  request.initRoot<proto::Request>().setFork();
  auto reply = channel_.call(request, options_.stepTimeout, 3);
  if (!reply && reply.error().outcome == Outcome::ServerError) {
    // This process's own trouble (e.g. no descriptors left for the copy's
    // channel): the worker answered and waits for the next request, and the
    // copy exits once the ends it sent are gone. The episode goes on.
    return Error{Outcome::ServerError, "fork failed: " + reply.error().message, 0};
  }
  if (!reply) {
    StepResult ended = endEpisode(reply.takeError());
    return Error{ended.outcome, "fork failed: " + ended.message, ended.signal};
  }
  StepResult failed;  // a failure reply, or what is wrong with the reply
  int32_t pid = -1;
  kj::Maybe<kj::Exception> exception = kj::runCatchingExceptions([&] {
    auto root = reply->reader->getRoot<proto::Reply>();
    if (root.isFailure()) {
      readFailure(root.getFailure(), failed);
    } else if (!root.isFork() || reply->fds.size() != 3) {
      failed.outcome = Outcome::ProtocolMismatch;
      failed.message = "the worker answered a fork without a new channel";
    } else {
      pid = root.getFork().getPid();
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
  if (!failed.ok()) {
    // Nothing it sent is used (its descriptors close here). A worker that
    // broke the protocol can no longer be trusted with this episode either.
    if (failed.outcome == Outcome::ProtocolMismatch) {
      killWorker();
      close();
      failed.message += "; the episode was ended";
    }
    return Error{failed.outcome, "fork failed: " + failed.message, failed.signal};
  }
  Env copy(connection_, options_);
  copy.channel_ = std::move(*channel);
  copy.pidfd_ = std::move(reply->fds[2]);
  copy.pid_ = pid;
  copy.benchmark_ = benchmark_;
  copy.actions_ = actions_;
  return copy;
}

}  // namespace forkgym
