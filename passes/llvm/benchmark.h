// The LLVM backend's benchmark: a verified, sanitised module plus the costs
// every reward formula needs (its baselines), computed once per benchmark
// when first needed.
//
// Lifecycle (backend.h's steps 4-6 for LLVM):
//   1. The zygote forks a loader child; the child calls loadBenchmark()
//      (benchmark_loader.h), which compiles/parses the URI, sanitises the
//      module, counts its instructions, and returns sanitised bitcode. The
//      other baselines (a pipeline and a code generation each) are left
//      kNotComputed: a first reset waits for none of them.
//   2. The child ships (bitcode, costs) back to the zygote through a pipe
//      (encodeLoaded/decodeLoaded below: a LoadedBenchmark whose payload is
//      the bitcode and costs); the zygote parses that bitcode, which is now
//      known to be valid, with parseTrustedBitcode(), and caches the result.
//   3. Workers forked from the zygote start from that parsed module; a
//      session computes a baseline it is asked for and lacks from the
//      benchmark's bitcode (LlvmSession::baseline), and the zygote fills
//      them in for later episodes in the background or from its disk cache
//      (backend.h's Baselines).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "passes/backend.h"
#include "passes/benchmark_inputs.h"
#include "passes/benchmark_load.h"

namespace llvm {
class LLVMContext;
class Module;
}  // namespace llvm

namespace forkgym::passes {

// Index into the cost arrays below.
enum CostPoint : int { kInitial = 0, kO0 = 1, kO3 = 2, kOz = 3, kCostPointCount = 4 };

// A cost not computed yet. Never a reward's or an observation's input:
// LlvmSession::baseline() computes it first.
inline constexpr int64_t kNotComputed = -2;

struct BenchmarkCosts {
  // Module::getInstructionCount() at the initial state and after the
  // default<O0>, default<O3>, default<Oz> pipelines.
  int64_t instructionCount[kCostPointCount] = {kNotComputed, kNotComputed, kNotComputed, kNotComputed};
  // Berkeley "text" size (llvm-size) of the object `clang -c -x ir` makes
  // for the host target (object_size.h); kNoObjectFile for a target that
  // makes none.
  int64_t objectTextSize[kCostPointCount] = {kNotComputed, kNotComputed, kNotComputed, kNotComputed};

  bool complete() const;
};

// What a loader child sends back to the zygote.
struct LoadedBitcode {
  std::string uri;            // canonical URI
  // Hex BLAKE3 of what the module was made from: file bytes, or the
  // preprocessed sources and compile options, or a generator's output.
  std::string contentHash;
  BenchmarkInputs inputs;     // the files read, for the zygote's freshness check
  // The content hash equals LoadRequest::expectedHash: nothing was compiled
  // (bitcode and costs are empty); the cached module is still right.
  bool unchanged = false;
  std::string bitcode;        // sanitised module, written by our own writer
  BenchmarkCosts costs;
};

// A parsed module owning its own LLVMContext, so evicting it from the cache
// frees everything it allocated.
struct ParsedBenchmark : CachedBenchmark {
  std::string uri;  // the URI it was first loaded from
  std::string contentHash;
  std::unique_ptr<llvm::LLVMContext> context;
  std::unique_ptr<llvm::Module> module;
  BenchmarkCosts costs;
  std::string bitcode;  // sanitised initial bitcode (for validation and replay)
  size_t approxBytes = 0;
  ParsedBenchmark();
  ParsedBenchmark(ParsedBenchmark&&) noexcept;
  ParsedBenchmark& operator=(ParsedBenchmark&&) noexcept;
  ~ParsedBenchmark() override;
  size_t sizeInCache() const override { return approxBytes; }
};

// A LoadedBitcode as the neutral LoadedBenchmark (its payload: the bitcode
// and the costs), and back (trusting nothing it reads).
LoadedBenchmark toLoadedBenchmark(const LoadedBitcode& loaded);
Result<LoadedBitcode> fromLoadedBenchmark(const LoadedBenchmark& loaded);

// The 8 costs as the payloads above and the baseline cache store them;
// decodeCosts() takes them off the front of `rest` and refuses values no
// computation gives.
void encodeCosts(std::string& out, const BenchmarkCosts& costs);
[[nodiscard]] bool decodeCosts(std::string_view& rest, BenchmarkCosts& costs);

// Serialisation for the loader pipe: encodeLoadedBenchmark() of the above.
std::string encodeLoaded(const LoadedBitcode& loaded);
Result<LoadedBitcode> decodeLoaded(std::string_view bytes);

// Parses bitcode produced by loadBenchmark(). Safe to call in the zygote.
Result<ParsedBenchmark> parseTrustedBitcode(const LoadedBitcode& loaded);

}  // namespace forkgym::passes
