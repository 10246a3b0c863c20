// The action space: one table of rows, in CompilerGym's index order.
//
// Lifecycle:
//   1. actions.def is the single source: flag, LLVM 19 new-PM pipeline text,
//      description, and, for flags LLVM 19 no longer has, why not.
//   2. actionTable() exposes the rows; the zygote describes them to clients,
//      which build their names (C++ and Python) from that description.
//   3. actionTableHash() goes into the protocol hello, so a client and a
//      server built from different tables refuse to talk.
// Any process may call these; they touch no LLVM state.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace forkgym::passes {

enum class ActionKind : uint8_t {
  Pipeline,     // runs `pipeline` through PassBuilder::parsePassPipeline
  Unavailable,  // kept so indices match CompilerGym; stepping it is an error
  TestCrash,    // test-only fault injection (FORKGYM_TEST_ACTIONS builds)
};

struct ActionInfo {
  std::string_view flag;         // CompilerGym's flag, e.g. "-instcombine"
  std::string_view pipeline;     // new-PM text, e.g. "instcombine"; empty if unavailable
  std::string_view description;  // CompilerGym's one-line description
  std::string_view unavailableReason;  // why LLVM 19 has no equivalent
  ActionKind kind;
};

// The 124 CompilerGym actions, followed (in test builds only) by the fault
// injection actions.
std::span<const ActionInfo> actionTable();

// Number of CompilerGym actions (124); test actions start at this index.
constexpr uint32_t kCompilerGymActionCount = 124;

// FNV-1a over every row's flag, pipeline and kind, in order.
uint64_t actionTableHash();

// Index of a flag ("-dce" or "dce"), or -1.
int findAction(std::string_view flag);

}  // namespace forkgym::passes
