// The private temporary directory of an external-compiler profile — the
// private_tmp stage of applySandbox(): a tmpfs mounted on /tmp in a mount
// namespace of the child's own, so what the compiler writes is seen by no
// other process and vanishes with the last process of the namespace (the
// worker, its env.fork() copies, the compilers they run): nothing to clean
// up, even after SIGKILL.
//
// Lifecycle (a child just forked, after its user_namespace stage, which
// gives it the capabilities a mount namespace of its own needs):
//   1. enterPrivateTemp(bytes): unshare(CLONE_NEWNS), every mount private
//      (nothing propagates back to the host), a tmpfs of `bytes` on /tmp
//      (nosuid, nodev, mode 0700; noexec unless `executable`: the runnable
//      profile runs the programs it builds there, Landlock still confining
//      execution to files beneath it and the listed binaries).
//   2. privateTempDirectory() (profile.h) names it from then on.
//
// Internal to sandbox/: other layers use profile.h.
#pragma once

#include <cstdint>

namespace forkgym::sandbox {

inline constexpr const char* kPrivateTempDirectory = "/tmp";

[[nodiscard]] bool enterPrivateTemp(uint64_t bytes, bool executable = false);

}  // namespace forkgym::sandbox
