#include "forkserver/state_cache_entry.h"

#include <elf.h>
#include <link.h>
#include <sys/stat.h>

#include <bit>
#include <cstring>

#include "passes/content_hash.h"

namespace forkgym::forkserver {
namespace {

StateCacheKey keyOf(passes::ContentHash& hash) {
  const std::string hex = hash.hex();
  StateCacheKey key;
  for (size_t i = 0; i < 32 && i < hex.size(); ++i) {
    const char c = hex[i];
    const uint64_t nibble = c <= '9' ? c - '0' : c - 'a' + 10;
    uint64_t& half = i < 16 ? key.hi : key.lo;
    half = (half << 4) | nibble;
  }
  return key;
}

std::string_view bytesOf(const StateCacheKey& key, char (&buffer)[16]) {
  std::memcpy(buffer, &key.hi, 8);
  std::memcpy(buffer + 8, &key.lo, 8);
  return {buffer, 16};
}

template <typename T>
void put(std::string& out, T value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof(value));
}

// A bounded reader: every read checks what is left.
struct Reader {
  std::string_view bytes;
  bool ok = true;
  template <typename T>
  T get() {
    T value{};
    if (bytes.size() < sizeof(T)) {
      ok = false;
      return value;
    }
    std::memcpy(&value, bytes.data(), sizeof(T));
    bytes.remove_prefix(sizeof(T));
    return value;
  }
  std::string_view take(uint64_t n) {
    if (bytes.size() < n) {
      ok = false;
      return {};
    }
    auto out = bytes.substr(0, n);
    bytes.remove_prefix(n);
    return out;
  }
  // A count of elements of `size` bytes each that the rest can hold.
  uint32_t count(size_t size) {
    const auto n = get<uint32_t>();
    if (n > bytes.size() / size) ok = false;
    return ok ? n : 0;
  }
};

int noteBuildId(dl_phdr_info* info, size_t, void* out) {
  // The first object is the executable itself.
  auto* id = static_cast<std::string*>(out);
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const auto& header = info->dlpi_phdr[i];
    if (header.p_type != PT_NOTE) continue;
    const char* p = reinterpret_cast<const char*>(info->dlpi_addr + header.p_vaddr);
    const char* end = p + header.p_memsz;
    while (p + sizeof(ElfW(Nhdr)) <= end) {
      const auto* note = reinterpret_cast<const ElfW(Nhdr)*>(p);
      const char* name = p + sizeof(ElfW(Nhdr));
      const char* desc = name + ((note->n_namesz + 3) & ~3u);
      if (note->n_type == NT_GNU_BUILD_ID && note->n_namesz == 4 && std::memcmp(name, "GNU", 4) == 0) {
        static constexpr char kHex[] = "0123456789abcdef";
        for (uint32_t b = 0; b < note->n_descsz; ++b) {
          const auto byte = static_cast<unsigned char>(desc[b]);
          id->push_back(kHex[byte >> 4]);
          id->push_back(kHex[byte & 15]);
        }
        return 1;
      }
      p = desc + ((note->n_descsz + 3) & ~3u);
    }
  }
  return 1;  // only the executable
}

}  // namespace

CachePolicy cachePolicyOf(const passes::Backend& backend) {
  CachePolicy policy;
  const passes::ActionSpace& space = backend.actionSpace();
  const auto observations = backend.observationSpaces();
  const auto rewards = backend.rewardSpaces();
  policy.actions.assign(space.actions.size(), false);
  policy.observations.assign(observations.size(), false);
  policy.rewards.assign(rewards.size(), false);
  if (backend.stateCache == nullptr || space.replay.fromState) return policy;
  policy.enabled = true;
  for (size_t i = 0; i < space.actions.size(); ++i) {
    const passes::Action& action = space.actions[i];
    policy.actions[i] = action.unavailableReason.empty() && !action.testOnly && !action.nondeterministic;
  }
  auto cacheable = [&](const passes::Space& s) {
    if (!s.deterministic || s.needsRunConfig) return false;
    for (std::string_view name : backend.stateCache->computedObservations) {
      if (s.name == name) return false;
    }
    return true;
  };
  for (size_t i = 0; i < observations.size(); ++i) policy.observations[i] = cacheable(observations[i]);
  for (size_t i = 0; i < rewards.size(); ++i) policy.rewards[i] = rewards[i].deterministic && !rewards[i].needsRunConfig;
  return policy;
}

StateCacheKey stateRoot(std::string_view buildId, std::string_view backend, std::string_view backendVersion,
                        uint64_t actionSpaceHash, std::string_view contentHash, uint32_t clientUid) {
  passes::ContentHash hash;
  hash.add("forkgym state cache", "1");
  hash.add("server build", buildId);
  hash.add("backend", backend);
  hash.add("backend version", backendVersion);
  hash.add("action space", std::to_string(actionSpaceHash));
  hash.add("benchmark content", contentHash);
  hash.add("client uid", std::to_string(clientUid));
  return keyOf(hash);
}

StateCacheKey nextState(const StateCacheKey& state, uint32_t action) {
  char buffer[16];
  passes::ContentHash hash;
  hash.add("state", bytesOf(state, buffer));
  hash.add("action", std::string_view(reinterpret_cast<const char*>(&action), sizeof(action)));
  return keyOf(hash);
}

StateCacheKey entryKey(EntryKind kind, const StateCacheKey& state, uint64_t a, uint64_t b) {
  char buffer[16];
  std::string parts;
  put(parts, static_cast<uint8_t>(kind));
  put(parts, a);
  put(parts, b);
  passes::ContentHash hash;
  hash.add("state", bytesOf(state, buffer));
  hash.add("entry", parts);
  return keyOf(hash);
}

StateCacheKey stateAt(const StateCacheKey& root, std::span<const uint32_t> path) {
  StateCacheKey state = root;
  for (uint32_t action : path) state = nextState(state, action);
  return state;
}

const std::string& serverBuildId() {
  static const std::string id = [] {
    std::string found;
    dl_iterate_phdr(noteBuildId, &found);
    if (!found.empty()) return "build-id " + found;
    struct stat st {};
    if (stat("/proc/self/exe", &st) != 0) return std::string("unknown build");
    return "inode " + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + " mtime " +
           std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) + " size " +
           std::to_string(st.st_size);
  }();
  return id;
}

std::pair<uint64_t, uint64_t> rewardKeyParts(size_t row, std::optional<double> previous) {
  const uint64_t a = static_cast<uint64_t>(row) | (previous ? uint64_t{1} << 32 : 0);
  return {a, previous ? std::bit_cast<uint64_t>(*previous) : 0};
}

std::string encodeObservation(const passes::ObservationValue& value) {
  std::string out;
  put(out, static_cast<uint8_t>(value.index()));
  struct Visitor {
    std::string& out;
    void operator()(int64_t v) { put(out, v); }
    void operator()(const std::vector<int64_t>& v) {
      put(out, static_cast<uint32_t>(v.size()));
      for (int64_t x : v) put(out, x);
    }
    void operator()(const std::string& v) {
      put(out, static_cast<uint32_t>(v.size()));
      out += v;
    }
    void operator()(const std::vector<uint8_t>& v) {
      put(out, static_cast<uint32_t>(v.size()));
      out.append(reinterpret_cast<const char*>(v.data()), v.size());
    }
    void operator()(bool v) { put(out, static_cast<uint8_t>(v)); }
    void operator()(double v) { put(out, v); }
    void operator()(const std::vector<double>& v) {
      put(out, static_cast<uint32_t>(v.size()));
      for (double x : v) put(out, x);
    }
    void operator()(const std::vector<passes::NamedCount>& v) {
      put(out, static_cast<uint32_t>(v.size()));
      for (const auto& c : v) {
        put(out, static_cast<uint32_t>(c.name.size()));
        out += c.name;
        put(out, c.count);
      }
    }
  };
  std::visit(Visitor{out}, value);
  return out;
}

std::optional<passes::ObservationValue> decodeObservation(std::string_view bytes) {
  Reader in{bytes};
  passes::ObservationValue value;
  switch (static_cast<passes::ValueType>(in.get<uint8_t>())) {
    case passes::ValueType::Int64:
      value = in.get<int64_t>();
      break;
    case passes::ValueType::Int64List: {
      std::vector<int64_t> list(in.count(8));
      for (auto& x : list) x = in.get<int64_t>();
      value = std::move(list);
      break;
    }
    case passes::ValueType::Text: {
      auto text = in.take(in.count(1));
      value = std::string(text);
      break;
    }
    case passes::ValueType::Bytes: {
      auto raw = in.take(in.count(1));
      value = std::vector<uint8_t>(raw.begin(), raw.end());
      break;
    }
    case passes::ValueType::Bool:
      value = in.get<uint8_t>() != 0;
      break;
    case passes::ValueType::Float64:
      value = in.get<double>();
      break;
    case passes::ValueType::Float64List: {
      std::vector<double> list(in.count(8));
      for (auto& x : list) x = in.get<double>();
      value = std::move(list);
      break;
    }
    case passes::ValueType::Int64Map: {
      std::vector<passes::NamedCount> list(in.count(12));
      for (auto& c : list) {
        c.name = std::string(in.take(in.count(1)));
        c.count = in.get<int64_t>();
      }
      value = std::move(list);
      break;
    }
    default:
      return std::nullopt;
  }
  if (!in.ok || !in.bytes.empty()) return std::nullopt;
  return value;
}

std::string encodeReward(const RewardValue& value) {
  std::string out;
  put(out, value.reward);
  put(out, static_cast<uint8_t>(value.previous.has_value()));
  put(out, value.previous.value_or(0.0));
  return out;
}

std::optional<RewardValue> decodeReward(std::string_view bytes) {
  Reader in{bytes};
  RewardValue value;
  value.reward = in.get<double>();
  const bool has = in.get<uint8_t>() != 0;
  const double previous = in.get<double>();
  if (!in.ok || !in.bytes.empty()) return std::nullopt;
  if (has) value.previous = previous;
  return value;
}

std::string encodeSubmission(const Submission& s) {
  std::string out;
  out.reserve(32 + 4 * s.path.size() + s.value.size());
  put(out, static_cast<uint8_t>(s.kind));
  put(out, s.hits);
  put(out, s.misses);
  put(out, static_cast<uint32_t>(s.path.size()));
  for (uint32_t action : s.path) put(out, action);
  put(out, s.a);
  put(out, s.b);
  out += s.value;
  return out;
}

std::optional<Submission> decodeSubmission(std::string_view bytes) {
  Reader in{bytes};
  Submission s;
  const auto kind = in.get<uint8_t>();
  if (kind < 1 || kind > 4) return std::nullopt;
  s.kind = static_cast<EntryKind>(kind);
  s.hits = in.get<uint32_t>();
  s.misses = in.get<uint32_t>();
  const uint32_t length = in.count(4);
  if (length > kMaxPathLength) return std::nullopt;
  s.path.resize(length);
  for (auto& action : s.path) action = in.get<uint32_t>();
  s.a = in.get<uint64_t>();
  s.b = in.get<uint64_t>();
  if (!in.ok || in.bytes.size() > StateCache::kMaxValueBytes) return std::nullopt;
  s.value = std::string(in.bytes);
  return s;
}

}  // namespace forkgym::forkserver
