// Run configurations: how a benchmark's program is built and run
// (CompilerGym's BenchmarkDynamicConfig semantics). The data type and its
// wire form are ipc/run_config.h's; this header holds what they mean.
//
//   build   buildCommand, run in the run directory: "$CC" is the clang-19
//           driver used as the linker, "$IN" the object file the worker
//           emitted for the program (default ["$CC", "$IN"], output
//           "a.out", 60 s). Its first word must be "$CC": the runnable
//           profile executes nothing else (no shell, no make).
//   run     runCommand + the input set's arguments, in the run directory
//           (default ["./a.out"], 300 s), the set's stdin on its stdin and
//           its files written there first. The first word must name the
//           built program ("./a.out" or "a.out"): nothing else runs.
//   pre/post-run commands: run in the same directory before/after each
//           run, with the same confinement; they too may execute only the
//           built program. CompilerGym's cBench pre-run command
//           (`echo 1 >_finfo_dataset`) becomes an input file instead.
//   outputs outputFiles are read back after each run (capped), for the
//           client to compare with the gold standard's.
// Several input sets = CompilerGym's ?dataset=N.
//
// Lifecycle:
//   1. Zygote, on newSession: checkRunConfig() on the client's
//      configuration (InvalidRequest naming what is wrong), else
//      datasetRunConfig() for the benchmark's canonical URI.
//   2. The worker keeps withDefaults() of it for the episode (its memory:
//      env.fork() copies carry it); passes/runner.h runs it.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"
#include "ipc/run_config.h"

namespace forkgym::passes {

inline constexpr uint32_t kDefaultBuildTimeoutSeconds = 60;
inline constexpr uint32_t kDefaultRunTimeoutSeconds = 300;
inline constexpr uint32_t kDefaultCommandTimeoutSeconds = 30;
inline constexpr std::string_view kDefaultOutfile = "a.out";
// Whole configurations travel in one control message and live in every
// worker of the episode: inputs beyond this are a mistake, not a benchmark.
inline constexpr size_t kMaxRunConfigBytes = size_t{64} << 20;
inline constexpr uint32_t kMaxTimeoutSeconds = 3600;

// Empty fields and zero timeouts filled in with CompilerGym's defaults.
RunConfig withDefaults(RunConfig config);

// InvalidRequest naming the field and what to do when a client's
// configuration cannot be run as the contract above says (a file name
// with '/', a build command not starting with $CC, a run command that
// does not run the built program, a timeout of more than an hour, more
// than kMaxRunConfigBytes of inputs).
Status checkRunConfig(const RunConfig& config);

// The configuration the server attaches to a benchmark that brings none:
// generator://csmith-v0/<seed> and benchmark://csmith-v0/<seed> (run
// ./a.out: the checksum it prints is the oracle), and an installed
// dataset's programs that its dataset.ini says run (gcc-c-torture-v0's
// execute/: ./a.out, exit status 0 is the check). Nothing otherwise.
std::optional<RunConfig> datasetRunConfig(std::string_view canonicalUri, bool runnableDatasetFile);

// What the invalid_request for a run-dependent space or request says on a
// benchmark without a configuration: which benchmark, and how to give one.
Error noRunConfig(std::string_view what);

}  // namespace forkgym::passes
