// BenchmarkCosts: the instruction count and object .text size of a benchmark
// at its initial state and after the default<O0>, default<O3> and
// default<Oz> pipelines; the denominators of every reward.
//
// Loader child only (runs the full optimisation pipelines and codegen,
// which is slow and may crash on hostile input).
#pragma once

#include <string_view>

#include "base/result.h"
#include "passes/llvm/benchmark.h"

namespace forkgym::passes {

// Each point starts from a fresh parse of `bitcode`, so each baseline equals
// what `opt -passes=default<Ox> initial.bc | llc -filetype=obj` measures.
// Parallel: one thread per point (the loader child, which never forks);
// Serial: on the calling thread (the zygote's warm-up, which must stay
// single-threaded and warm the thread workers will run on).
enum class CostThreads { Parallel, Serial };
Result<BenchmarkCosts> computeBenchmarkCosts(std::string_view bitcode, CostThreads threads = CostThreads::Parallel);

}  // namespace forkgym::passes
