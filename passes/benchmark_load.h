// What a loader child is asked to load, and what it sends back.
//
// Lifecycle (the neutral part of backend.h's steps 4-5):
//   1. The zygote fills a LoadRequest for a benchmark's source and forks a
//      loader child, which calls its backend's load().
//   2. load() reads everything the benchmark is made of, hashing it
//      (ContentHash, content_hash.h) and recording the files it read
//      (benchmark_inputs.h). When the hash equals expectedHash the load ends
//      there (unchanged): the zygote's cached copy is still the content.
//      Otherwise it builds the backend's payload.
//   3. The child writes encodeLoadedBenchmark() to a pipe; the zygote decodes it
//      (decodeLoadedBenchmark() trusts nothing it reads) and hands the payload to the
//      backend's prepare().
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "passes/benchmark_inputs.h"
#include "passes/source_recipe.h"

namespace forkgym::passes {

struct LoadRequest {
  std::string uri;  // the source to load (BenchmarkLocation::source)
  // A source dataset's file (BenchmarkLocation::recipe): how to compile it.
  SourceRecipe recipe;
  // The server's --benchmark-root directories (realpath'd); empty: any path.
  // With roots, a source that reads a file outside them and the system
  // include directories is refused before it is compiled.
  std::vector<std::string> roots;
  // The content hash of what the zygote has cached for this URI, when it only
  // needs to know whether the content changed: if it did not, the load ends
  // after hashing (LoadedBenchmark::unchanged), without compiling.
  std::string expectedHash;
  uint64_t toolMemoryBytes = 0;  // address-space limit of each tool (clang, gcc); 0: inherited
  // For a file:// URI: the benchmark's directory (a file's parent, or the
  // directory itself), when the loader made it its working directory before
  // it gave up its privileges; files under it are then opened by relative
  // names (benchmark_directory.h). Empty: paths are opened as they are.
  std::string workingDirectory;
  // O_PATH descriptors of `roots`, in order, opened by the loader while
  // privileged (-1: none); files under a root are resolved through them.
  std::vector<int> rootFds;
  // A source dataset's module cached beside its source (module_cache.h),
  // read by the loader while it was still the client: its bytes, when it is
  // fresh (else empty), and the headers it was compiled with (names
  // relative to the source's directory, or absolute).
  std::string cachedModule;
  std::vector<std::string> cachedModuleHeaders;
  // Otherwise, a socket to the process that stores the module this load
  // compiles beside the source (-1: nothing is stored).
  int moduleCacheFd = -1;
  // The backend's key of `recipe`'s compile options (Backend::sourceModuleKey).
  std::string moduleCacheKey;
};

// How a loader for `request` names its files (benchmark_directory.h): its
// working directory, and the roots with the descriptors it opened for them.
BenchmarkDirectory loaderDirectory(const LoadRequest& request);

// The directory a loader enters for a canonical file:// URI: `isDirectory`
// says whether the path is a directory benchmark (else a file, whose parent
// it is). Empty for other URIs.
std::string benchmarkDirectoryOf(std::string_view canonicalUri, bool isDirectory);

struct LoadedBenchmark {
  std::string uri;  // the source loaded
  // Hex BLAKE3 of what the benchmark was made from: file bytes, or the
  // preprocessed sources and compile options, or a generator's output.
  std::string contentHash;
  BenchmarkInputs inputs;  // the files read, for the zygote's freshness check
  // The content hash equals LoadRequest::expectedHash: nothing was built
  // (the payload is empty); the cached copy is still right.
  bool unchanged = false;
  std::string payload;  // the backend's own encoding (its prepare() reads it)
  // Something the server's operator should hear of once (e.g. a dataset
  // directory the compiled modules cannot be cached in); empty: nothing.
  std::string warning;
};

// Serialisation for the loader pipe (length-prefixed binary).
std::string encodeLoadedBenchmark(const LoadedBenchmark& loaded);
Result<LoadedBenchmark> decodeLoadedBenchmark(std::string_view bytes);

}  // namespace forkgym::passes
