#include "sandbox/private_temp.h"

#include <sched.h>
#include <sys/mount.h>

#include <cstdio>

namespace forkgym::sandbox {

bool enterPrivateTemp(uint64_t bytes, bool executable) {
  if (unshare(CLONE_NEWNS) != 0) return false;
  // Private, recursively: a mount made here must never propagate to the
  // namespace it was copied from (a new user namespace's copy is already a
  // slave of it; private says so outright).
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return false;
  char options[64];
  std::snprintf(options, sizeof(options), "size=%llu,mode=0700", static_cast<unsigned long long>(bytes));
  // noexec: nothing written there runs, whatever else fails (except in the
  // runnable profile, whose point is to run what it builds there).
  const unsigned long flags = MS_NOSUID | MS_NODEV | (executable ? 0 : MS_NOEXEC);
  return mount("forkgym-tmp", kPrivateTempDirectory, "tmpfs", flags, options) == 0;
}

}  // namespace forkgym::sandbox
