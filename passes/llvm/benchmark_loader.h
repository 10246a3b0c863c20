// Turning a benchmark URI into a verified, sanitised module, with the hash
// of its content and the files it was read from.
//
// Runs in a loader child forked by the zygote (never in the zygote itself):
// it may exec clang-19, csmith or llvm-stress and parse untrusted bitcode.
// No temporary files: every tool reads a path or a pipe and writes to a
// pipe. C/C++ sources go through passes/llvm/source_compiler.h.
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
#include <cstdint>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "passes/llvm/benchmark.h"

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

// For a file:// URI: the path must be a regular file or a directory
// (following symlinks), else a BenchmarkError naming what it is (a FIFO
// would block whoever opens it, a device never end). One stat(); nothing is
// opened, so the zygote calls it before starting a load. Others: ok.
Status checkBenchmarkInput(std::string_view canonicalUri);

// What a loader child is asked to load.
struct LoadRequest {
  std::string uri;  // canonical (canonicalBenchmarkUri)
  // The server's --benchmark-root directories (realpath'd); empty: any path.
  // With roots, a source that reads a file outside them and the system
  // include directories is refused before it is compiled.
  std::vector<std::string> roots;
  // The content hash of the module the zygote has for this URI, when it only
  // needs to know whether the content changed: if it did not, the load ends
  // after hashing (LoadedBitcode::unchanged), without compiling.
  std::string expectedHash;
  uint64_t toolMemoryBytes = 0;  // address-space limit of each tool (clang); 0: inherited
};

// Compiles/parses, verifies, sanitises (strip debug info, named metadata and
// optnone; module and source names set to "-"; host triple when missing) and
// computes the costs. Errors carry the compiler's message.
Result<LoadedBitcode> loadBenchmark(const LoadRequest& request);
inline Result<LoadedBitcode> loadBenchmark(std::string_view uri) {
  LoadRequest request;
  request.uri = uri;
  return loadBenchmark(request);
}

}  // namespace forkgym::passes
