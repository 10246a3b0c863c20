// GccEpisode: the state of one gcc-v0 episode, and what it has compiled.
//
// Lifecycle (worker process; tests anywhere):
//   1. Made from the benchmark's preprocessed source (cached in the zygote,
//      inherited by the worker), the spec and action space (built once in the
//      zygote), the worker's private writable directory and the limits.
//      Every choice starts at -1: `gcc -w -c src.c -o obj.o`.
//   2. apply() and setChoices() move to a new state *and compile it*
//      (obj.o): a state gcc rejects, crashes on or hangs on is refused with
//      a typed error and the episode stays where it was (CompilerGym only
//      failed later, when an observation was asked for). Actions that change
//      nothing compile nothing.
//   3. The observations read the current state's artifacts: obj.o from step
//      2, asm.s (and rtl.lsp) compiled on first use, all kept until the state
//      changes. The initial state's artifacts are kept too: the size rewards
//      start from them (r = previous - now, previous = the reset state's
//      size before the first step).
//   4. On env.fork() the worker process is forked and the episode with it;
//      the copy compiles in a directory of its own (Workspace).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "passes/gcc/action_space.h"
#include "passes/gcc/choices.h"
#include "passes/gcc/compilation.h"
#include "passes/gcc/gcc_spec.h"

namespace forkgym::passes::gcc {

// How a compilation failure reaches the client. Rejected options are a bad
// request; a crash or a hang of gcc is the compiler's failure. Neither ends
// the episode.
Error compileError(const CompileResult& result);

class GccEpisode {
 public:
  GccEpisode(const GccSpec& spec, const GccActionSpace& actions, std::string source, std::string workBase,
             CompileLimits limits);

  // Validates every index first (InvalidRequest, nothing applied), then
  // applies them in order and compiles the result. Returns whether the
  // choices changed. On a compile failure nothing changes.
  Result<bool> apply(std::span<const uint32_t> actions);

  // CompilerGym's session parameters:
  //   "choices"   "c0,c1,..."  sets every choice (validated, then compiled
  //               like a step); replies with the choices now in force.
  //               An empty value only replies.
  //   "timeout"   seconds per gcc run ("" for the default, 60); replies with it.
  //   "gcc_spec"  replies with the spec as JSON (version, options with their
  //               kind and choices or range).
  // InvalidRequest naming the accepted keys for any other key.
  Result<std::string> setParameter(std::string_view key, std::string_view value);

  // The current state's artifacts (compiled on first use).
  Result<const std::string*> object();
  Result<const std::string*> assembly();
  Result<const std::string*> rtl();
  // The reset state's sizes (compiled on first use, then kept).
  Result<int64_t> initialObjectSize();
  Result<int64_t> initialAssemblySize();

  const Choices& choices() const { return choices_; }
  const std::vector<uint32_t>& actions() const { return applied_; }
  std::string commandLine() const { return commandLineText(*spec_, choices_); }
  std::string_view source() const { return workspace_.source(); }
  const GccSpec& spec() const { return *spec_; }

 private:
  struct Artifacts {
    std::optional<std::string> object;
    std::optional<std::string> assembly;
    std::optional<std::string> rtl;
  };
  // Compiles `artifact` for `choices` into `into` unless it is there already.
  Status ensure(const Choices& choices, Artifacts& into, Artifact artifact);
  // Makes `next` the state if it compiles; the episode is unchanged otherwise.
  Status moveTo(Choices next);
  Artifacts& current() { return choices_ == initial_ ? initialArtifacts_ : currentArtifacts_; }

  const GccSpec* spec_;
  const GccActionSpace* actionSpace_;
  Workspace workspace_;
  CompileLimits limits_;
  const Choices initial_;
  Choices choices_;
  std::vector<uint32_t> applied_;
  Artifacts initialArtifacts_;
  Artifacts currentArtifacts_;  // for choices_ when it is not the initial state
};

// The spec as JSON, for the "gcc_spec" parameter.
std::string specJson(const GccSpec& spec);

}  // namespace forkgym::passes::gcc
