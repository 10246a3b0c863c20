// env.fork() (invariant 3): a fork is an identical, independent episode.
#include <fcntl.h>
#include <sys/resource.h>

#include <algorithm>
#include <fstream>
#include <random>

#include "tests/forkserver/runtime_fixture.h"

namespace forkgym::testing {
namespace {

class Fork : public RuntimeTest {
 protected:
  std::vector<uint32_t> randomActions(std::mt19937& rng, int n) {
    std::vector<uint32_t> usable, out;
    for (uint32_t i = 0; i < 124; ++i) {
      if (description_->actions[i].unavailableReason.empty()) usable.push_back(i);
    }
    for (int i = 0; i < n; ++i) out.push_back(usable[rng() % usable.size()]);
    return out;
  }
  const std::vector<std::string> kObservations = {"IrSha1", "IrInstructionCount", "Autophase"};
  const std::vector<std::string> kRewards = {"IrInstructionCountOz", "ObjectTextSizeNorm"};
};

TEST_F(Fork, ForkThenSameActionsGiveIdenticalHashesAndRewards) {
  std::mt19937 rng(11);
  for (const char* benchmark : {"generator://csmith-v0/2", "file://" FORKGYM_TEST_DATA "/crc32.c"}) {
    SCOPED_TRACE(benchmark);
    Env parent = newEnv();
    ASSERT_TRUE(parent.reset(benchmark));
    auto prefix = parent.step(randomActions(rng, 10), {}, kRewards);
    ASSERT_TRUE(prefix.ok()) << outcomeName(prefix.outcome) << ": " << prefix.message;
    auto child = parent.fork();
    ASSERT_TRUE(child) << child.error().message;
    EXPECT_EQ(child->actions(), parent.actions());
    for (int round = 0; round < 5; ++round) {
      const auto actions = randomActions(rng, 3);
      auto a = parent.step(actions, kObservations, kRewards);
      auto b = child->step(actions, kObservations, kRewards);
      ASSERT_TRUE(a.ok() && b.ok()) << a.message << b.message;
      EXPECT_EQ(a.observations, b.observations);
      EXPECT_EQ(a.rewards, b.rewards);
    }
  }
}

TEST_F(Fork, ForkOfForkAndReplayAgree) {
  std::mt19937 rng(5);
  Env first = newEnv();
  ASSERT_TRUE(first.reset("generator://csmith-v0/2"));
  ASSERT_TRUE(first.step(randomActions(rng, 4)).ok());
  auto second = first.fork();
  ASSERT_TRUE(second);
  ASSERT_TRUE(second->step(randomActions(rng, 4)).ok());
  auto third = second->fork();
  ASSERT_TRUE(third);
  ASSERT_TRUE(third->step(randomActions(rng, 4)).ok());
  auto forked = third->observe(kObservations);

  Env replay = newEnv();
  ASSERT_TRUE(replay.reset("generator://csmith-v0/2"));
  auto replayed = replay.step(third->actions(), kObservations);
  ASSERT_TRUE(replayed.ok());
  EXPECT_EQ(forked.observations, replayed.observations);
}

TEST_F(Fork, CrashInForkDoesNotTouchParentAndViceVersa) {
  EnvOptions options;
  options.stepTimeout = std::chrono::milliseconds(2000);
  Env parent = newEnv(options);
  ASSERT_TRUE(parent.reset(fileUri("crc32.c")));
  const uint32_t segfault[] = {action("-forkgym-test-segfault")};
  const uint32_t mem2reg[] = {action("-mem2reg")};

  auto child = parent.fork();
  ASSERT_TRUE(child);
  EXPECT_EQ(child->step(segfault).outcome, Outcome::Crashed);
  EXPECT_TRUE(parent.step(mem2reg).ok());

  auto second = parent.fork();
  ASSERT_TRUE(second);
  EXPECT_EQ(parent.step(segfault).outcome, Outcome::Crashed);
  auto survivor = second->step(mem2reg, std::vector<std::string>{"IrInstructionCount"});
  EXPECT_TRUE(survivor.ok()) << survivor.message;
}

TEST_F(Fork, ForkWithNoDescriptorsLeftFailsClearlyAndTheEpisodeGoesOn) {
  Env parent = newEnv();
  ASSERT_TRUE(parent.reset(fileUri("crc32.c")));
  const uint32_t mem2reg[] = {action("-mem2reg")};
  ASSERT_TRUE(parent.step(mem2reg).ok());
  // Room for one more descriptor (the lowest free number): the copy's
  // channel needs three.
  std::vector<int> free;
  for (int fd = 0; free.size() < 2; ++fd) {
    if (fcntl(fd, F_GETFD) == -1) free.push_back(fd);
  }
  rlimit saved{};
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  rlimit tight = saved;
  tight.rlim_cur = static_cast<rlim_t>(free[1]);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &tight), 0);
  auto copy = parent.fork();
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &saved), 0);

  ASSERT_FALSE(copy);
  EXPECT_EQ(copy.error().outcome, Outcome::ResourceExhausted);
  EXPECT_NE(copy.error().message.find("file-descriptor limit"), std::string::npos) << copy.error().message;
  EXPECT_NE(copy.error().message.find("ulimit -n"), std::string::npos) << copy.error().message;
  ASSERT_TRUE(parent.alive()) << "the parent episode must go on";
  EXPECT_TRUE(parent.step(mem2reg).ok());
  auto again = parent.fork();
  ASSERT_TRUE(again) << again.error().message;
  EXPECT_TRUE(again->step(mem2reg).ok());
}

TEST_F(Fork, ForkSurvivesTheEndOfItsParentsEpisode) {
  Env parent = newEnv();
  ASSERT_TRUE(parent.reset(fileUri("crc32.c")));
  auto child = parent.fork();
  ASSERT_TRUE(child);
  const pid_t parentPid = parent.workerPid();
  parent.close();
  EXPECT_TRUE(waitUntilGone(parentPid));
  const uint32_t mem2reg[] = {action("-mem2reg")};
  EXPECT_TRUE(child->step(mem2reg).ok());
}

// The stack a process has touched, in kB ("VmStk" in /proc/<pid>/status):
// the stack mapping only grows, and a clone copies it, so a fork that kept
// its parent's frames shows up here generation after generation.
long stackKb(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmStk:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

TEST_F(Fork, TenThousandGenerationChainKeepsStackUseFlat) {
  // Each generation forks, the client steps the copy once and closes the
  // parent: a fork that served from inside its parent's call stack would
  // grow ~2.4 kB a generation and overflow the 8 MB stack near 3,400.
  constexpr int kGenerations = 10'000;
  Env current = newEnv();
  ASSERT_TRUE(current.reset(fileUri("crc32.c")));
  auto first = current.fork();
  ASSERT_TRUE(first) << first.error().message;
  current = std::move(*first);
  ASSERT_TRUE(current.step({}).ok());
  const long firstStackKb = stackKb(current.workerPid());
  ASSERT_GT(firstStackKb, 0);
  for (int generation = 2; generation <= kGenerations; ++generation) {
    auto child = current.fork();
    ASSERT_TRUE(child) << "generation " << generation << ": " << child.error().message;
    current = std::move(*child);  // closes the parent's episode
    auto stepped = current.step({});
    ASSERT_TRUE(stepped.ok()) << "generation " << generation << ": " << outcomeName(stepped.outcome) << ": "
                              << stepped.message;
  }
  const long lastStackKb = stackKb(current.workerPid());
  std::printf("  stack: %ld kB at generation 1, %ld kB at generation %d\n", firstStackKb, lastStackKb, kGenerations);
  // Flat: not one page per few generations. 64 kB is far below the 23 MB a
  // recursing chain would have touched, and above page-granular noise.
  EXPECT_LE(lastStackKb - firstStackKb, 64);
  auto observed = current.observe(std::vector<std::string>{"IrInstructionCount"});
  EXPECT_TRUE(observed.ok()) << observed.message;
}

}  // namespace
}  // namespace forkgym::testing
