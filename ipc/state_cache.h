// StateCache: a bounded table of small values (a step's transition, an
// observation, a reward) under 128-bit keys, in one named POSIX shared-memory
// segment (Boost.Interprocess shared_memory_object + mapped_region) that
// every zygote of a user on the machine opens, and every worker reads.
//
// Lifecycle:
//   1. A zygote calls open(): creates the segment or opens the one another
//      zygote made (initialised once, under the writer lock, its magic
//      written last so a torn initialisation is redone). It maps it twice:
//      writable with MADV_DONTFORK, so no child ever inherits a writable
//      view, and read-only from a descriptor opened read-only, which every
//      forked child inherits and cannot make writable (mprotect refuses
//      PROT_WRITE on a shared mapping of a read-only file).
//   2. Any process holding the read view calls lookup(): lock-free, never
//      blocks, never trusts the segment: a slot is read under its sequence
//      number (a seqlock), its bytes copied out of the data ring, then the
//      sequence, the ring's write position and a checksum over key and
//      value are checked again; anything torn, overwritten or out of bounds
//      is a miss.
//   3. Only zygotes call insert() (the trusted writers: workers submit
//      entries to their zygote, forkserver/state_cache_writer.h). Writers
//      serialise with flock() on the segment, which the kernel releases when
//      a writer dies — a writer killed mid-insert leaves at most one slot
//      whose sequence stays odd or whose checksum fails, which readers skip
//      and the next writer reuses; nobody waits on a dead lock holder (a
//      busy lock is skipped, not waited for: a cache may drop an entry).
//   4. Bounded: values go into a ring of fixed size, slots into a fixed
//      open-addressed table; a new entry overwrites the oldest bytes of the
//      ring and, when its probe window is full, the oldest slot (FIFO).
// The segment outlives its zygotes on purpose (the next search on the machine
// reads it): remove() deletes it; its size is bounded by its creator.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace forkgym {

struct StateCacheKey {
  uint64_t hi = 0;
  uint64_t lo = 0;
  bool operator==(const StateCacheKey&) const = default;
};

struct StateCacheStats {
  uint64_t capacityBytes = 0;  // the data ring
  uint64_t usedBytes = 0;      // bytes of the ring written so far (at most capacityBytes)
  uint64_t entries = 0;        // readable entries now
  uint64_t inserts = 0;
  uint64_t evictions = 0;      // live entries overwritten by newer ones
  uint64_t dropped = 0;        // inserts skipped: the lock was busy, or the value too large
  uint64_t hits = 0;           // lookups answered (as reported by workers)
  uint64_t misses = 0;
};

class StateCache {
 public:
  // Values larger than this are never stored (an IR listing is better
  // computed than shipped through a zygote).
  static constexpr size_t kMaxValueBytes = 64 << 10;

  // Step 1 (zygote): `name` is a POSIX shm name ("/forkgym-..."), `dataBytes`
  // the ring's size if this call creates the segment (an existing segment
  // keeps its creator's size).
  static Result<std::unique_ptr<StateCache>> open(const std::string& name, size_t dataBytes);
  // Deletes the named segment (mappings stay valid until unmapped).
  static Status remove(const std::string& name);
  ~StateCache();
  StateCache(const StateCache&) = delete;
  StateCache& operator=(const StateCache&) = delete;

  // Step 2 (any process holding the read view): the value stored under
  // `key`, or nullopt.
  std::optional<std::string> lookup(const StateCacheKey& key) const;
  // Step 3 (the zygote): false when the entry was dropped (busy lock, too
  // large). Replaces an entry already under `key`.
  bool insert(const StateCacheKey& key, std::string_view value);
  // The zygote adds the hits and misses its workers report.
  void addLookups(uint64_t hits, uint64_t misses);
  StateCacheStats stats() const;
  const std::string& name() const { return name_; }

  // Tests only: runs insert() but calls `tornAt` after the value is half
  // written (a test SIGKILLs itself there to leave a torn entry).
  bool insertForTest(const StateCacheKey& key, std::string_view value, const std::function<void()>& tornAt);

 private:
  struct Mapping;
  StateCache(std::string name, std::unique_ptr<Mapping> mapping);
  bool insertImpl(const StateCacheKey& key, std::string_view value, const std::function<void()>* tornAt);

  std::string name_;
  std::unique_ptr<Mapping> mapping_;
};

}  // namespace forkgym
