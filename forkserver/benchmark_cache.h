// BenchmarkCache: what each backend made of a benchmark (a parsed LLVM
// module, gcc's preprocessed source...), kept in the zygote so a reset
// rebuilds nothing — workers start from a copy-on-write view of it. What an
// entry holds is opaque here (passes::CachedBenchmark).
//
// Entries are keyed by backend and content (the loader's content hash),
// and each benchmark (BenchmarkKey: backend and source URI) remembers which
// content it was last loaded as and the files that content was read from.
// A reset checks those files (one stat() each; a .c file and the headers it
// includes outside the system directories): if they are as they were, the
// cached entry is the program on disk; if not, the benchmark is loaded again
// (and, should its content turn out the same, the entry cached for it
// serves on). Two URIs with the same content share one entry.
//
// Least-recently-used entries are evicted once the estimated size passes
// the budget (--cache-mb); each owns everything it allocated, so eviction
// frees it. Zygote process only.
#pragma once

#include <cstddef>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "forkserver/benchmark_key.h"
#include "passes/backend.h"
#include "passes/benchmark_inputs.h"

namespace forkgym::forkserver {

// One cached content of one backend.
struct CachedEntry {
  const passes::Backend* backend = nullptr;
  std::string contentHash;
  std::unique_ptr<passes::CachedBenchmark> benchmark;
  size_t bytes = 0;
};

class BenchmarkCache {
 public:
  explicit BenchmarkCache(size_t budgetBytes) : budgetBytes_(budgetBytes) {}

  struct Lookup {
    CachedEntry* fresh = nullptr;  // the program on disk now: serve it
    // Otherwise, the content hash cached for this benchmark (empty if none),
    // for the load to compare with before it builds anything.
    std::string knownHash;
  };
  // Checks the benchmark's files and marks its entry most recently used.
  // With acceptUnsure, files unchanged since a load that just ended count as
  // fresh even when that load read them right after they were written.
  Lookup lookup(const BenchmarkKey& key, bool acceptUnsure = false);
  // The entry last loaded for `key`, without checking its files (to fork a
  // spare worker ahead of time; the reset that takes it checks).
  CachedEntry* peek(const BenchmarkKey& key);
  // After a load of `key`: its entry — or the one already cached for the
  // same content — serves the benchmark, whose files are `inputs`. Then
  // evicts least-recently-used entries until within budget.
  CachedEntry* insert(const BenchmarkKey& key, const std::string& contentHash,
                      std::unique_ptr<passes::CachedBenchmark> benchmark, passes::BenchmarkInputs inputs);
  // After a load that found `key`'s content still `contentHash`: its files'
  // new stat. Null if that content has been evicted meanwhile.
  CachedEntry* confirm(const BenchmarkKey& key, const std::string& contentHash, passes::BenchmarkInputs inputs);

  // The entry for `backend`'s `contentHash`, if cached (not marked used).
  CachedEntry* find(const passes::Backend* backend, const std::string& contentHash);

  // `backend`'s benchmark URIs whose content is cached, most recently used
  // first (all backends' when null).
  std::vector<std::string> uris(const passes::Backend* backend = nullptr) const;
  size_t bytes() const { return bytes_; }

 private:
  using Entries = std::list<CachedEntry>;
  using ContentKey = std::pair<const passes::Backend*, std::string>;
  struct UriState {
    std::string contentHash;
    passes::BenchmarkInputs inputs;
  };
  CachedEntry* use(Entries::iterator entry);
  void evictOverBudget();

  size_t budgetBytes_;
  size_t bytes_ = 0;
  Entries entries_;  // front = most recently used
  std::map<ContentKey, Entries::iterator> byContent_;
  std::map<BenchmarkKey, UriState> byUri_;
};

}  // namespace forkgym::forkserver
