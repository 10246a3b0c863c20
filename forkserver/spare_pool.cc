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

std::optional<SpareWorker> SparePool::take(const SpareKey& key, const std::string& contentHash) {
  auto it = std::find_if(spares_.begin(), spares_.end(), [&](const SpareWorker& s) { return s.key == key; });
  if (it == spares_.end()) return std::nullopt;
  SpareWorker spare = std::move(*it);
  spares_.erase(it);
  if (spare.contentHash != contentHash) {
    kill(spare);  // the benchmark's content changed since it was forked
    return std::nullopt;
  }
  return spare;
}

void SparePool::want(const SpareKey& key) {
  std::erase(wanted_, key);
  wanted_.push_front(key);
  while (wanted_.size() > capacity_) {
    // A copy: dropBenchmark() erases from wanted_, which the back() reference
    // points into.
    const SpareKey leastRecent = wanted_.back();
    drop(leastRecent);
  }
}

std::optional<SpareKey> SparePool::nextWanted() const {
  for (const auto& key : wanted_) {
    const bool have = std::any_of(spares_.begin(), spares_.end(), [&](const SpareWorker& s) { return s.key == key; });
    if (!have) return key;
  }
  return std::nullopt;
}

std::vector<std::string> SparePool::readyBenchmarks() const {
  std::vector<std::string> uris;
  for (const auto& spare : spares_) uris.push_back(spare.key.benchmark.uri);
  return uris;
}

size_t SparePool::wantedWithoutSpare() const {
  return static_cast<size_t>(std::count_if(wanted_.begin(), wanted_.end(), [&](const SpareKey& key) {
    return std::none_of(spares_.begin(), spares_.end(), [&](const SpareWorker& s) { return s.key == key; });
  }));
}

void SparePool::add(SpareWorker spare) {
  if (std::find(wanted_.begin(), wanted_.end(), spare.key) == wanted_.end()) {
    kill(spare);
    return;
  }
  spares_.push_back(std::move(spare));
}

void SparePool::drop(const SpareKey& key) {
  std::erase(wanted_, key);
  for (auto& spare : spares_) {
    if (spare.key == key) kill(spare);
  }
  std::erase_if(spares_, [&](const SpareWorker& s) { return s.key == key; });
}

void SparePool::dropBenchmark(const BenchmarkKey& benchmark) {
  std::vector<SpareKey> keys;
  for (const auto& key : wanted_) {
    if (key.benchmark == benchmark) keys.push_back(key);
  }
  for (const auto& spare : spares_) {
    if (spare.key.benchmark == benchmark) keys.push_back(spare.key);
  }
  for (const auto& key : keys) drop(key);
}

void SparePool::killAll() {
  for (auto& spare : spares_) kill(spare);
  spares_.clear();
  wanted_.clear();
}

}  // namespace forkgym::forkserver
