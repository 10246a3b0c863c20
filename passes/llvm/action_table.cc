#include "passes/llvm/action_table.h"

#include <array>

namespace forkgym::passes {
namespace {

constexpr ActionInfo kRows[] = {
#define FORKGYM_ACTION(flag, pipeline, description) \
  ActionInfo{flag, pipeline, description, "", ActionKind::Pipeline},
#define FORKGYM_UNAVAILABLE_ACTION(flag, description, reason) \
  ActionInfo{flag, "", description, reason, ActionKind::Unavailable},
#define FORKGYM_TEST_ACTION(flag, description) \
  ActionInfo{flag, "", description, "", ActionKind::TestCrash},
#include "passes/llvm/actions.def"
};

static_assert(std::size(kRows) >= kCompilerGymActionCount,
              "actions.def must list all of CompilerGym's flags");

constexpr uint64_t kFnvOffset = 14695981039346656037ull;
constexpr uint64_t kFnvPrime = 1099511628211ull;

uint64_t fnv1a(uint64_t hash, std::string_view bytes) {
  for (unsigned char c : bytes) {
    hash ^= c;
    hash *= kFnvPrime;
  }
  return hash;
}

}  // namespace

std::span<const ActionInfo> actionTable() { return kRows; }

uint64_t actionTableHash() { return actionTableHash(kRows); }

uint64_t actionTableHash(std::span<const ActionInfo> rows) {
  uint64_t hash = kFnvOffset;
  for (const ActionInfo& row : rows) {
    // Test-only rows are an extension past the product table (flagged
    // testOnly in the description), so a test build of the server agrees
    // with the one client build there is.
    if (row.kind == ActionKind::TestCrash) continue;
    // A zero byte after each field keeps ("ab","c") and ("a","bc") apart.
    hash = fnv1a(hash, row.flag);
    hash = fnv1a(hash, std::string_view("\0", 1));
    hash = fnv1a(hash, row.pipeline);
    hash = fnv1a(hash, std::string_view("\0", 1));
    const char kind = static_cast<char>(row.kind);
    hash = fnv1a(hash, std::string_view(&kind, 1));
  }
  return hash;
}

int findAction(std::string_view flag) {
  // Accept both CompilerGym's spelling ("-dce") and the bare name ("dce").
  if (flag.starts_with('-')) flag.remove_prefix(1);
  for (size_t i = 0; i < std::size(kRows); ++i) {
    if (kRows[i].flag.substr(1) == flag) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace forkgym::passes
