// Resource limits for a worker: memory (RLIMIT_AS), CPU per step
// (RLIMIT_CPU soft limit -> SIGXCPU), no core files, process and descriptor
// caps.
//
// Lifecycle (worker child only, after fork(), single-threaded):
//   1. applyRlimits() is the rlimits stage of applySandbox().
//   2. limitCpuForNextStep() (declared in sandbox.h) before each step.
//
// Internal to sandbox/: other layers use sandbox.h.
#pragma once

#include "sandbox/sandbox.h"

namespace forkgym::sandbox {

// Limits only ever go down: a request above the current hard limit is
// clamped to it, so an unprivileged zygote behaves like a privileged one.
// False if the kernel refused a limit. Not maxProcesses: applyProcessLimit().
[[nodiscard]] bool applyRlimits(const SandboxLimits& limits);

// RLIMIT_NPROC, soft and hard, to `processes` (clamped; 0 leaves it). The
// process_limit stage: sandbox.cc decides the number (isolation.h).
[[nodiscard]] bool applyProcessLimit(uint64_t processes);

}  // namespace forkgym::sandbox
