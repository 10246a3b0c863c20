#include "passes/benchmark_costs.h"

#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>

#include "passes/bitcode.h"
#include "passes/diagnostics.h"
#include "passes/object_size.h"
#include "passes/pipeline_runner.h"

namespace forkgym::passes {
namespace {

constexpr std::string_view kPipelines[kCostPointCount] = {
    /*kInitial=*/"",
    /*kO0=*/"default<O0>",
    /*kO3=*/"default<O3>",
    /*kOz=*/"default<Oz>",
};

}  // namespace

Result<BenchmarkCosts> computeBenchmarkCosts(std::string_view bitcode) {
  BenchmarkCosts costs;
  for (int point = kInitial; point < kCostPointCount; ++point) {
    llvm::LLVMContext context;
    DiagnosticLog diagnostics;
    diagnostics.installOn(context);
    auto module = parseBitcode(bitcode, context, "the benchmark");
    if (!module.ok()) return module.takeError();

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
      optimised = writeBitcode(**module);
    }
    costs.instructionCount[point] = static_cast<int64_t>((*module)->getInstructionCount());
    auto textSize = objectTextSize(optimised.empty() ? bitcode : std::string_view(optimised));
    if (!textSize.ok()) return textSize.takeError();
    costs.objectTextSize[point] = *textSize;
  }
  return costs;
}

}  // namespace forkgym::passes
