// The InstCount observation: CompilerGym's 70 counters (3 totals, then one
// count per opcode in Instruction.def order).
// Any process; reads the module only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace llvm {
class Module;
}

namespace forkgym::passes {

constexpr size_t kInstCountFeatureCount = 70;

std::vector<int64_t> instCountFeatures(const llvm::Module& module);

// Feature names in vector order.
std::span<const std::string_view> instCountFeatureNames();

}  // namespace forkgym::passes
