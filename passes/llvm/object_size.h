// The code-size cost, CompilerGym's definition: Berkeley "text" size (what
// llvm-size prints first: executable and read-only allocated sections) of
// the object file `clang -c -x ir` makes of the module's bitcode with no -O
// flag, i.e. clang's -O0 pipeline (the always-inliner) and -O0 code
// generation, emitted in memory.
// Any process; no files, no subprocesses.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"
#include "passes/llvm/target_machine.h"

namespace forkgym::passes {

// Takes bitcode rather than a Module: codegen mutates the IR it is given, and
// a fresh parse in a private context is exactly what clang sees (use-list
// order included), so the result matches clang-19 -c -x ir + llvm-size on the
// same bytes (tests/passes/object_size_test.cc runs both).
// A target that emits no object files (NVPTX writes PTX assembly only, as
// for clgen-v0's OpenCL kernels): an InvalidRequest saying the
// ObjectTextSize spaces are unavailable for the benchmark (the episode goes
// on); its baselines are recorded as kNoObjectFile.
Result<int64_t> objectTextSize(std::string_view bitcode);

// The object file `clang -c -x ir` makes (what objectTextSize() measures),
// for the runner to link; `addressSanitizer`: instrumented as clang
// -fsanitize=address would (link with -fsanitize=address).
Result<std::string> emitObject(std::string_view bitcode, bool addressSanitizer);

inline constexpr int64_t kNoObjectFile = -1;
Error noObjectFile(std::string_view triple);

}  // namespace forkgym::passes
