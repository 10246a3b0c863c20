// Closing every inherited descriptor except the worker's own channel, so a
// worker cannot reach the zygote's control socket, other sessions' regions
// or anything the zygote opened.
//
// Lifecycle (worker child only, after fork(), single-threaded):
//   1. rememberFdScanLimit() from prepareSandbox(), before rlimits lower
//      RLIMIT_NOFILE (descriptors above the new limit may still be open).
//   2. closeFdsExcept() is the close_fds stage of applySandbox().
//
// Internal to sandbox/: other layers use sandbox.h.
#pragma once

#include <span>

namespace forkgym::sandbox {

// Records how far the close() fallback must scan when close_range(2) is
// unavailable (kernels before 5.9).
void rememberFdScanLimit();

// Closes every descriptor not in keep (negative entries are ignored). False
// if the kernel refused.
[[nodiscard]] bool closeFdsExcept(std::span<const int> keep);

}  // namespace forkgym::sandbox
