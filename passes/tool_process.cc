#include "passes/tool_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <utility>

#include <linux/perf_event.h>

#include "base/syscall.h"
#include "sandbox/profile.h"
#include "base/unique_fd.h"
#include "sandbox/process_group_filter.h"

extern char** environ;

namespace forkgym::passes {
namespace {

constexpr size_t kMaxDescriptor3Output = size_t{16} << 20;

struct Pipe {
  UniqueFd read;
  UniqueFd write;
};

Result<Pipe> makePipe() {
  int fds[2];
  // CLOEXEC so the child sees only the ends dup2'd onto 0-3.
  if (auto made = sys("pipe2", [&] { return ::pipe2(fds, O_CLOEXEC); }); !made.ok()) {
    return made.takeError();
  }
  return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

void setNonBlocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

// SIGPIPE is blocked while we feed a tool's stdin: a tool that exits early
// must give us EPIPE, not kill the loader. Any SIGPIPE raised meanwhile is
// consumed before the old mask comes back.
class SigpipeBlock {
 public:
  SigpipeBlock() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  ~SigpipeBlock() {
    const timespec zero{0, 0};
    while (sigtimedwait(&pipe_, nullptr, &zero) == SIGPIPE) {
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }

 private:
  sigset_t pipe_;
  sigset_t old_;
};

// argv[0] as execve needs it: searched on PATH when it has no '/' (an
// empty directory in PATH is the working directory, as for execvp). Done
// before fork(), because the search allocates. Not found: the name as it
// is, and execve fails with ENOENT, reported as "cannot run".
std::string resolveProgram(const std::string& name) {
  const std::string found = findProgram(name);
  return found.empty() ? name : found;
}

struct ChildSetup {
  int in, out, err, fd3;  // fd3 < 0: none
  pid_t parent;
  bool ownProcessGroup;
  uint64_t addressSpaceBytes;
  const char* workingDirectory;
  const char* program;
  char* const* argv;
  char* const* envp;
  int execErrorPipe;  // CLOEXEC: closed by a successful exec, else gets errno
  uint64_t cpuSeconds, fileSizeBytes, maxProcesses;
  const char* confineToDirectory;
  int gate;  // >= 0: read one byte from it before going on (the counter is on)
};

void lowerLimit(int resource, uint64_t value) {
  if (value == 0) return;
  rlimit current{};
  ::getrlimit(resource, &current);
  const rlim_t wanted = value < current.rlim_max ? value : current.rlim_max;
  const rlimit next{wanted, wanted};
  ::setrlimit(resource, &next);
}

void leadToolGroup(const ChildSetup& setup);

// Why perf_event_open gave no instruction counter, in words.
std::string counterError(int error) {
  return std::string("perf_event_open: ") + std::strerror(error) +
         (error == ENOENT || error == EOPNOTSUPP
              ? " (this machine exposes no hardware instruction counter, e.g. a virtual machine without a "
                "virtual PMU)"
              : error == EACCES || error == EPERM
                    ? " (kernel.perf_event_paranoid forbids it; 2 or less allows counting one's own processes)"
                    : "");
}

// The forked child, up to exec. Async-signal-safe calls only (the caller
// may be a test process with threads): no allocation, no locks.
[[noreturn]] void execTool(const ChildSetup& setup) {
  // Tied to the loader: if it dies (killed by the zygote on a timeout, or
  // crashed), so does the tool. Checked after setting, in case the loader
  // died before.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  // 0: the parent lives outside this child's PID namespace (the zygote,
  // whose children enter the namespace it made for them, runs gcc at
  // start-up); an orphan would see the namespace's reaper instead.
  const pid_t parent = ::getppid();
  if (parent != setup.parent && parent != 0) ::_exit(127);
  if (setup.gate >= 0) {
    char go = 0;
    while (::read(setup.gate, &go, 1) < 0 && errno == EINTR) {
    }
  }
  if (setup.ownProcessGroup) {
    ::setpgid(0, 0);
    leadToolGroup(setup);
    // The group is what is killed with the tool: it and its passes may not
    // leave it (a hostile compiler's way to outlive its worker).
    if (!sandbox::keepInProcessGroup()) {
      const int error = errno;
      while (::write(setup.execErrorPipe, &error, sizeof error) < 0 && errno == EINTR) {
      }
      ::_exit(127);
    }
  }
  ::dup2(setup.in, STDIN_FILENO);
  ::dup2(setup.out, STDOUT_FILENO);
  ::dup2(setup.err, STDERR_FILENO);
  if (setup.fd3 >= 0) ::dup2(setup.fd3, 3);
  // No blocked signals and default SIGPIPE (the caller's SigpipeBlock
  // would otherwise be inherited).
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::signal(SIGPIPE, SIG_DFL);
  if (setup.addressSpaceBytes != 0) {
    rlimit current{};
    ::getrlimit(RLIMIT_AS, &current);
    const rlim_t wanted = setup.addressSpaceBytes < current.rlim_max ? setup.addressSpaceBytes : current.rlim_max;
    const rlimit next{wanted, wanted};
    ::setrlimit(RLIMIT_AS, &next);
  }
  lowerLimit(RLIMIT_CPU, setup.cpuSeconds);
  lowerLimit(RLIMIT_FSIZE, setup.fileSizeBytes);
  lowerLimit(RLIMIT_NPROC, setup.maxProcesses);
  int error = 0;
  if (setup.workingDirectory != nullptr && ::chdir(setup.workingDirectory) != 0) error = errno;
  if (error == 0 && setup.confineToDirectory != nullptr && !sandbox::confineProgram(setup.confineToDirectory)) {
    error = errno ? errno : EPERM;
  }
  if (error == 0) {
    ::execve(setup.program, setup.argv, setup.envp);
    error = errno;
  }
  while (::write(setup.execErrorPipe, &error, sizeof error) < 0 && errno == EINTR) {
  }
  ::_exit(127);
}

// ToolOptions::ownProcessGroup: the forked child, already leading its
// group, stays as the group's leader and forks the tool; returns in the
// tool's process only. The leader exits as the tool did (the same status,
// or the same signal), or kills the whole group (itself too) as soon as its
// parent dies. Async-signal-safe; only what the external-compiler sandbox
// allows (fork, prctl PR_SET_PDEATHSIG, rt_sigtimedwait, wait4, kill).
void leadToolGroup(const ChildSetup& setup) {
  sigset_t watched;
  sigemptyset(&watched);
  sigaddset(&watched, SIGCHLD);
  sigaddset(&watched, SIGTERM);
  // Default dispositions (an ignored SIGCHLD would reap the tool unseen),
  // blocked before the fork so neither signal can be missed; the tool
  // unblocks everything before its exec.
  ::signal(SIGCHLD, SIG_DFL);
  ::signal(SIGTERM, SIG_DFL);
  ::sigprocmask(SIG_BLOCK, &watched, nullptr);
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  const pid_t parent = ::getppid();
  if (parent != setup.parent && parent != 0) ::kill(0, SIGKILL);
  const pid_t leader = ::getpid();
  const pid_t tool = ::fork();
  if (tool == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // and with this leader the tool
    if (::getppid() != leader) ::_exit(127);
    return;
  }
  if (tool < 0) {
    const int error = errno;
    while (::write(setup.execErrorPipe, &error, sizeof error) < 0 && errno == EINTR) {
    }
    ::_exit(127);
  }
  // The leader holds no descriptor: only the tool holds its streams (the
  // caller reads them to their end, and its stdin ends when the caller
  // closes it).
  rlimit files{};
  ::getrlimit(RLIMIT_NOFILE, &files);
  const rlim_t top = files.rlim_cur == RLIM_INFINITY || files.rlim_cur > 65536 ? 65536 : files.rlim_cur;
  for (rlim_t fd = 0; fd < top; ++fd) ::close(static_cast<int>(fd));
  for (;;) {
    siginfo_t info{};
    if (::sigwaitinfo(&watched, &info) < 0) continue;
    if (info.si_signo == SIGTERM) ::kill(0, SIGKILL);  // the caller died: the group goes with it
    int status = 0;
    if (::waitpid(tool, &status, WNOHANG) != tool) continue;
    if (WIFEXITED(status)) ::_exit(WEXITSTATUS(status));
    const int signal = WTERMSIG(status);
    ::signal(signal, SIG_DFL);
    sigset_t raised;
    sigemptyset(&raised);
    sigaddset(&raised, signal);
    ::sigprocmask(SIG_UNBLOCK, &raised, nullptr);
    ::kill(::getpid(), signal);
    ::_exit(128 + signal);
  }
}

int millisecondsUntil(std::chrono::steady_clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return static_cast<int>(std::max<int64_t>(left.count(), 0));
}

// Reads what is available, counting everything read in `total` and keeping
// at most `keep` bytes in `sink`; false at EOF or on error.
bool drainCounting(int fd, std::string& sink, size_t& total, size_t keep) {
  char buffer[1 << 16];
  for (;;) {
    const ssize_t n = sysRaw([&] { return ::read(fd, buffer, sizeof buffer); });
    if (n > 0) {
      total += static_cast<size_t>(n);
      const size_t room = sink.size() < keep ? keep - sink.size() : 0;
      sink.append(buffer, std::min(static_cast<size_t>(n), room));
      continue;
    }
    return n < 0 && errno == EAGAIN;
  }
}

// drainCounting() without the count.
bool drain(int fd, std::string& sink, size_t limit) {
  size_t total = 0;
  return drainCounting(fd, sink, total, limit);
}

}  // namespace

bool ToolRun::ranOutOfMemory() const {
  return err.find("LLVM ERROR: out of memory") != std::string::npos ||
         err.find("std::bad_alloc") != std::string::npos;
}

std::string ToolRun::diagnostics() const {
  size_t end = err.size();
  for (std::string_view marker : {"PLEASE submit a bug report", "Stack dump:"}) {
    const size_t at = err.find(marker);
    if (at != std::string::npos) end = std::min(end, at);
  }
  std::string text = err.substr(0, end);
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

std::string ToolRun::describeFailure(std::chrono::seconds limit) const {
  if (timedOut) return "timed out after " + std::to_string(limit.count()) + " s";
  if (outputTooLarge) return "was stopped: its output passed the limit";
  if (ranOutOfMemory()) {
    return "ran out of memory" +
           (addressSpaceBytes ? " (its limit is " + std::to_string(addressSpaceBytes >> 20) + " MB)" : std::string());
  }
  if (signal != 0) return "was killed by signal " + std::to_string(signal) + " (" + strsignal(signal) + ")";
  return "exited with status " + std::to_string(exitCode);
}

Result<ToolProcess> ToolProcess::start(const std::vector<std::string>& argv, const ToolOptions& options) {
  auto in = makePipe();
  if (!in.ok()) return in.takeError();
  auto out = makePipe();
  if (!out.ok()) return out.takeError();
  auto err = makePipe();
  if (!err.ok()) return err.takeError();
  std::optional<Pipe> fd3;
  if (options.captureDescriptor3) {
    auto made = makePipe();
    if (!made.ok()) return made.takeError();
    fd3 = std::move(*made);
  }
  auto execError = makePipe();
  if (!execError.ok()) return execError.takeError();
  std::optional<Pipe> gate;
  if (options.countInstructions) {
    auto made = makePipe();
    if (!made.ok()) return made.takeError();
    gate = std::move(*made);
  }

  // Everything the child needs is built before fork(): it must not allocate.
  const std::string program = resolveProgram(argv.at(0));
  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> environment;
  for (char** variable = environ; *variable != nullptr; ++variable) {
    const std::string_view text(*variable);
    const bool overridden = std::any_of(options.environment.begin(), options.environment.end(), [&](const std::string& e) {
      return text.substr(0, text.find('=') + 1) == std::string_view(e).substr(0, e.find('=') + 1);
    });
    if (!overridden) environment.emplace_back(text);
  }
  environment.insert(environment.end(), options.environment.begin(), options.environment.end());
  std::vector<char*> envp;
  for (std::string& variable : environment) envp.push_back(variable.data());
  envp.push_back(nullptr);

  const ChildSetup setup{in->read.get(), out->write.get(), err->write.get(), fd3 ? fd3->write.get() : -1,
                         ::getpid(), options.ownProcessGroup, options.addressSpaceBytes, options.workingDirectory, program.c_str(),
                         args.data(), envp.data(), execError->write.get(), options.cpuSeconds,
                         options.fileSizeBytes, options.maxProcesses, options.confineToDirectory,
                         gate ? gate->read.get() : -1};
  const pid_t pid = ::fork();
  if (pid < 0 && errno == EAGAIN) {
    // RLIMIT_NPROC: the episode's worker, its forks and what they run.
    rlimit limit{};
    ::getrlimit(RLIMIT_NPROC, &limit);
    return makeError(Outcome::LimitReached, "cannot start " + argv[0] + ": this episode reached its process limit (" +
                                                std::to_string(limit.rlim_cur) +
                                                " processes: its worker, its live forks and what they run); close "
                                                "forks it no longer needs");
  }
  if (pid < 0) return makeError(Outcome::ServerError, errnoMessage("fork(tool)"));
  if (pid == 0) execTool(setup);
  // Also here, so the group exists before anything may signal it.
  if (options.ownProcessGroup) ::setpgid(pid, pid);

  ToolProcess tool;
  tool.pid_ = pid;
  // Our unreaped child: its pid cannot be reused, so the pidfd is its own.
  tool.pidfd_.reset(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  tool.options_ = options;
  in->read.reset();
  out->write.reset();
  err->write.reset();
  if (fd3) fd3->write.reset();
  execError->write.reset();
  if (gate) {
    // On the child before it execs (inherit: on the tool the group's
    // leader forks too; enable_on_exec: counting starts at its exec).
    perf_event_attr attr{};
    attr.size = sizeof attr;
    attr.type = PERF_TYPE_HARDWARE;
    attr.config = PERF_COUNT_HW_INSTRUCTIONS;
    attr.disabled = 1;
    attr.inherit = 1;
    attr.enable_on_exec = 1;
    attr.exclude_kernel = 1;
    attr.exclude_hv = 1;
    const long counter = ::syscall(SYS_perf_event_open, &attr, pid, -1, -1, PERF_FLAG_FD_CLOEXEC);
    if (counter >= 0) {
      tool.counter_.reset(static_cast<int>(counter));
    } else {
      tool.counterUnavailable_ = counterError(errno);
    }
    gate->read.reset();
    const char go = 1;
    while (::write(gate->write.get(), &go, 1) < 0 && errno == EINTR) {
    }
  }
  tool.started_ = std::chrono::steady_clock::now();
  int execErrno = 0;
  if (::read(execError->read.get(), &execErrno, sizeof execErrno) == sizeof execErrno) {
    ::waitpid(std::exchange(tool.pid_, -1), nullptr, 0);
    return makeError(Outcome::ServerError, "cannot run " + argv[0] + ": " + std::strerror(execErrno) +
                                               " (is it installed and on PATH?)");
  }
  tool.toChild_ = std::move(in->write);
  tool.fromChild_ = std::move(out->read);
  tool.errorsFromChild_ = std::move(err->read);
  if (fd3) tool.fromDescriptor3_ = std::move(fd3->read);
  for (const UniqueFd* fd : {&tool.toChild_, &tool.fromChild_, &tool.errorsFromChild_, &tool.fromDescriptor3_}) {
    if (*fd) setNonBlocking(fd->get());
  }
  return tool;
}

ToolProcess::ToolProcess(ToolProcess&& other) noexcept { *this = std::move(other); }

ToolProcess& ToolProcess::operator=(ToolProcess&& other) noexcept {
  if (this != &other) {
    stop();
    pid_ = std::exchange(other.pid_, -1);
    pidfd_ = std::move(other.pidfd_);
    toChild_ = std::move(other.toChild_);
    fromChild_ = std::move(other.fromChild_);
    errorsFromChild_ = std::move(other.errorsFromChild_);
    fromDescriptor3_ = std::move(other.fromDescriptor3_);
    options_ = std::move(other.options_);
    counter_ = std::move(other.counter_);
    counterUnavailable_ = std::move(other.counterUnavailable_);
    started_ = other.started_;
  }
  return *this;
}

ToolProcess::~ToolProcess() { stop(); }

void ToolProcess::kill() {
  if (options_.ownProcessGroup) ::kill(-pid_, SIGKILL);
  ::kill(pid_, SIGKILL);
}

void ToolProcess::stop() {
  if (pid_ <= 0) return;
  kill();
  while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
}

Result<ToolRun> ToolProcess::finish(std::string_view input) {
  if (pid_ <= 0) return makeError(Outcome::ServerError, "finish() on a tool that is not running");
  SigpipeBlock sigpipeBlock;
  UniqueFd toChild = std::move(toChild_);
  UniqueFd fromChild = std::move(fromChild_);
  UniqueFd errorsFromChild = std::move(errorsFromChild_);
  UniqueFd fromDescriptor3 = std::move(fromDescriptor3_);
  const ToolOptions& options = options_;
  if (input.empty()) toChild.reset();

  ToolRun run;
  run.addressSpaceBytes = options.addressSpaceBytes;
  if (run.addressSpaceBytes == 0) {
    rlimit inherited{};
    if (::getrlimit(RLIMIT_AS, &inherited) == 0 && inherited.rlim_cur != RLIM_INFINITY) {
      run.addressSpaceBytes = inherited.rlim_cur;
    }
  }
  const auto deadline = std::chrono::steady_clock::now() + options.limit;
  size_t written = 0;
  size_t outBytes = 0, errBytes = 0;  // read so far, kept or not
  bool exited = !pidfd_;  // without a pidfd (kernel < 5.3), the streams closing stands for the exit
  // Until the tool has exited and closed its streams (a grandchild holding
  // them open does not keep us: once the tool is gone we read what is left).
  while (!exited || fromChild || errorsFromChild || fromDescriptor3) {
    std::array<pollfd, 5> fds{};
    nfds_t count = 0;
    if (fromChild) fds[count++] = {fromChild.get(), POLLIN, 0};
    if (errorsFromChild) fds[count++] = {errorsFromChild.get(), POLLIN, 0};
    if (fromDescriptor3) fds[count++] = {fromDescriptor3.get(), POLLIN, 0};
    if (toChild) fds[count++] = {toChild.get(), POLLOUT, 0};
    if (!exited && pidfd_) fds[count++] = {pidfd_.get(), POLLIN, 0};
    const int ready = ::poll(fds.data(), count, exited ? 0 : millisecondsUntil(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) break;
    if (ready == 0) {
      if (exited) break;  // gone, and nothing more to read
      run.timedOut = true;
      break;
    }
    for (nfds_t i = 0; i < count; ++i) {
      if (fds[i].revents == 0) continue;
      const int fd = fds[i].fd;
      if (fd == fromChild.get() && !drainCounting(fd, run.out, outBytes, options.keepOutputBytes)) {
        fromChild.reset();
      } else if (fd == errorsFromChild.get() && !drainCounting(fd, run.err, errBytes, options.keepErrorBytes)) {
        errorsFromChild.reset();
      } else if (fromDescriptor3 && fd == fromDescriptor3.get() &&
                 !drain(fd, run.descriptor3, kMaxDescriptor3Output)) {
        fromDescriptor3.reset();
      } else if (toChild && fd == toChild.get()) {
        const ssize_t n = ::write(fd, input.data() + written, input.size() - written);
        if (n > 0) written += static_cast<size_t>(n);
        // Done, or the tool stopped reading (EPIPE): either way, no more input.
        if (written == input.size() || (n < 0 && errno != EAGAIN && errno != EINTR)) toChild.reset();
      } else if (pidfd_ && fd == pidfd_.get()) {
        exited = true;
        toChild.reset();
      }
    }
    if (outBytes > options.maxOutputBytes) {
      run.outputTooLarge = true;
      run.out.clear();
      break;
    }
  }
  run.wallSeconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_).count();
  run.outTruncated = outBytes > run.out.size() && !run.outputTooLarge;
  run.errTruncated = errBytes > run.err.size();

  // A group is killed even when its leader exited by itself: what it left
  // running (a compiler pass after the driver crashed) goes too. The
  // leader is not reaped yet, so the group id cannot have been reused.
  if (!exited || options.ownProcessGroup) kill();
  int status = 0;
  while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  pid_ = -1;
  if (WIFEXITED(status)) run.exitCode = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) run.signal = WTERMSIG(status);
  if (options.countInstructions) {
    uint64_t count = 0;
    if (counter_ && ::read(counter_.get(), &count, sizeof count) == static_cast<ssize_t>(sizeof count)) {
      run.hasInstructions = true;
      run.instructions = count;
    } else {
      run.instructionsUnavailable = counterUnavailable_.empty() ? "the instruction counter could not be read"
                                                                : counterUnavailable_;
    }
    counter_.reset();
  }
  return run;
}

std::string findProgram(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  const char* path = std::getenv("PATH");
  std::string_view dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  while (!dirs.empty()) {
    const size_t colon = dirs.find(':');
    const std::string_view dir = dirs.substr(0, colon);
    const std::string candidate = std::string(dir.empty() ? "." : dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    if (colon == std::string_view::npos) break;
    dirs.remove_prefix(colon + 1);
  }
  return {};
}

std::string probeInstructionCounter() {
  perf_event_attr attr{};
  attr.size = sizeof attr;
  attr.type = PERF_TYPE_HARDWARE;
  attr.config = PERF_COUNT_HW_INSTRUCTIONS;
  attr.disabled = 1;
  attr.exclude_kernel = 1;
  attr.exclude_hv = 1;
  const long counter = ::syscall(SYS_perf_event_open, &attr, 0, -1, -1, PERF_FLAG_FD_CLOEXEC);
  if (counter < 0) return counterError(errno);
  ::close(static_cast<int>(counter));
  return {};
}

Result<ToolRun> runTool(const std::vector<std::string>& argv, std::string_view input,
                        const ToolOptions& options) {
  auto tool = ToolProcess::start(argv, options);
  if (!tool.ok()) return tool.takeError();
  return tool->finish(input);
}

}  // namespace forkgym::passes
