// The Autophase observation: the 56 program features of Huang et al.,
// "AutoPhase: Compiler Phase-Ordering for HLS with Deep Reinforcement
// Learning" (FCCM 2019), in CompilerGym's vector order.
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

constexpr size_t kAutophaseFeatureCount = 56;

std::vector<int64_t> autophaseFeatures(const llvm::Module& module);

// Feature names in vector order.
std::span<const std::string_view> autophaseFeatureNames();

}  // namespace forkgym::passes
