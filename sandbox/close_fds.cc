#include "sandbox/close_fds.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>

namespace forkgym::sandbox {
namespace {

unsigned gFdScanLimit = 1u << 16;

// Closes [first, last]. close_range does it in one call whatever the gap;
// the fallback walks the range, bounded by the limit seen before sandboxing.
bool closeRange(unsigned first, unsigned last) {
  if (close_range(first, last, 0) == 0) return true;
  if (errno != ENOSYS) return false;
  const unsigned end = std::min(last, gFdScanLimit);
  for (unsigned fd = first; fd <= end && fd != UINT_MAX; ++fd) {
    // EBADF is the common case (a gap); other errors still leave fd closed.
    (void)close(static_cast<int>(fd));
  }
  return true;
}

// Smallest kept descriptor >= from, or -1. keep is tiny (a channel's few
// descriptors), so a scan beats sorting into a buffer we would have to size.
long nextKept(std::span<const int> keep, unsigned from) {
  long best = -1;
  for (int fd : keep) {
    if (fd >= 0 && static_cast<unsigned>(fd) >= from && (best < 0 || fd < best)) best = fd;
  }
  return best;
}

}  // namespace

void rememberFdScanLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
  // An unlimited hard limit would make the fallback loop forever; 2^20 is
  // the kernel's default nr_open ceiling.
  gFdScanLimit = static_cast<unsigned>(std::min<rlim_t>(limit.rlim_max, 1u << 20));
}

bool closeFdsExcept(std::span<const int> keep) {
  unsigned from = 0;
  for (;;) {
    const long kept = nextKept(keep, from);
    if (kept < 0) return closeRange(from, UINT_MAX);
    if (static_cast<unsigned long>(kept) > from && !closeRange(from, static_cast<unsigned>(kept) - 1)) {
      return false;
    }
    from = static_cast<unsigned>(kept) + 1;
  }
}

}  // namespace forkgym::sandbox
