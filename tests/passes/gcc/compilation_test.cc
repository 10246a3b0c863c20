#include "passes/gcc/compilation.h"

#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <sstream>

#include "gcc_test_data.h"
#include "passes/gcc/action_space.h"
#include "passes/tool_process.h"

namespace forkgym::passes::gcc {
namespace {

using testing::installedSpec;
using testing::readTestFile;
using testing::ScratchDirectory;

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

Choices with(const GccSpec& spec, std::initializer_list<std::pair<std::string_view, int64_t>> set) {
  Choices choices = initialChoices(spec);
  for (const auto& [name, choice] : set) {
    const int index = findOption(spec, name);
    EXPECT_GE(index, 0) << name;
    if (index >= 0) choices[static_cast<size_t>(index)] = choice;
  }
  return choices;
}

// A stand-in for gcc: a shell script run as the spec's binary.
GccSpec fakeGcc(const std::string& directory, const std::string& script) {
  const std::string path = directory + "/fake-gcc";
  testing::writeFile(path, "#!/bin/sh\n" + script, /*executable=*/true);
  return GccSpec{.binary = path, .version = "fake", .options = {}};
}

TEST(GccCompilation, ObjectIsTheFileItsCommandLineWritesByHand) {
  const GccSpec& spec = installedSpec();
  ScratchDirectory work, byHand;
  const std::string source = readTestFile("crc32.c");
  Workspace workspace(work.path(), source);
  const Choices choices = with(spec, {{"-O", 2}, {"-funroll-loops", 0}, {"--param=max-unroll-times", 3}});
  auto result = compile(spec, choices, Artifact::Object, workspace, {});
  ASSERT_TRUE(result.ok()) << result.error().message;
  ASSERT_EQ(result->failure, CompileFailure::None) << result->message;

  // The same source as src.c, the command line run as it reads.
  testing::writeFile(byHand.path() + "/src.c", source);
  std::vector<std::string> argv;
  std::string word;
  std::istringstream words(commandLineText(spec, choices));
  while (words >> word) argv.push_back(word);
  EXPECT_EQ(argv.back(), "obj.o");
  auto run = runTool(argv, "", {.workingDirectory = byHand.path().c_str()});
  ASSERT_TRUE(run.ok() && run->succeeded()) << (run.ok() ? run->err : run.error().message);
  EXPECT_EQ(result->output.primary, slurp(byHand.path() + "/obj.o"));
  EXPECT_GT(result->output.primary.size(), 500u);
}

TEST(GccCompilation, AssemblyAndRtlComeFromOneRun) {
  const GccSpec& spec = installedSpec();
  ScratchDirectory work;
  Workspace workspace(work.path(), readTestFile("small.c"));
  auto result = compile(spec, with(spec, {{"-O", 1}}), Artifact::AssemblyAndRtl, workspace, {});
  ASSERT_TRUE(result.ok()) << result.error().message;
  ASSERT_EQ(result->failure, CompileFailure::None) << result->message;
  EXPECT_NE(result->output.primary.find("\t.file\t\"src.c\""), std::string::npos);
  EXPECT_NE(result->output.rtl.find(";; Function main"), std::string::npos) << result->output.rtl.substr(0, 200);
}

TEST(GccCompilation, ACombinationGccRejectsIsTypedWithGccsReason) {
  const GccSpec& spec = installedSpec();
  ScratchDirectory work;
  Workspace workspace(work.path(), readTestFile("small.c"));
  ASSERT_EQ(compile(spec, initialChoices(spec), Artifact::Object, workspace, {})->failure, CompileFailure::None);
  // Each is fine alone; together gcc refuses them.
  const Choices rejected = with(spec, {{"-fsection-anchors", 0}, {"-ftoplevel-reorder", 1}});
  auto result = compile(spec, rejected, Artifact::Object, workspace, {});
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(result->failure, CompileFailure::Rejected);
  EXPECT_NE(result->message.find("section anchors must be disabled when toplevel reorder is disabled"),
            std::string::npos)
      << result->message;
  EXPECT_NE(result->message.find("-fsection-anchors -fno-toplevel-reorder -w -c src.c -o obj.o"), std::string::npos)
      << result->message;
  EXPECT_TRUE(result->output.primary.empty()) << "the earlier run's obj.o is not this run's output";
}

TEST(GccCompilation, AHangingCompilerIsKilledWithEverythingItStarted) {
  ScratchDirectory work;
  // The "compiler" starts a pass that outlives it unless its group is killed.
  const GccSpec spec = fakeGcc(work.path(), "sleep 100000 &\necho $! > pass.pid\nwait\n");
  Workspace workspace(work.path(), "int x;\n");
  auto result = compile(spec, {}, Artifact::Object, workspace, {.timeout = std::chrono::seconds(2)});
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(result->failure, CompileFailure::TimedOut);
  EXPECT_NE(result->message.find("timed out after 2 s"), std::string::npos) << result->message;
  const std::string pid = slurp(*workspace.directory() + "/pass.pid");
  ASSERT_FALSE(pid.empty());
  // Waits for the pass to be gone (its pidfd turns readable when it exits);
  // if it was left running, this blocks until the test's time limit.
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, std::stoi(pid), 0));
  if (pidfd >= 0) {
    pollfd exited{pidfd, POLLIN, 0};
    EXPECT_EQ(::poll(&exited, 1, -1), 1);
    ::close(pidfd);
  }  // else: already gone and reaped
}

// A worker killed mid-compile (SIGKILL: nothing of it runs) takes the
// compile's passes with it: gcc's driver dies with the worker
// (PR_SET_PDEATHSIG), but cc1 and as are the driver's children, which that
// does not reach; the group's leader does.
TEST(GccCompilation, ACompilersPassesDieWithTheProcessThatRanIt) {
  ScratchDirectory work;
  const std::string fifo = work.path() + "/started";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const GccSpec spec = fakeGcc(work.path(), "sleep 100000 &\necho $! > " + fifo + "\nwait\n");
  const pid_t worker = ::fork();
  if (worker == 0) {
    Workspace workspace(work.path(), "int x;\n");
    (void)compile(spec, {}, Artifact::Object, workspace, {.timeout = std::chrono::seconds(100000)});
    _exit(0);
  }
  // The pass's pid, once it runs (the fifo's writer is the fake compiler).
  std::ifstream started(fifo);
  pid_t pass = 0;
  started >> pass;
  ASSERT_GT(pass, 0);
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pass, 0));
  ASSERT_GE(pidfd, 0) << "the pass is running";
  ASSERT_EQ(::kill(worker, SIGKILL), 0);
  ASSERT_EQ(::waitpid(worker, nullptr, 0), worker);
  // Waits for the pass to be gone; if it was left running, this blocks until
  // the test's time limit.
  pollfd exited{pidfd, POLLIN, 0};
  EXPECT_EQ(::poll(&exited, 1, -1), 1);
  ::close(pidfd);
}

TEST(GccCompilation, ACrashingCompilerIsTyped) {
  ScratchDirectory work;
  Workspace workspace(work.path(), "int x;\n");
  const GccSpec segfault = fakeGcc(work.path(), "kill -SEGV $$\n");
  auto killed = compile(segfault, {}, Artifact::Object, workspace, {});
  ASSERT_TRUE(killed.ok()) << killed.error().message;
  EXPECT_EQ(killed->failure, CompileFailure::Crashed);
  EXPECT_NE(killed->message.find("signal 11"), std::string::npos) << killed->message;

  const GccSpec ice = fakeGcc(work.path(), "echo 'src.c:1: internal compiler error: Segmentation fault' >&2\nexit 4\n");
  auto internal = compile(ice, {}, Artifact::Object, workspace, {});
  ASSERT_TRUE(internal.ok()) << internal.error().message;
  EXPECT_EQ(internal->failure, CompileFailure::Crashed);
  EXPECT_NE(internal->message.find("internal compiler error"), std::string::npos) << internal->message;
}

TEST(GccCompilation, AForkedCopyCompilesInItsOwnDirectory) {
  ScratchDirectory work;
  Workspace workspace(work.path(), "int x;\n");
  auto parent = workspace.directory();
  ASSERT_TRUE(parent.ok());
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t child = ::fork();
  if (child == 0) {
    auto own = workspace.directory();
    const std::string text = own.ok() ? *own : "";
    const bool hasSource = own.ok() && slurp(*own + "/src.c") == "int x;\n";
    const std::string report = text + (hasSource ? "\n" : "\nmissing source");
    (void)!::write(fds[1], report.data(), report.size());
    workspace.remove();
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string report;
  char buffer[512];
  for (ssize_t n; (n = ::read(fds[0], buffer, sizeof buffer)) > 0;) report.append(buffer, static_cast<size_t>(n));
  ::close(fds[0]);
  int status = 0;
  ::waitpid(child, &status, 0);
  const std::string childDirectory = report.substr(0, report.find('\n'));
  EXPECT_EQ(report.substr(report.find('\n')), "\n");
  EXPECT_FALSE(childDirectory.empty());
  EXPECT_NE(childDirectory, *parent);
  EXPECT_EQ(::access(childDirectory.c_str(), F_OK), -1) << "the copy removed its own directory";
  EXPECT_EQ(::access((*parent + "/src.c").c_str(), F_OK), 0) << "and left ours alone";
}

}  // namespace
}  // namespace forkgym::passes::gcc
