#include "ipc/doorbell.h"

#include <poll.h>
#include <sys/socket.h>

#include <cstring>

#include "ipc/syscall.h"

namespace forkgym {
namespace {
constexpr size_t kMaxPassedFds = 4;
}

Result<std::pair<Doorbell, Doorbell>> Doorbell::createPair() {
  int fds[2];
  auto r = sys("socketpair(doorbell)", [&] {
    return socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds);
  });
  if (!r) return r.takeError();
  return std::pair{Doorbell(UniqueFd(fds[0])), Doorbell(UniqueFd(fds[1]))};
}

Status Doorbell::ring(Ring ring, std::span<const int> fds) const {
  char byte = static_cast<char>(ring);
  iovec iov{&byte, 1};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxPassedFds)];
  if (!fds.empty()) {
    if (fds.size() > kMaxPassedFds) return makeError(Outcome::InvalidRequest, "too many descriptors for one ring");
    std::memset(control, 0, sizeof(control));
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(cmsg), fds.data(), sizeof(int) * fds.size());
  }
  auto sent = sys("sendmsg(doorbell)", [&] { return sendmsg(fd_.get(), &msg, MSG_NOSIGNAL); });
  if (!sent) {
    if (errno == EPIPE || errno == ECONNRESET) return makeError(Outcome::SessionClosed, "the peer closed the channel");
    return sent.takeError();
  }
  return okStatus();
}

Result<Rung> Doorbell::wait(std::optional<std::chrono::milliseconds> timeout, size_t maxFds,
                            std::chrono::microseconds spin) const {
  // Waking a process blocked in poll() costs ~100 µs on a virtual machine,
  // far more than a cheap compiler step; a peer that answers within `spin`
  // is caught by polling the socket without blocking instead.
  if (spin.count() > 0) {
    const auto until = std::chrono::steady_clock::now() + spin;
    for (int round = 0;; ++round) {
      auto rung = receive(maxFds, MSG_DONTWAIT);
      if (rung || rung.error().outcome != Outcome::TimedOut) return rung;
      if ((round & 15) == 15 && std::chrono::steady_clock::now() >= until) break;
    }
  }
  pollfd pfd{fd_.get(), POLLIN, 0};
  const int timeoutMs = timeout ? static_cast<int>(timeout->count()) : -1;
  auto ready = sys("poll(doorbell)", [&] { return poll(&pfd, 1, timeoutMs); });
  if (!ready) return ready.takeError();
  if (*ready == 0) return makeError(Outcome::TimedOut, "no reply before the timeout");
  return receive(maxFds, 0);
}

Result<Rung> Doorbell::receive(size_t maxFds, int flags) const {
  char byte = 0;
  iovec iov{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxPassedFds)];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  auto got = sys("recvmsg(doorbell)", [&] { return recvmsg(fd_.get(), &msg, MSG_CMSG_CLOEXEC | flags); });
  if (!got) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return makeError(Outcome::TimedOut, "nothing yet");
    if (errno == ECONNRESET) return makeError(Outcome::SessionClosed, "the peer closed the channel");
    return got.takeError();
  }
  Rung rung;
  // Take ownership of whatever arrived first, so nothing leaks on any error.
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      const size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (size_t i = 0; i < n; ++i) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
        rung.fds.emplace_back(fd);
      }
    }
  }
  if (*got == 0) return makeError(Outcome::SessionClosed, "the peer closed the channel");
  if (msg.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) {
    return makeError(Outcome::ProtocolMismatch, "the peer sent an oversized doorbell record");
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
