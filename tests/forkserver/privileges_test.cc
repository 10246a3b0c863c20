// Who the zygote's children run as: workers, their env.fork() copies,
// loaders and the tools they start get an unprivileged identity, no
// capabilities, namespaces of their own, and a process limit that holds
// when the server runs as root — and the server says which of these are
// active (the hello's sandbox level), truthfully.
#include <fcntl.h>
#include <linux/landlock.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>

#include "tests/forkserver/runtime_fixture.h"

namespace forkgym::testing {
namespace {

std::map<std::string, std::string> procStatus(pid_t pid) {
  std::map<std::string, std::string> fields;
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    const auto value = line.find_first_not_of(" \t", colon + 1);
    fields[line.substr(0, colon)] = value == std::string::npos ? "" : line.substr(value);
  }
  return fields;
}

// "user:[4026531837]": which namespace of a kind a process is in.
std::string namespaceOf(const std::string& pid, const char* kind) {
  char target[128] = {};
  const std::string link = "/proc/" + pid + "/ns/" + kind;
  const ssize_t n = readlink(link.c_str(), target, sizeof(target) - 1);
  return n > 0 ? std::string(target, static_cast<size_t>(n)) : "unreadable " + link;
}
std::string namespaceOf(pid_t pid, const char* kind) { return namespaceOf(std::to_string(pid), kind); }

// The first number of a status line ("65534\t65534\t65534\t65534" -> "65534").
std::string firstField(const std::string& value) { return value.substr(0, value.find_first_of(" \t")); }

bool allFieldsNonZero(const std::string& value) {
  std::istringstream in(value);
  int count = 0;
  for (std::string field; in >> field; ++count) {
    if (field == "0") return false;
  }
  return count > 0;
}

constexpr const char* kNoCapabilities = "0000000000000000";

std::string maxProcessesSoftLimit(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/limits");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("Max processes", 0) == 0) {
      std::istringstream fields(line.substr(13));
      std::string soft;
      fields >> soft;
      return soft;
    }
  }
  return "";
}

// The kernel's Landlock ABI, 0 without Landlock.
int landlockAbi() {
  const long abi = syscall(SYS_landlock_create_ruleset, nullptr, 0, LANDLOCK_CREATE_RULESET_VERSION);
  return abi > 0 ? static_cast<int>(abi) : 0;
}

bool hasFeature(const ServerInfo& info, const std::string& feature) {
  return std::find(info.sandboxFeatures.begin(), info.sandboxFeatures.end(), feature) != info.sandboxFeatures.end();
}

class Privileges : public RuntimeTest {};

TEST_F(Privileges, WorkersAndTheirForksRunWithoutPrivilege) {
  Env env = newEnv();
  ASSERT_TRUE(env.reset(fileUri("crc32.c")));
  // A worker answers only once its sandbox is complete.
  ASSERT_TRUE(env.step({}).ok());
  auto copy = env.fork();
  ASSERT_TRUE(copy) << copy.error().message;
  for (pid_t pid : {env.workerPid(), copy->workerPid()}) {
    SCOPED_TRACE("pid " + std::to_string(pid));
    auto status = procStatus(pid);
    ASSERT_FALSE(status.empty());
    for (const char* set : {"CapInh", "CapPrm", "CapEff", "CapAmb"}) EXPECT_EQ(status[set], kNoCapabilities) << set;
    if (geteuid() == 0 || hasFeature(connection_->server(), "capabilities_dropped")) {
      EXPECT_EQ(status["CapBnd"], kNoCapabilities);
    }
    if (geteuid() == 0) {
      // Real, effective, saved and file-system ids: none of them root.
      EXPECT_TRUE(allFieldsNonZero(status["Uid"])) << status["Uid"];
      EXPECT_TRUE(allFieldsNonZero(status["Gid"])) << status["Gid"];
      EXPECT_EQ(status["Groups"], "");
    }
    EXPECT_EQ(status["NoNewPrivs"], "1");
    EXPECT_EQ(status["Seccomp"], "2");
  }
  EXPECT_TRUE(copy->step({}).ok());
}

TEST_F(Privileges, ReportedSandboxLevelMatchesWhatIsActive) {
  const ServerInfo& info = connection_->server();
  Env env = newEnv();
  ASSERT_TRUE(env.reset(fileUri("crc32.c")));
  ASSERT_TRUE(env.step({}).ok());  // a worker answers only once its sandbox is complete
  const pid_t worker = env.workerPid();
  const pid_t zygote = connection_->serverPid();
  auto status = procStatus(worker);
  std::string features;
  for (const auto& feature : info.sandboxFeatures) features += feature + " ";
  std::string fallbacks;
  for (const auto& fallback : info.sandboxFallbacks) fallbacks += "\n  " + fallback;
  std::printf("  sandbox level %s: %s%s\n", info.sandboxLevel.c_str(), features.c_str(), fallbacks.c_str());

  // What a worker's /proc entries show, feature by feature.
  const std::map<std::string, bool> observed = {
      {"unprivileged_uid", firstField(status["Uid"]) != "0"},
      {"capabilities_dropped", status["CapBnd"] == kNoCapabilities && status["CapEff"] == kNoCapabilities},
      {"user_namespace", namespaceOf(worker, "user") != namespaceOf(zygote, "user")},
      {"pid_namespace", namespaceOf(worker, "pid") != namespaceOf(zygote, "pid")},
      {"network_namespace", namespaceOf(worker, "net") != namespaceOf("self", "net")},
      {"process_limit", firstField(status["Uid"]) != "0" && maxProcessesSoftLimit(worker) != maxProcessesSoftLimit(zygote)},
      // What this kernel's Landlock can do for external-compiler profiles.
      {"landlock_filesystem", landlockAbi() >= 1},
      {"landlock_network", landlockAbi() >= 4},
      {"landlock_scoped", landlockAbi() >= 6},
  };
  size_t active = 0;
  for (const auto& [feature, seen] : observed) {
    EXPECT_EQ(hasFeature(info, feature), seen) << feature << " reported " << hasFeature(info, feature)
                                               << " but observed " << seen;
    active += seen;
  }
  for (const char* always : {"seccomp", "no_new_privs", "rlimits", "close_fds"}) EXPECT_TRUE(hasFeature(info, always));
  EXPECT_EQ(info.sandboxLevel, active == observed.size() ? "full" : active == 0 ? "basic" : "reduced");
  EXPECT_EQ(info.sandboxFallbacks.empty(), active == observed.size()) << fallbacks;

  // Where the kernel lets root make every namespace (this test checks in a
  // child of its own), nothing may have fallen back.
  if (geteuid() == 0) {
    const pid_t child = ::fork();
    if (child == 0) _exit(unshare(CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET) == 0 ? 0 : 1);
    int wait = 0;
    ASSERT_EQ(waitpid(child, &wait, 0), child);
    if (WIFEXITED(wait) && WEXITSTATUS(wait) == 0) EXPECT_EQ(info.sandboxLevel, "full") << fallbacks;
  }
}

TEST(PrivilegesProcessLimit, ForkBombIsStoppedWhileTheZygoteAndOtherEpisodesCarryOn) {
  ServerOptions options;
  options.extraArgs = {"--max-processes", "8"};
  auto connection = Connection::spawn(options);
  ASSERT_TRUE(connection) << connection.error().message;
  const bool perEpisode = hasFeature((*connection)->server(), "user_namespace");
  if (!hasFeature((*connection)->server(), "process_limit")) {
    GTEST_SKIP() << "no process limit on this machine: " << (*connection)->server().sandboxLevel;
  }
  Env bystander(*connection);
  ASSERT_TRUE(bystander.reset(fileUri("crc32.c")));

  Env bomb(*connection);
  ASSERT_TRUE(bomb.reset(fileUri("crc32.c")));
  std::vector<Env> copies;
  std::optional<Error> stopped;
  for (int i = 0; i < 64 && !stopped; ++i) {
    auto copy = bomb.fork();
    if (copy) {
      copies.push_back(std::move(*copy));
    } else {
      stopped = copy.error();
    }
  }
  ASSERT_TRUE(stopped) << "64 forks of one episode under a limit of 8 processes";
  // The worker and its live copies make 8 processes in their user namespace.
  if (perEpisode) EXPECT_EQ(copies.size(), 7u);
  EXPECT_LE(copies.size(), 7u);
  EXPECT_NE(stopped->message.find("process limit"), std::string::npos) << stopped->message;
  EXPECT_NE(stopped->message.find("--max-processes"), std::string::npos) << stopped->message;

  // The episode that hit the limit, its copies, the others, and the zygote
  // all carry on.
  EXPECT_TRUE(bomb.step({}).ok());
  EXPECT_TRUE(copies.back().step({}).ok());
  EXPECT_TRUE(bystander.step({}).ok());
  if (perEpisode) {
    auto other = bystander.fork();
    EXPECT_TRUE(other) << other.error().message;
  }
  Env fresh(*connection);
  EXPECT_TRUE(fresh.reset(fileUri("crc32.c")));
}

TEST(PrivilegesLoader, LoadersAndToolsCannotReadWhatOnlyTheServersUserCan) {
  if (geteuid() != 0) GTEST_SKIP() << "needs a server started as root";
  auto connection = Connection::spawn();
  ASSERT_TRUE(connection) << connection.error().message;
  if (!hasFeature((*connection)->server(), "unprivileged_uid")) GTEST_SKIP() << "children run as root here";
  char dir[] = "/tmp/fgtest-private-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  ASSERT_EQ(chmod(dir, 0755), 0);
  const std::string path = std::string(dir) + "/owner_only.c";
  {
    std::ofstream out(path);
    out << "int main(void) { return 0; }\n";
  }
  ASSERT_EQ(chmod(path.c_str(), 0600), 0);  // readable by root, the server's user, only
  Env env(*connection);
  auto reset = env.reset("file://" + path);
  EXPECT_FALSE(reset);
  if (!reset) {
    EXPECT_EQ(reset.error().outcome, Outcome::BenchmarkError);
    EXPECT_NE(reset.error().message.find("sandbox user"), std::string::npos) << reset.error().message;
    std::printf("  %s\n", reset.error().message.c_str());
  }
  // The same file readable by everyone loads: the identity was the reason.
  ASSERT_EQ(chmod(path.c_str(), 0644), 0);
  auto readable = env.reset("file://" + path);
  EXPECT_TRUE(readable) << readable.error().message;
  unlink(path.c_str());
  rmdir(dir);
}


// A directory the test owns, removed with everything in it; made like
// mkdtemp(): 0700, searchable by root (the server's user) alone.
struct LockedDir {
  std::string path;
  LockedDir() {
    char pattern[] = "/tmp/fgtest-locked-XXXXXX";
    path = mkdtemp(pattern);
  }
  ~LockedDir() { run("rm -rf '" + path + "'"); }
};

void writeFile(const std::string& path, const std::string& text, mode_t mode = 0644) {
  std::ofstream(path) << text;
  chmod(path.c_str(), mode);
}

// Researchers run as root in containers with their files under /root (0700),
// and CI runs a clone wherever it is put: a benchmark whose ancestors only
// root may search loads. The loader enters the benchmark's directory before
// it becomes the sandbox user and reads from there; every path it reports
// (messages, the files the cache re-checks, the preprocessed text) is still
// the absolute one.
TEST(PrivilegesLoader, BenchmarksUnderADirectoryOnlyRootMaySearchLoad) {
  if (geteuid() != 0) GTEST_SKIP() << "needs a server started as root";
  auto connection = Connection::spawn();
  ASSERT_TRUE(connection) << connection.error().message;
  if (!hasFeature((*connection)->server(), "unprivileged_uid")) GTEST_SKIP() << "children run as root here";
  LockedDir locked;
  struct stat info {};
  ASSERT_EQ(stat(locked.path.c_str(), &info), 0);
  ASSERT_EQ(info.st_mode & 07777, 0700u);
  const std::string bench = locked.path + "/bench";
  ASSERT_EQ(mkdir(bench.c_str(), 0755), 0);
  ASSERT_EQ(mkdir((bench + "/sub").c_str(), 0755), 0);
  ASSERT_EQ(mkdir((bench + "/multi").c_str(), 0755), 0);
  writeFile(bench + "/x.c",
            "#include \"x.h\"\n#include \"sub/y.h\"\nconst char *where = __FILE__;\n"
            "int f(int a) { return a + X + Y; }\n");
  writeFile(bench + "/x.h", "#define X 1\n");
  writeFile(bench + "/sub/y.h", "#define Y 2\n");
  writeFile(bench + "/broken.c", "#include \"broken.h\"\nint g(void) { return 0; }\n");
  writeFile(bench + "/broken.h", "int broken( {\n");
  writeFile(bench + "/multi/a.c", "int a(void) { return 1; }\n");
  writeFile(bench + "/multi/b.c", "int a(void);\nint b(void) { return a() + 1; }\n");
  ASSERT_EQ(std::system((llvmTool("clang") + " -c -emit-llvm -o '" + bench + "/x.bc' '" + bench + "/x.c'").c_str()), 0);

  Env env(*connection);
  for (const std::string& name : {"x.c", "x.bc", "multi", "multi/"}) {
    auto reset = env.reset("file://" + bench + "/" + name);
    EXPECT_TRUE(reset) << name << ": " << reset.error().message;
  }
  ASSERT_TRUE(env.reset("file://" + bench + "/x.c"));
  const std::string lockedHash = env.benchmarkHash();

  // Compiler messages name the files by their absolute paths.
  auto broken = env.reset("file://" + bench + "/broken.c");
  ASSERT_FALSE(broken);
  EXPECT_EQ(broken.error().outcome, Outcome::BenchmarkError);
  EXPECT_NE(broken.error().message.find(bench + "/broken.h:1:"), std::string::npos) << broken.error().message;
  EXPECT_NE(broken.error().message.find("from " + bench + "/broken.c:1:"), std::string::npos) << broken.error().message;
  EXPECT_EQ(broken.error().message.find("./"), std::string::npos) << broken.error().message;

  // The cache re-checks the header where it is: an edit is seen.
  writeFile(bench + "/x.h", "#define X 100\n");
  ASSERT_TRUE(env.reset("file://" + bench + "/x.c"));
  const std::string editedHash = env.benchmarkHash();
  EXPECT_NE(editedHash, lockedHash);

  // What the sandbox user needs: the benchmark's directory searchable and
  // its files readable; the error says exactly that.
  writeFile(bench + "/private.c", "int p(void) { return 0; }\n", 0600);
  auto unreadable = env.reset("file://" + bench + "/private.c");
  ASSERT_FALSE(unreadable);
  EXPECT_EQ(unreadable.error().outcome, Outcome::BenchmarkError);
  EXPECT_NE(unreadable.error().message.find("sandbox user"), std::string::npos) << unreadable.error().message;
  EXPECT_NE(unreadable.error().message.find("'" + bench + "/private.c'"), std::string::npos)
      << unreadable.error().message;
  EXPECT_NE(unreadable.error().message.find("readable"), std::string::npos) << unreadable.error().message;
  const std::string closed = locked.path + "/closed";
  ASSERT_EQ(mkdir(closed.c_str(), 0700), 0);
  writeFile(closed + "/c.c", "int c(void) { return 0; }\n");
  auto unsearchable = env.reset("file://" + closed + "/c.c");
  ASSERT_FALSE(unsearchable);
  EXPECT_EQ(unsearchable.error().outcome, Outcome::BenchmarkError);
  EXPECT_NE(unsearchable.error().message.find("sandbox user"), std::string::npos) << unsearchable.error().message;
  EXPECT_NE(unsearchable.error().message.find("'" + closed + "'"), std::string::npos) << unsearchable.error().message;
  EXPECT_NE(unsearchable.error().message.find("searchable"), std::string::npos) << unsearchable.error().message;
  std::printf("  %s\n  %s\n", unreadable.error().message.c_str(), unsearchable.error().message.c_str());

  // The same file with its ancestors open hashes alike (line markers and
  // __FILE__ are the absolute path in both), on a server that never saw it.
  ASSERT_EQ(chmod(locked.path.c_str(), 0755), 0);
  auto open = Connection::spawn();
  ASSERT_TRUE(open) << open.error().message;
  Env unlocked(*open);
  ASSERT_TRUE(unlocked.reset("file://" + bench + "/x.c"));
  EXPECT_EQ(unlocked.benchmarkHash(), editedHash);
}

// With --benchmark-root every file a load reads is checked against the
// roots by its real path — which a loader running as the sandbox user
// resolves through descriptors it opened while privileged, so a root under
// a directory only root may search (a clone in /root, a package in a venv
// there) confines loads as any other: what is inside loads, includes from
// elsewhere in the root too; what is outside is refused by name.
TEST(PrivilegesLoader, BenchmarkRootsUnderADirectoryOnlyRootMaySearchConfineLoads) {
  if (geteuid() != 0) GTEST_SKIP() << "needs a server started as root";
  LockedDir locked;
  const std::string root = locked.path + "/root";
  for (const std::string& dir : {root, root + "/bench", root + "/shared", root + "/links"}) {
    ASSERT_EQ(mkdir(dir.c_str(), 0755), 0) << dir;
  }
  writeFile(root + "/shared/s.h", "#define S 5\n");
  writeFile(root + "/bench/x.c", "#include \"../shared/s.h\"\nint f(int a) { return a * S; }\n");
  // Outside the root, where the sandbox user can read: only the roots stop it.
  TestDir elsewhere;
  const std::string outsideHeader = elsewhere.write("outside.h", "#define O 7\n");
  const std::string outsideSource = elsewhere.write("outside.c", "int h(void) { return 1; }\n");
  writeFile(root + "/bench/escape.c", "#include \"" + outsideHeader + "\"\nint g(void) { return O; }\n");
  ASSERT_EQ(symlink(outsideSource.c_str(), (root + "/links/out.c").c_str()), 0);
  ServerOptions options;
  options.benchmarkRoots = {root};
  auto connection = Connection::spawn(options);
  ASSERT_TRUE(connection) << connection.error().message;
  if (!hasFeature((*connection)->server(), "unprivileged_uid")) GTEST_SKIP() << "children run as root here";
  Env env(*connection);
  auto inside = env.reset("file://" + root + "/bench/x.c");
  EXPECT_TRUE(inside) << inside.error().message;
  auto escape = env.reset("file://" + root + "/bench/escape.c");
  ASSERT_FALSE(escape);
  EXPECT_NE(escape.error().message.find("refused to compile"), std::string::npos) << escape.error().message;
  EXPECT_NE(escape.error().message.find(outsideHeader), std::string::npos) << escape.error().message;
  EXPECT_EQ(escape.error().message.find("no longer exists"), std::string::npos) << escape.error().message;
  auto link = env.reset("file://" + root + "/links");
  ASSERT_FALSE(link);
  EXPECT_NE(link.error().message.find("symbolic link to " + outsideSource), std::string::npos)
      << link.error().message;
  std::printf("  %s\n  %s\n", escape.error().message.c_str(), link.error().message.c_str());
}

}  // namespace
}  // namespace forkgym::testing
