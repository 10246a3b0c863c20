#include "sandbox/rlimits.h"

#include <sys/resource.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>

#include <algorithm>

namespace forkgym::sandbox {
namespace {

// Sets both soft and hard to `value` (clamped to the current hard limit):
// lowering the hard limit is what stops the worker raising it back.
bool capLimit(int resource, rlim_t value) {
  rlimit current{};
  if (getrlimit(resource, &current) != 0) return false;
  const rlim_t capped = std::min(value, current.rlim_max);
  const rlimit next{capped, capped};
  return setrlimit(resource, &next) == 0;
}

// CPU time is the one limit moved while serving (per step), so only the soft
// limit is set and the hard limit stays where it was: reaching the soft limit
// raises SIGXCPU, which the worker reports as a timeout, long before a hard
// limit would SIGKILL it anonymously.
// Only the soft limit, to `value` (clamped to the hard limit, left as is).
bool setSoftLimit(int resource, rlim_t value) {
  rlimit current{};
  if (getrlimit(resource, &current) != 0) return false;
  const rlimit next{std::min(value, current.rlim_max), current.rlim_max};
  return setrlimit(resource, &next) == 0;
}

bool setCpuSoftLimit(rlim_t seconds) {
  rlimit current{};
  if (getrlimit(RLIMIT_CPU, &current) != 0) return false;
  const rlim_t soft = seconds == 0 ? current.rlim_max : std::min(seconds, current.rlim_max);
  const rlimit next{soft, current.rlim_max};
  return setrlimit(RLIMIT_CPU, &next) == 0;
}

uint64_t cpuSecondsUsedRoundedUp() {
  rusage usage{};
  if (getrusage(RUSAGE_SELF, &usage) != 0) return 0;
  const uint64_t micros =
      static_cast<uint64_t>(usage.ru_utime.tv_usec) + static_cast<uint64_t>(usage.ru_stime.tv_usec);
  return static_cast<uint64_t>(usage.ru_utime.tv_sec) + static_cast<uint64_t>(usage.ru_stime.tv_sec) +
         (micros + 999'999) / 1'000'000;
}

}  // namespace

bool applyRlimits(const SandboxLimits& limits) {
  if (limits.addressSpaceBytes != 0) {
    const bool set = limits.addressSpaceSoftOnly ? setSoftLimit(RLIMIT_AS, limits.addressSpaceBytes)
                                                 : capLimit(RLIMIT_AS, limits.addressSpaceBytes);
    if (!set) return false;
  }
  if (!setCpuSoftLimit(limits.cpuSeconds)) return false;
  // A crashing worker must not write a core the size of LLVM into the cwd.
  if (!capLimit(RLIMIT_CORE, 0)) return false;
  if (limits.maxOpenFiles != 0 && !capLimit(RLIMIT_NOFILE, limits.maxOpenFiles)) return false;
  if (limits.niceness > 0) {
    // Only ever lowers the priority (a positive increment needs no privilege).
    errno = 0;
    if (nice(limits.niceness) == -1 && errno != 0) return false;
  }
  return true;
}

bool applyProcessLimit(uint64_t processes) { return processes == 0 || capLimit(RLIMIT_NPROC, processes); }

void limitCpuForNextStep(uint64_t seconds) {
  // Process CPU time accumulates across steps; the budget is relative to it.
  // Failure is not reportable here (no error regime after fork) and cannot
  // happen under the policy, which allows exactly these two calls.
  const uint64_t budget = seconds == 0 ? 0 : cpuSecondsUsedRoundedUp() + seconds;
  (void)setCpuSoftLimit(budget);
}

}  // namespace forkgym::sandbox
