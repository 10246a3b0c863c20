// BenchmarkKey: which benchmark of which backend — the key of the zygote's
// benchmark cache, its pending loads and its spare workers. Two backends
// loading the same file make different things (LLVM a module, gcc
// preprocessed source), so the backend is part of the key; so is a source
// dataset's recipe (its flags may change with its dataset.ini).
// Zygote only.
#pragma once

#include <compare>
#include <string>

#include "passes/backend.h"

namespace forkgym::forkserver {

struct BenchmarkKey {
  const passes::Backend* backend = nullptr;
  std::string uri;  // the source a loader reads (passes::BenchmarkLocation::source)
  passes::SourceRecipe recipe;  // passes::BenchmarkLocation::recipe

  auto operator<=>(const BenchmarkKey&) const = default;
  bool operator==(const BenchmarkKey&) const = default;
};

}  // namespace forkgym::forkserver
