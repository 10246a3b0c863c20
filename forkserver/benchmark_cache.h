// BenchmarkCache: parsed benchmark modules kept in the zygote so a reset
// re-parses nothing — workers start from a copy-on-write view of them.
//
// Modules are keyed by content (the loader's content hash), and each URI
// remembers which content it was last loaded as and the files that content
// was read from. A reset checks those files (one stat() each; a .c file
// and the headers it includes outside the system directories): if they are
// as they were, the cached module is the program on disk; if not, the URI is
// loaded again (and, should its content turn out the same, the module cached
// for it serves on). Two URIs with the same content share one module.
//
// Least-recently-used modules are evicted once the estimated size passes the
// budget (--cache-mb); each owns its LLVMContext, so eviction frees
// everything it allocated. Zygote process only.
#pragma once

#include <cstddef>
#include <list>
#include <string>
#include <unordered_map>
#include <vector>

#include "passes/llvm/benchmark.h"
#include "passes/benchmark_inputs.h"

namespace forkgym::forkserver {

class BenchmarkCache {
 public:
  explicit BenchmarkCache(size_t budgetBytes) : budgetBytes_(budgetBytes) {}

  struct Lookup {
    passes::ParsedBenchmark* fresh = nullptr;  // the program on disk now: serve it
    // Otherwise, the content hash cached for this URI (empty if none), for
    // the load to compare with before it compiles anything.
    std::string knownHash;
  };
  // Checks the URI's files and marks its module most recently used. With
  // acceptUnsure, files unchanged since a load that just ended count as
  // fresh even when that load read them right after they were written.
  Lookup lookup(const std::string& uri, bool acceptUnsure = false);
  // The module last loaded for `uri`, without checking its files (to fork a
  // spare worker ahead of time; the reset that takes it checks).
  passes::ParsedBenchmark* peek(const std::string& uri);
  // After a load of `uri`: its module — or the one already cached for the
  // same content — serves the URI, whose files are `inputs`. Then evicts
  // least-recently-used modules until within budget.
  passes::ParsedBenchmark* insert(const std::string& uri, passes::ParsedBenchmark benchmark,
                                  passes::BenchmarkInputs inputs);
  // After a load that found `uri`'s content still `contentHash`: its files'
  // new stat. Null if that content has been evicted meanwhile.
  passes::ParsedBenchmark* confirm(const std::string& uri, const std::string& contentHash,
                                   passes::BenchmarkInputs inputs);

  // URIs whose content is cached, most recently used first.
  std::vector<std::string> uris() const;
  size_t bytes() const { return bytes_; }

 private:
  using Entries = std::list<passes::ParsedBenchmark>;
  struct UriState {
    std::string contentHash;
    passes::BenchmarkInputs inputs;
  };
  passes::ParsedBenchmark* use(Entries::iterator entry);
  void evictOverBudget();

  size_t budgetBytes_;
  size_t bytes_ = 0;
  Entries entries_;  // front = most recently used
  std::unordered_map<std::string, Entries::iterator> byHash_;
  std::unordered_map<std::string, UriState> byUri_;
};

}  // namespace forkgym::forkserver
