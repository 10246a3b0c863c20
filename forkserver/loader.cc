#include "forkserver/loader.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>

#include "forkserver/single_thread.h"
#include "ipc/syscall.h"
#include "ipc/unique_fd.h"
#include "passes/benchmark_loader.h"

namespace forkgym::forkserver {
namespace {

// Result frame on the pipe: one status byte ('+' loaded, '-' error), then
// either encodeLoaded() bytes or "<outcome as 2 bytes><message>".
void writeAll(int fd, const char* data, size_t size) {
  while (size > 0) {
    ssize_t n = write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    data += n;
    size -= static_cast<size_t>(n);
  }
}

[[noreturn]] void loaderChild(const std::string& uri, int out) {
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_UNBLOCK, &all, nullptr);
  signal(SIGCHLD, SIG_DFL);
  auto loaded = passes::loadBenchmark(uri);
  std::string frame;
  if (loaded) {
    frame = "+" + passes::encodeLoaded(*loaded);
  } else {
    const auto outcome = static_cast<uint16_t>(loaded.error().outcome);
    frame = "-";
    frame.append(reinterpret_cast<const char*>(&outcome), sizeof(outcome));
    frame += loaded.error().message;
  }
  writeAll(out, frame.data(), frame.size());
  _exit(0);
}

}  // namespace

Result<passes::LoadedBitcode> loadInChild(const std::string& uri, std::chrono::seconds timeout) {
  int pipeFds[2];
  if (auto r = sys("pipe2(loader)", [&] { return pipe2(pipeFds, O_CLOEXEC); }); !r) return r.takeError();
  UniqueFd readEnd(pipeFds[0]), writeEnd(pipeFds[1]);

  assertSingleThreaded();
  const pid_t pid = fork();
  if (pid < 0) return makeError(Outcome::ServerError, errnoMessage("fork(loader)"));
  if (pid == 0) {
    setpgid(0, 0);
    readEnd.reset();
    loaderChild(uri, writeEnd.get());
  }
  setpgid(pid, pid);
  writeEnd.reset();

  std::string bytes;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool timedOut = false;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timedOut = true;
      break;
    }
    pollfd pfd{readEnd.get(), POLLIN, 0};
    int ready = poll(&pfd, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) {
      timedOut = ready == 0;
      break;
    }
    char chunk[65536];
    ssize_t n = read(readEnd.get(), chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    bytes.append(chunk, static_cast<size_t>(n));
  }
  if (timedOut) kill(-pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  // Whatever the loader started (a compiler) dies with it.
  kill(-pid, SIGKILL);

  if (timedOut) {
    return makeError(Outcome::BenchmarkError, "loading '" + uri + "' took longer than " +
                                                  std::to_string(timeout.count()) + " s and was stopped");
  }
  if (WIFSIGNALED(status)) {
    const char* name = sigabbrev_np(WTERMSIG(status));
    const std::string signal = name ? std::string("SIG") + name : "signal " + std::to_string(WTERMSIG(status));
    return makeError(Outcome::BenchmarkError, "loading '" + uri + "' crashed the loader with " + signal +
                                                  "; the benchmark is probably malformed");
  }
  if (bytes.empty()) return makeError(Outcome::BenchmarkError, "loading '" + uri + "' produced no result");
  if (bytes[0] == '-') {
    uint16_t outcome = static_cast<uint16_t>(Outcome::BenchmarkError);
    if (bytes.size() >= 3) std::memcpy(&outcome, bytes.data() + 1, sizeof(outcome));
    return makeError(outcomeFromWire(outcome), bytes.size() > 3 ? bytes.substr(3) : "unknown error");
  }
  return passes::decodeLoaded(std::string_view(bytes).substr(1));
}

}  // namespace forkgym::forkserver
