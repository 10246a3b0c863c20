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

namespace forkgym::passes {

// Limits of one program run (beyond the configuration's timeout).
inline constexpr size_t kKeptOutputBytes = size_t{1} << 20;     // of stdout and of stderr, per run
inline constexpr size_t kMaxOutputBytes = size_t{64} << 20;     // more stdout: output_too_large
inline constexpr uint64_t kMaxProgramFileBytes = 64ull << 20;   // RLIMIT_FSIZE: SIGXFSZ, output_too_large
inline constexpr uint64_t kMaxProgramProcesses = 64;            // RLIMIT_NPROC of the program
inline constexpr size_t kMaxOutputFileBytes = size_t{16} << 20;  // read back per declared output file

// Step 1 (zygote): the runnable profile's binaries: the clang-19 driver and
// the linker it runs. ServerError naming what is missing.
Result<sandbox::ExternalCompiler> runnableProfile();

// The driver's absolute path (after runnableProfile() found it).
const std::string& runnerCompiler();

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
