// A toy compiler, the worked example of a backend (README, "Adding a
// compiler"): its program is an integer, its actions edit it, its
// observations read it. This folder and one row in the test server's table
// (forkserver/main.cc) are all it takes; clients reach it through its
// description alone.
#pragma once

#include "passes/backend.h"

namespace forkgym::calculator {

extern const passes::Backend kBackend;

}  // namespace forkgym::calculator
