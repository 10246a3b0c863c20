// Run configurations and run results as data: what a benchmark's program is
// built and run with (CompilerGym's BenchmarkDynamicConfig), what a run
// request asks for, and what the runner reports — the types the client and
// the server share, and their wire form (protocol.capnp's RunConfig,
// RunRequest, RunResult). Semantics (defaults, placeholders, limits, which
// datasets attach which configuration) are passes/run_config.h's.
//
// Lifecycle:
//   1. Client: a RunConfig (make_benchmark's keywords, a Benchmark object)
//      travels in NewSession (writeRunConfig).
//   2. Zygote: readRunConfig() on the request; the worker it forks keeps
//      the configuration in its memory, so env.fork() copies carry it.
//   3. Client -> worker: a RunRequest (Request.run); worker -> client: a
//      RunResult (Reply.run).
// Readers may throw kj exceptions on a malformed message; callers already
// read messages inside kj::runCatchingExceptions.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ipc/protocol.capnp.h"

namespace forkgym {

struct RunFile {
  std::string name;     // a plain file name in the run directory
  std::string content;  // bytes
  bool operator==(const RunFile&) const = default;
};

struct RunInputSet {
  std::string name;
  std::vector<std::string> arguments;  // appended to the run command
  std::string stdinData;
  std::vector<RunFile> files;
  bool operator==(const RunInputSet&) const = default;
};

struct RunCommand {
  std::vector<std::string> argv;
  uint32_t timeoutSeconds = 0;  // 0: the default (passes/run_config.h)
  bool operator==(const RunCommand&) const = default;
};

// Empty fields and zero timeouts mean CompilerGym's defaults.
struct RunConfig {
  std::vector<std::string> buildCommand;  // $CC, $IN placeholders
  std::string buildOutfile;
  uint32_t buildTimeoutSeconds = 0;
  std::vector<std::string> runCommand;
  uint32_t runTimeoutSeconds = 0;
  std::vector<RunInputSet> inputSets;
  std::vector<std::string> outputFiles;
  std::vector<RunCommand> preRunCommands;
  std::vector<RunCommand> postRunCommands;
  std::string origin;  // "client", "dataset csmith-v0"
  bool operator==(const RunConfig&) const = default;
};

enum class RunProgram : uint8_t { Current = 0, Original = 1, Asan = 2 };

struct RunRequest {
  RunProgram program = RunProgram::Current;
  std::vector<uint32_t> inputSets;  // empty: all
  uint32_t repetitions = 1;
  uint32_t warmups = 0;
  uint32_t runTimeoutSeconds = 0;  // 0: the configuration's; else at most it
  bool operator==(const RunRequest&) const = default;
};

struct ProgramRun {
  uint32_t inputSet = 0;
  uint16_t outcome = 0;  // forkgym::Outcome
  int exitCode = -1;
  int signal = 0;
  double wallSeconds = 0;
  uint64_t instructions = 0;
  bool hasInstructions = false;
  std::string stdoutData;
  bool stdoutTruncated = false;
  std::string stderrData;
  bool stderrTruncated = false;
  std::vector<RunFile> outputFiles;
  std::string message;
  uint32_t timeoutSeconds = 0;  // the limit it ran under
  bool operator==(const ProgramRun&) const = default;
};

struct RunResult {
  bool built = false;
  uint16_t buildOutcome = 0;
  double buildSeconds = 0;
  std::string buildDiagnostics;
  int64_t textSizeBytes = -1;
  std::vector<ProgramRun> runs;
  std::string instructionsUnavailable;
  bool operator==(const RunResult&) const = default;
};

void writeRunConfig(const RunConfig& config, proto::RunConfig::Builder out);
RunConfig readRunConfig(proto::RunConfig::Reader in);
void writeRunRequest(const RunRequest& request, proto::RunRequest::Builder out);
RunRequest readRunRequest(proto::RunRequest::Reader in);
void writeRunResult(const RunResult& result, proto::RunResult::Builder out);
RunResult readRunResult(proto::RunResult::Reader in);

}  // namespace forkgym
