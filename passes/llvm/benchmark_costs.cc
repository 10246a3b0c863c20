#include "passes/llvm/benchmark_costs.h"

#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>

#include <optional>
#include <thread>
#include <vector>

#include "passes/llvm/bitcode.h"
#include "passes/llvm/diagnostics.h"
#include "passes/llvm/object_size.h"
#include "passes/llvm/pipeline_runner.h"

namespace forkgym::passes {
namespace {

constexpr std::string_view kPipelines[kCostPointCount] = {
    /*kInitial=*/"",
    /*kO0=*/"default<O0>",
    /*kO3=*/"default<O3>",
    /*kOz=*/"default<Oz>",
};

}  // namespace

// One cost point on a fresh parse in its own LLVMContext, so points share no
// LLVM state and can run on separate threads.
Result<PointCosts> computeCostPoint(std::string_view bitcode, CostPoint point, bool objectTextSize) {
  llvm::LLVMContext context;
  DiagnosticLog diagnostics;
  diagnostics.installOn(context);
  auto module = parseBitcode(bitcode, context, "the benchmark");
  if (!module.ok()) return module.takeError();

  // Only a point whose size is wanted needs the optimised module's bitcode.
  std::string optimised;
  if (!kPipelines[point].empty()) {
    auto runner = PipelineRunner::create(**module);
    if (!runner.ok()) return runner.takeError();
    auto ran = (*runner)->run(kPipelines[point]);
    if (!ran.ok()) return ran.takeError();
    if (diagnostics.hasErrors()) {
      return makeError(Outcome::BenchmarkError, std::string(kPipelines[point]) +
                                                    " failed on the benchmark: " +
                                                    diagnostics.takeErrors());
    }
    if (objectTextSize) optimised = writeBitcode(**module);
  }
  PointCosts costs;
  costs.instructionCount = static_cast<int64_t>((*module)->getInstructionCount());
  if (!objectTextSize) return costs;
  auto textSize = passes::objectTextSize(optimised.empty() ? bitcode : std::string_view(optimised));
  // A target without object files (NVPTX): the benchmark loads, its object
  // sizes are unavailable.
  if (!textSize.ok() && textSize.error().outcome != Outcome::InvalidRequest) return textSize.takeError();
  costs.objectTextSize = textSize.ok() ? *textSize : kNoObjectFile;
  return costs;
}

Result<BenchmarkCosts> computeBenchmarkCosts(std::string_view bitcode, CostThreads threads) {
  // The four points are independent; computing them on threads roughly
  // halves a benchmark's first load on two cores.
  std::vector<std::optional<Result<PointCosts>>> results(kCostPointCount);
  if (threads == CostThreads::Parallel) {
    std::vector<std::thread> workers;
    for (int point = kInitial; point < kCostPointCount; ++point) {
      workers.emplace_back([&, point] {
        results[point].emplace(computeCostPoint(bitcode, static_cast<CostPoint>(point), true));
      });
    }
    for (auto& worker : workers) worker.join();
  } else {
    for (int point = kInitial; point < kCostPointCount; ++point) {
      results[point].emplace(computeCostPoint(bitcode, static_cast<CostPoint>(point), true));
    }
  }
  BenchmarkCosts costs;
  for (int point = kInitial; point < kCostPointCount; ++point) {
    if (!results[point]->ok()) return results[point]->takeError();
    costs.instructionCount[point] = (*results[point])->instructionCount;
    costs.objectTextSize[point] = (*results[point])->objectTextSize;
  }
  return costs;
}

}  // namespace forkgym::passes
