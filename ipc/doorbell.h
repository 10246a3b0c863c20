// Doorbell: says "your turn" between a client and its worker, and says at
// once when the other side is gone.
//
// A SOCK_SEQPACKET Unix socketpair: each ring is one record of one byte,
// optionally carrying descriptors (only the worker's fork reply does). A
// peer's death closes its end, which wakes a waiting poll() immediately —
// unlike a bare futex in shared memory, which would wait forever.
//
// Lifecycle: createPair() in the process that sets up a channel; one end goes
// to each side; ring()/wait() alternate; destroying the Doorbell closes it,
// which is how a worker learns its client is gone.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"

namespace forkgym {

enum class Ring : uint8_t {
  Request = 'q',  // client -> worker: a request is in the region
  Reply = 'r',    // worker -> client: the reply is in the region
};

struct Rung {
  Ring ring;
  std::vector<UniqueFd> fds;  // received descriptors (fork replies only)
};

// Lets a caller cut a long wait short (Ctrl-C in Python, a cancel button in
// C++): requested() is asked each time `slice` passes without a reply. It
// runs on the waiting thread and must be cheap; true ends the wait with
// Outcome::Interrupted.
struct Interruption {
  std::function<bool()> requested;
  std::chrono::milliseconds slice{50};
};

// A waiting side polls without blocking for this long before it sleeps:
// long enough to catch the reply to a cheap step, short enough that idle
// episodes cost no CPU.
inline constexpr std::chrono::microseconds kDefaultSpin{50};

class Doorbell {
 public:
  Doorbell() = default;
  explicit Doorbell(UniqueFd fd) : fd_(std::move(fd)) {}

  static Result<std::pair<Doorbell, Doorbell>> createPair();

  Status ring(Ring ring, std::span<const int> fds = {}) const;

  // Waits for the peer's ring. timeout nullopt = forever; it is a deadline,
  // not restarted when a signal interrupts the wait.
  // Errors: Outcome::SessionClosed when the peer closed its end (died),
  // Outcome::TimedOut when the timeout passed, Outcome::ProtocolMismatch for
  // a malformed record (empty, oversized, unknown) or descriptors where
  // none, or fewer, were allowed; Outcome::ResourceExhausted when this
  // process had no room for the descriptors the peer sent;
  // Outcome::Interrupted when `interruption` asked to stop.
  // spin: how long to poll without blocking first (see kDefaultSpin).
  Result<Rung> wait(std::optional<std::chrono::milliseconds> timeout, size_t maxFds = 0,
                    std::chrono::microseconds spin = kDefaultSpin, const Interruption* interruption = nullptr) const;

  int fd() const { return fd_.get(); }
  // One non-blocking (flags = MSG_DONTWAIT) or blocking receive;
  // TimedOut when nothing was there.
  Result<Rung> receive(size_t maxFds, int flags) const;
  UniqueFd release() { return std::move(fd_); }

 private:
  UniqueFd fd_;
};

}  // namespace forkgym
