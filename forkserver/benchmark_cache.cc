#include "forkserver/benchmark_cache.h"

#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>

namespace forkgym::forkserver {

passes::ParsedBenchmark* BenchmarkCache::find(const std::string& uri) {
  auto it = index_.find(uri);
  if (it == index_.end()) return nullptr;
  entries_.splice(entries_.begin(), entries_, it->second);
  return &entries_.front();
}

passes::ParsedBenchmark* BenchmarkCache::insert(passes::ParsedBenchmark benchmark) {
  if (auto it = index_.find(benchmark.uri); it != index_.end()) {
    bytes_ -= it->second->approxBytes;
    entries_.erase(it->second);
    index_.erase(it);
  }
  bytes_ += benchmark.approxBytes;
  entries_.push_front(std::move(benchmark));
  index_[entries_.front().uri] = entries_.begin();
  // Never evict the entry just inserted: a session is about to use it.
  while (bytes_ > budgetBytes_ && entries_.size() > 1) {
    auto& victim = entries_.back();
    bytes_ -= victim.approxBytes;
    index_.erase(victim.uri);
    entries_.pop_back();
  }
  return &entries_.front();
}

std::vector<std::string> BenchmarkCache::uris() const {
  std::vector<std::string> result;
  for (const auto& entry : entries_) result.push_back(entry.uri);
  return result;
}

}  // namespace forkgym::forkserver
