// SharedRegion: the memfd-backed memory a client and its worker share.
//
// Lifecycle:
//   1. The zygote (or, for env.fork(), the parent worker) calls create():
//      an anonymous memfd — never a named /dev/shm object, so nothing can be
//      left behind — sized, sealed against resizing (kRegionSeals) and laid
//      out with a RegionHeader.
//   2. The memfd travels to the client over SCM_RIGHTS; the client calls
//      attach(), which refuses a region without those seals, maps it and
//      checks the header against the real size before trusting any offset
//      in it. After attach the client uses only its own copy of the layout.
//   3. Requests and replies are Cap'n Proto messages written into the
//      request/reply areas (ipc/message_area.h) and read in place.
//   4. LastWords: a worker's fatal-signal handler writes its outcome here
//      (async-signal-safe: plain stores) so the client can say why it died,
//      and the crashing stack into CrashStack (written before LastWords'
//      `written` flag is released, so a client that saw the flag reads a
//      whole stack).
// Any process may hold a SharedRegion; the mapping dies with the last owner.
#pragma once

#include <fcntl.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>

#include "base/result.h"
#include "base/unique_fd.h"

namespace forkgym {

inline constexpr uint32_t kRegionMagic = 0x666b6779;  // "fkgy"
inline constexpr uint32_t kRegionLayoutVersion = 1;
inline constexpr size_t kDefaultRegionBytes = 64ull << 20;  // sparse: pages cost only when touched
inline constexpr size_t kRequestAreaBytes = 1ull << 20;
// Seals every region carries once sized; attach() refuses a region without
// them. Writes stay allowed: both sides write messages, the worker its last
// words.
inline constexpr int kRegionSeals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;

struct LastWords {
  std::atomic<uint32_t> written;  // 0 until the worker said something
  uint16_t outcome;               // forkgym::Outcome
  int32_t signal;
  char message[240];
};

// The return addresses of a crashing worker's stack, as offsets into the
// modules (executable, shared libraries) they fall in, so the client can
// symbolise them without knowing the worker's address-space layout. The
// worker may write anything here: a reader bounds every count and index.
inline constexpr uint32_t kCrashStackFrames = 48;
inline constexpr uint32_t kCrashStackModules = 4;
inline constexpr uint32_t kCrashStackModulePath = 192;
struct CrashFrame {
  uint64_t offset;  // address minus the module's load bias (a file virtual address)
  uint32_t module;  // index into CrashStack::modules
  uint32_t exact;   // 1: the faulting instruction itself; 0: a return address
};
struct CrashStack {
  uint32_t frameCount;
  uint32_t moduleCount;
  CrashFrame frames[kCrashStackFrames];  // innermost first
  char modules[kCrashStackModules][kCrashStackModulePath];
};

struct RegionHeader {
  uint32_t magic;
  uint32_t layoutVersion;
  uint64_t totalBytes;
  uint64_t requestOffset;
  uint64_t requestCapacity;
  uint64_t replyOffset;
  uint64_t replyCapacity;
  uint64_t requestBytes;  // length of the current request message
  uint64_t replyBytes;    // length of the current reply message
  LastWords lastWords;
  // Turn numbers (appended; ipc/channel.h): the client numbers each request,
  // the worker says which request it has started on and which one its reply
  // answers. A reply to any other request is an out-of-turn ring; a client
  // or a test sees the worker has begun a request without guessing.
  std::atomic<uint64_t> requestSeq;  // client: the request in the request area
  std::atomic<uint64_t> startedSeq;  // worker: the request it is working on
  std::atomic<uint64_t> replySeq;    // worker: the request the reply answers
  // Appended: the crashing stack beside the last words (ipc/shared_region.h
  // lifecycle step 4; forkserver/crash_reporter.h fills it).
  CrashStack crashStack;
};

class SharedRegion {
 public:
  SharedRegion() = default;
  SharedRegion(SharedRegion&& other) noexcept;
  SharedRegion& operator=(SharedRegion&& other) noexcept;
  ~SharedRegion();

  // A new region of `bytes` (rounded up to pages) with an initialised header.
  static Result<SharedRegion> create(size_t bytes = kDefaultRegionBytes);
  // Maps a region received from a peer; validates its header.
  static Result<SharedRegion> attach(UniqueFd memfd);

  RegionHeader& header() const { return *reinterpret_cast<RegionHeader*>(base_); }
  std::span<std::byte> requestArea() const;
  std::span<std::byte> replyArea() const;
  int fd() const { return memfd_.get(); }
  size_t size() const { return size_; }

 private:
  UniqueFd memfd_;
  std::byte* base_ = nullptr;
  size_t size_ = 0;
};

// Async-signal-safe: records why the worker is about to die.
void writeLastWords(RegionHeader& header, uint16_t outcome, int signal, const char* message);

}  // namespace forkgym
