// The control conversation between a client and the zygote: length-prefixed
// Cap'n Proto frames over a Unix stream socket.
//
// Frame: u32 little-endian byte length, then a flat Cap'n Proto message.
// Descriptors ride on a frame's first byte, and only zygote->client frames
// carry them; the zygote reads with no room for descriptors, so any a client
// sends are closed by the kernel and the frame is rejected.
//
// Lifecycle: the zygote listenUnix()s (or is handed a connected socket by a
// client that spawned it); a client connectUnix()s, then sends a Hello and
// alternates sendFrame/recvFrame. The zygote reads without blocking through
// FrameAssembler so one slow client cannot stall the others.
#pragma once

#include <sys/types.h>

#include <capnp/message.h>
#include <capnp/serialize.h>

#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"

namespace forkgym {

inline constexpr size_t kMaxControlFrameBytes = 64ull << 20;

// Owner-only listening socket at `path` (a stale socket file is replaced).
Result<UniqueFd> listenUnix(const std::string& path);
Result<UniqueFd> connectUnix(const std::string& path);
// The default socket lives in a directory only its user can use:
// $XDG_RUNTIME_DIR/forkgym, else /tmp/forkgym-<uid>. Anyone may create a
// name in /tmp first; the directory's owner and mode say whether it is ours.
std::string defaultSocketDir();
// defaultSocketDir() + "/forkgym.sock".
std::string defaultSocketPath();
// Checks `dir` is a directory (not a symlink) owned by this user with no
// access for anyone else, creating it (0700) first when `create` and it is
// missing. A clear error naming the owner and mode otherwise.
Status checkPrivateDir(const std::string& dir, bool create);

struct PeerCredentials {
  pid_t pid = -1;
  uid_t uid = 0;
};
// Who is on the other end of a connected Unix socket (SO_PEERCRED: for a
// connect()ed socket, the listener's identity when it called listen()).
Result<PeerCredentials> peerCredentials(int fd);

Status sendFrame(int fd, capnp::MessageBuilder& message, std::span<const int> fds = {});

struct Frame {
  kj::Array<capnp::word> words;
  std::vector<UniqueFd> fds;
};

// Blocking read of one frame (client side), up to `timeout` for the whole
// frame. SessionClosed when the zygote hung up.
Result<Frame> recvFrame(int fd, std::optional<std::chrono::milliseconds> timeout, size_t maxFds);

// Non-blocking frame assembly for the zygote's event loop.
class FrameAssembler {
 public:
  enum class State { NeedMore, HaveFrame, Closed, Malformed };
  // Reads what is available on the (non-blocking) fd.
  State readFrom(int fd);
  // The frame completed by readFrom() returning HaveFrame.
  kj::Array<capnp::word> takeFrame();
  const std::string& problem() const { return problem_; }

 private:
  std::vector<std::byte> buffer_;
  std::string problem_;
};

}  // namespace forkgym
