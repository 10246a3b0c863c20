#include "forkserver/module_cache_writer.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "base/syscall.h"
#include "passes/module_cache.h"

namespace forkgym::forkserver {
namespace {

constexpr int kSocketFd = 3;

[[noreturn]] void runWriter(int socket, const std::string& source, const std::string& directory,
                            const std::string& optionsKey, const sandbox::FsIdentity& client) {
  // Ends with the loader (which it then has nothing more to hear from).
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) _exit(1);
  if (dup2(socket, kSocketFd) < 0 || syscall(SYS_close_range, kSocketFd + 1, ~0u, 0) != 0) _exit(1);
  if (!sandbox::becomeClient(client)) _exit(1);
  const rlimit size{passes::kMaxCachedModuleBytes, passes::kMaxCachedModuleBytes};
  if (setrlimit(RLIMIT_FSIZE, &size) != 0) _exit(1);
  auto module = passes::receiveCachedModule(kSocketFd);
  if (module) {
    if (auto stored = passes::storeCachedModule(source, optionsKey, *module, directory); !stored) {
      const std::string& message = stored.error().message;
      for (size_t done = 0; done < message.size();) {
        const ssize_t n = write(kSocketFd, message.data() + done, message.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        done += static_cast<size_t>(n);
      }
    }
  }
  _exit(0);
}

}  // namespace

Result<ModuleCacheWriter> ModuleCacheWriter::start(const std::string& source, const std::string& directory,
                                                   const std::string& optionsKey, const sandbox::FsIdentity& client) {
  int ends[2];
  if (auto made = sys("socketpair(module cache)", [&] { return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends); });
      !made) {
    return made.takeError();
  }
  UniqueFd ours(ends[0]), theirs(ends[1]);
  const pid_t pid = fork();
  if (pid < 0) return makeError(Outcome::ServerError, errnoMessage("fork(module cache writer)"));
  if (pid == 0) runWriter(theirs.get(), source, directory, optionsKey, client);
  ModuleCacheWriter writer;
  writer.pid_ = pid;
  writer.socket_ = std::move(ours);
  return writer;
}

ModuleCacheWriter::~ModuleCacheWriter() {
  if (pid_ > 0) finish();
}

std::string ModuleCacheWriter::finish() {
  std::string answer;
  if (socket_) {
    // Nothing more comes from the loader (if the backend sent nothing, the
    // writer now sees the end of an empty stream and stores nothing).
    shutdown(socket_.get(), SHUT_WR);
    char chunk[1024];
    for (;;) {
      const ssize_t n = read(socket_.get(), chunk, sizeof(chunk));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      if (answer.size() < 4096) answer.append(chunk, static_cast<size_t>(n));
    }
    socket_.reset();
  }
  if (pid_ > 0) {
    while (waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
  }
  return answer;
}

}  // namespace forkgym::forkserver
