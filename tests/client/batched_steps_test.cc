// Many episodes at once (what a vector environment does): beginStep() on
// each, waitForSteps() until some can finish, finishStep() on those. The
// steps still running are left running, and a step's timeout is its own.
#include <chrono>
#include <vector>

#include "tests/forkserver/runtime_fixture.h"

namespace forkgym::testing {
namespace {

using namespace std::chrono_literals;

class ClientBatchedSteps : public RuntimeTest {};

TEST_F(ClientBatchedSteps, WaitForStepsReturnsTheStepsThatCanFinishAndLeavesTheRestRunning) {
  Env slow = newEnv();
  Env fast = newEnv();
  ASSERT_TRUE(slow.reset(fileUri("crc32.c")));
  ASSERT_TRUE(fast.reset(fileUri("crc32.c")));
  const uint32_t hang[] = {action("-forkgym-test-hang")};
  const uint32_t mem2reg[] = {action("-mem2reg")};
  ASSERT_TRUE(slow.beginStep(hang));  // never answers within its 300 s timeout
  ASSERT_TRUE(fast.beginStep(mem2reg));
  Env* envs[] = {&slow, &fast};
  auto ready = waitForSteps(envs, 1);
  ASSERT_TRUE(ready) << ready.error().message;
  EXPECT_EQ(*ready, std::vector<size_t>{1});
  EXPECT_TRUE(fast.finishStep().ok());
  EXPECT_TRUE(slow.alive());
  EXPECT_EQ(slow.postedStep().fd >= 0, true);  // still posted, still running

  // An env with no step posted is refused, saying which.
  Env* idle[] = {&slow, &fast};
  auto refused = waitForSteps(idle, 1);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().outcome, Outcome::InvalidRequest);
  EXPECT_NE(refused.error().message.find("environment 1 has no step posted"), std::string::npos);
}

TEST_F(ClientBatchedSteps, AHungStepIsReadyAtItsOwnDeadlineAndFinishesTimedOut) {
  Env hung = newEnv();
  ASSERT_TRUE(hung.reset(fileUri("crc32.c")));
  hung.setStepTimeout(1s);
  const uint32_t hang[] = {action("-forkgym-test-hang")};
  ASSERT_TRUE(hung.beginStep(hang));
  Env* envs[] = {&hung};
  auto ready = waitForSteps(envs, 1);
  ASSERT_TRUE(ready) << ready.error().message;
  EXPECT_EQ(*ready, std::vector<size_t>{0});
  // Its deadline has passed: finishing it does not wait another timeout.
  StepResult result = hung.finishStep();
  EXPECT_EQ(result.outcome, Outcome::TimedOut) << result.message;
  EXPECT_FALSE(hung.alive());
  EXPECT_EQ(result.reproducer.actions, std::vector<uint32_t>(std::begin(hang), std::end(hang)));
}

}  // namespace
}  // namespace forkgym::testing
