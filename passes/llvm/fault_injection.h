// Test-only actions (the test flavour, FORKGYM_TEST_ACTIONS): deliberate crashes, hangs,
// leaks and forbidden system calls, run inside a worker to prove that the
// sandbox and crash isolation hold. See the TestCrash rows of actions.def.
//
// Worker process only, and only because a test asked for it: most of these
// never return.
#pragma once

#include <string_view>

namespace llvm {
class Module;
}

namespace forkgym::passes {

// Returns true if the module was changed (the verifier-failure action);
// false for an action that returned because its system call was refused.
bool runFaultInjection(std::string_view flag, llvm::Module& module);

}  // namespace forkgym::passes
