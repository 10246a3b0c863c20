// The gcc-v0 backend record (passes/backend.h): the installed gcc run as an
// external compiler, one run per artifact a step needs.
//
// Lifecycle:
//   1. Zygote start-up: initialize() discovers the spec from gcc's own help
//      (gcc_spec.h) and builds the action space from it; both live for the
//      server's lifetime and are inherited by every worker. The action space
//      hash covers the spec, so a client that kept an action list from a
//      server with another gcc is refused at hello.
//   2. resolve/load/prepare (program_loader.h): a C program, preprocessed
//      once in a loader child; the zygote caches the text.
//   3. startSession (worker, before its sandbox): a GccSession compiling in
//      a private directory of the worker.
#pragma once

#include "passes/backend.h"
#include "passes/gcc/action_space.h"
#include "passes/gcc/gcc_spec.h"

namespace forkgym::passes::gcc {

extern const Backend kGccBackend;

// After initialize() (which the zygote calls first): the spec and actions.
const GccSpec& gccSpec();
const GccActionSpace& gccActionSpace();

}  // namespace forkgym::passes::gcc
