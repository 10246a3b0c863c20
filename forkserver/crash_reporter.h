// CrashReporter: a worker's last words.
//
// Lifecycle (worker child only, before the sandbox is applied):
//   1. installCrashReporter(header) sets up an alternate signal stack (so a
//      stack overflow can still be reported), handlers for the fatal
//      signals, the C++ new-handler and LLVM's fatal/bad-alloc handlers.
//   2. When one fires it writes {outcome, signal, message} into the shared
//      region's LastWords with plain stores, then dies by the same signal
//      (or _exit()s with kOutOfMemoryExit / kLlvmFatalExit), so the zygote's
//      wait status still tells the truth.
//   3. The client, seeing the doorbell close, reads LastWords.
// Everything a handler calls is async-signal-safe.
#pragma once

#include "ipc/shared_region.h"

namespace forkgym::forkserver {

// Stable exit codes of the zygote's children (workers and loaders); the
// sandbox stages' codes are in sandbox/sandbox.h. Never renumber.
inline constexpr int kOutOfMemoryExit = 90;   // an allocation failed at the address-space limit
inline constexpr int kLlvmFatalExit = 91;     // LLVM's fatal-error handler ran
inline constexpr int kLoaderSetupExit = 92;   // a loader could not set up its limits

void installCrashReporter(RegionHeader& header);
// After a fork child swaps to a new region, its last words go there.
void redirectCrashReporter(RegionHeader& header);

}  // namespace forkgym::forkserver
