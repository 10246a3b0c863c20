#include "forkserver/crash_reporter.h"

#include <execinfo.h>
#include <limits.h>
#include <link.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include <new>

#include "base/outcome.h"
#include "sandbox/sandbox.h"

namespace forkgym::forkserver {
namespace {

RegionHeader* gHeader = nullptr;
alignas(16) char gAltStack[128 * 1024];

// The worker's executable segments, snapshotted before the sandbox (which
// denies /proc) and before any crash: a handler may not call
// dl_iterate_phdr (it takes the loader's lock), but may read this table.
struct LoadedModule {
  uintptr_t bias;  // dlpi_addr: a file virtual address plus this is the address
  uintptr_t low, high;
  char path[kCrashStackModulePath];
};
constexpr size_t kMaxModules = 96;
LoadedModule gModules[kMaxModules];
size_t gModuleCount = 0;
char gExecutable[kCrashStackModulePath];

void copyText(char* dst, size_t cap, const char* src) {
  size_t i = 0;
  for (; src && src[i] && i + 1 < cap; ++i) dst[i] = src[i];
  dst[i] = '\0';
}

int addModule(dl_phdr_info* info, size_t, void*) {
  const char* path = info->dlpi_name && info->dlpi_name[0] ? info->dlpi_name : gExecutable;
  for (int i = 0; i < info->dlpi_phnum && gModuleCount < kMaxModules; ++i) {
    const ElfW(Phdr)& segment = info->dlpi_phdr[i];
    if (segment.p_type != PT_LOAD || !(segment.p_flags & PF_X)) continue;
    LoadedModule& module = gModules[gModuleCount++];
    module.bias = info->dlpi_addr;
    module.low = info->dlpi_addr + segment.p_vaddr;
    module.high = module.low + segment.p_memsz;
    copyText(module.path, sizeof(module.path), path);
  }
  return 0;
}

void snapshotModules() {
  const ssize_t n = readlink("/proc/self/exe", gExecutable, sizeof(gExecutable) - 1);
  gExecutable[n > 0 ? n : 0] = '\0';
  gModuleCount = 0;
  dl_iterate_phdr(addModule, nullptr);
  // backtrace() loads the unwinder on its first call; do that now, not in a
  // handler (and not after the sandbox forbids opening it).
  void* warm[2];
  backtrace(warm, 2);
}

bool equal(const char* a, const char* b) {
  size_t i = 0;
  for (; a[i] && a[i] == b[i]; ++i) {}
  return a[i] == b[i];
}

// Writes the stack into the region's CrashStack, innermost frame first.
// `pc` (the faulting instruction, 0 when there is none) drops the frames of
// the handler itself; otherwise `skip` frames are dropped. Unwinding with
// the unwinder loaded in advance reads only memory: nothing here allocates
// or locks.
[[gnu::noinline]] void recordStack(uintptr_t pc, int skip) {
  if (!gHeader) return;
  void* addresses[kCrashStackFrames + 8];
  const int count = backtrace(addresses, static_cast<int>(sizeof(addresses) / sizeof(addresses[0])));
  int first = skip < count ? skip : count;
  if (pc) {
    for (int i = 0; i < count; ++i) {
      if (reinterpret_cast<uintptr_t>(addresses[i]) == pc) {
        first = i;
        break;
      }
    }
  }
  CrashStack& stack = gHeader->crashStack;
  stack.frameCount = 0;
  stack.moduleCount = 0;
  for (int i = first; i < count && stack.frameCount < kCrashStackFrames; ++i) {
    const uintptr_t address = reinterpret_cast<uintptr_t>(addresses[i]);
    const LoadedModule* found = nullptr;
    for (size_t m = 0; m < gModuleCount && !found; ++m) {
      if (address >= gModules[m].low && address < gModules[m].high) found = &gModules[m];
    }
    if (!found) continue;  // JIT code or a vanished library: nothing to symbolise
    uint32_t index = 0;
    while (index < stack.moduleCount && !equal(stack.modules[index], found->path)) ++index;
    if (index == stack.moduleCount) {
      if (index == kCrashStackModules) continue;
      copyText(stack.modules[index], kCrashStackModulePath, found->path);
      ++stack.moduleCount;
    }
    CrashFrame& frame = stack.frames[stack.frameCount++];
    frame.offset = address - found->bias;
    frame.module = index;
    frame.exact = pc && address == pc ? 1 : 0;
  }
}

// Signals that end a worker, with the outcome each one means.
struct FatalSignal {
  int signal;
  Outcome outcome;
};
constexpr FatalSignal kFatalSignals[] = {
    {SIGSEGV, Outcome::Crashed}, {SIGBUS, Outcome::Crashed},  {SIGILL, Outcome::Crashed},
    {SIGFPE, Outcome::Crashed},  {SIGABRT, Outcome::Crashed}, {SIGTRAP, Outcome::Crashed},
    {SIGSYS, Outcome::SandboxViolation}, {SIGXCPU, Outcome::TimedOut},
};

// Appends src to dst (of capacity cap) without libc string functions that
// are not async-signal-safe.
void append(char* dst, size_t cap, const char* src) {
  size_t n = 0;
  while (n < cap && dst[n]) ++n;
  for (size_t i = 0; src && src[i] && n + 1 < cap; ++i) dst[n++] = src[i];
  if (n < cap) dst[n] = '\0';
}

void appendNumber(char* dst, size_t cap, long value) {
  char digits[24];
  int i = 0;
  bool negative = value < 0;
  unsigned long v = negative ? -static_cast<unsigned long>(value) : static_cast<unsigned long>(value);
  do { digits[i++] = static_cast<char>('0' + v % 10); v /= 10; } while (v && i < 22);
  char text[24];
  int j = 0;
  if (negative) text[j++] = '-';
  while (i) text[j++] = digits[--i];
  text[j] = '\0';
  append(dst, cap, text);
}

void onFatalSignal(int signal, siginfo_t* info, void* context) {
  Outcome outcome = Outcome::Crashed;
  for (const auto& fatal : kFatalSignals) {
    if (fatal.signal == signal) outcome = fatal.outcome;
  }
  char message[200] = {};
  if (signal == SIGSYS) {
    append(message, sizeof(message), "the sandbox denied system call ");
    append(message, sizeof(message), sandbox::syscallName(info->si_syscall));
    append(message, sizeof(message), " (");
    appendNumber(message, sizeof(message), info->si_syscall);
    append(message, sizeof(message), ")");
  } else if (signal == SIGXCPU) {
    append(message, sizeof(message), "the step used more CPU time than its limit");
  } else {
    append(message, sizeof(message), "the worker crashed with SIG");
    append(message, sizeof(message), sigabbrev_np(signal));
    if (signal == SIGSEGV || signal == SIGBUS) {
      append(message, sizeof(message), " (a compiler bug, or a stack overflow)");
    }
  }
  if (outcome == Outcome::Crashed) {
    const auto* ucontext = static_cast<const ucontext_t*>(context);
    recordStack(static_cast<uintptr_t>(ucontext->uc_mcontext.gregs[REG_RIP]), 2);
  }
  if (gHeader) writeLastWords(*gHeader, static_cast<uint16_t>(outcome), signal, message);
  // SA_RESETHAND restored the default action; re-raise so the wait status
  // names the signal too. SIGXCPU's default would dump core: kill instead.
  if (signal == SIGXCPU) signal = SIGKILL;
  syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), signal);
  _exit(128 + signal);
}

void reportOutOfMemory() {
  if (gHeader) {
    writeLastWords(*gHeader, static_cast<uint16_t>(Outcome::OutOfMemory), 0,
                   "the worker ran out of memory (its address-space limit)");
  }
  _exit(kOutOfMemoryExit);
}

void reportCompilerFatalError(const char* reason) {
  if (gHeader) {
    recordStack(0, 2);  // recordStack's own frame and this function's
    char message[200] = "the compiler reported a fatal error: ";
    append(message, sizeof(message), reason);
    writeLastWords(*gHeader, static_cast<uint16_t>(Outcome::Crashed), 0, message);
  }
  _exit(kCompilerFatalExit);
}

}  // namespace

void installCrashReporter(RegionHeader& header, const passes::Backend& backend) {
  gHeader = &header;
  snapshotModules();
  stack_t stack{};
  stack.ss_sp = gAltStack;
  stack.ss_size = sizeof(gAltStack);
  sigaltstack(&stack, nullptr);
  for (const auto& fatal : kFatalSignals) {
    struct sigaction action {};
    action.sa_sigaction = onFatalSignal;
    action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND | SA_NODEFER;
    sigemptyset(&action.sa_mask);
    sigaction(fatal.signal, &action, nullptr);
  }
  std::set_new_handler(reportOutOfMemory);
  if (backend.installErrorHandlers) backend.installErrorHandlers({&reportOutOfMemory, &reportCompilerFatalError});
}

void redirectCrashReporter(RegionHeader& header) { gHeader = &header; }

}  // namespace forkgym::forkserver
