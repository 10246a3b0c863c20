// The stage list: the order a worker gives up its privileges in, each stage
// with the exit code that names it when it fails.
#include "sandbox/sandbox.h"

#include <sys/prctl.h>
#include <unistd.h>

#include <array>

#include "sandbox/close_fds.h"
#include "sandbox/identity.h"
#include "sandbox/rlimits.h"
#include "sandbox/seccomp_policy.h"

namespace forkgym::sandbox {
namespace {

struct StageContext {
  const SandboxLimits& limits;
  std::span<const int> keepFds;
};

// First, while the child may still change who it is (isolation.h decides).
bool identity(const StageContext&) { return switchToSandboxUser(currentPlan()); }

// After identity: the namespace maps the sandbox uid, so RLIMIT_NPROC (set
// by the rlimits stage, after this one) counts this episode's processes.
bool userNamespace(const StageContext&) { return enterOwnUserNamespace(currentPlan()); }

// After user_namespace, which hands the process every capability inside it.
bool capabilities(const StageContext&) { return dropAllCapabilities(currentPlan()); }

// Without no_new_privs an unprivileged process may not install a seccomp
// filter, and an exec'd setuid binary could shed it; set it first.
bool noNewPrivs(const StageContext&) { return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0; }

// After user_namespace: a process limit set before unsharing would also cap
// the sandbox uid's processes outside the namespace, i.e. every episode's.
bool processLimit(const StageContext& context) {
  return applyProcessLimit(processLimitUnder(currentPlan(), context.limits.maxProcesses));
}

// The worker's memory, CPU, core, descriptor and niceness limits (a loader
// sets its own, suited to compiling).
bool rlimits(const StageContext& context) {
  return applyRlimits(context.limits);
}

// After rlimits: getrlimit/setrlimit need no descriptors, and closing before
// seccomp lets close_range run unrestricted.
bool closeFds(const StageContext& context) { return closeFdsExcept(context.keepFds); }

// Last: once loaded, even the other stages' syscalls would trap.
bool seccomp(const StageContext&) { return loadSeccompFilter(); }

struct Stage {
  StageInfo info;
  bool (*run)(const StageContext&);
};

// Order is the order of application. Exit codes are part of the wire
// contract (clients decode them): new stages take new codes, never renumber.
// 71..78 sit above the codes ordinary programs use and below 128+signal.
constexpr Stage kStages[] = {
    {{"identity", 75, true}, identity},
    {{"user_namespace", 76, true}, userNamespace},
    {{"capabilities", 77, true}, capabilities},
    {{"process_limit", 78, true}, processLimit},
    {{"no_new_privs", 71, true}, noNewPrivs},
    {{"rlimits", 72, false}, rlimits},
    {{"close_fds", 73, true}, closeFds},
    {{"seccomp", 74, false}, seccomp},
};

constexpr auto kStageInfos = [] {
  std::array<StageInfo, std::size(kStages)> infos{};
  for (std::size_t i = 0; i < infos.size(); ++i) infos[i] = kStages[i].info;
  return infos;
}();

}  // namespace

std::span<const StageInfo> stages() { return kStageInfos; }

std::string_view stageForExitCode(int code) {
  for (const StageInfo& stage : kStageInfos) {
    if (stage.exitCode == code) return stage.name;
  }
  return {};
}

void prepareSandbox(const PolicyParameters& parameters) {
  buildSyscallNames();
  rememberFdScanLimit();
  // A filter that fails to build is reported by the seccomp stage (its exit
  // code), not here: this function has no error channel by design.
  (void)buildSeccompFilter(parameters);
}

void applySandbox(const SandboxLimits& limits, std::span<const int> keepFds, Profile profile) {
  const StageContext context{limits, keepFds};
  for (const Stage& stage : kStages) {
    if (profile == Profile::Loader && !stage.info.inLoader) continue;
    if (!stage.run(context)) _exit(stage.info.exitCode);
  }
}

}  // namespace forkgym::sandbox
