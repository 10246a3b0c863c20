// The gcc-v0 action space, derived from a GccSpec by CompilerGym's rule
// (compiler_gym/envs/gcc/service/gcc_service.py):
//   an option with fewer than 10 choices: one action per choice, setting it
//     ("-O2", "-ftree-vectorize", "-fno-tree-vectorize");
//   10 or more choices: +1 and -1 steps ("--param=max-unroll-times[+1]"),
//     and also ±10 from 50 choices, ±100 from 500, ±1000 from 5000.
// A step moves the choice and clamps it to -1 (absent) .. size-1; stepping
// up from -1 gives the option's first choice.
//
// Lifecycle:
//   1. The zygote builds the GccActionSpace from its spec once, after
//      discovery; its hash goes into the hello (BackendInfo.actionTableHash).
//   2. Workers inherit it and apply actions to their session's choices.
// Any process; pure functions of the spec.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "passes/gcc/gcc_spec.h"

namespace forkgym::passes::gcc {

struct GccAction {
  enum class Kind : uint8_t { Set, Step } kind;
  uint32_t option;  // index into GccSpec::options
  int64_t value;    // Set: the choice; Step: the increment (+1, -10, ...)
  std::string name;
};

class GccActionSpace {
 public:
  explicit GccActionSpace(const GccSpec& spec);

  std::span<const GccAction> actions() const { return actions_; }
  size_t size() const { return actions_.size(); }
  // Over the spec and every action's name: what a client compares.
  uint64_t hash() const { return hash_; }

  // Applies one action to `choices` (one per option). Returns whether the
  // choices changed. The index must be < size() (the caller validates).
  bool apply(uint32_t action, std::vector<int64_t>& choices) const;

 private:
  const GccSpec* spec_;
  std::vector<GccAction> actions_;
  uint64_t hash_ = 0;
};

}  // namespace forkgym::passes::gcc
