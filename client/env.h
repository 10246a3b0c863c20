// forkgym::Env — one LLVM phase-ordering episode, driven from C++.
//
// Lifecycle (client process; one thread at a time per Env):
//   1. Env(connection, options): no worker yet.
//   2. reset(benchmark): asks the zygote for a fresh worker forked from the
//      cached module (the previous worker, if any, is closed first).
//   3. step(actions, observations, rewards): one round trip through shared
//      memory; the worker applies the actions and answers everything asked.
//      observe() is a step without actions.
//   4. fork(): the worker clones itself; the returned Env owns the copy.
//   5. close() (or destruction): closing the channel ends the worker.
// Every call returns a typed outcome. A crash, timeout, memory blow-up or
// sandbox violation ends only this episode: the StepResult says which, with
// a reproducer, and reset() starts a new one at once.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "client/connection.h"
#include "ipc/channel.h"
#include "ipc/outcome.h"
#include "ipc/result.h"

namespace forkgym {

using Observation = std::variant<int64_t, std::vector<int64_t>, std::string, std::vector<uint8_t>, bool>;

struct Reproducer {
  std::string benchmark;
  std::vector<uint32_t> actions;
  std::string commandline;  // <the server's opt, absolute path> -passes='...' replaying the actions
};

struct StepResult {
  Outcome outcome = Outcome::Ok;
  std::string message;
  int signal = 0;
  std::vector<Observation> observations;
  std::vector<double> rewards;
  bool actionHadNoEffect = false;
  Reproducer reproducer;  // filled when the outcome ends the episode

  bool ok() const { return outcome == Outcome::Ok; }
};

struct EnvOptions {
  std::chrono::milliseconds stepTimeout{300'000};   // wall clock per step; the worker is killed after it
  std::chrono::milliseconds resetTimeout{300'000};  // includes compiling an uncached benchmark
  Limits limits;
};

class Env {
 public:
  Env(std::shared_ptr<Connection> connection, EnvOptions options = {});
  Env(Env&&) noexcept;
  Env& operator=(Env&&) noexcept;
  ~Env();

  Status reset(const std::string& benchmark);
  StepResult step(std::span<const uint32_t> actions, std::span<const std::string> observations = {},
                  std::span<const std::string> rewards = {});
  StepResult observe(std::span<const std::string> observations) { return step({}, observations, {}); }
  // step() in two halves: post the request, then collect the reply. Lets a
  // vector environment post to every worker before waiting for any.
  // Between the two, only finishStep() may be called on this Env.
  Status beginStep(std::span<const uint32_t> actions, std::span<const std::string> observations = {},
                   std::span<const std::string> rewards = {});
  StepResult finishStep();
  Result<Env> fork();
  void close();

  bool alive() const { return channel_.valid(); }
  // True once the worker has started on the step beginStep() posted (it
  // bumps a counter in the region): a test waits on this, not on a sleep.
  bool requestStarted() const { return channel_.valid() && channel_.requestStarted(); }
  pid_t workerPid() const { return pid_; }
  const std::string& benchmark() const { return benchmark_; }
  const std::vector<uint32_t>& actions() const { return actions_; }
  Reproducer reproducer() const;
  Connection& connection() { return *connection_; }
  const std::shared_ptr<Connection>& sharedConnection() const { return connection_; }
  const EnvOptions& options() const { return options_; }
  void setStepTimeout(std::chrono::milliseconds timeout) { options_.stepTimeout = timeout; }

 private:
  // Turns a dead or unresponsive worker into the StepResult that says why.
  StepResult endEpisode(Error error);
  void killWorker();

  std::shared_ptr<Connection> connection_;
  EnvOptions options_;
  Channel channel_;
  UniqueFd pidfd_;
  pid_t pid_ = -1;
  std::string benchmark_;
  std::vector<uint32_t> actions_;
  std::vector<uint32_t> pendingActions_;  // posted by beginStep(), not yet answered
  // The shape the posted step's reply must have (finishStep() checks it).
  std::shared_ptr<const Description> pendingDescription_;
  std::vector<const SpaceDescription*> pendingSpaces_;
  size_t pendingRewards_ = 0;
};

}  // namespace forkgym
