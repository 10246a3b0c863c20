// forkgym-server: the zygote. See forkserver/zygote.h for its lifecycle.
#include <pwd.h>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "forkserver/baseline_cache.h"
#include "forkserver/heap_perturbation.h"
#include "forkserver/zygote.h"
#include "ipc/control_socket.h"
#include "passes/gcc/backend.h"
#include "passes/llvm/backend.h"
#ifdef FORKGYM_TEST_ACTIONS
#include "tests/backends/calculator/backend.h"
#endif

namespace {

// The backends this server serves, in the order its hello lists them; the
// first is the default of --preload. A backend is a folder under passes/
// and one row here.
const forkgym::passes::Backend* const kBackends[] = {
    &forkgym::passes::kLlvmBackend,
    &forkgym::passes::gcc::kGccBackend,
#ifdef FORKGYM_TEST_ACTIONS
    &forkgym::calculator::kBackend,  // test builds: the worked example (tests/backends/calculator/)
#endif
};

constexpr const char* kUsage = R"(usage: forkgym-server [options]

Starts the forkgym zygote: initialises its compilers (backends: %s) and
preloads benchmarks, then forks one sandboxed worker per episode for clients
that connect to it.

options:
  --socket PATH          listen on this Unix socket (default: %s, in a directory
                         only this user may use, created 0700 if missing)
  --connected-fd N       serve the one connection on descriptor N, exit when it closes
  --exit-when-idle S     with a socket: exit once no client has been connected for S
                         seconds (also when none connects within S of start-up), so a
                         server shared by a node's processes outlives none of them
  --preload [BACKEND=]URI
                         load a benchmark at start-up for BACKEND (default: the first
                         above), repeatable: a file, a directory of .bc/.ll files, a
                         generator range generator://csmith-v0/0..9, benchmark://...
  --benchmark-root DIR   serve file:// benchmarks only from under DIR (repeatable; default:
                         any absolute path). Paths with a '..' component are always refused
  --dataset-dir DIR      where benchmark://forkgym-v0/<name> programs are (default: the
                         installed package's, else the build's)
  --site-data DIR        where installed datasets are: benchmark://<name>/<path> is a file of
                         DIR/datasets/<name>/ (default: $FORKGYM_SITE_DATA, else
                         $XDG_DATA_HOME/forkgym, else /var/lib/forkgym for root, else
                         ~/.local/share/forkgym; python -m forkgym datasets installs there)
  --cache-mb N           memory budget for parsed benchmarks (default 2048)
  --baseline-cache DIR   where computed baselines (the -O0/-O3/-Oz costs) are kept for the
                         next server: a directory of this server's user that nobody else
                         may write (default: $XDG_CACHE_HOME/forkgym/baselines, else
                         ~/.cache/forkgym/baselines; 'none': not kept)
  --load-timeout S       seconds allowed to compile/parse one benchmark (default 120)
  --load-memory-mb N     address space one load may use, and each compiler it runs
                         (default: the worker limit)
  --worker-memory-mb N   default address-space limit per worker (default 2048)
  --step-cpu-seconds N   default CPU-time limit per step (default 60)
  --worker-nice N        niceness added to workers, so the machine stays responsive
                         under many episodes (default 10; 0 = none)
  --spare-workers N      benchmarks kept with a worker forked ahead, so their
                         resets need no fork (default 4; 0 turns this off)
  --no-spare-warm-up     spares do not prepare their first step while they wait (by default
                         they set up the pass manager and fault in the module's pages and
                         the compiler's code: a faster first step, for private memory of
                         about the module's size per episode)
  --ready-fd N           write one byte to descriptor N, then close it, once the server
                         accepts connections (after any --preload): a readiness signal
                         for whoever started it
  --max-processes N      processes one episode may have: its worker and live
                         env.fork() copies (default 256)
  --sandbox-user USER    who workers, loaders and tools run as when the server runs
                         as root: a user name or UID[:GID] (default nobody, 65534);
                         benchmark files must be readable by this user
  --no-namespaces        no user, PID or network namespaces (where a container
                         forbids them; the sandbox level says what remains)
  --perturb-heap SEED    before loading anything, allocate and free blocks chosen by SEED,
                         so this zygote's heap layout (and its workers') differs from any
                         other's, even with ASLR off: heap-address-dependent results of
                         LLVM show as different states (validate(fresh_process=True))
  --state-cache          follow cached transitions from the node-wide state cache (the
                         default; also FORKGYM_STATE_CACHE=1)
  --no-state-cache       answer every step by running its passes: no state cache; wins over
                         --state-cache (also FORKGYM_STATE_CACHE=0; --perturb-heap implies it)
  --state-cache-mb N     size of the state cache's data if this server creates it (default 256;
                         an existing segment keeps its size)
  --state-cache-name NAME  its POSIX shared-memory name (default $FORKGYM_STATE_CACHE_NAME, else
                         /forkgym-state-cache-v1-UID, shared by every server of this user)
  --log-level LEVEL      trace, debug, info, warn, error (default warn)
  --help                 show this text

sandbox: every worker runs under a seccomp allowlist with no_new_privs,
rlimits and only its own descriptors; where the kernel allows, workers,
loaders and tools also run as an unprivileged user with no capabilities, in
a user namespace per episode (which makes the process limit hold), a PID
namespace of their own and no network. On this machine, as this user:
)";

bool parseNumber(std::string_view text, uint64_t& out) {
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), out);
  return error == std::errc() && end == text.data() + text.size();
}

// Expands a --preload argument: a directory of .bc/.ll files, or a generator
// seed range "generator://NAME/A..B", into single URIs.
std::vector<std::string> expandPreload(const std::string& arg) {
  std::vector<std::string> uris;
  const auto range = arg.rfind("..");
  if (arg.starts_with("generator://") && range != std::string::npos) {
    const auto slash = arg.rfind('/', range);
    uint64_t first = 0, last = 0;
    if (slash != std::string::npos && parseNumber(std::string_view(arg).substr(slash + 1, range - slash - 1), first) &&
        parseNumber(std::string_view(arg).substr(range + 2), last) && first <= last) {
      for (uint64_t seed = first; seed <= last; ++seed) uris.push_back(arg.substr(0, slash + 1) + std::to_string(seed));
      return uris;
    }
  }
  std::string path = arg.starts_with("file://") ? arg.substr(7) : arg;
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    bool anyIr = false;
    for (const auto& entry : std::filesystem::directory_iterator(path, ec)) {
      const auto ext = entry.path().extension();
      if (ext == ".bc" || ext == ".ll") {
        uris.push_back("file://" + std::filesystem::absolute(entry.path()).string());
        anyIr = true;
      }
    }
    std::sort(uris.begin(), uris.end());
    // A directory of sources (no IR files) is one multi-file program.
    if (!anyIr) uris.push_back(arg);
    return uris;
  }
  uris.push_back(arg);
  return uris;
}

// A user name (its uid and primary group) or "UID[:GID]" (GID defaults to UID).
bool parseSandboxUser(const std::string& text, forkgym::sandbox::IsolationRequest& isolation) {
  const auto colon = text.find(':');
  uint64_t uid = 0, gid = 0;
  if (parseNumber(std::string_view(text).substr(0, colon), uid)) {
    gid = uid;
    if (colon != std::string::npos && !parseNumber(std::string_view(text).substr(colon + 1), gid)) return false;
  } else if (const passwd* entry = colon == std::string::npos ? getpwnam(text.c_str()) : nullptr) {
    uid = entry->pw_uid;
    gid = entry->pw_gid;
  } else {
    return false;
  }
  isolation.sandboxUid = static_cast<uid_t>(uid);
  isolation.sandboxGid = static_cast<gid_t>(gid);
  return true;
}

}  // namespace

std::string backendNames() {
  std::string names;
  for (const auto* backend : kBackends) names += (names.empty() ? "" : ", ") + std::string(backend->name);
  return names;
}

// "llvm=file:///x.c" -> (llvm backend, "file:///x.c"); a URI without a
// known backend's name before '=' is for the first backend.
std::pair<const forkgym::passes::Backend*, std::string> preloadFor(const std::string& arg) {
  const auto equals = arg.find('=');
  if (equals != std::string::npos) {
    for (const auto* backend : kBackends) {
      if (arg.compare(0, equals, backend->name) == 0) return {backend, arg.substr(equals + 1)};
    }
  }
  return {kBackends[0], arg};
}

// benchmark://forkgym-v0/: beside an installed server (the wheel's
// forkgym/bin/forkgym-server and forkgym/benchmarks/), else the build's copy.
std::string defaultDatasetDir() {
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec && exe.parent_path().filename() == "bin") {
    const auto installed = exe.parent_path().parent_path() / "benchmarks";
    if (std::filesystem::is_directory(installed, ec)) return installed.string();
  }
#ifdef FORKGYM_BUILD_DATASET_DIR
  return FORKGYM_BUILD_DATASET_DIR;
#else
  return {};
#endif
}

int main(int argc, char** argv) {
  forkgym::forkserver::ZygoteOptions options;
  options.backends.assign(std::begin(kBackends), std::end(kBackends));
  options.socketPath = forkgym::defaultSocketPath();
  options.benchmarks.bundledDir = defaultDatasetDir();
  options.benchmarks.userCacheDir = forkgym::passes::defaultUserCacheDir();
  std::string siteData = forkgym::passes::defaultSiteDataDir();
  std::string baselineCache = forkgym::forkserver::BaselineCache::defaultDirectory();
  std::string logLevel = "warn";
  int readyFd = -1;
  std::optional<uint64_t> perturbSeed;
  bool noStateCache = false;  // --no-state-cache wins over every way of turning it on
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    auto value = [&](const char* name) -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "forkgym-server: %s needs a value (see --help)\n", name);
        std::exit(2);
      }
      return argv[++i];
    };
    auto number = [&](const char* name) -> uint64_t {
      const std::string text = value(name);
      uint64_t n = 0;
      if (!parseNumber(text, n)) {
        std::fprintf(stderr, "forkgym-server: %s expects a whole number, got '%s'\n", name, text.c_str());
        std::exit(2);
      }
      return n;
    };
    if (arg == "--help" || arg == "-h") {
      std::printf(kUsage, backendNames().c_str(), forkgym::defaultSocketPath().c_str());
      // Tried in a throwaway child: what a server started now would get.
      const auto report = forkgym::sandbox::probeIsolation(options.isolation);
      std::printf("  level %s:", report.level.c_str());
      for (const auto& feature : report.features) std::printf(" %s", feature.c_str());
      std::printf("\n");
      for (const auto& fallback : report.fallbacks) std::printf("  - %s\n", fallback.c_str());
      return 0;
    } else if (arg == "--socket") {
      options.socketPath = value("--socket");
    } else if (arg == "--connected-fd") {
      options.connectedFd = static_cast<int>(number("--connected-fd"));
    } else if (arg == "--exit-when-idle") {
      const uint64_t seconds = number("--exit-when-idle");
      if (seconds == 0 || seconds > 86400) {
        std::fprintf(stderr, "forkgym-server: --exit-when-idle must be 1..86400 seconds (omit it to serve until a signal)\n");
        return 2;
      }
      options.exitWhenIdle = std::chrono::seconds(seconds);
    } else if (arg == "--preload") {
      const auto [backend, uri] = preloadFor(value("--preload"));
      for (auto& one : expandPreload(uri)) options.preload.emplace_back(backend, one);
    } else if (arg == "--benchmark-root") {
      const std::string dir = value("--benchmark-root");
      std::error_code ec;
      const auto real = std::filesystem::canonical(dir, ec);
      if (ec || !std::filesystem::is_directory(real, ec)) {
        std::fprintf(stderr, "forkgym-server: --benchmark-root '%s' is not an existing directory\n", dir.c_str());
        return 2;
      }
      options.benchmarks.roots.push_back(real.string());
    } else if (arg == "--dataset-dir") {
      const std::string dir = value("--dataset-dir");
      std::error_code ec;
      const auto real = std::filesystem::canonical(dir, ec);
      if (ec || !std::filesystem::is_directory(real, ec)) {
        std::fprintf(stderr, "forkgym-server: --dataset-dir '%s' is not an existing directory\n", dir.c_str());
        return 2;
      }
      options.benchmarks.bundledDir = real.string();
    } else if (arg == "--site-data") {
      // Need not exist yet: datasets may be installed after the server starts.
      std::error_code ec;
      siteData = std::filesystem::absolute(value("--site-data"), ec).lexically_normal().string();
      while (siteData.size() > 1 && siteData.ends_with('/')) siteData.pop_back();
    } else if (arg == "--cache-mb") {
      options.cacheMb = number("--cache-mb");
    } else if (arg == "--baseline-cache") {
      const std::string dir = value("--baseline-cache");
      if (dir != "none" && !dir.starts_with('/')) {
        std::fprintf(stderr, "forkgym-server: --baseline-cache needs an absolute directory or 'none', not '%s'\n",
                     dir.c_str());
        return 2;
      }
      baselineCache = dir;
    } else if (arg == "--load-timeout") {
      options.loadTimeout = std::chrono::seconds(number("--load-timeout"));
    } else if (arg == "--load-memory-mb") {
      options.loadMemoryBytes = number("--load-memory-mb") << 20;
#ifdef FORKGYM_TEST_ACTIONS
    } else if (arg == "--test-load-gate") {
      // Test builds: SUBSTRING=FIFO (tests/forkserver/load_test.cc).
      const std::string gate = value("--test-load-gate");
      const auto equals = gate.find('=');
      if (equals == std::string::npos) {
        std::fprintf(stderr, "forkgym-server: --test-load-gate expects SUBSTRING=FIFO\n");
        return 2;
      }
      options.testLoadGate = {gate.substr(0, equals), gate.substr(equals + 1)};
#endif
    } else if (arg == "--worker-memory-mb") {
      options.limits.addressSpaceBytes = number("--worker-memory-mb") << 20;
    } else if (arg == "--worker-nice") {
      options.limits.niceness = static_cast<int>(std::min<uint64_t>(number("--worker-nice"), 19));
    } else if (arg == "--step-cpu-seconds") {
      options.cpuSecondsPerStep = static_cast<uint32_t>(number("--step-cpu-seconds"));
    } else if (arg == "--spare-workers") {
      options.spareWorkers = number("--spare-workers");
    } else if (arg == "--no-spare-warm-up") {
      options.spareWarmUp = false;
    } else if (arg == "--ready-fd") {
      readyFd = static_cast<int>(number("--ready-fd"));
    } else if (arg == "--max-processes") {
      options.limits.maxProcesses = number("--max-processes");
      if (options.limits.maxProcesses < 2) {
        std::fprintf(stderr, "forkgym-server: --max-processes must be at least 2 (a worker and one fork)\n");
        return 2;
      }
    } else if (arg == "--sandbox-user") {
      const std::string user = value("--sandbox-user");
      if (!parseSandboxUser(user, options.isolation)) {
        std::fprintf(stderr, "forkgym-server: --sandbox-user '%s' is neither a user name nor UID[:GID]\n", user.c_str());
        return 2;
      }
    } else if (arg == "--no-namespaces") {
      options.isolation.namespaces = false;
    } else if (arg == "--perturb-heap") {
      perturbSeed = number("--perturb-heap");
    } else if (arg == "--state-cache") {
      options.stateCache.enabled = true;
    } else if (arg == "--no-state-cache") {
      options.stateCache.enabled = false;
      noStateCache = true;
    } else if (arg == "--state-cache-mb") {
      options.stateCache.megabytes = number("--state-cache-mb");
      if (options.stateCache.megabytes == 0 || options.stateCache.megabytes > (1u << 20)) {
        std::fprintf(stderr, "forkgym-server: --state-cache-mb must be 1..1048576 (or use --no-state-cache)\n");
        return 2;
      }
    } else if (arg == "--state-cache-name") {
      options.stateCache.name = value("--state-cache-name");
      if (!noStateCache) options.stateCache.enabled = true;
      const auto& name = options.stateCache.name;
      if (name.size() < 2 || name[0] != '/' || name.find('/', 1) != std::string::npos || name.size() > 200) {
        std::fprintf(stderr, "forkgym-server: --state-cache-name must be '/' and a file name, e.g. /my-cache\n");
        return 2;
      }
    } else if (arg == "--log-level") {
      logLevel = value("--log-level");
    } else {
      std::fprintf(stderr, "forkgym-server: unknown option '%s' (see --help)\n", argv[i]);
      return 2;
    }
  }

  // First, so everything the backends and benchmarks allocate lands elsewhere.
  if (perturbSeed) forkgym::forkserver::perturbHeap(*perturbSeed);
  if (const char* env = std::getenv("FORKGYM_STATE_CACHE"); env != nullptr) {
    if (std::string_view(env) == "0") options.stateCache.enabled = false;
    if (std::string_view(env) == "1" && !noStateCache) options.stateCache.enabled = true;
  }
  if (const char* env = std::getenv("FORKGYM_STATE_CACHE_NAME"); env != nullptr && options.stateCache.name.empty()) {
    options.stateCache.name = env;  // StateCache::open() refuses a malformed one, leaving the cache off
  }
  // A perturbed zygote exists to compute every state afresh in a heap of its
  // own (validate(fresh_process=True), forkgym determinism): never from a
  // cache another zygote filled.
  if (perturbSeed) options.stateCache.enabled = false;

  options.benchmarks.datasets = std::make_shared<forkgym::passes::InstalledDatasets>(siteData);
  // Confined to --benchmark-root directories, the server still serves its
  // own bundled programs (benchmark://forkgym-v0/, compiled from its dataset
  // directory) and its installed datasets (its own configuration, as the
  // site-data directory is; that directory may be made later, so its links
  // are resolved as far as it exists). A dataset registered in place
  // elsewhere must be under a root.
  if (!options.benchmarks.roots.empty()) {
    std::error_code ec;
    if (!options.benchmarks.bundledDir.empty()) {
      const auto real = std::filesystem::canonical(options.benchmarks.bundledDir, ec);
      if (!ec) options.benchmarks.roots.push_back(real.string());
    }
    if (!siteData.empty()) {
      const auto datasets = std::filesystem::weakly_canonical(options.benchmarks.datasets->datasetsDir(), ec);
      if (!ec) options.benchmarks.roots.push_back(datasets.string());
    }
  }

  if (baselineCache != "none") options.baselineCacheDirectory = baselineCache;

  // The default socket's directory must be ours alone: a client trusts a
  // socket there only if it is (see forkgym::Connection::connect).
  if (options.connectedFd < 0 &&
      std::filesystem::path(options.socketPath).parent_path() == forkgym::defaultSocketDir()) {
    if (auto private_ = forkgym::checkPrivateDir(forkgym::defaultSocketDir(), /*create=*/true); !private_) {
      std::fprintf(stderr, "forkgym-server: %s\n", private_.error().message.c_str());
      return 1;
    }
  }

  // Synchronous sinks only: an asynchronous logger would start a thread,
  // and the zygote must stay single-threaded to fork safely.
  auto logger = spdlog::stderr_logger_st("forkgym-server");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(logLevel));

  forkgym::forkserver::Zygote zygote(std::move(options));
  if (auto started = zygote.start(); !started) {
    std::fprintf(stderr, "forkgym-server: %s\n", started.error().message.c_str());
    return 1;
  }
  if (readyFd >= 0) {
    const char ready = '1';
    if (write(readyFd, &ready, 1) != 1) std::fprintf(stderr, "forkgym-server: --ready-fd %d: %s\n", readyFd, std::strerror(errno));
    close(readyFd);
  }
  return zygote.run();
}
