#include "ipc/control_socket.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "ipc/descriptor_passing.h"
#include "base/syscall.h"

namespace forkgym {
namespace {

Result<sockaddr_un> unixAddress(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return makeError(Outcome::InvalidRequest, "socket path '" + path + "' is empty or longer than " +
                                                  std::to_string(sizeof(addr.sun_path) - 1) + " bytes");
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

uint32_t readLength(const std::byte* bytes) {
  uint32_t length;
  std::memcpy(&length, bytes, sizeof(length));
  return length;  // little-endian hosts only (x86_64, aarch64)
}

}  // namespace

std::string defaultSocketDir() {
  const char* runtime = std::getenv("XDG_RUNTIME_DIR");
  if (runtime && *runtime) return std::string(runtime) + "/forkgym";
  return "/tmp/forkgym-" + std::to_string(geteuid());
}

std::string defaultSocketPath() { return defaultSocketDir() + "/forkgym.sock"; }

Status checkPrivateDir(const std::string& dir, bool create) {
  struct stat st {};
  if (lstat(dir.c_str(), &st) != 0) {
    if (errno != ENOENT || !create) {
      return makeError(Outcome::ServerError, "no forkgym socket directory '" + dir + "': " + std::strerror(errno) +
                                                 "; start forkgym-server (it creates the directory)");
    }
    // mkdir() never widens an existing directory; if someone else made it
    // meanwhile, the checks below judge theirs.
    if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
      return makeError(Outcome::ServerError, errnoMessage(("mkdir " + dir).c_str()));
    }
    if (lstat(dir.c_str(), &st) != 0) return makeError(Outcome::ServerError, errnoMessage(("lstat " + dir).c_str()));
  }
  const uid_t self = geteuid();
  char mode[8];
  std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
  if (!S_ISDIR(st.st_mode) || st.st_uid != self || (st.st_mode & 077) != 0) {
    return makeError(Outcome::ServerError,
                     "refusing the forkgym socket directory '" + dir + "': it is " +
                         (S_ISDIR(st.st_mode) ? "a directory" : S_ISLNK(st.st_mode) ? "a symbolic link" : "not a directory") +
                         " owned by uid " + std::to_string(st.st_uid) + " with mode " + mode +
                         ", not a directory only this user (uid " + std::to_string(self) +
                         ") can use (mode 0700). Another user may have created it to intercept the socket: remove it "
                         "(or set XDG_RUNTIME_DIR to a private directory) and start forkgym-server again");
  }
  return okStatus();
}

Result<PeerCredentials> peerCredentials(int fd) {
  ucred cred{};
  socklen_t length = sizeof(cred);
  if (auto r = sys("getsockopt(SO_PEERCRED)", [&] { return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &length); }); !r) {
    return r.takeError();
  }
  return PeerCredentials{cred.pid, cred.uid};
}

Result<UniqueFd> listenUnix(const std::string& path) {
  auto addr = unixAddress(path);
  if (!addr) return addr.takeError();
  auto fd = sys("socket(AF_UNIX)", [] { return socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0); });
  if (!fd) return fd.takeError();
  UniqueFd listener(*fd);
  // Only a stale socket file is replaced: never unlink anything else.
  struct stat st {};
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return makeError(Outcome::InvalidRequest, "'" + path + "' exists and is not a socket; choose another --socket path");
    }
    if (connectUnix(path)) {
      return makeError(Outcome::ServerError, "a forkgym server is already listening on '" + path + "'");
    }
    unlink(path.c_str());
  }
  // Owner-only from the moment the file exists: no window with wider rights.
  const mode_t old = umask(0177);
  auto bound = sys("bind", [&] { return bind(listener.get(), reinterpret_cast<sockaddr*>(&*addr), sizeof(*addr)); });
  umask(old);
  if (!bound) return makeError(Outcome::ServerError, "cannot bind '" + path + "': " + bound.error().message);
  if (auto r = sys("listen", [&] { return listen(listener.get(), 128); }); !r) return r.takeError();
  return listener;
}

Result<UniqueFd> connectUnix(const std::string& path) {
  auto addr = unixAddress(path);
  if (!addr) return addr.takeError();
  auto fd = sys("socket(AF_UNIX)", [] { return socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0); });
  if (!fd) return fd.takeError();
  UniqueFd conn(*fd);
  auto r = sys("connect", [&] { return connect(conn.get(), reinterpret_cast<sockaddr*>(&*addr), sizeof(*addr)); });
  if (!r) return makeError(Outcome::ServerError, "no forkgym server at '" + path + "': " + r.error().message);
  return conn;
}

Status sendFrame(int fd, capnp::MessageBuilder& message, std::span<const int> fds) {
  kj::Array<capnp::word> flat = capnp::messageToFlatArray(message);
  const auto bytes = flat.asBytes();
  if (bytes.size() > kMaxControlFrameBytes) return makeError(Outcome::InvalidRequest, "control message too large");
  uint32_t length = static_cast<uint32_t>(bytes.size());
  iovec iov[2] = {{&length, sizeof(length)}, {const_cast<kj::byte*>(bytes.begin()), bytes.size()}};
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = 2;
  if (fds.size() > kMaxPassedFds) return makeError(Outcome::InvalidRequest, "too many descriptors for one frame");
  FdControlBuffer control;
  attachFds(msg, control, fds);
  size_t total = sizeof(length) + bytes.size();
  size_t sent = 0;
  while (sent < total) {
    auto n = sys("sendmsg(control)", [&] { return sendmsg(fd, &msg, MSG_NOSIGNAL); });
    if (!n) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        pollfd pfd{fd, POLLOUT, 0};
        if (poll(&pfd, 1, 10000) <= 0) return makeError(Outcome::ServerError, "peer is not reading the control socket");
        continue;
      }
      if (errno == EPIPE || errno == ECONNRESET) return makeError(Outcome::SessionClosed, "the peer closed the control socket");
      return n.takeError();
    }
    sent += static_cast<size_t>(*n);
    // Descriptors went with the first bytes; advance the iovecs past what was sent.
    msg.msg_control = nullptr;
    msg.msg_controllen = 0;
    size_t skip = static_cast<size_t>(*n);
    while (msg.msg_iovlen > 0 && skip >= msg.msg_iov[0].iov_len) {
      skip -= msg.msg_iov[0].iov_len;
      ++msg.msg_iov;
      --msg.msg_iovlen;
    }
    if (msg.msg_iovlen > 0) {
      msg.msg_iov[0].iov_base = static_cast<char*>(msg.msg_iov[0].iov_base) + skip;
      msg.msg_iov[0].iov_len -= skip;
    }
  }
  return okStatus();
}

Result<Frame> recvFrame(int fd, std::optional<std::chrono::milliseconds> timeout, size_t maxFds) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = timeout ? std::optional(Clock::now() + *timeout) : std::nullopt;
  Frame frame;
  std::vector<std::byte> buffer(sizeof(uint32_t));
  size_t have = 0;
  size_t want = sizeof(uint32_t);
  bool haveLength = false;
  while (have < want) {
    pollfd pfd{fd, POLLIN, 0};
    auto ready = sysUntil("poll(control)", deadline, [&](int timeoutMs) { return poll(&pfd, 1, timeoutMs); });
    if (!ready) return ready.takeError();
    if (*ready == 0) return makeError(Outcome::TimedOut, "the forkgym server did not answer in time");

    iovec iov{buffer.data() + have, want - have};
    FdControlBuffer control;
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.bytes;
    msg.msg_controllen = sizeof(control.bytes);
    auto n = sys("recvmsg(control)", [&] { return recvmsg(fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT); });
    if (!n) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) continue;
      if (errno == ECONNRESET) return makeError(Outcome::ServerError, "the forkgym server closed the connection");
      return n.takeError();
    }
    for (auto& received : takeFds(msg)) frame.fds.push_back(std::move(received));
    if (*n == 0) return makeError(Outcome::ServerError, "the forkgym server closed the connection");
    have += static_cast<size_t>(*n);
    if (!haveLength && have == sizeof(uint32_t)) {
      const uint32_t length = readLength(buffer.data());
      if (length == 0 || length % sizeof(capnp::word) != 0 || length > kMaxControlFrameBytes) {
        return makeError(Outcome::ProtocolMismatch, "the forkgym server sent a frame of invalid length");
      }
      haveLength = true;
      want = sizeof(uint32_t) + length;
      buffer.resize(want);
    }
  }
  if (frame.fds.size() > maxFds) {
    return makeError(Outcome::ProtocolMismatch, "the forkgym server sent unexpected descriptors");
  }
  const size_t words = (want - sizeof(uint32_t)) / sizeof(capnp::word);
  frame.words = kj::heapArray<capnp::word>(words);
  std::memcpy(frame.words.begin(), buffer.data() + sizeof(uint32_t), words * sizeof(capnp::word));
  return frame;
}

FrameAssembler::State FrameAssembler::readFrom(int fd) {
  for (;;) {
    // Complete frame already buffered?
    if (buffer_.size() >= sizeof(uint32_t)) {
      const uint32_t length = readLength(buffer_.data());
      if (length == 0 || length % sizeof(capnp::word) != 0 || length > kMaxControlFrameBytes) {
        problem_ = "frame of invalid length " + std::to_string(length);
        return State::Malformed;
      }
      if (buffer_.size() >= sizeof(uint32_t) + length) return State::HaveFrame;
    }
    std::byte chunk[65536];
    iovec iov{chunk, sizeof(chunk)};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    // No control buffer: descriptors a client sends are discarded by the
    // kernel and flagged with MSG_CTRUNC.
    ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return State::NeedMore;
      problem_ = errnoMessage("recvmsg(control)");
      return State::Closed;
    }
    if (n == 0) return State::Closed;
    if (msg.msg_flags & MSG_CTRUNC) {
      problem_ = "client sent file descriptors, which the server never accepts";
      return State::Malformed;
    }
    buffer_.insert(buffer_.end(), chunk, chunk + n);
  }
}

kj::Array<capnp::word> FrameAssembler::takeFrame() {
  const uint32_t length = readLength(buffer_.data());
  auto words = kj::heapArray<capnp::word>(length / sizeof(capnp::word));
  std::memcpy(words.begin(), buffer_.data() + sizeof(uint32_t), length);
  buffer_.erase(buffer_.begin(), buffer_.begin() + sizeof(uint32_t) + length);
  return words;
}

}  // namespace forkgym
