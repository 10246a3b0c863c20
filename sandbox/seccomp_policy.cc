// The allowlist is the policy: every row names one syscall the worker needs
// while serving, the condition on its arguments, and why. Everything not
// listed traps (SCMP_ACT_TRAP), so the worker's SIGSYS handler can name the
// syscall in the episode's outcome instead of dying silently.
#include "sandbox/seccomp_policy.h"

#include <fcntl.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/resource.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "sandbox/sandbox.h"

namespace forkgym::sandbox {
namespace {

// scmp_arg_cmp built without libseccomp's SCMP_A* macros, which expand to C
// compound literals and so cannot appear in a constexpr table.
constexpr scmp_arg_cmp argIs(unsigned arg, uint64_t value) {
  return scmp_arg_cmp{arg, SCMP_CMP_EQ, value, 0};
}

// Conditions that must all hold (one libseccomp rule).
struct Alternative {
  unsigned count = 0;
  std::array<scmp_arg_cmp, 2> conditions{};
};
constexpr Alternative when(scmp_arg_cmp a) { return {1, {a, {}}}; }
constexpr Alternative when(scmp_arg_cmp a, scmp_arg_cmp b) { return {2, {a, b}}; }

constexpr std::size_t kMaxAlternatives = 8;

struct PolicyRow {
  SeccompRule doc;
  // The call is allowed when any alternative holds; none means any arguments.
  std::array<Alternative, kMaxAlternatives> alternatives{};
  unsigned alternativeCount = 0;
};

constexpr PolicyRow any(std::string_view syscall, std::string_view why) {
  return {{syscall, "any arguments", why}, {}, 0};
}

template <typename... Alternatives>
constexpr PolicyRow only(std::string_view syscall, std::string_view rule,
                         std::string_view why, Alternatives... alternatives) {
  static_assert(sizeof...(Alternatives) >= 1 &&
                sizeof...(Alternatives) <= kMaxAlternatives);
  return {{syscall, rule, why}, {alternatives...}, sizeof...(Alternatives)};
}

// x86_64 argument positions, named so the rows read like the man pages.
constexpr unsigned kArg0 = 0, kArg1 = 1, kArg2 = 2, kArg3 = 3;

// Stands for PolicyParameters::regionBytes in a row; replaced when the
// filter is built. No real region is 2^64 - 1 bytes.
constexpr uint64_t kRegionBytes = ~uint64_t{0};

// The seals every shared region carries once sized (ipc/shared_region.h).
constexpr uint64_t kRegionSeals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;

constexpr PolicyRow kPolicy[] = {
    // Serving requests: the doorbell socket and the shared region.
    any("read", "reads doorbell messages and descriptors handed to it before sandboxing"),
    any("write", "rings the doorbell; crash and SIGSYS reporters write their one-line report"),
    any("readv", "glibc and LLVM's raw_fd_ostream use scatter/gather I/O on already-open descriptors"),
    any("writev", "glibc and LLVM's raw_fd_ostream use scatter/gather I/O on already-open descriptors"),
    any("recvmsg", "receives doorbell messages (SOCK_SEQPACKET keeps message boundaries) and notices peer hang-up"),
    any("sendmsg", "rings the client's doorbell; only sockets it already holds can be used, it cannot create or connect new ones"),
    any("recvfrom", "glibc's recv() is recvfrom() with a null address"),
    any("sendto", "glibc's send() is sendto() with a null address"),
    any("poll", "waits for the doorbell with a timeout and wakes at once when the peer closes"),
    any("ppoll", "glibc's poll() may be implemented with ppoll"),
    any("close", "releases descriptors it owns (a finished region, a forked episode's spare ends)"),
    any("close_range", "the env.fork() child drops every descriptor but its new channel in one call"),
    any("dup", "duplicates a channel descriptor it already holds"),
    any("dup2", "the env.fork() child re-seats its new channel onto the descriptor numbers the worker loop expects"),
    any("dup3", "as dup2, setting O_CLOEXEC atomically"),
    only("fcntl",
         "cmd is F_GETFL, F_SETFL, F_GETFD, F_SETFD or F_DUPFD_CLOEXEC, or F_ADD_SEALS with "
         "exactly F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL",
         "toggles O_NONBLOCK and FD_CLOEXEC on channel descriptors and duplicates them; seals a "
         "new env.fork() region once sized, as its client requires. Locks, leases, other seals, "
         "F_SETOWN and pipe resizing are not needed and stay denied",
         when(argIs(kArg1, F_GETFL)), when(argIs(kArg1, F_SETFL)),
         when(argIs(kArg1, F_GETFD)), when(argIs(kArg1, F_SETFD)),
         when(argIs(kArg1, F_DUPFD_CLOEXEC)),
         when(argIs(kArg1, F_ADD_SEALS), argIs(kArg2, kRegionSeals))),
    any("fstat", "learns the size of an inherited shared-region memfd"),
    only("newfstatat", "flags exactly AT_EMPTY_PATH",
         "glibc 2.33+ implements fstat(fd) as fstatat(fd, \"\", AT_EMPTY_PATH). Seccomp cannot "
         "read the path argument, so a non-empty path would still be looked up: that leaks "
         "metadata of a file, never its contents, and no descriptor is opened",
         when(argIs(kArg3, AT_EMPTY_PATH))),
    any("lseek", "stdio and memfd users query or reset the offset of descriptors they hold"),

    // Memory: LLVM allocates heavily; RLIMIT_AS, not seccomp, bounds it.
    any("brk", "glibc malloc grows its main arena with brk"),
    any("mmap", "large allocations, LLVM's bump allocators, and mapping shared-region memfds"),
    any("munmap", "frees what mmap mapped"),
    any("mremap", "realloc grows large buffers in place"),
    any("mprotect", "glibc malloc sets up heap arenas and guard pages with mprotect"),
    any("madvise", "allocators return freed pages to the kernel (MADV_DONTNEED/MADV_FREE)"),
    any("futex", "glibc locks, std::call_once and LLVM's ManagedStatic wait and wake on futexes"),

    // env.fork(): a copy-on-write sibling with its own region and doorbell.
    only("clone", "flags exactly CLONE_PARENT | CLONE_PIDFD | SIGCHLD",
         "env.fork() copies the worker as a sibling whose parent is the zygote, so the zygote "
         "reaps it and keeps its process table; CLONE_PIDFD hands the worker the copy's pidfd, "
         "so it never needs pidfd_open (which could name any process). glibc fork(), vfork, "
         "threads and namespace flags are denied: with the process limit, that contains a fork bomb",
         when(argIs(kArg0, CLONE_PARENT | CLONE_PIDFD | SIGCHLD))),
    only("memfd_create", "flags exactly MFD_CLOEXEC | MFD_ALLOW_SEALING",
         "env.fork() creates the new episode's shared region with no file system path, sealable "
         "so it can be sealed once sized",
         when(argIs(kArg1, MFD_CLOEXEC | MFD_ALLOW_SEALING))),
    only("ftruncate", "length is exactly the shared-region size",
         "sizes a freshly created env.fork() region. Any other length is denied: shrinking a "
         "region under its client would crash the client with SIGBUS (regions are also sealed)",
         when(argIs(kArg1, kRegionBytes))),
    only("socketpair", "domain AF_UNIX",
         "env.fork() creates the new episode's doorbell pair; no network family is needed",
         when(argIs(kArg0, AF_UNIX))),

    // Signals: reporting crashes and sandbox violations.
    any("rt_sigaction", "installs the SIGSYS, SIGSEGV and SIGXCPU reporters; abort() resets SIGABRT"),
    any("rt_sigprocmask", "abort() and signal handling block and unblock signals"),
    any("rt_sigreturn", "returns from any signal handler"),
    any("sigaltstack", "crash reporters run on an alternate stack so stack overflow is still reported"),
    only("tgkill", "sig is SIGABRT, or a fatal signal the crash reporter re-raises",
         "abort() and the crash reporter raise a fatal signal on the calling thread. The target "
         "cannot be pinned to this process (an env.fork() copy inherits the filter built with its "
         "parent's pid), so the signal is: no stopping, pausing or poking another process. "
         "kill, tkill, rt_sigqueueinfo and pidfd_send_signal are denied outright",
         when(argIs(kArg2, SIGABRT)), when(argIs(kArg2, SIGSEGV)), when(argIs(kArg2, SIGBUS)),
         when(argIs(kArg2, SIGILL)), when(argIs(kArg2, SIGFPE)), when(argIs(kArg2, SIGTRAP)),
         when(argIs(kArg2, SIGSYS)), when(argIs(kArg2, SIGKILL))),
    any("restart_syscall", "the kernel restarts an interrupted wait after a signal handler returns"),

    // Time and limits: per-step CPU budget and step timing.
    any("clock_gettime", "times steps; the vDSO falls back to the syscall for CPU-time clocks"),
    any("gettimeofday", "older time APIs; normally the vDSO, sometimes the syscall"),
    any("getrusage", "limitCpuForNextStep() reads CPU used so far; steps report their CPU cost"),
    only("prlimit64",
         "pid 0 (self) and either resource RLIMIT_CPU, or new_limit NULL (read only)",
         "limitCpuForNextStep() moves the CPU soft limit before each step; glibc's getrlimit() "
         "reads limits through prlimit64. Nothing can raise its memory, file or process limits",
         when(argIs(kArg0, 0), argIs(kArg1, RLIMIT_CPU)),
         when(argIs(kArg0, 0), argIs(kArg2, 0))),
    only("setrlimit", "resource RLIMIT_CPU",
         "the legacy entry point for the same per-step CPU limit, held to the same rule",
         when(argIs(kArg0, RLIMIT_CPU))),

    // Process identity and lifetime.
    any("getpid", "reporters and abort() identify the process"),
    any("gettid", "abort() and raise() find the calling thread"),
    any("getppid", "notices when its parent (the zygote) has gone"),
    any("exit", "ends the calling thread"),
    any("exit_group", "_exit() and exit() end the worker"),
    any("set_robust_list", "glibc registers a robust-futex list per process; a cloned child re-registers it"),
    any("rseq", "glibc 2.35+ registers restartable sequences; a cloned child re-registers them"),
    any("sched_yield", "spin-then-yield loops in libstdc++ and LLVM"),
    any("getrandom", "std::random_device and hash seeding in libstdc++ and LLVM"),
    any("sysinfo", "glibc's sysconf(_SC_PHYS_PAGES) behind LLVM's memory-sized heuristics; read-only machine totals"),
};

constexpr std::size_t kPolicySize = std::size(kPolicy);

constexpr std::array<SeccompRule, kPolicySize> kAllowlist = [] {
  std::array<SeccompRule, kPolicySize> rows{};
  for (std::size_t i = 0; i < kPolicySize; ++i) rows[i] = kPolicy[i].doc;
  return rows;
}();

// One per class of escape the policy must stop: file system, network,
// exec, debugging other processes, process creation outside env.fork(),
// namespaces and mounts, kernel attack surface, signalling other processes.
constexpr std::string_view kDeniedExamples[] = {
    "open", "openat", "openat2", "creat",
    "socket", "connect", "bind",
    "execve", "execveat",
    "ptrace", "process_vm_readv", "process_vm_writev",
    "fork", "vfork", "clone3",
    "mount", "unshare", "setns", "chroot",
    "bpf", "perf_event_open", "userfaultfd",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    "kexec_load", "kexec_file_load",
    "init_module", "finit_module", "delete_module",
    "kill", "prctl", "wait4",
    // Naming, signalling or stealing from another process by pid: a worker
    // gets the pidfd of its env.fork() copy from clone itself.
    "pidfd_open", "pidfd_getfd", "pidfd_send_signal", "tkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo",
};

// Static storage so the SIGSYS handler reads it without allocating. Names
// come from libseccomp's table for this architecture and are kept forever.
constexpr int kSyscallNameTableSize = 512;
std::array<const char*, kSyscallNameTableSize> gSyscallNames{};
bool gSyscallNamesBuilt = false;

scmp_filter_ctx gFilter = nullptr;
// The filter compiled to BPF once, before any worker is forked: libseccomp
// generates the program in seccomp_load(), ~0.3 ms a worker would otherwise
// pay on every reset and fork.
std::vector<sock_filter> gProgram;

// libseccomp 2.5 exports BPF only to a descriptor: use an anonymous memfd.
bool compileFilter(scmp_filter_ctx ctx) {
  const int fd = memfd_create("forkgym-seccomp-bpf", MFD_CLOEXEC);
  if (fd < 0) return false;
  bool ok = seccomp_export_bpf(ctx, fd) == 0;
  const off_t size = ok ? lseek(fd, 0, SEEK_END) : -1;
  ok = ok && size > 0 && size % static_cast<off_t>(sizeof(sock_filter)) == 0;
  if (ok) {
    gProgram.resize(static_cast<size_t>(size) / sizeof(sock_filter));
    ok = pread(fd, gProgram.data(), static_cast<size_t>(size), 0) == size;
  }
  close(fd);
  if (!ok) gProgram.clear();
  return ok;
}

bool addRow(scmp_filter_ctx ctx, const PolicyRow& row, const PolicyParameters& parameters) {
  // std::string_view is not NUL-terminated in general; rows are literals,
  // but copy to be independent of that.
  char name[64] = {};
  if (row.doc.syscall.size() >= sizeof(name)) return false;
  row.doc.syscall.copy(name, row.doc.syscall.size());
  const int nr = seccomp_syscall_resolve_name(name);
  if (nr == __NR_SCMP_ERROR) return false;
  if (row.alternativeCount == 0) {
    return seccomp_rule_add_exact_array(ctx, SCMP_ACT_ALLOW, nr, 0, nullptr) == 0;
  }
  for (unsigned i = 0; i < row.alternativeCount; ++i) {
    Alternative alt = row.alternatives[i];
    bool unset = false;
    for (unsigned c = 0; c < alt.count; ++c) {
      if (alt.conditions[c].datum_a != kRegionBytes) continue;
      alt.conditions[c].datum_a = parameters.regionBytes;
      unset = parameters.regionBytes == 0;
    }
    // A policy without a region size allows no such call at all.
    if (unset) continue;
    // _exact: refuse rather than let libseccomp silently rewrite a rule.
    if (seccomp_rule_add_exact_array(ctx, SCMP_ACT_ALLOW, nr, alt.count,
                                     alt.conditions.data()) != 0) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::span<const SeccompRule> seccompAllowlist() { return kAllowlist; }

std::span<const std::string_view> deniedSyscallExamples() { return kDeniedExamples; }

bool buildSeccompFilter(const PolicyParameters& parameters) {
  if (gFilter != nullptr) return true;
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
  if (ctx == nullptr) return false;
  bool ok =
      // A syscall through another ABI (int 0x80, x32) would be misnamed by the
      // SIGSYS reporter and has no business in the worker: kill outright.
      seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS) == 0;
  for (const PolicyRow& row : kPolicy) ok = ok && addRow(ctx, row, parameters);
  if (!ok) {
    seccomp_release(ctx);
    return false;
  }
  gFilter = ctx;
  // Without a compiled program, loadSeccompFilter() falls back to seccomp_load().
  (void)compileFilter(ctx);
  return true;
}

bool loadSeccompFilter() {
  if (gFilter == nullptr) return false;
  if (gProgram.empty()) return seccomp_load(gFilter) == 0;
  sock_fprog program{static_cast<unsigned short>(gProgram.size()), gProgram.data()};
  return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program) == 0;
}

void buildSyscallNames() {
  if (gSyscallNamesBuilt) return;
  for (int nr = 0; nr < kSyscallNameTableSize; ++nr) {
    // Owned by this table for the life of the process (never freed).
    gSyscallNames[nr] = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
  }
  gSyscallNamesBuilt = true;
}

const char* syscallName(int number) {
  if (number < 0 || number >= kSyscallNameTableSize) return "unknown";
  const char* name = gSyscallNames[number];
  return name != nullptr ? name : "unknown";
}

}  // namespace forkgym::sandbox
