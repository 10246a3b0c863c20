// The LLVM backend's record (passes/backend.h): LLVM 19 phase ordering,
// preloaded in the zygote, every step run in the worker's own process.
// Its tables: actions.def (actions), observations.cc, rewards.cc.
#pragma once

#include "passes/backend.h"

namespace forkgym::passes {

extern const Backend kLlvmBackend;

// The action table as the description carries it: CompilerGym's flags, each
// replayed by its pipeline text through the server's own opt.
const ActionSpace& llvmActionSpace();

}  // namespace forkgym::passes
