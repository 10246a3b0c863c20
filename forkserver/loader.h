// Loader: turns a benchmark URI into sanitised bitcode and costs in a child
// process, so a compiler crash or hostile bitcode can never hurt the zygote.
//
// Lifecycle (zygote only): loadInChild() forks a child in its own process
// group; the child runs passes::loadBenchmark() and writes the encoded result
// to a pipe; the zygote reads it with a deadline, kills the whole group
// (the child and any compiler it started) on expiry, and reaps the child.
#pragma once

#include <chrono>
#include <string>

#include "ipc/result.h"
#include "passes/benchmark.h"

namespace forkgym::forkserver {

Result<passes::LoadedBitcode> loadInChild(const std::string& uri, std::chrono::seconds timeout);

}  // namespace forkgym::forkserver
