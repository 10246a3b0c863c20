// Who the zygote's children run as: workers, their env.fork() copies,
// loaders and the tools they start get an unprivileged identity, no
// capabilities, namespaces of their own, and a process limit that holds
// when the server runs as root — and the server says which of these are
// active (the hello's sandbox level), truthfully.
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <fstream>
#include <map>
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

}  // namespace
}  // namespace forkgym::testing
