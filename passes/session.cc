#include "passes/session.h"

#include <charconv>

#include "passes/run_config.h"
#include "passes/runner.h"

namespace forkgym::passes {

Result<std::string> Session::programObject(RunProgram) {
  return makeError(Outcome::InvalidRequest, "this backend builds no programs to run");
}

Result<RunResult> Session::run(const RunRequest& request) {
  if (!runConfig_) return noRunConfig("run()");
  if (request.program != RunProgram::Current && request.program != RunProgram::Original &&
      request.program != RunProgram::Asan) {
    return makeError(Outcome::InvalidRequest, "unknown program to run; current, original or asan");
  }
  if (request.repetitions > 1000 || request.warmups > 1000) {
    return makeError(Outcome::InvalidRequest, "at most 1000 repetitions and 1000 warm-up runs per request");
  }
  auto object = programObject(request.program);
  if (!object.ok()) return object.takeError();
  return buildAndRun(*runConfig_, *object, request, request.program == RunProgram::Asan);
}

Result<RunResult> Session::measuredRuns(RunProgram program, std::string_view what) {
  if (!runConfig_) return noRunConfig(what);
  RunRequest request;
  request.program = program;
  request.inputSets = {0};
  request.repetitions = runtimeObservationCount_;
  request.warmups = runtimeWarmupRuns_;
  auto ran = run(request);
  if (!ran.ok()) return ran.takeError();
  if (!ran->built) return buildFailure(*ran);
  for (const ProgramRun& one : ran->runs) {
    if (one.outcome != static_cast<uint16_t>(Outcome::Ok)) {
      return makeError(Outcome::BenchmarkError, std::string(what) + ": the program " + one.message + " (outcome " +
                                                    std::string(outcomeName(static_cast<Outcome>(one.outcome))) +
                                                    "); the episode goes on");
    }
  }
  return ran;
}

std::optional<Result<std::string>> Session::setRunParameter(std::string_view key, std::string_view value) {
  uint32_t* target = key == kRuntimeObservationCount ? &runtimeObservationCount_
                     : key == kRuntimeWarmupRunsCount ? &runtimeWarmupRuns_
                                                      : nullptr;
  if (target == nullptr) return std::nullopt;
  uint32_t parsed = 0;
  const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), parsed);
  const bool positiveNeeded = target == &runtimeObservationCount_;
  if (error != std::errc() || end != value.data() + value.size() || parsed > 1000 || (positiveNeeded && parsed == 0)) {
    return Result<std::string>(makeError(
        Outcome::InvalidRequest, std::string(key) + " takes a whole number " + (positiveNeeded ? "from 1" : "from 0") +
                                     " to 1000; got '" + std::string(value) + "'"));
  }
  *target = parsed;
  return Result<std::string>(std::to_string(parsed));
}

Error unknownParameter(std::string_view backend, std::string_view key, std::span<const std::string_view> accepted) {
  std::string keys;
  for (std::string_view name : accepted) keys += (keys.empty() ? "" : ", ") + std::string(name);
  return makeError(Outcome::InvalidRequest,
                   "the " + std::string(backend) + " backend has no parameter '" + std::string(key) + "'; " +
                       (keys.empty() ? "it accepts none" : "it accepts " + keys));
}

}  // namespace forkgym::passes
