// The row type of the rule sets (rule_sets.h): one syscall, the argument
// conditions under which it is allowed (or answered with an errno), and the
// reason, built as constexpr data.
//
// Lifecycle: compile-time data; rule_sets.cc holds the tables and
// seccomp_policy.cc compiles them.
//
// Internal to sandbox/: other layers and tests use rule_sets.h.
#pragma once

#include <seccomp.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "sandbox/sandbox.h"

namespace forkgym::sandbox {

// scmp_arg_cmp built without libseccomp's SCMP_A* macros, which expand to C
// compound literals and so cannot appear in a constexpr table.
constexpr scmp_arg_cmp argIs(unsigned arg, uint64_t value) { return scmp_arg_cmp{arg, SCMP_CMP_EQ, value, 0}; }
// (argument & mask) == value
constexpr scmp_arg_cmp argMasked(unsigned arg, uint64_t mask, uint64_t value) {
  return scmp_arg_cmp{arg, SCMP_CMP_MASKED_EQ, mask, value};
}

// Conditions that must all hold (one libseccomp rule).
struct Alternative {
  unsigned count = 0;
  std::array<scmp_arg_cmp, 2> conditions{};
};
constexpr Alternative when(scmp_arg_cmp a) { return {1, {a, {}}}; }
constexpr Alternative when(scmp_arg_cmp a, scmp_arg_cmp b) { return {2, {a, b}}; }

constexpr std::size_t kMaxAlternatives = 8;

struct PolicyRow {
  SeccompRule doc;
  // The call is allowed when any alternative holds; none means any arguments.
  std::array<Alternative, kMaxAlternatives> alternatives{};
  unsigned alternativeCount = 0;
  // 0: allowed. Else the call fails with this errno instead of trapping (for
  // calls a library probes and falls back from, like clone3).
  int errnoValue = 0;
};

constexpr PolicyRow any(std::string_view syscall, std::string_view why) {
  return {{syscall, "any arguments", why}, {}, 0, 0};
}

template <typename... Alternatives>
constexpr PolicyRow only(std::string_view syscall, std::string_view rule, std::string_view why,
                         Alternatives... alternatives) {
  static_assert(sizeof...(Alternatives) >= 1 && sizeof...(Alternatives) <= kMaxAlternatives);
  return {{syscall, rule, why}, {alternatives...}, sizeof...(Alternatives), 0};
}

constexpr PolicyRow failsWith(std::string_view syscall, int errnoValue, std::string_view rule, std::string_view why) {
  return {{syscall, rule, why}, {}, 0, errnoValue};
}

// Stands for PolicyParameters::regionBytes in a row; replaced when the
// filter is built. No real region is 2^64 - 1 bytes.
inline constexpr uint64_t kRegionBytes = ~uint64_t{0};

// The rows of the rule set `name` (rule_sets.h), empty if there is none.
std::span<const PolicyRow> policyRowsOf(std::string_view name);

}  // namespace forkgym::sandbox
