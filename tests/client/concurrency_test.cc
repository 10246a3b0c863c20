// The C++ client under threads and fork() of the client process.
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/forkserver/runtime_fixture.h"

namespace forkgym::testing {
namespace {

const std::vector<std::string> kBenchmarks = {fileUri("crc32.c"), fileUri("small.c"), "generator://llvm-stress-v0/3"};

// Initial instruction count of each benchmark, measured on its own first.
std::map<std::string, int64_t> measure(const std::shared_ptr<Connection>& connection) {
  std::map<std::string, int64_t> counts;
  Env env(connection);
  const std::string count[] = {"IrInstructionCount"};
  for (const auto& uri : kBenchmarks) {
    EXPECT_TRUE(env.reset(uri));
    auto observed = env.observe(count);
    EXPECT_TRUE(observed.ok()) << observed.message;
    counts[uri] = asInt(observed.observations.at(0));
  }
  return counts;
}

TEST(ClientThreads, ThreadsSharingOneConnectionEachResetToTheirOwnBenchmark) {
  auto connection = Connection::spawn(testServer());
  ASSERT_TRUE(connection) << connection.error().message;
  const auto known = measure(*connection);
  ASSERT_EQ(known.size(), kBenchmarks.size());

  std::mutex mutex;
  std::vector<std::string> problems;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      Env env(*connection);
      const std::string count[] = {"IrInstructionCount"};
      for (int round = 0; round < 12; ++round) {
        const std::string& uri = kBenchmarks[(t + round) % kBenchmarks.size()];
        std::string problem;
        if (auto reset = env.reset(uri); !reset) {
          problem = "reset failed: " + reset.error().message;
        } else if (auto observed = env.observe(count); !observed.ok()) {
          problem = "observe failed: " + observed.message;
        } else if (env.benchmark() != uri || asInt(observed.observations.at(0)) != known.at(uri)) {
          problem = "reset(" + uri + ") gave " + env.benchmark() + " with " +
                    std::to_string(asInt(observed.observations.at(0))) + " instructions";
        }
        if (!problem.empty()) {
          std::lock_guard lock(mutex);
          problems.push_back("thread " + std::to_string(t) + ": " + problem);
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_TRUE(problems.empty()) << problems.size() << " problem(s), first: " << problems.front();
}

TEST(ClientThreads, ThreadsSharingOneEnvSerialiseTheirSteps) {
  auto connection = Connection::spawn(testServer());
  ASSERT_TRUE(connection) << connection.error().message;
  auto description = (*connection)->describe();
  ASSERT_TRUE(description);
  const uint32_t mem2reg[] = {static_cast<uint32_t>((*description)->findAction("-mem2reg"))};
  Env env(*connection);
  ASSERT_TRUE(env.reset(fileUri("crc32.c")));
  std::atomic<int> failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 25; ++i) {
        if (!env.step(mem2reg).ok()) ++failed;
        if (env.workerPid() <= 0) ++failed;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(env.actions().size(), 100u);
}

TEST(ClientThreads, ReconnectingNeverSwapsTheSocketUnderAnotherThreadsRequest) {
  auto connection = Connection::spawn(testServer());
  ASSERT_TRUE(connection) << connection.error().message;
  std::atomic<bool> stop{false};
  std::atomic<int> failed{0};
  std::thread reconnecting([&] {
    for (int i = 0; i < 5; ++i) {
      if (!(*connection)->reconnect()) ++failed;
    }
    stop = true;
  });
  // Control requests from another thread meanwhile: each gets a whole
  // answer from whichever zygote is current, never half of one.
  int described = 0;
  while (!stop || described == 0) {
    auto description = (*connection)->describe();
    if (!description || (*description)->actions.empty()) ++failed;
    ++described;
  }
  reconnecting.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_TRUE((*connection)->alive());
}

// In the child, no gtest: each way to fail has its own exit code.
enum ChildExit {
  kChildOk = 0,
  kInheritedStepNotRefused = 10,
  kConnectionStillLive = 11,
  kChildResetFailed = 12,
  kChildSharedTheZygote = 13,
  kChildGotTheWrongProgram = 14,
};

TEST(ClientFork, ChildForgetsTheParentsEpisodeAndConnectionAndStartsItsOwn) {
  auto connection = Connection::spawn(testServer());
  ASSERT_TRUE(connection) << connection.error().message;
  const auto known = measure(*connection);
  auto description = (*connection)->describe();
  ASSERT_TRUE(description);
  const uint32_t mem2reg[] = {static_cast<uint32_t>((*description)->findAction("-mem2reg"))};
  const std::string count[] = {"IrInstructionCount"};
  Env env(*connection);
  ASSERT_TRUE(env.reset(kBenchmarks[0]));
  const pid_t zygote = (*connection)->serverPid();
  const pid_t worker = env.workerPid();
  const pid_t parent = getpid();

  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto step = env.step(mem2reg);
    if (step.outcome != Outcome::SessionClosed ||
        step.message.find("belongs to process " + std::to_string(parent)) == std::string::npos) {
      _exit(kInheritedStepNotRefused);
    }
    if ((*connection)->alive() || (*connection)->serverPid() != -1) _exit(kConnectionStillLive);
    for (const auto& uri : kBenchmarks) {
      if (!env.reset(uri)) _exit(kChildResetFailed);
      if ((*connection)->serverPid() == zygote || (*connection)->serverPid() <= 0) _exit(kChildSharedTheZygote);
      auto observed = env.observe(count);
      if (!observed.ok() || asInt(observed.observations.at(0)) != known.at(uri)) _exit(kChildGotTheWrongProgram);
    }
    env.close();
    _exit(kChildOk);
  }
  // The parent's episode carries on while the child works.
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(env.step(mem2reg).ok());
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), kChildOk);
  // The child neither reaped nor killed the parent's zygote or worker.
  EXPECT_TRUE((*connection)->alive());
  EXPECT_EQ((*connection)->serverPid(), zygote);
  EXPECT_FALSE(processGone(zygote));
  EXPECT_EQ(env.workerPid(), worker);
  auto observed = env.observe(count);
  ASSERT_TRUE(observed.ok()) << observed.message;
  ASSERT_TRUE(env.reset(kBenchmarks[1]));
  observed = env.observe(count);
  ASSERT_TRUE(observed.ok()) << observed.message;
  EXPECT_EQ(asInt(observed.observations.at(0)), known.at(kBenchmarks[1]));
}

TEST(ClientFork, AChildOfASocketClientConnectsToTheSameServerAgain) {
  char dir[] = "/tmp/fgtest-fork-socket-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string socket = std::string(dir) + "/server.sock";
  const pid_t server = startSocketServer(socket);
  ASSERT_GT(server, 0);
  auto connection = Connection::connect(socket);
  ASSERT_TRUE(connection) << connection.error().message;
  EXPECT_EQ((*connection)->zygotePid(), server);  // from the socket's peer credentials
  const auto known = measure(*connection);
  const std::string count[] = {"IrInstructionCount"};
  Env env(*connection);
  ASSERT_TRUE(env.reset(kBenchmarks[0]));

  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (env.observe(count).outcome != Outcome::SessionClosed) _exit(kInheritedStepNotRefused);
    if ((*connection)->alive()) _exit(kConnectionStillLive);
    if (!env.reset(kBenchmarks[1])) _exit(kChildResetFailed);
    // A connection of its own, to the same server.
    if ((*connection)->zygotePid() != server) _exit(kChildSharedTheZygote);
    auto observed = env.observe(count);
    if (!observed.ok() || asInt(observed.observations.at(0)) != known.at(kBenchmarks[1])) {
      _exit(kChildGotTheWrongProgram);
    }
    _exit(kChildOk);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == kChildOk) << "child exit " << WEXITSTATUS(status);
  auto observed = env.observe(count);
  ASSERT_TRUE(observed.ok()) << observed.message;
  EXPECT_EQ(asInt(observed.observations.at(0)), known.at(kBenchmarks[0]));
  env.close();
  connection->reset();
  kill(server, SIGTERM);
  waitpid(server, nullptr, 0);
  rmdir(dir);
}

TEST(ClientFork, ChildDestroyingInheritedObjectsLeavesTheParentsZygoteAlone) {
  auto connection = Connection::spawn(testServer());
  ASSERT_TRUE(connection) << connection.error().message;
  auto env = std::make_unique<Env>(*connection);
  ASSERT_TRUE(env->reset(fileUri("crc32.c")));
  const pid_t zygote = (*connection)->serverPid();
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // Destructors run here: they must not reap, signal or talk to the
    // parent's zygote and worker.
    env.reset();
    connection->reset();
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_FALSE(processGone(zygote));
  auto description = (*connection)->describe();
  ASSERT_TRUE(description);
  const uint32_t mem2reg[] = {static_cast<uint32_t>((*description)->findAction("-mem2reg"))};
  EXPECT_TRUE(env->step(mem2reg).ok());
  ASSERT_TRUE(env->reset(fileUri("small.c")));
}

}  // namespace
}  // namespace forkgym::testing
