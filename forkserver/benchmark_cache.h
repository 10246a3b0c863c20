// BenchmarkCache: parsed benchmark modules kept in the zygote so a reset
// re-parses nothing — workers start from a copy-on-write view of them.
//
// Least-recently-used entries are evicted once the estimated size passes the
// budget (--cache-mb); each entry owns its LLVMContext, so eviction frees
// everything the module allocated. Zygote process only.
#pragma once

#include <cstddef>
#include <list>
#include <string>
#include <unordered_map>
#include <vector>

#include "passes/benchmark.h"

namespace forkgym::forkserver {

class BenchmarkCache {
 public:
  explicit BenchmarkCache(size_t budgetBytes) : budgetBytes_(budgetBytes) {}

  // The entry for a canonical URI, marked most recently used; or nullptr.
  passes::ParsedBenchmark* find(const std::string& uri);
  // Inserts, then evicts least-recently-used others until within budget.
  passes::ParsedBenchmark* insert(passes::ParsedBenchmark benchmark);

  std::vector<std::string> uris() const;
  size_t bytes() const { return bytes_; }

 private:
  using Entries = std::list<passes::ParsedBenchmark>;
  size_t budgetBytes_;
  size_t bytes_ = 0;
  Entries entries_;  // front = most recently used
  std::unordered_map<std::string, Entries::iterator> index_;
};

}  // namespace forkgym::forkserver
