#include "forkserver/pending_loads.h"

#include <unistd.h>

#include <algorithm>

namespace forkgym::forkserver {

Status PendingLoads::join(const BenchmarkKey& key, const passes::LoadRequest& request,
                          std::optional<SessionRequest> waiter) {
  auto it = loads_.find(key);
  if (it == loads_.end()) {
    const sandbox::FsIdentity server{geteuid(), getegid(), {}};
    auto child = LoaderChild::start(*key.backend, request, limits_, waiter ? waiter->client : server, gate_);
    if (!child) return child.takeError();
    it = loads_.emplace(key, Load{std::move(*child), {}, !waiter.has_value()}).first;
  }
  if (waiter) {
    it->second.waiters.push_back(std::move(*waiter));
  } else {
    it->second.preload = true;
  }
  return okStatus();
}

std::vector<std::pair<std::string, uint32_t>> PendingLoads::status() const {
  std::vector<std::pair<std::string, uint32_t>> out;
  for (const auto& [key, load] : loads_) out.emplace_back(key.uri, static_cast<uint32_t>(load.waiters.size()));
  return out;
}

void PendingLoads::addPollFds(std::vector<pollfd>& fds) const {
  for (const auto& [key, load] : loads_) {
    if (!load.child.resultComplete()) fds.push_back({load.child.resultFd(), POLLIN, 0});
  }
}

int PendingLoads::msUntilNextDeadline() const {
  if (loads_.empty()) return -1;
  auto earliest = std::chrono::steady_clock::time_point::max();
  for (const auto& [key, load] : loads_) earliest = std::min(earliest, load.child.deadline());
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(earliest - std::chrono::steady_clock::now());
  return static_cast<int>(std::clamp<int64_t>(left.count(), 0, 24 * 3600 * 1000));
}

void PendingLoads::onReadable(int fd) {
  for (auto it = loads_.begin(); it != loads_.end(); ++it) {
    if (it->second.child.resultComplete() || it->second.child.resultFd() != fd) continue;
    it->second.child.readAvailable();
    if (it->second.child.done()) finishWith(it, it->second.child.finish());
    return;
  }
}

void PendingLoads::onExit(pid_t pid, const ExitStatus& status) {
  for (auto it = loads_.begin(); it != loads_.end(); ++it) {
    if (it->second.child.pid() != pid) continue;
    it->second.child.exited(status);
    // The pipe normally closed already; if not, nothing more can come.
    it->second.child.readAvailable();
    if (it->second.child.done()) finishWith(it, it->second.child.finish());
    return;
  }
}

void PendingLoads::expire() {
  const auto now = std::chrono::steady_clock::now();
  for (auto it = loads_.begin(); it != loads_.end();) {
    auto next = std::next(it);
    if (it->second.child.deadline() <= now) {
      it->second.child.kill();
      finishWith(it, makeError(Outcome::BenchmarkError,
                               "loading '" + it->first.uri + "' took longer than " +
                                   std::to_string(limits_.timeout.count()) +
                                   " s and was stopped (forkgym-server --load-timeout)"));
    }
    it = next;
  }
}

void PendingLoads::abandon(uint64_t connection) {
  for (auto it = loads_.begin(); it != loads_.end();) {
    auto next = std::next(it);
    auto& waiters = it->second.waiters;
    std::erase_if(waiters, [&](const SessionRequest& w) { return w.connection == connection; });
    // Destroying the LoaderChild kills the loader and its compilers.
    if (waiters.empty() && !it->second.preload) loads_.erase(it);
    it = next;
  }
}

std::vector<PendingLoads::Finished> PendingLoads::takeFinished() { return std::exchange(finished_, {}); }

void PendingLoads::finishWith(std::map<BenchmarkKey, Load>::iterator load, Result<passes::LoadedBenchmark> result) {
  finished_.push_back(Finished{load->first, std::move(result), std::move(load->second.waiters), load->second.preload});
  loads_.erase(load);
}

}  // namespace forkgym::forkserver
