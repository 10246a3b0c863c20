#include "client/process_identity.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdint>
#include <optional>
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

struct PidfdTarget {
  pid_t pid = -1;        // "Pid:": in our PID namespace; -1 once it has exited
  pid_t innermost = -1;  // the last "NSpid:" entry: in its own PID namespace
};

PidfdTarget pidfdTargetIn(std::string_view text) {
  PidfdTarget target;
  for (size_t start = 0; start < text.size();) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    if (line.starts_with("Pid:")) parseInt(line.substr(4), target.pid);
    if (line.starts_with("NSpid:")) {
      std::string_view rest = line.substr(6);
      for (pid_t each = 0; parseInt(rest, each);) {
        target.innermost = each;
        const size_t next = rest.find_first_of(" \t", rest.find_first_not_of(" \t"));
        if (next == std::string_view::npos) break;
        rest.remove_prefix(next);
      }
    }
    start = end + 1;
  }
  return target;
}

// The process a pidfd names, from its fdinfo.
Result<PidfdTarget> pidfdTarget(int pidfd) {
  auto info = readProcFile("/proc/self/fdinfo/" + std::to_string(pidfd));
  if (!info) return info.takeError();
  if (info->find("\nPid:") == std::string::npos) {
    return makeError(Outcome::ProtocolMismatch, "the descriptor sent as a worker's pidfd is not a pidfd");
  }
  return pidfdTargetIn(*info);
}

bool hasExited(int pidfd) {
  // A pidfd polls readable once its process has exited.
  pollfd pfd{pidfd, POLLIN, 0};
  return poll(&pfd, 1, 0) != 0;
}

// PIDFD_GET_INFO (Linux 6.13, include/uapi/linux/pidfd.h): the kernel says
// which process a pidfd names, and its parent, in one call instead of two
// /proc reads (~1 µs against ~8 µs, paid on every reset and env.fork()).
// Declared here because older kernel headers (Debian 12's) lack it; the
// layout is the kernel's ABI, which only grows at the end.
struct PidfdInfo {
  uint64_t mask;
  uint64_t cgroupid;
  uint32_t pid;
  uint32_t tgid;
  uint32_t ppid;
  uint32_t ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
  int32_t exitCode;
  uint32_t coredumpMask;
  uint32_t spare;
};
constexpr uint64_t kPidfdInfoPid = 1u << 0;
constexpr unsigned long kPidfdGetInfo = _IOWR(0xFF, 11, PidfdInfo);

// nullopt: this kernel has no PIDFD_GET_INFO, or the descriptor is no pidfd
// (ENOTTY either way): the /proc reading decides, and says what is wrong.
std::optional<Result<ProcessIdentity>> identifyThroughKernel(int pidfd, pid_t claimedPid) {
  PidfdInfo info{};
  info.mask = kPidfdInfoPid;
  if (ioctl(pidfd, kPidfdGetInfo, &info) != 0) {
    if (errno == ESRCH) return ProcessIdentity{.exited = true};
    return std::nullopt;
  }
  if ((info.mask & kPidfdInfoPid) == 0) return std::nullopt;
  ProcessIdentity identity;
  identity.pid = static_cast<pid_t>(info.pid);
  identity.parent = static_cast<pid_t>(info.ppid);
  if (identity.pid != claimedPid) {
    // Claimed as the worker sees it, inside the workers' PID namespace:
    // only fdinfo's NSpid says which pid that is.
    auto named = pidfdTarget(pidfd);
    if (!named) return named.takeError();
    if (named->pid != identity.pid || named->innermost != claimedPid) {
      return makeError(Outcome::ProtocolMismatch, "a pidfd claimed for process " + std::to_string(claimedPid) +
                                                      " names process " + std::to_string(identity.pid));
    }
  }
  identity.group = getpgid(identity.pid);
  // Still running after getpgid(): the group is this process's, not that of
  // a later one that reused its pid.
  if (hasExited(pidfd)) return ProcessIdentity{.exited = true};
  if (identity.group < 0) return std::nullopt;
  return identity;
}

}  // namespace

Result<ProcessIdentity> identify(int pidfd, pid_t claimedPid) {
  if (auto known = identifyThroughKernel(pidfd, claimedPid)) return std::move(*known);
  return identifyThroughProc(pidfd, claimedPid);
}

Result<ProcessIdentity> identifyThroughProc(int pidfd, pid_t claimedPid) {
  auto named = pidfdTarget(pidfd);
  if (!named) return named.takeError();
  ProcessIdentity identity;
  if (named->pid <= 0 || hasExited(pidfd)) {
    identity.exited = true;
    return identity;
  }
  if (named->pid != claimedPid && named->innermost != claimedPid) {
    return makeError(Outcome::ProtocolMismatch, "a pidfd claimed for process " + std::to_string(claimedPid) +
                                                    " names process " + std::to_string(named->pid));
  }
  const pid_t* target = &named->pid;
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
