#include "ipc/shared_region.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <new>

#include "base/syscall.h"

namespace forkgym {
namespace {

size_t roundUpToPage(size_t bytes) {
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return (bytes + page - 1) / page * page;
}

// Offsets are word-aligned so Cap'n Proto can read messages in place.
constexpr size_t kHeaderBytes = 4096;
static_assert(sizeof(RegionHeader) <= kHeaderBytes, "the region header outgrew its page");

}  // namespace

SharedRegion::SharedRegion(SharedRegion&& other) noexcept
    : memfd_(std::move(other.memfd_)),
      base_(std::exchange(other.base_, nullptr)),
      size_(std::exchange(other.size_, 0)) {}

SharedRegion& SharedRegion::operator=(SharedRegion&& other) noexcept {
  if (this != &other) {
    if (base_) munmap(base_, size_);
    memfd_ = std::move(other.memfd_);
    base_ = std::exchange(other.base_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

SharedRegion::~SharedRegion() {
  if (base_) munmap(base_, size_);
}

Result<SharedRegion> SharedRegion::create(size_t bytes) {
  bytes = roundUpToPage(bytes);
  if (bytes < kHeaderBytes + kRequestAreaBytes + 4096) {
    return makeError(Outcome::InvalidRequest, "shared region too small");
  }
  auto fd = sys("memfd_create", [] { return memfd_create("forkgym-channel", MFD_CLOEXEC | MFD_ALLOW_SEALING); });
  if (!fd) return fd.takeError();
  SharedRegion region;
  region.memfd_.reset(*fd);
  if (auto r = sys("ftruncate", [&] { return ftruncate(region.memfd_.get(), static_cast<off_t>(bytes)); }); !r) {
    return r.takeError();
  }
  // From here on nobody — the peer included — can change the size: a region
  // shrunk under its client's mapping would kill the client with SIGBUS.
  if (auto r = sys("seal shared region", [&] { return fcntl(region.memfd_.get(), F_ADD_SEALS, kRegionSeals); }); !r) {
    return r.takeError();
  }
  void* base = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, region.memfd_.get(), 0);
  if (base == MAP_FAILED) return makeError(Outcome::ServerError, errnoMessage("mmap shared region"));
  region.base_ = static_cast<std::byte*>(base);
  region.size_ = bytes;

  auto* header = new (base) RegionHeader{};
  header->magic = kRegionMagic;
  header->layoutVersion = kRegionLayoutVersion;
  header->totalBytes = bytes;
  header->requestOffset = kHeaderBytes;
  header->requestCapacity = kRequestAreaBytes;
  header->replyOffset = kHeaderBytes + kRequestAreaBytes;
  header->replyCapacity = bytes - header->replyOffset;
  return region;
}

Result<SharedRegion> SharedRegion::attach(UniqueFd memfd) {
  // Seals first: once SHRINK, GROW and SEAL are on, the size read below is
  // the size for good. Anything else could be shrunk under our mapping.
  const int seals = fcntl(memfd.get(), F_GET_SEALS);
  if (seals < 0) {
    return makeError(Outcome::ProtocolMismatch,
                     "peer sent something that is not a shared-memory region (" + errnoMessage("F_GET_SEALS") +
                         "); is the server a forkgym-server of this version?");
  }
  if ((seals & kRegionSeals) != kRegionSeals) {
    return makeError(Outcome::ProtocolMismatch,
                     "peer sent a shared region that is not sealed against resizing (it could be shrunk under "
                     "this process); is the server a forkgym-server of this version?");
  }
  struct stat st {};
  if (fstat(memfd.get(), &st) != 0) return makeError(Outcome::ServerError, errnoMessage("fstat shared region"));
  const auto bytes = static_cast<size_t>(st.st_size);
  if (bytes < kHeaderBytes + kRequestAreaBytes + 4096 || bytes % 4096 != 0) {
    return makeError(Outcome::ProtocolMismatch, "peer sent a shared region of invalid size " + std::to_string(bytes));
  }
  void* base = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, memfd.get(), 0);
  if (base == MAP_FAILED) return makeError(Outcome::ServerError, errnoMessage("mmap shared region"));
  SharedRegion region;
  region.memfd_ = std::move(memfd);
  region.base_ = static_cast<std::byte*>(base);
  region.size_ = bytes;

  // The peer wrote the header: check every field before any offset is used.
  const RegionHeader& h = region.header();
  const bool valid = h.magic == kRegionMagic && h.layoutVersion == kRegionLayoutVersion &&
                     h.totalBytes == bytes && h.requestOffset == kHeaderBytes &&
                     h.requestCapacity == kRequestAreaBytes &&
                     h.replyOffset == kHeaderBytes + kRequestAreaBytes &&
                     h.replyCapacity == bytes - h.replyOffset;
  if (!valid) return makeError(Outcome::ProtocolMismatch, "peer's shared region has an unexpected layout");
  return region;
}

std::span<std::byte> SharedRegion::requestArea() const {
  return {base_ + kHeaderBytes, kRequestAreaBytes};
}

std::span<std::byte> SharedRegion::replyArea() const {
  const size_t offset = kHeaderBytes + kRequestAreaBytes;
  return {base_ + offset, size_ - offset};
}

void writeLastWords(RegionHeader& header, uint16_t outcome, int signal, const char* message) {
  LastWords& words = header.lastWords;
  words.outcome = outcome;
  words.signal = signal;
  size_t i = 0;
  for (; message && message[i] && i + 1 < sizeof(words.message); ++i) words.message[i] = message[i];
  words.message[i] = '\0';
  words.written.store(1, std::memory_order_release);
}

}  // namespace forkgym
