// Run configurations (passes/run_config.h) and their wire form
// (ipc/run_config.h); the runner's measure of a linked program's text.
#include <gtest/gtest.h>

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "ipc/run_config.h"
#include "passes/run_config.h"
#include "passes/runner.h"

namespace forkgym::passes {
namespace {

TEST(RunConfig, EmptyFieldsMeanCompilerGymsDefaults) {
  const RunConfig config = withDefaults({});
  EXPECT_EQ(config.buildCommand, (std::vector<std::string>{"$CC", "$IN"}));
  EXPECT_EQ(config.buildOutfile, "a.out");
  EXPECT_EQ(config.buildTimeoutSeconds, 60u);
  EXPECT_EQ(config.runCommand, (std::vector<std::string>{"./a.out"}));
  EXPECT_EQ(config.runTimeoutSeconds, 300u);
  ASSERT_EQ(config.inputSets.size(), 1u);
  EXPECT_TRUE(checkRunConfig({}).ok());
}

Error refusal(RunConfig config) {
  auto checked = checkRunConfig(config);
  EXPECT_FALSE(checked.ok());
  return checked.ok() ? Error{} : checked.error();
}

TEST(RunConfig, RefusesWhatTheRunnerCannotRunAndSaysWhatToDo) {
  RunConfig make;
  make.buildCommand = {"make", "all"};
  Error error = refusal(make);
  EXPECT_EQ(error.outcome, Outcome::InvalidRequest);
  EXPECT_NE(error.message.find("must start with $CC"), std::string::npos) << error.message;

  RunConfig shell;
  shell.runCommand = {"/bin/sh", "-c", "./a.out"};
  error = refusal(shell);
  EXPECT_NE(error.message.find("must run the built program ('./a.out'"), std::string::npos) << error.message;

  RunConfig escape;
  escape.inputSets.push_back({"one", {}, "", {{"../outside", "x"}}});
  error = refusal(escape);
  EXPECT_NE(error.message.find("'../outside'"), std::string::npos) << error.message;
  EXPECT_NE(error.message.find("plain file name"), std::string::npos) << error.message;

  RunConfig replacesProgram;
  replacesProgram.inputSets.push_back({"one", {}, "", {{"a.out", "x"}}});
  EXPECT_NE(refusal(replacesProgram).message.find("would replace the built program"), std::string::npos);

  RunConfig echo;
  echo.preRunCommands.push_back({{"echo", "1"}, 0});
  EXPECT_NE(refusal(echo).message.find("no shell in the runner"), std::string::npos);

  RunConfig slow;
  slow.runTimeoutSeconds = 7200;
  EXPECT_NE(refusal(slow).message.find("at most 3600 s"), std::string::npos);

  RunConfig huge;
  huge.inputSets.push_back({"big", {}, std::string(kMaxRunConfigBytes + 1, 'x'), {}});
  EXPECT_NE(refusal(huge).message.find("MiB travel with a benchmark"), std::string::npos);

  RunConfig output;
  output.outputFiles = {"/etc/passwd"};
  EXPECT_NE(refusal(output).message.find("'/etc/passwd' must be a plain file name"), std::string::npos);

  RunConfig fine;
  fine.buildCommand = {"$CC", "$IN", "-lm"};
  fine.runCommand = {"./a.out", "1125000"};
  fine.inputSets.push_back({"one", {"in.txt"}, "stdin", {{"in.txt", "data"}}});
  fine.outputFiles = {"out.txt"};
  fine.preRunCommands.push_back({{"./a.out", "--prepare"}, 5});
  EXPECT_TRUE(checkRunConfig(fine).ok()) << checkRunConfig(fine).error().message;
}

TEST(RunConfig, DatasetsAttachTheirsAndOtherBenchmarksHaveNone) {
  auto csmith = datasetRunConfig("generator://csmith-v0/42", false);
  ASSERT_TRUE(csmith);
  EXPECT_EQ(csmith->origin, "dataset csmith-v0");
  EXPECT_EQ(csmith->runCommand, (std::vector<std::string>{"./a.out"}));
  auto torture = datasetRunConfig("benchmark://gcc-c-torture-v0/execute/20000112-1", true);
  ASSERT_TRUE(torture);
  EXPECT_EQ(torture->origin, "dataset gcc-c-torture-v0");
  EXPECT_FALSE(datasetRunConfig("benchmark://gcc-c-torture-v0/compile/20000112-1", false));
  EXPECT_FALSE(datasetRunConfig("file:///tmp/x.c", false));
  EXPECT_FALSE(datasetRunConfig("generator://llvm-stress-v0/1", false));
  const Error none = noRunConfig("Runtime");
  EXPECT_EQ(none.outcome, Outcome::InvalidRequest);
  EXPECT_NE(none.message.find("make_benchmark"), std::string::npos);
}

TEST(RunConfig, TravelsOnTheWireUnchanged) {
  RunConfig config;
  config.buildCommand = {"$CC", "$IN", "-lm"};
  config.buildOutfile = "prog";
  config.buildTimeoutSeconds = 7;
  config.runCommand = {"./prog", "-v"};
  config.runTimeoutSeconds = 9;
  config.inputSets.push_back({"first", {"a", "b"}, std::string("in\0put", 6), {{"f.bin", std::string("\0\1\2", 3)}}});
  config.inputSets.push_back({"second", {}, "", {}});
  config.outputFiles = {"out.txt"};
  config.preRunCommands.push_back({{"./prog", "--init"}, 3});
  config.postRunCommands.push_back({{"./prog", "--done"}, 0});
  config.origin = "client";
  capnp::MallocMessageBuilder message;
  writeRunConfig(config, message.initRoot<proto::RunConfig>());
  auto words = capnp::messageToFlatArray(message);
  capnp::FlatArrayMessageReader reader(words);
  EXPECT_EQ(readRunConfig(reader.getRoot<proto::RunConfig>()), config);
}

// Every field of a request and of a result, lists of each kind included.
TEST(RunConfig, RequestsAndResultsTravelOnTheWireUnchanged) {
  RunRequest request{RunProgram::Asan, {0, 2}, 5, 1, 7};
  capnp::MallocMessageBuilder requestMessage;
  writeRunRequest(request, requestMessage.initRoot<proto::RunRequest>());
  auto requestWords = capnp::messageToFlatArray(requestMessage);
  capnp::FlatArrayMessageReader requestReader(requestWords);
  EXPECT_EQ(readRunRequest(requestReader.getRoot<proto::RunRequest>()), request);

  RunResult result;
  result.built = true;
  result.buildOutcome = 3;
  result.buildSeconds = 0.25;
  result.buildDiagnostics = "warning: x";
  result.textSizeBytes = 4096;
  result.instructionsUnavailable = "perf_event_open: No such file or directory";
  ProgramRun run;
  run.inputSet = 2;
  run.outcome = 4;
  run.exitCode = -1;
  run.signal = 11;
  run.wallSeconds = 1.5;
  run.instructions = 123456;
  run.hasInstructions = true;
  run.stdoutData = std::string("out\0put", 7);
  run.stdoutTruncated = true;
  run.stderrData = "err";
  run.outputFiles = {{"result.txt", "42\n"}, {"empty", ""}};
  run.message = "killed by signal 11";
  run.timeoutSeconds = 5;
  result.runs = {run, ProgramRun{}};
  capnp::MallocMessageBuilder resultMessage;
  writeRunResult(result, resultMessage.initRoot<proto::RunResult>());
  auto resultWords = capnp::messageToFlatArray(resultMessage);
  capnp::FlatArrayMessageReader resultReader(resultWords);
  EXPECT_EQ(readRunResult(resultReader.getRoot<proto::RunResult>()), result);
}

TEST(Runner, ElfTextSizeIsWhatLlvmSizeSays) {
  char dir[] = "/tmp/fgtest-elftext-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string source = std::string(dir) + "/p.c", program = std::string(dir) + "/p";
  std::ofstream(source) << "#include <stdio.h>\nint main(void) { puts(\"hello\"); return 0; }\n";
  ASSERT_EQ(std::system(("clang-19 -O0 -w " + source + " -o " + program).c_str()), 0);
  FILE* size = popen(("llvm-size-19 " + program + " | tail -1").c_str(), "r");
  ASSERT_NE(size, nullptr);
  long long text = -1;
  ASSERT_EQ(std::fscanf(size, "%lld", &text), 1);
  pclose(size);
  EXPECT_EQ(elfTextSize(program), text);
  EXPECT_EQ(elfTextSize(source), -1);  // not an ELF file
  unlink(source.c_str());
  unlink(program.c_str());
  rmdir(dir);
}

}  // namespace
}  // namespace forkgym::passes
