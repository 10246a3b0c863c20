// Running gcc on a session's source: one compilation per artifact, in a
// directory that holds the source as src.c, so that the command line a
// session reports is the one that ran, file names included.
//
// Lifecycle (worker process, under the external-compiler sandbox profile;
// tests anywhere):
//   1. A Workspace is made from the private writable directory the worker
//      was given and the preprocessed source. directory() makes this
//      process's own subdirectory holding src.c the first time it is asked
//      (a forked session, being another process, makes its own: two copies
//      never write the same files).
//   2. compile() removes the artifact's old files, runs gcc in that
//      directory (its own process group, TMPDIR there too, LC_ALL=C) and
//      reads back what gcc wrote. On timeout the whole group is killed
//      (driver, cc1 and as).
//   3. Failures are typed: gcc refusing the options or the source
//      (Rejected: exit status 1 with its diagnostics), gcc crashing (a
//      signal, or exit status 4, gcc's "internal compiler error"), gcc
//      running past the limit (TimedOut). The caller keeps its state and
//      the episode goes on.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"
#include "passes/gcc/choices.h"
#include "passes/gcc/gcc_spec.h"

namespace forkgym::passes::gcc {

class Workspace {
 public:
  // `base`: where this process's directory is made; empty for the served
  // default: the worker's private /tmp (sandbox::privateTempDirectory())
  // once its sandbox is applied, else $TMPDIR, else /tmp.
  Workspace(std::string base, std::string source) : base_(std::move(base)), source_(std::move(source)) {}
  // Removes this process's directory, if it made one.
  ~Workspace() { remove(); }
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
  // This process's directory, with src.c written. ServerError if it cannot
  // be made.
  Result<std::string> directory();
  // Removes this process's directory (and whatever gcc left in it).
  void remove();
  std::string_view source() const { return source_; }

 private:
  std::string base_;
  std::string source_;
  pid_t owner_ = -1;
  std::string directory_;
};

struct CompileLimits {
  std::chrono::seconds timeout{60};
  uint64_t addressSpaceBytes = 0;  // RLIMIT_AS of gcc and its passes; 0: inherited
};

enum class CompileFailure : uint8_t { None, Rejected, Crashed, TimedOut };

struct CompileOutput {
  std::string primary;  // obj.o or asm.s
  std::string rtl;      // rtl.lsp (Artifact::AssemblyAndRtl)
};

struct CompileResult {
  CompileFailure failure = CompileFailure::None;
  std::string message;  // for failures: what happened, with gcc's diagnostics
  CompileOutput output;
};

// ServerError only when gcc could not be started or its output could not be
// read; everything gcc itself does is a CompileResult.
Result<CompileResult> compile(const GccSpec& spec, const Choices& choices, Artifact artifact, Workspace& workspace,
                              const CompileLimits& limits);

}  // namespace forkgym::passes::gcc
