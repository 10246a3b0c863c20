#include "sandbox/process_group_filter.h"

#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace forkgym::sandbox {
namespace {

#if defined(__x86_64__)
constexpr unsigned kNativeArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
constexpr unsigned kNativeArch = AUDIT_ARCH_AARCH64;
#else
#error "the process-group filter knows no audit arch for this target"
#endif

constexpr unsigned kDenied = SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA);

// Another ABI's call numbers mean other calls: left to the filter below it
// (the worker's kills them), as is everything but the two calls.
const sock_filter kProgram[] = {
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, kNativeArch, 1, 0),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_setpgid, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, kDenied),
    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_setsid, 0, 1),
    BPF_STMT(BPF_RET | BPF_K, kDenied),
    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
};

}  // namespace

bool keepInProcessGroup() {
  sock_fprog program{static_cast<unsigned short>(sizeof(kProgram) / sizeof(kProgram[0])),
                     const_cast<sock_filter*>(kProgram)};
  // A sandboxed worker has no_new_privs already (and may not call prctl
  // for it): the first attempt is the one that counts there.
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program) == 0) return true;
  if (errno != EACCES || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return false;
  return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program) == 0;
}

}  // namespace forkgym::sandbox
