// Benchmark URIs: what a client may name, and which file or generator each
// leads to. Resolved in the server, so every client (C++, the forkgym CLI,
// Python) reaches the same benchmarks.
//
// The neutral forms, which every backend's resolve() (backend.h) builds on:
//   file:///abs/path, or a bare absolute path     a file or a directory; a
//       path with a '..' component is refused; with --benchmark-root
//       directories, the path must resolve (symlinks followed) inside one
//   benchmark://forkgym-v0/<name>                 a program bundled with
//       forkgym (ResolveContext::bundledDir)
//   benchmark://user-v0/<digest>                  what make_benchmark() kept
//       in the user's benchmark cache (ResolveContext::userCacheDir)
//   benchmark://<dataset>/<path>                  a file of a dataset
//       installed in the site-data directory (dataset.h), when the backend
//       loads its kind of file: prebuilt bitcode, or sources compiled with the
//       dataset's recipe (source_recipe.h)
//   dataset/name                                  benchmark://dataset/name,
//       as CompilerGym took it
// A backend adds its generators (e.g. LLVM's generator://csmith-v0/<seed>)
// and says which file types it loads.
//
// Zygote (and tests): strings and stat() only (and a read of a dataset's
// small dataset.ini, dataset.h); nothing is compiled or run.
#pragma once

#include <sys/types.h>

#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "passes/dataset.h"
#include "passes/source_recipe.h"

namespace forkgym::passes {

inline constexpr std::string_view kFileScheme = "file://";
inline constexpr std::string_view kGeneratorScheme = "generator://";
inline constexpr std::string_view kBenchmarkScheme = "benchmark://";
inline constexpr std::string_view kBundledDataset = "forkgym-v0";
inline constexpr std::string_view kUserDataset = "user-v0";

struct ResolveContext {
  // The server's --benchmark-root directories (realpath'd); empty: any
  // absolute path.
  std::vector<std::string> roots;
  // Where benchmark://forkgym-v0/ programs are (empty: none are bundled).
  std::string bundledDir;
  // make_benchmark()'s cache of this user (defaultUserCacheDir()).
  std::string userCacheDir;
  // The datasets installed in the server's site-data directory (--site-data,
  // else defaultSiteDataDir()); null: none. Shared by the copies of the
  // context, and it keeps what it parsed: zygote only.
  std::shared_ptr<InstalledDatasets> datasets;
};

struct BenchmarkLocation {
  // Canonical: what the session reports, reproducers and states name, and
  // the server's cache is keyed by. benchmark:// URIs stay as they are.
  std::string uri;
  // What a loader reads: file:///abs/path, or the backend's generator URI.
  std::string source;
  // A source dataset's file: how to compile it (empty otherwise).
  SourceRecipe recipe;
  // An installed dataset's file that its dataset.ini says runs
  // (runnable, runnable_prefix): the server attaches a run configuration.
  bool runnable = false;
};

// Leading and trailing white space removed; a bare absolute path becomes
// file://path, and a bare "dataset/name" (no scheme) benchmark://dataset/name.
std::string normalizedUri(std::string_view uri);

// Checks a file:// URI's path (see above) against the context's roots; the
// canonical URI and the source are the same.
Result<BenchmarkLocation> resolveFile(std::string_view fileUri, const ResolveContext& context);

// benchmark://forkgym-v0/<name>: the bundled file <name><suffix>, for the
// first of `suffixes` that exists.
Result<BenchmarkLocation> resolveBundled(std::string_view uri, const ResolveContext& context,
                                         std::span<const std::string_view> suffixes);

// benchmark://user-v0/<digest>: the cached file <digest><suffix>, for the
// first of `suffixes` that exists; subject to the roots like any file.
Result<BenchmarkLocation> resolveUserBenchmark(std::string_view uri, const ResolveContext& context,
                                               std::span<const std::string_view> suffixes);

// benchmark://<dataset>/<path>: the installed dataset's file (dataset.h);
// the canonical URI is the one given. Errors name the dataset and the fix.
// With benchmark roots, a dataset's file outside the site-data directory
// (a dataset of yours registered in place) must be inside them too.
Result<DatasetFile> resolveDatasetFile(std::string_view uri, const ResolveContext& context);

// The bundled programs' names (for messages and listings), sorted.
std::vector<std::string> bundledBenchmarks(const ResolveContext& context, std::span<const std::string_view> suffixes);

// For a file:// source: the path must be a regular file or a directory
// (following symlinks), else a BenchmarkError naming what it is (a FIFO
// would block whoever opens it, a device never end). One stat(); nothing is
// opened, so the zygote calls it before starting a load. Others: ok.
Status checkBenchmarkInput(std::string_view source);

// What to say of a path that is neither a regular file nor a directory
// (a FIFO, a device, a socket): the message every loader gives for it.
std::string notRegularFileMessage(const std::string& path, mode_t mode);

// make_benchmark()'s cache, by the rule the Python package uses
// (forkgym.benchmark_cache_dir()): $FORKGYM_CACHE_DIR/benchmarks; else
// $FORKGYM_CACHE/benchmarks (the dataset cache's variable); else, for
// root without $XDG_CACHE_HOME, /var/cache/forkgym/benchmarks; else
// $XDG_CACHE_HOME/forkgym/benchmarks; else $HOME/.cache/forkgym/benchmarks.
// Reads the environment and the effective uid only.
std::string defaultUserCacheDir();

}  // namespace forkgym::passes
