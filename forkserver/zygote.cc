#include "forkserver/zygote.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <map>

#include <llvm/Config/llvm-config.h>
#include <spdlog/spdlog.h>

#include "forkserver/single_thread.h"
#include "forkserver/worker.h"
#include "ipc/channel.h"
#include "ipc/message_area.h"
#include "ipc/protocol.capnp.h"
#include "base/syscall.h"
#include "passes/llvm/action_table.h"
#include "passes/llvm/benchmark_loader.h"
#include "passes/llvm/llvm_tools.h"
#include "passes/llvm/session.h"

namespace forkgym::forkserver {

void fillHello(proto::Hello::Builder hello) {
  const auto& host = passes::initializeLlvm();
  hello.setProtocolVersion(proto::PROTOCOL_VERSION);
  hello.setLlvmVersion(LLVM_VERSION_STRING);
  hello.setActionTableHash(passes::actionTableHash());
  hello.setHostTriple(host.triple);
  hello.setHostCpu(host.cpu);
  hello.setHostFeatures(host.features);
  hello.setOptPath(passes::llvmToolPath("opt"));
}

void fillDescription(proto::Description::Builder out, const std::vector<std::string>& cached) {
  auto table = passes::actionTable();
  auto actions = out.initActions(static_cast<unsigned>(table.size()));
  for (unsigned i = 0; i < table.size(); ++i) {
    const auto& row = table[i];
    actions[i].setFlag(kj::heapString(row.flag.data(), row.flag.size()));
    actions[i].setPipeline(kj::heapString(row.pipeline.data(), row.pipeline.size()));
    actions[i].setDescription(kj::heapString(row.description.data(), row.description.size()));
    actions[i].setUnavailableReason(kj::heapString(row.unavailableReason.data(), row.unavailableReason.size()));
    actions[i].setTestOnly(row.kind == passes::ActionKind::TestCrash);
  }
  auto observationSpaces = passes::observationSpaces();
  auto observations = out.initObservations(static_cast<unsigned>(observationSpaces.size()));
  for (unsigned i = 0; i < observationSpaces.size(); ++i) {
    const auto& space = observationSpaces[i];
    observations[i].setName(kj::heapString(space.name.data(), space.name.size()));
    observations[i].setValueType(static_cast<uint8_t>(space.type));
    observations[i].setLength(space.length);
    observations[i].setDeterministic(space.deterministic);
    observations[i].setPlatformDependent(space.platformDependent);
  }
  auto rewardSpaces = passes::rewardSpaces();
  auto rewards = out.initRewards(static_cast<unsigned>(rewardSpaces.size()));
  for (unsigned i = 0; i < rewardSpaces.size(); ++i) {
    rewards[i].setName(kj::heapString(rewardSpaces[i].name.data(), rewardSpaces[i].name.size()));
    rewards[i].setDeterministic(rewardSpaces[i].deterministic);
    rewards[i].setPlatformDependent(rewardSpaces[i].platformDependent);
  }
  auto benchmarks = out.initCachedBenchmarks(static_cast<unsigned>(cached.size()));
  for (unsigned i = 0; i < cached.size(); ++i) benchmarks.set(i, cached[i]);
  auto instCount = passes::instCountFeatureNames();
  auto instCountNames = out.initInstCountNames(static_cast<unsigned>(instCount.size()));
  for (unsigned i = 0; i < instCount.size(); ++i) instCountNames.set(i, kj::heapString(instCount[i].data(), instCount[i].size()));
  auto autophase = passes::autophaseFeatureNames();
  auto autophaseNames = out.initAutophaseNames(static_cast<unsigned>(autophase.size()));
  for (unsigned i = 0; i < autophase.size(); ++i) autophaseNames.set(i, kj::heapString(autophase[i].data(), autophase[i].size()));
}

namespace {

LoaderLimits loaderLimits(const ZygoteOptions& options) {
  LoaderLimits limits;
  // By default a load may use what a worker may: a benchmark a worker could
  // not hold is of no use loaded.
  const uint64_t memory = options.loadMemoryBytes ? options.loadMemoryBytes : options.limits.addressSpaceBytes;
  if (memory) limits.addressSpaceBytes = memory;
  limits.timeout = options.loadTimeout;
  limits.niceness = options.limits.niceness;
  return limits;
}

sandbox::SandboxLimits limitsFor(const SessionRequest& requested, const sandbox::SandboxLimits& defaults) {
  sandbox::SandboxLimits limits = defaults;
  if (requested.addressSpaceMb > 0) limits.addressSpaceBytes = requested.addressSpaceMb << 20;
  return limits;
}

}  // namespace

Zygote::Zygote(ZygoteOptions options)
    : options_(std::move(options)),
      cache_(options_.cacheMb << 20),
      spares_(options_.spareWorkers),
      loads_(loaderLimits(options_), options_.testLoadGate) {}

Zygote::~Zygote() = default;

Status Zygote::start() {
  // Workers and their forks are our children or grandchildren; as subreaper
  // we reap them all, whichever of them dies first.
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) return makeError(Outcome::ServerError, errnoMessage("PR_SET_CHILD_SUBREAPER"));
  const auto& host = passes::initializeLlvm();
  spdlog::info("LLVM {} initialised; host {} cpu {}", LLVM_VERSION_STRING, host.triple, host.cpu);
  // Built and compiled to BPF once here, so each worker only installs it.
  sandbox::prepareSandbox({kDefaultRegionBytes});

  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGHUP);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  signal(SIGPIPE, SIG_IGN);
  int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) return makeError(Outcome::ServerError, errnoMessage("signalfd"));
  signals_.reset(sfd);

  if (options_.connectedFd >= 0) {
    fcntl(options_.connectedFd, F_SETFD, FD_CLOEXEC);
    fcntl(options_.connectedFd, F_SETFL, fcntl(options_.connectedFd, F_GETFL) | O_NONBLOCK);
    connections_.emplace(nextConnectionId_++, Connection{UniqueFd(options_.connectedFd), {}, false});
  } else {
    auto listener = listenUnix(options_.socketPath);
    if (!listener) return listener.takeError();
    listener_ = std::move(*listener);
    spdlog::info("listening on {}", options_.socketPath);
  }

  // Preloads are loads like any other, a few at a time. They are cached in
  // the order given, whatever order they finish in, so the cache's recency
  // (what --cache-mb evicts first) is the command line's.
  const size_t parallel = static_cast<size_t>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)));
  std::vector<std::string> order;  // canonical URIs, as given
  std::map<std::string, passes::LoadedBitcode> loaded;
  size_t next = 0, cached = 0;
  while (!stopping_ && cached < options_.preload.size()) {
    while (next < options_.preload.size() && loads_.size() < parallel) {
      const std::string& requested = options_.preload[next++];
      auto uri = passes::canonicalBenchmarkUri(requested, options_.benchmarkRoots);
      Status joined = uri ? passes::checkBenchmarkInput(*uri) : Status(uri.takeError());
      if (joined && std::find(order.begin(), order.end(), *uri) == order.end()) {
        joined = loads_.join(loadRequest(*uri, {}), std::nullopt);
      }
      if (!joined) {
        spdlog::error("preload {}: {}", requested, joined.error().message);
        return makeError(Outcome::BenchmarkError, "cannot preload '" + requested + "': " + joined.error().message);
      }
      order.push_back(*uri);
    }
    if (!loads_.empty()) turn(/*serveClients=*/false);
    for (auto& finished : loads_.takeFinished()) {
      if (!finished.result) {
        spdlog::error("preload {}: {}", finished.uri, finished.result.error().message);
        return makeError(Outcome::BenchmarkError,
                         "cannot preload '" + finished.uri + "': " + finished.result.error().message);
      }
      loaded.emplace(finished.uri, std::move(*finished.result));
    }
    for (; cached < order.size(); ++cached) {
      auto it = loaded.find(order[cached]);
      if (it == loaded.end()) {
        // Named twice: cached already.
        if (std::find(order.begin(), order.begin() + static_cast<long>(cached), order[cached]) !=
            order.begin() + static_cast<long>(cached)) {
          continue;
        }
        break;
      }
      auto inserted = cacheLoaded(it->first, std::move(it->second));
      loaded.erase(it);
      if (!inserted) {
        spdlog::error("preload {}: {}", order[cached], inserted.error().message);
        return makeError(Outcome::BenchmarkError, "cannot preload '" + order[cached] + "': " + inserted.error().message);
      }
    }
  }
  if (stopping_) return makeError(Outcome::ServerError, "stopped by a signal while preloading");
  if (!options_.preload.empty()) spdlog::info("preloaded {} benchmark(s), ~{} MB", options_.preload.size(), cache_.bytes() >> 20);
  return okStatus();
}

passes::LoadRequest Zygote::loadRequest(const std::string& canonicalUri, const std::string& knownHash) const {
  passes::LoadRequest request;
  request.uri = canonicalUri;
  request.expectedHash = knownHash;
  request.roots = options_.benchmarkRoots;
  request.toolMemoryBytes = loaderLimits(options_).addressSpaceBytes;
  return request;
}

Result<passes::ParsedBenchmark*> Zygote::cacheLoaded(const std::string& uri, passes::LoadedBitcode loaded) {
  if (loaded.unchanged) {
    // Null when that content was evicted meanwhile: the caller loads again.
    return cache_.confirm(uri, loaded.contentHash, std::move(loaded.inputs));
  }
  // What comes back is bitcode our own writer produced from a verified
  // module, in a loader child: parsing it here is safe.
  auto parsed = passes::parseTrustedBitcode(loaded);
  if (!parsed) return parsed.takeError();
  spdlog::debug("cached {} as {} (~{} KB)", uri, parsed->contentHash, parsed->approxBytes >> 10);
  return cache_.insert(uri, std::move(*parsed), std::move(loaded.inputs));
}

int Zygote::run() {
  while (!stopping_) {
    turn(/*serveClients=*/true);
    answerFinishedLoads();
    // A client answered after a wait may have sent more meanwhile: those
    // frames are buffered, and poll() will not report them again.
    for (uint64_t id : std::exchange(resumed_, {})) {
      auto it = connections_.find(id);
      if (it != connections_.end() && !it->second.waiting && !serveConnection(id, it->second)) closeConnection(id);
    }
    // A private zygote lives exactly as long as the client that spawned it.
    if (!listener_ && connections_.empty()) stopping_ = true;
  }
  shutdown();
  return 0;
}

void Zygote::turn(bool serveClients) {
  std::vector<pollfd> fds;
  fds.push_back({signals_.get(), POLLIN, 0});
  const bool listening = serveClients && listener_;
  if (listening) fds.push_back({listener_.get(), POLLIN, 0});
  const size_t firstConnection = fds.size();
  std::vector<uint64_t> ids;
  if (serveClients) {
    for (auto& [id, connection] : connections_) {
      // A waiting client is only watched for hanging up (POLLHUP is always reported).
      fds.push_back({connection.fd.get(), static_cast<short>(connection.waiting ? 0 : POLLIN), 0});
      ids.push_back(id);
    }
  }
  const size_t firstLoad = fds.size();
  loads_.addPollFds(fds);
  // Spares are forked only when nothing is waiting to be read, so making
  // one never delays a request.
  const bool spareWanted = serveClients && spares_.nextWanted().has_value();
  const int ready = poll(fds.data(), fds.size(), spareWanted ? 0 : loads_.msUntilNextDeadline());
  if (ready < 0) {
    if (errno == EINTR) return;
    spdlog::critical("poll: {}", std::strerror(errno));
    stopping_ = true;
    return;
  }
  loads_.expire();
  if (ready == 0) {
    if (spareWanted) makeSpare();
    return;
  }
  if (fds[0].revents) {
    signalfd_siginfo info;
    while (read(signals_.get(), &info, sizeof(info)) == sizeof(info)) {
      if (info.ssi_signo != SIGCHLD) {
        spdlog::info("signal {}: shutting down", info.ssi_signo);
        stopping_ = true;
      }
    }
    reap();
  }
  for (size_t i = firstLoad; i < fds.size(); ++i) {
    if (fds[i].revents) loads_.onReadable(fds[i].fd);
  }
  if (listening && fds[1].revents) acceptClients();
  for (size_t i = firstConnection; i < firstLoad; ++i) {
    if (!fds[i].revents) continue;
    const uint64_t id = ids[i - firstConnection];
    auto it = connections_.find(id);
    if (it == connections_.end()) continue;
    if (it->second.waiting) {
      if (fds[i].revents & (POLLHUP | POLLERR)) closeConnection(id);
      continue;
    }
    if (!serveConnection(id, it->second)) closeConnection(id);
  }
}

void Zygote::reap() {
  for (const auto& [pid, status] : processes_.reapChildren()) loads_.onExit(pid, status);
}

void Zygote::answerFinishedLoads() {
  for (auto& finished : loads_.takeFinished()) {
    auto benchmark = finished.result ? cacheLoaded(finished.uri, std::move(*finished.result))
                                     : Result<passes::ParsedBenchmark*>(finished.result.takeError());
    if (!benchmark) {
      spdlog::debug("load of {} failed: {}", finished.uri, benchmark.error().message);
      for (const auto& waiter : finished.waiters) answerSession(waiter, benchmark);
      continue;
    }
    for (const auto& waiter : finished.waiters) {
      // A request that came while the load ran gets what is on disk now: the
      // files must still be as the load read them, else it loads again. (The
      // load may have read them right after they were written: no need to
      // check their content again this soon.)
      auto lookup = cache_.lookup(waiter.uri, /*acceptUnsure=*/true);
      if (lookup.fresh) {
        answerSession(waiter, lookup.fresh);
      } else if (auto joined = loads_.join(loadRequest(waiter.uri, lookup.knownHash), waiter); !joined) {
        answerSession(waiter, joined.takeError());
      }
    }
  }
}

void Zygote::answerSession(const SessionRequest& request, const Result<passes::ParsedBenchmark*>& benchmark) {
  auto it = connections_.find(request.connection);
  if (it == connections_.end()) return;
  it->second.waiting = false;
  resumed_.push_back(request.connection);
  capnp::MallocMessageBuilder message;
  auto reply = message.initRoot<proto::ControlReply>();
  std::vector<UniqueFd> passFds;
  Status started = benchmark ? startSession(*benchmark, request, reply.initSession(), passFds)
                             : Status(benchmark.error());
  if (!started) {
    passFds.clear();
    setFailure(reply.initFailure(), started.error());
  }
  std::vector<int> fds;
  for (auto& fd : passFds) fds.push_back(fd.get());
  if (!sendFrame(it->second.fd.get(), message, fds)) closeConnection(request.connection);
}

void Zygote::acceptClients() {
  for (;;) {
    int fd = accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;
    UniqueFd client(fd);
    ucred cred{};
    socklen_t len = sizeof(cred);
    // The socket file is owner-only already; checking the peer as well means a
    // descriptor leaked to another user still cannot start workers.
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || (cred.uid != getuid() && cred.uid != 0)) {
      spdlog::warn("refused a connection from uid {}", cred.uid);
      continue;
    }
    const uint64_t id = nextConnectionId_++;
    spdlog::debug("client {} connected (pid {})", id, cred.pid);
    connections_.emplace(id, Connection{std::move(client), {}, false});
  }
}

bool Zygote::serveConnection(uint64_t id, Connection& connection) {
  while (!connection.waiting) {
    switch (connection.assembler.readFrom(connection.fd.get())) {
      case FrameAssembler::State::NeedMore:
        return true;
      case FrameAssembler::State::Closed:
        return false;
      case FrameAssembler::State::Malformed:
        spdlog::warn("client {}: {}; closing", id, connection.assembler.problem());
        return false;
      case FrameAssembler::State::HaveFrame:
        handleFrame(id, connection, connection.assembler.takeFrame());
        if (!connections_.contains(id)) return true;
        break;
    }
  }
  return true;
}

void Zygote::handleFrame(uint64_t id, Connection& connection, kj::Array<capnp::word> frame) {
  currentConnection_ = id;
  auto reply = dispatchControlFrame(frame, connection.greeted, *this);
  if (!reply.message) return;  // deferred: newSession marked the connection waiting
  std::vector<int> fds;
  for (auto& fd : reply.fds) fds.push_back(fd.get());
  if (!sendFrame(connection.fd.get(), *reply.message, fds)) closeConnection(id);
}

uint64_t Zygote::actionTableHash() { return passes::actionTableHash(); }

void Zygote::hello(proto::Hello::Builder out) { fillHello(out); }

void Zygote::describe(proto::Description::Builder out) { fillDescription(out, cache_.uris()); }

void Zygote::workerExit(int32_t pid, proto::WorkerExit::Builder out) {
  reap();
  auto status = processes_.exitStatus(pid);
  out.setKnown(status.has_value());
  if (status) {
    out.setExitCode(status->exitCode);
    out.setSignal(status->signal);
    auto stage = sandbox::stageForExitCode(status->exitCode);
    if (!stage.empty()) out.setExplanation("the sandbox stage '" + std::string(stage) + "' failed");
  }
}

void Zygote::status(proto::ServerStatus::Builder out) {
  const auto ready = spares_.readyBenchmarks();
  auto list = out.initSpareBenchmarks(static_cast<unsigned>(ready.size()));
  for (unsigned i = 0; i < ready.size(); ++i) list.set(i, ready[i]);
  out.setSparesWanted(static_cast<uint32_t>(spares_.wantedWithoutSpare()));
  const auto loading = loads_.status();
  out.setPendingLoads(static_cast<uint32_t>(loading.size()));
  auto loads = out.initLoading(static_cast<unsigned>(loading.size()));
  for (unsigned i = 0; i < loading.size(); ++i) {
    loads[i].setBenchmark(loading[i].first);
    loads[i].setWaiters(loading[i].second);
  }
}

Result<ControlHandler::SessionStart> Zygote::newSession(const std::string& uri, proto::Limits::Reader limits,
                                                       proto::SessionStarted::Builder started,
                                                       std::vector<UniqueFd>& passFds) {
  auto canonical = passes::canonicalBenchmarkUri(uri, options_.benchmarkRoots);
  if (!canonical) return canonical.takeError();
  const SessionRequest request{currentConnection_, *canonical, limits.getAddressSpaceMb(), limits.getCpuSecondsPerStep()};
  // A few stat() calls: are the files this module was made from as they were?
  const auto lookup = cache_.lookup(*canonical);
  if (lookup.fresh) {
    if (auto ok = startSession(lookup.fresh, request, started, passFds); !ok) return ok.takeError();
    return SessionStart::Started;
  }
  // Refused at once if it is not a regular file or directory: a FIFO would
  // block the loader, a device never end.
  if (auto input = passes::checkBenchmarkInput(*canonical); !input) return input.takeError();
  if (auto joined = loads_.join(loadRequest(*canonical, lookup.knownHash), request); !joined) return joined.takeError();
  connections_.at(currentConnection_).waiting = true;
  return SessionStart::Deferred;
}

Status Zygote::startSession(passes::ParsedBenchmark* benchmark, const SessionRequest& request,
                            proto::SessionStarted::Builder started, std::vector<UniqueFd>& passFds) {
  // Spares run with the server's default limits, so only such sessions use one.
  const bool defaultLimits = request.addressSpaceMb == 0 && request.cpuSecondsPerStep == 0;
  std::optional<SpareWorker> worker;
  if (defaultLimits && options_.spareWorkers > 0) {
    worker = spares_.take(request.uri, benchmark->contentHash);
    spares_.want(request.uri);
  }
  if (!worker) {
    const uint32_t cpuPerStep = request.cpuSecondsPerStep ? request.cpuSecondsPerStep : options_.cpuSecondsPerStep;
    auto fresh = startWorker(benchmark, limitsFor(request, options_.limits), cpuPerStep);
    if (!fresh) return fresh.takeError();
    worker = std::move(*fresh);
  }
  processes_.addWorkerGroup(request.connection, worker->pid);
  started.setPid(worker->pid);
  started.setRegionBytes(worker->regionBytes);
  started.setBenchmark(request.uri);
  started.setBenchmarkHash(benchmark->contentHash);
  passFds.push_back(std::move(worker->ends.memfd));
  passFds.push_back(std::move(worker->ends.doorbell));
  passFds.push_back(std::move(worker->pidfd));
  spdlog::debug("client {}: worker {} for {}", request.connection, worker->pid, request.uri);
  return okStatus();
}

Result<SpareWorker> Zygote::startWorker(passes::ParsedBenchmark* benchmark, const sandbox::SandboxLimits& limits,
                                        uint32_t cpuSecondsPerStep) {
  auto channel = Channel::create();
  if (!channel) return channel.takeError();
  auto& [workerChannel, clientEnds] = *channel;

  assertSingleThreaded();
  const auto forkStart = std::chrono::steady_clock::now();
  const pid_t pid = fork();
  if (pid < 0) return makeError(Outcome::ServerError, errnoMessage("fork(worker)"));
  if (pid == 0) {
    // The worker: its own process group (so the zygote can kill it and
    // its forks together), default signal handling, then the episode.
    setpgid(0, 0);
    sigset_t all;
    sigfillset(&all);
    sigprocmask(SIG_UNBLOCK, &all, nullptr);
    signal(SIGPIPE, SIG_IGN);
    clientEnds.memfd.reset();
    clientEnds.doorbell.reset();
    runWorker(WorkerStart{std::move(workerChannel), benchmark, limits, cpuSecondsPerStep});
  }
  setpgid(pid, pid);
  const long pidfd = syscall(SYS_pidfd_open, pid, 0);
  if (pidfd < 0) {
    kill(pid, SIGKILL);
    return makeError(Outcome::ServerError, errnoMessage("pidfd_open(worker)"));
  }
  spdlog::trace("forked worker {} in {} µs", pid,
                std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - forkStart).count());
  return SpareWorker{benchmark->uri, benchmark->contentHash, pid, UniqueFd(static_cast<int>(pidfd)), std::move(clientEnds),
                     workerChannel.region().size()};
}

void Zygote::makeSpare() {
  auto uri = spares_.nextWanted();
  if (!uri) return;
  auto* benchmark = cache_.peek(*uri);
  if (!benchmark) {
    spares_.dropBenchmark(*uri);  // evicted from the cache since it was wanted
    return;
  }
  auto spare = startWorker(benchmark, options_.limits, options_.cpuSecondsPerStep);
  if (!spare) {
    spdlog::warn("spare worker for {}: {}", *uri, spare.error().message);
    spares_.dropBenchmark(*uri);
    return;
  }
  spare->uri = *uri;
  spares_.add(std::move(*spare));
}

void Zygote::closeConnection(uint64_t id) {
  spdlog::debug("client {} gone: killing its workers and the loads only it waited for", id);
  processes_.killConnection(id);
  loads_.abandon(id);
  connections_.erase(id);
}

void Zygote::shutdown() {
  loads_.killAll();
  spares_.killAll();
  processes_.killAll();
  connections_.clear();
  if (listener_) {
    listener_.reset();
    unlink(options_.socketPath.c_str());
  }
  // Reap what we just killed so nothing is left as a zombie of ours.
  for (int i = 0; i < 50; ++i) {
    reap();
    if (waitpid(-1, nullptr, WNOHANG) < 0 && errno == ECHILD) break;
    usleep(2000);
  }
}

}  // namespace forkgym::forkserver
