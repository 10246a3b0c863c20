// Test harness: runs a scenario in a forked child under the real sandbox and
// hands the parent the child's wait status plus a text report.
//
// Lifecycle (test process):
//   1. runInChild(body) forks; the child runs body and _exit()s with its
//      return value, never returning into GoogleTest.
//   2. In the child, body calls enterSandbox(), which installs the SIGSYS
//      reporter, then prepareSandbox() + applySandbox() keeping the report
//      pipe (plus any descriptors the scenario needs).
//   3. The child reports through the pipe with async-signal-safe writes
//      ("sigsys <nr> <name>", "check failed ...", scenario facts); the
//      parent reaps it, killing it after a timeout so a broken limit fails
//      the test instead of hanging it.
//
// GoogleTest assertions must not run in the child (they would record into
// the child's copy of the test state): children use CHILD_CHECK.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <initializer_list>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "sandbox/sandbox.h"

namespace forkgym::sandbox::harness {

// Child exit codes the harness uses; distinct from the stage codes (71..74).
inline constexpr int kTrapped = 90;      // SIGSYS reporter ran
inline constexpr int kCheckFailed = 91;  // a CHILD_CHECK failed
inline constexpr int kNotTrapped = 92;   // a denied syscall returned

inline int gReportFd = -1;

// The region size the test policy lets ftruncate set (the product passes
// kDefaultRegionBytes; the sandbox layer cannot see ipc's constant).
inline constexpr uint64_t kTestRegionBytes = 1 << 20;

// Async-signal-safe: used from the SIGSYS handler.
inline void reportText(std::string_view text) {
  while (!text.empty()) {
    const ssize_t n = write(gReportFd, text.data(), text.size());
    if (n <= 0) return;
    text.remove_prefix(static_cast<size_t>(n));
  }
}

inline void reportNumber(long value) {
  char digits[24];
  char* end = digits + sizeof(digits);
  char* p = end;
  const bool negative = value < 0;
  unsigned long magnitude = negative ? 0ul - static_cast<unsigned long>(value) : static_cast<unsigned long>(value);
  do {
    *--p = static_cast<char>('0' + magnitude % 10);
    magnitude /= 10;
  } while (magnitude != 0);
  if (negative) *--p = '-';
  reportText(std::string_view(p, static_cast<size_t>(end - p)));
}

#define CHILD_CHECK(cond)                                                   \
  do {                                                                      \
    if (!(cond)) {                                                          \
      ::forkgym::sandbox::harness::reportText("check failed at line ");     \
      ::forkgym::sandbox::harness::reportNumber(__LINE__);                  \
      ::forkgym::sandbox::harness::reportText(": " #cond "\n");             \
      return ::forkgym::sandbox::harness::kCheckFailed;                     \
    }                                                                       \
  } while (0)

// What the worker's own handler does: name the syscall, then end.
inline void sigsysReporter(int, siginfo_t* info, void*) {
  reportText("sigsys ");
  reportNumber(info->si_syscall);
  reportText(" ");
  reportText(syscallName(info->si_syscall));
  reportText("\n");
  _exit(kTrapped);
}

inline void enterSandbox(const SandboxLimits& limits = {}, std::initializer_list<int> extraKeep = {}) {
  struct sigaction action {};
  action.sa_sigaction = sigsysReporter;
  action.sa_flags = SA_SIGINFO;
  sigemptyset(&action.sa_mask);
  sigaction(SIGSYS, &action, nullptr);
  std::vector<int> keep{gReportFd};
  keep.insert(keep.end(), extraKeep);
  prepareSandbox(PolicyParameters{kTestRegionBytes});
  applySandbox(limits, keep);
}

struct ChildOutcome {
  int status = 0;
  std::string report;

  bool exitedWith(int code) const { return WIFEXITED(status) && WEXITSTATUS(status) == code; }
  bool killedBy(int signal) const { return WIFSIGNALED(status) && WTERMSIG(status) == signal; }
  // The reporter's line for a trapped syscall, e.g. "sigsys 257 openat".
  bool trapped(int number, std::string_view name) const {
    return exitedWith(kTrapped) &&
           report.find("sigsys " + std::to_string(number) + " " + std::string(name) + "\n") !=
               std::string::npos;
  }
  std::string describe() const {
    std::string how = WIFEXITED(status)     ? "exited " + std::to_string(WEXITSTATUS(status))
                      : WIFSIGNALED(status) ? "killed by " + std::string(strsignal(WTERMSIG(status)))
                                            : "status " + std::to_string(status);
    return how + "; report: [" + report + "]";
  }
};

inline ChildOutcome runInChild(const std::function<int()>& body,
                               std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  ChildOutcome outcome;
  int pipeFds[2];
  if (pipe2(pipeFds, O_CLOEXEC) != 0) {
    outcome.report = "pipe2 failed";
    return outcome;
  }
  const pid_t pid = fork();
  if (pid == 0) {
    close(pipeFds[0]);
    gReportFd = pipeFds[1];
    _exit(body());
  }
  close(pipeFds[1]);
  // Non-blocking: a CLONE_PARENT grandchild may briefly hold the write end.
  fcntl(pipeFds[0], F_SETFL, O_NONBLOCK);
  bool pipeOpen = true;  // until every writer has closed it
  auto drain = [&] {
    char buffer[512];
    ssize_t n;
    while ((n = read(pipeFds[0], buffer, sizeof(buffer))) > 0) outcome.report.append(buffer, static_cast<size_t>(n));
    if (n == 0) pipeOpen = false;
  };
  // Woken by the child's report or by its end (its pidfd turns readable);
  // the timeout is a hang guard only.
  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    drain();
    if (waitpid(pid, &outcome.status, WNOHANG) == pid) break;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd events[] = {{pidfd, POLLIN, 0}, {pipeOpen ? pipeFds[0] : -1, POLLIN, 0}};
    if (left.count() <= 0 || poll(events, 2, static_cast<int>(left.count())) == 0) {
      kill(pid, SIGKILL);
      waitpid(pid, &outcome.status, 0);
      outcome.report += "(killed by the harness after timeout)";
      break;
    }
  }
  if (pidfd >= 0) close(pidfd);
  drain();
  close(pipeFds[0]);
  return outcome;
}

}  // namespace forkgym::sandbox::harness
