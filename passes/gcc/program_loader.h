// gcc-v0's benchmarks: one C translation unit, preprocessed once.
//
// Lifecycle:
//   1. Zygote: resolveGccBenchmark() (backend.h's resolve) maps a URI to a
//      source: file:///abs/prog.c, benchmark://forkgym-v0/<name> (a bundled
//      C program), benchmark://user-v0/<digest> (make_benchmark()'s .c),
//      generator://csmith-v0/<seed>.
//   2. Loader child: loadGccProgram() runs `gcc -E -P` on it (csmith first,
//      for a generator) with the dependency and include-path reports, so
//      with --benchmark-root a file read outside the roots refuses the
//      benchmark before anything is compiled; hashes the preprocessed text
//      with gcc's version and the preprocessing flags; and compiles it once
//      (`gcc -w -S`, to a pipe) so a program gcc cannot compile is refused
//      at load rather than at the first step. The payload is the
//      preprocessed text.
//   3. Zygote: that text is the cached benchmark; each worker writes it as
//      src.c in its private directory (compilation.h).
// -P drops the line markers: the text is then a C file in its own right, so
// the command line a session reports gives, run by hand on the `source`
// observation saved as src.c, the same object file.
#pragma once

#include <string>
#include <string_view>

#include "base/result.h"
#include "passes/benchmark_load.h"
#include "passes/benchmark_uri.h"
#include "passes/gcc/gcc_spec.h"

namespace forkgym::passes::gcc {

Result<BenchmarkLocation> resolveGccBenchmark(std::string_view uri, const ResolveContext& context);

Result<LoadedBenchmark> loadGccProgram(const GccSpec& spec, const LoadRequest& request);

}  // namespace forkgym::passes::gcc
