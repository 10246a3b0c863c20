// The sandbox of the zygote's children: an ordered list of named stages,
// applied by a freshly forked worker (or loader) as its last setup step,
// following a profile (profile.h: which stages, which rule sets).
//
// Lifecycle (a child just forked from the zygote, single-threaded):
//   0. In the zygote, once: enterIsolation() (isolation.h) decides which
//      identity and namespaces children get; the identity stages follow it.
//   1. prepareSandbox() — still unsandboxed: precomputes everything the
//      later stages and the SIGSYS reporter need (syscall names, the worker
//      profile's compiled seccomp filter), so nothing after it opens files;
//      prepareExternalCompiler() (profile.h) compiles any further profile.
//      (seccomp_load still allocates the BPF program briefly where it could
//      not be precompiled; malloc is safe here because the worker is
//      single-threaded.)
//   2. applySandbox() runs the profile's stages in order:
//        worker: identity -> user_namespace -> capabilities -> process_limit
//                -> no_new_privs -> rlimits -> close_fds -> seccomp
//        loader: the same without rlimits (a loader sets limits suited to
//                compiling itself) and without seccomp: it and the tools it
//                runs (clang, csmith, llvm-stress) need execve and file reads
//        external compiler: the worker's, plus private_tmp after
//                user_namespace (a tmpfs /tmp in a mount namespace of its
//                own) and filesystem before seccomp (Landlock: the listed
//                binaries, the system's read-only directories, that /tmp;
//                no TCP; signals only within the episode)
//      A failing stage never returns: it _exit()s with that stage's stable
//      exit code (stages()), which the zygote/client report as
//      Outcome::SetupFailed naming the stage.
//   3. While serving, a denied syscall raises SIGSYS (SCMP_ACT_TRAP); the
//      worker's signal handler reports it via syscallName().
//
// Error regime: after fork(). Nothing here throws or returns errors to a
// caller; failure is a stable exit code.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace forkgym::sandbox {

// Limits only go down: a value above the current hard limit is clamped to it.
//
// Defaults are sized for 64 concurrent episodes on a 2-core, 24 GB machine
// (README, "Threat model"): a worker starts at ~130 MB of address space
// (its code, LLVM linked in, and the sparse 64 MB region; ~420 MB with the
// state cache's read-only mapping) and ~15-30 MB resident, so 2 GiB leaves
// over 1.6 GiB for a pass — far above what benchmark-sized modules
// need — while a runaway pass is stopped at under 2 GiB resident instead of
// 8; it takes ~11 simultaneous runaways, not 3, to fill 24 GB. Niceness keeps
// the machine's own processes (and the zygote) ahead of 64 busy workers.
struct SandboxLimits {
  uint64_t addressSpaceBytes = 2ull << 30;  // RLIMIT_AS; 0 = leave as is
  // RLIMIT_AS as the soft limit only, the hard limit left where it was: a
  // runnable benchmark's worker, whose AddressSanitizer builds reserve ~20 TB
  // of shadow address space that no address-space limit can allow
  // (passes/runner.h gives each program it starts its own hard limit). The
  // worker still stops a runaway pass at this limit; what it no longer
  // bounds is a worker taken over by a hostile module, which may raise it.
  bool addressSpaceSoftOnly = false;
  int niceness = 10;                        // added to the nice value; 0 = leave as is
  uint64_t cpuSeconds = 0;                  // RLIMIT_CPU soft limit; 0 = unlimited
  // RLIMIT_NPROC per episode (the worker and its live forks, threads
  // included); 0 = leave as is. Applied only where it holds and counts the
  // right processes — see processLimitUnder() in isolation.h.
  uint64_t maxProcesses = 256;
  uint64_t maxOpenFiles = 64;               // RLIMIT_NOFILE; 0 = leave as is
};

// Which stages a child applies and which filter it loads: a profile
// compiled in this process (profile.h). Worker and Loader are built in;
// prepareExternalCompiler() returns others.
struct Profile {
  uint8_t slot = 0;
  static const Profile Worker;  // in-process compiler (LLVM)
  static const Profile Loader;
  bool operator==(const Profile&) const = default;
};
inline constexpr Profile Profile::Worker{0};
inline constexpr Profile Profile::Loader{1};

// Stable exit codes, one per stage. Never renumber: clients decode them.
struct StageInfo {
  std::string_view name;
  int exitCode;
  bool inLoader;                 // also applied by Profile::Loader
  bool externalCompilerOnly;     // applied by external-compiler profiles only
};
// In order of application.
std::span<const StageInfo> stages();
// Name of the stage that exits with `code`, or empty.
std::string_view stageForExitCode(int code);

// The policy's one service-dependent value: the size of the shared regions
// a worker creates for env.fork() copies. ftruncate is allowed with exactly
// this length, so a worker can size a new region but never resize one.
struct PolicyParameters {
  uint64_t regionBytes = 0;
};

// Step 1. Must be called before applySandbox(); may allocate. The filters
// are built once per process (the zygote builds them before forking
// workers), so later calls keep the parameters of the first.
void prepareSandbox(const PolicyParameters& parameters);

// Step 2. keepFds: descriptors that stay open (everything else is closed).
// Returns only if every stage of the profile succeeded.
void applySandbox(const SandboxLimits& limits, std::span<const int> keepFds, Profile profile = Profile::Worker);

// For the SIGSYS handler: async-signal-safe, returns a static string
// ("openat") or "unknown". Valid after prepareSandbox().
const char* syscallName(int number);

// Sets RLIMIT_CPU's soft limit to (CPU used so far + seconds), rounded up to
// whole seconds (RLIMIT_CPU's unit), so a step gets between `seconds` and
// `seconds + 1` of CPU before SIGXCPU; 0 lifts the soft limit to the hard one.
// The worker calls it before each step so the limit is per step. Allowed by
// the policy. Async-signal-safe (getrusage + prlimit64, no allocation).
void limitCpuForNextStep(uint64_t seconds);

// The policy as data, for tests and docs: each allowed syscall with the
// rule applied to its arguments and why the worker needs it. The rows live
// in named rule sets (rule_sets.h); this is the worker profile's union.
struct SeccompRule {
  std::string_view syscall;
  std::string_view rule;  // "any arguments", or the argument condition
  std::string_view why;
};
std::span<const SeccompRule> seccompAllowlist();

// Syscalls tests should show are denied (one death test each).
std::span<const std::string_view> deniedSyscallExamples();

}  // namespace forkgym::sandbox
