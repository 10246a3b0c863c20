// The zygote's side of the state cache against a worker that sends whatever
// it likes on its link (a compromised worker can): it can only ever add
// entries under the root the zygote bound to its link — never for another
// benchmark or another user — and out-of-policy or malformed submissions are
// refused.
#include "forkserver/state_cache_writer.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "passes/llvm/backend.h"

namespace forkgym::forkserver {
namespace {

size_t rowOf(std::span<const passes::Space> spaces, std::string_view name) {
  auto row = passes::findSpace(spaces, name);
  EXPECT_TRUE(row.has_value()) << name;
  return row.value_or(0);
}

uint32_t actionOf(std::string_view flag) {
  const auto& actions = passes::kLlvmBackend.actionSpace().actions;
  for (uint32_t i = 0; i < actions.size(); ++i) {
    if (actions[i].name == flag) return i;
  }
  ADD_FAILURE() << flag;
  return 0;
}

class StateCacheWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    name_ = "/forkgym-state-cache-writer-test-" + std::to_string(getpid());
    (void)StateCache::remove(name_);
    ASSERT_TRUE(passes::kLlvmBackend.initialize().ok());
    ASSERT_TRUE(writer_.open({.enabled = true, .name = name_, .megabytes = 1}).ok());
    auto link = writer_.link();
    ASSERT_TRUE(link.ok());
    worker_ = std::move(link->first);
    writer_.adopt(kWorker, std::move(link->second), passes::kLlvmBackend);
    writer_.bind(kWorker, "content A", kUid);
    std::vector<pollfd> fds;
    writer_.addPollFds(fds);
    ASSERT_EQ(fds.size(), 1u);
    zygoteEnd_ = fds[0].fd;
    char root[16];
    ASSERT_EQ(read(worker_.get(), root, sizeof(root)), 16);  // what the worker reads at its first request
  }
  void TearDown() override { (void)StateCache::remove(name_); }

  StateCacheKey root(std::string_view content, uint32_t uid) const {
    const auto version = passes::kLlvmBackend.initialize()->version;
    return stateRoot(serverBuildId(), "llvm", version, passes::kLlvmBackend.actionSpace().hash, content, uid);
  }
  void send(const Submission& submission) {
    const std::string message = encodeSubmission(submission);
    ASSERT_EQ(write(worker_.get(), message.data(), message.size()), static_cast<ssize_t>(message.size()));
  }
  void sendRaw(std::string_view bytes) { ASSERT_EQ(write(worker_.get(), bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size())); }

  static constexpr pid_t kWorker = 4242;
  static constexpr uint32_t kUid = 1000;
  std::string name_;
  StateCacheWriter writer_;
  UniqueFd worker_;
  int zygoteEnd_ = -1;
};

TEST_F(StateCacheWriterTest, AWorkerCanOnlyAddEntriesUnderItsOwnRoot) {
  const auto observations = passes::kLlvmBackend.observationSpaces();
  const size_t count = rowOf(observations, "IrInstructionCount");
  const uint32_t sroa = actionOf("-sroa");
  // A forged value: the zygote cannot tell it from a computed one.
  const std::string forged = encodeObservation(int64_t{1});
  send({EntryKind::Observation, 0, 0, {sroa}, count, 0, forged});
  writer_.onReadable(zygoteEnd_);
  ASSERT_NE(writer_.cache(), nullptr);

  const StateCacheKey mine = stateAt(root("content A", kUid), std::vector<uint32_t>{sroa});
  EXPECT_EQ(writer_.cache()->lookup(entryKey(EntryKind::Observation, mine, count, 0)), forged);
  // Another benchmark, another user: nothing. A worker has no way to name them.
  for (const auto& other : {root("content B", kUid), root("content A", kUid + 1)}) {
    const StateCacheKey theirs = stateAt(other, std::vector<uint32_t>{sroa});
    EXPECT_EQ(writer_.cache()->lookup(entryKey(EntryKind::Observation, theirs, count, 0)), std::nullopt);
  }
  EXPECT_EQ(writer_.rejected(), 0u);
}

TEST_F(StateCacheWriterTest, OutOfPolicyAndMalformedSubmissionsAreRefused) {
  const auto observations = passes::kLlvmBackend.observationSpaces();
  const auto rewards = passes::kLlvmBackend.rewardSpaces();
  const uint32_t sroa = actionOf("-sroa");
  const uint32_t newgvn = actionOf("-newgvn");
  const size_t count = rowOf(observations, "IrInstructionCount");
  const std::string value = encodeObservation(int64_t{7});
  send({EntryKind::Observation, 0, 0, {sroa, newgvn}, count, 0, value});                   // a nondeterministic path
  send({EntryKind::Transition, 0, 0, {}, newgvn, 0, std::string(1, '\1')});                // a nondeterministic step
  send({EntryKind::Transition, 0, 0, {}, sroa, 0, std::string(1, '\7')});                  // not a changed flag
  send({EntryKind::Observation, 0, 0, {}, rowOf(observations, "IrSha1"), 0,               // the state's identity
        encodeObservation(std::string(40, '0'))});
  send({EntryKind::Observation, 0, 0, {}, rowOf(observations, "Runtime"), 0,              // time
        encodeObservation(std::vector<double>{1.0})});
  send({EntryKind::Observation, 0, 0, {}, count, 0, encodeObservation(std::string("x"))}); // the wrong type
  send({EntryKind::Reward, 0, 0, {}, rowOf(rewards, "Runtime"), 0, encodeReward({1.0, 2.0})});
  send({EntryKind::Observation, 0, 0, {9999}, count, 0, value});                          // no such action
  sendRaw("garbage");
  writer_.onReadable(zygoteEnd_);
  EXPECT_EQ(writer_.rejected(), 9u);
  EXPECT_EQ(writer_.cache()->stats().inserts, 0u);
}

TEST_F(StateCacheWriterTest, ALinkIsDroppedWhenItsWorkerIsGone) {
  worker_.reset();
  writer_.onReadable(zygoteEnd_);
  std::vector<pollfd> fds;
  writer_.addPollFds(fds);
  EXPECT_TRUE(fds.empty());
}

}  // namespace
}  // namespace forkgym::forkserver
