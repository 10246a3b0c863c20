// ProcessIdentity: who a pidfd received from a peer really names.
//
// The client SIGKILLs workers through pidfds the zygote (new sessions) and
// the workers themselves (env.fork()) send it. A compromised worker could
// send a pidfd of any process it can open; the client must signal only
// processes it has identified as its own episodes' workers. The kernel says
// which process a pidfd names and its parent (PIDFD_GET_INFO, or
// /proc/self/fdinfo "Pid:" and /proc/<pid>/stat on older kernels), and
// getpgid() or that stat its process group; and a final check that the pidfd has
// not exited proves the stat read described that same process, not a later
// one that reused its pid.
//
// Lifecycle (client process, any thread):
//   1. identify(pidfd, claimedPid) right after receiving the descriptor.
//   2. The caller compares parent and group with what it expects (the
//      zygote's pid; the parent worker's group) and refuses the descriptor —
//      closing it, never signalling it — when they differ.
#pragma once

#include <sys/types.h>

#include "base/result.h"

namespace forkgym {

struct ProcessIdentity {
  bool exited = false;  // gone before it could be identified: nothing below is known
  pid_t pid = -1;
  pid_t parent = -1;
  pid_t group = -1;
};

// ProtocolMismatch when the pidfd names another pid than claimed (or is not
// a pidfd at all). An exited process is reported, not refused: signalling it
// through its pidfd can reach no other process. The claim may be the pid in
// this process's PID namespace or in the target's own: a worker names its
// env.fork() copy as it sees it, inside the workers' PID namespace
// (sandbox/isolation.h). ProcessIdentity::pid is always ours.
Result<ProcessIdentity> identify(int pidfd, pid_t claimedPid);

// The same answer from /proc alone (fdinfo, then /proc/<pid>/stat): what
// identify() does where the kernel has no PIDFD_GET_INFO (before Linux
// 6.13, Debian 12's 6.1 among them). Declared for its tests.
Result<ProcessIdentity> identifyThroughProc(int pidfd, pid_t claimedPid);

}  // namespace forkgym
