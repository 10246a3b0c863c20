// Identity checks: the client signals only processes it verified as its own
// workers, talks only to a server run by its own user (or root), trusts the
// default socket only in a private directory. (Workers that lie about their
// forks' pidfds are rows of the hostile-worker harness, tests/hostile; a fork
// without room for its descriptors is in tests/forkserver/fork_test.cc.)
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <utility>

#include "client/process_identity.h"
#include "ipc/control_socket.h"
#include "tests/forkserver/runtime_fixture.h"

namespace forkgym::testing {
namespace {

using namespace std::chrono_literals;

constexpr uid_t kNobody = 65534;

// A Unix socket bound at `path`, not yet listening.
int boundSocket(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) return -1;
  return fd;
}

// A process the client has no business signalling: a `sleep` started by the
// test (not by any zygote), in the test's own process group.
class Bystander {
 public:
  Bystander() {
    pid_ = ::fork();
    if (pid_ == 0) {
      execlp("sleep", "sleep", "1000", nullptr);
      _exit(127);
    }
  }
  ~Bystander() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  pid_t pid() const { return pid_; }
  // Still running: not killed, and not a zombie either.
  bool alive() const { return !processGone(pid_); }

 private:
  pid_t pid_ = -1;
};

class TempDir {
 public:
  TempDir() {
    char path[] = "/tmp/fgtest-identity-XXXXXX";
    if (mkdtemp(path)) path_ = path;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// fake_zygote (tests/client/fake_zygote.cc) playing `scenario` on `socket`;
// ready once it printed "ready" (it listens by then).
class FakeZygote {
 public:
  FakeZygote(const std::string& socket, const std::string& scenario, pid_t foreign) {
    int out[2];
    if (pipe2(out, O_CLOEXEC) != 0) return;
    pid_ = ::fork();
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      const std::string foreignText = std::to_string(foreign);
      execl(FORKGYM_FAKE_ZYGOTE, FORKGYM_FAKE_ZYGOTE, socket.c_str(), scenario.c_str(), foreignText.c_str(), nullptr);
      _exit(127);
    }
    ::close(out[1]);
    char line[64] = {};
    ssize_t n = read(out[0], line, sizeof(line) - 1);
    ::close(out[0]);
    ready_ = n > 0 && std::string(line).starts_with("ready");
  }
  ~FakeZygote() {
    // It exits (killing and reaping what it started) once its client has
    // hung up; one that never got a client is killed.
    if (pid_ <= 0) return;
    UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid_, 0)));
    pollfd exited{pidfd.get(), POLLIN, 0};
    if (!pidfd || poll(&exited, 1, 10'000) != 1) kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  bool ready() const { return ready_; }

 private:
  pid_t pid_ = -1;
  bool ready_ = false;
};

struct LyingServer {
  TempDir dir;
  Bystander bystander;
  std::unique_ptr<FakeZygote> zygote;
  std::shared_ptr<Connection> connection;

  explicit LyingServer(const std::string& scenario) {
    const std::string socket = dir.path() + "/fake.sock";
    zygote = std::make_unique<FakeZygote>(socket, scenario, bystander.pid());
    EXPECT_TRUE(zygote->ready());
    auto connected = Connection::connect(socket);
    EXPECT_TRUE(connected) << connected.error().message;
    if (connected) connection = *connected;
  }
};

TEST(PidfdVerification, AForkReplyNamingAnotherProcessGroupsWorkerIsRefused) {
  LyingServer server("fork-bystander-pidfd");
  ASSERT_TRUE(server.connection);
  Env env(server.connection);
  ASSERT_TRUE(env.reset("generator://csmith-v0/1"));
  auto copy = env.fork();
  // Had the copy been accepted, ending its episode (its channel is dead)
  // would SIGKILL the other group's worker.
  if (copy) copy->step(std::vector<uint32_t>{0});
  ASSERT_FALSE(copy);
  EXPECT_EQ(copy.error().outcome, Outcome::ProtocolMismatch);
  EXPECT_NE(copy.error().message.find("refusing the forked worker"), std::string::npos) << copy.error().message;
  EXPECT_NE(copy.error().message.find("group"), std::string::npos) << copy.error().message;
  // A worker that lies is not trusted with its episode any more.
  EXPECT_FALSE(env.alive());
}

TEST(PidfdVerification, ASessionPidfdNamingAnUnrelatedProcessIsRefusedAndThatProcessSurvives) {
  LyingServer server("session-foreign-pidfd");
  ASSERT_TRUE(server.connection);
  Env env(server.connection);
  auto reset = env.reset("generator://csmith-v0/1");
  // Had the worker been accepted, its first step ends the episode (the
  // fake worker exits), and the client would SIGKILL what the pidfd names.
  if (reset) env.step(std::vector<uint32_t>{0});
  EXPECT_TRUE(server.bystander.alive());
  ASSERT_FALSE(reset);
  EXPECT_EQ(reset.error().outcome, Outcome::ProtocolMismatch);
  EXPECT_NE(reset.error().message.find("not the zygote"), std::string::npos) << reset.error().message;
  EXPECT_FALSE(env.alive());
  env.close();
  EXPECT_TRUE(server.bystander.alive());
}

// identify() asks the kernel (PIDFD_GET_INFO) where it can, and reads /proc
// where it cannot (kernels before 6.13): both must say the same.
using IdentifyFunction = Result<ProcessIdentity> (*)(int, pid_t);

class PidfdIdentity : public ::testing::TestWithParam<IdentifyFunction> {};

// A child in a process group of its own, blocked until its pipe closes.
struct GroupLeaderChild {
  pid_t pid = -1;
  int pidfd = -1;
  int release = -1;
  GroupLeaderChild() {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return;
    pid = fork();
    if (pid == 0) {
      setpgid(0, 0);
      char byte;
      close(fds[1]);
      while (read(fds[0], &byte, 1) < 0) {
      }
      _exit(0);
    }
    close(fds[0]);
    release = fds[1];
    setpgid(pid, pid);  // the parent too: no race with the child's own call
    pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  }
  void end() {
    if (release >= 0) close(std::exchange(release, -1));
    if (pid > 0) waitpid(std::exchange(pid, -1), nullptr, 0);
  }
  ~GroupLeaderChild() {
    end();
    if (pidfd >= 0) close(pidfd);
  }
};

TEST_P(PidfdIdentity, NamesTheProcessItsParentAndItsGroup) {
  GroupLeaderChild child;
  ASSERT_GE(child.pidfd, 0);
  auto identity = GetParam()(child.pidfd, child.pid);
  ASSERT_TRUE(identity) << identity.error().message;
  EXPECT_FALSE(identity->exited);
  EXPECT_EQ(identity->pid, child.pid);
  EXPECT_EQ(identity->parent, getpid());
  EXPECT_EQ(identity->group, child.pid);
}

TEST_P(PidfdIdentity, AClaimOfAnotherPidIsRefused) {
  GroupLeaderChild child;
  ASSERT_GE(child.pidfd, 0);
  auto identity = GetParam()(child.pidfd, getpid());
  ASSERT_FALSE(identity);
  EXPECT_EQ(identity.error().outcome, Outcome::ProtocolMismatch);
  EXPECT_NE(identity.error().message.find("names process " + std::to_string(child.pid)), std::string::npos)
      << identity.error().message;
}

TEST_P(PidfdIdentity, AnExitedProcessIsReportedNotRefused) {
  GroupLeaderChild child;
  ASSERT_GE(child.pidfd, 0);
  const pid_t pid = child.pid;
  child.end();  // exited and reaped: its pid may already belong to another
  auto identity = GetParam()(child.pidfd, pid);
  ASSERT_TRUE(identity) << identity.error().message;
  EXPECT_TRUE(identity->exited);
}

TEST_P(PidfdIdentity, ADescriptorThatIsNoPidfdIsRefused) {
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
  auto identity = GetParam()(fds[0], getpid());
  close(fds[0]);
  close(fds[1]);
  ASSERT_FALSE(identity);
  EXPECT_EQ(identity.error().outcome, Outcome::ProtocolMismatch);
  EXPECT_NE(identity.error().message.find("not a pidfd"), std::string::npos) << identity.error().message;
}

INSTANTIATE_TEST_SUITE_P(BothWays, PidfdIdentity, ::testing::Values(&identify, &identifyThroughProc),
                         [](const auto& info) { return info.index == 0 ? "identify" : "throughProc"; });

TEST(ServerIdentity, ASocketServedByAnotherUserIsRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to serve a socket as another user (uid " << kNobody << ")";
  TempDir dir;
  const std::string socket = dir.path() + "/other.sock";
  int ready[2];
  ASSERT_EQ(pipe2(ready, O_CLOEXEC), 0);
  const pid_t other = ::fork();
  ASSERT_GE(other, 0);
  if (other == 0) {
    // Bound as root (in the test's directory), listening as nobody: the
    // listener's credentials are taken at listen().
    const int fd = boundSocket(socket);
    if (fd < 0 || setgid(kNobody) != 0 || setuid(kNobody) != 0 || listen(fd, 4) != 0) _exit(1);
    (void)!write(ready[1], "r", 1);
    for (;;) pause();
  }
  ::close(ready[1]);
  char byte = 0;
  ASSERT_EQ(read(ready[0], &byte, 1), 1);
  ::close(ready[0]);
  auto connection = Connection::connect(socket);
  kill(other, SIGKILL);
  waitpid(other, nullptr, 0);
  ASSERT_FALSE(connection);
  EXPECT_EQ(connection.error().outcome, Outcome::ServerError);
  EXPECT_NE(connection.error().message.find("uid " + std::to_string(kNobody)), std::string::npos)
      << connection.error().message;
  EXPECT_NE(connection.error().message.find(socket), std::string::npos) << connection.error().message;
}

// Points XDG_RUNTIME_DIR (and so the default socket) at a test directory.
class ScopedRuntimeDir {
 public:
  explicit ScopedRuntimeDir(const std::string& dir) {
    if (const char* old = std::getenv("XDG_RUNTIME_DIR")) old_ = old;
    setenv("XDG_RUNTIME_DIR", dir.c_str(), 1);
  }
  ~ScopedRuntimeDir() {
    if (old_) setenv("XDG_RUNTIME_DIR", old_->c_str(), 1);
    else unsetenv("XDG_RUNTIME_DIR");
  }

 private:
  std::optional<std::string> old_;
};

TEST(ServerIdentity, TheDefaultSocketLivesInAPrivateDirectory) {
  TempDir runtime;
  ScopedRuntimeDir scoped(runtime.path());
  EXPECT_EQ(defaultSocketDir(), runtime.path() + "/forkgym");
  EXPECT_EQ(defaultSocketPath(), runtime.path() + "/forkgym/forkgym.sock");
  ASSERT_TRUE(checkPrivateDir(defaultSocketDir(), /*create=*/true));
  struct stat st {};
  ASSERT_EQ(stat(defaultSocketDir().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  // A server there is trusted.
  Bystander unused;
  FakeZygote zygote(defaultSocketPath(), "honest", unused.pid());
  ASSERT_TRUE(zygote.ready());
  auto connection = Connection::connect(defaultSocketPath());
  EXPECT_TRUE(connection) << connection.error().message;
}

TEST(ServerIdentity, ADefaultDirectoryWithTheWrongModeOrOwnerIsRefusedByClientAndServer) {
  TempDir runtime;
  ScopedRuntimeDir scoped(runtime.path());
  const std::string dir = defaultSocketDir();
  ASSERT_EQ(mkdir(dir.c_str(), 0755), 0);
  ASSERT_EQ(chmod(dir.c_str(), 0755), 0);  // whatever the umask

  auto connection = Connection::connect(defaultSocketPath());
  ASSERT_FALSE(connection);
  EXPECT_NE(connection.error().message.find("refusing the forkgym socket directory '" + dir + "'"), std::string::npos)
      << connection.error().message;
  EXPECT_NE(connection.error().message.find("mode 0755"), std::string::npos) << connection.error().message;

  const std::string server = "XDG_RUNTIME_DIR=" + runtime.path() + " " + FORKGYM_SERVER_BINARY + " 2>&1; echo exit=$?";
  const std::string output = run(server);
  EXPECT_NE(output.find("refusing the forkgym socket directory"), std::string::npos) << output;
  EXPECT_NE(output.find("exit=1"), std::string::npos) << output;

  if (geteuid() == 0) {
    // Private mode, but someone else's.
    ASSERT_EQ(chmod(dir.c_str(), 0700), 0);
    ASSERT_EQ(chown(dir.c_str(), kNobody, kNobody), 0);
    connection = Connection::connect(defaultSocketPath());
    ASSERT_FALSE(connection);
    EXPECT_NE(connection.error().message.find("owned by uid " + std::to_string(kNobody)), std::string::npos)
        << connection.error().message;
  }
}

}  // namespace
}  // namespace forkgym::testing
