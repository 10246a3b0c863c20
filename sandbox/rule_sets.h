// Rule sets: the seccomp policy as named tables of syscall rows, one table
// per kind of work a sandboxed process does. A profile (profile.h) allows
// the union of the sets it names; everything else traps.
//
//   channel              serving requests on the channel it was given: the
//                        doorbell and region, descriptors, signals and the
//                        crash reporters, time and the per-step CPU limit,
//                        its own identity and exit
//   memory               allocators and futexes (RLIMIT_AS bounds memory)
//   episode_fork         env.fork(): a sibling with its own region and doorbell
//   in_process_compiler  what a compiler library running in the worker needs
//                        beyond those (LLVM: thread yields, random seeds,
//                        machine size)
//   external_compiler    running a compiler's own binaries and waiting for
//                        them: execve, fork without namespaces, file-system
//                        calls (Landlock decides which files, profile.h),
//                        signals to its own processes (Landlock scopes them),
//                        Unix sockets only; clone3 answers ENOSYS so libc
//                        falls back to clone, whose flags seccomp can read
//
// Lifecycle: data, fixed at compile time. seccomp_policy.h compiles a
// profile's sets into one filter (in the zygote, once per profile); tests
// and docs read the rows through ruleSets().
//
// Any process may read the tables.
#pragma once

#include <span>
#include <string_view>

#include "sandbox/sandbox.h"

namespace forkgym::sandbox {

struct RuleSet {
  std::string_view name;
  std::string_view purpose;
  std::span<const SeccompRule> rows;  // each syscall, its argument rule, why
};

std::span<const RuleSet> ruleSets();
// The set called `name`, or null.
const RuleSet* findRuleSet(std::string_view name);

}  // namespace forkgym::sandbox
