// The Autophase observation: the 56 program features of Huang et al.,
// "AutoPhase: Compiler Phase-Ordering for HLS with Deep Reinforcement
// Learning" (FCCM 2019), in CompilerGym's vector order.
// Any process; reads the module only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace llvm {
class Module;
}

namespace forkgym::passes {

constexpr size_t kAutophaseFeatureCount = 56;

std::vector<int64_t> autophaseFeatures(const llvm::Module& module);

}  // namespace forkgym::passes
