// The seccomp policy under the real kernel: allowed work runs, denied
// syscalls trap with SIGSYS naming the syscall.
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <functional>
#include <new>
#include <ostream>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "sandbox/sandbox.h"
#include "tests/sandbox/sandboxed_child.h"

namespace forkgym::sandbox {
namespace {

using namespace harness;

int resolve(std::string_view name) {
  return seccomp_syscall_resolve_name(std::string(name).c_str());
}

TEST(Sandbox, AllowlistRowsAllHaveReasonsAndResolve) {
  std::set<std::string_view> seen;
  for (const SeccompRule& row : seccompAllowlist()) {
    EXPECT_FALSE(row.syscall.empty());
    EXPECT_FALSE(row.rule.empty()) << row.syscall;
    // A reason is a sentence, not a placeholder.
    EXPECT_GE(row.why.size(), 20u) << row.syscall;
    EXPECT_TRUE(seen.insert(row.syscall).second) << "duplicate row " << row.syscall;
    EXPECT_GE(resolve(row.syscall), 0) << row.syscall << " does not exist on this architecture";
  }
  for (std::string_view denied : deniedSyscallExamples()) {
    EXPECT_GE(resolve(denied), 0) << denied;
    EXPECT_EQ(seen.count(denied), 0u) << denied << " is both allowed and a denied example";
  }
}

TEST(Sandbox, SyscallNamesComeFromThePreparedTable) {
  const ChildOutcome outcome = runInChild([] {
    CHILD_CHECK(std::string_view(syscallName(SYS_openat)) == "unknown");  // not prepared yet
    prepareSandbox(PolicyParameters{kTestRegionBytes});
    CHILD_CHECK(std::string_view(syscallName(SYS_openat)) == "openat");
    CHILD_CHECK(std::string_view(syscallName(SYS_clone3)) == "clone3");
    CHILD_CHECK(std::string_view(syscallName(-1)) == "unknown");
    CHILD_CHECK(std::string_view(syscallName(1 << 20)) == "unknown");
    return 0;
  });
  EXPECT_TRUE(outcome.exitedWith(0)) << outcome.describe();
}

// One death test per denied example, generated from the table. Arguments
// are all -1 so that, were the filter broken, the call would fail with
// EFAULT/EBADF/EINVAL instead of doing harm (fork and vfork take none; the
// child then only _exits).
class DeniedSyscall : public ::testing::TestWithParam<std::string_view> {};
using Sandbox = DeniedSyscall;

TEST_P(Sandbox, DeniedSyscallIsTrappedWithSigsys) {
  const std::string_view name = GetParam();
  const int number = resolve(name);
  ASSERT_GE(number, 0) << name;
  const ChildOutcome outcome = runInChild([number]() -> int {
    enterSandbox();
    syscall(number, -1L, -1L, -1L, -1L, -1L, -1L);
    reportText("returned\n");
    _exit(kNotTrapped);  // also ends a broken fork's second copy at once
  });
  EXPECT_TRUE(outcome.trapped(number, name)) << outcome.describe();
}

INSTANTIATE_TEST_SUITE_P(EveryExample, Sandbox, ::testing::ValuesIn(deniedSyscallExamples()),
                         [](const auto& info) { return std::string(info.param); });

// Argument rules: the same syscall that the worker needs is denied with
// arguments it does not need.
struct ArgumentCase {
  std::string_view name;     // test name
  std::string_view syscall;  // what the SIGSYS report must say
  std::function<void()> call;
};

const ArgumentCase kArgumentCases[] = {
    {"SocketpairOtherThanUnix", "socketpair",
     [] {
       int pair[2];
       socketpair(AF_INET, SOCK_STREAM, 0, pair);
     }},
    {"CloneWithForkFlags", "clone", [] { syscall(SYS_clone, SIGCHLD, 0L, 0L, 0L, 0L); }},
    {"CloneIntoNewNamespace", "clone",
     [] {
       int pidfd = -1;
       syscall(SYS_clone, CLONE_PARENT | CLONE_PIDFD | SIGCHLD | CLONE_NEWNS, 0L, &pidfd, 0L, 0L);
     }},
    // The copy's pidfd comes from clone itself: a clone without CLONE_PIDFD
    // would need pidfd_open, which could name any process.
    {"CloneWithoutPidfd", "clone", [] { syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0L, 0L, 0L, 0L); }},
    // tgkill is how abort() and the crash reporter raise a fatal signal on
    // themselves; stopping or pausing a process is nothing a worker does.
    {"TgkillWithSigstop", "tgkill", [] { syscall(SYS_tgkill, getpid(), gettid(), SIGSTOP); }},
    {"TgkillWithSigterm", "tgkill", [] { syscall(SYS_tgkill, getpid(), gettid(), SIGTERM); }},
    {"FcntlLock", "fcntl", [] { fcntl(gReportFd, F_SETLK, nullptr); }},
    {"FcntlSeal", "fcntl", [] { fcntl(gReportFd, F_ADD_SEALS, F_SEAL_SHRINK); }},
    // A shared region can only be sized as a new channel is; shrinking one
    // under its client (SIGBUS there) or growing it is not.
    {"FtruncateToZero", "ftruncate", [] { ftruncate(gReportFd, 0); }},
    {"FtruncateToAnotherSize", "ftruncate", [] { ftruncate(gReportFd, kTestRegionBytes / 2); }},
    {"FtruncateLargerThanARegion", "ftruncate", [] { ftruncate(gReportFd, kTestRegionBytes * 2); }},
    {"RaisingAddressSpaceLimit", "prlimit64",
     [] {
       const rlimit unlimited{RLIM_INFINITY, RLIM_INFINITY};
       setrlimit(RLIMIT_AS, &unlimited);
     }},
    {"ReadingAnotherProcessLimits", "prlimit64",
     [] {
       rlimit old{};
       prlimit(1, RLIMIT_CPU, nullptr, &old);
     }},
    {"LegacySetrlimitOtherThanCpu", "setrlimit",
     [] {
       const rlimit none{0, 0};
       syscall(SYS_setrlimit, RLIMIT_NOFILE, &none);
     }},
    // A worker reads its own cores (to know whether to poll); another
    // process's are none of its business.
    {"AnotherProcessCores", "sched_getaffinity",
     [] {
       cpu_set_t cores;
       sched_getaffinity(1, sizeof(cores), &cores);
     }},
    {"StatByPath", "newfstatat",
     [] {
       struct stat st {};
       stat("/", &st);
     }},
};

// Names the case in test listings instead of dumping its bytes.
void PrintTo(const ArgumentCase& c, std::ostream* os) { *os << c.name; }

class ArgumentRule : public ::testing::TestWithParam<ArgumentCase> {};

TEST_P(ArgumentRule, DeniesArgumentsTheWorkerDoesNotNeed) {
  const ArgumentCase& c = GetParam();
  const int number = resolve(c.syscall);
  const ChildOutcome outcome = runInChild([&c]() -> int {
    enterSandbox();
    c.call();
    reportText("returned\n");
    _exit(kNotTrapped);
  });
  EXPECT_TRUE(outcome.trapped(number, c.syscall)) << outcome.describe();
}

INSTANTIATE_TEST_SUITE_P(Sandbox, ArgumentRule, ::testing::ValuesIn(kArgumentCases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(Sandbox, PlainForkIsDenied) {
  // glibc fork() is clone(CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID | SIGCHLD):
  // not the one flag set env.fork() uses, so a fork bomb stops at the first.
  const ChildOutcome outcome = runInChild([]() -> int {
    enterSandbox();
    fork();
    reportText("returned\n");
    _exit(kNotTrapped);
  });
  EXPECT_TRUE(outcome.trapped(SYS_clone, "clone")) << outcome.describe();
}

constexpr size_t k100MB = 100u << 20;
constexpr int kSiblingExit = 7;

TEST(Sandbox, AllowedWorkStillRuns) {
  const ChildOutcome outcome = runInChild([] {
    enterSandbox();

    // Heap, both allocators, and anonymous mappings. Pointers go through
    // volatile so the compiler cannot elide the allocations being tested.
    char* volatile heap = static_cast<char*>(malloc(k100MB));
    CHILD_CHECK(heap != nullptr);
    memset(heap, 1, k100MB);
    free(heap);
    char* volatile array = new (std::nothrow) char[k100MB];
    CHILD_CHECK(array != nullptr);
    memset(array, 2, k100MB);
    delete[] array;
    void* mapped = mmap(nullptr, 16u << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHILD_CHECK(mapped != MAP_FAILED);
    CHILD_CHECK(madvise(mapped, 16u << 20, MADV_DONTNEED) == 0);
    CHILD_CHECK(munmap(mapped, 16u << 20) == 0);

    // A new shared region, as env.fork() makes one: sized, then sealed.
    const int region = memfd_create("forkgym-region", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    CHILD_CHECK(region >= 0);
    CHILD_CHECK(ftruncate(region, kTestRegionBytes) == 0);
    CHILD_CHECK(fcntl(region, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) == 0);
    struct stat st {};
    CHILD_CHECK(fstat(region, &st) == 0 && st.st_size == kTestRegionBytes);
    void* shared = mmap(nullptr, kTestRegionBytes, PROT_READ | PROT_WRITE, MAP_SHARED, region, 0);
    CHILD_CHECK(shared != MAP_FAILED);
    static_cast<char*>(shared)[0] = 'x';
    CHILD_CHECK(munmap(shared, kTestRegionBytes) == 0);

    // A new doorbell pair, rung both ways, with the fcntl calls a channel makes.
    int bell[2];
    CHILD_CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, bell) == 0);
    const int flags = fcntl(bell[0], F_GETFL);
    CHILD_CHECK(flags >= 0 && fcntl(bell[0], F_SETFL, flags | O_NONBLOCK) == 0);
    CHILD_CHECK(fcntl(bell[0], F_SETFD, FD_CLOEXEC) == 0 && fcntl(bell[0], F_GETFD) == FD_CLOEXEC);
    CHILD_CHECK(send(bell[0], "r", 1, 0) == 1);
    pollfd ready{bell[1], POLLIN, 0};
    CHILD_CHECK(poll(&ready, 1, 1000) == 1);
    char byte = 0;
    CHILD_CHECK(recv(bell[1], &byte, 1, 0) == 1 && byte == 'r');
    const int copy = fcntl(bell[1], F_DUPFD_CLOEXEC, 0);
    CHILD_CHECK(copy >= 0);
    CHILD_CHECK(dup2(copy, 50) == 50 && dup3(copy, 51, O_CLOEXEC) == 51);
    CHILD_CHECK(close_range(50, 51, 0) == 0);
    for (int fd : {bell[0], bell[1], copy, region}) CHILD_CHECK(close(fd) == 0);

    // Time, randomness, and the per-step CPU budget.
    timespec now{};
    CHILD_CHECK(clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now) == 0);
    unsigned seed = 0;
    CHILD_CHECK(getrandom(&seed, sizeof(seed), 0) == sizeof(seed));
    limitCpuForNextStep(60);
    rlimit cpu{};
    CHILD_CHECK(getrlimit(RLIMIT_CPU, &cpu) == 0 && cpu.rlim_cur >= 60 && cpu.rlim_cur != RLIM_INFINITY);
    CHILD_CHECK(sched_yield() == 0);
    cpu_set_t cores;
    CHILD_CHECK(sched_getaffinity(0, sizeof(cores), &cores) == 0 && CPU_COUNT(&cores) >= 1);

    // env.fork(): a sibling whose parent is the test process (the zygote's
    // role), watched through the pidfd clone returns (pidfd_open and wait4
    // are denied).
    int pidfd = -1;
    const long sibling = syscall(SYS_clone, CLONE_PARENT | CLONE_PIDFD | SIGCHLD, 0L, &pidfd, 0L, 0L);
    if (sibling == 0) _exit(kSiblingExit);
    CHILD_CHECK(sibling > 0);
    reportText("sibling ");
    reportNumber(sibling);
    reportText("\n");
    CHILD_CHECK(pidfd >= 0);
    pollfd exited{pidfd, POLLIN, 0};
    CHILD_CHECK(poll(&exited, 1, 5000) == 1);
    return 0;
  });
  EXPECT_TRUE(outcome.exitedWith(0)) << outcome.describe();

  // CLONE_PARENT made this process the sibling's parent: it reaps it.
  const size_t at = outcome.report.find("sibling ");
  ASSERT_NE(at, std::string::npos) << outcome.describe();
  const pid_t sibling = static_cast<pid_t>(std::stol(outcome.report.substr(at + 8)));
  int status = 0;
  ASSERT_EQ(waitpid(sibling, &status, 0), sibling);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == kSiblingExit) << status;
}

}  // namespace
}  // namespace forkgym::sandbox
