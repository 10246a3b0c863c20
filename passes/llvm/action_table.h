// The action space: one table of rows, in CompilerGym's index order.
//
// Lifecycle:
//   1. actions.def is the single source: flag, LLVM 19 new-PM pipeline text,
//      description, and, for flags LLVM 19 no longer has, why not.
//   2. actionTable() exposes the rows; the zygote describes them to clients,
//      which build their names (C++ and Python) from that description.
//   3. actionTableHash() goes into the protocol hello, so a client and a
//      server built from different tables refuse to talk. The client cannot
//      link passes/: the build runs forkgym-action-table-hash, which writes
//      this hash into the generated header ipc/action_table_hash.h
//      (kActionTableHash) the client includes.
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

// The 124 CompilerGym actions, followed (in the test flavour only —
// forkgym_passes_test, forkgym-test-server) by the fault injection actions.
std::span<const ActionInfo> actionTable();

// Number of CompilerGym actions (124); test actions start at this index.
constexpr uint32_t kCompilerGymActionCount = 124;

// FNV-1a over every product row's flag, pipeline and kind, in order. The
// test-only rows are left out: they are an extension past index 124 that a
// test server describes (testOnly) and a client needs no build-time
// knowledge of, so the one client build talks to product and test servers.
uint64_t actionTableHash();
// The same hash over any rows (tests change a row and watch it change).
uint64_t actionTableHash(std::span<const ActionInfo> rows);

// Index of a flag ("-dce" or "dce"), or -1.
int findAction(std::string_view flag);

}  // namespace forkgym::passes
