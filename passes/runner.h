// Runner: builds a runnable benchmark's program from the object file its
// session emitted and runs it as its run configuration says
// (passes/run_config.h), reporting each run — never judging it (the
// client's validate() compares).
//
// Lifecycle:
//   1. Zygote, once, before forking any runnable worker: runnableProfile()
//      finds the clang-19 driver and the linker it runs, for the runnable
//      sandbox profile (sandbox/profile.h) the zygote prepares from them.
//   2. Worker (single-threaded, in that profile), on Request.run or a
//      run-dependent observation: buildAndRun() makes a run directory of
//      its own beneath the private /tmp, writes the object file there,
//      links it with the build command ($CC = the driver) and runs the
//      program once per warm-up and repetition of each input set asked for.
//      Each build and run is a child in a process group of its own (killed
//      as a whole at its end, on timeout, and when the worker dies: see
//      tool_process.h), with rlimits (CPU, file size, processes) and, for
//      the program, a Landlock layer confining it to the run directory
//      (sandbox::confineProgram). The directory is removed afterwards; the
//      private /tmp itself ends with the episode's mount namespace.
// Errors: ServerError when the runner itself cannot work (no run
// directory); everything the build or the program does is a RunResult.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"
#include "ipc/run_config.h"
#include "sandbox/profile.h"
#include "sandbox/sandbox.h"

namespace forkgym::passes {

// Limits of one program run (beyond the configuration's timeout).
inline constexpr size_t kKeptOutputBytes = size_t{1} << 20;     // of stdout and of stderr, per run
inline constexpr size_t kMaxOutputBytes = size_t{64} << 20;     // more stdout: output_too_large
inline constexpr uint64_t kMaxProgramFileBytes = 64ull << 20;   // RLIMIT_FSIZE: SIGXFSZ, output_too_large
inline constexpr uint64_t kMaxProgramProcesses = 16;            // RLIMIT_NPROC of the program
// RLIMIT_NPROC of a runnable benchmark's episode (runnableLimits()), far
// below the default episode's 256: a runnable worker may fork (a fork bomb
// injected into its compiler is not stopped by seccomp), and one build or
// run needs four processes beside the worker — the runner's group leader,
// then the clang driver and the linker it runs, or the program (pre- and
// post-run commands run one at a time, like the program) — so 32 leaves
// room for the worker's env.fork() copies each building at once, while a
// bomb stops at 32 processes instead of 256.
inline constexpr uint64_t kRunnableWorkerProcesses = 32;
inline constexpr size_t kMaxOutputFileBytes = size_t{16} << 20;  // read back per declared output file

// Memory. The build and every program run get a hard RLIMIT_AS of the
// episode's memory limit (the worker's soft limit; it cannot raise it). An
// AddressSanitizer build cannot run under any address-space limit (its
// runtime reserves ~20 TB of shadow at start), so it runs with none, its
// heap bounded instead by ASan's own mmap_limit_mb at the same size (its
// allocator's mappings, excluding the shadow; mappings the program makes
// itself with mmap are not counted) — and by the CPU, file-size, process and
// wall-clock limits and the Landlock layer every run keeps. For the hard
// limit to be raisable at all, a runnable worker's RLIMIT_AS is a soft limit
// only (runnableLimits()).
//
// runnableLimits(): an episode's limits (the server's, or the session's)
// for a runnable benchmark's worker: RLIMIT_AS as a soft limit only, and at
// most kRunnableWorkerProcesses processes.
sandbox::SandboxLimits runnableLimits(sandbox::SandboxLimits episode);

// Step 1 (zygote): the runnable profile's binaries: the clang-19 driver and
// the linker it runs. ServerError naming what is missing.
Result<sandbox::ExternalCompiler> runnableProfile();

// The driver's absolute path (after runnableProfile() found it).
const std::string& runnerCompiler();

// Whether the runner counts instructions retired on this machine, as
// runnableProfile() probed it: "available", or "unavailable: <why>"
// (describe says it in InstructionsRetired's description). Empty before
// the probe (no runnable profile).
const std::string& instructionCounterStatus();

// Step 2 (worker). `object`: the program's object file. `sanitize`: link
// with -fsanitize=address (an object instrumented by AddressSanitizer).
// `buildOnly`: link, measure, run nothing.
Result<RunResult> buildAndRun(const RunConfig& config, std::string_view object, const RunRequest& request,
                              bool sanitize, bool buildOnly = false);

// The error a run-dependent space gives for a program that did not build:
// BuildFailed (the episode goes on) with the linker's diagnostics.
Error buildFailure(const RunResult& result);

// The Berkeley text size (llvm-size's "text") of an ELF executable: the
// allocated sections that are executable or read-only. -1 if unreadable.
int64_t elfTextSize(const std::string& path);

}  // namespace forkgym::passes
