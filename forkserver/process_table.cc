#include "forkserver/process_table.h"

#include <signal.h>
#include <sys/wait.h>

#include <cerrno>

namespace forkgym::forkserver {

void ProcessTable::addWorkerGroup(uint64_t connection, pid_t pgid) {
  auto& pgids = groups_[connection];
  // A long-lived connection resets many times: forget groups with no member
  // left, so the list stays short and a reused group id is never killed.
  if (pgids.size() >= 32) std::erase_if(pgids, [](pid_t g) { return kill(-g, 0) != 0 && errno == ESRCH; });
  pgids.push_back(pgid);
}

void ProcessTable::killConnection(uint64_t connection) {
  auto it = groups_.find(connection);
  if (it == groups_.end()) return;
  for (pid_t pgid : it->second) kill(-pgid, SIGKILL);
  groups_.erase(it);
}

void ProcessTable::killAll() {
  for (auto& [connection, pgids] : groups_) {
    for (pid_t pgid : pgids) kill(-pgid, SIGKILL);
  }
  groups_.clear();
}

std::vector<std::pair<pid_t, ExitStatus>> ProcessTable::reapChildren() {
  std::vector<std::pair<pid_t, ExitStatus>> reaped;
  int status = 0;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    recordExit(pid, status);
    reaped.emplace_back(pid, exits_[pid]);
  }
  return reaped;
}

void ProcessTable::recordExit(pid_t pid, int waitStatus) {
  ExitStatus exit;
  if (WIFEXITED(waitStatus)) exit.exitCode = WEXITSTATUS(waitStatus);
  if (WIFSIGNALED(waitStatus)) exit.signal = WTERMSIG(waitStatus);
  if (!exits_.contains(pid)) exitOrder_.push_back(pid);
  exits_[pid] = exit;
  while (exitOrder_.size() > kKeptExits) {
    exits_.erase(exitOrder_.front());
    exitOrder_.pop_front();
  }
}

std::optional<ExitStatus> ProcessTable::exitStatus(pid_t pid) const {
  auto it = exits_.find(pid);
  if (it == exits_.end()) return std::nullopt;
  return it->second;
}

}  // namespace forkgym::forkserver
