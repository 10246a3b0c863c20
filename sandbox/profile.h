// Profiles: what a sandboxed child may do, each a named composition of rule
// sets (rule_sets.h) and setup stages (sandbox.h), compiled once in the
// zygote and applied by every child it forks for that kind of work.
//
//   worker            Profile::Worker: a compiler running inside the worker
//                     (LLVM). Rule sets channel, memory, episode_fork,
//                     in_process_compiler; no execve, no file opened.
//   loader            Profile::Loader: identity, namespaces, no capabilities,
//                     the process limit, close_fds; no seccomp and no
//                     rlimits (it runs clang and sets limits of its own).
//   external compiler prepareExternalCompiler(): a worker that runs a
//                     compiler's binaries per step (gcc). Rule sets channel,
//                     memory, episode_fork, external_compiler, and every
//                     stage: a private /tmp, then Landlock — execve of the
//                     listed binaries (and their ELF interpreter) only, read
//                     the system's read-only directories and the listed
//                     paths, write the private /tmp only, nothing else of the
//                     file system; no TCP bind or connect (with the network
//                     namespace and AF_UNIX-only sockets: no network);
//                     signals and abstract Unix sockets only within the
//                     episode.
//   runnable          prepareExternalCompiler() with runsPrograms: a worker
//                     whose benchmark has a run configuration (the linker
//                     is its "compiler"). The external-compiler profile,
//                     plus execute beneath the private /tmp (the freshly
//                     built binary) and the program_runner rule set
//                     (instruction counters of its own children). Each
//                     program run adds confineProgram(): a further Landlock
//                     layer in which it may write and execute only its own
//                     run directory.
//
// Lifecycle (a backend that runs an external compiler):
//   1. In the zygote, once, before it forks anything for the backend:
//      prepareExternalCompiler(compiler) checks the binaries, adds their ELF
//      interpreters, resolves which paths are files and which directories,
//      and compiles the profile's seccomp filter. It returns the Profile.
//   2. The worker forked for an episode calls applySandbox(limits, keep,
//      profile) as its last setup step (sandbox.h).
//   3. It then writes only under privateTempDirectory(): "/tmp" in a mount
//      namespace of its own, a tmpfs that ends with the last process in that
//      namespace — nothing to clean up, even after SIGKILL. env.fork()
//      copies share it (one mount namespace): name files by pid.
//   4. Compilers it forks inherit all of it (seccomp filter, Landlock
//      domain, namespaces, limits) across fork and exec.
// Where the kernel lacks Landlock (or a newer part of it), the filesystem
// stage does what it can and the sandbox report says what is missing
// (isolation.h); where the child has no user namespace of its own, there is
// no mount namespace for the private /tmp, and the private_tmp stage fails
// with its exit code.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "sandbox/sandbox.h"

namespace forkgym::sandbox {

struct ExternalCompiler {
  std::string name;  // the backend's, for messages ("gcc")
  // Absolute paths of the binaries the worker and its processes may execve:
  // the driver and its passes (for gcc: the driver, `gcc -print-prog-name=cc1`
  // and the `as` it finds). Symbolic links are followed; each binary's ELF
  // interpreter is added.
  std::vector<std::string> executables;
  // Files or directories the compiler may read besides kSystemReadOnlyPaths
  // (a compiler installed elsewhere, its headers).
  std::vector<std::string> readOnlyPaths;
  uint64_t tempBytes = 256ull << 20;  // size of the private /tmp (tmpfs)
  // The runnable profile: files beneath the private /tmp may be executed
  // (the programs the worker builds there), and the worker may count its
  // children's instructions (perf_event_open on a process, any CPU).
  bool runsPrograms = false;
};

// What every external compiler may read: the system's programs, libraries,
// headers and locale data, the dynamic loader's cache, /dev/null (which it
// may write too) and /dev/urandom. Missing ones are skipped.
inline constexpr std::string_view kSystemReadOnlyPaths[] = {
    "/usr", "/lib", "/lib64", "/lib32", "/libx32", "/bin", "/sbin",
    "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/dev/null", "/dev/urandom",
};

// Step 1 (zygote, before forking for the backend; may allocate). A
// ServerError naming the binary if one is missing or not executable, or if
// no slot is left (a process holds few profiles).
Result<Profile> prepareExternalCompiler(const ExternalCompiler& compiler);

// Step 3: the directory the child may write, or null outside an
// external-compiler profile. Async-signal-safe.
const char* privateTempDirectory();

// After fork, in a child of a runnable profile's worker about to exec a
// benchmark's program (or its pre/post-run command): a further Landlock
// layer (it only narrows) allowing reads of kSystemReadOnlyPaths and
// everything, execute included, beneath `runDirectory` (which must be
// beneath the private /tmp) — nothing else of the file system, not even the
// rest of /tmp. No allocation. False if the kernel refused; true without
// doing anything when there is no Landlock (isolation.h reports it).
[[nodiscard]] bool confineProgram(const char* runDirectory);

// The rule sets a profile allows (rule_sets.h), e.g. for the worker:
// channel, memory, episode_fork, in_process_compiler.
std::vector<std::string_view> ruleSetsOf(Profile profile);

}  // namespace forkgym::sandbox
