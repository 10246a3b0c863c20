#include "client/connection.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <thread>
#include <utility>

#include "client/process_identity.h"
#include "ipc/action_table_hash.h"
#include "ipc/control_socket.h"
#include "ipc/message_area.h"
#include "ipc/protocol.capnp.h"
#include "base/shell_quote.h"
#include "base/syscall.h"

extern char** environ;

namespace forkgym {
namespace {

constexpr std::chrono::milliseconds kControlTimeout{30000};

Error failureToError(proto::Failure::Reader failure) {
  Error error;
  error.outcome = outcomeFromWire(failure.getOutcome());
  error.message = failure.getMessage();
  error.signal = failure.getSignal();
  return error;
}

// Reads a zygote reply: a failure becomes its Error, a malformed message (one
// Cap'n Proto refuses) a ProtocolMismatch, anything else goes to `parse`.
template <typename T, typename Parse>
Result<T> parseReply(const Frame& frame, const char* what, Parse parse) {
  std::optional<Result<T>> result;
  kj::Maybe<kj::Exception> exception = kj::runCatchingExceptions([&] {
    capnp::FlatArrayMessageReader reader(frame.words, peerReaderOptions(frame.words.size()));
    auto reply = reader.getRoot<proto::ControlReply>();
    if (reply.isFailure()) {
      result.emplace(failureToError(reply.getFailure()));
    } else {
      result.emplace(parse(reply));
    }
  });
  KJ_IF_MAYBE(e, exception) {
    return makeError(Outcome::ProtocolMismatch, std::string("malformed ") + what + " from the server: " + e->getDescription().cStr());
  }
  return std::move(*result);
}

// ValueForm's names as the protocol spells them (an unknown one, from a newer
// server, by its number: the client then shows the value as it travels).
std::string valueFormName(proto::ValueForm form) {
  static constexpr const char* kNames[] = {"plain",   "featureDict",  "json",
                                           "file",    "records",      "programGraph",
                                           "programGraphNodeLink"};
  const auto index = static_cast<size_t>(form);
  return index < std::size(kNames) ? kNames[index] : "form" + std::to_string(index);
}

std::string hex(uint64_t value) {
  char text[19];
  std::snprintf(text, sizeof(text), "%016llx", static_cast<unsigned long long>(value));
  return text;
}

std::string actionTableMismatch(const std::string& backend, uint64_t client, uint64_t server) {
  return "client built for action table " + hex(client) + " of backend '" + backend + "', server has " + hex(server) +
         "; install matching forkgym client and server";
}

// The backends this client was built knowing, with their action tables'
// hashes (generated from the tables at build time).
struct KnownBackend {
  const char* name;
  uint64_t actionTableHash;
};
constexpr KnownBackend kKnownBackends[] = {{kActionTableBackend, kActionTableHash}};
// More backends than any server serves: a list past it is garbage.
constexpr unsigned kMaxBackends = 1024;

Error unexpected(const char* what) {
  return makeError(Outcome::ProtocolMismatch, std::string("the server answered ") + what + " with something else");
}

// Only the same user, or root, may serve this client's episodes: anyone else
// listening on the path could read and rewrite them.
Status checkServerIdentity(int socket, const std::string& path, pid_t& serverPid) {
  auto peer = peerCredentials(socket);
  if (!peer) return peer.takeError();
  const uid_t self = geteuid();
  if (peer->uid != self && peer->uid != 0) {
    return makeError(Outcome::ServerError, "refusing the forkgym server at '" + path + "': it runs as uid " +
                                               std::to_string(peer->uid) + ", not as this user (uid " +
                                               std::to_string(self) + ") or root; another user may be "
                                               "impersonating the server. Start your own (forkgym-server --socket "
                                               "PATH in a directory only you can use) and connect to that");
  }
  serverPid = peer->pid;
  return okStatus();
}

}  // namespace

int Description::findAction(std::string_view flag) const {
  for (size_t i = 0; i < actions.size(); ++i) {
    std::string_view name = actions[i].flag;
    if (name == flag || (name.starts_with('-') && name.substr(1) == flag)) return static_cast<int>(i);
  }
  return -1;
}

const SpaceDescription* Description::findObservation(std::string_view name) const {
  for (const auto& space : observations) {
    if (space.name == name) return &space;
  }
  return nullptr;
}

const SpaceDescription* Description::findReward(std::string_view name) const {
  for (const auto& space : rewards) {
    if (space.name == name) return &space;
  }
  return nullptr;
}

std::string BackendInfo::property(std::string_view key) const {
  for (const auto& [name, value] : properties) {
    if (name == key) return value;
  }
  return {};
}

std::string Description::commandLine(std::span<const uint32_t> indices) const {
  std::string joined;
  for (uint32_t action : indices) {
    // Actions without replay text (test-only ones) are left out, which keeps
    // the command line parseable (no empty element between separators).
    if (action >= actions.size() || actions[action].replay.empty()) continue;
    if (!joined.empty()) joined += replay.separator;
    joined += actions[action].replay;
  }
  std::string line = shellQuoted(replay.program);
  if (!joined.empty()) line += replay.actionsPrefix + joined + replay.actionsSuffix;
  return line + replay.tail;
}

Status Description::checkStateCommandLine(std::string_view line) const {
  const auto refuse = [&](const std::string& why) {
    return makeError(Outcome::InvalidRequest, "the worker's command line for its state was refused (" + why +
                                                  "): '" + std::string(line.substr(0, 200)) + "'");
  };
  if (!replay.fromState) return refuse("this backend replays from its actions");
  const std::string program = shellQuoted(replay.program);
  if (!line.starts_with(program) || !line.ends_with(replay.tail) ||
      line.size() < program.size() + replay.tail.size()) {
    return refuse("it does not start with " + program + " and end with '" + replay.tail + "'");
  }
  std::string_view arguments = line.substr(program.size(), line.size() - program.size() - replay.tail.size());
  if (arguments.empty()) return okStatus();
  if (!arguments.starts_with(replay.actionsPrefix) || !arguments.ends_with(replay.actionsSuffix) ||
      arguments.size() < replay.actionsPrefix.size() + replay.actionsSuffix.size() || replay.separator.empty()) {
    return refuse("its arguments are not written as this backend writes them");
  }
  arguments = arguments.substr(replay.actionsPrefix.size(),
                               arguments.size() - replay.actionsPrefix.size() - replay.actionsSuffix.size());
  const auto admitted = [&](std::string_view argument) {
    for (const std::string& form : replay.stateArguments) {
      if (!form.ends_with('=')) {
        if (argument == form) return true;
        continue;
      }
      if (!argument.starts_with(form)) continue;
      std::string_view number = argument.substr(form.size());
      if (number.starts_with('-')) number.remove_prefix(1);
      if (!number.empty() && number.size() <= 19 &&
          number.find_first_not_of("0123456789") == std::string_view::npos) {
        return true;
      }
    }
    return false;
  };
  for (;;) {
    const size_t end = arguments.find(replay.separator);
    const std::string_view argument = arguments.substr(0, end);
    if (!admitted(argument)) return refuse("'" + std::string(argument) + "' is not an argument of this backend");
    if (end == std::string_view::npos) return okStatus();
    arguments.remove_prefix(end + replay.separator.size());
  }
}

const BackendInfo* ServerInfo::backend(std::string_view name) const {
  for (const auto& backend : backends) {
    if (backend.name == name) return &backend;
  }
  return nullptr;
}

std::string defaultServerPath() {
  if (const char* env = std::getenv("FORKGYM_SERVER"); env && *env) return env;
#ifdef FORKGYM_DEFAULT_SERVER_PATH
  if (access(FORKGYM_DEFAULT_SERVER_PATH, X_OK) == 0) return FORKGYM_DEFAULT_SERVER_PATH;
#endif
  return "forkgym-server";
}

Connection::Connection() : forkWatch_(this, &Connection::forgetInChild) {}

Result<std::shared_ptr<Connection>> Connection::connect(const std::string& socketPath) {
  std::shared_ptr<Connection> connection(new Connection());
  connection->socketPath_ = socketPath;
  std::lock_guard lock(connection->mutex_);
  if (auto opened = connection->openLocked(); !opened) return opened.takeError();
  return connection;
}

Result<std::shared_ptr<Connection>> Connection::spawn(const ServerOptions& options) {
  std::shared_ptr<Connection> connection(new Connection());
  connection->spawnOptions_ = options;
  std::lock_guard lock(connection->mutex_);
  if (auto opened = connection->openLocked(); !opened) return opened.takeError();
  return connection;
}

Status Connection::reconnect() {
  std::lock_guard lock(mutex_);
  return openLocked();
}

Status Connection::reviveIfDead() {
  std::lock_guard lock(mutex_);
  if (alive_.load(std::memory_order_relaxed) && !inherited_) return okStatus();
  return openLocked();
}

Status Connection::openLocked() {
  releaseServerLocked();
  alive_.store(false, std::memory_order_release);
  inherited_ = false;
  descriptions_.clear();
  if (!socketPath_.empty()) {
    // A socket in the default directory is trusted only if that directory
    // is private: otherwise another user could have put it there first.
    const std::string dir = std::filesystem::path(socketPath_).parent_path().string();
    if (dir == defaultSocketDir()) {
      if (auto private_ = checkPrivateDir(dir, /*create=*/false); !private_) return private_.takeError();
    }
    auto fd = connectUnix(socketPath_);
    if (!fd) return fd.takeError();
    pid_t peer = -1;
    if (auto trusted = checkServerIdentity(fd->get(), socketPath_, peer); !trusted) return trusted.takeError();
    socket_ = std::move(*fd);
    zygotePid_.store(peer, std::memory_order_relaxed);
  } else {
    auto started = startServer(spawnOptions_);
    if (!started) return started.takeError();
    socket_ = std::move(started->first);
    serverPid_.store(started->second, std::memory_order_relaxed);
    zygotePid_.store(started->second, std::memory_order_relaxed);
  }
  alive_.store(true, std::memory_order_release);
  return helloLocked();
}

Result<std::pair<UniqueFd, pid_t>> Connection::startServer(const ServerOptions& options) {
  int pair[2];
  if (auto r = sys("socketpair(control)", [&] { return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair); }); !r) {
    return r.takeError();
  }
  UniqueFd ours(pair[0]), theirs(pair[1]);
  // The server finds its end on descriptor 3; dup2 onto 3 clears
  // close-on-exec only if the source is a different descriptor.
  if (theirs.get() == 3) theirs.reset(fcntl(3, F_DUPFD_CLOEXEC, 10));

  const std::string server = options.serverPath.empty() ? defaultServerPath() : options.serverPath;
  std::vector<std::string> args = {server, "--connected-fd", "3", "--log-level", options.logLevel};
  for (const auto& uri : options.preload) {
    args.push_back("--preload");
    args.push_back(uri);
  }
  for (const auto& root : options.benchmarkRoots) {
    args.push_back("--benchmark-root");
    args.push_back(root);
  }
  if (options.cacheMb) {
    args.push_back("--cache-mb");
    args.push_back(std::to_string(options.cacheMb));
  }
  for (const auto& extra : options.extraArgs) args.push_back(extra);
  std::vector<char*> argv;
  for (auto& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, theirs.get(), 3);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  // The server blocks the signals it handles itself; start it with none
  // blocked and default dispositions whatever this process had.
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attributes, &none);
  posix_spawnattr_setsigdefault(&attributes, &all);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = -1;
  const int spawned = posix_spawnp(&pid, server.c_str(), &actions, &attributes, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  if (spawned != 0) {
    return makeError(Outcome::ServerError, "cannot start forkgym-server '" + server + "': " + std::strerror(spawned) +
                                               "; set FORKGYM_SERVER to the binary's path");
  }
  theirs.reset();
  return std::pair<UniqueFd, pid_t>(std::move(ours), pid);
}

Connection::~Connection() {
  std::lock_guard lock(mutex_);
  releaseServerLocked();
}

void Connection::forgetInChild(void* self, pid_t) noexcept {
  auto* connection = static_cast<Connection*>(self);
  // Another thread of the parent may have held the mutex at fork(): in the
  // child that thread does not exist, so the lock would never be released.
  new (&connection->mutex_) std::mutex();
  // Our copy of the socket closes; the parent's stays open, and nothing is
  // sent on it. The private server is the parent's child: not ours to reap.
  connection->socket_.reset();
  connection->serverPid_.store(-1, std::memory_order_relaxed);
  connection->zygotePid_.store(-1, std::memory_order_relaxed);
  connection->alive_.store(false, std::memory_order_relaxed);
  connection->inherited_ = true;
}

void Connection::releaseServerLocked() {
  socket_.reset();  // a private server exits when its connection closes
  const pid_t pid = serverPid_.exchange(-1, std::memory_order_relaxed);
  if (pid > 0) {
    for (int i = 0; i < 500; ++i) {
      if (waitpid(pid, nullptr, WNOHANG) != 0) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
}

template <typename Fill>
Result<Frame> Connection::roundTripLocked(Fill fill, std::optional<std::chrono::milliseconds> timeout,
                                          size_t maxFds, const std::function<void()>& whileWaiting) {
  if (inherited_) {
    // First request of a fork() child: a connection of its own.
    if (auto opened = openLocked(); !opened) return opened.takeError();
  }
  if (!alive_.load(std::memory_order_relaxed)) {
    return makeError(Outcome::ServerError, "the forkgym server is gone; create a new connection");
  }
  capnp::MallocMessageBuilder request;
  fill(request.initRoot<proto::ControlRequest>());
  if (auto sent = sendFrame(socket_.get(), request); !sent) {
    alive_.store(false, std::memory_order_release);
    return makeError(Outcome::ServerError, "the forkgym server is gone: " + sent.error().message);
  }
  if (whileWaiting) whileWaiting();
  auto frame = recvFrame(socket_.get(), timeout, maxFds);
  if (!frame) {
    // A late reply would answer the next request: this line is done.
    alive_.store(false, std::memory_order_release);
    return makeError(Outcome::ServerError, frame.error().message);
  }
  return std::move(*frame);
}

Status Connection::helloLocked() {
  auto frame = roundTripLocked(
      [](proto::ControlRequest::Builder request) {
        auto hello = request.initHello();
        hello.setProtocolVersion(proto::PROTOCOL_VERSION);
        auto known = hello.initBackends(static_cast<unsigned>(std::size(kKnownBackends)));
        for (unsigned i = 0; i < std::size(kKnownBackends); ++i) {
          known[i].setName(kKnownBackends[i].name);
          known[i].setActionTableHash(kKnownBackends[i].actionTableHash);
        }
      },
      kControlTimeout, 0);
  if (!frame) return frame.takeError();
  auto info = parseReply<ServerInfo>(*frame, "the hello", [](proto::ControlReply::Reader reply) -> Result<ServerInfo> {
    if (!reply.isHello()) return unexpected("the hello");
    auto hello = reply.getHello();
    ServerInfo info;
    info.protocolVersion = hello.getProtocolVersion();
    if (hello.getBackends().size() > kMaxBackends) {
      return makeError(Outcome::ProtocolMismatch, "the server's hello names " +
                                                      std::to_string(hello.getBackends().size()) + " backends");
    }
    for (auto backend : hello.getBackends()) {
      BackendInfo out{backend.getName(), backend.getVersion(), backend.getActionTableHash(), {}};
      for (auto property : backend.getProperties()) out.properties.emplace_back(property.getKey(), property.getValue());
      info.backends.push_back(std::move(out));
    }
    info.sandboxLevel = hello.getSandboxLevel();
    for (auto feature : hello.getSandboxFeatures()) info.sandboxFeatures.emplace_back(feature.cStr(), feature.size());
    for (auto fallback : hello.getSandboxFallbacks()) info.sandboxFallbacks.emplace_back(fallback.cStr(), fallback.size());
    return info;
  });
  if (!info) return info.takeError();
  if (info->protocolVersion != proto::PROTOCOL_VERSION) {
    return makeError(Outcome::ProtocolMismatch, "server speaks protocol " + std::to_string(info->protocolVersion) +
                                                    ", this client " + std::to_string(proto::PROTOCOL_VERSION) +
                                                    "; install matching forkgym client and server");
  }
  // The server refuses a client built for another table; this side checks
  // too, so a server that skips the check cannot mislabel actions. A table
  // the server generates at start-up (hash 0) has nothing to compare.
  for (const KnownBackend& known : kKnownBackends) {
    const BackendInfo* served = info->backend(known.name);
    if (served && served->actionTableHash != known.actionTableHash && served->actionTableHash != 0) {
      return makeError(Outcome::ProtocolMismatch,
                       actionTableMismatch(known.name, known.actionTableHash, served->actionTableHash));
    }
  }
  server_ = std::move(*info);
  return okStatus();
}

ServerInfo Connection::server() const {
  std::lock_guard lock(mutex_);
  return server_;
}

Result<std::shared_ptr<const Description>> Connection::describe(const std::string& backend) {
  std::lock_guard lock(mutex_);
  if (!inherited_) {
    if (auto cached = descriptions_.find(backend); cached != descriptions_.end()) return cached->second;
  }
  auto frame = roundTripLocked(
      [&](proto::ControlRequest::Builder request) { request.setDescribeBackend(backend); }, kControlTimeout, 0);
  if (!frame) return frame.takeError();
  auto described = parseReply<std::shared_ptr<const Description>>(
      *frame, "the description", [](proto::ControlReply::Reader reply) -> Result<std::shared_ptr<const Description>> {
        if (!reply.isDescription()) return unexpected("describe");
        auto in = reply.getDescription();
        auto out = std::make_shared<Description>();
        out->backend = in.getBackend();
        out->version = in.getVersion();
        out->description = in.getDescription();
        out->actionSpace = in.getActionSpace();
        for (auto action : in.getActions()) {
          out->actions.push_back({action.getFlag(), action.getReplay(), action.getDescription(),
                                  action.getUnavailableReason(), action.getTestOnly()});
        }
        auto spaces = [](auto list, std::vector<SpaceDescription>& into) {
          for (auto space : list) {
            SpaceDescription d;
            d.name = space.getName();
            d.valueType = static_cast<ValueType>(space.getType());
            for (int64_t n : space.getShape()) d.shape.push_back(n);
            d.low = space.getLow();
            d.high = space.getHigh();
            for (auto name : space.getFeatureNames()) d.featureNames.emplace_back(name);
            d.deterministic = space.getDeterministic();
            d.platformDependent = space.getPlatformDependent();
            d.needsRunConfig = space.getNeedsRunConfig();
            d.form = valueFormName(space.getForm());
            d.float32 = space.getFloat32();
            d.fileSuffix = space.getFileSuffix();
            d.description = space.getDescription();
            into.push_back(std::move(d));
          }
        };
        spaces(in.getObservations(), out->observations);
        spaces(in.getRewards(), out->rewards);
        for (auto uri : in.getCachedBenchmarks()) out->cachedBenchmarks.emplace_back(uri);
        auto replay = in.getReplay();
        out->replay = {replay.getProgram(), replay.getActionsPrefix(), replay.getSeparator(),
                       replay.getActionsSuffix(), replay.getTail(), replay.getFromState(), {}};
        for (auto argument : replay.getStateArguments()) out->replay.stateArguments.emplace_back(argument);
        return std::shared_ptr<const Description>(std::move(out));
      });
  if (described) descriptions_[backend] = *described;
  return described;
}

Result<SessionEnds> Connection::newSession(const std::string& benchmark, const Limits& limits,
                                           std::chrono::milliseconds timeout, const std::string& backend,
                                           const std::function<void()>& whileWaiting, const RunConfig* runConfig) {
  std::lock_guard lock(mutex_);
  auto frame = roundTripLocked(
      [&](proto::ControlRequest::Builder request) {
        auto session = request.initNewSession();
        session.setBackend(backend);
        session.setBenchmark(benchmark);
        session.getLimits().setAddressSpaceMb(limits.addressSpaceMb);
        session.getLimits().setCpuSecondsPerStep(limits.cpuSecondsPerStep);
        if (runConfig != nullptr) writeRunConfig(*runConfig, session.initRunConfig());
      },
      timeout, 3, whileWaiting);
  if (!frame) return frame.takeError();
  auto ends = parseReply<SessionEnds>(*frame, "the session reply", [&](proto::ControlReply::Reader reply) -> Result<SessionEnds> {
    if (!reply.isSession() || frame->fds.size() != 3) return unexpected("the session request");
    auto started = reply.getSession();
    SessionEnds ends;
    ends.pid = started.getPid();
    ends.benchmark = started.getBenchmark();
    ends.benchmarkHash = started.getBenchmarkHash();
    ends.channel.memfd = std::move(frame->fds[0]);
    ends.channel.doorbell = std::move(frame->fds[1]);
    ends.pidfd = std::move(frame->fds[2]);
    return ends;
  });
  if (!ends) return ends;
  // The client will SIGKILL this pidfd when the episode ends: it must name
  // the zygote's own child, the worker the reply claims.
  const pid_t zygote = zygotePid_.load(std::memory_order_relaxed);
  auto identity = identify(ends->pidfd.get(), ends->pid);
  if (!identity) {
    return makeError(Outcome::ProtocolMismatch, "refusing the new worker: " + identity.error().message);
  }
  if (!identity->exited && identity->parent != zygote) {
    return makeError(Outcome::ProtocolMismatch, "refusing the new worker: its pidfd names process " +
                                                    std::to_string(identity->pid) + ", whose parent is " +
                                                    std::to_string(identity->parent) + ", not the zygote (" +
                                                    std::to_string(zygote) + ")");
  }
  ends->group = identity->group;
  ends->zygotePid = zygote;
  return ends;
}

Result<ServerStatus> Connection::status() {
  std::lock_guard lock(mutex_);
  auto frame = roundTripLocked([](proto::ControlRequest::Builder request) { request.setStatus(); }, kControlTimeout, 0);
  if (!frame) return frame.takeError();
  return parseReply<ServerStatus>(*frame, "the status reply", [](proto::ControlReply::Reader reply) -> Result<ServerStatus> {
    if (!reply.isStatus()) return unexpected("status");
    auto in = reply.getStatus();
    ServerStatus out;
    for (auto uri : in.getSpareBenchmarks()) out.spareBenchmarks.emplace_back(uri);
    out.sparesWanted = in.getSparesWanted();
    out.pendingLoads = in.getPendingLoads();
    for (auto load : in.getLoading()) out.loading.push_back({load.getBenchmark(), load.getWaiters()});
    if (in.hasStateCache()) {
      auto c = in.getStateCache();
      out.stateCache = StateCacheStatus{c.getName(),    c.getCapacityBytes(), c.getUsedBytes(), c.getEntries(),
                                        c.getInserts(), c.getEvictions(),     c.getDropped(),   c.getHits(),
                                        c.getMisses(),  c.getRejected()};
    }
    return out;
  });
}

Result<WorkerExit> Connection::workerExit(pid_t pid) {
  std::lock_guard lock(mutex_);
  auto frame = roundTripLocked([&](proto::ControlRequest::Builder request) { request.setWorkerExit(pid); },
                               kControlTimeout, 0);
  if (!frame) return frame.takeError();
  return parseReply<WorkerExit>(*frame, "the worker-exit reply", [](proto::ControlReply::Reader reply) -> Result<WorkerExit> {
    if (!reply.isWorkerExit()) return unexpected("workerExit");
    auto in = reply.getWorkerExit();
    return WorkerExit{in.getKnown(), in.getExitCode(), in.getSignal(), in.getExplanation()};
  });
}

}  // namespace forkgym
