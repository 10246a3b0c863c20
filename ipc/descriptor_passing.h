// Descriptors over a Unix socket (SCM_RIGHTS), for the doorbell and the
// control socket alike.
#pragma once

#include <sys/socket.h>

#include <span>
#include <vector>

#include "base/unique_fd.h"

namespace forkgym {

// The most descriptors one message carries (a session's memfd, doorbell and
// pidfd, with room to spare).
inline constexpr size_t kMaxPassedFds = 4;

// Control-message buffer large enough for kMaxPassedFds.
struct FdControlBuffer {
  alignas(cmsghdr) char bytes[CMSG_SPACE(sizeof(int) * kMaxPassedFds)] = {};
};

// Points `message` at `buffer` holding `fds` (none: no control data).
// Requires fds.size() <= kMaxPassedFds.
void attachFds(msghdr& message, FdControlBuffer& buffer, std::span<const int> fds);

// Takes ownership of every descriptor a received `message` carries, so none
// leaks whatever the caller then decides about the message.
std::vector<UniqueFd> takeFds(msghdr& message);

}  // namespace forkgym
