#include "passes/llvm/inst_count.h"

#include <algorithm>

#include <llvm/IR/Instruction.h>
#include <llvm/IR/Module.h>

#include <string_view>


namespace forkgym::passes {
namespace {

// CompilerGym (LLVM 10) had 67 opcodes; LLVM 19 has the same set in the
// same order. If a future LLVM adds one, the vector would silently change
// shape, so fail the build instead.
#define HANDLE_INST(number, opcode, klass) +1
constexpr size_t kOpcodeCount = 0
#include <llvm/IR/Instruction.def>
    ;
static_assert(3 + kOpcodeCount == kInstCountFeatureCount,
              "LLVM's opcode list changed; InstCount must keep CompilerGym's 70 features");

constexpr std::string_view kNames[] = {
    "TotalInsts", "TotalBlocks", "TotalFuncs",
#define HANDLE_INST(number, opcode, klass) #opcode,
#include <llvm/IR/Instruction.def>
};

// Opcode numbers are dense from Instruction::TermOpsBegin (1), so a count's
// slot is 3 + opcode - 1.
constexpr unsigned kFirstOpcode = 1;
enum Total { kTotalInsts = 0, kTotalBlocks = 1, kTotalFuncs = 2 };

}  // namespace

std::span<const std::string_view> instCountFeatureNames() { return kNames; }

std::vector<double> instCountDensities(std::span<const int64_t> counts) {
  if (counts.empty()) return {};
  const double total = static_cast<double>(std::max<int64_t>(counts[0], 1));
  std::vector<double> densities;
  densities.reserve(counts.size() - 1);
  for (size_t i = 1; i < counts.size(); ++i) densities.push_back(static_cast<double>(counts[i]) / total);
  return densities;
}

std::vector<std::string> instCountDictKeys() {
  std::vector<std::string> keys;
  for (std::string_view name : kNames) keys.push_back(std::string(name) + "Count");
  return keys;
}

std::vector<std::string> instCountDensityKeys() {
  std::vector<std::string> keys;
  for (std::string_view name : std::span(kNames).subspan(1)) keys.push_back(std::string(name) + "Density");
  return keys;
}

std::vector<int64_t> instCountFeatures(const llvm::Module& module) {
  std::vector<int64_t> counts(kInstCountFeatureCount, 0);
  for (const llvm::Function& function : module) {
    // A declaration has no body to count.
    if (function.isDeclaration()) continue;
    ++counts[kTotalFuncs];
    for (const llvm::BasicBlock& block : function) {
      ++counts[kTotalBlocks];
      for (const llvm::Instruction& instruction : block) {
        ++counts[kTotalInsts];
        ++counts[3 + instruction.getOpcode() - kFirstOpcode];
      }
    }
  }
  return counts;
}

}  // namespace forkgym::passes
