#include "ipc/doorbell.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>

#include <cstring>

#include "ipc/descriptor_passing.h"
#include "base/syscall.h"

namespace forkgym {

Result<std::pair<Doorbell, Doorbell>> Doorbell::createPair() {
  int fds[2];
  auto r = sys("socketpair(doorbell)", [&] {
    return socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds);
  });
  if (!r) return r.takeError();
  return std::pair{Doorbell(UniqueFd(fds[0])), Doorbell(UniqueFd(fds[1]))};
}

Status Doorbell::ring(Ring ring, std::span<const int> fds) const {
  if (fds.size() > kMaxPassedFds) return makeError(Outcome::InvalidRequest, "too many descriptors for one ring");
  char byte = static_cast<char>(ring);
  iovec iov{&byte, 1};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  FdControlBuffer control;
  attachFds(msg, control, fds);
  auto sent = sys("sendmsg(doorbell)", [&] { return sendmsg(fd_.get(), &msg, MSG_NOSIGNAL); });
  if (!sent) {
    if (errno == EPIPE || errno == ECONNRESET) return makeError(Outcome::SessionClosed, "the peer closed the channel");
    return sent.takeError();
  }
  return okStatus();
}

namespace {

// A thread allowed on one core only (a search thread and the workers it
// drives share one: cli/strategies.py) would poll on the core its peer
// needs in order to answer: it sleeps at once instead.
bool confinedToOneCore() {
  cpu_set_t cores;
  CPU_ZERO(&cores);
  return sched_getaffinity(0, sizeof(cores), &cores) == 0 && CPU_COUNT(&cores) == 1;
}

}  // namespace

Result<Rung> Doorbell::wait(std::optional<std::chrono::milliseconds> timeout, size_t maxFds,
                            std::chrono::microseconds spin, const Interruption* interruption) const {
  // Waking a process blocked in poll() costs ~100 µs on a virtual machine,
  // far more than a cheap compiler step; a peer that answers within `spin`
  // is caught by polling the socket without blocking instead.
  if (spin.count() > 0) {
    const auto until = std::chrono::steady_clock::now() + spin;
    for (int round = 0;; ++round) {
      auto rung = receive(maxFds, MSG_DONTWAIT);
      if (rung || rung.error().outcome != Outcome::TimedOut) return rung;
      // Asked only once the peer has not answered yet (a quick reply costs
      // no system call): polling on the core the peer needs only delays it.
      if (round == 0 && confinedToOneCore()) break;
      if ((round & 15) == 15 && std::chrono::steady_clock::now() >= until) break;
    }
  }
  using Clock = std::chrono::steady_clock;
  const auto deadline = timeout ? std::optional(Clock::now() + *timeout) : std::nullopt;
  pollfd pfd{fd_.get(), POLLIN, 0};
  for (;;) {
    // An interruptible wait sleeps in slices, asking between them.
    auto until = deadline;
    if (interruption) {
      const auto sliceEnd = Clock::now() + interruption->slice;
      if (!until || sliceEnd < *until) until = sliceEnd;
    }
    auto ready = sysUntil("poll(doorbell)", until, [&](int timeoutMs) { return poll(&pfd, 1, timeoutMs); });
    if (!ready) return ready.takeError();
    if (*ready > 0) return receive(maxFds, 0);
    if (deadline && Clock::now() >= *deadline) return makeError(Outcome::TimedOut, "no reply before the timeout");
    if (interruption && interruption->requested && interruption->requested()) {
      return makeError(Outcome::Interrupted, "the wait for the reply was interrupted");
    }
  }
}

Result<Rung> Doorbell::receive(size_t maxFds, int flags) const {
  char byte = 0;
  iovec iov{&byte, 1};
  FdControlBuffer control;
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.bytes;
  msg.msg_controllen = sizeof(control.bytes);
  // Raw: a polling receiver finds nothing (EAGAIN) many times per step,
  // and building a message each time would cost more than the call.
  const ssize_t got = sysRaw([&] { return recvmsg(fd_.get(), &msg, MSG_CMSG_CLOEXEC | flags); });
  if (got < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return makeError(Outcome::TimedOut, std::string());
    if (errno == ECONNRESET) return makeError(Outcome::SessionClosed, "the peer closed the channel");
    return makeError(Outcome::ServerError, errnoMessage("recvmsg(doorbell)"));
  }
  Rung rung;
  rung.fds = takeFds(msg);
  if (got == 0) {
    // End of stream and an empty record both read as 0 bytes; only a
    // closed peer leaves the socket hung up.
    pollfd pfd{fd_.get(), 0, 0};
    if (poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLHUP)) {
      return makeError(Outcome::SessionClosed, "the peer closed the channel");
    }
    return makeError(Outcome::ProtocolMismatch, "the peer sent an empty doorbell record");
  }
  if (msg.msg_flags & MSG_TRUNC) return makeError(Outcome::ProtocolMismatch, "the peer sent an oversized doorbell record");
  if (msg.msg_flags & MSG_CTRUNC) {
    // The kernel drops descriptors that do not fit, or that this process
    // has no room for: say which.
    UniqueFd probe(fcntl(fd_.get(), F_DUPFD_CLOEXEC, 0));
    if (!probe && errno == EMFILE) {
      return makeError(Outcome::ResourceExhausted,
                       "this process has no file descriptors left (RLIMIT_NOFILE), so the descriptors the peer "
                       "sent were dropped; close some environments or raise the limit (ulimit -n)");
    }
    return makeError(Outcome::ProtocolMismatch, "the peer sent more descriptors than one ring may carry");
  }
  if (rung.fds.size() > maxFds) {
    return makeError(Outcome::ProtocolMismatch, "the peer sent descriptors where none are allowed");
  }
  if (byte != static_cast<char>(Ring::Request) && byte != static_cast<char>(Ring::Reply)) {
    return makeError(Outcome::ProtocolMismatch, "the peer rang with an unknown record");
  }
  rung.ring = static_cast<Ring>(byte);
  return rung;
}

}  // namespace forkgym
