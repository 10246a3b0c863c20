#include "forkserver/spare_pool.h"

#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>

namespace forkgym::forkserver {
namespace {

void kill(SpareWorker& spare) {
  // Closing our ends would also end it, but only once it next looks; kill now.
  syscall(SYS_pidfd_send_signal, spare.pidfd.get(), SIGKILL, nullptr, 0);
}

}  // namespace

std::optional<SpareWorker> SparePool::take(const std::string& uri, const std::string& contentHash) {
  auto it = std::find_if(spares_.begin(), spares_.end(), [&](const SpareWorker& s) { return s.uri == uri; });
  if (it == spares_.end()) return std::nullopt;
  SpareWorker spare = std::move(*it);
  spares_.erase(it);
  if (spare.contentHash != contentHash) {
    kill(spare);  // the benchmark's content changed since it was forked
    return std::nullopt;
  }
  return spare;
}

void SparePool::want(const std::string& uri) {
  std::erase(wanted_, uri);
  wanted_.push_front(uri);
  while (wanted_.size() > capacity_) {
    // A copy: dropBenchmark() erases from wanted_, which the back() reference
    // points into.
    const std::string leastRecent = wanted_.back();
    dropBenchmark(leastRecent);
  }
}

std::optional<std::string> SparePool::nextWanted() const {
  for (const auto& uri : wanted_) {
    const bool have = std::any_of(spares_.begin(), spares_.end(), [&](const SpareWorker& s) { return s.uri == uri; });
    if (!have) return uri;
  }
  return std::nullopt;
}

std::vector<std::string> SparePool::readyBenchmarks() const {
  std::vector<std::string> uris;
  for (const auto& spare : spares_) uris.push_back(spare.uri);
  return uris;
}

size_t SparePool::wantedWithoutSpare() const {
  return static_cast<size_t>(std::count_if(wanted_.begin(), wanted_.end(), [&](const std::string& uri) {
    return std::none_of(spares_.begin(), spares_.end(), [&](const SpareWorker& s) { return s.uri == uri; });
  }));
}

void SparePool::add(SpareWorker spare) {
  if (std::find(wanted_.begin(), wanted_.end(), spare.uri) == wanted_.end()) {
    kill(spare);
    return;
  }
  spares_.push_back(std::move(spare));
}

void SparePool::dropBenchmark(const std::string& uri) {
  std::erase(wanted_, uri);
  for (auto& spare : spares_) {
    if (spare.uri == uri) kill(spare);
  }
  std::erase_if(spares_, [&](const SpareWorker& s) { return s.uri == uri; });
}

void SparePool::killAll() {
  for (auto& spare : spares_) kill(spare);
  spares_.clear();
  wanted_.clear();
}

}  // namespace forkgym::forkserver
