// Bad input (invariant 4): every malformed benchmark or request is a clear
// error; the zygote, and the episode when there is one, carry on.
#include "tests/forkserver/runtime_fixture.h"

namespace forkgym::testing {
namespace {

class BadInput : public RuntimeTest {
 protected:
  void expectHealthy() {
    Env env = newEnv();
    ASSERT_TRUE(env.reset(fileUri("crc32.c"))) << "the zygote must survive bad input";
    EXPECT_TRUE(env.observe(std::vector<std::string>{"IrInstructionCount"}).ok());
  }
};

struct BadBenchmark {
  std::string uri;
  std::string messageContains;
};

TEST_F(BadInput, BadBenchmarksGiveClearErrors) {
  const BadBenchmark cases[] = {
      {fileUri("malformed.bc"), "bitcode"},
      {fileUri("empty.bc"), "empty"},
      {fileUri("no_such_file.c"), "no_such_file.c"},
      {fileUri("does_not_compile.c"), "error:"},
      {"nosuchscheme://x/y", "nosuchscheme"},
      {"generator://no-such-generator-v0/1", "no-such-generator"},
  };
  for (const auto& bad : cases) {
    SCOPED_TRACE(bad.uri);
    Env env = newEnv();
    auto status = env.reset(bad.uri);
    ASSERT_FALSE(status);
    EXPECT_TRUE(status.error().outcome == Outcome::BenchmarkError || status.error().outcome == Outcome::InvalidRequest)
        << outcomeName(status.error().outcome);
    EXPECT_NE(status.error().message.find(bad.messageContains), std::string::npos) << status.error().message;
    expectHealthy();
  }
}

TEST_F(BadInput, UnknownActionOrSpaceIsAnErrorThatLosesNothing) {
  Env env = newEnv();
  ASSERT_TRUE(env.reset(fileUri("crc32.c")));
  const uint32_t mem2reg[] = {action("-mem2reg")};
  ASSERT_TRUE(env.step(mem2reg).ok());

  const uint32_t unknown[] = {action("-mem2reg"), 9999};
  auto badAction = env.step(unknown, std::vector<std::string>{"IrInstructionCount"});
  EXPECT_EQ(badAction.outcome, Outcome::InvalidRequest);
  EXPECT_NE(badAction.message.find("9999"), std::string::npos) << badAction.message;

  auto badObservation = env.step(mem2reg, std::vector<std::string>{"NoSuchObservation"});
  EXPECT_EQ(badObservation.outcome, Outcome::InvalidRequest);
  EXPECT_NE(badObservation.message.find("NoSuchObservation"), std::string::npos);

  auto badReward = env.step(mem2reg, {}, std::vector<std::string>{"NoSuchReward"});
  EXPECT_EQ(badReward.outcome, Outcome::InvalidRequest);

  // Nothing was applied by the rejected steps.
  EXPECT_EQ(env.actions().size(), 1u);
  EXPECT_TRUE(env.alive());
  EXPECT_TRUE(env.step(mem2reg).ok());
}

}  // namespace
}  // namespace forkgym::testing
