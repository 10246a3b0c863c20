#include "sandbox/isolation.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "sandbox/close_fds.h"
#include "sandbox/identity.h"
#include "sandbox/landlock.h"

namespace forkgym::sandbox {
namespace {

std::string reason(const char* what) { return std::string(what) + ": " + std::strerror(errno); }

// What a throwaway child managed, step by step, as a sandboxed child would.
struct ProbeResult {
  bool switched = false;
  bool userNamespace = false;
  bool capabilities = false;
  int switchErrno = 0, userNamespaceErrno = 0, capabilitiesErrno = 0;
};

ProbeResult probeChildFeatures(const IsolationPlan& wanted) {
  ProbeResult result;
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return result;
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    ProbeResult found;
    IsolationPlan plan = wanted;
    found.switched = switchToSandboxUser(plan);
    if (!found.switched) {
      found.switchErrno = errno;
      plan.switchUser = false;
    }
    found.userNamespace = enterOwnUserNamespace(plan);
    if (!found.userNamespace) {
      found.userNamespaceErrno = errno;
      plan.userNamespace = false;
    }
    plan.dropBoundingSet = plan.userNamespace || plan.switchUser;
    found.capabilities = dropAllCapabilities(plan);
    if (!found.capabilities) found.capabilitiesErrno = errno;
    (void)!write(fds[1], &found, sizeof(found));
    _exit(0);
  }
  close(fds[1]);
  if (pid > 0) {
    ProbeResult found;
    ssize_t n;
    while ((n = read(fds[0], &found, sizeof(found))) < 0 && errno == EINTR) {
    }
    if (n == sizeof(found)) result = found;
    while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  close(fds[0]);
  return result;
}

// pid 1 of the children's PID namespace. Orphans in the namespace (a
// compiler whose loader died) are reparented here and reaped at once
// (SIGCHLD ignored). It exits once the zygote is gone — `zygoteGone` hangs
// up when every copy of the pipe's write end is closed — and no other
// process is left in the namespace: exiting earlier would SIGKILL them all.
[[noreturn]] void runReaper(int zygoteGone) {
  const int keep[] = {zygoteGone};
  (void)closeFdsExcept(keep);
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_UNBLOCK, &all, nullptr);
  signal(SIGCHLD, SIG_IGN);
  prctl(PR_SET_NAME, "forkgym-reaper", 0, 0, 0);
  // It needs no privilege, only kill(-1, 0) on processes of the sandbox
  // uid, so it gives up what it can — best effort: an init that exits would
  // take the namespace's every process with it.
  IsolationPlan reaperPlan = currentPlan();
  reaperPlan.userNamespace = false;
  if (!switchToSandboxUser(reaperPlan)) reaperPlan.switchUser = false;
  (void)dropBoundingSet();
  reaperPlan.dropBoundingSet = false;
  (void)dropAllCapabilities(reaperPlan);
  prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
  for (;;) {
    pollfd gone{zygoteGone, POLLIN, 0};
    if (poll(&gone, 1, -1) > 0) {
      char byte;
      if (read(zygoteGone, &byte, 1) <= 0) break;
    }
  }
  // kill(-1, 0) from a namespace's init reaches every other process in it;
  // ESRCH means there is none. Back off to 200 ms: orphaned episodes can
  // run for hours after a zygote was killed.
  int waitMs = 1;
  while (kill(-1, 0) == 0 || errno != ESRCH) {
    poll(nullptr, 0, waitMs);
    waitMs = std::min(waitMs * 2, 200);
  }
  _exit(0);
}

// Unshares a PID namespace for the zygote's future children and forks its
// reaper as their first, pid 1. On failure the zygote's children go back to
// its own PID namespace, so none of them becomes an init by accident.
bool enterPidNamespace(int& lifeline, pid_t& reaperPid, std::string& why) {
  const int own = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
  if (own < 0) {
    why = reason("open /proc/self/ns/pid");
    return false;
  }
  if (unshare(CLONE_NEWPID) != 0) {
    why = reason("unshare(CLONE_NEWPID)");
    close(own);
    return false;
  }
  int pipeFds[2];
  pid_t reaper = -1;
  if (pipe2(pipeFds, O_CLOEXEC) == 0) {
    reaper = fork();
    if (reaper == 0) {
      close(pipeFds[1]);
      runReaper(pipeFds[0]);
    }
    close(pipeFds[0]);
    if (reaper < 0) {
      close(pipeFds[1]);
    } else {
      lifeline = pipeFds[1];
      reaperPid = reaper;
    }
  }
  if (reaper < 0) {
    why = reason("fork(pid namespace reaper)");
    (void)setns(own, CLONE_NEWPID);
    close(own);
    return false;
  }
  close(own);
  return true;
}

}  // namespace

IsolationPlan enterIsolation(const IsolationRequest& request) {
  IsolationPlan plan;
  const bool root = geteuid() == 0;
  plan.switchUser = root;
  plan.uid = root ? request.sandboxUid : geteuid();
  plan.gid = root ? request.sandboxGid : getegid();
  plan.userNamespace = request.namespaces;

  // Per-child features first, in a throwaway child forked before this
  // process enters a PID namespace (it would otherwise become its init).
  const ProbeResult probe = probeChildFeatures(plan);
  if (root && !probe.switched) {
    errno = probe.switchErrno;
    plan.fallbacks.push_back(reason("children stay root: cannot switch to the sandbox user (setresuid)"));
    plan.switchUser = false;
  }
  if (request.namespaces && !probe.userNamespace) {
    errno = probe.userNamespaceErrno;
    plan.fallbacks.push_back(reason("no user namespace per episode (unshare(CLONE_NEWUSER))"));
    plan.userNamespace = false;
  } else if (!request.namespaces) {
    plan.fallbacks.push_back("namespaces turned off (--no-namespaces): no user, PID or network namespace");
  }
  plan.dropBoundingSet = plan.userNamespace || plan.switchUser;
  if (!probe.capabilities) {
    errno = probe.capabilitiesErrno;
    plan.fallbacks.push_back(reason("capabilities could not be verified empty (capset)"));
  }
  if (!plan.dropBoundingSet) {
    plan.fallbacks.push_back(
        "the capability bounding set is kept (no user namespace and no root to drop it); no capability is held, and "
        "no_new_privs stops gaining any");
  }
  plan.unprivileged = plan.switchUser ? plan.uid != 0 : !root;
  if (!plan.unprivileged) plan.fallbacks.push_back("children run as root: the process limit does not hold");

  // The reaper forked below follows the plan too.
  useIsolationPlan(plan);

  // Service-wide namespaces. A server run by another user first needs a
  // user namespace of its own, which owns the PID and network namespaces.
  bool ownsNamespaces = root;
  if (request.namespaces && !root) {
    ownsNamespaces = unshareUserNamespaceMappingSelf(/*dumpableAfter=*/true);
    if (!ownsNamespaces) plan.fallbacks.push_back(reason("no user namespace for the server, so no PID or network namespace"));
  }
  if (request.namespaces && ownsNamespaces) {
    if (unshare(CLONE_NEWNET) == 0) {
      plan.networkNamespace = true;
    } else {
      plan.fallbacks.push_back(reason("no network namespace (unshare(CLONE_NEWNET)); loaders and tools keep the host's network"));
    }
    std::string why;
    plan.pidNamespace = enterPidNamespace(plan.reaperLifeline, plan.reaperPid, why);
    if (!plan.pidNamespace) plan.fallbacks.push_back("no PID namespace (" + why + "); children can name any process by pid");
  }

  plan.processLimit = plan.unprivileged && (plan.userNamespace || plan.switchUser);
  plan.processLimitPerEpisode = plan.processLimit && plan.userNamespace;
  if (!plan.processLimit) {
    plan.fallbacks.push_back(plan.unprivileged
                                 ? "no process limit: without a user namespace RLIMIT_NPROC would count every process of "
                                   "the server's own user"
                                 : "no process limit: the kernel does not enforce RLIMIT_NPROC for root");
  } else if (!plan.processLimitPerEpisode) {
    plan.fallbacks.push_back("the process limit is shared by every episode (no user namespace per episode): " +
                             std::to_string(kSharedProcessLimitFactor) + " times --max-processes for them all");
  }
  plan.landlockAbi = landlockAbi();
  if (plan.landlockAbi < 1) {
    plan.fallbacks.push_back("no Landlock: an external compiler's files, execution and network are confined by "
                             "seccomp and the namespaces only");
  } else if (plan.landlockAbi < 4) {
    plan.fallbacks.push_back("Landlock ABI " + std::to_string(plan.landlockAbi) +
                             " confines no TCP (ABI 4 does): an external compiler relies on the network namespace");
  }
  if (plan.landlockAbi >= 1 && plan.landlockAbi < 6) {
    plan.fallbacks.push_back("Landlock ABI " + std::to_string(plan.landlockAbi) +
                             " does not scope signals (ABI 6 does): an external compiler's worker may signal "
                             "processes of the sandbox user");
  }
  useIsolationPlan(plan);
  return plan;
}

pid_t pidAsSeenByChildren() { return currentPlan().pidNamespace ? 0 : getpid(); }

uint64_t processLimitUnder(const IsolationPlan& plan, uint64_t perEpisode) {
  if (!plan.processLimit || perEpisode == 0) return 0;
  return plan.processLimitPerEpisode ? perEpisode : perEpisode * kSharedProcessLimitFactor;
}

IsolationReport isolationReport(const IsolationPlan& plan) {
  IsolationReport report;
  report.features = {"seccomp", "no_new_privs", "rlimits", "close_fds"};
  struct Optional {
    bool on;
    const char* name;
  };
  const Optional optional[] = {
      {plan.unprivileged, "unprivileged_uid"},   {plan.dropBoundingSet, "capabilities_dropped"},
      {plan.userNamespace, "user_namespace"},    {plan.pidNamespace, "pid_namespace"},
      {plan.networkNamespace, "network_namespace"}, {plan.processLimit, "process_limit"},
      {plan.landlockAbi >= 1, "landlock_filesystem"}, {plan.landlockAbi >= 4, "landlock_network"},
      {plan.landlockAbi >= 6, "landlock_scoped"},
  };
  size_t on = 0;
  for (const Optional& feature : optional) {
    if (!feature.on) continue;
    report.features.push_back(feature.name);
    ++on;
  }
  report.level = on == std::size(optional) ? "full" : on == 0 ? "basic" : "reduced";
  report.fallbacks = plan.fallbacks;
  return report;
}

IsolationReport probeIsolation(const IsolationRequest& request) {
  // enterIsolation() changes the process that calls it: call it in a child
  // and send the report back as lines ("level", features, then fallbacks).
  IsolationReport report{"unknown", {}, {"the sandbox could not be probed"}};
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return report;
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    const IsolationReport found = isolationReport(enterIsolation(request));
    std::string text = found.level + "\n";
    for (const auto& feature : found.features) text += "+" + feature + "\n";
    for (const auto& fallback : found.fallbacks) text += "-" + fallback + "\n";
    (void)!write(fds[1], text.data(), text.size());
    _exit(0);
  }
  close(fds[1]);
  std::string text;
  char buffer[4096];
  ssize_t n;
  while ((n = read(fds[0], buffer, sizeof(buffer))) != 0) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    text.append(buffer, static_cast<size_t>(n));
  }
  close(fds[0]);
  if (pid > 0) {
    while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  if (text.empty()) return report;
  report = {};
  size_t start = 0;
  for (size_t end; (end = text.find('\n', start)) != std::string::npos; start = end + 1) {
    const std::string line = text.substr(start, end - start);
    if (report.level.empty()) {
      report.level = line;
    } else if (!line.empty() && line[0] == '+') {
      report.features.push_back(line.substr(1));
    } else if (!line.empty() && line[0] == '-') {
      report.fallbacks.push_back(line.substr(1));
    }
  }
  return report;
}

}  // namespace forkgym::sandbox
