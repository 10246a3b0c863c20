// The command-line tools of the LLVM this server was built against
// (LLVM_TOOLS_BINARY_DIR at configure time, e.g. /usr/lib/llvm-19/bin).
//
// Any process may call these. The loader runs clang and llvm-stress from
// here; reproducers name opt from here, because a machine with several LLVMs
// may put another version's `opt` first on PATH, and that one misreads or
// refuses LLVM 19 bitcode.
#pragma once

#include <string>
#include <string_view>

namespace forkgym::passes {

// Absolute path of `tool` (e.g. "opt", "clang") in the build's LLVM.
std::string llvmToolPath(std::string_view tool);

}  // namespace forkgym::passes
