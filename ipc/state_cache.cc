#include "ipc/state_cache.h"

#include <sys/file.h>
#include <sys/mman.h>
#include <unistd.h>

#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/shared_memory_object.hpp>
#include <cstring>
#include <thread>

#include "base/syscall.h"

namespace forkgym {
namespace bip = boost::interprocess;

namespace {

constexpr uint64_t kMagic = 0x66676b7363616368ull;  // "fgkscach"
constexpr uint32_t kLayoutVersion = 1;
constexpr size_t kHeaderBytes = 4096;
constexpr size_t kProbeWindow = 8;
constexpr size_t kBytesPerSlot = 512;  // ring bytes per slot: entries are small

struct Header {
  std::atomic<uint64_t> magic;  // written last by the initialiser
  uint32_t layoutVersion;
  uint32_t slotCount;
  uint64_t dataBytes;
  uint64_t totalBytes;
  alignas(64) std::atomic<uint64_t> writePos;  // logical bytes written into the ring, ever
  std::atomic<uint64_t> inserts;
  std::atomic<uint64_t> evictions;
  std::atomic<uint64_t> dropped;
  std::atomic<uint64_t> hits;
  std::atomic<uint64_t> misses;
};
static_assert(sizeof(Header) <= kHeaderBytes);

// Every field is an atomic so a reader racing a writer reads torn values,
// never undefined behaviour; the sequence number says whether they belong
// together (odd: being written).
struct Slot {
  std::atomic<uint64_t> seq;
  std::atomic<uint64_t> hi;
  std::atomic<uint64_t> lo;
  std::atomic<uint64_t> offset;  // logical position in the ring
  std::atomic<uint64_t> length;
  std::atomic<uint64_t> checksum;
  uint64_t unused[2];
};
static_assert(sizeof(Slot) == 64);

size_t totalBytesFor(uint32_t slotCount, uint64_t dataBytes) {
  return kHeaderBytes + size_t{slotCount} * sizeof(Slot) + dataBytes;
}

uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v;
  h *= 0x9e3779b97f4a7c15ull;
  return h ^ (h >> 29);
}

// Against torn writes by trusted writers, not against forgery.
uint64_t checksum(const StateCacheKey& key, const char* data, size_t length) {
  uint64_t h = mix(mix(mix(0x5a17ull, key.hi), key.lo), length);
  size_t i = 0;
  for (; i + 8 <= length; i += 8) {
    uint64_t word;
    std::memcpy(&word, data + i, 8);
    h = mix(h, word);
  }
  uint64_t tail = 0;
  std::memcpy(&tail, data + i, length - i);
  return mix(h, tail);
}

uint64_t roundUp8(uint64_t n) { return n == 0 ? 8 : (n + 7) & ~uint64_t{7}; }

// flock() on the segment: the kernel drops it when its holder dies.
class WriterLock {
 public:
  WriterLock(int fd, bool wait) : fd_(fd) {
    if (!wait) {
      held_ = sysRaw([&] { return flock(fd_, LOCK_EX | LOCK_NB); }) == 0;
      return;
    }
    // Start-up only: a stopped peer must not stop this zygote for good.
    for (int attempt = 0; attempt < 400 && !held_; ++attempt) {
      held_ = sysRaw([&] { return flock(fd_, LOCK_EX | LOCK_NB); }) == 0;
      if (!held_) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  ~WriterLock() {
    if (held_) flock(fd_, LOCK_UN);
  }
  bool held() const { return held_; }

 private:
  int fd_;
  bool held_ = false;
};

}  // namespace

struct StateCache::Mapping {
  bip::shared_memory_object writable;  // its descriptor carries the writer lock
  bip::mapped_region writeView;        // MADV_DONTFORK: never in a child
  bip::mapped_region readView;         // inherited by every child, read-only
  uint32_t slotCount = 0;              // validated copies of the header's layout
  uint64_t dataBytes = 0;

  Header& header() { return *static_cast<Header*>(writeView.get_address()); }
  const Header& readHeader() const { return *static_cast<const Header*>(readView.get_address()); }
  Slot* slots() { return reinterpret_cast<Slot*>(static_cast<char*>(writeView.get_address()) + kHeaderBytes); }
  const Slot* readSlots() const {
    return reinterpret_cast<const Slot*>(static_cast<const char*>(readView.get_address()) + kHeaderBytes);
  }
  char* data() { return reinterpret_cast<char*>(slots() + slotCount); }
  const char* readData() const { return reinterpret_cast<const char*>(readSlots() + slotCount); }
  int fd() const { return writable.get_mapping_handle().handle; }
  // Zygote-side handles to the writable view exist only in the zygote (the
  // view itself is not inherited); a child holding this object must never
  // use them.
  bool writableHere() const { return getpid() == ownerPid; }
  pid_t ownerPid = getpid();
};

Result<std::unique_ptr<StateCache>> StateCache::open(const std::string& name, size_t dataBytes) {
  if (name.size() < 2 || name[0] != '/' || name.find('/', 1) != std::string::npos) {
    return makeError(Outcome::InvalidRequest, "state cache name '" + name + "' must be one '/' and a file name");
  }
  dataBytes = std::max<size_t>(roundUp8(dataBytes), 64 << 10);
  const auto slotCount = static_cast<uint32_t>(std::max<size_t>(dataBytes / kBytesPerSlot, 1024));
  auto mapping = std::make_unique<Mapping>();
  try {
    mapping->writable = bip::shared_memory_object(bip::open_or_create, name.c_str(), bip::read_write,
                                                  bip::permissions(0600));
    WriterLock lock(mapping->fd(), /*wait=*/true);
    if (!lock.held()) {
      return makeError(Outcome::ServerError, "state cache " + name + ": another process holds its lock");
    }
    bip::offset_t size = 0;
    mapping->writable.get_size(size);
    bool valid = false;
    if (size > static_cast<bip::offset_t>(kHeaderBytes)) {
      mapping->writeView = bip::mapped_region(mapping->writable, bip::read_write);
      const Header& h = mapping->header();
      valid = h.magic.load(std::memory_order_acquire) == kMagic && h.layoutVersion == kLayoutVersion &&
              h.totalBytes == static_cast<uint64_t>(size) && h.slotCount > 0 && h.dataBytes >= 8 &&
              totalBytesFor(h.slotCount, h.dataBytes) == h.totalBytes;
    }
    if (!valid) {
      // New, or a creator died before writing the magic: lay it out afresh.
      const size_t total = totalBytesFor(slotCount, dataBytes);
      mapping->writeView = bip::mapped_region();
      mapping->writable.truncate(0);  // zeroes everything that was there
      mapping->writable.truncate(static_cast<bip::offset_t>(total));
      mapping->writeView = bip::mapped_region(mapping->writable, bip::read_write);
      Header& h = mapping->header();
      h.layoutVersion = kLayoutVersion;
      h.slotCount = slotCount;
      h.dataBytes = dataBytes;
      h.totalBytes = total;
      h.magic.store(kMagic, std::memory_order_release);
    }
    mapping->slotCount = mapping->header().slotCount;
    mapping->dataBytes = mapping->header().dataBytes;
    // Children (workers, loaders) never inherit the writable view.
    auto advised = sys("madvise(MADV_DONTFORK)", [&] {
      return madvise(mapping->writeView.get_address(), mapping->writeView.get_size(), MADV_DONTFORK);
    });
    if (!advised) return advised.takeError();
    // The read view comes from a descriptor opened read-only (closed again
    // below), so a child cannot mprotect() it writable.
    bip::shared_memory_object readOnly(bip::open_only, name.c_str(), bip::read_only);
    mapping->readView = bip::mapped_region(readOnly, bip::read_only);
    if (mapping->readView.get_size() != mapping->writeView.get_size()) {
      return makeError(Outcome::ServerError, "state cache " + name + " changed size while being opened");
    }
  } catch (const bip::interprocess_exception& e) {
    return makeError(Outcome::ServerError, "state cache " + name + ": " + e.what());
  }
  return std::unique_ptr<StateCache>(new StateCache(name, std::move(mapping)));
}

Status StateCache::remove(const std::string& name) {
  bip::shared_memory_object::remove(name.c_str());
  return okStatus();
}

StateCache::StateCache(std::string name, std::unique_ptr<Mapping> mapping)
    : name_(std::move(name)), mapping_(std::move(mapping)) {}

StateCache::~StateCache() = default;

std::optional<std::string> StateCache::lookup(const StateCacheKey& key) const {
  const Mapping& m = *mapping_;
  const Header& header = m.readHeader();
  const Slot* slots = m.readSlots();
  const char* data = m.readData();
  for (size_t i = 0; i < kProbeWindow; ++i) {
    const Slot& slot = slots[(key.lo + i) % m.slotCount];
    const uint64_t before = slot.seq.load(std::memory_order_acquire);
    if (before == 0 || (before & 1) != 0) continue;
    if (slot.hi.load(std::memory_order_relaxed) != key.hi || slot.lo.load(std::memory_order_relaxed) != key.lo) {
      continue;
    }
    const uint64_t offset = slot.offset.load(std::memory_order_relaxed);
    const uint64_t length = slot.length.load(std::memory_order_relaxed);
    const uint64_t sum = slot.checksum.load(std::memory_order_relaxed);
    const uint64_t written = header.writePos.load(std::memory_order_acquire);
    if (length > kMaxValueBytes || offset > written || written - offset < length ||
        written - offset > m.dataBytes) {
      continue;
    }
    std::string value(length, '\0');
    const uint64_t start = offset % m.dataBytes;
    const uint64_t first = std::min<uint64_t>(length, m.dataBytes - start);
    std::memcpy(value.data(), data + start, first);
    std::memcpy(value.data() + first, data, length - first);
    std::atomic_thread_fence(std::memory_order_acquire);
    // A writer advances writePos before it overwrites ring bytes, and bumps
    // the slot's sequence before it rewrites the slot: either shows here.
    if (slot.seq.load(std::memory_order_relaxed) != before) continue;
    if (header.writePos.load(std::memory_order_relaxed) - offset > m.dataBytes) continue;
    if (checksum(key, value.data(), value.size()) != sum) continue;
    return value;
  }
  return std::nullopt;
}

bool StateCache::insert(const StateCacheKey& key, std::string_view value) { return insertImpl(key, value, nullptr); }

bool StateCache::insertForTest(const StateCacheKey& key, std::string_view value, const std::function<void()>& tornAt) {
  return insertImpl(key, value, &tornAt);
}

bool StateCache::insertImpl(const StateCacheKey& key, std::string_view value, const std::function<void()>* tornAt) {
  Mapping& m = *mapping_;
  if (!m.writableHere()) return false;
  Header& header = m.header();
  if (value.size() > kMaxValueBytes || roundUp8(value.size()) > m.dataBytes) {
    header.dropped.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  WriterLock lock(m.fd(), /*wait=*/false);
  if (!lock.held()) {
    header.dropped.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  Slot* slots = m.slots();
  const uint64_t written = header.writePos.load(std::memory_order_relaxed);
  const uint64_t padded = roundUp8(value.size());
  const uint64_t after = written + padded;
  // live: readable now and after this insert (its bytes not overwritten).
  auto live = [&](const Slot& s) {
    const uint64_t seq = s.seq.load(std::memory_order_relaxed);
    if (seq == 0 || (seq & 1) != 0) return false;  // empty, or torn by a writer that died
    const uint64_t offset = s.offset.load(std::memory_order_relaxed);
    return offset <= written && after - offset <= m.dataBytes;
  };
  Slot* chosen = nullptr;
  Slot* oldest = nullptr;
  for (size_t i = 0; i < kProbeWindow && chosen == nullptr; ++i) {
    Slot& s = slots[(key.lo + i) % m.slotCount];
    if (live(s) && s.hi.load(std::memory_order_relaxed) == key.hi && s.lo.load(std::memory_order_relaxed) == key.lo) {
      chosen = &s;
    }
  }
  for (size_t i = 0; i < kProbeWindow && chosen == nullptr; ++i) {
    Slot& s = slots[(key.lo + i) % m.slotCount];
    if (!live(s)) {
      chosen = &s;
    } else if (oldest == nullptr ||
               s.offset.load(std::memory_order_relaxed) < oldest->offset.load(std::memory_order_relaxed)) {
      oldest = &s;
    }
  }
  if (chosen == nullptr) {
    chosen = oldest;
    header.evictions.fetch_add(1, std::memory_order_relaxed);
  }
  const uint64_t seq = chosen->seq.load(std::memory_order_relaxed);
  const uint64_t odd = (seq + 1) | 1;
  chosen->seq.store(odd, std::memory_order_relaxed);
  header.writePos.store(after, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);

  char* data = m.data();
  const uint64_t start = written % m.dataBytes;
  const uint64_t first = std::min<uint64_t>(value.size(), m.dataBytes - start);
  std::memcpy(data + start, value.data(), first);
  if (tornAt != nullptr) (*tornAt)();
  std::memcpy(data, value.data() + first, value.size() - first);
  chosen->hi.store(key.hi, std::memory_order_relaxed);
  chosen->lo.store(key.lo, std::memory_order_relaxed);
  chosen->offset.store(written, std::memory_order_relaxed);
  chosen->length.store(value.size(), std::memory_order_relaxed);
  chosen->checksum.store(checksum(key, value.data(), value.size()), std::memory_order_relaxed);
  chosen->seq.store(odd + 1, std::memory_order_release);
  header.inserts.fetch_add(1, std::memory_order_relaxed);
  return true;
}

void StateCache::addLookups(uint64_t hits, uint64_t misses) {
  if (!mapping_->writableHere()) return;
  mapping_->header().hits.fetch_add(hits, std::memory_order_relaxed);
  mapping_->header().misses.fetch_add(misses, std::memory_order_relaxed);
}

StateCacheStats StateCache::stats() const {
  const Mapping& m = *mapping_;
  const Header& h = m.readHeader();
  StateCacheStats stats;
  stats.capacityBytes = m.dataBytes;
  const uint64_t written = h.writePos.load(std::memory_order_acquire);
  stats.usedBytes = std::min<uint64_t>(written, m.dataBytes);
  stats.inserts = h.inserts.load(std::memory_order_relaxed);
  stats.evictions = h.evictions.load(std::memory_order_relaxed);
  stats.dropped = h.dropped.load(std::memory_order_relaxed);
  stats.hits = h.hits.load(std::memory_order_relaxed);
  stats.misses = h.misses.load(std::memory_order_relaxed);
  const Slot* slots = m.readSlots();
  for (uint32_t i = 0; i < m.slotCount; ++i) {
    const uint64_t seq = slots[i].seq.load(std::memory_order_relaxed);
    const uint64_t offset = slots[i].offset.load(std::memory_order_relaxed);
    if (seq != 0 && (seq & 1) == 0 && offset <= written && written - offset <= m.dataBytes) ++stats.entries;
  }
  return stats;
}

}  // namespace forkgym
