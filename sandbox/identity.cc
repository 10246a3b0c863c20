// The identity stages. Capabilities are set with the raw capset/prctl calls
// rather than libcap: the sandbox layer uses only libc and libseccomp
// (DESIGN.md, Layers), and "all empty" needs no more than these few calls.
#include "sandbox/identity.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace forkgym::sandbox {
namespace {

IsolationPlan gPlan;  // default: nothing to change (the sandbox of old)

// One write of `text` to a /proc file, as uid_map and friends require.
bool writeProcFile(const char* path, const char* text) {
  const int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const size_t length = strlen(text);
  const bool ok = write(fd, text, length) == static_cast<ssize_t>(length);
  close(fd);
  return ok;
}

// Capabilities 0..last exist on this kernel; PR_CAPBSET_READ says EINVAL
// past the last one. Found once, in the zygote (useIsolationPlan()), so a
// child does not pay ~40 probing calls again on every episode's start.
int probeLastCapability() {
  int last = 0;
  while (last < 64 && prctl(PR_CAPBSET_READ, last + 1, 0, 0, 0) >= 0) ++last;
  return last;
}

int gLastCapability = -1;

int lastCapability() {
  if (gLastCapability < 0) gLastCapability = probeLastCapability();
  return gLastCapability;
}

}  // namespace

const IsolationPlan& currentPlan() { return gPlan; }

void useIsolationPlan(const IsolationPlan& plan) {
  gPlan = plan;
  lastCapability();  // before any child is forked: every child inherits it
}

bool dropBoundingSet() {
  const int last = lastCapability();
  for (int cap = 0; cap <= last; ++cap) {
    // One call per capability; without CAP_SETPCAP the drop fails, which is
    // fine only for a capability that is already gone.
    if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && prctl(PR_CAPBSET_READ, cap, 0, 0, 0) != 0) return false;
  }
  return true;
}

bool boundingSetEmpty() {
  const int last = lastCapability();
  for (int cap = 0; cap <= last; ++cap) {
    if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) != 0) return false;
  }
  return true;
}

bool unshareUserNamespaceMappingSelf(bool dumpableAfter) {
  const uid_t uid = geteuid();
  const gid_t gid = getegid();
  // A process that changed uid is not dumpable, and a non-dumpable
  // process's /proc/self files belong to root: it could not write its maps.
  if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) != 0) return false;
  if (unshare(CLONE_NEWUSER) != 0) return false;
  char map[64];
  std::snprintf(map, sizeof(map), "%u %u 1", uid, uid);
  if (!writeProcFile("/proc/self/uid_map", map)) return false;
  // An unprivileged gid mapping needs setgroups(2) disabled first.
  if (!writeProcFile("/proc/self/setgroups", "deny")) return false;
  std::snprintf(map, sizeof(map), "%u %u 1", gid, gid);
  if (!writeProcFile("/proc/self/gid_map", map)) return false;
  // Not dumpable again: no core files, and no other process of this uid may
  // read its memory through /proc or attach to it.
  return dumpableAfter || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0;
}

bool switchToSandboxUser(const IsolationPlan& plan) {
  if (!plan.switchUser) return true;
  // The bounding set first: dropping from it needs CAP_SETPCAP, which the
  // uid change below takes away with every other capability. A child that
  // enters a user namespace next need not: unshare(CLONE_NEWUSER) replaces
  // its bounding set with a full one that means nothing outside the new
  // namespace, and dropAllCapabilities() empties that one.
  if (!plan.userNamespace && !dropBoundingSet()) return false;
  if (setgroups(0, nullptr) != 0) return false;
  if (setresgid(plan.gid, plan.gid, plan.gid) != 0) return false;
  if (setresuid(plan.uid, plan.uid, plan.uid) != 0) return false;
  uid_t r, e, s;
  return getresuid(&r, &e, &s) == 0 && r == plan.uid && e == plan.uid && s == plan.uid;
}

bool enterOwnUserNamespace(const IsolationPlan& plan) {
  if (!plan.userNamespace) return true;
  return unshareUserNamespaceMappingSelf();
}

bool dropAllCapabilities(const IsolationPlan& plan) {
  // Inside a user namespace of its own the process holds every capability
  // (in that namespace only): it can and must drop the bounding set. Without
  // one, a root server's child dropped it before changing uid.
  if (plan.userNamespace && !dropBoundingSet()) return false;
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL) return false;
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (syscall(SYS_capset, &header, data) != 0) return false;
  // Check rather than trust: every set must now read back empty.
  __user_cap_data_struct now[_LINUX_CAPABILITY_U32S_3] = {};
  if (syscall(SYS_capget, &header, now) != 0) return false;
  for (const auto& word : now) {
    if (word.effective != 0 || word.permitted != 0 || word.inheritable != 0) return false;
  }
  return !plan.dropBoundingSet || boundingSetEmpty();
}

}  // namespace forkgym::sandbox
