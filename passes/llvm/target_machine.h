// TargetMachines built the way `opt` and `llc` build theirs when given no
// -mcpu/-mattr/-relocation-model flags, so that an episode replayed with
// those tools gives the same IR and the same object code.
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
  // What `llc -filetype=obj` emits with: CodeGenOptLevel::Default (-O2).
  ObjectEmission,
  // What `clang -c` of bitcode emits a runnable benchmark's program with
  // (CompilerGym builds with clang $IN): CodeGenOptLevel::None (-O0
  // codegen) and position-independent code, as the default PIE link needs.
  Program,
};

// BenchmarkError when no registered target handles the triple.
Result<std::unique_ptr<llvm::TargetMachine>> createTargetMachine(std::string_view triple,
                                                                  TargetMachineUse use);

}  // namespace forkgym::passes
