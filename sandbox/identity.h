// Identity: the user, user namespace and capabilities a sandboxed child runs
// with — the identity, user_namespace and capabilities stages of
// applySandbox().
//
// Lifecycle (a child just forked from the zygote, single-threaded, before
// the rest of its sandbox):
//   1. switchToSandboxUser(): a server started as root moves the child to the
//      unprivileged sandbox uid/gid (no supplementary groups), dropping the
//      capability bounding set first, while it still may.
//   2. enterOwnUserNamespace(): the child unshares a user namespace mapping
//      only its own uid and gid. It is what makes RLIMIT_NPROC count per
//      episode: the kernel counts processes per (user namespace, uid).
//   3. dropAllCapabilities(): a new user namespace grants every capability
//      inside it, so they all go again — effective, permitted, inheritable,
//      ambient and, where the process may, the bounding set.
// Each step reads the IsolationPlan the zygote chose (isolation.h) and does
// nothing for a feature the plan leaves off.
//
// Internal to sandbox/: other layers use sandbox.h and isolation.h.
#pragma once

#include "sandbox/isolation.h"

namespace forkgym::sandbox {

[[nodiscard]] bool switchToSandboxUser(const IsolationPlan& plan);
[[nodiscard]] bool enterOwnUserNamespace(const IsolationPlan& plan);
[[nodiscard]] bool dropAllCapabilities(const IsolationPlan& plan);

// Drops every capability from the bounding set. False if one could not be
// dropped (no CAP_SETPCAP in this user namespace).
[[nodiscard]] bool dropBoundingSet();
// True when the bounding set is empty.
bool boundingSetEmpty();

// A user namespace mapping only the caller's own uid and gid (the unprivileged
// single-line mapping any user may write). Leaves the process dumpable only
// if asked: a sandboxed child is not (no core files, no /proc access by
// other processes of its uid); the zygote stays inspectable by its user.
[[nodiscard]] bool unshareUserNamespaceMappingSelf(bool dumpableAfter = false);

}  // namespace forkgym::sandbox
