// Shared set-up for the runtime suites: a private zygote per suite, paths to
// test data and LLVM's tools, and /proc-based leak checks.
//
// Temporary files the tests make themselves are named /tmp/fgtest-*; the
// leak checks look for /tmp/forkgym-* (what the product would leave), so
// suites running in parallel under ctest -j do not see each other's files.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <cstdio>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "client/connection.h"
#include "client/env.h"

namespace forkgym::testing {

// The suites run forkgym-test-server (FORKGYM_SERVER_BINARY): the product
// server with the test-only actions and requests compiled in. The product
// forkgym-server (FORKGYM_PRODUCT_SERVER_BINARY) has neither; only the tests
// about the product build itself spawn it.
inline ServerOptions testServer(ServerOptions options = {}) {
  options.serverPath = FORKGYM_SERVER_BINARY;
  return options;
}

// An environment variable set (or, with nullopt, unset) for the scope's
// lifetime, then restored: a server spawned meanwhile inherits it.
class ScopedVariable {
 public:
  ScopedVariable(std::string name, const std::optional<std::string>& value) : name_(std::move(name)) {
    if (const char* previous = getenv(name_.c_str())) previous_ = previous;
    if (value) {
      setenv(name_.c_str(), value->c_str(), 1);
    } else {
      unsetenv(name_.c_str());
    }
  }
  ~ScopedVariable() {
    if (previous_) {
      setenv(name_.c_str(), previous_->c_str(), 1);
    } else {
      unsetenv(name_.c_str());
    }
  }
  ScopedVariable(const ScopedVariable&) = delete;
  ScopedVariable& operator=(const ScopedVariable&) = delete;

 private:
  std::string name_;
  std::optional<std::string> previous_;
};

inline std::string dataPath(const std::string& name) { return std::string(FORKGYM_TEST_DATA) + "/" + name; }
inline std::string fileUri(const std::string& name) { return "file://" + dataPath(name); }
inline std::string llvmTool(const std::string& tool) { return "/usr/lib/llvm-19/bin/" + tool; }

// Runs a shell command, returns its stdout.
inline std::string run(const std::string& command) {
  std::string out;
  if (FILE* pipe = popen(command.c_str(), "r")) {
    char buffer[4096];
    size_t n;
    while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) out.append(buffer, n);
    pclose(pipe);
  }
  return out;
}

inline std::set<std::string> listDir(const std::string& path) {
  std::set<std::string> names;
  if (DIR* dir = opendir(path.c_str())) {
    while (dirent* entry = readdir(dir)) {
      std::string name = entry->d_name;
      if (name != "." && name != "..") names.insert(name);
    }
    closedir(dir);
  }
  return names;
}

inline size_t openFdCount() { return listDir("/proc/self/fd").size(); }

// True when `pid` no longer runs (gone, or a zombie nobody needs).
inline bool processGone(pid_t pid) {
  if (kill(pid, 0) != 0) return true;
  FILE* stat = fopen(("/proc/" + std::to_string(pid) + "/stat").c_str(), "r");
  if (!stat) return true;
  char buffer[512] = {};
  size_t n = fread(buffer, 1, sizeof(buffer) - 1, stat);
  fclose(stat);
  std::string text(buffer, n);
  auto close = text.rfind(')');
  return close != std::string::npos && close + 2 < text.size() && (text[close + 2] == 'Z' || text[close + 2] == 'X');
}

// How long a wait may last before the test calls it a hang. Not a timing
// assertion: what the tests wait for happens on an event (a closed socket,
// a kill), and this guard is far below every limit (step CPU time, step and
// load timeouts) that would end the process some other way.
inline constexpr std::chrono::seconds kHangGuard{20};

// Waits for `pid` to end: its pidfd becomes readable when it exits, so no
// polling. True once it has ended (or was gone already).
inline bool waitUntilGone(pid_t pid, std::chrono::milliseconds guard = kHangGuard) {
  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) return errno == ESRCH;
  pollfd ready{pidfd, POLLIN, 0};
  const bool ended = poll(&ready, 1, static_cast<int>(guard.count())) == 1;
  close(pidfd);
  return ended;
}

// Polls a state the code exposes (a status reply, a worker's exit record)
// until `holds` says so; false if the guard runs out.
template <typename Holds>
bool eventually(Holds holds, std::chrono::milliseconds guard = kHangGuard) {
  const auto deadline = std::chrono::steady_clock::now() + guard;
  while (!holds()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    poll(nullptr, 0, 1);
  }
  return true;
}

// Starts `forkgym-test-server --socket PATH extra...` as a child and returns
// its pid once it accepts connections (its --ready-fd byte), or -1 if it
// exited first.
inline pid_t startSocketServer(const std::string& socketPath, std::vector<std::string> extra = {}) {
  int ready[2];
  if (pipe2(ready, O_CLOEXEC) != 0) return -1;
  const pid_t server = ::fork();
  if (server == 0) {
    const int readyFd = fcntl(ready[1], F_DUPFD, 10);  // without close-on-exec
    std::vector<std::string> args = {FORKGYM_SERVER_BINARY, "--socket", socketPath, "--ready-fd",
                                     std::to_string(readyFd)};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (auto& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    execv(FORKGYM_SERVER_BINARY, argv.data());
    _exit(127);
  }
  close(ready[1]);
  char byte = 0;
  const bool started = server > 0 && read(ready[0], &byte, 1) == 1;
  close(ready[0]);
  if (!started && server > 0) {
    kill(server, SIGKILL);
    waitpid(server, nullptr, 0);
  }
  return started ? server : -1;
}

// Every process whose parent chain leads to `ancestor` (not itself).
inline std::vector<pid_t> descendantsOf(pid_t ancestor) {
  std::map<pid_t, pid_t> parent;
  for (const auto& name : listDir("/proc")) {
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    FILE* stat = fopen(("/proc/" + name + "/stat").c_str(), "r");
    if (!stat) continue;
    char buffer[512] = {};
    const size_t n = fread(buffer, 1, sizeof(buffer) - 1, stat);
    fclose(stat);
    const std::string text(buffer, n);
    const auto close = text.rfind(')');
    if (close == std::string::npos) continue;
    int ppid = 0;
    char state = 0;
    if (sscanf(text.c_str() + close + 1, " %c %d", &state, &ppid) == 2 && state != 'Z') parent[std::stoi(name)] = ppid;
  }
  std::vector<pid_t> found;
  for (const auto& [pid, ppid] : parent) {
    for (pid_t up = ppid; up > 1;) {
      if (up == ancestor) {
        found.push_back(pid);
        break;
      }
      auto it = parent.find(up);
      if (it == parent.end()) break;
      up = it->second;
    }
  }
  return found;
}

// Live processes (not zombies) whose command line contains `needle`.
inline std::vector<pid_t> processesMentioning(const std::string& needle) {
  std::vector<pid_t> found;
  for (const auto& name : listDir("/proc")) {
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    const pid_t pid = std::stoi(name);
    if (pid == getpid()) continue;
    FILE* file = fopen(("/proc/" + name + "/cmdline").c_str(), "r");
    if (!file) continue;
    std::string cmdline;
    char buffer[4096];
    size_t n;
    while ((n = fread(buffer, 1, sizeof(buffer), file)) > 0) cmdline.append(buffer, n);
    fclose(file);
    if (cmdline.find(needle) != std::string::npos && !processGone(pid)) found.push_back(pid);
  }
  return found;
}

// Live compilers a loader started for the C/C++ source `path`: a loader
// runs them in the source's directory and names the source relative to it
// ("./x.c"), so both are checked (another test's "./x.c" runs elsewhere).
inline std::vector<pid_t> compilersOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  const std::string directory = path.substr(0, slash), name = path.substr(slash + 1);
  std::vector<pid_t> found;
  for (pid_t pid : processesMentioning("./" + name)) {
    char cwd[4096] = {};
    const std::string link = "/proc/" + std::to_string(pid) + "/cwd";
    const ssize_t n = readlink(link.c_str(), cwd, sizeof(cwd) - 1);
    if (n > 0 && std::string(cwd, static_cast<size_t>(n)) == directory) found.push_back(pid);
  }
  return found;
}

// A directory for one test's files, removed with everything in it.
struct TestDir {
  std::string path;
  TestDir() {
    char pattern[] = "/tmp/fgtest-dir-XXXXXX";
    path = mkdtemp(pattern);
    // Searchable by all: a server started as root loads benchmarks as its
    // sandbox user (nobody), as it would from a researcher's shared directory.
    chmod(path.c_str(), 0755);
  }
  ~TestDir() { run("rm -rf '" + path + "'"); }
  std::string write(const std::string& name, const std::string& text) const {
    const std::string file = path + "/" + name;
    FILE* out = fopen(file.c_str(), "w");
    fwrite(text.data(), 1, text.size(), out);
    fclose(out);
    return file;
  }
};

// A site-data directory of the test's own, FORKGYM_SITE_DATA while it
// lives: a server spawned meanwhile (which inherits the environment)
// resolves benchmark://<dataset>/... in it. Datasets are installed by hand,
// laid out as the Python package installs them (passes/dataset.h).
class TestSite {
 public:
  TestSite() : variable_("FORKGYM_SITE_DATA", dir_.path) {}
  const std::string& path() const { return dir_.path; }
  std::string datasetDir(const std::string& name) const { return dir_.path + "/datasets/" + name; }
  // <site>/datasets/<name>/: dataset.ini (`ini`), `files` (paths relative to
  // the dataset's directory), then the .installed marker unless told not
  // to. Everything readable by all: a root server's loader is the sandbox user.
  std::string install(const std::string& name, const std::string& ini,
                      const std::map<std::string, std::string>& files, bool marker = true) const {
    namespace fs = std::filesystem;
    const fs::path directory = datasetDir(name);
    const auto writeFile = [&](const fs::path& path, const std::string& bytes) {
      fs::create_directories(path.parent_path());
      std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
    };
    writeFile(directory / "dataset.ini", ini);
    for (const auto& [relative, bytes] : files) writeFile(directory / relative, bytes);
    if (marker) writeFile(directory / ".installed", "");
    run("chmod -R a+rX '" + dir_.path + "'");
    return directory.string();
  }

 private:
  TestDir dir_;
  ScopedVariable variable_;
};

inline std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

// A forkgym-server listening on its own socket, for tests with several
// client connections (Connection::spawn() gives each client its own server).
class SocketServer {
 public:
  explicit SocketServer(const std::vector<std::string>& extraArgs = {})
      : socket_(dir_.path + "/s.sock"), pid_(startSocketServer(socket_, extraArgs)) {
    EXPECT_GT(pid_, 0) << "the server did not start";
  }
  ~SocketServer() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the server must survive everything the test did";
  }
  std::shared_ptr<Connection> connect() {
    auto connection = Connection::connect(socket_);
    EXPECT_TRUE(connection) << connection.error().message;
    return connection ? *connection : nullptr;
  }
  pid_t pid() const { return pid_; }
  const std::string& socketPath() const { return socket_; }

 private:
  TestDir dir_;
  std::string socket_;
  pid_t pid_ = -1;
};

inline int64_t asInt(const Observation& value) { return std::get<int64_t>(value); }
inline const std::string& asText(const Observation& value) { return std::get<std::string>(value); }

// A server of the caller's own (Connection::spawn) and its description: what
// each test fixture starts from. Fails the test if either cannot be had.
inline void spawnDescribed(std::shared_ptr<Connection>& connection,
                           std::shared_ptr<const Description>& description) {
  auto spawned = Connection::spawn(testServer());
  ASSERT_TRUE(spawned) << spawned.error().message;
  connection = *spawned;
  auto described = connection->describe();
  ASSERT_TRUE(described) << described.error().message;
  description = *described;
}

// The index of the action `flag` (the test fails on an unknown flag).
inline uint32_t actionIndex(const Description& description, const std::string& flag) {
  const int index = description.findAction(flag);
  EXPECT_GE(index, 0) << flag;
  return static_cast<uint32_t>(index);
}

class RuntimeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { spawnDescribed(connection_, description_); }
  static void TearDownTestSuite() {
    description_.reset();
    connection_.reset();
  }

  Env newEnv(EnvOptions options = {}) { return Env(connection_, options); }
  uint32_t action(const std::string& flag) { return actionIndex(*description_, flag); }

  static inline std::shared_ptr<Connection> connection_;
  static inline std::shared_ptr<const Description> description_;
};

}  // namespace forkgym::testing
