// Connection: a client's control line to a zygote (forkgym-server).
//
// Lifecycle (any client process; not thread-safe — one thread at a time):
//   1. connect(path) to a running server, or spawn() a private one that lives
//      exactly as long as this connection (it exits when the socket closes,
//      so it can never outlive its client).
//   2. The constructor exchanges the versioned hello: a different protocol
//      version or action table is a clear ProtocolMismatch error.
//   3. describe() fetches the action table, observation and reward spaces
//      once; newSession() asks for a worker and receives its channel ends.
//   4. If the zygote dies (alive() turns false), running episodes carry on —
//      workers depend only on their channels — and reconnect() replaces the
//      dead zygote in place: it respawns a private one with the same options,
//      or connects to the same socket again. Env::reset() does this by itself.
// Envs hold a shared_ptr to their Connection, so it lives while they do.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ipc/channel.h"
#include "ipc/control_socket.h"
#include "ipc/result.h"
#include "ipc/unique_fd.h"

namespace forkgym {

struct ServerInfo {
  uint32_t protocolVersion = 0;
  std::string llvmVersion;
  uint64_t actionTableHash = 0;
  std::string hostTriple;
  std::string hostCpu;
  std::string hostFeatures;
  // The server's own LLVM `opt` (absolute path): reproducers name it, since
  // another LLVM's opt may misread or refuse the bitcode.
  std::string optPath;
};

enum class ValueType : uint8_t { Int64, Int64List, Text, Bytes, Bool };

struct ActionDescription {
  std::string flag;
  std::string pipeline;
  std::string description;
  std::string unavailableReason;  // empty when available
  bool testOnly = false;
};

struct SpaceDescription {
  std::string name;
  ValueType valueType = ValueType::Int64;
  int64_t length = 0;
  bool deterministic = true;
  bool platformDependent = false;
};

struct Description {
  std::vector<ActionDescription> actions;
  std::vector<SpaceDescription> observations;
  std::vector<SpaceDescription> rewards;
  std::vector<std::string> cachedBenchmarks;
  std::vector<std::string> instCountNames;
  std::vector<std::string> autophaseNames;

  int findAction(std::string_view flag) const;
  const SpaceDescription* findObservation(std::string_view name) const;
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
  std::string benchmark;  // canonical URI
  ClientEnds channel;
  UniqueFd pidfd;
};

// Connection::status(): what the zygote is doing now.
struct ServerStatus {
  std::vector<std::string> spareBenchmarks;  // a spare worker waits for each
  uint32_t sparesWanted = 0;                 // wanted, not forked yet
  uint32_t pendingLoads = 0;
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

  const ServerInfo& server() const { return server_; }
  // Cached after the first call.
  Result<std::shared_ptr<const Description>> describe();
  Result<SessionEnds> newSession(const std::string& benchmark, const Limits& limits,
                                 std::chrono::milliseconds timeout);
  Result<WorkerExit> workerExit(pid_t pid);
  // Never cached: each call asks the zygote (tests poll it instead of
  // sleeping while spares are forked or loads finish).
  Result<ServerStatus> status();
  // The private server's pid (spawn() only), else -1.
  pid_t serverPid() const { return serverPid_; }
  // False once the server hung up or stopped answering.
  bool alive() const { return alive_; }
  // Replaces a dead (or live) zygote connection with a new one made the way
  // this one was: spawn() again with the same options, or connect() to the
  // same socket. Envs sharing this Connection use the new zygote from their
  // next reset(); their running episodes are unaffected.
  Status reconnect();

 private:
  Connection() = default;
  static Result<std::pair<UniqueFd, pid_t>> startServer(const ServerOptions& options);
  void releaseServer();
  Status hello();
  template <typename Fill>
  Result<Frame> roundTrip(Fill fill, std::optional<std::chrono::milliseconds> timeout, size_t maxFds);

  UniqueFd socket_;
  pid_t serverPid_ = -1;
  std::string socketPath_;        // connect(): where to reconnect
  ServerOptions spawnOptions_;    // spawn(): how to respawn
  bool alive_ = true;
  ServerInfo server_;
  std::shared_ptr<const Description> description_;
};

// Where spawn() looks for forkgym-server when ServerOptions::serverPath is empty.
std::string defaultServerPath();

}  // namespace forkgym
