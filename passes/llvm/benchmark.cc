#include "passes/llvm/benchmark.h"

#include <malloc.h>

#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>

#include <cstring>

#include "passes/llvm/bitcode.h"
#include "passes/llvm/object_size.h"

namespace forkgym::passes {

bool BenchmarkCosts::complete() const {
  for (int point = kInitial; point < kCostPointCount; ++point) {
    if (instructionCount[point] == kNotComputed || objectTextSize[point] == kNotComputed) return false;
  }
  return true;
}

ParsedBenchmark::ParsedBenchmark() = default;
ParsedBenchmark::ParsedBenchmark(ParsedBenchmark&&) noexcept = default;
ParsedBenchmark::~ParsedBenchmark() {
  // The module lives in the context: it must go first. (Member order gives
  // this too; saying it keeps a reordering from breaking it.)
  module.reset();
  context.reset();
}

ParsedBenchmark& ParsedBenchmark::operator=(ParsedBenchmark&& other) noexcept {
  if (this != &other) {
    // The defaulted operator would replace the context before the module,
    // freeing the context under the old module.
    module.reset();
    context = std::move(other.context);
    module = std::move(other.module);
    uri = std::move(other.uri);
    contentHash = std::move(other.contentHash);
    costs = other.costs;
    bitcode = std::move(other.bitcode);
    approxBytes = other.approxBytes;
  }
  return *this;
}

// The LLVM payload of a LoadedBenchmark (benchmark_load.h), integers
// little-endian:
//   u64 bitcode length, bitcode bytes
//   i64 instructionCount[4], i64 objectTextSize[4] (kNotComputed where the
//   loader left them out)
// and nothing after.
namespace {

template <typename T>
void put(std::string& out, T value) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  out.append(bytes, sizeof(T));
}

template <typename T>
bool get(std::string_view& rest, T& value) {
  if (rest.size() < sizeof(T)) return false;
  std::memcpy(&value, rest.data(), sizeof(T));
  rest.remove_prefix(sizeof(T));
  return true;
}

Error malformed(std::string_view what) {
  return makeError(Outcome::BenchmarkError,
                   "the benchmark loader sent a malformed reply (" + std::string(what) +
                       "); the loader process probably crashed mid-write");
}

}  // namespace

LoadedBenchmark toLoadedBenchmark(const LoadedBitcode& loaded) {
  LoadedBenchmark out;
  out.uri = loaded.uri;
  out.contentHash = loaded.contentHash;
  out.inputs = loaded.inputs;
  out.unchanged = loaded.unchanged;
  if (loaded.unchanged) return out;
  out.payload.reserve(8 + loaded.bitcode.size() + 8 * sizeof(int64_t));
  put(out.payload, static_cast<uint64_t>(loaded.bitcode.size()));
  out.payload += loaded.bitcode;
  encodeCosts(out.payload, loaded.costs);
  return out;
}

Result<LoadedBitcode> fromLoadedBenchmark(const LoadedBenchmark& loaded) {
  LoadedBitcode out;
  out.uri = loaded.uri;
  out.contentHash = loaded.contentHash;
  out.inputs = loaded.inputs;
  out.unchanged = loaded.unchanged;
  if (loaded.unchanged) {
    if (!loaded.payload.empty()) return malformed("an unchanged load with a payload");
    return out;
  }
  std::string_view rest = loaded.payload;
  uint64_t length = 0;
  if (!get(rest, length) || length > rest.size()) return malformed("truncated bitcode");
  out.bitcode.assign(rest.data(), static_cast<size_t>(length));
  rest.remove_prefix(static_cast<size_t>(length));
  if (!decodeCosts(rest, out.costs)) return malformed("bad costs");
  if (!rest.empty()) return malformed("trailing bytes");
  return out;
}

void encodeCosts(std::string& out, const BenchmarkCosts& costs) {
  for (int64_t count : costs.instructionCount) put(out, count);
  for (int64_t size : costs.objectTextSize) put(out, size);
}

bool decodeCosts(std::string_view& rest, BenchmarkCosts& costs) {
  for (int64_t& count : costs.instructionCount) {
    if (!get(rest, count) || (count < 0 && count != kNotComputed)) return false;
  }
  for (int64_t& size : costs.objectTextSize) {
    if (!get(rest, size) || (size < 0 && size != kNoObjectFile && size != kNotComputed)) return false;
  }
  return true;
}

std::string encodeLoaded(const LoadedBitcode& loaded) { return encodeLoadedBenchmark(toLoadedBenchmark(loaded)); }

Result<LoadedBitcode> decodeLoaded(std::string_view bytes) {
  auto loaded = decodeLoadedBenchmark(bytes);
  if (!loaded.ok()) return loaded.takeError();
  return fromLoadedBenchmark(*loaded);
}

namespace {

size_t heapInUse() {
  const struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

}  // namespace

Result<ParsedBenchmark> parseTrustedBitcode(const LoadedBitcode& loaded) {
  ParsedBenchmark parsed;
  const size_t heapBefore = heapInUse();
  parsed.context = std::make_unique<llvm::LLVMContext>();
  auto module = parseBitcode(loaded.bitcode, *parsed.context, "the benchmark " + loaded.uri);
  if (!module.ok()) return module.takeError();
  parsed.module = std::move(*module);
  const size_t heapAfter = heapInUse();
  parsed.uri = loaded.uri;
  parsed.contentHash = loaded.contentHash;
  parsed.costs = loaded.costs;
  parsed.bitcode = loaded.bitcode;
  // The heap growth is what the cache should count; if another allocator
  // freed memory meanwhile it can come out low, so never count less than a
  // typical in-memory/bitcode ratio.
  const size_t growth = heapAfter > heapBefore ? heapAfter - heapBefore : 0;
  parsed.approxBytes = std::max(growth, loaded.bitcode.size() * 8) + loaded.bitcode.size();
  return parsed;
}

}  // namespace forkgym::passes
