// The process-group filter: a compiler run in a process group of its own
// (passes/tool_process.h, ToolOptions::ownProcessGroup) is ended by killing
// that group — on its timeout, and when the worker that ran it dies. A pass
// that left the group (setpgid, setsid) would outlive both, for good: a
// hostile compiler's way to leave processes behind. This filter keeps the
// compiler and everything it starts in the group.
//
// Lifecycle (the child forked to run the compiler, after it joined the
// group and before it execs; async-signal-safe: a static BPF program and
// two syscalls, no allocation):
//   1. keepInProcessGroup() loads the filter: from then on setpgid and
//      setsid fail with EPERM in this process and every process it starts
//      (seccomp filters are inherited across fork and exec and cannot be
//      removed). It only narrows what is allowed, stacked on whatever
//      filter the process has (the external-compiler profile allows the
//      seccomp call for it, rule_sets.cc).
//   2. A process without no_new_privs (a test, the unsandboxed zygote)
//      sets it first: seccomp requires it; no compiler needs setuid.
#pragma once

namespace forkgym::sandbox {

// Step 1. False (errno set) if the kernel refused the filter.
bool keepInProcessGroup();

}  // namespace forkgym::sandbox
