// Cleanup (invariant 2): nothing outlives its owner, even when the client is
// killed with SIGKILL mid-episode or mid-step in a hung action.
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "tests/forkserver/runtime_fixture.h"

namespace forkgym::testing {
namespace {

struct Pids {
  pid_t worker = -1;
  pid_t fork = -1;
  pid_t server = -1;
};

// A client process: starts an episode and a fork, reports the pids, then
// either idles or hangs inside a step, until the test kills it.
pid_t startClient(int reportFd, bool hangInStep, const std::string& socketPath) {
  const pid_t pid = ::fork();
  if (pid != 0) return pid;
  auto connection = socketPath.empty() ? Connection::spawn(testServer()) : Connection::connect(socketPath);
  if (!connection) _exit(3);
  Env env(*connection);
  if (!env.reset(fileUri("crc32.c"))) _exit(4);
  auto copy = env.fork();
  if (!copy) _exit(5);
  Pids pids{env.workerPid(), copy->workerPid(), (*connection)->serverPid()};
  if (hangInStep) {
    // Reports only once the worker is inside the hanging step.
    auto description = (*connection)->describe();
    const uint32_t hang[] = {static_cast<uint32_t>((*description)->findAction("-forkgym-test-hang"))};
    if (!env.beginStep(hang)) _exit(7);
    if (!eventually([&] { return env.requestStarted(); })) _exit(8);
  }
  if (write(reportFd, &pids, sizeof(pids)) != sizeof(pids)) _exit(6);
  pause();
  _exit(0);
}

std::set<std::string> forkgymTempFiles() {
  std::set<std::string> found;
  for (const auto& name : listDir("/tmp")) {
    if (name.starts_with("forkgym-") && !name.ends_with(".sock")) found.insert(name);
  }
  return found;
}

// What in /dev/shm a client's episode could leave behind: not state cache
// segments, which are node-wide and outlive every server by design (and
// which other servers on the machine, another test run's among them, create
// whenever they like).
std::set<std::string> episodeShm() {
  std::set<std::string> found;
  for (const auto& name : listDir("/dev/shm")) {
    if (!name.starts_with("forkgym-state-cache-")) found.insert(name);
  }
  return found;
}

class Cleanup : public ::testing::TestWithParam<bool> {
 protected:
  static void SetUpTestSuite() { prctl(PR_SET_CHILD_SUBREAPER, 1); }
  void reapAll() {
    while (waitpid(-1, nullptr, WNOHANG) > 0) {
    }
  }
};

TEST_P(Cleanup, KilledClientLeavesNoWorkerShmOrTempFileBehind) {
  const bool hangInStep = GetParam();
  const auto shmBefore = episodeShm();
  const auto tempBefore = forkgymTempFiles();
  int report[2];
  ASSERT_EQ(pipe(report), 0);
  const pid_t client = startClient(report[1], hangInStep, "");
  Pids pids;
  ASSERT_EQ(read(report[0], &pids, sizeof(pids)), static_cast<ssize_t>(sizeof(pids)));
  close(report[0]);
  close(report[1]);
  ASSERT_GT(pids.worker, 0);
  ASSERT_GT(pids.fork, 0);
  ASSERT_GT(pids.server, 0);

  kill(client, SIGKILL);
  waitpid(client, nullptr, 0);
  EXPECT_TRUE(waitUntilGone(pids.worker)) << "worker outlived its client";
  EXPECT_TRUE(waitUntilGone(pids.fork)) << "fork outlived its client";
  EXPECT_TRUE(waitUntilGone(pids.server)) << "private server outlived its client";
  reapAll();
  EXPECT_EQ(episodeShm(), shmBefore);
  EXPECT_EQ(forkgymTempFiles(), tempBefore);
}

INSTANTIATE_TEST_SUITE_P(IdleOrHungInStep, Cleanup, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "HungInStep" : "Idle"; });

TEST(SharedServer, KilledClientsWorkersDieButTheServerServesOthers) {
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  char dir[] = "/tmp/fgtest-sock-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string socketPath = std::string(dir) + "/server.sock";
  const pid_t server = startSocketServer(socketPath);
  ASSERT_GT(server, 0) << "server did not start";
  auto connected = Connection::connect(socketPath);
  ASSERT_TRUE(connected) << connected.error().message;
  std::shared_ptr<Connection> other = *connected;
  struct stat st {};
  ASSERT_EQ(stat(socketPath.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u) << "the socket must be owner-only";

  int report[2];
  ASSERT_EQ(pipe(report), 0);
  const pid_t client = startClient(report[1], true, socketPath);
  Pids pids;
  ASSERT_EQ(read(report[0], &pids, sizeof(pids)), static_cast<ssize_t>(sizeof(pids)));
  close(report[0]);
  close(report[1]);
  kill(client, SIGKILL);
  waitpid(client, nullptr, 0);
  EXPECT_TRUE(waitUntilGone(pids.worker));
  EXPECT_TRUE(waitUntilGone(pids.fork));

  Env env(other);
  EXPECT_TRUE(env.reset(fileUri("crc32.c")));
  env.close();
  other.reset();

  kill(server, SIGTERM);
  int status = 0;
  waitpid(server, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_NE(stat(socketPath.c_str(), &st), 0) << "the socket file must be removed on shutdown";
  rmdir(dir);
}

TEST(ClientResources, ResetsForksAndClosesLeakNoDescriptors) {
  auto connection = Connection::spawn(testServer());
  ASSERT_TRUE(connection);
  const size_t before = openFdCount();
  for (int i = 0; i < 20; ++i) {
    Env env(*connection);
    ASSERT_TRUE(env.reset(fileUri("crc32.c")));
    auto copy = env.fork();
    ASSERT_TRUE(copy);
    ASSERT_TRUE(env.reset(fileUri("crc32.c")));
  }
  EXPECT_EQ(openFdCount(), before);
}

}  // namespace
}  // namespace forkgym::testing
