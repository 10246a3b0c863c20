#include "passes/gcc/compilation.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "base/syscall.h"
#include "base/unique_fd.h"
#include "passes/tool_process.h"
#include "sandbox/profile.h"

namespace forkgym::passes::gcc {
namespace {

// gcc's exit status for an internal compiler error (gcc/system.h
// ICE_EXIT_CODE), which includes a pass killed by a signal.
constexpr int kInternalCompilerError = 4;
// Diagnostics and the odd note; a compiler printing more is stopped.
constexpr size_t kMaxStdout = size_t{1} << 20;

Result<std::string> readFile(const std::string& path) {
  auto opened = sys("open", [&] { return ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW); });
  if (!opened.ok()) return makeError(Outcome::ServerError, "cannot read " + path + ": " + opened.error().message);
  UniqueFd fd(*opened);
  std::string bytes;
  char buffer[1 << 16];
  for (;;) {
    auto n = sys("read", [&] { return ::read(fd.get(), buffer, sizeof buffer); });
    if (!n.ok()) return makeError(Outcome::ServerError, "cannot read " + path + ": " + n.error().message);
    if (*n == 0) break;
    bytes.append(buffer, static_cast<size_t>(*n));
  }
  return bytes;
}

Status writeFile(const std::string& path, std::string_view bytes) {
  auto opened = sys("open", [&] { return ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600); });
  if (!opened.ok()) return makeError(Outcome::ServerError, "cannot write " + path + ": " + opened.error().message);
  UniqueFd fd(*opened);
  while (!bytes.empty()) {
    auto n = sys("write", [&] { return ::write(fd.get(), bytes.data(), bytes.size()); });
    if (!n.ok()) return makeError(Outcome::ServerError, "cannot write " + path + ": " + n.error().message);
    bytes.remove_prefix(static_cast<size_t>(*n));
  }
  return okStatus();
}

std::string joined(const std::vector<std::string>& argv) {
  std::string text;
  for (const std::string& arg : argv) text += (text.empty() ? "" : " ") + arg;
  return text;
}

}  // namespace

Result<std::string> Workspace::directory() {
  if (owner_ == ::getpid()) return directory_;
  // Resolved here, at the first compile: a served worker's private /tmp
  // exists only once its sandbox is applied, after the session started.
  std::string base = base_;
  if (base.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    const char* sandboxed = sandbox::privateTempDirectory();
    base = sandboxed != nullptr ? sandboxed : tmp != nullptr && *tmp ? tmp : "/tmp";
  }
  std::string pattern = base + "/gcc-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr) {
    return makeError(Outcome::ServerError, errnoMessage(("mkdtemp(" + pattern + ")").c_str()));
  }
  if (auto written = writeFile(pattern + "/" + std::string(kSourceFile), source_); !written.ok()) {
    std::error_code ignored;
    std::filesystem::remove_all(pattern, ignored);
    return written.takeError();
  }
  owner_ = ::getpid();
  directory_ = std::move(pattern);
  return directory_;
}

void Workspace::remove() {
  if (owner_ != ::getpid()) return;  // a forked copy's directory is its own to remove
  std::error_code ignored;
  std::filesystem::remove_all(directory_, ignored);
  owner_ = -1;
  directory_.clear();
}

Result<CompileResult> compile(const GccSpec& spec, const Choices& choices, Artifact artifact, Workspace& workspace,
                              const CompileLimits& limits) {
  auto directory = workspace.directory();
  if (!directory.ok()) return directory.takeError();
  const std::string primaryName(artifact == Artifact::Object ? kObjectFile : kAssemblyFile);
  const std::string primary = *directory + "/" + primaryName;
  const std::string rtl = *directory + "/" + std::string(kRtlFile);
  // What a failed run leaves must never be read as its output.
  ::unlink(primary.c_str());
  ::unlink(rtl.c_str());

  const std::vector<std::string> argv = commandLine(spec, choices, artifact);
  ToolOptions options{.limit = limits.timeout,
                      .workingDirectory = directory->c_str(),
                      .addressSpaceBytes = limits.addressSpaceBytes,
                      .maxOutputBytes = kMaxStdout,
                      // gcc's own temporary files (cc1's .s for as) stay in
                      // the private directory; messages in plain ASCII.
                      .environment = {"TMPDIR=" + *directory, "LC_ALL=C"},
                      .ownProcessGroup = true};
  auto run = runTool(argv, "", options);
  if (!run.ok()) return run.takeError();

  CompileResult result;
  const std::string command = joined(argv);
  if (run->timedOut) {
    result.failure = CompileFailure::TimedOut;
    result.message = "gcc timed out after " + std::to_string(limits.timeout.count()) +
                     " s and was killed with its passes; the state is as before this step. Command: " + command;
  } else if (run->signal != 0 || run->exitCode == kInternalCompilerError) {
    result.failure = CompileFailure::Crashed;
    result.message = "gcc " + run->describeFailure(limits.timeout) + " (a compiler crash; the state is as before "
                     "this step). Command: " + command + "\n" + run->diagnostics();
  } else if (!run->succeeded()) {
    result.failure = CompileFailure::Rejected;
    result.message = "gcc " + run->describeFailure(limits.timeout) + " on these options; the state is as before "
                     "this step. Command: " + command + "\n" + run->diagnostics();
  }
  if (result.failure != CompileFailure::None) return result;

  auto bytes = readFile(primary);
  if (!bytes.ok()) return bytes.takeError();
  result.output.primary = std::move(*bytes);
  if (artifact == Artifact::AssemblyAndRtl) {
    // No RTL pass runs for a file with no functions: no dump, empty RTL.
    struct stat info {};
    if (::stat(rtl.c_str(), &info) == 0) {
      auto dump = readFile(rtl);
      if (!dump.ok()) return dump.takeError();
      result.output.rtl = std::move(*dump);
    }
  }
  return result;
}

}  // namespace forkgym::passes::gcc
