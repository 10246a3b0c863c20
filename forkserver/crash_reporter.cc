#include "forkserver/crash_reporter.h"

#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <new>


#include "base/outcome.h"
#include "sandbox/sandbox.h"

namespace forkgym::forkserver {
namespace {

RegionHeader* gHeader = nullptr;
alignas(16) char gAltStack[128 * 1024];

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

void onFatalSignal(int signal, siginfo_t* info, void*) {
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
    char message[200] = "the compiler reported a fatal error: ";
    append(message, sizeof(message), reason);
    writeLastWords(*gHeader, static_cast<uint16_t>(Outcome::Crashed), 0, message);
  }
  _exit(kCompilerFatalExit);
}

}  // namespace

void installCrashReporter(RegionHeader& header, const passes::Backend& backend) {
  gHeader = &header;
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
