#include "client/process_identity.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <charconv>
#include <string>
#include <string_view>

#include "base/syscall.h"
#include "base/unique_fd.h"

namespace forkgym {
namespace {

// The first 4 KiB of a /proc file: enough for fdinfo and stat.
Result<std::string> readProcFile(const std::string& path) {
  auto fd = sys("open(/proc)", [&] { return open(path.c_str(), O_RDONLY | O_CLOEXEC); });
  if (!fd) return makeError(Outcome::ProtocolMismatch, "cannot read " + path + ": " + fd.error().message);
  UniqueFd owned(*fd);
  std::string text(4096, '\0');
  auto n = sys("read(/proc)", [&] { return read(owned.get(), text.data(), text.size()); });
  if (!n) return makeError(Outcome::ProtocolMismatch, "cannot read " + path + ": " + n.error().message);
  text.resize(static_cast<size_t>(*n));
  return text;
}

bool parseInt(std::string_view text, pid_t& out) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), out);
  return error == std::errc() && end != text.data();
}

// The value of "Pid:" in a pidfd's fdinfo; -1 once the process has exited.
Result<pid_t> pidfdTarget(int pidfd) {
  auto info = readProcFile("/proc/self/fdinfo/" + std::to_string(pidfd));
  if (!info) return info.takeError();
  std::string_view text = *info;
  for (size_t start = 0; start < text.size();) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    pid_t pid = 0;
    if (line.starts_with("Pid:") && parseInt(line.substr(4), pid)) return pid;
    start = end + 1;
  }
  return makeError(Outcome::ProtocolMismatch, "the descriptor sent as a worker's pidfd is not a pidfd");
}

bool hasExited(int pidfd) {
  // A pidfd polls readable once its process has exited.
  pollfd pfd{pidfd, POLLIN, 0};
  return poll(&pfd, 1, 0) != 0;
}

}  // namespace

Result<ProcessIdentity> identify(int pidfd, pid_t claimedPid) {
  auto target = pidfdTarget(pidfd);
  if (!target) return target.takeError();
  ProcessIdentity identity;
  if (*target <= 0 || hasExited(pidfd)) {
    identity.exited = true;
    return identity;
  }
  if (*target != claimedPid) {
    return makeError(Outcome::ProtocolMismatch, "a pidfd claimed for process " + std::to_string(claimedPid) +
                                                    " names process " + std::to_string(*target));
  }
  auto stat = readProcFile("/proc/" + std::to_string(*target) + "/stat");
  if (!stat) {
    // It exited between the two reads.
    if (hasExited(pidfd)) {
      identity.exited = true;
      return identity;
    }
    return stat.takeError();
  }
  // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses,
  // so fields are counted from the last ')'.
  const size_t close = stat->rfind(')');
  pid_t parent = -1, group = -1;
  if (close == std::string::npos || close + 4 > stat->size()) {
    return makeError(Outcome::ProtocolMismatch, "unreadable /proc/" + std::to_string(*target) + "/stat");
  }
  std::string_view rest = std::string_view(*stat).substr(close + 4);  // past ") S "
  const size_t space = rest.find(' ');
  if (space == std::string_view::npos || !parseInt(rest.substr(0, space), parent) ||
      !parseInt(rest.substr(space + 1), group)) {
    return makeError(Outcome::ProtocolMismatch, "unreadable /proc/" + std::to_string(*target) + "/stat");
  }
  // Still running after the read: the stat described this very process (a
  // pid is not reused while its process lives).
  if (hasExited(pidfd)) {
    identity.exited = true;
    return identity;
  }
  identity.pid = *target;
  identity.parent = parent;
  identity.group = group;
  return identity;
}

}  // namespace forkgym
