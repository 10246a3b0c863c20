// Turning a benchmark URI into a verified, sanitised module.
//
// Runs in a loader child forked by the zygote (never in the zygote itself):
// it may exec clang-19, csmith or llvm-stress and parse untrusted bitcode.
// No temporary files: sources are read by the compiler from their paths and
// every tool writes to a pipe.
//
// URIs understood:
//   file:///abs/path.bc | .ll | .c | .cc | .cpp | .cxx
//   file:///abs/dir/                 every C/C++ source in dir, compiled and linked
//   generator://csmith-v0/<seed>     csmith program, compiled with clang-19
//   generator://llvm-stress-v0/<seed>  llvm-stress module
//   A bare absolute path is taken as file://.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "ipc/result.h"
#include "passes/benchmark.h"

namespace forkgym::passes {

// Canonical form of a URI (bare path -> file://, trailing spaces trimmed), or
// an InvalidRequest/BenchmarkError explaining what is wrong with it.
//
// A file path with a ".." component is always refused. When allowedRoots is
// non-empty (the server's --benchmark-root directories, already resolved with
// realpath), the path must resolve (realpath, so symlinks count where they
// point) inside one of them. Empty allowedRoots: any absolute path.
Result<std::string> canonicalBenchmarkUri(std::string_view uri,
                                          std::span<const std::string> allowedRoots = {});

// Compiles/parses, verifies, sanitises (strip debug info, named metadata and
// optnone; module and source names set to "-"; host triple when missing) and
// computes the costs. Errors carry the compiler's message.
Result<LoadedBitcode> loadBenchmark(std::string_view uri);

}  // namespace forkgym::passes
