#include "forkserver/worker.h"

#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <fcntl.h>
#include <unistd.h>

#include "forkserver/cached_session.h"
#include "forkserver/control_dispatch.h"
#include "forkserver/crash_reporter.h"
#include "forkserver/request_dispatch.h"
#include "ipc/protocol.capnp.h"
#include "base/syscall.h"
#include "passes/session.h"
#include "passes/spaces.h"

namespace forkgym::forkserver {
namespace {

void setObservation(proto::ObservationValue::Builder out, const passes::ObservationValue& value) {
  struct Visitor {
    proto::ObservationValue::Builder& out;
    void operator()(int64_t v) { out.setInt64(v); }
    void operator()(const std::vector<int64_t>& v) {
      auto list = out.initInt64List(static_cast<unsigned>(v.size()));
      for (size_t i = 0; i < v.size(); ++i) list.set(static_cast<unsigned>(i), v[i]);
    }
    void operator()(const std::string& v) { out.setText(kj::StringPtr(v.c_str(), v.size())); }
    void operator()(const std::vector<uint8_t>& v) { out.setBytes(kj::arrayPtr(v.data(), v.size())); }
    void operator()(bool v) { out.setBoolean(v); }
    void operator()(double v) { out.setFloat64(v); }
    void operator()(const std::vector<double>& v) {
      auto list = out.initFloat64List(static_cast<unsigned>(v.size()));
      for (size_t i = 0; i < v.size(); ++i) list.set(static_cast<unsigned>(i), v[i]);
    }
    void operator()(const std::vector<passes::NamedCount>& v) {
      auto list = out.initInt64Map(static_cast<unsigned>(v.size()));
      for (size_t i = 0; i < v.size(); ++i) {
        list[static_cast<unsigned>(i)].setName(v[i].name);
        list[static_cast<unsigned>(i)].setCount(v[i].count);
      }
    }
  };
  std::visit(Visitor{out}, value);
}

class WorkerLoop : public RequestHandler {
 public:
  WorkerLoop(Channel channel, const passes::Backend& backend, CachedSession& session, uint32_t cpuSecondsPerStep)
      : channel_(std::move(channel)),
        observations_(backend.observationSpaces()),
        rewards_(backend.rewardSpaces()),
        replayFromState_(backend.actionSpace().replay.fromState),
        session_(session),
        cpuSecondsPerStep_(cpuSecondsPerStep) {}

  // The top-level loop, and the only one: an env.fork() copy comes back
  // here (see fork()) instead of serving from inside its parent's request,
  // so a chain of forks of forks uses no more stack than one worker.
  [[noreturn]] void serve() {
    for (;;) {
      serveOne();
      if (forkChannel_.valid()) becomeForkCopy();
    }
  }

 private:
  void serveOne() {
    auto request = channel_.receiveRequest();
    if (!request) {
      // A garbled message is answered; anything else means the client is gone.
      if (request.error().outcome != Outcome::ProtocolMismatch) _exit(0);
      auto error = failureReply(makeError(Outcome::InvalidRequest, request.error().message));
      if (!channel_.sendReply(*error)) _exit(0);
      return;
    }
    session_.start();
    auto reply = dispatchRequest(*request->reader, *this);
    session_.flushCounts();
    // The copy made by fork() does not answer its parent's request: the
    // parent does, on the channel they both still hold.
    if (forkChannel_.valid()) return;
    std::vector<int> fds;
    for (auto& fd : reply.fds) fds.push_back(fd.get());
    if (!channel_.sendReply(*reply.message, fds)) _exit(0);
    if (reply.exitAfterReply) _exit(0);
  }

  // In the env.fork() copy, once the request that made it has unwound:
  // forget the parent's channel (closing our copies of its descriptors) and
  // serve the new one.
  void becomeForkCopy() {
    channel_ = std::move(forkChannel_);
    forkChannel_ = Channel();
    redirectCrashReporter(channel_.region().header());
  }

  void run(const RunRequest& request, proto::Reply::Builder reply) override {
    auto session = session_.materialized();
    if (!session) {
      setFailure(reply.initFailure(), session.error());
      return;
    }
    auto result = (*session)->run(request);
    if (!result) {
      setFailure(reply.initFailure(), result.error());
      return;
    }
    writeRunResult(*result, reply.initRun());
  }

  void peek(const std::vector<uint32_t>& actions, size_t rewardRow, proto::Reply::Builder reply) override {
    auto answers = session_.peek(actions, rewardRow);
    if (!answers) {
      setFailure(reply.initFailure(), answers.error());
      return;
    }
    auto result = reply.initPeek();
    const auto count = static_cast<unsigned>(answers->size());
    auto known = result.initKnown(count);
    auto rewards = result.initRewards(count);
    auto noEffect = result.initActionHadNoEffect(count);
    for (unsigned i = 0; i < count; ++i) {
      known.set(i, (*answers)[i].known);
      rewards.set(i, (*answers)[i].reward);
      noEffect.set(i, (*answers)[i].actionHadNoEffect);
    }
  }

  std::optional<size_t> findObservation(std::string_view name) override {
    return passes::findSpace(observations_, name);
  }
  std::optional<size_t> findReward(std::string_view name) override { return passes::findSpace(rewards_, name); }

  // Rows found by dispatchRequest(). Returns true when the episode is over
  // (the worker must exit).
  bool step(const std::vector<uint32_t>& actions, const std::vector<size_t>& rows,
            const std::vector<size_t>& rewardRows, proto::Reply::Builder reply) override {
    if (cpuSecondsPerStep_ > 0 && !actions.empty()) sandbox::limitCpuForNextStep(cpuSecondsPerStep_);
    auto applied = session_.applyActions(actions);
    noteState(reply);
    if (!applied) {
      setFailure(reply.initFailure(), applied.error());
      return endsEpisode(applied.error().outcome);
    }

    std::vector<passes::ObservationValue> values;
    values.reserve(rows.size());
    for (size_t row : rows) {
      auto value = session_.observe(row);
      // A value its space does not promise is the backend's bug: a server
      // error, never a well-formed answer the client would trust.
      if (value) {
        if (auto checked = passes::checkValue(observations_[row], *value); !checked) value = checked.takeError();
      }
      if (!value) {
        setFailure(reply.initFailure(), value.error());
        return endsEpisode(value.error().outcome);
      }
      values.push_back(std::move(*value));
    }
    std::vector<double> rewards;
    for (size_t row : rewardRows) {
      auto reward = session_.reward(row);
      if (!reward) {
        setFailure(reply.initFailure(), reward.error());
        return endsEpisode(reward.error().outcome);
      }
      rewards.push_back(*reward);
    }

    auto result = reply.initStep();
    result.setActionHadNoEffect(applied->actionHadNoEffect);
    result.setActionsDeferred(static_cast<uint32_t>(session_.pending()));
    auto observations = result.initObservations(static_cast<unsigned>(values.size()));
    for (size_t i = 0; i < values.size(); ++i) setObservation(observations[static_cast<unsigned>(i)], values[i]);
    auto rewardList = result.initRewards(static_cast<unsigned>(rewards.size()));
    for (size_t i = 0; i < rewards.size(); ++i) rewardList.set(static_cast<unsigned>(i), rewards[i]);
    return false;
  }

  void setParameter(std::string_view key, std::string_view value, proto::Reply::Builder reply) override {
    auto answer = session_.setParameter(key, value);
    noteState(reply);
    if (!answer) {
      setFailure(reply.initFailure(), answer.error());
      return;
    }
    reply.setParameter(*answer);
  }

  // The client keeps the state's command line for its reproducer when the
  // actions' texts cannot replay the state (ReplayCommand.fromState).
  void noteState(proto::Reply::Builder reply) {
    if (!replayFromState_) return;
    // Such backends are never cached (cachePolicyOf): nothing is pending.
    if (auto session = session_.materialized()) reply.setStateCommandLine((*session)->commandLine());
  }

  // env.fork(): this process clones itself with CLONE_PARENT, so the zygote
  // (not this worker) is the copy's parent and reaps it, and the copy
  // outlives this episode. The copy switches to a fresh channel; this worker
  // passes the client's ends of it (and a pidfd) back with the reply.
  void fork(proto::Reply::Builder reply, std::vector<UniqueFd>& passFds) override {
    auto created = Channel::create(channel_.region().size());
    if (!created) {
      setFailure(reply.initFailure(), created.error());
      return;
    }
    auto& [forkChannel, clientEnds] = *created;
    // CLONE_PIDFD: the copy's pidfd comes with it (into `pidfd`, clone's
    // parent_tid argument), so the sandbox can deny pidfd_open, which would
    // let a worker name any process.
    int pidfd = -1;
    long pid = -1;
    // A fork the client has just closed still counts against RLIMIT_NPROC
    // until it has exited and the zygote has reaped it, which happens after
    // the client's close() returns: a loop that closes a fork and forks
    // again would meet the limit it is not using. So a refusal is retried a
    // few times over about half a second before it is reported.
    for (int waitMs = 1;; waitMs *= 2) {
      pid = syscall(SYS_clone, CLONE_PARENT | CLONE_PIDFD | SIGCHLD, nullptr, &pidfd, nullptr, nullptr);
      if (pid >= 0 || errno != EAGAIN || waitMs > 256) break;
      poll(nullptr, 0, waitMs);
    }
    if (pid < 0 && errno == EAGAIN) {
      // RLIMIT_NPROC (sandbox.h): this episode's worker and live forks.
      rlimit limit{};
      getrlimit(RLIMIT_NPROC, &limit);
      setFailure(reply.initFailure(),
                 makeError(Outcome::LimitReached,
                           "this episode reached its process limit (" + std::to_string(limit.rlim_cur) +
                               " processes: its worker and its live forks); close forks it no longer needs, or "
                               "start forkgym-server with a higher --max-processes"));
      return;
    }
    if (pid < 0) {
      setFailure(reply.initFailure(), makeError(Outcome::ServerError, errnoMessage("clone(fork)")));
      return;
    }
    if (pid == 0) {
      // The copy: drop the ends meant for the client and only record the
      // channel it will serve; serve() switches to it after this request
      // has unwound, so no frame of the parent's request stays on the stack.
      clientEnds.memfd.reset();
      clientEnds.doorbell.reset();
      forkChannel_ = std::move(forkChannel);
      return;
    }
    auto result = reply.initFork();
    result.setPid(static_cast<int32_t>(pid));
    result.setRegionBytes(forkChannel.region().size());
    passFds.push_back(std::move(clientEnds.memfd));
    passFds.push_back(std::move(clientEnds.doorbell));
    passFds.emplace_back(pidfd);
    // forkChannel (this worker's copy of the new worker's end) closes here.
  }

  // Fault injection for the reliability suite. Only the test flavour
  // (forkgym-test-server) has a body here; the product's dispatch never
  // calls these, and its binary contains no code that runs a chosen syscall.
#ifdef FORKGYM_TEST_ACTIONS
  void testSyscall(int64_t number, proto::Reply::Builder reply) override {
    // Zero arguments: a denied call traps before the kernel looks at them.
    const long result = syscall(static_cast<long>(number), 0, 0, 0, 0, 0, 0);
    setFailure(reply.initFailure(), makeError(Outcome::InvalidRequest,
                                              std::string("syscall ") + sandbox::syscallName(static_cast<int>(number)) +
                                                  " was not denied; it returned " + std::to_string(result)));
  }
  [[noreturn]] void testCloseChannel() override {
    // A worker that drops its channel but keeps running: only the client
    // (pidfd) or the zygote (process group) can end it.
    channel_ = Channel();
    for (;;) poll(nullptr, 0, -1);
  }
#else
  void testSyscall(int64_t, proto::Reply::Builder) override {}
  void testCloseChannel() override {}
#endif

  Channel channel_;
  Channel forkChannel_;  // set only in a fork copy, until serve() switches to it
  std::span<const passes::Space> observations_;
  std::span<const passes::Space> rewards_;
  bool replayFromState_;
  CachedSession& session_;
  uint32_t cpuSecondsPerStep_;
};

}  // namespace

void runWorker(WorkerStart start) {
  installCrashReporter(start.channel.region().header(), *start.backend);
  // Never destroyed: the worker only ever leaves by _exit().
  auto session = start.backend->startSession(*start.benchmark);
  if (!session) {
    const std::string message = "the backend could not start a session: " + session.error().message;
    writeLastWords(start.channel.region().header(), static_cast<uint16_t>(Outcome::SetupFailed), 0,
                   message.substr(0, 190).c_str());
    _exit(kSessionStartExit);
  }
  passes::Session* const started = session->release();
  started->attachRunConfig(std::move(start.runConfig));

  if (start.prepareFirstStep) {
    // Before the sandbox: the warm-up reads /proc/self/maps. The doorbell
    // turns readable when the client rings; the preparation stops there.
    const int doorbell = start.channel.doorbell().fd();
    started->prepareFirstStep([doorbell] {
      pollfd ring{doorbell, POLLIN, 0};
      return poll(&ring, 1, 0) == 0;
    });
  }

  // Entries go to the zygote without ever waiting for it.
  if (start.stateCacheLink.valid()) {
    const int flags = fcntl(start.stateCacheLink.get(), F_GETFL);
    if (flags < 0 || fcntl(start.stateCacheLink.get(), F_SETFL, flags | O_NONBLOCK) < 0) start.stateCacheLink.reset();
  }
  // Never destroyed, like the session.
  auto* cached = new CachedSession(*started, *start.backend, start.stateCache, std::move(start.stateCacheLink),
                                   start.cpuSecondsPerStep);

  sandbox::prepareSandbox({start.channel.region().size()});
  const int keep[] = {start.channel.region().fd(), start.channel.doorbell().fd(), cached->linkFd()};
  sandbox::applySandbox(start.limits, std::span<const int>(keep, cached->linkFd() >= 0 ? 3 : 2), start.profile);

  WorkerLoop loop(std::move(start.channel), *start.backend, *cached, start.cpuSecondsPerStep);
  loop.serve();
}

}  // namespace forkgym::forkserver
