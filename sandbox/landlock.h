// Landlock, through its raw syscalls (no C library for it in Debian): the
// file-system, network and signal confinement of an external-compiler
// profile — the filesystem stage of applySandbox().
//
// Lifecycle:
//   1. In the zygote: landlockAbi() asks the kernel once which ABI it has;
//      landlockRulesFor() turns an ExternalCompiler into rules (path and
//      the rights it is given, fitted to whether it is a file or a
//      directory).
//   2. In the child, after no_new_privs and the private /tmp:
//      restrictFileSystem() creates a ruleset handling every right this ABI
//      knows, adds the rules (opening each path O_PATH), the private /tmp
//      writable, and restricts itself. Rights the kernel does not know are
//      left out: it enforces what it can (isolation.h reports the rest).
//
// Internal to sandbox/: other layers use profile.h.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace forkgym::sandbox {

// 0 when the kernel has no Landlock (or it is disabled). Cached.
int landlockAbi();

struct LandlockRule {
  std::string path;
  uint64_t rights = 0;  // LANDLOCK_ACCESS_FS_* (a file's rule holds only file rights)
};

// Read (and, for directories, list) rights for a path; false if it does not
// exist.
bool readOnlyRule(const std::string& path, LandlockRule& rule);
// Execute and read rights for a regular file; false if it is not one.
bool executableRule(const std::string& path, LandlockRule& rule);
// /dev/null: read and write.
LandlockRule nullDeviceRule();

// After fork, single-threaded, no_new_privs set. `writable`: the private
// temporary directory (everything but execute and devices beneath it).
// False if the kernel refused; true without doing anything when there is no
// Landlock at all.
// `executeWritable`: files beneath it may also be executed (the runnable
// profile's freshly built programs).
[[nodiscard]] bool restrictFileSystem(std::span<const LandlockRule> rules, const char* writable,
                                      bool executeWritable = false);

}  // namespace forkgym::sandbox
