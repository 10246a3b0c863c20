#include "ipc/run_config.h"

namespace forkgym {
namespace {

template <typename Builder>
void writeTexts(const std::vector<std::string>& texts, Builder init) {
  auto list = init(static_cast<unsigned>(texts.size()));
  for (unsigned i = 0; i < texts.size(); ++i) list.set(i, texts[i]);
}

// Every list of a message is read one way: each element by `read`.
template <typename List, typename Read>
auto readList(List in, Read read) {
  std::vector<decltype(read(*in.begin()))> out;
  out.reserve(in.size());
  for (auto element : in) out.push_back(read(element));
  return out;
}

std::vector<std::string> readTexts(capnp::List<capnp::Text>::Reader in) {
  return readList(in, [](capnp::Text::Reader text) { return std::string(text.cStr(), text.size()); });
}

kj::ArrayPtr<const kj::byte> bytesOf(const std::string& data) {
  return {reinterpret_cast<const kj::byte*>(data.data()), data.size()};
}

std::string readBytes(capnp::Data::Reader in) { return {reinterpret_cast<const char*>(in.begin()), in.size()}; }

void writeFiles(const std::vector<RunFile>& files, capnp::List<proto::RunFile>::Builder out) {
  for (unsigned i = 0; i < files.size(); ++i) {
    out[i].setName(files[i].name);
    out[i].setContent(bytesOf(files[i].content));
  }
}

std::vector<RunFile> readFiles(capnp::List<proto::RunFile>::Reader in) {
  return readList(in, [](proto::RunFile::Reader file) {
    return RunFile{file.getName(), readBytes(file.getContent())};
  });
}

void writeCommands(const std::vector<RunCommand>& commands, capnp::List<proto::RunCommand>::Builder out) {
  for (unsigned i = 0; i < commands.size(); ++i) {
    writeTexts(commands[i].argv, [&](unsigned n) { return out[i].initArgv(n); });
    out[i].setTimeoutSeconds(commands[i].timeoutSeconds);
  }
}

std::vector<RunCommand> readCommands(capnp::List<proto::RunCommand>::Reader in) {
  return readList(in, [](proto::RunCommand::Reader command) {
    return RunCommand{readTexts(command.getArgv()), command.getTimeoutSeconds()};
  });
}

}  // namespace

void writeRunConfig(const RunConfig& config, proto::RunConfig::Builder out) {
  writeTexts(config.buildCommand, [&](unsigned n) { return out.initBuildCommand(n); });
  out.setBuildOutfile(config.buildOutfile);
  out.setBuildTimeoutSeconds(config.buildTimeoutSeconds);
  writeTexts(config.runCommand, [&](unsigned n) { return out.initRunCommand(n); });
  out.setRunTimeoutSeconds(config.runTimeoutSeconds);
  auto sets = out.initInputSets(static_cast<unsigned>(config.inputSets.size()));
  for (unsigned i = 0; i < config.inputSets.size(); ++i) {
    const RunInputSet& set = config.inputSets[i];
    sets[i].setName(set.name);
    writeTexts(set.arguments, [&](unsigned n) { return sets[i].initArguments(n); });
    sets[i].setStdin(bytesOf(set.stdinData));
    writeFiles(set.files, sets[i].initFiles(static_cast<unsigned>(set.files.size())));
  }
  writeTexts(config.outputFiles, [&](unsigned n) { return out.initOutputFiles(n); });
  writeCommands(config.preRunCommands, out.initPreRunCommands(static_cast<unsigned>(config.preRunCommands.size())));
  writeCommands(config.postRunCommands, out.initPostRunCommands(static_cast<unsigned>(config.postRunCommands.size())));
  out.setOrigin(config.origin);
}

RunConfig readRunConfig(proto::RunConfig::Reader in) {
  RunConfig config;
  config.buildCommand = readTexts(in.getBuildCommand());
  config.buildOutfile = in.getBuildOutfile();
  config.buildTimeoutSeconds = in.getBuildTimeoutSeconds();
  config.runCommand = readTexts(in.getRunCommand());
  config.runTimeoutSeconds = in.getRunTimeoutSeconds();
  config.inputSets = readList(in.getInputSets(), [](proto::RunInputSet::Reader set) {
    return RunInputSet{set.getName(), readTexts(set.getArguments()), readBytes(set.getStdin()), readFiles(set.getFiles())};
  });
  config.outputFiles = readTexts(in.getOutputFiles());
  config.preRunCommands = readCommands(in.getPreRunCommands());
  config.postRunCommands = readCommands(in.getPostRunCommands());
  config.origin = in.getOrigin();
  return config;
}

void writeRunRequest(const RunRequest& request, proto::RunRequest::Builder out) {
  out.setProgram(static_cast<proto::RunProgram>(request.program));
  auto sets = out.initInputSets(static_cast<unsigned>(request.inputSets.size()));
  for (unsigned i = 0; i < request.inputSets.size(); ++i) sets.set(i, request.inputSets[i]);
  out.setRepetitions(request.repetitions);
  out.setWarmups(request.warmups);
  out.setRunTimeoutSeconds(request.runTimeoutSeconds);
}

RunRequest readRunRequest(proto::RunRequest::Reader in) {
  RunRequest request;
  request.program = static_cast<RunProgram>(static_cast<uint16_t>(in.getProgram()));
  request.inputSets = readList(in.getInputSets(), [](uint32_t set) { return set; });
  request.repetitions = in.getRepetitions();
  request.warmups = in.getWarmups();
  request.runTimeoutSeconds = in.getRunTimeoutSeconds();
  return request;
}

void writeRunResult(const RunResult& result, proto::RunResult::Builder out) {
  out.setBuilt(result.built);
  out.setBuildOutcome(result.buildOutcome);
  out.setBuildSeconds(result.buildSeconds);
  out.setBuildDiagnostics(result.buildDiagnostics);
  out.setTextSizeBytes(result.textSizeBytes);
  out.setInstructionsUnavailable(result.instructionsUnavailable);
  auto runs = out.initRuns(static_cast<unsigned>(result.runs.size()));
  for (unsigned i = 0; i < result.runs.size(); ++i) {
    const ProgramRun& run = result.runs[i];
    auto w = runs[i];
    w.setInputSet(run.inputSet);
    w.setOutcome(run.outcome);
    w.setExitCode(run.exitCode);
    w.setSignal(run.signal);
    w.setWallSeconds(run.wallSeconds);
    w.setInstructions(run.instructions);
    w.setHasInstructions(run.hasInstructions);
    w.setStdout(bytesOf(run.stdoutData));
    w.setStdoutTruncated(run.stdoutTruncated);
    w.setStderr(bytesOf(run.stderrData));
    w.setStderrTruncated(run.stderrTruncated);
    writeFiles(run.outputFiles, w.initOutputFiles(static_cast<unsigned>(run.outputFiles.size())));
    w.setMessage(run.message);
    w.setTimeoutSeconds(run.timeoutSeconds);
  }
}

RunResult readRunResult(proto::RunResult::Reader in) {
  RunResult result;
  result.built = in.getBuilt();
  result.buildOutcome = in.getBuildOutcome();
  result.buildSeconds = in.getBuildSeconds();
  result.buildDiagnostics = in.getBuildDiagnostics();
  result.textSizeBytes = in.getTextSizeBytes();
  result.instructionsUnavailable = in.getInstructionsUnavailable();
  result.runs = readList(in.getRuns(), [](proto::ProgramRun::Reader r) {
    ProgramRun run;
    run.inputSet = r.getInputSet();
    run.outcome = r.getOutcome();
    run.exitCode = r.getExitCode();
    run.signal = r.getSignal();
    run.wallSeconds = r.getWallSeconds();
    run.instructions = r.getInstructions();
    run.hasInstructions = r.getHasInstructions();
    run.stdoutData = readBytes(r.getStdout());
    run.stdoutTruncated = r.getStdoutTruncated();
    run.stderrData = readBytes(r.getStderr());
    run.stderrTruncated = r.getStderrTruncated();
    run.outputFiles = readFiles(r.getOutputFiles());
    run.message = r.getMessage();
    run.timeoutSeconds = r.getTimeoutSeconds();
    return run;
  });
  return result;
}

}  // namespace forkgym
