// Isolation: which identity and namespaces sandboxed children get, decided
// once by the zygote from what the kernel and the server's user allow, and
// reported as the sandbox level (hello, --help, the log, the README's
// threat model).
//
// Lifecycle (zygote only, single-threaded, before it forks any child):
//   1. enterIsolation(request) enters the service-wide namespaces — a user
//      namespace first when the server is not root (it owns the others), a
//      network namespace (the service needs only path-bound Unix sockets,
//      which work across network namespaces), and a PID namespace whose init
//      is a tiny reaper forked here, so every later child of the zygote lives
//      in it. (env.fork() clones with CLONE_PARENT, which the kernel refuses
//      from a PID namespace's init: a worker cannot be pid 1 of its own.)
//      It then tries the per-child features (sandbox user, own user
//      namespace, no capabilities) in a throwaway child, and keeps those that
//      work. Whatever the kernel refuses falls back, with the reason kept.
//   2. Every child forked afterwards applies the identity stages of its
//      profile (sandbox.h) following that plan.
//   3. isolationReport() says what is active: the level and its features.
// The reaper lives until the zygote is gone and the namespace is empty:
// running episodes outlive a killed zygote (their clients reconnect), and a
// PID namespace's processes die with its init.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace forkgym::sandbox {

struct IsolationRequest {
  // The identity a root server gives its children (nobody:nogroup by
  // default). A server run by another user keeps its own uid.
  uid_t sandboxUid = 65534;
  gid_t sandboxGid = 65534;
  bool namespaces = true;  // false: no namespaces at all (--no-namespaces)
};

// What the identity stages of every child do (identity.h), and what is
// reported.
struct IsolationPlan {
  bool switchUser = false;  // root server: children move to uid/gid
  uid_t uid = 0;
  gid_t gid = 0;
  bool userNamespace = false;     // each child unshares a user namespace of its own
  bool dropBoundingSet = false;   // the capability bounding set is emptied too
  bool unprivileged = false;      // children run with a non-root uid
  bool pidNamespace = false;      // children share a PID namespace with only each other
  bool networkNamespace = false;  // children (and the zygote) have no network
  // RLIMIT_NPROC holds: the uid is not root. perEpisode: counted per user
  // namespace, i.e. per episode tree; else shared by all of the uid's processes.
  bool processLimit = false;
  bool processLimitPerEpisode = false;
  // The kernel's Landlock ABI (0: none), which confines external-compiler
  // profiles (profile.h): 1+ files and execution, 4+ TCP, 6+ signals and
  // abstract Unix sockets.
  int landlockAbi = 0;
  // The zygote's end of the reaper's lifeline (-1 without a PID namespace):
  // closing it tells the reaper the zygote is gone. Never inherited past
  // exec (O_CLOEXEC); sandboxed children close it with everything else.
  int reaperLifeline = -1;
  pid_t reaperPid = -1;  // as the zygote sees it
  std::vector<std::string> fallbacks;  // why each missing feature is missing
};

struct IsolationReport {
  std::string level;                  // "full", "reduced" or "basic"
  std::vector<std::string> features;  // stable names, e.g. "pid_namespace"
  std::vector<std::string> fallbacks; // one sentence per feature that is off
};

// Step 1. Never fails: a feature the kernel refuses is left off, with the
// reason in fallbacks (a PID namespace whose reaper cannot start is left
// again, so no worker ever becomes its init).
IsolationPlan enterIsolation(const IsolationRequest& request);

// The plan identity stages follow in this process; enterIsolation() sets it,
// tests set their own. Children inherit it with the rest of their memory.
void useIsolationPlan(const IsolationPlan& plan);
const IsolationPlan& currentPlan();

// What getppid() returns in a child of this process while this process
// lives: its pid, or 0 once it has entered a PID namespace for its children
// (their parent then lies outside their namespace). A child that sees
// anything else has been orphaned. Zygote only, after enterIsolation().
pid_t pidAsSeenByChildren();

// The RLIMIT_NPROC a child sets for a limit of `perEpisode` processes per
// episode: the kernel counts per (user namespace, uid), so with a user
// namespace per episode it is `perEpisode`; with one uid shared by every
// episode it is kSharedProcessLimitFactor times that; 0 (leave the limit
// alone) where it would not hold (root) or would count the server user's own
// unrelated processes.
inline constexpr uint64_t kSharedProcessLimitFactor = 16;
uint64_t processLimitUnder(const IsolationPlan& plan, uint64_t perEpisode);

// Step 3: level and features of a plan. Features always on in a worker:
// seccomp, no_new_privs, rlimits, close_fds. Landlock's parts are features
// of external-compiler profiles: landlock_filesystem, landlock_network,
// landlock_scoped.
IsolationReport isolationReport(const IsolationPlan& plan);

// What enterIsolation(request) would give, decided in a throwaway child that
// tries it all (for forkgym-server --help). Changes nothing in the caller.
IsolationReport probeIsolation(const IsolationRequest& request);

}  // namespace forkgym::sandbox
