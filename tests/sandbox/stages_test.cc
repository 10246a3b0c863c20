// The stage list as a contract: order, names and exit codes.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <set>
#include <string>
#include <string_view>

#include <gtest/gtest.h>

#include "sandbox/sandbox.h"
#include "tests/sandbox/sandboxed_child.h"

namespace forkgym::sandbox {
namespace {

using namespace harness;

TEST(Sandbox, StagesHaveStableDistinctExitCodes) {
  // Clients decode these numbers; changing one is a protocol break. New
  // stages take new codes wherever they run in the order of application.
  const std::pair<std::string_view, int> expected[] = {
      {"identity", 75},     {"user_namespace", 76}, {"private_tmp", 79}, {"capabilities", 77},
      {"process_limit", 78}, {"no_new_privs", 71},  {"rlimits", 72},     {"close_fds", 73},
      {"filesystem", 80},   {"seccomp", 74},
  };
  const auto list = stages();
  ASSERT_EQ(list.size(), std::size(expected));
  for (size_t i = 0; i < list.size(); ++i) {
    EXPECT_EQ(list[i].name, expected[i].first) << i;
    EXPECT_EQ(list[i].exitCode, expected[i].second) << list[i].name;
  }

  std::set<int> codes;
  for (const StageInfo& stage : list) {
    EXPECT_TRUE(codes.insert(stage.exitCode).second) << stage.name;
    // Not success, not the generic failure 1, not a 128+signal status.
    EXPECT_GT(stage.exitCode, 1) << stage.name;
    EXPECT_LT(stage.exitCode, 128) << stage.name;
    EXPECT_EQ(stageForExitCode(stage.exitCode), stage.name);
  }
  EXPECT_EQ(stageForExitCode(0), "");
  EXPECT_EQ(stageForExitCode(1), "");
}

TEST(Sandbox, FailingStageExitsWithItsCode) {
  // No prepareSandbox(): there is no filter to load, so the seccomp stage
  // must fail, and fail by name rather than by returning into the worker.
  const ChildOutcome outcome = runInChild([] {
    const int keep[] = {gReportFd};
    applySandbox({}, keep);
    return 0;
  });
  EXPECT_TRUE(outcome.exitedWith(74)) << outcome.describe();
  EXPECT_EQ(stageForExitCode(WEXITSTATUS(outcome.status)), "seccomp");
}

TEST(Sandbox, NoNewPrivsIsSet) {
  // prctl is denied once sandboxed, so read the kernel's view through a
  // descriptor opened beforehand; /proc renders it at read time.
  const ChildOutcome outcome = runInChild([] {
    const int status = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    CHILD_CHECK(status >= 0);
    enterSandbox({}, {status});
    static char text[8192];
    const ssize_t n = read(status, text, sizeof(text) - 1);
    CHILD_CHECK(n > 0);
    const std::string_view view(text, static_cast<size_t>(n));
    CHILD_CHECK(view.find("NoNewPrivs:\t1\n") != std::string_view::npos);
    CHILD_CHECK(view.find("Seccomp:\t2\n") != std::string_view::npos);  // filter mode
    return 0;
  });
  EXPECT_TRUE(outcome.exitedWith(0)) << outcome.describe();
}

TEST(Sandbox, CloseFdsKeepsOnlyListed) {
  const ChildOutcome outcome = runInChild([] {
    const int devNull = open("/dev/null", O_RDONLY);
    CHILD_CHECK(devNull >= 0);
    // Gaps, neighbours of kept descriptors, and one kept descriptor above
    // the RLIMIT_NOFILE the sandbox sets (64): limits only affect new fds.
    for (int fd : {40, 41, 42, 60, 100, 101}) CHILD_CHECK(dup2(devNull, fd) == fd);
    enterSandbox({}, {41, 60, 100, -1});  // negative entries are ignored
    auto isOpen = [](int fd) { return fcntl(fd, F_GETFD) != -1 || errno != EBADF; };
    CHILD_CHECK(isOpen(gReportFd));
    CHILD_CHECK(isOpen(41));
    CHILD_CHECK(isOpen(60));
    CHILD_CHECK(isOpen(100));
    for (int fd : {0, 1, 2, 40, 42, 99, 101}) CHILD_CHECK(!isOpen(fd));
    CHILD_CHECK(!isOpen(devNull));
    return 0;
  });
  EXPECT_TRUE(outcome.exitedWith(0)) << outcome.describe();
}

}  // namespace
}  // namespace forkgym::sandbox
