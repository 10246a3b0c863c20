#include "passes/llvm/llvm_tools.h"

#ifndef FORKGYM_LLVM_BIN_DIR
#error "FORKGYM_LLVM_BIN_DIR must name the LLVM tools directory (passes/CMakeLists.txt sets it)"
#endif

namespace forkgym::passes {

std::string llvmToolPath(std::string_view tool) {
  return std::string(FORKGYM_LLVM_BIN_DIR) + "/" + std::string(tool);
}

}  // namespace forkgym::passes
