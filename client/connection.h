// Connection: a client's control line to a zygote (forkgym-server).
//
// Lifecycle (any client process, any thread):
//   1. connect(path) to a running server, or spawn() a private one that lives
//      exactly as long as this connection (it exits when the socket closes,
//      so it can never outlive its client). connect() refuses a server run
//      by another user (only the same uid or root may serve this client),
//      and a socket in the default directory unless that directory is
//      private (0700, owned by this user).
//   2. The constructor exchanges the versioned hello, listing the backends
//      this client was built knowing (ipc/action_table_hash.h): a different
//      protocol version or action table is a clear ProtocolMismatch error.
//      The server's hello lists its backends (server()).
//   3. describe(backend) fetches a backend's action table, observation and
//      reward spaces once; newSession() asks for a worker of a backend and
//      receives its channel ends, after checking the worker's pidfd names a
//      child of the zygote.
//   4. If the zygote dies (alive() turns false), running episodes carry on —
//      workers depend only on their channels — and reviveIfDead() replaces
//      the dead zygote in place: it respawns a private one with the same
//      options, or connects to the same socket again. Env::reset() does this
//      by itself.
//   5. In a child made by fork(), the connection is the parent's: the child
//      closes its copy of the socket without a word on it and never reaps or
//      kills the parent's private server; its next request opens a
//      connection of its own (a new private server, or the same socket).
// Threads: each control round trip holds the connection's mutex, so
// requests from several threads never interleave on the socket, and
// reconnecting never swaps the socket under another thread's exchange.
// Episodes' steps never take it (they go over their own channels).
// Envs hold a shared_ptr to their Connection, so it lives while they do.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "client/fork_watch.h"
#include "ipc/channel.h"
#include "ipc/run_config.h"
#include "ipc/control_socket.h"
#include "base/replay_command.h"
#include "base/result.h"
#include "base/unique_fd.h"

namespace forkgym {

// The backend an env gets when none is named: LLVM, as CompilerGym's
// environments were.
inline constexpr const char* kDefaultBackend = "llvm";

// A backend the server serves (its hello).
struct BackendInfo {
  std::string name;     // e.g. "llvm": what EnvOptions::backend names
  std::string version;  // the compiler's
  uint64_t actionTableHash = 0;
  // Backend facts, e.g. LLVM's hostTriple, hostCpu, hostFeatures and optPath
  // (the server's own opt, which reproducers name).
  std::vector<std::pair<std::string, std::string>> properties;

  // The value of `key`, or empty.
  std::string property(std::string_view key) const;
};

struct ServerInfo {
  uint32_t protocolVersion = 0;
  std::vector<BackendInfo> backends;
  // How the server isolates workers, loaders and tools (README, "Threat
  // model"): "full", "reduced" or "basic"; the active features; and why
  // each missing one is missing.
  std::string sandboxLevel;
  std::vector<std::string> sandboxFeatures;
  std::vector<std::string> sandboxFallbacks;

  const BackendInfo* backend(std::string_view name) const;
};

// ipc/protocol.capnp's ValueType; Observation's alternatives follow it.
enum class ValueType : uint8_t { Int64, Int64List, Text, Bytes, Bool, Float64, Float64List, Int64Map };

struct ActionDescription {
  std::string flag;
  std::string replay;  // what it adds to the replay command line (ReplayCommand)
  std::string description;
  std::string unavailableReason;  // empty when available
  bool testOnly = false;
};

struct SpaceDescription {
  std::string name;
  ValueType valueType = ValueType::Int64;
  std::vector<int64_t> shape;  // {} scalar or variable length; {n}: n values
  double low = 0;              // bounds of each value (a reward's range); +-inf: none
  double high = 0;
  std::vector<std::string> featureNames;  // one per element of a fixed-length list
  bool deterministic = true;
  bool platformDependent = false;
  bool needsRunConfig = false;  // only for benchmarks that run (a run configuration)
  // How a client presents the value: ipc/protocol.capnp's ValueForm by name
  // ("plain", "featureDict", "json", "file", "records", "programGraph",
  // "programGraphNodeLink"; the last two: bytes for readProgramGraph()).
  std::string form = "plain";
  bool float32 = false;  // narrow float64 values to float32
  std::string fileSuffix;  // form "file": the file name's suffix
  std::string description;

  // The fixed length of a list, or 0.
  int64_t length() const { return shape.size() == 1 ? shape[0] : 0; }
};

// One backend, as the server describes it.
struct Description {
  std::string backend;
  std::string version;
  std::string description;
  std::string actionSpace;  // the action space's name
  std::vector<ActionDescription> actions;
  std::vector<SpaceDescription> observations;
  std::vector<SpaceDescription> rewards;
  std::vector<std::string> cachedBenchmarks;
  ReplayCommand replay;

  int findAction(std::string_view flag) const;
  const SpaceDescription* findObservation(std::string_view name) const;
  const SpaceDescription* findReward(std::string_view name) const;
  // The replay command line of `actions` (indices into `actions`).
  std::string commandLine(std::span<const uint32_t> actions) const;
  // A worker's command line for its state (Reply.stateCommandLine), if it
  // is one this description allows: quote(program), then stateArguments
  // joined as commandLine() joins actions, then the tail. Otherwise
  // InvalidRequest saying what is wrong with it: a worker is not trusted
  // to write a line a user will run.
  Status checkStateCommandLine(std::string_view line) const;
};

struct Limits {
  uint64_t addressSpaceMb = 0;     // 0 = server default
  uint32_t cpuSecondsPerStep = 0;  // 0 = server default
};

struct ServerOptions {
  std::string serverPath;  // forkgym-server binary; empty = $FORKGYM_SERVER, then the build's
  std::vector<std::string> preload;
  std::vector<std::string> benchmarkRoots;  // --benchmark-root: confine file:// benchmarks
  size_t cacheMb = 0;  // 0 = server default
  std::string logLevel = "warn";
  std::vector<std::string> extraArgs;
};

struct SessionEnds {
  pid_t pid = -1;
  pid_t group = -1;       // the worker's process group (its forks join it); -1 if it already exited
  pid_t zygotePid = -1;   // the worker's parent
  std::string benchmark;  // canonical URI
  std::string benchmarkHash;  // hex content hash of what the server loaded
  ClientEnds channel;
  UniqueFd pidfd;
};

// Connection::status(): what the zygote is doing now.
struct LoadingBenchmark {
  std::string benchmark;  // canonical URI
  uint32_t waiters = 0;   // session requests waiting for it
};

// The node-wide state cache's counts (protocol.capnp's StateCacheStats).
struct StateCacheStatus {
  std::string name;
  uint64_t capacityBytes = 0, usedBytes = 0, entries = 0, inserts = 0, evictions = 0, dropped = 0;
  uint64_t hits = 0, misses = 0, rejected = 0;
};

struct ServerStatus {
  std::vector<std::string> spareBenchmarks;  // a spare worker waits for each
  uint32_t sparesWanted = 0;                 // wanted, not forked yet
  uint32_t pendingLoads = 0;
  std::vector<LoadingBenchmark> loading;     // the pending loads
  std::optional<StateCacheStatus> stateCache;  // unset: the server has none
};

struct WorkerExit {
  bool known = false;
  int exitCode = -1;
  int signal = 0;
  std::string explanation;
};

class Connection {
 public:
  static Result<std::shared_ptr<Connection>> connect(const std::string& socketPath);
  static Result<std::shared_ptr<Connection>> spawn(const ServerOptions& options = {});
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  ServerInfo server() const;
  // Cached per backend after the first call. An unknown backend is an
  // InvalidRequest listing the server's.
  Result<std::shared_ptr<const Description>> describe(const std::string& backend = kDefaultBackend);
  // whileWaiting: see roundTripLocked() (a reset lets its previous episode
  // go meanwhile).
  // runConfig: how to build and run the benchmark's program (null: the
  // server attaches its dataset's, if any).
  Result<SessionEnds> newSession(const std::string& benchmark, const Limits& limits, std::chrono::milliseconds timeout,
                                 const std::string& backend = kDefaultBackend,
                                 const std::function<void()>& whileWaiting = {},
                                 const RunConfig* runConfig = nullptr);
  Result<WorkerExit> workerExit(pid_t pid);
  // Never cached: each call asks the zygote (tests poll it instead of
  // sleeping while spares are forked or loads finish).
  Result<ServerStatus> status();
  // The private server's pid (spawn() only), else -1.
  pid_t serverPid() const { return serverPid_.load(std::memory_order_relaxed); }
  // The zygote's pid: the private server's, or the socket peer's.
  pid_t zygotePid() const { return zygotePid_.load(std::memory_order_relaxed); }
  // False once the server hung up or stopped answering (or this process is
  // a fork() child that has not used the connection yet).
  bool alive() const { return alive_.load(std::memory_order_acquire); }
  // Replaces the zygote connection (dead or live) with a new one made the
  // way this one was: spawn() again with the same options, or connect() to
  // the same socket. Envs sharing this Connection use the new zygote from
  // their next reset(); their running episodes are unaffected.
  Status reconnect();
  // reconnect() only if the zygote is still dead: several Envs that saw it
  // die ask at once, and only the first replaces it.
  Status reviveIfDead();

 private:
  Connection();
  static Result<std::pair<UniqueFd, pid_t>> startServer(const ServerOptions& options);
  static void forgetInChild(void* self, pid_t parentPid) noexcept;
  // The *Locked functions require mutex_.
  Status openLocked();
  void releaseServerLocked();
  Status helloLocked();
  // whileWaiting, if set, runs once the request is sent, before the reply
  // is awaited: work of the caller's that can overlap with the server's.
  template <typename Fill>
  Result<Frame> roundTripLocked(Fill fill, std::optional<std::chrono::milliseconds> timeout, size_t maxFds,
                                const std::function<void()>& whileWaiting = {});

  mutable std::mutex mutex_;
  UniqueFd socket_;
  std::atomic<pid_t> serverPid_{-1};
  std::atomic<pid_t> zygotePid_{-1};
  std::string socketPath_;        // connect(): where to reconnect
  ServerOptions spawnOptions_;    // spawn(): how to respawn
  std::atomic<bool> alive_{true};
  bool inherited_ = false;        // made by a parent process: open a connection of our own first
  ServerInfo server_;
  std::map<std::string, std::shared_ptr<const Description>, std::less<>> descriptions_;
  ForkWatch forkWatch_;  // last: unregisters before the rest is destroyed
};

// Where spawn() looks for forkgym-server when ServerOptions::serverPath is empty.
std::string defaultServerPath();

}  // namespace forkgym
