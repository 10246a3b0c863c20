// CrashReporter: a worker's last words.
//
// Lifecycle (worker child only, before the sandbox is applied):
//   1. installCrashReporter(header, backend) snapshots the executable
//      segments of the loaded modules (for step 2's stack), sets up an alternate signal
//      stack (so a stack overflow can still be reported), handlers for the
//      fatal signals, the C++ new-handler and, through the backend, its
//      compiler's fatal/out-of-memory handlers (LLVM's).
//   2. When one fires it writes {outcome, signal, message} into the shared
//      region's LastWords with plain stores (for a crash or a compiler fatal
//      error, first the crashing stack's return addresses into CrashStack, as
//      module offsets the client symbolises), then dies by the same signal
//      (or _exit()s with kOutOfMemoryExit / kCompilerFatalExit), so the zygote's
//      wait status still tells the truth.
//   3. The client, seeing the doorbell close, reads LastWords.
// Everything a handler calls is async-signal-safe, but for the stack walk:
// glibc's backtrace(), which is not on POSIX's list, is made safe enough by
// loading the unwinder in step 1 (it then reads only the loaded modules'
// unwind tables); a crash inside the dynamic loader could still block it,
// and the step's timeout would then end the worker as timed out.
#pragma once

#include "ipc/shared_region.h"
#include "passes/backend.h"

namespace forkgym::forkserver {

// Stable exit codes of the zygote's children (workers and loaders); the
// sandbox stages' codes are in sandbox/sandbox.h. Never renumber.
inline constexpr int kOutOfMemoryExit = 90;   // an allocation failed at the address-space limit
inline constexpr int kCompilerFatalExit = 91;  // the compiler's fatal-error handler ran (LLVM's report_fatal_error)
inline constexpr int kLoaderSetupExit = 92;   // a loader could not set up its limits
inline constexpr int kSessionStartExit = 93;  // the backend could not start a session on its benchmark

void installCrashReporter(RegionHeader& header, const passes::Backend& backend);
// After a fork child swaps to a new region, its last words go there.
void redirectCrashReporter(RegionHeader& header);

}  // namespace forkgym::forkserver
