#include "passes/run_config.h"

#include <algorithm>

namespace forkgym::passes {
namespace {

bool plainName(std::string_view name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string_view::npos &&
         name.find('\0') == std::string_view::npos;
}

Error invalid(const std::string& what) { return makeError(Outcome::InvalidRequest, "run configuration: " + what); }

// "./a.out" or "a.out" for outfile a.out.
bool namesProgram(std::string_view word, std::string_view outfile) {
  if (word.starts_with("./")) word.remove_prefix(2);
  return word == outfile;
}

}  // namespace

RunConfig withDefaults(RunConfig config) {
  if (config.buildCommand.empty()) config.buildCommand = {"$CC", "$IN"};
  if (config.buildOutfile.empty()) config.buildOutfile = std::string(kDefaultOutfile);
  if (config.buildTimeoutSeconds == 0) config.buildTimeoutSeconds = kDefaultBuildTimeoutSeconds;
  if (config.runCommand.empty()) config.runCommand = {"./" + config.buildOutfile};
  if (config.runTimeoutSeconds == 0) config.runTimeoutSeconds = kDefaultRunTimeoutSeconds;
  if (config.inputSets.empty()) config.inputSets.emplace_back();
  for (auto& command : config.preRunCommands) {
    if (command.timeoutSeconds == 0) command.timeoutSeconds = kDefaultCommandTimeoutSeconds;
  }
  for (auto& command : config.postRunCommands) {
    if (command.timeoutSeconds == 0) command.timeoutSeconds = kDefaultCommandTimeoutSeconds;
  }
  return config;
}

Status checkRunConfig(const RunConfig& given) {
  const RunConfig config = withDefaults(given);
  if (config.buildCommand.front() != "$CC") {
    return invalid("the build command must start with $CC (the clang-19 driver, used as the linker; nothing else "
                   "runs in the runner), e.g. [\"$CC\", \"$IN\", \"-lm\"]; got '" + config.buildCommand.front() + "'");
  }
  if (!plainName(config.buildOutfile)) {
    return invalid("the build's outfile '" + config.buildOutfile + "' must be a plain file name (no '/')");
  }
  if (!namesProgram(config.runCommand.front(), config.buildOutfile)) {
    return invalid("the run command must run the built program ('./" + config.buildOutfile +
                   "', then its arguments); got '" + config.runCommand.front() + "'");
  }
  for (const auto* commands : {&config.preRunCommands, &config.postRunCommands}) {
    for (const RunCommand& command : *commands) {
      if (command.argv.empty() || !namesProgram(command.argv.front(), config.buildOutfile)) {
        return invalid("a pre- or post-run command may run only the built program ('./" + config.buildOutfile +
                       "'): there is no shell in the runner; write files a command would make as input files");
      }
      if (command.timeoutSeconds > kMaxTimeoutSeconds) return invalid("a command's timeout is over an hour");
    }
  }
  if (config.buildTimeoutSeconds > kMaxTimeoutSeconds || config.runTimeoutSeconds > kMaxTimeoutSeconds) {
    return invalid("build and run timeouts are at most " + std::to_string(kMaxTimeoutSeconds) + " s");
  }
  size_t bytes = 0;
  for (const RunInputSet& set : config.inputSets) {
    bytes += set.stdinData.size();
    for (const std::string& argument : set.arguments) bytes += argument.size();
    for (const RunFile& file : set.files) {
      if (!plainName(file.name)) {
        return invalid("input file '" + file.name + "' of input set '" + set.name +
                       "' must be a plain file name (it is written into the run directory)");
      }
      if (file.name == config.buildOutfile) {
        return invalid("input file '" + file.name + "' would replace the built program");
      }
      bytes += file.content.size();
    }
  }
  if (bytes > kMaxRunConfigBytes) {
    return invalid("its inputs hold " + std::to_string(bytes >> 20) + " MiB; at most " +
                   std::to_string(kMaxRunConfigBytes >> 20) + " MiB travel with a benchmark");
  }
  for (const std::string& name : config.outputFiles) {
    if (!plainName(name)) return invalid("output file '" + name + "' must be a plain file name in the run directory");
  }
  return okStatus();
}

std::optional<RunConfig> datasetRunConfig(std::string_view uri, bool runnableDatasetFile) {
  for (std::string_view csmith : {"generator://csmith-v0/", "benchmark://csmith-v0/"}) {
    if (uri.starts_with(csmith)) {
      RunConfig config;
      config.origin = "dataset csmith-v0";
      return withDefaults(std::move(config));
    }
  }
  if (runnableDatasetFile) {
    RunConfig config;
    const std::string_view rest = uri.substr(std::min(uri.size(), uri.find("://") + 3));
    config.origin = "dataset " + std::string(rest.substr(0, rest.find('/')));
    return withDefaults(std::move(config));
  }
  return std::nullopt;
}

Error noRunConfig(std::string_view what) {
  return makeError(Outcome::InvalidRequest,
                   std::string(what) +
                       " needs a benchmark that runs, and this one has no run configuration: give one with "
                       "make_benchmark(..., build_cmd=, run_cmd=) or a Benchmark's run configuration at reset, or "
                       "choose a runnable dataset (generator://csmith-v0/<seed>, "
                       "benchmark://gcc-c-torture-v0/execute/...)");
}

}  // namespace forkgym::passes
