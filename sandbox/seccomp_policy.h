// The seccomp policy: a default-deny allowlist kept as data, compiled into a
// libseccomp filter ahead of time, plus the syscall-name table the SIGSYS
// reporter reads.
//
// Lifecycle (worker child only, after fork(), single-threaded):
//   1. buildSeccompFilter() and buildSyscallNames() from prepareSandbox():
//      all allocation happens here, while the process is still unsandboxed.
//   2. loadSeccompFilter() is the last stage of applySandbox().
//   3. syscallName() (declared in sandbox.h) reads the precomputed table from
//      a SIGSYS handler.
//
// Internal to sandbox/: other layers use sandbox.h.
#pragma once

#include "sandbox/sandbox.h"

namespace forkgym::sandbox {

// Compiles seccompAllowlist() into a filter held in static storage. Idempotent:
// the policy does not depend on the calling process, so a filter built once
// (even in the zygote before fork) is valid in every worker; later calls keep
// the first call's parameters. Returns false if
// libseccomp rejected a row; the seccomp stage then fails with its exit code.
[[nodiscard]] bool buildSeccompFilter(const PolicyParameters& parameters);

// Loads the filter built by buildSeccompFilter(). False if there is none or
// the kernel refused it.
[[nodiscard]] bool loadSeccompFilter();

// Fills the number -> name table syscallName() reads. Idempotent.
void buildSyscallNames();

}  // namespace forkgym::sandbox
