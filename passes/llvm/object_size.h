// The code-size cost: Berkeley "text" size (what llvm-size prints first) of
// the object file for the module, emitted in memory as `llc -filetype=obj`
// would with no other flags.
// Any process; no files, no subprocesses.
#pragma once

#include <cstdint>
#include <string_view>

#include "base/result.h"

namespace forkgym::passes {

// Takes bitcode rather than a Module: codegen mutates the IR it is given, and
// a fresh parse in a private context is exactly what llc sees (use-list
// order included), so the result matches llc + llvm-size on the same bytes.
Result<int64_t> objectTextSize(std::string_view bitcode);

}  // namespace forkgym::passes
