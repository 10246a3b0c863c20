// The seccomp filters: each profile's rule sets (rule_sets.h) compiled into
// one libseccomp filter ahead of time, plus the syscall-name table the
// SIGSYS reporter reads.
//
// Lifecycle:
//   1. In the zygote (prepareSandbox(), prepareExternalCompiler()), still
//      unsandboxed: buildSeccompFilter() for each profile, into the profile's
//      slot, and buildSyscallNames(): all allocation happens here.
//   2. In a child, loadSeccompFilter(slot) is the last stage of
//      applySandbox().
//   3. syscallName() (declared in sandbox.h) reads the precomputed table from
//      a SIGSYS handler.
//
// Internal to sandbox/: other layers use sandbox.h and profile.h.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>

#include "sandbox/sandbox.h"

namespace forkgym::sandbox {

// How many profiles a process can hold compiled filters for.
inline constexpr size_t kMaxCompiledFilters = 8;

// Compiles the union of the named rule sets into slot `slot`. Idempotent per
// slot: the policy does not depend on the calling process, so a filter built
// once (in the zygote before fork) is valid in every child; later calls keep
// the first call's sets and parameters. False if a set is unknown or
// libseccomp rejected a row; the seccomp stage then fails with its exit code.
[[nodiscard]] bool buildSeccompFilter(size_t slot, std::span<const std::string_view> ruleSetNames,
                                      const PolicyParameters& parameters);

// Loads the filter in slot `slot`. False if there is none or the kernel
// refused it.
[[nodiscard]] bool loadSeccompFilter(size_t slot);

// Fills the number -> name table syscallName() reads. Idempotent.
void buildSyscallNames();

}  // namespace forkgym::sandbox
