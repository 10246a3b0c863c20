// TargetMachines built the way the tools whose output forkgym must equal
// build theirs: `opt` (the pipelines) and `clang -c -x ir` (ObjectTextSize
// and a runnable benchmark's program, CompilerGym's definition).
//
// Any process may call these once initializeLlvm() has registered the native
// target; they touch no files.
#pragma once

#include <memory>
#include <string_view>

#include "base/result.h"

namespace llvm {
class TargetMachine;
}

namespace forkgym::passes {

enum class TargetMachineUse {
  // What opt hands to PassBuilder for TTI: no CPU or features (the functions'
  // own "target-cpu"/"target-features" attributes still apply), and
  // CodeGenOptLevel::None because opt's -codegen-opt-level defaults to 0.
  PassPipeline,
  // What `clang -c -x ir` emits with and no -O flag, as CompilerGym measures
  // ObjectTextSizeBytes and builds a benchmark's program: CodeGenOptLevel::None
  // (-O0 codegen: fast instruction selection, fast register allocation),
  // position-independent code (Debian's clang defaults to -fPIE), the
  // driver's default CPU and features for the triple (clang -### shows
  // "-target-cpu x86-64"), and clang's TargetOptions (address-significance
  // tables, .init_array).
  ClangObject,
};

// BenchmarkError when no registered target handles the triple.
Result<std::unique_ptr<llvm::TargetMachine>> createTargetMachine(std::string_view triple,
                                                                  TargetMachineUse use);

}  // namespace forkgym::passes
