// Running an external tool (clang-19, csmith, llvm-stress) with its standard
// streams connected to pipes: no temporary files, a wall-clock limit, and
// stderr kept for the error message.
//
// Loader child only: the worker's sandbox forbids execve, and the zygote
// never runs untrusted work itself. The tool is fork()ed and exec()ed (the
// loader is single-threaded) so that, before exec, it can be tied to the
// loader: PR_SET_PDEATHSIG kills it when the loader dies (the zygote kills a
// loader on timeout or when its client goes), and it stays in the loader's
// process group, which the zygote kills as a whole. It inherits the loader's
// resource limits (CPU, file size), and gets its own address-space limit.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"

namespace forkgym::passes {

struct ToolRun {
  int exitCode = -1;     // when the tool exited
  int signal = 0;        // when a signal killed it
  bool timedOut = false; // killed by us at the limit
  bool outputTooLarge = false;  // stopped: stdout passed ToolOptions::maxOutputBytes
  std::string out;
  std::string err;
  std::string descriptor3;  // what it wrote on fd 3 (ToolOptions::captureDescriptor3)
  bool outTruncated = false;  // stdout passed ToolOptions::keepOutputBytes: the rest was read, not kept
  bool errTruncated = false;  // stderr passed ToolOptions::keepErrorBytes
  double wallSeconds = 0;     // from its start (after the instruction counter, if any) to its exit
  // ToolOptions::countInstructions: user-space instructions it (and its
  // children) retired; unset with the reason when the kernel gives none.
  bool hasInstructions = false;
  uint64_t instructions = 0;
  std::string instructionsUnavailable;
  bool succeeded() const { return !timedOut && !outputTooLarge && signal == 0 && exitCode == 0; }
  // LLVM tools say "LLVM ERROR: out of memory" when an allocation fails
  // (here: at their address-space limit).
  bool ranOutOfMemory() const;
  // "exited with status 1", "was killed by signal 11", "timed out after 60 s",
  // "ran out of memory (its limit is 2048 MB)"
  std::string describeFailure(std::chrono::seconds limit) const;
  // stderr without the crash report an LLVM tool appends (bug-report
  // banner, stack dump): the diagnostics a user can act on.
  std::string diagnostics() const;
  uint64_t addressSpaceBytes = 0;  // the limit it ran under (for the message)
};

inline constexpr std::chrono::seconds kToolTimeLimit{60};

struct ToolOptions {
  std::chrono::seconds limit = kToolTimeLimit;
  // Where the tool runs. For tools that drop files in their working
  // directory (csmith writes platform.info), kNoWritableDirectory: a
  // directory where no file can be created, so the litter never appears.
  const char* workingDirectory = nullptr;  // nullptr: ours
  uint64_t addressSpaceBytes = 0;  // RLIMIT_AS of the tool; 0: inherited
  // A benchmark's bitcode is at most a few tens of MiB; more means a runaway
  // generator or a preprocessor bomb, stopped before it fills our memory.
  size_t maxOutputBytes = size_t{256} << 20;
  // Fd 3 of the tool is a pipe whose contents land in ToolRun::descriptor3
  // (e.g. clang -MD -MF /dev/fd/3: the dependency list beside the output).
  bool captureDescriptor3 = false;
  // NAME=value pairs added to the environment the tool inherits.
  std::vector<std::string> environment = {};
  // The tool runs in a process group of its own, killed as a whole on
  // timeout and when the run is abandoned: a compiler driver (gcc) that
  // forks its passes (cc1, as) must not leave them running when it is
  // killed. The group's leader is a small process of ours that runs the
  // tool as its child and exits as the tool did; when the caller dies (even
  // by SIGKILL) it kills the whole group, which the tool's own parent-death
  // signal would not: it reaches the driver only, never its passes. The
  // tool and its passes may not leave the group (setpgid and setsid fail:
  // sandbox/process_group_filter.h), so none outlives it.
  bool ownProcessGroup = false;
  // Of stdout, keep this much (ToolRun::outTruncated beyond it; reading
  // goes on up to maxOutputBytes). Of stderr, keepErrorBytes.
  size_t keepOutputBytes = SIZE_MAX;
  size_t keepErrorBytes = size_t{64} << 10;  // diagnostics beyond 64 KiB add nothing to a message
  // Resource limits set before exec (0: inherited): CPU seconds (the
  // kernel's SIGXCPU backs the wall-clock limit), the largest file it may
  // write (SIGXFSZ beyond it), processes.
  uint64_t cpuSeconds = 0;
  uint64_t fileSizeBytes = 0;
  uint64_t maxProcesses = 0;
  // A benchmark's program (passes/runner.h): before exec, a Landlock layer
  // confining it to this directory (sandbox::confineProgram); it must be
  // its working directory too.
  const char* confineToDirectory = nullptr;
  // Count the user-space instructions it retires (perf_event_open, where
  // the kernel has a counter): the tool waits to exec until the counter is
  // on it.
  bool countInstructions = false;
};
inline constexpr const char* kNoWritableDirectory = "/proc";

// Whether this process may count user-space instructions (what
// ToolOptions::countInstructions needs): empty if so, else why not, in
// words. Opens a counter on itself and closes it: call it before any
// sandbox (the zygote does, in runnableProfile()).
std::string probeInstructionCounter();

// The absolute path of program `name` found on PATH (a name with a '/' is
// returned as it is), or "" if it is on none of PATH's directories: what a
// caller checks to say "install X" before a missing tool's ServerError.
std::string findProgram(const std::string& name);

// Runs argv[0] (searched on PATH when it has no '/'), feeding `input` on its
// stdin. A ServerError only if the tool could not be started at all (e.g.
// not installed); a tool that fails is a ToolRun describing how.
Result<ToolRun> runTool(const std::vector<std::string>& argv, std::string_view input,
                        const ToolOptions& options = {});

// runTool() in two halves, so a tool can be started before its input is
// known: it execs and loads its libraries (tens of milliseconds for clang)
// while the caller prepares the input, then waits, having read nothing, on
// its stdin. Destroying it unfinished kills it. The limit counts from finish().
class ToolProcess {
 public:
  static Result<ToolProcess> start(const std::vector<std::string>& argv, const ToolOptions& options = {});
  Result<ToolRun> finish(std::string_view input);
  ToolProcess(ToolProcess&& other) noexcept;
  ToolProcess& operator=(ToolProcess&& other) noexcept;
  ~ToolProcess();

 private:
  ToolProcess() = default;
  void stop();
  void kill();  // the tool, or its whole group (ToolOptions::ownProcessGroup)

  pid_t pid_ = -1;
  UniqueFd pidfd_;
  UniqueFd toChild_, fromChild_, errorsFromChild_, fromDescriptor3_;
  UniqueFd counter_;  // the instruction counter (countInstructions)
  std::string counterUnavailable_;
  std::chrono::steady_clock::time_point started_;
  ToolOptions options_;
};

}  // namespace forkgym::passes
