// BenchmarkCosts: the instruction count and object .text size of a benchmark
// at its initial state and after the default<O0>, default<O3> and
// default<Oz> pipelines; the denominators of every reward.
//
// Runs the full optimisation pipelines and codegen, which is slow and may
// crash on hostile input: the zygote's baseline child (every point, for the
// cache), a worker's session (one point it is asked for and lacks), and
// the zygote's warm-up.
#pragma once

#include <string_view>

#include "base/result.h"
#include "passes/llvm/benchmark.h"

namespace forkgym::passes {

// Each point starts from a fresh parse of `bitcode`, so each baseline equals
// what `opt -passes=default<Ox> initial.bc | clang -c -x ir` measures.
// Parallel: one thread per point (tools and tests); Serial: on the calling
// thread (the zygote's warm-up, which must stay single-threaded and warm the
// thread workers will run on; the baseline child, which leaves the other
// cores to the episodes it runs beside).
enum class CostThreads { Parallel, Serial };
Result<BenchmarkCosts> computeBenchmarkCosts(std::string_view bitcode, CostThreads threads = CostThreads::Parallel);

// One point's instruction count, and its object size only if
// `objectTextSize` (the code generation is most of the cost); the size is
// kNotComputed otherwise. On the calling thread.
struct PointCosts {
  int64_t instructionCount = kNotComputed;
  int64_t objectTextSize = kNotComputed;
};
Result<PointCosts> computeCostPoint(std::string_view bitcode, CostPoint point, bool objectTextSize);

}  // namespace forkgym::passes
