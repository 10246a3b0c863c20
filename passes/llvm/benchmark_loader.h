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
#include "passes/benchmark_load.h"
#include "passes/benchmark_uri.h"
#include "passes/llvm/benchmark.h"

namespace forkgym::passes {

// The LLVM backend's resolve() (backend.h): file:// (.bc, .ll, C/C++ sources
// or a directory of them), benchmark://forkgym-v0/<name> (a bundled C
// program), benchmark://user-v0/<digest> (make_benchmark()'s bitcode) and
// the generators above; anything else is an InvalidRequest saying what is
// supported.
Result<BenchmarkLocation> resolveLlvmBenchmark(std::string_view uri, const ResolveContext& context);

// What a loader loads for `uri` (a file or generator URI; bare path ->
// file://, white space trimmed), or an InvalidRequest/BenchmarkError
// explaining what is wrong with it. A file path with a ".." component is
// always refused. When allowedRoots is non-empty (the server's
// --benchmark-root directories, already resolved with realpath), the path
// must resolve (realpath, so symlinks count where they point) inside one of
// them. Empty allowedRoots: any absolute path.
Result<std::string> canonicalBenchmarkUri(std::string_view uri,
                                          std::span<const std::string> allowedRoots = {});

// Compiles/parses, verifies, sanitises (strip debug info, named metadata and
// optnone; module and source names set to "-"; host triple when missing) and
// counts the instructions (the other costs are left kNotComputed). Errors
// carry the compiler's message.
Result<LoadedBitcode> loadBenchmark(const LoadRequest& request);
inline Result<LoadedBitcode> loadBenchmark(std::string_view uri) {
  LoadRequest request;
  request.uri = uri;
  return loadBenchmark(request);
}

}  // namespace forkgym::passes
