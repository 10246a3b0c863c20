// The code-size cost: Berkeley "text" size (what llvm-size prints first) of
// the object file for the module, emitted in memory as `llc -filetype=obj`
// would with no other flags.
// Any process; no files, no subprocesses.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"
#include "passes/llvm/target_machine.h"

namespace forkgym::passes {

// Takes bitcode rather than a Module: codegen mutates the IR it is given, and
// a fresh parse in a private context is exactly what llc sees (use-list
// order included), so the result matches llc + llvm-size on the same bytes.
// A target that emits no object files (NVPTX writes PTX assembly only, as
// for clgen-v0's OpenCL kernels): an InvalidRequest saying the
// ObjectTextSize spaces are unavailable for the benchmark (the episode goes
// on); its baselines are recorded as kNoObjectFile.
Result<int64_t> objectTextSize(std::string_view bitcode);

// The object file itself (what objectTextSize() measures), for the runner
// to link; `addressSanitizer`: instrumented as clang -fsanitize=address
// would (link with -fsanitize=address).
// `use`: Program for a runnable benchmark's program (-O0 codegen, PIC).
Result<std::string> emitObject(std::string_view bitcode, bool addressSanitizer,
                               TargetMachineUse use = TargetMachineUse::Program);

inline constexpr int64_t kNoObjectFile = -1;
Error noObjectFile(std::string_view triple);

}  // namespace forkgym::passes
