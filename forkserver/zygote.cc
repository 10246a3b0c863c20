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

#include <llvm/Config/llvm-config.h>
#include <spdlog/spdlog.h>

#include "forkserver/loader.h"
#include "forkserver/single_thread.h"
#include "forkserver/worker.h"
#include "ipc/channel.h"
#include "ipc/message_area.h"
#include "ipc/protocol.capnp.h"
#include "ipc/syscall.h"
#include "passes/action_table.h"
#include "passes/benchmark_loader.h"
#include "passes/llvm_tools.h"
#include "passes/session.h"

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

sandbox::SandboxLimits limitsFor(proto::Limits::Reader requested, const sandbox::SandboxLimits& defaults) {
  sandbox::SandboxLimits limits = defaults;
  if (requested.getAddressSpaceMb() > 0) limits.addressSpaceBytes = requested.getAddressSpaceMb() << 20;
  return limits;
}

}  // namespace

Zygote::Zygote(ZygoteOptions options)
    : options_(std::move(options)), cache_(options_.cacheMb << 20), spares_(options_.spareWorkers) {}

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

  for (const auto& uri : options_.preload) {
    auto loaded = benchmarkFor(uri);
    if (!loaded) {
      spdlog::error("preload {}: {}", uri, loaded.error().message);
      return makeError(Outcome::BenchmarkError, "cannot preload '" + uri + "': " + loaded.error().message);
    }
  }
  if (!options_.preload.empty()) spdlog::info("preloaded {} benchmark(s), ~{} MB", options_.preload.size(), cache_.bytes() >> 20);
  return okStatus();
}

Result<passes::ParsedBenchmark*> Zygote::benchmarkFor(const std::string& requested) {
  auto uri = passes::canonicalBenchmarkUri(requested, options_.benchmarkRoots);
  if (!uri) return uri.takeError();
  if (auto* cached = cache_.find(*uri)) return cached;
  // Untrusted input is parsed in a child first; what comes back is bitcode
  // our own writer produced from a verified module.
  auto loaded = loadInChild(*uri, options_.loadTimeout);
  if (!loaded) return loaded.takeError();
  auto parsed = passes::parseTrustedBitcode(*loaded);
  if (!parsed) return parsed.takeError();
  spdlog::debug("cached {} (~{} KB)", *uri, parsed->approxBytes >> 10);
  return cache_.insert(std::move(*parsed));
}

int Zygote::run() {
  while (!stopping_) {
    std::vector<pollfd> fds;
    std::vector<uint64_t> ids;
    fds.push_back({signals_.get(), POLLIN, 0});
    if (listener_) fds.push_back({listener_.get(), POLLIN, 0});
    const size_t firstConnection = fds.size();
    for (auto& [id, connection] : connections_) {
      fds.push_back({connection.fd.get(), POLLIN, 0});
      ids.push_back(id);
    }
    // Spares are forked only when nothing is waiting to be read, so making
    // one never delays a request.
    const bool spareWanted = spares_.nextWanted().has_value();
    const int ready = poll(fds.data(), fds.size(), spareWanted ? 0 : -1);
    if (ready < 0) {
      if (errno == EINTR) continue;
      spdlog::critical("poll: {}", std::strerror(errno));
      break;
    }
    if (ready == 0) {
      makeSpare();
      continue;
    }
    if (fds[0].revents) {
      signalfd_siginfo info;
      while (read(signals_.get(), &info, sizeof(info)) == sizeof(info)) {
        if (info.ssi_signo != SIGCHLD) {
          spdlog::info("signal {}: shutting down", info.ssi_signo);
          stopping_ = true;
        }
      }
      processes_.reapChildren();
    }
    if (listener_ && fds[1].revents) acceptClients();
    for (size_t i = firstConnection; i < fds.size(); ++i) {
      if (!fds[i].revents) continue;
      const uint64_t id = ids[i - firstConnection];
      auto it = connections_.find(id);
      if (it == connections_.end()) continue;
      if (!serveConnection(id, it->second)) closeConnection(id);
    }
    // A private zygote lives exactly as long as the client that spawned it.
    if (!listener_ && connections_.empty()) stopping_ = true;
  }
  shutdown();
  return 0;
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
  for (;;) {
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
}

void Zygote::handleFrame(uint64_t id, Connection& connection, kj::Array<capnp::word> frame) {
  currentConnection_ = id;
  auto reply = dispatchControlFrame(frame, connection.greeted, *this);
  std::vector<int> fds;
  for (auto& fd : reply.fds) fds.push_back(fd.get());
  if (!sendFrame(connection.fd.get(), *reply.message, fds)) closeConnection(id);
}

uint64_t Zygote::actionTableHash() { return passes::actionTableHash(); }

void Zygote::hello(proto::Hello::Builder out) { fillHello(out); }

void Zygote::describe(proto::Description::Builder out) { fillDescription(out, cache_.uris()); }

void Zygote::workerExit(int32_t pid, proto::WorkerExit::Builder out) {
  processes_.reapChildren();
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
  // Loads run inside this loop, so none is pending while it answers.
  out.setPendingLoads(0);
}

Status Zygote::newSession(const std::string& uri, proto::Limits::Reader requested,
                          proto::SessionStarted::Builder started, std::vector<UniqueFd>& passFds) {
  auto benchmark = benchmarkFor(uri);
  if (!benchmark) return benchmark.takeError();
  // Spares run with the server's default limits, so only such sessions use one.
  const bool defaultLimits = requested.getAddressSpaceMb() == 0 && requested.getCpuSecondsPerStep() == 0;
  std::optional<SpareWorker> worker;
  if (defaultLimits && options_.spareWorkers > 0) {
    worker = spares_.take((*benchmark)->uri);
    spares_.want((*benchmark)->uri);
  }
  if (!worker) {
    const uint32_t cpuPerStep =
        requested.getCpuSecondsPerStep() ? requested.getCpuSecondsPerStep() : options_.cpuSecondsPerStep;
    auto fresh = startWorker(*benchmark, limitsFor(requested, options_.limits), cpuPerStep);
    if (!fresh) return fresh.takeError();
    worker = std::move(*fresh);
  }
  processes_.addWorkerGroup(currentConnection_, worker->pid);
  started.setPid(worker->pid);
  started.setRegionBytes(worker->regionBytes);
  started.setBenchmark(worker->uri);
  passFds.push_back(std::move(worker->ends.memfd));
  passFds.push_back(std::move(worker->ends.doorbell));
  passFds.push_back(std::move(worker->pidfd));
  spdlog::debug("client {}: worker {} for {}", currentConnection_, worker->pid, worker->uri);
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
  return SpareWorker{benchmark->uri, pid, UniqueFd(static_cast<int>(pidfd)), std::move(clientEnds),
                     workerChannel.region().size()};
}

void Zygote::makeSpare() {
  auto uri = spares_.nextWanted();
  if (!uri) return;
  auto* benchmark = cache_.find(*uri);
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
  spares_.add(std::move(*spare));
}

void Zygote::closeConnection(uint64_t id) {
  spdlog::debug("client {} gone: killing its workers", id);
  processes_.killConnection(id);
  connections_.erase(id);
}

void Zygote::shutdown() {
  spares_.killAll();
  processes_.killAll();
  connections_.clear();
  if (listener_) {
    listener_.reset();
    unlink(options_.socketPath.c_str());
  }
  // Reap what we just killed so nothing is left as a zombie of ours.
  for (int i = 0; i < 50; ++i) {
    processes_.reapChildren();
    if (waitpid(-1, nullptr, WNOHANG) < 0 && errno == ECHILD) break;
    usleep(2000);
  }
}

}  // namespace forkgym::forkserver
