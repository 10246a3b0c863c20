#include "forkserver/benchmark_cache.h"

#include <algorithm>

namespace forkgym::forkserver {

CachedEntry* BenchmarkCache::use(Entries::iterator entry) {
  entries_.splice(entries_.begin(), entries_, entry);
  return &entries_.front();
}

BenchmarkCache::Lookup BenchmarkCache::lookup(const BenchmarkKey& key, bool acceptUnsure) {
  auto state = byUri_.find(key);
  if (state == byUri_.end()) return {};
  auto entry = byContent_.find({key.backend, state->second.contentHash});
  if (entry == byContent_.end()) return {};
  const passes::Freshness freshness = passes::check(state->second.inputs);
  if (freshness == passes::Freshness::Fresh || (acceptUnsure && freshness == passes::Freshness::Unsure)) {
    return {use(entry->second), {}};
  }
  return {nullptr, state->second.contentHash};
}

CachedEntry* BenchmarkCache::peek(const BenchmarkKey& key) {
  auto state = byUri_.find(key);
  if (state == byUri_.end()) return nullptr;
  auto entry = byContent_.find({key.backend, state->second.contentHash});
  return entry == byContent_.end() ? nullptr : &*entry->second;
}

CachedEntry* BenchmarkCache::insert(const BenchmarkKey& key, const std::string& contentHash,
                                    std::unique_ptr<passes::CachedBenchmark> benchmark,
                                    passes::BenchmarkInputs inputs) {
  byUri_[key] = UriState{contentHash, std::move(inputs)};
  if (auto existing = byContent_.find({key.backend, contentHash}); existing != byContent_.end()) {
    return use(existing->second);
  }
  const size_t size = benchmark->sizeInCache();
  bytes_ += size;
  entries_.push_front(CachedEntry{key.backend, contentHash, std::move(benchmark), size});
  byContent_[{key.backend, contentHash}] = entries_.begin();
  evictOverBudget();
  return &entries_.front();
}

CachedEntry* BenchmarkCache::confirm(const BenchmarkKey& key, const std::string& contentHash,
                                     passes::BenchmarkInputs inputs) {
  auto entry = byContent_.find({key.backend, contentHash});
  if (entry == byContent_.end()) return nullptr;
  byUri_[key] = UriState{contentHash, std::move(inputs)};
  return use(entry->second);
}

void BenchmarkCache::evictOverBudget() {
  // Never the entry just inserted or used (the front): a session is about to use it.
  while (bytes_ > budgetBytes_ && entries_.size() > 1) {
    auto& victim = entries_.back();
    bytes_ -= victim.bytes;
    std::erase_if(byUri_, [&](const auto& state) {
      return state.first.backend == victim.backend && state.second.contentHash == victim.contentHash;
    });
    byContent_.erase({victim.backend, victim.contentHash});
    entries_.pop_back();
  }
}

std::vector<std::string> BenchmarkCache::uris(const passes::Backend* backend) const {
  std::vector<std::string> result;
  for (const auto& entry : entries_) {
    if (backend && entry.backend != backend) continue;
    std::vector<std::string> same;
    for (const auto& [key, state] : byUri_) {
      if (key.backend == entry.backend && state.contentHash == entry.contentHash) same.push_back(key.uri);
    }
    std::sort(same.begin(), same.end());
    result.insert(result.end(), same.begin(), same.end());
  }
  return result;
}

CachedEntry* BenchmarkCache::find(const passes::Backend* backend, const std::string& contentHash) {
  auto it = byContent_.find({backend, contentHash});
  return it == byContent_.end() ? nullptr : &*it->second;
}

}  // namespace forkgym::forkserver
