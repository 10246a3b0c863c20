// Zygote: the forkgym-server process.
//
// Lifecycle (the zygote process only; single-threaded throughout):
//   1. Zygote(options) — become a child subreaper, initialise LLVM once
//      (native target, host CPU and features detected now, before any
//      sandbox), block SIGCHLD/SIGTERM/SIGINT into a signalfd, and listen
//      (or adopt the connected socket of the client that spawned it).
//   2. preload() — load each --preload benchmark through a loader child and
//      keep the parsed module in the cache.
//   3. run() — the event loop: accept clients, answer hello/describe/
//      newSession/workerExit, reap children, kill a client's workers when its
//      connection closes. Each session is a fork(): the worker starts from
//      the cached module copy-on-write, and the zygote steps out of the data
//      path.
//   4. SIGTERM/SIGINT, or the spawning client hanging up: kill every worker
//      group, remove the socket file, exit.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "forkserver/benchmark_cache.h"
#include "forkserver/control_dispatch.h"
#include "forkserver/process_table.h"
#include "forkserver/spare_pool.h"
#include "ipc/control_socket.h"
#include "ipc/unique_fd.h"
#include "sandbox/sandbox.h"

namespace capnp {
class MessageBuilder;
}

namespace forkgym::forkserver {

struct ZygoteOptions {
  std::string socketPath;          // listen here (unless connectedFd is given)
  int connectedFd = -1;            // serve this one connection, exit when it closes
  std::vector<std::string> preload;
  // When non-empty, file:// benchmarks must resolve inside one of these
  // directories (realpath'd by main). Empty: any absolute path.
  std::vector<std::string> benchmarkRoots;
  size_t cacheMb = 2048;
  std::chrono::seconds loadTimeout{120};
  sandbox::SandboxLimits limits;   // per-worker defaults
  uint32_t cpuSecondsPerStep = 60;  // per-step CPU budget (SIGXCPU -> timed_out)
  size_t spareWorkers = 4;         // benchmarks kept with a worker forked ahead (0: none)
};

// What this server says in its hello and describe replies (also what the
// test suites' scripted servers say, so clients see the real tables).
void fillHello(proto::Hello::Builder hello);
void fillDescription(proto::Description::Builder out, const std::vector<std::string>& cached);

class Zygote : private ControlHandler {
 public:
  explicit Zygote(ZygoteOptions options);
  ~Zygote();

  // Steps 1-2; an error means the server cannot start.
  Status start();
  // Step 3; returns the process exit code.
  int run();

 private:
  struct Connection {
    UniqueFd fd;
    FrameAssembler assembler;
    bool greeted = false;
  };

  void acceptClients();
  // Returns false when the connection must be closed.
  bool serveConnection(uint64_t id, Connection& connection);
  void handleFrame(uint64_t id, Connection& connection, kj::Array<capnp::word> frame);
  void closeConnection(uint64_t id);

  // ControlHandler: the requests dispatchControlFrame() has validated.
  uint64_t actionTableHash() override;
  void hello(proto::Hello::Builder out) override;
  void describe(proto::Description::Builder out) override;
  void workerExit(int32_t pid, proto::WorkerExit::Builder out) override;
  void status(proto::ServerStatus::Builder out) override;
  Status newSession(const std::string& benchmark, proto::Limits::Reader limits,
                    proto::SessionStarted::Builder out, std::vector<UniqueFd>& fds) override;
  uint64_t currentConnection_ = 0;  // whose frame is being dispatched
  void shutdown();

  Result<passes::ParsedBenchmark*> benchmarkFor(const std::string& uri);
  // Forks a worker for `benchmark` (its own process group, channel ready).
  Result<SpareWorker> startWorker(passes::ParsedBenchmark* benchmark, const sandbox::SandboxLimits& limits,
                                  uint32_t cpuSecondsPerStep);
  // Called when the event loop is idle: forks one wanted spare.
  void makeSpare();

  ZygoteOptions options_;
  UniqueFd listener_;
  UniqueFd signals_;
  BenchmarkCache cache_;
  ProcessTable processes_;
  SparePool spares_;
  std::unordered_map<uint64_t, Connection> connections_;
  uint64_t nextConnectionId_ = 1;
  bool stopping_ = false;
};

}  // namespace forkgym::forkserver
