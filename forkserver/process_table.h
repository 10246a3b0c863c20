// ProcessTable: the zygote's record of its children.
//
// Every worker started for a client connection belongs to a process group of
// its own, which the worker's forks inherit; when the connection closes (the
// client exited or was killed) the zygote kills those groups, so no worker
// outlives its client — even one hung inside a pass, which would never
// notice its channel closing. Exit statuses of reaped children are kept (a
// bounded number) so a client can ask how a worker ended. Zygote only.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <deque>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

namespace forkgym::forkserver {

struct ExitStatus {
  int exitCode = -1;  // -1 when killed by a signal
  int signal = 0;
};

class ProcessTable {
 public:
  void addWorkerGroup(uint64_t connection, pid_t pgid);
  // SIGKILLs every process group started for `connection`.
  void killConnection(uint64_t connection);
  void killAll();

  // Reaps every exited child (waitpid loop), records the statuses and
  // returns them, so the zygote can tell a loader it has ended.
  std::vector<std::pair<pid_t, ExitStatus>> reapChildren();
  void recordExit(pid_t pid, int waitStatus);
  std::optional<ExitStatus> exitStatus(pid_t pid) const;

 private:
  static constexpr size_t kKeptExits = 4096;
  std::unordered_map<uint64_t, std::vector<pid_t>> groups_;
  std::unordered_map<pid_t, ExitStatus> exits_;
  std::deque<pid_t> exitOrder_;
};

}  // namespace forkgym::forkserver
