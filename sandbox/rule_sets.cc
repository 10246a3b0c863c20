// The rule sets as data (rule_sets.h): each row names one syscall, the
// condition on its arguments, and why the work of that set needs it.
#include "sandbox/rule_sets.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <linux/seccomp.h>
#include <termios.h>

#include <array>
#include <vector>

#include "sandbox/policy_rows.h"

namespace forkgym::sandbox {
namespace {

// x86_64 argument positions, named so the rows read like the man pages.
constexpr unsigned kArg0 = 0, kArg1 = 1, kArg2 = 2, kArg3 = 3;

// The seals every shared region carries once sized (ipc/shared_region.h).
constexpr uint64_t kRegionSeals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;

constexpr PolicyRow kChannel[] = {
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
    only("sched_getaffinity", "pid 0 (the calling thread)",
         "a waiting worker polls its doorbell before it sleeps only if it may run beside its client: "
         "confined to one core it would hold the core its client needs (ipc/doorbell.cc). Reads nothing "
         "of another process",
         when(argIs(kArg0, 0))),
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
};

constexpr PolicyRow kMemory[] = {
    // Memory: LLVM allocates heavily; RLIMIT_AS, not seccomp, bounds it.
    any("brk", "glibc malloc grows its main arena with brk"),
    any("mmap", "large allocations, LLVM's bump allocators, and mapping shared-region memfds"),
    any("munmap", "frees what mmap mapped"),
    any("mremap", "realloc grows large buffers in place"),
    any("mprotect", "glibc malloc sets up heap arenas and guard pages with mprotect"),
    any("madvise", "allocators return freed pages to the kernel (MADV_DONTNEED/MADV_FREE)"),
    any("futex", "glibc locks, std::call_once and LLVM's ManagedStatic wait and wake on futexes"),
};

constexpr PolicyRow kEpisodeFork[] = {
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
};

constexpr PolicyRow kInProcessCompiler[] = {
    any("sched_yield", "spin-then-yield loops in libstdc++ and LLVM"),
    any("getrandom", "std::random_device and hash seeding in libstdc++ and LLVM"),
    any("sysinfo", "glibc's sysconf(_SC_PHYS_PAGES) behind LLVM's memory-sized heuristics; read-only machine totals"),
};

// Namespace flags clone() must not carry (CLONE_NEWTIME shares its bit with
// the exit signal in clone(), and exists only for clone3).
constexpr uint64_t kCloneNamespaceFlags =
    CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET;

// A compiler driver and its passes, run from the worker: what gcc, cc1 and
// as call (strace -f of gcc -c and -S), and what the worker needs to run and
// wait for them. Which files they may open, execute or write is Landlock's
// part of the profile (profile.h), so the file-system calls take any
// arguments here; network and signals to other episodes are Landlock's and
// the network namespace's too.
constexpr PolicyRow kExternalCompiler[] = {
    // Running the compiler.
    any("execve", "runs the compiler's driver, which runs its passes; Landlock allows only the listed binaries"),
    any("vfork", "gcc's driver starts each pass with vfork"),
    only("clone", "no namespace flags",
         "libc's fork() and posix_spawn() start the compiler; a process with no capabilities creating "
         "namespaces (a user namespace needs none) is denied",
         when(argMasked(kArg0, kCloneNamespaceFlags, 0))),
    failsWith("clone3", ENOSYS, "fails with ENOSYS",
              "its flags are in memory seccomp cannot read: libc falls back to clone(), whose flags it can"),
    any("wait4", "waits for the compiler and its passes"),
    any("waitid", "waits for the compiler and its passes"),
    any("kill", "ends a compiler past its time, with its process group; Landlock scopes signals to this episode"),
    any("tgkill", "raise() and abort() in the compiler's own processes"),
    any("pidfd_open", "watches a compiler's exit while reading its output"),
    any("pidfd_send_signal", "ends a compiler through its pidfd; scoped to this episode like kill"),
    any("setpgid", "a compiler and its passes share a process group, killed together"),
    only("seccomp", "operation SECCOMP_SET_MODE_FILTER with no flags",
         "the compiler gets a filter of its own that keeps it and its passes in that group "
         "(process_group_filter.h); a filter only narrows what is allowed",
         when(argIs(kArg0, SECCOMP_SET_MODE_FILTER), argIs(kArg1, 0))),
    any("getpgid", "process-group bookkeeping in the driver"),
    any("getpgrp", "process-group bookkeeping in the driver"),
    only("prctl", "option PR_SET_PDEATHSIG, PR_GET_PDEATHSIG, PR_SET_NAME or PR_GET_NAME",
         "a compiler dies with the worker that started it; threads name themselves",
         when(argIs(kArg0, PR_SET_PDEATHSIG)), when(argIs(kArg0, PR_GET_PDEATHSIG)),
         when(argIs(kArg0, PR_SET_NAME)), when(argIs(kArg0, PR_GET_NAME))),
    any("set_tid_address", "libc start-up in every program it runs"),
    any("arch_prctl", "libc start-up sets the thread pointer in every program it runs"),
    any("rt_sigtimedwait", "collects a SIGPIPE raised while feeding a compiler's input"),
    any("prlimit64", "gcc raises its stack limit to the hard limit (limits only go up to the hard limit)"),
    any("setrlimit", "a compiler's own address-space limit, set before exec (limits only go down)"),
    any("getrlimit", "libc and the driver read their limits"),
    any("getrusage", "the driver's -ftime-report and CPU accounting"),
    any("times", "CPU accounting of passes"),
    any("sched_getaffinity", "the driver counts usable cores (-flto=auto and friends)"),
    any("uname", "libc and the driver read the kernel's name"),
    any("sysinfo", "machine totals behind memory-sized heuristics"),
    any("getrandom", "temporary-file names and hash seeds"),
    any("getuid", "libc start-up and temporary-file checks"),
    any("geteuid", "libc start-up and temporary-file checks"),
    any("getgid", "libc start-up and temporary-file checks"),
    any("getegid", "libc start-up and temporary-file checks"),
    any("pipe", "a driver passes a pass's output on through a pipe (-pipe)"),
    any("pipe2", "the worker feeds and reads the compiler through pipes; the driver talks to its passes"),
    any("fcntl", "descriptor flags around fork and exec"),
    any("ioctl", "isatty() on the compiler's streams; no device is reachable (Landlock)"),
    any("fadvise64", "sequential-read hints on sources and objects"),
    // The file system: Landlock allows the system's read-only directories,
    // the listed binaries and the private temporary directory, nothing else.
    any("open", "opens sources, headers, libraries and its outputs"),
    any("openat", "opens sources, headers, libraries and its outputs"),
    any("creat", "writes its outputs"),
    any("stat", "looks files up"),
    any("lstat", "looks files up"),
    any("newfstatat", "looks files up (glibc's stat family)"),
    any("statx", "looks files up"),
    any("access", "the driver searches its passes"),
    any("faccessat", "the driver searches its passes"),
    any("faccessat2", "the driver searches its passes"),
    any("readlink", "the driver resolves its own path and its inputs'"),
    any("readlinkat", "the driver resolves its own path and its inputs'"),
    any("getcwd", "the driver names its working directory"),
    any("chdir", "a compiler runs in its own directory"),
    any("fchdir", "a compiler runs in its own directory"),
    any("getdents64", "lists directories (include and library search)"),
    any("mkdir", "makes directories in the private temporary directory"),
    any("mkdirat", "makes directories in the private temporary directory"),
    any("rmdir", "removes them"),
    any("unlink", "removes temporary files and stale outputs"),
    any("unlinkat", "removes temporary files and stale outputs"),
    any("rename", "moves an output into place"),
    any("renameat", "moves an output into place"),
    any("renameat2", "moves an output into place"),
    any("umask", "the driver sets the mode of its outputs"),
    any("fchmod", "sets the mode of its outputs"),
    any("chmod", "sets the mode of its outputs"),
    any("ftruncate", "truncates an output it writes"),
    any("truncate", "truncates an output it writes"),
    any("pread64", "reads objects and libraries at offsets"),
    any("pwrite64", "writes objects at offsets"),
    // No network: AF_UNIX only (and no network namespace to reach, and no
    // TCP under Landlock); an inet socket traps.
    only("socket", "domain AF_UNIX",
         "libc may probe a Unix-domain service (nscd) and falls back when there is none; no network "
         "family is allowed",
         when(argIs(kArg0, AF_UNIX))),
};

// A runnable benchmark's worker, which builds and runs the benchmark's
// program (passes/runner.h). Everything else it needs is external_compiler's.
constexpr PolicyRow kProgramRunner[] = {
    only("perf_event_open", "cpu -1 (a counter that follows one process)",
         "counts the instructions a benchmark's program retires (user space only): the counter follows "
         "the worker's own child across its exec; a counter on a CPU, which would see other processes, is "
         "denied",
         when(argMasked(kArg2, 0xffffffffu, 0xffffffffu))),
    // Each program run confines itself further before its exec
    // (sandbox::confineProgram): a Landlock layer only ever narrows.
    any("landlock_create_ruleset", "the program's own Landlock layer (its run directory only)"),
    any("landlock_add_rule", "the program's own Landlock layer (its run directory only)"),
    any("landlock_restrict_self", "the program's own Landlock layer (its run directory only)"),
    // What ordinary benchmark programs call besides the compiler's set
    // (they run under this filter too): time, sleeping, waiting for
    // signals, timers.
    any("nanosleep", "a benchmark program sleeps"),
    any("clock_nanosleep", "a benchmark program sleeps"),
    any("clock_getres", "a benchmark program reads its clock's resolution"),
    any("time", "a benchmark program reads the time"),
    any("pause", "a benchmark program waits for a signal"),
    any("rt_sigsuspend", "a benchmark program waits for a signal"),
    any("alarm", "a benchmark program times itself out"),
    any("setitimer", "a benchmark program's timers (profiling, time-outs)"),
    any("getitimer", "a benchmark program's timers"),
    any("getpriority", "a benchmark program reads its niceness"),
    only("personality", "query only (0xffffffff)", "sanitizer runtimes ask whether address randomisation is on",
         when(argIs(kArg0, 0xffffffffu))),
};

struct NamedSet {
  RuleSet info;
  std::span<const PolicyRow> rows;
};

template <std::size_t N>
constexpr std::array<SeccompRule, N> docsOf(const PolicyRow (&rows)[N]) {
  std::array<SeccompRule, N> docs{};
  for (std::size_t i = 0; i < N; ++i) docs[i] = rows[i].doc;
  return docs;
}

constexpr auto kChannelDocs = docsOf(kChannel);
constexpr auto kMemoryDocs = docsOf(kMemory);
constexpr auto kEpisodeForkDocs = docsOf(kEpisodeFork);
constexpr auto kInProcessCompilerDocs = docsOf(kInProcessCompiler);
constexpr auto kExternalCompilerDocs = docsOf(kExternalCompiler);
constexpr auto kProgramRunnerDocs = docsOf(kProgramRunner);

constexpr NamedSet kSets[] = {
    {{"channel", "serving requests on its channel: doorbell and region, descriptors, signals, time, its own life",
      kChannelDocs},
     kChannel},
    {{"memory", "allocators and futexes; RLIMIT_AS bounds memory", kMemoryDocs}, kMemory},
    {{"episode_fork", "env.fork(): a sibling episode with its own region and doorbell", kEpisodeForkDocs},
     kEpisodeFork},
    {{"in_process_compiler", "a compiler library working inside the worker (LLVM)", kInProcessCompilerDocs},
     kInProcessCompiler},
    {{"external_compiler",
      "running a compiler's binaries and waiting for them; files, network and signals confined by Landlock",
      kExternalCompilerDocs},
     kExternalCompiler},
    {{"program_runner", "building and running a benchmark's program and counting what it retires",
      kProgramRunnerDocs},
     kProgramRunner},
};

constexpr auto kSetInfos = [] {
  std::array<RuleSet, std::size(kSets)> infos{};
  for (std::size_t i = 0; i < infos.size(); ++i) infos[i] = kSets[i].info;
  return infos;
}();

}  // namespace

std::span<const RuleSet> ruleSets() { return kSetInfos; }

const RuleSet* findRuleSet(std::string_view name) {
  for (const RuleSet& set : kSetInfos) {
    if (set.name == name) return &set;
  }
  return nullptr;
}

std::span<const PolicyRow> policyRowsOf(std::string_view name) {
  for (const NamedSet& set : kSets) {
    if (set.info.name == name) return set.rows;
  }
  return {};
}

}  // namespace forkgym::sandbox
