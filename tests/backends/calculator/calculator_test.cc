// The toy backend through the real test server and the C++ client: a
// backend is its folder and one row in the server's table, and a client
// reaches it by its description alone.
#include <gtest/gtest.h>

#include "client/connection.h"
#include "client/env.h"

namespace forkgym {
namespace {

class Calculator : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ServerOptions options;
    options.serverPath = FORKGYM_SERVER_BINARY;
    auto connection = Connection::spawn(options);
    ASSERT_TRUE(connection) << connection.error().message;
    connection_ = *connection;
  }
  static void TearDownTestSuite() { connection_.reset(); }

  static Env newEnv() {
    EnvOptions options;
    options.backend = "calculator";
    return Env(connection_, options);
  }
  static uint32_t action(const std::string& name) {
    return static_cast<uint32_t>((*connection_->describe("calculator"))->findAction(name));
  }
  static Observation observe(Env& env, const std::string& name) {
    auto result = env.observe(std::vector<std::string>{name});
    EXPECT_TRUE(result.ok()) << result.message;
    return result.ok() ? result.observations.at(0) : Observation{};
  }

  static inline std::shared_ptr<Connection> connection_;
};

TEST_F(Calculator, TheServerListsAndDescribesIt) {
  const BackendInfo* info = connection_->server().backend("calculator");
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->version, "1.0");
  auto description = connection_->describe("calculator");
  ASSERT_TRUE(description) << description.error().message;
  const Description& d = **description;
  EXPECT_EQ(d.actionSpace, "Ops");
  ASSERT_EQ(d.actions.size(), 4u);
  EXPECT_EQ(d.actions[1].flag, "double");
  ASSERT_EQ(d.observations.size(), 3u);
  EXPECT_EQ(d.findObservation("IsEven")->valueType, ValueType::Bool);
  EXPECT_EQ(d.findObservation("OpCounts")->valueType, ValueType::Int64Map);
  ASSERT_EQ(d.rewards.size(), 1u);
  EXPECT_EQ(d.rewards[0].name, "Decrease");
}

TEST_F(Calculator, AnEpisodeAppliesObservesRewardsAndReplays) {
  Env env = newEnv();
  ASSERT_TRUE(env.reset("generator://calculator-v0/5"));
  const uint32_t actions[] = {action("add1"), action("double")};
  auto result = env.step(actions, std::vector<std::string>{"Value", "IsEven", "OpCounts"},
                         std::vector<std::string>{"Decrease"});
  ASSERT_TRUE(result.ok()) << result.message;
  EXPECT_EQ(std::get<int64_t>(result.observations[0]), 12);
  EXPECT_TRUE(std::get<bool>(result.observations[1]));
  EXPECT_EQ(std::get<std::vector<NamedCount>>(result.observations[2]),
            (std::vector<NamedCount>{{"add1", 1}, {"double", 1}, {"halve", 0}, {"negate", 0}}));
  ASSERT_EQ(result.rewards.size(), 1u);
  EXPECT_DOUBLE_EQ(result.rewards[0], -7.0);
  EXPECT_EQ(env.reproducer().commandline, "calculator add1 double");
  EXPECT_EQ(env.benchmark(), "generator://calculator-v0/5");

  // A bad action is refused before anything is applied; the episode goes on.
  const uint32_t bad[] = {action("negate"), 99};
  EXPECT_EQ(env.step(bad).outcome, Outcome::InvalidRequest);
  EXPECT_EQ(std::get<int64_t>(observe(env, "Value")), 12);
}

TEST_F(Calculator, AForkIsAnIndependentCopy) {
  Env env = newEnv();
  ASSERT_TRUE(env.reset("generator://calculator-v0/3"));
  auto copy = env.fork();
  ASSERT_TRUE(copy) << copy.error().message;
  const uint32_t negate[] = {action("negate")};
  ASSERT_TRUE(copy->step(negate).ok());
  EXPECT_EQ(std::get<int64_t>(observe(*copy, "Value")), -3);
  EXPECT_EQ(std::get<int64_t>(observe(env, "Value")), 3);
}

TEST_F(Calculator, ParametersAreTheSessionsOwn) {
  Env env = newEnv();
  ASSERT_TRUE(env.reset("generator://calculator-v0/0"));
  auto set = env.setParameter("value", "-41");
  ASSERT_TRUE(set) << set.error().message;
  EXPECT_EQ(*set, "-41");
  EXPECT_EQ(std::get<int64_t>(observe(env, "Value")), -41);
  auto unknown = env.setParameter("base", "2");
  ASSERT_FALSE(unknown);
  EXPECT_EQ(unknown.error().outcome, Outcome::InvalidRequest);
  EXPECT_NE(unknown.error().message.find("it accepts value"), std::string::npos) << unknown.error().message;
  EXPECT_FALSE(env.setParameter("value", "lots"));
  EXPECT_TRUE(env.alive());
}

TEST_F(Calculator, ItsBenchmarksAreItsOwn) {
  auto other = newEnv().reset("file:///tmp/x.c");
  ASSERT_FALSE(other);
  EXPECT_EQ(other.error().outcome, Outcome::InvalidRequest);
  EXPECT_NE(other.error().message.find("the calculator loads generator://calculator-v0/<integer>"), std::string::npos)
      << other.error().message;
  // LLVM's episodes on the same server are unaffected.
  Env llvm(connection_);
  EXPECT_TRUE(llvm.reset("benchmark://forkgym-v0/crc32"));
}

}  // namespace
}  // namespace forkgym
