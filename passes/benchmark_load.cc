#include "passes/benchmark_load.h"

#include <cstring>

namespace forkgym::passes {

// Wire format of a LoadedBenchmark on the loader pipe, all integers
// little-endian (both ends are the same machine, but the format says so):
//   "FGLB" u32 version
//   u64 uri length, uri bytes
//   u64 content hash length, content hash bytes
//   u8 unchanged, u8 racy, u64 input count, then per input:
//     u64 path length, path bytes, u64 device, inode, size, i64 mtime ns,
//     ctime ns, u32 type
//   u64 payload length, payload bytes
//   u64 warning length, warning bytes
// and nothing after.
namespace {

constexpr char kMagic[4] = {'F', 'G', 'L', 'B'};
constexpr uint32_t kVersion = 4;
// More inputs than any real benchmark has: the rest of the frame is garbage.
constexpr uint64_t kMaxInputs = 1 << 20;

template <typename T>
void put(std::string& out, T value) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  out.append(bytes, sizeof(T));
}

// Reads from untrusted bytes: every read checks what is left first.
class Reader {
 public:
  explicit Reader(std::string_view bytes) : rest_(bytes) {}

  template <typename T>
  bool get(T& value) {
    if (rest_.size() < sizeof(T)) return false;
    std::memcpy(&value, rest_.data(), sizeof(T));
    rest_.remove_prefix(sizeof(T));
    return true;
  }

  bool getBytes(std::string& value) {
    uint64_t length = 0;
    if (!get(length) || length > rest_.size()) return false;
    value.assign(rest_.data(), static_cast<size_t>(length));
    rest_.remove_prefix(static_cast<size_t>(length));
    return true;
  }

  bool atEnd() const { return rest_.empty(); }

 private:
  std::string_view rest_;
};

Error malformed(std::string_view what) {
  return makeError(Outcome::BenchmarkError,
                   "the benchmark loader sent a malformed reply (" + std::string(what) +
                       "); the loader process probably crashed mid-write");
}

}  // namespace

std::string encodeLoadedBenchmark(const LoadedBenchmark& loaded) {
  std::string out;
  out.reserve(64 + loaded.uri.size() + loaded.payload.size());
  out.append(kMagic, sizeof kMagic);
  put(out, kVersion);
  const auto putBytes = [&](const std::string& bytes) {
    put(out, static_cast<uint64_t>(bytes.size()));
    out += bytes;
  };
  putBytes(loaded.uri);
  putBytes(loaded.contentHash);
  put(out, static_cast<uint8_t>(loaded.unchanged));
  put(out, static_cast<uint8_t>(loaded.inputs.racy));
  put(out, static_cast<uint64_t>(loaded.inputs.files.size()));
  for (const InputFile& file : loaded.inputs.files) {
    putBytes(file.path);
    put(out, file.device);
    put(out, file.inode);
    put(out, file.size);
    put(out, file.mtimeNs);
    put(out, file.ctimeNs);
    put(out, file.type);
  }
  putBytes(loaded.payload);
  putBytes(loaded.warning);
  return out;
}

Result<LoadedBenchmark> decodeLoadedBenchmark(std::string_view bytes) {
  if (bytes.size() < sizeof kMagic || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0) {
    return malformed("bad magic");
  }
  Reader reader(bytes.substr(sizeof kMagic));
  uint32_t version = 0;
  if (!reader.get(version) || version != kVersion) return malformed("unknown version");
  LoadedBenchmark loaded;
  if (!reader.getBytes(loaded.uri)) return malformed("truncated uri");
  if (!reader.getBytes(loaded.contentHash)) return malformed("truncated content hash");
  uint8_t unchanged = 0, racy = 0;
  uint64_t inputs = 0;
  if (!reader.get(unchanged) || !reader.get(racy) || unchanged > 1 || racy > 1) return malformed("bad flags");
  loaded.unchanged = unchanged;
  loaded.inputs.racy = racy;
  if (!reader.get(inputs) || inputs > kMaxInputs) return malformed("bad input count");
  for (uint64_t i = 0; i < inputs; ++i) {
    InputFile file;
    if (!reader.getBytes(file.path) || !reader.get(file.device) || !reader.get(file.inode) || !reader.get(file.size) ||
        !reader.get(file.mtimeNs) || !reader.get(file.ctimeNs) || !reader.get(file.type)) {
      return malformed("truncated input");
    }
    loaded.inputs.files.push_back(std::move(file));
  }
  if (!reader.getBytes(loaded.payload)) return malformed("truncated payload");
  if (!reader.getBytes(loaded.warning)) return malformed("truncated warning");
  if (!reader.atEnd()) return malformed("trailing bytes");
  return loaded;
}

BenchmarkDirectory loaderDirectory(const LoadRequest& request) {
  std::vector<std::pair<std::string, int>> roots;
  for (size_t i = 0; i < request.roots.size(); ++i) {
    roots.emplace_back(request.roots[i], i < request.rootFds.size() ? request.rootFds[i] : -1);
  }
  return BenchmarkDirectory(request.workingDirectory, std::move(roots));
}

std::string benchmarkDirectoryOf(std::string_view canonicalUri, bool isDirectory) {
  constexpr std::string_view kFileScheme = "file://";
  if (!canonicalUri.starts_with(kFileScheme)) return {};
  const std::string_view path = canonicalUri.substr(kFileScheme.size());
  if (isDirectory) return std::string(path);
  const size_t slash = path.rfind('/');
  return slash == 0 ? "/" : std::string(path.substr(0, slash));
}

}  // namespace forkgym::passes
