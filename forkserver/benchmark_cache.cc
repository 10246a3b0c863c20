#include "forkserver/benchmark_cache.h"

#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>

#include <algorithm>

namespace forkgym::forkserver {

passes::ParsedBenchmark* BenchmarkCache::use(Entries::iterator entry) {
  entries_.splice(entries_.begin(), entries_, entry);
  return &entries_.front();
}

BenchmarkCache::Lookup BenchmarkCache::lookup(const std::string& uri, bool acceptUnsure) {
  auto state = byUri_.find(uri);
  if (state == byUri_.end()) return {};
  auto entry = byHash_.find(state->second.contentHash);
  if (entry == byHash_.end()) return {};
  const passes::Freshness freshness = passes::check(state->second.inputs);
  if (freshness == passes::Freshness::Fresh || (acceptUnsure && freshness == passes::Freshness::Unsure)) {
    return {use(entry->second), {}};
  }
  return {nullptr, state->second.contentHash};
}

passes::ParsedBenchmark* BenchmarkCache::peek(const std::string& uri) {
  auto state = byUri_.find(uri);
  if (state == byUri_.end()) return nullptr;
  auto entry = byHash_.find(state->second.contentHash);
  return entry == byHash_.end() ? nullptr : &*entry->second;
}

passes::ParsedBenchmark* BenchmarkCache::insert(const std::string& uri, passes::ParsedBenchmark benchmark,
                                                passes::BenchmarkInputs inputs) {
  const std::string hash = benchmark.contentHash;
  byUri_[uri] = UriState{hash, std::move(inputs)};
  if (auto existing = byHash_.find(hash); existing != byHash_.end()) return use(existing->second);
  bytes_ += benchmark.approxBytes;
  entries_.push_front(std::move(benchmark));
  byHash_[hash] = entries_.begin();
  evictOverBudget();
  return &entries_.front();
}

passes::ParsedBenchmark* BenchmarkCache::confirm(const std::string& uri, const std::string& contentHash,
                                                 passes::BenchmarkInputs inputs) {
  auto entry = byHash_.find(contentHash);
  if (entry == byHash_.end()) return nullptr;
  byUri_[uri] = UriState{contentHash, std::move(inputs)};
  return use(entry->second);
}

void BenchmarkCache::evictOverBudget() {
  // Never the entry just inserted or used (the front): a session is about to use it.
  while (bytes_ > budgetBytes_ && entries_.size() > 1) {
    auto& victim = entries_.back();
    bytes_ -= victim.approxBytes;
    std::erase_if(byUri_, [&](const auto& state) { return state.second.contentHash == victim.contentHash; });
    byHash_.erase(victim.contentHash);
    entries_.pop_back();
  }
}

std::vector<std::string> BenchmarkCache::uris() const {
  std::vector<std::string> result;
  for (const auto& entry : entries_) {
    std::vector<std::string> same;
    for (const auto& [uri, state] : byUri_) {
      if (state.contentHash == entry.contentHash) same.push_back(uri);
    }
    std::sort(same.begin(), same.end());
    result.insert(result.end(), same.begin(), same.end());
  }
  return result;
}

}  // namespace forkgym::forkserver
