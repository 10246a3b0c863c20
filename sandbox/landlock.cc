#include "sandbox/landlock.h"

#include <fcntl.h>
#include <linux/landlock.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

namespace forkgym::sandbox {
namespace {

// Debian 12's kernel headers stop at ABI 2; the kernel's ABI is stable, so
// the later rights and the grown ruleset attribute are spelled out here.
constexpr uint64_t kExecute = 1ULL << 0;
constexpr uint64_t kWriteFile = 1ULL << 1;
constexpr uint64_t kReadFile = 1ULL << 2;
constexpr uint64_t kReadDir = 1ULL << 3;
constexpr uint64_t kRemoveDir = 1ULL << 4;
constexpr uint64_t kRemoveFile = 1ULL << 5;
constexpr uint64_t kMakeDir = 1ULL << 7;
constexpr uint64_t kMakeReg = 1ULL << 8;
constexpr uint64_t kMakeSock = 1ULL << 9;
constexpr uint64_t kMakeFifo = 1ULL << 10;
constexpr uint64_t kMakeSym = 1ULL << 12;
constexpr uint64_t kRefer = 1ULL << 13;     // ABI 2
constexpr uint64_t kTruncate = 1ULL << 14;  // ABI 3
constexpr uint64_t kIoctlDev = 1ULL << 15;  // ABI 5
constexpr uint64_t kBindTcp = 1ULL << 0;    // ABI 4, network
constexpr uint64_t kConnectTcp = 1ULL << 1;
constexpr uint64_t kScopeAbstractUnixSocket = 1ULL << 0;  // ABI 6
constexpr uint64_t kScopeSignal = 1ULL << 1;

// What a rule on a file (not a directory) may hold.
constexpr uint64_t kFileRights = kExecute | kWriteFile | kReadFile | kTruncate | kIoctlDev;

struct RulesetAttr {
  uint64_t handledAccessFs;
  uint64_t handledAccessNet;  // ABI 4
  uint64_t scoped;            // ABI 6
};

struct PathBeneathAttr {
  uint64_t allowedAccess;
  int32_t parentFd;
} __attribute__((packed));

uint64_t handledFs(int abi) {
  uint64_t rights = (kMakeSym << 1) - 1;  // ABI 1: execute .. make_sym
  if (abi >= 2) rights |= kRefer;
  if (abi >= 3) rights |= kTruncate;
  if (abi >= 5) rights |= kIoctlDev;
  return rights;
}

int gAbi = -1;

}  // namespace

int landlockAbi() {
  if (gAbi < 0) {
    const long abi = syscall(SYS_landlock_create_ruleset, nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION);
    gAbi = abi > 0 ? static_cast<int>(abi) : 0;
  }
  return gAbi;
}

bool readOnlyRule(const std::string& path, LandlockRule& rule) {
  struct stat info {};
  if (stat(path.c_str(), &info) != 0) return false;
  rule = {path, S_ISDIR(info.st_mode) ? kReadFile | kReadDir : kReadFile};
  return true;
}

bool executableRule(const std::string& path, LandlockRule& rule) {
  struct stat info {};
  if (stat(path.c_str(), &info) != 0 || !S_ISREG(info.st_mode)) return false;
  rule = {path, kExecute | kReadFile};
  return true;
}

LandlockRule nullDeviceRule() { return {"/dev/null", kReadFile | kWriteFile | kTruncate}; }

bool restrictFileSystem(std::span<const LandlockRule> rules, const char* writable, bool executeWritable) {
  const int abi = landlockAbi();
  if (abi == 0) return true;
  const RulesetAttr attr{handledFs(abi), abi >= 4 ? kBindTcp | kConnectTcp : 0,
                         abi >= 6 ? kScopeAbstractUnixSocket | kScopeSignal : 0};
  // The attribute grew with the ABI: an older kernel takes only what it knows.
  const size_t size = abi >= 6 ? sizeof(attr) : abi >= 4 ? 2 * sizeof(uint64_t) : sizeof(uint64_t);
  const int ruleset = static_cast<int>(syscall(SYS_landlock_create_ruleset, &attr, size, 0));
  if (ruleset < 0) return false;
  const auto add = [&](const char* path, uint64_t rights) {
    const int fd = open(path, O_PATH | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT;  // gone since the zygote looked: nothing to allow
    struct stat info {};
    if (fstat(fd, &info) != 0) {
      close(fd);
      return false;
    }
    if (!S_ISDIR(info.st_mode)) rights &= kFileRights;
    PathBeneathAttr beneath{rights & attr.handledAccessFs, fd};
    const bool ok = beneath.allowedAccess == 0 ||
                    syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &beneath, 0) == 0;
    close(fd);
    return ok;
  };
  bool ok = true;
  for (const LandlockRule& rule : rules) ok = ok && add(rule.path.c_str(), rule.rights);
  // Everything beneath the private directory but execute and making device
  // nodes.
  if (writable != nullptr) {
    ok = ok && add(writable, kReadFile | kReadDir | kWriteFile | kRemoveDir | kRemoveFile | kMakeDir | kMakeReg |
                                 kMakeSym | kMakeFifo | kMakeSock | kRefer | kTruncate |
                                 (executeWritable ? kExecute : 0));
  }
  ok = ok && syscall(SYS_landlock_restrict_self, ruleset, 0) == 0;
  close(ruleset);
  return ok;
}

}  // namespace forkgym::sandbox
