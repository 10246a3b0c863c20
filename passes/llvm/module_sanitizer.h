// What CompilerGym did to every benchmark on load, so that IR, hashes and
// costs do not depend on where or how the benchmark was built.
// Loader child only (the module is untrusted until verified).
#pragma once

#include "base/result.h"

namespace llvm {
class Module;
}

namespace forkgym::passes {

// Strips debug info and every named metadata node, removes optnone (so the
// passes may optimise what `clang -O0` produced), names the module and its
// source "-", and gives a module without a target triple the host's triple
// and data layout. BenchmarkError if that triple has no target.
Status sanitizeModule(llvm::Module& module);

}  // namespace forkgym::passes
