#include "forkserver/loader.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "forkserver/crash_reporter.h"
#include "forkserver/module_cache_writer.h"
#include "forkserver/single_thread.h"
#include "base/syscall.h"
#include "passes/benchmark_directory.h"
#include "passes/module_cache.h"
#include "sandbox/client_identity.h"
#include "sandbox/isolation.h"
#include "sandbox/sandbox.h"

namespace forkgym::forkserver {
namespace {

// The result pipe's descriptor in the loader: every other inherited
// descriptor (client sockets, spare workers' channel ends, the listener) is
// closed, so a loader subverted by hostile input holds nothing of the zygote.
constexpr int kResultFd = 3;

// The loader's own limits are set above; the sandbox adds only the process
// limit. 64 covers the baseline threads and a compiler's few processes.
constexpr sandbox::SandboxLimits kLoaderSandboxLimits{0, 0, 0, 64, 0};

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

[[noreturn]] void outOfMemory() { _exit(kOutOfMemoryExit); }
[[noreturn]] void compilerFatalError(const char*) { _exit(kCompilerFatalExit); }

// Address space mapped now (the zygote's, inherited by fork), from
// /proc/self/statm; 0 if unknown.
uint64_t mappedBytes() {
  const int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char text[128] = {};
  const ssize_t n = read(fd, text, sizeof(text) - 1);
  close(fd);
  if (n <= 0) return 0;
  uint64_t pages = 0;
  for (const char* c = text; *c >= '0' && *c <= '9'; ++c) pages = pages * 10 + static_cast<uint64_t>(*c - '0');
  return pages * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

bool setLimit(int resource, rlim_t soft, rlim_t hard) {
  rlimit current{};
  if (getrlimit(resource, &current) != 0) return false;
  const rlimit next{std::min(soft, current.rlim_max), std::min(hard, current.rlim_max)};
  return setrlimit(resource, &next) == 0;
}

// What the privileged part of a loader's set-up leaves for the rest.
struct EnteredBenchmark {
  std::optional<std::string> unreachable;  // for the client: it may not reach the benchmark
  std::optional<ModuleCacheWriter> writer;  // stores what this load compiles beside the source
  std::string cacheWarning;                 // why nothing will be stored there
};

// A source dataset's file (in its directory, as the client): the module
// cached beside it if it is fresh (passes/module_cache.h), else a writer to
// cache what this load compiles — if the client may write there. Otherwise
// the source is compiled on every load; the server logs that once.
void prepareModuleCache(const passes::Backend& backend, passes::LoadRequest& request, const std::string& path,
                        const sandbox::FsIdentity& client, EnteredBenchmark& entered) {
  if (request.recipe.empty() || backend.sourceModuleKey == nullptr) return;
  request.moduleCacheKey = backend.sourceModuleKey(request.recipe);
  const std::string local = path.substr(path.rfind('/') + 1);
  if (auto cached = passes::readCachedModule(local, request.moduleCacheKey)) {
    request.cachedModule = std::move(cached->bytes);
    request.cachedModuleHeaders = std::move(cached->headers);
    return;
  }
  const std::string directory = request.workingDirectory;
  if (faccessat(AT_FDCWD, ".", W_OK, AT_EACCESS) != 0) {
    entered.cacheWarning = "compiled modules are not cached in " + directory + " (uid " + std::to_string(client.uid) +
                           " may not write there: " + std::strerror(errno) +
                           "); the sources there are compiled on every load by a new server";
    return;
  }
  auto writer = ModuleCacheWriter::start(local, directory, request.moduleCacheKey, client);
  if (!writer) {
    entered.cacheWarning = "compiled modules are not cached in " + directory + ": " + writer.error().message;
    return;
  }
  request.moduleCacheFd = writer->fd();
  entered.writer.emplace(std::move(*writer));
}

// Still privileged, as the client who asked: enter the benchmark's directory
// (passes/benchmark_directory.h), so that the sandbox user reads it by
// relative names however its ancestors are protected — but only where that
// client could reach itself. An error is for the client; a path that does
// not exist is left to the loader, which says so.
EnteredBenchmark enterBenchmarkDirectory(const passes::Backend& backend, passes::LoadRequest& request,
                                         const sandbox::FsIdentity& client) {
  EnteredBenchmark entered;
  constexpr std::string_view kFile = "file://";
  if (!std::string_view(request.uri).starts_with(kFile)) return entered;
  const std::string path = request.uri.substr(kFile.size());
  const sandbox::ClientFsIdentity as(client);
  if (!as.ok()) _exit(kLoaderSetupExit);
  const auto unreachable = [&](const std::string& what) -> std::optional<std::string> {
    if (errno != EACCES) return std::nullopt;
    return "cannot load '" + path + "': uid " + std::to_string(client.uid) + ", who asked for it, cannot reach " +
           what + " (" + std::strerror(EACCES) + "); the server loads a benchmark only from where its client could";
  };
  // The roots too (with --benchmark-root): every file a load reads is
  // checked against them through these descriptors, whatever their
  // ancestors' permissions (passes/benchmark_directory.h).
  for (const std::string& root : request.roots) request.rootFds.push_back(open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  struct stat info {};
  if (stat(path.c_str(), &info) != 0) {
    entered.unreachable = unreachable("it");
    return entered;
  }
  const std::string directory = passes::benchmarkDirectoryOf(request.uri, S_ISDIR(info.st_mode));
  if (chdir(directory.c_str()) != 0) {
    entered.unreachable = unreachable("its directory '" + directory + "'");
    return entered;
  }
  request.workingDirectory = directory;
  if (S_ISREG(info.st_mode)) prepareModuleCache(backend, request, path, client, entered);
  return entered;
}

// ---- Loader child set-up --------------------------------------------------
// Everything a loader applies to itself before it touches the benchmark, in
// order: setUpLoaderChild(), enterBenchmarkDirectory() (the one step that
// needs privileges and the benchmark), applyLoaderSandbox(). After fork():
// failures _exit() with kLoaderSetupExit, except the sandbox's loader
// profile, whose stages exit with their own codes.
void setUpLoaderChild(const passes::Backend& backend, const LoaderLimits& limits, pid_t zygote, int resultPipe) {
  // Its own process group, which the compilers it runs share: the zygote
  // kills the group. Dies with the zygote (checked after, in case the zygote
  // died first).
  setpgid(0, 0);
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != zygote) _exit(kLoaderSetupExit);

  // Default signal handling (the zygote blocks the signals it reads from
  // its signalfd). SIGPIPE: a write to a zygote that stopped listening
  // fails instead; SIGXFSZ: writing a file fails with EFBIG instead.
  sigset_t all;
  sigfillset(&all);
  sigprocmask(SIG_UNBLOCK, &all, nullptr);
  signal(SIGCHLD, SIG_DFL);
  signal(SIGPIPE, SIG_IGN);
  signal(SIGXFSZ, SIG_IGN);

  // Descriptors: /dev/null in, out; stderr stays the zygote's log; the
  // result pipe on kResultFd; nothing else.
  const int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null < 0 || dup2(null, STDIN_FILENO) < 0 || dup2(null, STDOUT_FILENO) < 0) _exit(kLoaderSetupExit);
  if (dup2(resultPipe, kResultFd) < 0) _exit(kLoaderSetupExit);
  // dup2 clears close-on-exec: the compilers it runs must not hold the pipe.
  if (fcntl(kResultFd, F_SETFD, FD_CLOEXEC) != 0) _exit(kLoaderSetupExit);
  if (syscall(SYS_close_range, kResultFd + 1, ~0u, 0) != 0) _exit(kLoaderSetupExit);

  // Limits, inherited by every compiler it runs (which also gets its own
  // address-space limit from tool_process). The address space counts on top
  // of what the fork inherited from the zygote, which may hold gigabytes of
  // parsed benchmarks the loader never touches.
  const rlim_t addressSpace = mappedBytes() + limits.addressSpaceBytes;
  // CPU time of all its threads (the baselines are computed in parallel):
  // the timeout on every core, so only a loader the zygote can no longer
  // kill ever meets it.
  const rlim_t cpu = static_cast<rlim_t>(limits.timeout.count()) *
                         static_cast<rlim_t>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN))) + 1;
  // No file written (the hard limit leaves room for a module cache
  // writer, forked later, to lift its own; the loader lowers it to 0 before
  // its sandbox).
  const bool limited = setLimit(RLIMIT_AS, addressSpace, addressSpace) && setLimit(RLIMIT_CPU, cpu, cpu + 1) &&
                       setLimit(RLIMIT_FSIZE, 0, passes::kMaxCachedModuleBytes) && setLimit(RLIMIT_CORE, 0, 0);
  if (!limited) _exit(kLoaderSetupExit);
  if (limits.niceness > 0) {
    errno = 0;
    if (nice(limits.niceness) == -1 && errno != 0) _exit(kLoaderSetupExit);
  }

  // Allocation failure at the limit is an exit with a stable code the
  // zygote explains, not an abort that looks like a crash.
  std::set_new_handler(outOfMemory);
  if (backend.installErrorHandlers) backend.installErrorHandlers({&outOfMemory, &compilerFatalError});
}

// Last, the loader's sandbox profile (sandbox/sandbox.h): the sandbox user,
// a user namespace of its own, no capabilities, the process limit — for it
// and every compiler it runs. A change of credentials clears the
// parent-death signal, so it is armed (and the parent checked) again.
void applyLoaderSandbox(pid_t zygote, const passes::LoadRequest& request) {
  if (!setLimit(RLIMIT_FSIZE, 0, 0)) _exit(kLoaderSetupExit);
  std::vector<int> keep = {STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO, kResultFd};
  for (int fd : request.rootFds) {
    if (fd >= 0) keep.push_back(fd);
  }
  if (request.moduleCacheFd >= 0) keep.push_back(request.moduleCacheFd);
  sandbox::applySandbox(kLoaderSandboxLimits, keep, sandbox::Profile::Loader);
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != zygote) _exit(kLoaderSetupExit);
}

// After the sandbox: a benchmark the sandbox user cannot read would fail
// inside clang or the parser with a bare "Permission denied"; say whose
// permission is missing, which, and what to do. (The directory was entered
// with privileges: its ancestors need nothing.)
std::optional<std::string> unreadableBySandboxUser(const passes::LoadRequest& request) {
  if (request.workingDirectory.empty()) return std::nullopt;
  const passes::BenchmarkDirectory directory(request.workingDirectory);
  const std::string path = request.uri.substr(std::string_view("file://").size());
  const bool isDirectory = directory.local(path) == ".";
  std::string message = "the sandbox user (uid " + std::to_string(getuid()) + ") cannot ";
  if (access(".", isDirectory ? R_OK | X_OK : X_OK) != 0) {
    if (errno != EACCES) return std::nullopt;  // other errors: the loader's
    message += std::string(isDirectory ? "list" : "search") + " '" + directory.path() + "'";
  } else if (!isDirectory && access(directory.local(path).c_str(), R_OK) != 0) {
    if (errno != EACCES) return std::nullopt;
    message += "read '" + path + "'";
  } else {
    return std::nullopt;
  }
  message += std::string(": it needs the benchmark's directory searchable") + (isDirectory ? " and readable" : "") +
             " and its files readable (the directories above it need nothing)";
  if (sandbox::currentPlan().switchUser) {
    message += "; a forkgym-server started as root loads benchmarks as that user: give 'other' those permissions "
               "(chmod o+x on the directory, o+r on the files), or start forkgym-server with --sandbox-user naming "
               "a user who has them";
  }
  return message;
}
// ----------------------------------------------------------------------------

#ifdef FORKGYM_TEST_ACTIONS
void passTestGate(const std::string& uri, const LoadGate& gate) {
  if (gate.uriContains.empty() || uri.find(gate.uriContains) == std::string::npos) return;
  const int fifo = open(gate.fifo.c_str(), O_RDONLY | O_CLOEXEC);
  char byte = 0;
  if (fifo >= 0) {
    while (read(fifo, &byte, 1) < 0 && errno == EINTR) {
    }
    close(fifo);
  }
}
#endif

[[noreturn]] void runLoader(const passes::Backend& backend, passes::LoadRequest request, const LoaderLimits& limits,
                            const LoadGate& gate, const sandbox::FsIdentity& client, pid_t zygote, int resultPipe) {
  setUpLoaderChild(backend, limits, zygote, resultPipe);
  EnteredBenchmark entered = enterBenchmarkDirectory(backend, request, client);
  applyLoaderSandbox(zygote, request);
#ifdef FORKGYM_TEST_ACTIONS
  passTestGate(request.uri, gate);
#else
  (void)gate;
#endif
  Result<passes::LoadedBenchmark> loaded = makeError(Outcome::BenchmarkError, "not loaded");
  if (entered.unreachable) {
    loaded = makeError(Outcome::BenchmarkError, *entered.unreachable);
  } else if (auto unreadable = unreadableBySandboxUser(request)) {
    loaded = makeError(Outcome::BenchmarkError, *unreadable);
  } else {
    loaded = backend.load(request);
  }
  // Stored (or not) before the zygote hears of the load: a load that
  // follows finds the module.
  const std::string cacheProblem = entered.writer ? entered.writer->finish() : entered.cacheWarning;
  if (loaded && !cacheProblem.empty()) loaded->warning = cacheProblem;
  std::string frame;
  if (loaded) {
    frame = "+" + passes::encodeLoadedBenchmark(*loaded);
  } else {
    const auto outcome = static_cast<uint16_t>(loaded.error().outcome);
    frame = "-";
    frame.append(reinterpret_cast<const char*>(&outcome), sizeof(outcome));
    frame += loaded.error().message;
  }
  writeAll(kResultFd, frame.data(), frame.size());
  _exit(0);
}

[[noreturn]] void runBaselines(const passes::Backend& backend, const passes::CachedBenchmark& benchmark,
                               const LoaderLimits& limits, pid_t zygote, int resultPipe) {
  setUpLoaderChild(backend, limits, zygote, resultPipe);
  applyLoaderSandbox(zygote, passes::LoadRequest{});
  const Result<std::string> computed = backend.baselines->compute(benchmark);
  std::string frame;
  if (computed) {
    frame = "+" + *computed;
  } else {
    const auto outcome = static_cast<uint16_t>(computed.error().outcome);
    frame = "-";
    frame.append(reinterpret_cast<const char*>(&outcome), sizeof(outcome));
    frame += computed.error().message;
  }
  writeAll(kResultFd, frame.data(), frame.size());
  _exit(0);
}

std::string signalName(int signal) {
  const char* name = sigabbrev_np(signal);
  return name ? std::string("SIG") + name : "signal " + std::to_string(signal);
}

}  // namespace

Result<LoaderChild> LoaderChild::start(const passes::Backend& backend, const passes::LoadRequest& request,
                                       const LoaderLimits& limits, const sandbox::FsIdentity& client,
                                       const LoadGate& gate) {
  return forkChild(request.uri, "loading '" + request.uri + "'", limits, [&](pid_t zygote, int resultPipe) {
    runLoader(backend, request, limits, gate, client, zygote, resultPipe);
  });
}

Result<LoaderChild> LoaderChild::startBaselines(const passes::Backend& backend,
                                                const passes::CachedBenchmark& benchmark, const std::string& uri,
                                                const LoaderLimits& limits) {
  return forkChild(uri, "computing the baselines of '" + uri + "'", limits, [&](pid_t zygote, int resultPipe) {
    runBaselines(backend, benchmark, limits, zygote, resultPipe);
  });
}

template <typename Run>
Result<LoaderChild> LoaderChild::forkChild(const std::string& uri, std::string what, const LoaderLimits& limits,
                                           Run&& run) {
  int pipeFds[2];
  if (auto r = sys("pipe2(loader)", [&] { return pipe2(pipeFds, O_CLOEXEC); }); !r) return r.takeError();
  UniqueFd readEnd(pipeFds[0]), writeEnd(pipeFds[1]);

  assertSingleThreaded();
  const pid_t zygote = sandbox::pidAsSeenByChildren();
  const pid_t pid = fork();
  if (pid < 0) return makeError(Outcome::ServerError, errnoMessage("fork(loader)"));
  if (pid == 0) run(zygote, writeEnd.get());
  // Both sides set the group, so it exists before either relies on it.
  setpgid(pid, pid);
  writeEnd.reset();
  fcntl(readEnd.get(), F_SETFL, fcntl(readEnd.get(), F_GETFL) | O_NONBLOCK);

  LoaderChild child;
  child.uri_ = uri;
  child.what_ = std::move(what);
  child.limits_ = limits;
  child.pid_ = pid;
  // Our unreaped child: the pidfd is certainly its own.
  child.pidfd_.reset(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  child.result_ = std::move(readEnd);
  child.deadline_ = std::chrono::steady_clock::now() + limits.timeout;
  return child;
}

LoaderChild::LoaderChild(LoaderChild&& other) noexcept { *this = std::move(other); }

LoaderChild& LoaderChild::operator=(LoaderChild&& other) noexcept {
  if (this != &other) {
    if (pid_ > 0) kill();
    uri_ = std::move(other.uri_);
    what_ = std::move(other.what_);
    limits_ = other.limits_;
    pid_ = std::exchange(other.pid_, -1);
    pidfd_ = std::move(other.pidfd_);
    result_ = std::move(other.result_);
    bytes_ = std::move(other.bytes_);
    exit_ = other.exit_;
    deadline_ = other.deadline_;
  }
  return *this;
}

LoaderChild::~LoaderChild() {
  if (pid_ > 0) kill();
}

bool LoaderChild::readAvailable() {
  while (result_) {
    char chunk[65536];
    const ssize_t n = read(result_.get(), chunk, sizeof(chunk));
    if (n > 0) {
      bytes_.append(chunk, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
    result_.reset();  // end of file (or a broken pipe): the loader is done with it
  }
  return true;
}

void LoaderChild::kill() {
  if (exit_ || pid_ <= 0) return;
  if (pidfd_) syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0);
  // Not reaped yet, so no other process can have taken this group id.
  ::kill(-pid_, SIGKILL);
}

Result<passes::LoadedBenchmark> LoaderChild::finish() const {
  auto body = payload();
  if (!body) return body.takeError();
  return passes::decodeLoadedBenchmark(*body);
}

Result<std::string> LoaderChild::finishBaselines() const {
  auto body = payload();
  if (!body) return body.takeError();
  return std::string(*body);
}

Result<std::string_view> LoaderChild::payload() const {
  const auto failed = [&](const std::string& why) {
    return makeError(Outcome::BenchmarkError, what_ + " " + why);
  };
  const ExitStatus status = exit_.value_or(ExitStatus{});
  const std::string limitMb = std::to_string(limits_.addressSpaceBytes >> 20) + " MB";
  if (status.exitCode == kOutOfMemoryExit) {
    return failed("ran out of memory: a load may use " + limitMb +
                  " (forkgym-server --load-memory-mb); the benchmark is too large or malformed");
  }
  if (status.exitCode == kCompilerFatalExit) {
    return failed("made the compiler report a fatal error; the benchmark is probably malformed");
  }
  if (status.exitCode == kLoaderSetupExit) {
    return makeError(Outcome::ServerError, "the loader for '" + uri_ + "' could not set up its limits");
  }
  if (status.signal == SIGXCPU || (status.signal == SIGKILL && bytes_.empty())) {
    // SIGKILL with no result: the CPU hard limit, or the kernel's OOM killer.
    return failed("was stopped by its limits (" + std::to_string(limits_.timeout.count()) + " s of CPU, " + limitMb +
                  " of memory) after the loader was killed by " + signalName(status.signal));
  }
  if (status.signal != 0) {
    return failed("crashed the loader with " + signalName(status.signal) + "; the benchmark is probably malformed");
  }
  if (status.exitCode != 0) {
    const std::string_view stage = sandbox::stageForExitCode(status.exitCode);
    if (!stage.empty()) {
      return makeError(Outcome::ServerError, "the loader for '" + uri_ + "' could not enter its sandbox: stage '" +
                                                 std::string(stage) + "' failed (exit " +
                                                 std::to_string(status.exitCode) + "); see the server's log");
    }
    return makeError(Outcome::ServerError,
                     "the loader for '" + uri_ + "' exited with code " + std::to_string(status.exitCode));
  }
  if (bytes_.empty()) return failed("produced no result");
  if (bytes_[0] == '-') {
    uint16_t outcome = static_cast<uint16_t>(Outcome::BenchmarkError);
    if (bytes_.size() >= 3) std::memcpy(&outcome, bytes_.data() + 1, sizeof(outcome));
    return makeError(outcomeFromWire(outcome), bytes_.size() > 3 ? bytes_.substr(3) : "unknown error");
  }
  return std::string_view(bytes_).substr(1);
}

}  // namespace forkgym::forkserver
