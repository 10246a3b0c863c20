// A profile's rule sets compiled into one filter. Everything no set lists
// traps (SCMP_ACT_TRAP), so the worker's SIGSYS handler can name the syscall
// in the episode's outcome instead of dying silently.
#include "sandbox/seccomp_policy.h"

#include <fcntl.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/resource.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "sandbox/policy_rows.h"
#include "sandbox/sandbox.h"

namespace forkgym::sandbox {
namespace {

// One per class of escape the policy must stop: file system, network,
// exec, debugging other processes, process creation outside env.fork(),
// namespaces and mounts, kernel attack surface, signalling other processes.
constexpr std::string_view kDeniedExamples[] = {
    "open", "openat", "openat2", "creat",
    "socket", "connect", "bind",
    "execve", "execveat",
    "ptrace", "process_vm_readv", "process_vm_writev",
    "fork", "vfork", "clone3",
    "mount", "unshare", "setns", "chroot",
    "bpf", "perf_event_open", "userfaultfd",
    "io_uring_setup", "io_uring_enter", "io_uring_register",
    "kexec_load", "kexec_file_load",
    "init_module", "finit_module", "delete_module",
    "kill", "prctl", "wait4",
    // Naming, signalling or stealing from another process by pid: a worker
    // gets the pidfd of its env.fork() copy from clone itself.
    "pidfd_open", "pidfd_getfd", "pidfd_send_signal", "tkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo",
};

// Static storage so the SIGSYS handler reads it without allocating. Names
// come from libseccomp's table for this architecture and are kept forever.
constexpr int kSyscallNameTableSize = 512;
std::array<const char*, kSyscallNameTableSize> gSyscallNames{};
bool gSyscallNamesBuilt = false;

// One compiled filter per profile (profile.h), in static storage so a child
// loads its own without allocating. libseccomp generates the BPF program in
// seccomp_load(), ~0.3 ms a worker would otherwise pay on every reset and
// fork: it is exported once here, in the zygote.
struct CompiledFilter {
  scmp_filter_ctx ctx = nullptr;
  std::vector<sock_filter> program;
};
std::array<CompiledFilter, kMaxCompiledFilters> gFilters;

// libseccomp 2.5 exports BPF only to a descriptor: use an anonymous memfd.
bool compileFilter(CompiledFilter& filter) {
  const int fd = memfd_create("forkgym-seccomp-bpf", MFD_CLOEXEC);
  if (fd < 0) return false;
  bool ok = seccomp_export_bpf(filter.ctx, fd) == 0;
  const off_t size = ok ? lseek(fd, 0, SEEK_END) : -1;
  ok = ok && size > 0 && size % static_cast<off_t>(sizeof(sock_filter)) == 0;
  if (ok) {
    filter.program.resize(static_cast<size_t>(size) / sizeof(sock_filter));
    ok = pread(fd, filter.program.data(), static_cast<size_t>(size), 0) == size;
  }
  close(fd);
  if (!ok) filter.program.clear();
  return ok;
}

// The rows of every named set, merged per syscall: a syscall some set allows
// with any arguments is allowed with any; otherwise each distinct condition
// any set gives is one rule (libseccomp ORs the rules of one syscall). A
// row answering with an errno counts only where no set allows the call.
struct Merged {
  int number = 0;
  bool anyArguments = false;
  std::vector<Alternative> alternatives;
  int errnoValue = 0;
};

bool sameAlternative(const Alternative& a, const Alternative& b) {
  if (a.count != b.count) return false;
  for (unsigned i = 0; i < a.count; ++i) {
    const scmp_arg_cmp& x = a.conditions[i];
    const scmp_arg_cmp& y = b.conditions[i];
    if (x.arg != y.arg || x.op != y.op || x.datum_a != y.datum_a || x.datum_b != y.datum_b) return false;
  }
  return true;
}

bool mergeRow(std::vector<Merged>& merged, const PolicyRow& row, const PolicyParameters& parameters) {
  // std::string_view is not NUL-terminated in general; rows are literals,
  // but copy to be independent of that.
  char name[64] = {};
  if (row.doc.syscall.size() >= sizeof(name)) return false;
  row.doc.syscall.copy(name, row.doc.syscall.size());
  const int nr = seccomp_syscall_resolve_name(name);
  if (nr == __NR_SCMP_ERROR) return false;
  auto it = std::find_if(merged.begin(), merged.end(), [&](const Merged& m) { return m.number == nr; });
  if (it == merged.end()) it = merged.insert(merged.end(), Merged{nr, false, {}, 0});
  if (row.errnoValue != 0) {
    it->errnoValue = row.errnoValue;
    return true;
  }
  if (row.alternativeCount == 0) {
    it->anyArguments = true;
    return true;
  }
  for (unsigned i = 0; i < row.alternativeCount; ++i) {
    Alternative alt = row.alternatives[i];
    bool unset = false;
    for (unsigned c = 0; c < alt.count; ++c) {
      if (alt.conditions[c].datum_a != kRegionBytes) continue;
      alt.conditions[c].datum_a = parameters.regionBytes;
      unset = parameters.regionBytes == 0;
    }
    // A policy without a region size allows no such call at all.
    if (unset) continue;
    const bool known = std::any_of(it->alternatives.begin(), it->alternatives.end(),
                                   [&](const Alternative& other) { return sameAlternative(alt, other); });
    if (!known) it->alternatives.push_back(alt);
  }
  return true;
}

bool addMerged(scmp_filter_ctx ctx, const Merged& syscall) {
  // _exact: refuse rather than let libseccomp silently rewrite a rule.
  if (syscall.anyArguments) return seccomp_rule_add_exact_array(ctx, SCMP_ACT_ALLOW, syscall.number, 0, nullptr) == 0;
  for (const Alternative& alt : syscall.alternatives) {
    if (seccomp_rule_add_exact_array(ctx, SCMP_ACT_ALLOW, syscall.number, alt.count, alt.conditions.data()) != 0) {
      return false;
    }
  }
  if (syscall.alternatives.empty() && syscall.errnoValue != 0) {
    return seccomp_rule_add_exact_array(ctx, SCMP_ACT_ERRNO(static_cast<uint16_t>(syscall.errnoValue)),
                                        syscall.number, 0, nullptr) == 0;
  }
  return true;
}

}  // namespace

std::span<const std::string_view> deniedSyscallExamples() { return kDeniedExamples; }

bool buildSeccompFilter(size_t slot, std::span<const std::string_view> ruleSetNames,
                        const PolicyParameters& parameters) {
  if (slot >= gFilters.size()) return false;
  CompiledFilter& filter = gFilters[slot];
  if (filter.ctx != nullptr) return true;
  std::vector<Merged> merged;
  bool ok = true;
  for (std::string_view set : ruleSetNames) {
    const auto rows = policyRowsOf(set);
    ok = ok && !rows.empty();
    for (const PolicyRow& row : rows) ok = ok && mergeRow(merged, row, parameters);
  }
  scmp_filter_ctx ctx = ok ? seccomp_init(SCMP_ACT_TRAP) : nullptr;
  if (ctx == nullptr) return false;
  // A syscall through another ABI (int 0x80, x32) would be misnamed by the
  // SIGSYS reporter and has no business in the worker: kill outright.
  ok = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS) == 0;
  for (const Merged& syscall : merged) ok = ok && addMerged(ctx, syscall);
  if (!ok) {
    seccomp_release(ctx);
    return false;
  }
  filter.ctx = ctx;
  // Without a compiled program, loadSeccompFilter() falls back to seccomp_load().
  (void)compileFilter(filter);
  return true;
}

bool loadSeccompFilter(size_t slot) {
  if (slot >= gFilters.size() || gFilters[slot].ctx == nullptr) return false;
  const CompiledFilter& filter = gFilters[slot];
  if (filter.program.empty()) return seccomp_load(filter.ctx) == 0;
  sock_fprog program{static_cast<unsigned short>(filter.program.size()), const_cast<sock_filter*>(filter.program.data())};
  return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program) == 0;
}

void buildSyscallNames() {
  if (gSyscallNamesBuilt) return;
  for (int nr = 0; nr < kSyscallNameTableSize; ++nr) {
    // Owned by this table for the life of the process (never freed).
    gSyscallNames[nr] = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
  }
  gSyscallNamesBuilt = true;
}

const char* syscallName(int number) {
  if (number < 0 || number >= kSyscallNameTableSize) return "unknown";
  const char* name = gSyscallNames[number];
  return name != nullptr ? name : "unknown";
}

}  // namespace forkgym::sandbox
