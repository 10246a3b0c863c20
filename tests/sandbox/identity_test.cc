// Who a sandboxed child is: the identity stages under the real kernel, the
// process limit they make hold, and the PID namespace's reaper.
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

#include "sandbox/client_identity.h"
#include "sandbox/isolation.h"
#include "sandbox/sandbox.h"
#include "tests/sandbox/sandboxed_child.h"

namespace forkgym::sandbox {
namespace {

using namespace harness;

constexpr uid_t kNobody = 65534;

// Root can switch users; anyone may be refused user namespaces by the kernel
// or a container. The plan a root server makes where both work.
bool userNamespacesWork() {
  const pid_t child = fork();
  if (child == 0) _exit(unshare(CLONE_NEWUSER) == 0 ? 0 : 1);
  int status = 0;
  return waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

IsolationPlan rootPlan() {
  IsolationPlan plan;
  plan.switchUser = true;
  plan.uid = kNobody;
  plan.gid = kNobody;
  plan.userNamespace = true;
  plan.dropBoundingSet = true;
  plan.unprivileged = true;
  plan.processLimit = true;
  plan.processLimitPerEpisode = true;
  return plan;
}

#define REQUIRE_ROOT_AND_USER_NAMESPACES()                                                   \
  do {                                                                                       \
    if (geteuid() != 0) GTEST_SKIP() << "switching to the sandbox user needs root";          \
    if (!userNamespacesWork()) GTEST_SKIP() << "this kernel refuses user namespaces";        \
  } while (0)

TEST(Sandbox, StagesLeaveAWorkerWithNoUidZeroAndNoCapabilities) {
  REQUIRE_ROOT_AND_USER_NAMESPACES();
  const ChildOutcome outcome = runInChild([] {
    const int status = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    CHILD_CHECK(status >= 0);
    char before[128] = {};
    CHILD_CHECK(readlink("/proc/self/ns/user", before, sizeof(before) - 1) > 0);
    useIsolationPlan(rootPlan());
    enterSandbox({}, {status});
    static char text[8192];
    const ssize_t n = read(status, text, sizeof(text) - 1);
    CHILD_CHECK(n > 0);
    const std::string_view view(text, static_cast<size_t>(n));
    CHILD_CHECK(view.find("Uid:\t65534\t65534\t65534\t65534\n") != std::string_view::npos);
    CHILD_CHECK(view.find("Gid:\t65534\t65534\t65534\t65534\n") != std::string_view::npos);
    CHILD_CHECK(view.find("Groups:\t \n") != std::string_view::npos);  // none (the kernel pads with a space)
    for (const char* set : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"}) {
      const std::string line = std::string(set) + ":\t0000000000000000\n";
      CHILD_CHECK(view.find(line) != std::string_view::npos);
    }
    CHILD_CHECK(view.find("NoNewPrivs:\t1\n") != std::string_view::npos);
    return 0;
  });
  EXPECT_TRUE(outcome.exitedWith(0)) << outcome.describe();
}

TEST(Sandbox, LoaderProfileAppliesEveryStageButRlimitsAndSeccomp) {
  std::vector<std::string_view> loader;
  for (const StageInfo& stage : stages()) {
    if (stage.inLoader) loader.push_back(stage.name);
  }
  const std::vector<std::string_view> expected = {"identity",     "user_namespace", "capabilities",
                                                  "process_limit", "no_new_privs",  "close_fds"};
  EXPECT_EQ(loader, expected);
  const ChildOutcome outcome = runInChild([] {
    const int keep[] = {gReportFd};
    rlimit files{};
    CHILD_CHECK(getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur != 64);
    prepareSandbox(PolicyParameters{kTestRegionBytes});
    applySandbox({}, keep, Profile::Loader);
    rlimit after{};
    CHILD_CHECK(getrlimit(RLIMIT_NOFILE, &after) == 0 && after.rlim_cur == files.rlim_cur);
    // A loader runs tools: the seccomp stage must not have run; and it sets
    // its own limits: the rlimits stage must not have reset them.
    const int status = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    CHILD_CHECK(status >= 0);
    static char text[8192];
    const ssize_t n = read(status, text, sizeof(text) - 1);
    CHILD_CHECK(n > 0);
    CHILD_CHECK(std::string_view(text, static_cast<size_t>(n)).find("Seccomp:\t0\n") != std::string_view::npos);
    return 0;
  });
  EXPECT_TRUE(outcome.exitedWith(0)) << outcome.describe();
}

// A sandboxed child that clones CLONE_PARENT siblings (env.fork()'s kind)
// until the kernel says no, reporting each sibling's pid; the siblings wait
// for the test to kill them, so they stay counted.
int cloneUntilRefused(uint64_t maxProcesses) {
  useIsolationPlan(rootPlan());
  SandboxLimits limits;
  limits.maxProcesses = maxProcesses;
  enterSandbox(limits);
  for (int i = 0; i < 64; ++i) {
    int pidfd = -1;
    const long sibling = syscall(SYS_clone, CLONE_PARENT | CLONE_PIDFD | SIGCHLD, 0L, &pidfd, 0L, 0L);
    if (sibling == 0) {
      for (;;) poll(nullptr, 0, -1);
    }
    if (sibling < 0) {
      reportText(errno == EAGAIN ? "refused EAGAIN\n" : "refused other\n");
      return 0;
    }
    reportText("sibling ");
    reportNumber(sibling);
    reportText("\n");
  }
  return 0;
}

std::vector<pid_t> siblingsIn(const std::string& report) {
  std::vector<pid_t> pids;
  for (size_t at = report.find("sibling "); at != std::string::npos; at = report.find("sibling ", at + 1)) {
    pids.push_back(static_cast<pid_t>(std::stol(report.substr(at + 8))));
  }
  return pids;
}

void killAndReap(const std::vector<pid_t>& pids) {
  for (pid_t pid : pids) kill(pid, SIGKILL);
  for (pid_t pid : pids) waitpid(pid, nullptr, 0);  // CLONE_PARENT: ours to reap
}

TEST(Sandbox, ProcessLimitHoldsPerEpisodeForAServerStartedAsRoot) {
  REQUIRE_ROOT_AND_USER_NAMESPACES();
  // Two episodes of the same sandbox uid, the first still holding its
  // processes while the second runs: each gets its own 4.
  const ChildOutcome first = runInChild([] { return cloneUntilRefused(4); });
  const std::vector<pid_t> firstSiblings = siblingsIn(first.report);
  const ChildOutcome second = runInChild([] { return cloneUntilRefused(4); });
  const std::vector<pid_t> secondSiblings = siblingsIn(second.report);
  killAndReap(firstSiblings);
  killAndReap(secondSiblings);
  for (const ChildOutcome* outcome : {&first, &second}) {
    EXPECT_TRUE(outcome->exitedWith(0)) << outcome->describe();
    // The episode's own process and 3 copies make 4.
    EXPECT_NE(outcome->report.find("refused EAGAIN"), std::string::npos) << outcome->describe();
  }
  EXPECT_EQ(firstSiblings.size(), 3u) << first.describe();
  EXPECT_EQ(secondSiblings.size(), 3u) << second.describe();
}

// The zygote's part, played by a child of a subreaper (so the orphans come
// back to this test): enterIsolation(), a worker forked into the PID
// namespace, then the zygote exits.
TEST(Sandbox, PidNamespaceReaperOutlivesTheZygoteUntilTheNamespaceIsEmpty) {
  if (geteuid() != 0 && !userNamespacesWork()) GTEST_SKIP() << "no namespaces here";
  const ChildOutcome outcome = runInChild([]() -> int {
    CHILD_CHECK(prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
    int release[2], report[2];
    CHILD_CHECK(pipe2(release, O_CLOEXEC) == 0 && pipe2(report, O_CLOEXEC) == 0);
    const pid_t zygote = fork();
    if (zygote == 0) {
      const IsolationPlan plan = enterIsolation(IsolationRequest{});
      if (!plan.pidNamespace) _exit(3);
      close(release[1]);  // only the test may hold it: EOF is the worker's signal to end
      const pid_t worker = fork();
      if (worker == 0) {
        char byte;
        (void)!read(release[0], &byte, 1);  // until the test closes its end
        _exit(0);
      }
      const pid_t pids[2] = {plan.reaperPid, worker};
      (void)!write(report[1], pids, sizeof(pids));
      _exit(0);  // the zygote goes; the worker must not
    }
    close(release[0]);
    close(report[1]);
    pid_t pids[2] = {-1, -1};
    CHILD_CHECK(read(report[0], pids, sizeof(pids)) == sizeof(pids));
    const auto [reaper, worker] = pids;
    CHILD_CHECK(waitpid(zygote, nullptr, 0) == zygote);
    const int reaperFd = static_cast<int>(syscall(SYS_pidfd_open, reaper, 0));
    const int workerFd = static_cast<int>(syscall(SYS_pidfd_open, worker, 0));
    CHILD_CHECK(reaperFd >= 0 && workerFd >= 0);
    // The worker is in the namespace (two pids: ours, and its own there,
    // which is not 1), and lives on without the zygote; so does the reaper.
    std::string status(4096, '\0');
    const int statusFd = open(("/proc/" + std::to_string(worker) + "/status").c_str(), O_RDONLY | O_CLOEXEC);
    CHILD_CHECK(statusFd >= 0);
    status.resize(static_cast<size_t>(std::max<ssize_t>(0, read(statusFd, status.data(), status.size()))));
    close(statusFd);
    const auto nspid = status.find("NSpid:\t" + std::to_string(worker) + "\t");
    CHILD_CHECK(nspid != std::string::npos);
    CHILD_CHECK(status.find("NSpid:\t" + std::to_string(worker) + "\t1\n") == std::string::npos);
    pollfd alive[2] = {{reaperFd, POLLIN, 0}, {workerFd, POLLIN, 0}};
    CHILD_CHECK(poll(alive, 2, 0) == 0);
    // The worker ends: the namespace empties and the reaper follows.
    close(release[1]);
    CHILD_CHECK(waitpid(worker, nullptr, 0) == worker);  // an orphan, back to this subreaper
    pollfd gone{reaperFd, POLLIN, 0};
    CHILD_CHECK(poll(&gone, 1, 10'000) == 1);
    CHILD_CHECK(waitpid(reaper, nullptr, 0) == reaper);
    return 0;
  });
  EXPECT_TRUE(outcome.exitedWith(0)) << outcome.describe();
}

// A root server acts for a client that is not root only with the client's
// file-system identity (uid, gid and groups): a directory the client could
// not search itself stays shut, one root reaches through its own groups
// included; afterwards the caller's identity is back.
TEST(Sandbox, ClientFsIdentityReachesOnlyWhatTheClientCould) {
  if (geteuid() != 0) GTEST_SKIP() << "acting for another user needs root";
  char pattern[] = "/tmp/fgtest-fsid-XXXXXX";
  const std::string top = mkdtemp(pattern);  // 0700, root's
  const std::string bench = top + "/bench";
  const std::string groupOnly = std::string(pattern) + "-group";
  ASSERT_EQ(mkdir(bench.c_str(), 0755), 0);
  ASSERT_EQ(mkdir(groupOnly.c_str(), 0070), 0);  // searchable through group 0 only
  ASSERT_EQ(chown(groupOnly.c_str(), 12345, 0), 0);
  const ChildOutcome outcome = runInChild([&] {
    const FsIdentity client{kNobody, kNobody, {}};
    {
      ClientFsIdentity as(client);
      CHILD_CHECK(as.ok());
      CHILD_CHECK(chdir(bench.c_str()) != 0 && errno == EACCES);
      CHILD_CHECK(chdir(groupOnly.c_str()) != 0 && errno == EACCES);
      CHILD_CHECK(chdir("/tmp") == 0);
    }
    // Root again: both reachable.
    CHILD_CHECK(chdir(bench.c_str()) == 0);
    CHILD_CHECK(chdir(groupOnly.c_str()) == 0);
    gid_t groups[64];
    const int count = getgroups(64, groups);
    CHILD_CHECK(count >= 0);
    CHILD_CHECK(setfsuid(static_cast<uid_t>(-1)) == 0 && setfsgid(static_cast<gid_t>(-1)) == 0);
    // A client in the directory's group reaches it; root as a client is
    // itself (nothing to change).
    {
      ClientFsIdentity as(FsIdentity{kNobody, kNobody, {0}});
      CHILD_CHECK(as.ok() && chdir(groupOnly.c_str()) == 0 && chdir(bench.c_str()) != 0);
    }
    {
      ClientFsIdentity as(FsIdentity{0, 0, {}});
      CHILD_CHECK(as.ok() && chdir(bench.c_str()) == 0);
    }
    gid_t after[64];
    CHILD_CHECK(getgroups(64, after) == count);
    CHILD_CHECK(std::equal(groups, groups + count, after));
    return 0;
  });
  EXPECT_TRUE(outcome.exitedWith(0)) << outcome.describe();
  rmdir(bench.c_str());
  rmdir(top.c_str());
  rmdir(groupOnly.c_str());
}

TEST(Sandbox, IsolationReportNamesTheLevelFromTheFeatures) {
  IsolationPlan none;
  none.fallbacks = {"why"};
  const IsolationReport basic = isolationReport(none);
  EXPECT_EQ(basic.level, "basic");
  const std::vector<std::string> always = {"seccomp", "no_new_privs", "rlimits", "close_fds"};
  EXPECT_EQ(basic.features, always);
  EXPECT_EQ(basic.fallbacks, none.fallbacks);

  IsolationPlan all = rootPlan();
  all.pidNamespace = all.networkNamespace = true;
  all.landlockAbi = 6;
  EXPECT_EQ(isolationReport(all).level, "full");
  EXPECT_EQ(isolationReport(all).features.size(), always.size() + 9);
  all.networkNamespace = false;
  EXPECT_EQ(isolationReport(all).level, "reduced");
  // Landlock's parts count, each from the ABI that brought it.
  all.networkNamespace = true;
  all.landlockAbi = 5;
  const IsolationReport older = isolationReport(all);
  EXPECT_EQ(older.level, "reduced");
  EXPECT_NE(std::find(older.features.begin(), older.features.end(), "landlock_network"), older.features.end());
  EXPECT_EQ(std::find(older.features.begin(), older.features.end(), "landlock_scoped"), older.features.end());
  all.landlockAbi = 6;

  EXPECT_EQ(processLimitUnder(all, 8), 8u);
  all.processLimitPerEpisode = false;
  EXPECT_EQ(processLimitUnder(all, 8), 8u * kSharedProcessLimitFactor);
  all.processLimit = false;
  EXPECT_EQ(processLimitUnder(all, 8), 0u);
}

}  // namespace
}  // namespace forkgym::sandbox
