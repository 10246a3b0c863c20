#include "sandbox/client_identity.h"

#include <grp.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace forkgym::sandbox {
namespace {

// setfsuid/setfsgid return the previous id whether or not they changed it;
// asking with an invalid id (-1) reads the current one back.
bool setFsUid(uid_t uid) {
  setfsuid(uid);
  return static_cast<uid_t>(setfsuid(static_cast<uid_t>(-1))) == uid;
}
bool setFsGid(gid_t gid) {
  setfsgid(gid);
  return static_cast<gid_t>(setfsgid(static_cast<gid_t>(-1))) == gid;
}

}  // namespace

bool clientIdentityOf(int socketFd, FsIdentity& identity) {
  ucred cred{};
  socklen_t length = sizeof(cred);
  if (getsockopt(socketFd, SOL_SOCKET, SO_PEERCRED, &cred, &length) != 0) return false;
  identity.uid = cred.uid;
  identity.gid = cred.gid;
  identity.groups.assign(64, 0);
  for (;;) {
    length = static_cast<socklen_t>(identity.groups.size() * sizeof(gid_t));
    if (getsockopt(socketFd, SOL_SOCKET, SO_PEERGROUPS, identity.groups.data(), &length) == 0) break;
    // ERANGE: length now says how much is needed. Otherwise no groups: the
    // client then reaches less, never more.
    if (errno != ERANGE || length <= identity.groups.size() * sizeof(gid_t)) {
      identity.groups.clear();
      return true;
    }
    identity.groups.resize(length / sizeof(gid_t));
  }
  identity.groups.resize(length / sizeof(gid_t));
  return true;
}

bool becomeClient(const FsIdentity& client) {
  if (geteuid() == 0 && client.uid != 0) {
    // Groups and gid while still root; the uid last, which clears every
    // capability with it.
    if (setgroups(client.groups.size(), client.groups.data()) != 0 ||
        setresgid(client.gid, client.gid, client.gid) != 0 || setresuid(client.uid, client.uid, client.uid) != 0) {
      return false;
    }
  }
  return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0;
}

ClientFsIdentity::ClientFsIdentity(const FsIdentity& client) {
  if (geteuid() != 0 || client.uid == 0) return;
  fsuid_ = static_cast<uid_t>(setfsuid(static_cast<uid_t>(-1)));
  fsgid_ = static_cast<gid_t>(setfsgid(static_cast<gid_t>(-1)));
  const int count = getgroups(0, nullptr);
  groups_.resize(static_cast<size_t>(count > 0 ? count : 0));
  if (count < 0 || getgroups(count, groups_.data()) != count) {
    ok_ = false;
    return;
  }
  switched_ = true;
  // Groups and fsgid first (CAP_SETGID), the fsuid last: once it is not 0
  // root's file-system capabilities are out of the effective set.
  ok_ = setgroups(client.groups.size(), client.groups.data()) == 0 && setFsGid(client.gid) && setFsUid(client.uid);
}

ClientFsIdentity::~ClientFsIdentity() {
  if (!switched_) return;
  // The fsuid back to 0 first: it returns the file-system capabilities.
  // Failure here is not reported: every one of these is allowed to a
  // process whose effective uid is still 0.
  setfsuid(fsuid_);
  setfsgid(fsgid_);
  setgroups(groups_.size(), groups_.data());
}

}  // namespace forkgym::sandbox
