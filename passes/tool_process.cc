#include "passes/tool_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <cstring>

#include "ipc/syscall.h"
#include "ipc/unique_fd.h"

extern char** environ;

namespace forkgym::passes {
namespace {

// A benchmark's bitcode is at most a few hundred MiB; more means a runaway
// generator. Diagnostics beyond 64 KiB add nothing to an error message.
constexpr size_t kMaxOutput = size_t{1} << 30;
constexpr size_t kMaxErrorOutput = size_t{64} << 10;

struct Pipe {
  UniqueFd read;
  UniqueFd write;
};

Result<Pipe> makePipe() {
  int fds[2];
  // CLOEXEC so the child sees only the ends dup2'd onto 0, 1, 2.
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

class SpawnSetup {
 public:
  SpawnSetup() {
    posix_spawn_file_actions_init(&actions_);
    posix_spawnattr_init(&attributes_);
  }
  ~SpawnSetup() {
    posix_spawn_file_actions_destroy(&actions_);
    posix_spawnattr_destroy(&attributes_);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;

  void connect(int in, int out, int err) {
    posix_spawn_file_actions_adddup2(&actions_, in, STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&actions_, out, STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&actions_, err, STDERR_FILENO);
  }

  // The child starts with no blocked signals and default SIGPIPE (it
  // inherits our temporary block otherwise), in its own process group so a
  // timeout kills whatever it spawned as well.
  void isolate() {
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attributes_, &none);
    sigset_t defaults;
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    posix_spawnattr_setsigdefault(&attributes_, &defaults);
    posix_spawnattr_setpgroup(&attributes_, 0);
    posix_spawnattr_setflags(&attributes_,
                             POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
  }

  void changeDirectory(const char* directory) {
    posix_spawn_file_actions_addchdir_np(&actions_, directory);
  }

  posix_spawn_file_actions_t* actions() { return &actions_; }
  posix_spawnattr_t* attributes() { return &attributes_; }

 private:
  posix_spawn_file_actions_t actions_;
  posix_spawnattr_t attributes_;
};

int millisecondsUntil(std::chrono::steady_clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  return static_cast<int>(std::max<int64_t>(left.count(), 0));
}

// Reads what is available; false at EOF or on error.
bool drain(int fd, std::string& sink, size_t limit) {
  char buffer[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n > 0) {
      const size_t room = sink.size() < limit ? limit - sink.size() : 0;
      sink.append(buffer, std::min(static_cast<size_t>(n), room));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return true;
    return false;
  }
}

}  // namespace

std::string ToolRun::describeFailure(std::chrono::seconds limit) const {
  if (timedOut) return "timed out after " + std::to_string(limit.count()) + " s";
  if (signal != 0) return "was killed by signal " + std::to_string(signal) + " (" + strsignal(signal) + ")";
  return "exited with status " + std::to_string(exitCode);
}

Result<ToolRun> runTool(const std::vector<std::string>& argv, std::string_view input,
                        const ToolOptions& options) {
  auto in = makePipe();
  if (!in.ok()) return in.takeError();
  auto out = makePipe();
  if (!out.ok()) return out.takeError();
  auto err = makePipe();
  if (!err.ok()) return err.takeError();

  std::vector<char*> args;
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);

  SigpipeBlock sigpipeBlock;
  SpawnSetup setup;
  setup.connect(in->read.get(), out->write.get(), err->write.get());
  setup.isolate();
  if (options.workingDirectory != nullptr) setup.changeDirectory(options.workingDirectory);
  pid_t pid = -1;
  const int spawnError =
      posix_spawnp(&pid, args[0], setup.actions(), setup.attributes(), args.data(), environ);
  if (spawnError != 0) {
    return makeError(Outcome::ServerError, "cannot run " + argv[0] + ": " +
                                               std::strerror(spawnError) +
                                               " (is it installed and on PATH?)");
  }
  in->read.reset();
  out->write.reset();
  err->write.reset();

  UniqueFd toChild = std::move(in->write);
  UniqueFd fromChild = std::move(out->read);
  UniqueFd errorsFromChild = std::move(err->read);
  setNonBlocking(toChild.get());
  setNonBlocking(fromChild.get());
  setNonBlocking(errorsFromChild.get());
  if (input.empty()) toChild.reset();

  ToolRun run;
  const auto deadline = std::chrono::steady_clock::now() + options.limit;
  size_t written = 0;
  while (fromChild || errorsFromChild) {
    std::array<pollfd, 3> fds{};
    nfds_t count = 0;
    if (fromChild) fds[count++] = {fromChild.get(), POLLIN, 0};
    if (errorsFromChild) fds[count++] = {errorsFromChild.get(), POLLIN, 0};
    if (toChild) fds[count++] = {toChild.get(), POLLOUT, 0};
    const int ready = ::poll(fds.data(), count, millisecondsUntil(deadline));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) {
      run.timedOut = ready == 0;
      break;
    }
    for (nfds_t i = 0; i < count; ++i) {
      if (fds[i].revents == 0) continue;
      if (fds[i].fd == fromChild.get() && !drain(fromChild.get(), run.out, kMaxOutput)) {
        fromChild.reset();
      } else if (fds[i].fd == errorsFromChild.get() &&
                 !drain(errorsFromChild.get(), run.err, kMaxErrorOutput)) {
        errorsFromChild.reset();
      } else if (toChild && fds[i].fd == toChild.get()) {
        const ssize_t n = ::write(toChild.get(), input.data() + written, input.size() - written);
        if (n > 0) written += static_cast<size_t>(n);
        // Done, or the tool stopped reading (EPIPE): either way, no more input.
        if (written == input.size() || (n < 0 && errno != EAGAIN && errno != EINTR)) {
          toChild.reset();
        }
      }
    }
    if (run.out.size() >= kMaxOutput) {
      run.err += "\n(forkgym stopped the tool: its output passed 1 GiB)";
      break;
    }
  }

  // The streams are closed (or we gave up on them), but the tool may still
  // be running: give it until the deadline, then kill its whole group.
  bool killed = false;
  auto killGroup = [&] {
    if (!killed) ::kill(-pid, SIGKILL);
    killed = true;
  };
  if (run.timedOut || fromChild) killGroup();
  int status = 0;
  for (;;) {
    const pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) break;
    if (done < 0 && errno == EINTR) continue;
    if (done < 0) return makeError(Outcome::ServerError, errnoMessage("waitpid"));
    if (millisecondsUntil(deadline) == 0 && !killed) {
      run.timedOut = true;
      killGroup();
    }
    const timespec pause{0, 1'000'000};
    ::nanosleep(&pause, nullptr);
  }
  if (WIFEXITED(status)) run.exitCode = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) run.signal = WTERMSIG(status);
  return run;
}

}  // namespace forkgym::passes
