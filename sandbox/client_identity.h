// Client identity: a root server reaches files for a client only as far as
// the client could itself. Its loaders (and anything else that resolves a
// client's path while still privileged) do so under the client's
// file-system identity.
//
// Lifecycle:
//   1. The zygote reads a client's identity when it accepts the connection
//      (clientIdentityOf(): SO_PEERCRED's uid and gid, SO_PEERGROUPS'
//      supplementary groups) and hands it to what it forks for that client.
//   2. A child forked for the client, still privileged (before
//      applySandbox()), opens what the client named inside a
//      ClientFsIdentity scope: the file-system uid, gid and supplementary
//      groups are the client's (setfsuid/setfsgid/setgroups; changing the
//      fsuid from 0 also drops root's file-system capabilities, so no
//      permission is overridden), and they are the caller's again when the
//      scope ends.
// Only a root caller acting for a client that is not root changes anything:
// a server run by another user serves only that user and root, and can
// reach no more than either of them.
//
// Any single-threaded process may use a scope (setgroups changes the whole
// process; the file-system ids are per thread). After fork(): no
// exceptions; a scope that could not switch says so with ok().
#pragma once

#include <sys/types.h>

#include <vector>

namespace forkgym::sandbox {

struct FsIdentity {
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups
};

// The identity of the peer of a connected Unix socket; false if the kernel
// would not say who it is (SO_PEERCRED). Groups it will not list are left
// out, which can only narrow what is reached for the peer.
bool clientIdentityOf(int socketFd, FsIdentity& identity);

// For a child that acts only for the client from now on (it stores what a
// load made beside the client's source, forkserver/module_cache_writer.h):
// the client's uid, gid and groups for good (a root server acting for a
// user), and no gaining privileges by exec. A server that is not root is
// its clients' own user already. After fork(); false if a switch failed.
bool becomeClient(const FsIdentity& client);

class ClientFsIdentity {
 public:
  explicit ClientFsIdentity(const FsIdentity& client);
  ~ClientFsIdentity();
  ClientFsIdentity(const ClientFsIdentity&) = delete;
  ClientFsIdentity& operator=(const ClientFsIdentity&) = delete;

  // True when file-system accesses now run as the client (or needed no
  // change); false when a switch failed: the caller must not go on.
  bool ok() const { return ok_; }

 private:
  bool switched_ = false;
  bool ok_ = true;
  uid_t fsuid_ = 0;
  gid_t fsgid_ = 0;
  std::vector<gid_t> groups_;
};

}  // namespace forkgym::sandbox
