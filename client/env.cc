#include "client/env.h"

#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

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
      result.outcome = outcomeFromWire(words.outcome);
      result.signal = words.signal;
      result.message.assign(words.message, strnlen(words.message, sizeof(words.message)));
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
      auto failure = root.getFailure();
      result.outcome = outcomeFromWire(failure.getOutcome());
      result.message = failure.getMessage();
      result.signal = failure.getSignal();
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
    result.outcome = Outcome::ProtocolMismatch;
    result.message = std::string("malformed reply from the worker: ") + e->getDescription().cStr();
  }
  if (result.ok()) {
    actions_.insert(actions_.end(), pendingActions_.begin(), pendingActions_.end());
  } else if (endsEpisode(result.outcome)) {
    // e.g. a verifier failure: the worker answered, then exited.
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
  if (!reply) {
    StepResult ended = endEpisode(reply.takeError());
    return Error{ended.outcome, "fork failed: " + ended.message, ended.signal};
  }
  auto root = reply->reader->getRoot<proto::Reply>();
  if (root.isFailure()) {
    return Error{outcomeFromWire(root.getFailure().getOutcome()), root.getFailure().getMessage(), 0};
  }
  if (!root.isFork() || reply->fds.size() != 3) {
    return makeError(Outcome::ProtocolMismatch, "the worker answered a fork without a new channel");
  }
  auto channel = Channel::attach(ClientEnds{std::move(reply->fds[0]), std::move(reply->fds[1])});
  if (!channel) return channel.takeError();
  Env copy(connection_, options_);
  copy.channel_ = std::move(*channel);
  copy.pidfd_ = std::move(reply->fds[2]);
  copy.pid_ = root.getFork().getPid();
  copy.benchmark_ = benchmark_;
  copy.actions_ = actions_;
  return copy;
}

}  // namespace forkgym
