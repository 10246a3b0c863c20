// The InstCount observation: CompilerGym's 70 counters (3 totals, then one
// count per opcode in Instruction.def order).
// Any process; reads the module only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
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

// CompilerGym's views of the counts:
// InstCountNorm: counts[1:] / max(counts[0], 1) (each count per instruction).
std::vector<double> instCountDensities(std::span<const int64_t> counts);
// InstCountDict's keys: "<name>Count" for every feature.
std::vector<std::string> instCountDictKeys();
// InstCountNormDict's keys: "<name>Density" for every feature but the first.
std::vector<std::string> instCountDensityKeys();

}  // namespace forkgym::passes
