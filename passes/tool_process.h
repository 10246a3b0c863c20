// Running an external tool (clang-19, csmith, llvm-stress) with its standard
// streams connected to pipes: no temporary files, a wall-clock limit, and
// stderr kept for the error message.
//
// Loader child only: the worker's sandbox forbids execve, and the zygote
// never runs untrusted work itself.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "ipc/result.h"

namespace forkgym::passes {

struct ToolRun {
  int exitCode = -1;     // when the tool exited
  int signal = 0;        // when a signal killed it
  bool timedOut = false; // killed by us at the limit
  std::string out;
  std::string err;
  bool succeeded() const { return !timedOut && signal == 0 && exitCode == 0; }
  // "exited with status 1", "was killed by signal 11", "timed out after 60 s"
  std::string describeFailure(std::chrono::seconds limit) const;
};

inline constexpr std::chrono::seconds kToolTimeLimit{60};

struct ToolOptions {
  std::chrono::seconds limit = kToolTimeLimit;
  // Where the tool runs. For tools that drop files in their working
  // directory (csmith writes platform.info), kNoWritableDirectory: a
  // directory where no file can be created, so the litter never appears.
  const char* workingDirectory = nullptr;  // nullptr: ours
};
inline constexpr const char* kNoWritableDirectory = "/proc";

// Runs argv[0] (searched on PATH when it has no '/'), feeding `input` on its
// stdin. A ServerError only if the tool could not be started at all (e.g.
// not installed); a tool that fails is a ToolRun describing how.
Result<ToolRun> runTool(const std::vector<std::string>& argv, std::string_view input,
                        const ToolOptions& options = {});

}  // namespace forkgym::passes
