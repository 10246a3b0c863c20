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

#include <spdlog/spdlog.h>

#include "forkserver/single_thread.h"
#include "forkserver/worker.h"
#include "ipc/channel.h"
#include "ipc/message_area.h"
#include "ipc/protocol.capnp.h"
#include "base/syscall.h"
#include "passes/run_config.h"
#include "passes/runner.h"

namespace forkgym::forkserver {

namespace {

kj::StringPtr text(std::string_view view) { return kj::StringPtr(view.data(), view.size()); }

void fillSpace(proto::SpaceDescription::Builder out, const passes::Space& space) {
  out.setName(space.name);
  out.setType(static_cast<proto::ValueType>(space.type));
  auto shape = out.initShape(static_cast<unsigned>(space.shape.size()));
  for (unsigned i = 0; i < space.shape.size(); ++i) shape.set(i, space.shape[i]);
  out.setLow(space.low);
  out.setHigh(space.high);
  auto names = out.initFeatureNames(static_cast<unsigned>(space.featureNames.size()));
  for (unsigned i = 0; i < space.featureNames.size(); ++i) names.set(i, space.featureNames[i]);
  out.setDeterministic(space.deterministic);
  out.setPlatformDependent(space.platformDependent);
  out.setNeedsRunConfig(space.needsRunConfig);
  out.setForm(static_cast<proto::ValueForm>(space.form));
  out.setFloat32(space.float32);
  out.setFileSuffix(space.fileSuffix);
  out.setDescription(space.description);
}

// The wire's ValueType is passes::ValueType, value for value.
static_assert(static_cast<int>(proto::ValueType::INT64_MAP) == static_cast<int>(passes::ValueType::Int64Map));
static_assert(static_cast<int>(proto::ValueType::BOOLEAN) == static_cast<int>(passes::ValueType::Bool));
// And its ValueForm passes::ValueForm.
static_assert(static_cast<int>(proto::ValueForm::PROGRAM_GRAPH_NODE_LINK) ==
              static_cast<int>(passes::ValueForm::ProgramGraphNodeLink));

}  // namespace

void fillHello(proto::Hello::Builder hello, std::span<const passes::Backend* const> backends) {
  hello.setProtocolVersion(proto::PROTOCOL_VERSION);
  auto list = hello.initBackends(static_cast<unsigned>(backends.size()));
  for (unsigned i = 0; i < backends.size(); ++i) {
    const passes::Backend& backend = *backends[i];
    auto out = list[i];
    out.setName(text(backend.name));
    out.setActionTableHash(backend.actionSpace().hash);
    // Idempotent: the zygote initialised every backend at start-up.
    auto identity = backend.initialize();
    if (!identity) continue;
    out.setVersion(identity->version);
    auto properties = out.initProperties(static_cast<unsigned>(identity->properties.size()));
    for (unsigned p = 0; p < identity->properties.size(); ++p) {
      properties[p].setKey(identity->properties[p].key);
      properties[p].setValue(identity->properties[p].value);
    }
  }
}

void fillDescription(proto::Description::Builder out, const passes::Backend& backend,
                     const std::vector<std::string>& cached) {
  out.setBackend(text(backend.name));
  out.setDescription(text(backend.description));
  if (auto identity = backend.initialize()) out.setVersion(identity->version);
  const passes::ActionSpace& space = backend.actionSpace();
  out.setActionSpace(space.name);
  auto actions = out.initActions(static_cast<unsigned>(space.actions.size()));
  for (unsigned i = 0; i < space.actions.size(); ++i) {
    const passes::Action& row = space.actions[i];
    actions[i].setFlag(row.name);
    actions[i].setReplay(row.replay);
    actions[i].setDescription(row.description);
    actions[i].setUnavailableReason(row.unavailableReason);
    actions[i].setTestOnly(row.testOnly);
  }
  auto replay = out.initReplay();
  replay.setProgram(space.replay.program);
  replay.setActionsPrefix(space.replay.actionsPrefix);
  replay.setSeparator(space.replay.separator);
  replay.setActionsSuffix(space.replay.actionsSuffix);
  replay.setTail(space.replay.tail);
  replay.setFromState(space.replay.fromState);
  auto stateArguments = replay.initStateArguments(static_cast<unsigned>(space.replay.stateArguments.size()));
  for (unsigned i = 0; i < space.replay.stateArguments.size(); ++i) {
    stateArguments.set(i, space.replay.stateArguments[i]);
  }
  const auto observationSpaces = backend.observationSpaces();
  auto observations = out.initObservations(static_cast<unsigned>(observationSpaces.size()));
  for (unsigned i = 0; i < observationSpaces.size(); ++i) fillSpace(observations[i], observationSpaces[i]);
  const auto rewardSpaces = backend.rewardSpaces();
  auto rewards = out.initRewards(static_cast<unsigned>(rewardSpaces.size()));
  for (unsigned i = 0; i < rewardSpaces.size(); ++i) fillSpace(rewards[i], rewardSpaces[i]);
  auto benchmarks = out.initCachedBenchmarks(static_cast<unsigned>(cached.size()));
  for (unsigned i = 0; i < cached.size(); ++i) benchmarks.set(i, cached[i]);
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

std::optional<BaselineCache> openBaselineCache(const ZygoteOptions& options) {
  if (options.baselineCacheDirectory.empty()) return std::nullopt;
  auto cache = BaselineCache::open(options.baselineCacheDirectory);
  if (!cache) {
    spdlog::warn("baselines are not kept on disk: {}", cache.error().message);
    return std::nullopt;
  }
  return std::move(*cache);
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
      loads_(loaderLimits(options_), options_.testLoadGate),
      baselines_(loaderLimits(options_), openBaselineCache(options_)) {}

Zygote::~Zygote() = default;

Status Zygote::start() {
  // Workers and their forks are our children or grandchildren; as subreaper
  // we reap them all, whichever of them dies first.
  if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0) return makeError(Outcome::ServerError, errnoMessage("PR_SET_CHILD_SUBREAPER"));
  // Before any backend: the probe child and the PID namespace's reaper are
  // forked from a small process, and every child forked later lands in the
  // namespaces entered here.
  // Before isolation: the segment is found by name in this user's /dev/shm,
  // which every zygote of the user shares. A cache that cannot open is off.
  if (auto opened = stateCache_.open(options_.stateCache); !opened) {
    spdlog::warn("state cache off: {}", opened.error().message);
  }
  isolation_ = sandbox::enterIsolation(options_.isolation);
  sandboxReport_ = sandbox::isolationReport(isolation_);
  std::string features;
  for (const auto& feature : sandboxReport_.features) features += (features.empty() ? "" : ", ") + feature;
  spdlog::info("sandbox level {}: {}", sandboxReport_.level, features);
  for (const auto& fallback : sandboxReport_.fallbacks) spdlog::info("sandbox fallback: {}", fallback);
  // Workers that may open files (runnable benchmarks, external compilers)
  // are kept from the segment's file by Landlock; where the kernel has none,
  // a worker running as this user could open it writable: no cache then.
  if (stateCache_.enabled() && isolation_.landlockAbi < 1) {
    spdlog::warn("state cache off: without Landlock a worker that may open files could open its segment");
    stateCache_ = StateCacheWriter();
  }
  if (options_.backends.empty()) return makeError(Outcome::ServerError, "the server has no backends");
  // Built and compiled to BPF once here, so each worker only installs it.
  sandbox::prepareSandbox({kDefaultRegionBytes});
  // Runnable benchmarks' workers link and run programs: a profile of their
  // own, prepared once here (the driver's and linker's paths found now), before
  // the backends start: what it probes (the instruction counter) is in their
  // descriptions.
  if (auto binaries = passes::runnableProfile(); !binaries) {
    runnableUnavailable_ = binaries.error().message;
  } else if (auto runnable = sandbox::prepareExternalCompiler(*binaries); !runnable) {
    runnableUnavailable_ = runnable.error().message;
  } else {
    runnableProfile_ = *runnable;
  }
  if (!runnableProfile_) spdlog::warn("runnable benchmarks are unavailable: {}", runnableUnavailable_);
  // A backend that cannot start (its compiler missing) is left out: the
  // server serves the others, and says why to whoever asks for it.
  std::vector<const passes::Backend*> serving;
  std::string reasons;
  for (const passes::Backend* backend : options_.backends) {
    auto profile = startBackend(*backend);
    if (!profile) {
      unavailable_.emplace_back(backend, profile.error().message);
      reasons += (reasons.empty() ? "" : "; ") + std::string(backend->name) + ": " + profile.error().message;
      continue;
    }
    workerProfiles_[backend] = *profile;
    serving.push_back(backend);
  }
  if (serving.empty()) return makeError(Outcome::ServerError, "no backend could start (" + reasons + ")");
  options_.backends = std::move(serving);
  for (const auto& [backend, reason] : unavailable_) {
    spdlog::warn("the {} backend is unavailable: {} (serving {})", backend->name, reason, backendNames());
  }

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
    Connection connection{UniqueFd(options_.connectedFd), {}, false, false, {}};
    // The client that spawned this zygote (a socket pair's peer is its creator).
    if (!sandbox::clientIdentityOf(connection.fd.get(), connection.client)) {
      return makeError(Outcome::ServerError, errnoMessage("SO_PEERCRED on the client's socket"));
    }
    connections_.emplace(nextConnectionId_++, std::move(connection));
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
  std::vector<BenchmarkKey> order;  // as given
  std::map<BenchmarkKey, passes::LoadedBenchmark> loaded;
  size_t next = 0, cached = 0;
  while (!stopping_ && cached < options_.preload.size()) {
    while (next < options_.preload.size() && loads_.size() < parallel) {
      const auto& [backend, requested] = options_.preload[next++];
      if (auto served = findBackend(backend->name); !served) {
        spdlog::error("preload {}: {}", requested, served.error().message);
        return makeError(served.error().outcome, "cannot preload '" + requested + "': " + served.error().message);
      }
      auto location = backend->resolve(requested, options_.benchmarks);
      Status joined = location ? passes::checkBenchmarkInput(location->source) : Status(location.takeError());
      const BenchmarkKey key = joined ? BenchmarkKey{backend, location->source, location->recipe} : BenchmarkKey{backend, {}, {}};
      if (joined && std::find(order.begin(), order.end(), key) == order.end()) {
        joined = loads_.join(key, loadRequest(key, {}), std::nullopt);
      }
      if (!joined) {
        spdlog::error("preload {}: {}", requested, joined.error().message);
        return makeError(Outcome::BenchmarkError, "cannot preload '" + requested + "': " + joined.error().message);
      }
      order.push_back(key);
    }
    if (!loads_.empty()) turn(/*serveClients=*/false);
    for (auto& finished : loads_.takeFinished()) {
      if (!finished.result) {
        spdlog::error("preload {}: {}", finished.key.uri, finished.result.error().message);
        return makeError(Outcome::BenchmarkError,
                         "cannot preload '" + finished.key.uri + "': " + finished.result.error().message);
      }
      loaded.emplace(finished.key, std::move(*finished.result));
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
        spdlog::error("preload {}: {}", order[cached].uri, inserted.error().message);
        return makeError(Outcome::BenchmarkError,
                         "cannot preload '" + order[cached].uri + "': " + inserted.error().message);
      }
    }
  }
  if (stopping_) return makeError(Outcome::ServerError, "stopped by a signal while preloading");
  if (!options_.preload.empty()) spdlog::info("preloaded {} benchmark(s), ~{} MB", options_.preload.size(), cache_.bytes() >> 20);
  return okStatus();
}

passes::LoadRequest Zygote::loadRequest(const BenchmarkKey& key, const std::string& knownHash) const {
  passes::LoadRequest request;
  request.uri = key.uri;
  request.recipe = key.recipe;
  request.expectedHash = knownHash;
  request.roots = options_.benchmarks.roots;
  request.toolMemoryBytes = loaderLimits(options_).addressSpaceBytes;
  return request;
}

Result<CachedEntry*> Zygote::cacheLoaded(const BenchmarkKey& key, passes::LoadedBenchmark loaded) {
  // Said once: the next load from that directory would say it again.
  if (!loaded.warning.empty() && warned_.insert(loaded.warning).second) spdlog::warn("{}", loaded.warning);
  if (loaded.unchanged) {
    // Null when that content was evicted meanwhile: the caller loads again.
    CachedEntry* entry = cache_.confirm(key, loaded.contentHash, std::move(loaded.inputs));
    // Its baselines, if a baseline child failed before.
    if (entry != nullptr) baselines_.start(*entry, key.uri);
    return entry;
  }
  // What comes back was made by this backend's own loader, in a child: the
  // backend may trust it (e.g. LLVM parses bitcode its own writer produced
  // from a verified module).
  auto prepared = key.backend->prepare(loaded);
  if (!prepared) return prepared.takeError();
  spdlog::debug("cached {} {} as {} (~{} KB)", key.backend->name, key.uri, loaded.contentHash,
                (*prepared)->sizeInCache() >> 10);
  CachedEntry* entry = cache_.insert(key, loaded.contentHash, std::move(*prepared), std::move(loaded.inputs));
  // After the first session's worker would be too late for nothing: the
  // disk cache is read now, a baseline child works alongside the sessions.
  if (entry != nullptr) baselines_.start(*entry, key.uri);
  return entry;
}

int Zygote::run() {
  const bool idleExits = listener_ && options_.exitWhenIdle.count() > 0;
  if (idleExits) idleSince_ = std::chrono::steady_clock::now();
  while (!stopping_) {
    turn(/*serveClients=*/true);
    answerFinishedLoads();
    baselines_.adoptFinished(cache_);
    // A client answered after a wait may have sent more meanwhile: those
    // frames are buffered, and poll() will not report them again.
    for (uint64_t id : std::exchange(resumed_, {})) {
      auto it = connections_.find(id);
      if (it != connections_.end() && !it->second.waiting && !serveConnection(id, it->second)) closeConnection(id);
    }
    // A private zygote lives exactly as long as the client that spawned it.
    if (!listener_ && connections_.empty()) stopping_ = true;
    if (idleExits) {
      const auto now = std::chrono::steady_clock::now();
      if (!connections_.empty()) {
        idleSince_.reset();
      } else if (!idleSince_) {
        idleSince_ = now;
      } else if (now - *idleSince_ >= options_.exitWhenIdle) {
        acceptClients();  // one that connected just now keeps the server
        if (connections_.empty()) {
          spdlog::info("no client for {} ms: exiting", options_.exitWhenIdle.count());
          stopping_ = true;
        } else {
          idleSince_.reset();
        }
      }
    }
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
  baselines_.addPollFds(fds);
  const size_t firstLink = fds.size();
  stateCache_.addPollFds(fds);
  // Spares are forked only when nothing is waiting to be read, so making
  // one never delays a request.
  const bool spareWanted = serveClients && spares_.nextWanted().has_value();
  int timeout = loads_.msUntilNextDeadline();
  if (const int baselineTimeout = baselines_.msUntilNextDeadline(); baselineTimeout >= 0) {
    timeout = timeout < 0 ? baselineTimeout : std::min(timeout, baselineTimeout);
  }
  if (const int idleTimeout = msUntilIdleExit(); idleTimeout >= 0) {
    timeout = timeout < 0 ? idleTimeout : std::min(timeout, idleTimeout);
  }
  const int ready = poll(fds.data(), fds.size(), spareWanted ? 0 : timeout);
  if (ready < 0) {
    if (errno == EINTR) return;
    spdlog::critical("poll: {}", std::strerror(errno));
    stopping_ = true;
    return;
  }
  loads_.expire();
  baselines_.expire();
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
  for (size_t i = firstLoad; i < firstLink; ++i) {
    if (fds[i].revents) {
      loads_.onReadable(fds[i].fd);
      baselines_.onReadable(fds[i].fd);
    }
  }
  for (size_t i = firstLink; i < fds.size(); ++i) {
    if (fds[i].revents) stateCache_.onReadable(fds[i].fd);
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
  for (const auto& [pid, status] : processes_.reapChildren()) {
    loads_.onExit(pid, status);
    baselines_.onExit(pid, status);
  }
}

void Zygote::answerFinishedLoads() {
  for (auto& finished : loads_.takeFinished()) {
    auto benchmark = finished.result ? cacheLoaded(finished.key, std::move(*finished.result))
                                     : Result<CachedEntry*>(finished.result.takeError());
    if (!benchmark) {
      spdlog::debug("load of {} failed: {}", finished.key.uri, benchmark.error().message);
      for (const auto& waiter : finished.waiters) answerSession(waiter, benchmark);
      continue;
    }
    for (const auto& waiter : finished.waiters) {
      // A request that came while the load ran gets what is on disk now: the
      // files must still be as the load read them, else it loads again. (The
      // load may have read them right after they were written: no need to
      // check their content again this soon.)
      auto lookup = cache_.lookup(waiter.key, /*acceptUnsure=*/true);
      if (lookup.fresh) {
        answerSession(waiter, lookup.fresh);
      } else if (auto joined = loads_.join(waiter.key, loadRequest(waiter.key, lookup.knownHash), waiter); !joined) {
        answerSession(waiter, joined.takeError());
      }
    }
  }
}

void Zygote::answerSession(const SessionRequest& request, const Result<CachedEntry*>& benchmark) {
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

int Zygote::msUntilIdleExit() const {
  if (!idleSince_) return -1;
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      *idleSince_ + options_.exitWhenIdle - std::chrono::steady_clock::now());
  return static_cast<int>(std::clamp<int64_t>(left.count() + 1, 0, 60'000));
}

void Zygote::acceptClients() {
  for (;;) {
    int fd = accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;
    UniqueFd client(fd);
    sandbox::FsIdentity peer;
    // The socket file is owner-only already; checking the peer as well means a
    // descriptor leaked to another user still cannot start workers. (Loads
    // shared by URI and cached modules rely on this: every client of a
    // server reaches at least what the server's user does.)
    if (!sandbox::clientIdentityOf(fd, peer) || (peer.uid != getuid() && peer.uid != 0)) {
      spdlog::warn("refused a connection from uid {}", peer.uid);
      continue;
    }
    const uint64_t id = nextConnectionId_++;
    spdlog::debug("client {} connected (uid {})", id, peer.uid);
    connections_.emplace(id, Connection{std::move(client), {}, false, false, std::move(peer)});
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

Result<sandbox::Profile> Zygote::startBackend(const passes::Backend& backend) {
  auto identity = backend.initialize();
  if (!identity) return identity.takeError();
  std::string facts;
  for (const auto& property : identity->properties) facts += " " + property.key + "=" + property.value;
  spdlog::info("backend {} {} initialised;{}", backend.name, identity->version, facts);
  if (backend.sandbox != passes::WorkerSandbox::ExternalCompiler) return sandbox::Profile::Worker;
  if (backend.externalCompiler == nullptr) {
    return makeError(Outcome::ServerError, "it runs an external compiler but names no binaries");
  }
  return sandbox::prepareExternalCompiler(backend.externalCompiler());
}

std::string Zygote::backendNames() const {
  std::string names;
  for (const passes::Backend* backend : options_.backends) {
    names += (names.empty() ? "" : ", ") + std::string(backend->name);
  }
  return names;
}

Result<const passes::Backend*> Zygote::findBackend(std::string_view name) const {
  for (const passes::Backend* backend : options_.backends) {
    if (backend->name == name) return backend;
  }
  for (const auto& [backend, reason] : unavailable_) {
    if (backend->name == name) {
      return makeError(Outcome::BackendUnavailable, "the " + std::string(name) +
                                                        " backend is unavailable on this server (it serves " +
                                                        backendNames() + "): " + reason);
    }
  }
  return makeError(Outcome::InvalidRequest,
                   (name.empty() ? std::string("no backend named") : "unknown backend '" + std::string(name) + "'") +
                       "; this server has " + backendNames());
}

std::optional<uint64_t> Zygote::actionTableHash(std::string_view backend) {
  auto found = findBackend(backend);
  if (!found) return std::nullopt;
  return (*found)->actionSpace().hash;
}

void Zygote::hello(proto::Hello::Builder out) {
  fillHello(out, options_.backends);
  out.setSandboxLevel(sandboxReport_.level);
  auto features = out.initSandboxFeatures(static_cast<unsigned>(sandboxReport_.features.size()));
  for (unsigned i = 0; i < sandboxReport_.features.size(); ++i) features.set(i, sandboxReport_.features[i]);
  auto fallbacks = out.initSandboxFallbacks(static_cast<unsigned>(sandboxReport_.fallbacks.size()));
  for (unsigned i = 0; i < sandboxReport_.fallbacks.size(); ++i) fallbacks.set(i, sandboxReport_.fallbacks[i]);
}

Status Zygote::describe(std::string_view backend, proto::Description::Builder out) {
  auto found = findBackend(backend);
  if (!found) return found.takeError();
  fillDescription(out, **found, cache_.uris(*found));
  return okStatus();
}

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
  if (auto stats = stateCache_.stats()) {
    auto cache = out.initStateCache();
    cache.setName(stateCache_.cache()->name());
    cache.setCapacityBytes(stats->capacityBytes);
    cache.setUsedBytes(stats->usedBytes);
    cache.setEntries(stats->entries);
    cache.setInserts(stats->inserts);
    cache.setEvictions(stats->evictions);
    cache.setDropped(stats->dropped);
    cache.setHits(stats->hits);
    cache.setMisses(stats->misses);
    cache.setRejected(stateCache_.rejected());
  }
}

Result<ControlHandler::SessionStart> Zygote::newSession(const std::string& backendName, const std::string& uri,
                                                       proto::Limits::Reader limits,
                                                       proto::SessionStarted::Builder started,
                                                       std::vector<UniqueFd>& passFds,
                                                       const std::optional<RunConfig>& clientRunConfig) {
  auto backend = findBackend(backendName);
  if (!backend) return backend.takeError();
  // Strings and stat() only: where the URI leads, for this backend.
  auto location = (*backend)->resolve(uri, options_.benchmarks);
  if (!location) return location.takeError();
  // The program's run configuration: the client's (checked), else its
  // dataset's. Only backends that compile in process build programs.
  std::optional<RunConfig> runConfig = clientRunConfig;
  if (runConfig) {
    if ((*backend)->sandbox != passes::WorkerSandbox::InProcessCompiler) {
      return makeError(Outcome::InvalidRequest, "the " + std::string((*backend)->name) +
                                                    " backend builds no programs: a run configuration is for "
                                                    "the llvm backend's benchmarks");
    }
    if (auto valid = passes::checkRunConfig(*runConfig); !valid) return valid.takeError();
    if (!runnableProfile_) {
      return makeError(Outcome::ServerError, "this server cannot run programs: " + runnableUnavailable_);
    }
    if (runConfig->origin.empty()) runConfig->origin = "client";
    runConfig = passes::withDefaults(std::move(*runConfig));
  } else if ((*backend)->sandbox == passes::WorkerSandbox::InProcessCompiler && runnableProfile_) {
    runConfig = passes::datasetRunConfig(location->uri, location->runnable);
  }
  const SessionRequest request{currentConnection_, BenchmarkKey{*backend, location->source, location->recipe}, location->uri,
                               limits.getAddressSpaceMb(), limits.getCpuSecondsPerStep(),
                               connections_.at(currentConnection_).client, std::move(runConfig)};
  // A few stat() calls: are the files this benchmark was made from as they were?
  const auto lookup = cache_.lookup(request.key);
  if (lookup.fresh) {
    if (auto ok = startSession(lookup.fresh, request, started, passFds); !ok) return ok.takeError();
    return SessionStart::Started;
  }
  // Refused at once if it is not a regular file or directory: a FIFO would
  // block the loader, a device never end.
  if (auto input = passes::checkBenchmarkInput(location->source); !input) return input.takeError();
  if (auto joined = loads_.join(request.key, loadRequest(request.key, lookup.knownHash), request); !joined) {
    return joined.takeError();
  }
  connections_.at(currentConnection_).waiting = true;
  return SessionStart::Deferred;
}

Status Zygote::startSession(CachedEntry* benchmark, const SessionRequest& request,
                            proto::SessionStarted::Builder started, std::vector<UniqueFd>& passFds) {
  // Spares run with the server's default limits, so only such sessions use
  // one; a runnable benchmark's spare was forked with its run configuration.
  const bool defaultLimits = request.addressSpaceMb == 0 && request.cpuSecondsPerStep == 0;
  std::optional<SpareWorker> worker;
  if (defaultLimits && options_.spareWorkers > 0) {
    const SpareKey key{request.key, request.runConfig};
    worker = spares_.take(key, benchmark->contentHash);
    spares_.want(key);
  }
  if (!worker) {
    const uint32_t cpuPerStep = request.cpuSecondsPerStep ? request.cpuSecondsPerStep : options_.cpuSecondsPerStep;
    auto fresh = startWorker(request.key, benchmark, limitsFor(request, options_.limits), cpuPerStep,
                             request.runConfig);
    if (!fresh) return fresh.takeError();
    worker = std::move(*fresh);
  }
  processes_.addWorkerGroup(request.connection, worker->pid);
  stateCache_.bind(worker->pid, benchmark->contentHash, request.client.uid);
  started.setPid(worker->pid);
  started.setRegionBytes(worker->regionBytes);
  started.setBenchmark(request.uri);
  started.setBenchmarkHash(benchmark->contentHash);
  passFds.push_back(std::move(worker->ends.memfd));
  passFds.push_back(std::move(worker->ends.doorbell));
  passFds.push_back(std::move(worker->pidfd));
  spdlog::debug("client {}: {} worker {} for {}", request.connection, request.key.backend->name, worker->pid,
                request.uri);
  return okStatus();
}

Result<SpareWorker> Zygote::startWorker(const BenchmarkKey& key, CachedEntry* benchmark,
                                        const sandbox::SandboxLimits& limits, uint32_t cpuSecondsPerStep,
                                        const std::optional<RunConfig>& runConfig, bool prepareFirstStep) {
  auto channel = Channel::create();
  if (!channel) return channel.takeError();
  auto& [workerChannel, clientEnds] = *channel;
  // Runnable episodes are cached too: the cache leaves out every value the
  // run configuration could change (forkserver/state_cache_entry.h).
  std::pair<UniqueFd, UniqueFd> link;
  if (stateCache_.enabled() && benchmark->backend->stateCache != nullptr) {
    auto made = stateCache_.link();
    if (made) {
      link = std::move(*made);
    } else {
      spdlog::warn("state cache link: {}", made.error().message);
    }
  }

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
    link.second.reset();
    runWorker(WorkerStart{std::move(workerChannel), benchmark->backend, benchmark->benchmark.get(),
                          runConfig ? passes::runnableLimits(limits) : limits, cpuSecondsPerStep,
                          runConfig ? *runnableProfile_ : workerProfiles_.at(benchmark->backend), runConfig,
                          prepareFirstStep, link.first.valid() ? stateCache_.cache() : nullptr,
                          std::move(link.first)});
  }
  setpgid(pid, pid);
  link.first.reset();
  if (link.second.valid()) stateCache_.adopt(pid, std::move(link.second), *benchmark->backend);
  const long pidfd = syscall(SYS_pidfd_open, pid, 0);
  if (pidfd < 0) {
    kill(pid, SIGKILL);
    return makeError(Outcome::ServerError, errnoMessage("pidfd_open(worker)"));
  }
  spdlog::trace("forked worker {} in {} µs", pid,
                std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - forkStart).count());
  return SpareWorker{SpareKey{key, runConfig}, benchmark->contentHash, pid, UniqueFd(static_cast<int>(pidfd)), std::move(clientEnds),
                     workerChannel.region().size()};
}

void Zygote::makeSpare() {
  auto key = spares_.nextWanted();
  if (!key) return;
  auto* benchmark = cache_.peek(key->benchmark);
  if (!benchmark) {
    spares_.dropBenchmark(key->benchmark);  // evicted from the cache since it was wanted
    return;
  }
  // As startSession() would fork it for a reset with the default limits.
  auto spare = startWorker(key->benchmark, benchmark, options_.limits, options_.cpuSecondsPerStep, key->runConfig,
                           /*prepareFirstStep=*/options_.spareWarmUp);
  if (!spare) {
    spdlog::warn("spare worker for {}: {}", key->benchmark.uri, spare.error().message);
    spares_.dropBenchmark(key->benchmark);
    return;
  }
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
  baselines_.killAll();
  spares_.killAll();
  processes_.killAll();
  connections_.clear();
  // The reaper exits once the namespace is empty, and is reaped below.
  if (isolation_.reaperLifeline >= 0) close(std::exchange(isolation_.reaperLifeline, -1));
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
