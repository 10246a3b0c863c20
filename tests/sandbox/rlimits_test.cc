// Resource limits as a worker experiences them after applySandbox().
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include <cerrno>
#include <cstdlib>
#include <new>

#include <gtest/gtest.h>

#include "sandbox/sandbox.h"
#include "tests/sandbox/sandboxed_child.h"

namespace forkgym::sandbox {
namespace {

using namespace harness;

double cpuSecondsUsed() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

void burnCpuUntil(double seconds) {
  volatile unsigned long sink = 0;
  while (cpuSecondsUsed() < seconds) {
    for (int i = 0; i < 100000; ++i) sink = sink + static_cast<unsigned long>(i);
  }
}

TEST(Sandbox, AddressSpaceLimitMakesAllocationFail) {
  const ChildOutcome outcome = runInChild([] {
    SandboxLimits limits;
    limits.addressSpaceBytes = 1ull << 30;
    enterSandbox(limits);
    constexpr size_t k2GB = 2ull << 30;
    // Stored through volatile: the compiler may otherwise elide an unused
    // allocation, assume it succeeded and fold the null check away.
    void* volatile fromMalloc = malloc(k2GB);
    CHILD_CHECK(fromMalloc == nullptr);
    char* volatile fromNew = new (std::nothrow) char[k2GB];
    CHILD_CHECK(fromNew == nullptr);
    errno = 0;
    CHILD_CHECK(mmap(nullptr, k2GB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED);
    CHILD_CHECK(errno == ENOMEM);
    // Failing big does not mean failing small: the worker can still report.
    void* volatile small = malloc(1 << 20);
    CHILD_CHECK(small != nullptr);
    free(small);
    return 0;
  });
  EXPECT_TRUE(outcome.exitedWith(0)) << outcome.describe();
}

// The children below burn CPU seconds at the sandbox's niceness (+10): on a
// loaded machine a CPU second can take far more than the harness's default
// hang guard of wall clock, which is no limit of theirs.
constexpr std::chrono::seconds kCpuBurnHangGuard{300};

TEST(Sandbox, CpuLimitRaisesSigxcpu) {
  const ChildOutcome outcome = runInChild(
      [] {
        enterSandbox();
        limitCpuForNextStep(1);
        burnCpuUntil(1e9);
        return 0;
      },
      kCpuBurnHangGuard);
  EXPECT_TRUE(outcome.killedBy(SIGXCPU)) << outcome.describe();
}

TEST(Sandbox, CpuBudgetCountsFromCpuAlreadyUsed) {
  // The limit is per step: CPU spent before the step does not count against it.
  const ChildOutcome outcome = runInChild(
      [] {
        enterSandbox();
        burnCpuUntil(1.1);
        limitCpuForNextStep(1);
        burnCpuUntil(1.4);
        return 0;
      },
      kCpuBurnHangGuard);
  EXPECT_TRUE(outcome.exitedWith(0)) << outcome.describe();
}

}  // namespace
}  // namespace forkgym::sandbox
