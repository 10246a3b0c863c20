// The external-compiler profile under the real kernel: a worker that runs a
// compiler's binaries per step may run those binaries and write its private
// /tmp, and nothing else — no other file, no other program, no network, no
// signal to a process outside its episode. Each scenario runs in a child
// that applies the profile exactly as a worker would.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "sandbox/isolation.h"
#include "sandbox/landlock.h"
#include "sandbox/process_group_filter.h"
#include "sandbox/profile.h"
#include "sandbox/rule_sets.h"
#include "sandbox/sandbox.h"
#include "tests/sandbox/sandboxed_child.h"

namespace forkgym::sandbox {
namespace {

using namespace harness;

constexpr uid_t kNobody = 65534;

// The identity and namespaces a server on this machine gives its children:
// root switches to nobody; everyone gets a user namespace of their own (the
// private /tmp needs it).
IsolationPlan childPlan() {
  IsolationPlan plan;
  plan.switchUser = geteuid() == 0;
  plan.uid = plan.switchUser ? kNobody : geteuid();
  plan.gid = plan.switchUser ? kNobody : getegid();
  plan.userNamespace = true;
  plan.dropBoundingSet = true;
  plan.unprivileged = true;
  return plan;
}

bool userNamespacesWork() {
  const pid_t child = fork();
  if (child == 0) _exit(unshare(CLONE_NEWUSER) == 0 ? 0 : 1);
  int status = 0;
  return waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

#define REQUIRE_LANDLOCK_AND_USER_NAMESPACES()                                                   \
  do {                                                                                           \
    if (landlockAbi() < 1) GTEST_SKIP() << "this kernel has no Landlock";                        \
    if (!userNamespacesWork()) GTEST_SKIP() << "this kernel refuses user namespaces";            \
  } while (0)

// Runs `program` with `args` and waits; its exit status, or 128+signal, or
// 200+errno when execve failed.
int runProgram(const char* program, std::vector<const char*> args) {
  args.insert(args.begin(), program);
  args.push_back(nullptr);
  const char* environment[] = {"PATH=/usr/bin:/bin", "LC_ALL=C", "TMPDIR=/tmp", nullptr};
  const pid_t pid = fork();
  if (pid == 0) {
    execve(program, const_cast<char* const*>(args.data()), const_cast<char* const*>(environment));
    _exit(200 + errno);
  }
  int status = 0;
  if (pid < 0 || waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// The installed gcc's driver and the passes `gcc -c` runs, resolved as a
// backend would (-print-prog-name, then PATH); empty when there is no gcc.
std::vector<std::string> gccToolchain() {
  const auto firstLine = [](const std::string& command) {
    std::string out;
    if (FILE* pipe = popen(command.c_str(), "r")) {
      char buffer[4096];
      if (fgets(buffer, sizeof(buffer), pipe)) out = buffer;
      pclose(pipe);
    }
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    return out;
  };
  const std::string gcc = firstLine("command -v gcc 2>/dev/null");
  if (gcc.empty()) return {};
  const std::string cc1 = firstLine(gcc + " -print-prog-name=cc1");
  std::string as = firstLine(gcc + " -print-prog-name=as");
  if (!as.empty() && as[0] != '/') as = firstLine("command -v " + as);
  if (cc1.empty() || cc1[0] != '/' || as.empty()) return {};
  return {gcc, cc1, as};
}

// In the child: the profile for `executables`, applied as a worker's last
// setup step (with the harness's report pipe kept).
void enterExternalCompilerSandbox(const std::vector<std::string>& executables, std::initializer_list<int> keep = {}) {
  struct sigaction action {};
  action.sa_sigaction = sigsysReporter;
  action.sa_flags = SA_SIGINFO;
  sigemptyset(&action.sa_mask);
  sigaction(SIGSYS, &action, nullptr);
  useIsolationPlan(childPlan());
  prepareSandbox(PolicyParameters{kTestRegionBytes});
  auto profile = prepareExternalCompiler({"test compiler", executables, {}});
  if (!profile.ok()) {
    reportText("prepareExternalCompiler: ");
    reportText(profile.error().message);
    _exit(kCheckFailed);
  }
  std::vector<int> kept{gReportFd};
  kept.insert(kept.end(), keep);
  applySandbox({}, kept, *profile);
}

TEST(ExternalCompiler, ProfilesAreNamedRuleSets) {
  for (const char* name : {"channel", "memory", "episode_fork", "in_process_compiler", "external_compiler"}) {
    const RuleSet* set = findRuleSet(name);
    ASSERT_NE(set, nullptr) << name;
    EXPECT_FALSE(set->rows.empty()) << name;
    EXPECT_FALSE(set->purpose.empty()) << name;
  }
  const std::vector<std::string_view> worker = {"channel", "memory", "episode_fork", "in_process_compiler"};
  EXPECT_EQ(ruleSetsOf(Profile::Worker), worker);
  // The worker allows exactly its sets' rows: no execve, no open.
  size_t rows = 0;
  for (std::string_view name : worker) rows += findRuleSet(name)->rows.size();
  EXPECT_EQ(seccompAllowlist().size(), rows);
  for (const SeccompRule& row : seccompAllowlist()) {
    EXPECT_NE(row.syscall, "execve");
    EXPECT_NE(row.syscall, "openat");
  }
}

TEST(ExternalCompiler, PreparingRefusesAMissingCompilerByName) {
  const ChildOutcome outcome = runInChild([] {
    prepareSandbox(PolicyParameters{kTestRegionBytes});
    auto profile = prepareExternalCompiler({"gcc", {"/nonexistent/cc1"}, {}});
    CHILD_CHECK(!profile.ok());
    CHILD_CHECK(profile.error().message.find("/nonexistent/cc1") != std::string::npos);
    CHILD_CHECK(!prepareExternalCompiler({"gcc", {"relative/cc1"}, {}}).ok());
    return 0;
  });
  EXPECT_TRUE(outcome.exitedWith(0)) << outcome.describe();
}

// The listed compiler runs — from the worker and from a process it forks —
// and writes in the private /tmp, which nobody else sees and which is gone
// with the process.
TEST(ExternalCompiler, RunsTheListedCompilerWhichWritesOnlyItsPrivateTmp) {
  REQUIRE_LANDLOCK_AND_USER_NAMESPACES();
  const std::vector<std::string> gcc = gccToolchain();
  if (gcc.empty()) GTEST_SKIP() << "no gcc installed";
  char marker[] = "/tmp/fgtest-host-tmp-XXXXXX";
  const int markerFd = mkstemp(marker);
  ASSERT_GE(markerFd, 0);
  close(markerFd);
  const std::string prefix = "/tmp/fgtest-private-" + std::to_string(getpid());
  const std::string src = prefix + ".c", obj = prefix + ".o", assembly = prefix + ".s";
  const ChildOutcome outcome = runInChild([&] {
    enterExternalCompilerSandbox(gcc);
    CHILD_CHECK(privateTempDirectory() != nullptr && std::string(privateTempDirectory()) == "/tmp");
    // Not the host's /tmp: its files are not there.
    struct stat info {};
    CHILD_CHECK(stat(marker, &info) != 0 && errno == ENOENT);
    const int source = open(src.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    CHILD_CHECK(source >= 0);
    const char text[] = "int f(int x) { return x * 3; }\n";
    CHILD_CHECK(write(source, text, sizeof(text) - 1) == static_cast<ssize_t>(sizeof(text) - 1));
    close(source);
    CHILD_CHECK(runProgram(gcc[0].c_str(), {"-O2", "-w", "-c", src.c_str(), "-o", obj.c_str()}) == 0);
    CHILD_CHECK(stat(obj.c_str(), &info) == 0 && info.st_size > 0);
    // A process the worker forks is under the same profile, and may run it too.
    const pid_t helper = fork();
    if (helper == 0) _exit(runProgram(gcc[0].c_str(), {"-w", "-S", src.c_str(), "-o", assembly.c_str()}));
    int status = 0;
    CHILD_CHECK(waitpid(helper, &status, 0) == helper && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHILD_CHECK(stat(assembly.c_str(), &info) == 0 && info.st_size > 0);
    reportText("compiled\n");
    return 0;
  });
  EXPECT_TRUE(outcome.exitedWith(0)) << outcome.describe();
  for (const std::string& written : {src, obj, assembly}) {
    EXPECT_NE(access(written.c_str(), F_OK), 0) << written << " reached the host's /tmp";
  }
  unlink(marker);
}

// Reading is limited to the system's directories and what the profile
// lists; writing to the private /tmp (and /dev/null).
TEST(ExternalCompiler, OpensNothingOutsideTheSystemDirectoriesAndItsTmp) {
  REQUIRE_LANDLOCK_AND_USER_NAMESPACES();
  char cwd[4096] = {};
  ASSERT_NE(getcwd(cwd, sizeof(cwd)), nullptr);  // the build tree: what a server's cwd would be
  const std::string here = std::string(cwd) + "/fgtest-external-compiler-here";
  const int probe = open(here.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  ASSERT_GE(probe, 0);
  close(probe);
  const ChildOutcome outcome = runInChild([&] {
    enterExternalCompilerSandbox({"/usr/bin/true"});
    const auto opens = [](const char* path, int flags) {
      const int fd = open(path, flags | O_CLOEXEC, 0600);
      if (fd >= 0) close(fd);
      return fd >= 0 ? 0 : errno;
    };
    // The system: programs, libraries, headers, the loader's cache.
    CHILD_CHECK(opens("/usr/include/stdio.h", O_RDONLY) == 0);
    CHILD_CHECK(opens("/etc/ld.so.cache", O_RDONLY) == 0);
    CHILD_CHECK(opens("/usr/lib", O_RDONLY | O_DIRECTORY) == 0);
    CHILD_CHECK(opens("/dev/null", O_WRONLY) == 0);
    // Nothing else: other files of /etc, the server's directory, home
    // directories, /root, /proc's view of other processes.
    CHILD_CHECK(opens("/etc/passwd", O_RDONLY) == EACCES);
    CHILD_CHECK(opens("/etc", O_RDONLY | O_DIRECTORY) == EACCES);
    CHILD_CHECK(opens(here.c_str(), O_RDONLY) == EACCES);
    CHILD_CHECK(opens("/root", O_RDONLY | O_DIRECTORY) == EACCES);
    CHILD_CHECK(opens("/proc/1/status", O_RDONLY) == EACCES);
    // No writing to the system either.
    CHILD_CHECK(opens("/usr/include/stdio.h", O_WRONLY) == EACCES);
    CHILD_CHECK(opens("/usr/fgtest-new-file", O_WRONLY | O_CREAT) == EACCES);
    // The private /tmp: files and directories come and go.
    CHILD_CHECK(opens("/tmp/out.o", O_WRONLY | O_CREAT) == 0);
    CHILD_CHECK(mkdir("/tmp/sub", 0700) == 0 && rename("/tmp/out.o", "/tmp/sub/out.o") == 0);
    CHILD_CHECK(unlink("/tmp/sub/out.o") == 0 && rmdir("/tmp/sub") == 0);
    return 0;
  });
  EXPECT_TRUE(outcome.exitedWith(0)) << outcome.describe();
  unlink(here.c_str());
}

// execve of the listed binaries only: a shell, another tool, a file the
// compiler wrote all fail.
TEST(ExternalCompiler, ExecutesOnlyTheListedBinaries) {
  REQUIRE_LANDLOCK_AND_USER_NAMESPACES();
  const ChildOutcome outcome = runInChild([] {
    enterExternalCompilerSandbox({"/usr/bin/true"});
    CHILD_CHECK(runProgram("/usr/bin/true", {}) == 0);
    CHILD_CHECK(runProgram("/bin/sh", {"-c", "exit 0"}) == 200 + EACCES);
    CHILD_CHECK(runProgram("/usr/bin/env", {}) == 200 + EACCES);
    // A program it wrote itself (a copy of an allowed one) does not run.
    const int in = open("/usr/bin/true", O_RDONLY | O_CLOEXEC);
    const int out = open("/tmp/mine", O_WRONLY | O_CREAT | O_CLOEXEC, 0700);
    CHILD_CHECK(in >= 0 && out >= 0);
    char buffer[65536];
    for (ssize_t n; (n = read(in, buffer, sizeof(buffer))) > 0;) CHILD_CHECK(write(out, buffer, static_cast<size_t>(n)) == n);
    close(in);
    close(out);
    CHILD_CHECK(runProgram("/tmp/mine", {}) == 200 + EACCES);
    return 0;
  });
  EXPECT_TRUE(outcome.exitedWith(0)) << outcome.describe();
}

// No network: the only sockets are Unix ones (an inet socket traps), and
// Landlock refuses TCP even to a process that had one.
TEST(ExternalCompiler, ReachesNoNetwork) {
  REQUIRE_LANDLOCK_AND_USER_NAMESPACES();
  // A loopback server of the test's own.
  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  ASSERT_EQ(listen(listener, 4), 0);
  socklen_t length = sizeof(address);
  ASSERT_EQ(getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length), 0);

  const ChildOutcome trapped = runInChild([&] {
    enterExternalCompilerSandbox({"/usr/bin/true"});
    const int unixSocket = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHILD_CHECK(unixSocket >= 0);
    close(unixSocket);
    (void)socket(AF_INET, SOCK_STREAM, 0);
    return kNotTrapped;
  });
  EXPECT_TRUE(trapped.trapped(SYS_socket, "socket")) << trapped.describe();

  if (landlockAbi() >= 4) {
    // Below seccomp: a socket made before the domain cannot connect after.
    const ChildOutcome refused = runInChild([&] {
      const int tcp = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      CHILD_CHECK(tcp >= 0);
      CHILD_CHECK(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0);
      CHILD_CHECK(restrictFileSystem({}, nullptr));
      CHILD_CHECK(connect(tcp, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 && errno == EACCES);
      return 0;
    });
    EXPECT_TRUE(refused.exitedWith(0)) << refused.describe();
  }
  close(listener);
}

// Signals stay within the episode: a process of the same user outside the
// worker's Landlock domain cannot be signalled (another episode's worker).
TEST(ExternalCompiler, SignalsNoProcessOutsideItsEpisode) {
  REQUIRE_LANDLOCK_AND_USER_NAMESPACES();
  if (landlockAbi() < 6) GTEST_SKIP() << "Landlock ABI " << landlockAbi() << " does not scope signals";
  int ready[2];
  ASSERT_EQ(pipe2(ready, O_CLOEXEC), 0);
  // The bystander runs as the sandbox's user, as another episode would.
  const pid_t bystander = fork();
  if (bystander == 0) {
    const IsolationPlan plan = childPlan();
    if (geteuid() == 0 && (setresgid(plan.gid, plan.gid, plan.gid) != 0 || setresuid(plan.uid, plan.uid, plan.uid) != 0)) {
      _exit(1);
    }
    close(ready[0]);
    (void)!write(ready[1], "r", 1);
    pause();
    _exit(0);
  }
  close(ready[1]);
  char byte = 0;
  ASSERT_EQ(read(ready[0], &byte, 1), 1);
  close(ready[0]);
  const ChildOutcome outcome = runInChild([&] {
    enterExternalCompilerSandbox({"/usr/bin/true"});
    CHILD_CHECK(kill(bystander, SIGKILL) != 0 && errno == EPERM);
    // Its own processes it may signal. The copy blocks in read() (pause()
    // is outside the profile: it would die of SIGSYS before the SIGKILL).
    // It says it is ready first, so the kill lands while it is blocked.
    int hold[2], started[2];
    CHILD_CHECK(pipe2(hold, O_CLOEXEC) == 0 && pipe2(started, O_CLOEXEC) == 0);
    const pid_t own = fork();
    if (own == 0) {
      char never = 0;
      (void)!write(started[1], "r", 1);
      (void)!read(hold[0], &never, 1);
      _exit(0);
    }
    char ready = 0;
    CHILD_CHECK(read(started[0], &ready, 1) == 1);
    CHILD_CHECK(kill(own, SIGKILL) == 0);
    int status = 0;
    CHILD_CHECK(waitpid(own, &status, 0) == own && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    return 0;
  });
  EXPECT_TRUE(outcome.exitedWith(0)) << outcome.describe();
  int status = 0;
  EXPECT_EQ(waitpid(bystander, &status, WNOHANG), 0) << "the bystander was killed";
  kill(bystander, SIGKILL);
  waitpid(bystander, &status, 0);
}

// A compiler is ended by killing its process group (on its timeout, and
// when its worker dies): under the profile it may take a filter of its own
// (process_group_filter.h) after which it and every process it starts stay
// in that group — setpgid and setsid fail — while the rest goes on.
TEST(ExternalCompiler, ACompilerAndItsPassesStayInTheirProcessGroup) {
  REQUIRE_LANDLOCK_AND_USER_NAMESPACES();
  const ChildOutcome outcome = runInChild([&] {
    enterExternalCompilerSandbox({"/usr/bin/true"});
    // The leader of a compiler's group, as the tool runner makes it.
    CHILD_CHECK(setpgid(0, 0) == 0);
    CHILD_CHECK(keepInProcessGroup());
    const pid_t group = getpgrp();
    CHILD_CHECK(setpgid(0, 0) != 0 && errno == EPERM);
    const pid_t pass = fork();
    if (pass == 0) {
      // A pass (cc1) inherits the filter: it cannot leave the group either.
      _exit(setpgid(0, 0) != 0 && errno == EPERM && getpgrp() == group ? 0 : 1);
    }
    int status = 0;
    CHILD_CHECK(waitpid(pass, &status, 0) == pass && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHILD_CHECK(getpgrp() == group);
    CHILD_CHECK(runProgram("/usr/bin/true", {}) == 0);  // and runs its binaries as before
    return 0;
  });
  EXPECT_TRUE(outcome.exitedWith(0)) << outcome.describe();
}

// Outside a sandbox (a test compiling directly, no no_new_privs yet) the
// filter loads too, and setsid fails as setpgid does (the profile traps it
// before the filter is asked).
TEST(ExternalCompiler, TheProcessGroupFilterNeedsNoSandbox) {
  const ChildOutcome outcome = runInChild([&] {
    CHILD_CHECK(setpgid(0, 0) == 0);
    CHILD_CHECK(keepInProcessGroup());
    CHILD_CHECK(setpgid(0, 0) != 0 && errno == EPERM);
    CHILD_CHECK(setsid() == -1 && errno == EPERM);
    return 0;
  });
  EXPECT_TRUE(outcome.exitedWith(0)) << outcome.describe();
}

}  // namespace
}  // namespace forkgym::sandbox
