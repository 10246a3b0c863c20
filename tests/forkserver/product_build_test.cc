// Product and test builds of the server (DESIGN.md invariant 6).
//
// forkgym-server — the binary installed and shipped in the wheel — has
// CompilerGym's 124 actions and nothing else, and refuses the test-only
// requests; forkgym-test-server, built from the same sources for the
// suites, adds the fault-injection actions past index 124, flagged test-only.
// Both report the same action-table hash, so the one client build talks to
// either.
#include <sys/syscall.h>

#include <capnp/message.h>

#include <optional>

#include "ipc/action_table_hash.h"
#include "ipc/protocol.capnp.h"
#include "tests/forkserver/runtime_fixture.h"

namespace forkgym::testing {
namespace {

using namespace std::chrono_literals;

std::shared_ptr<Connection> spawnServer(const char* binary) {
  ServerOptions options;
  options.serverPath = binary;
  auto connection = Connection::spawn(options);
  EXPECT_TRUE(connection) << binary << ": " << (connection ? "" : connection.error().message);
  return connection ? *connection : nullptr;
}

// A raw channel to a fresh worker, for requests Env does not send.
struct RawEpisode {
  SessionEnds ends;
  Channel channel;
};

std::optional<RawEpisode> rawEpisode(Connection& connection) {
  auto ends = connection.newSession(fileUri("crc32.c"), {}, 60s);
  if (!ends) return std::nullopt;
  auto channel = Channel::attach(std::move(ends->channel));
  if (!channel) return std::nullopt;
  return RawEpisode{std::move(*ends), std::move(*channel)};
}

TEST(ProductBuild, DescribesExactlyTheCompilerGymActions) {
  auto product = spawnServer(FORKGYM_PRODUCT_SERVER_BINARY);
  ASSERT_TRUE(product);
  auto description = product->describe();
  ASSERT_TRUE(description) << description.error().message;
  EXPECT_EQ((*description)->actions.size(), 124u);
  for (const auto& action : (*description)->actions) {
    EXPECT_FALSE(action.testOnly) << action.flag;
    EXPECT_FALSE(action.flag.starts_with("-forkgym-test-")) << action.flag;
  }
  EXPECT_EQ((*description)->findAction("-forkgym-test-segfault"), -1);
  EXPECT_EQ(product->server().backend("llvm")->actionTableHash, kActionTableHash);
}

TEST(ProductBuild, RefusesTheTestOnlyRequestsAndCarriesOn) {
  auto product = spawnServer(FORKGYM_PRODUCT_SERVER_BINARY);
  ASSERT_TRUE(product);
  auto episode = rawEpisode(*product);
  ASSERT_TRUE(episode);
  // getpid is allowed by the sandbox: a test build would run it and say so.
  capnp::MallocMessageBuilder syscallRequest;
  syscallRequest.initRoot<proto::Request>().setTestSyscall(SYS_getpid);
  auto refused = episode->channel.call(syscallRequest, 30s);
  ASSERT_TRUE(refused) << refused.error().message;
  auto root = refused->reader->getRoot<proto::Reply>();
  ASSERT_TRUE(root.isFailure());
  EXPECT_EQ(outcomeFromWire(root.getFailure().getOutcome()), Outcome::InvalidRequest);
  EXPECT_NE(std::string(root.getFailure().getMessage().cStr()).find("product build"), std::string::npos)
      << root.getFailure().getMessage().cStr();

  capnp::MallocMessageBuilder closeRequest;
  closeRequest.initRoot<proto::Request>().setTestCloseChannel();
  auto stillThere = episode->channel.call(closeRequest, 30s);
  ASSERT_TRUE(stillThere) << "a product worker must not drop its channel on request: "
                          << stillThere.error().message;
  EXPECT_TRUE(stillThere->reader->getRoot<proto::Reply>().isFailure());

  capnp::MallocMessageBuilder step;
  step.initRoot<proto::Request>().initStep().initObservations(1).set(0, "IrInstructionCount");
  auto stepped = episode->channel.call(step, 30s);
  ASSERT_TRUE(stepped) << stepped.error().message;
  EXPECT_TRUE(stepped->reader->getRoot<proto::Reply>().isStep());
}

TEST(TestBuild, AddsTheFaultInjectionActionsPastTheProductTable) {
  auto product = spawnServer(FORKGYM_PRODUCT_SERVER_BINARY);
  auto test = spawnServer(FORKGYM_SERVER_BINARY);
  ASSERT_TRUE(product && test);
  auto productActions = product->describe();
  auto testActions = test->describe();
  ASSERT_TRUE(productActions && testActions);
  const auto& productRows = (*productActions)->actions;
  const auto& testRows = (*testActions)->actions;
  ASSERT_GT(testRows.size(), productRows.size());
  for (size_t i = 0; i < productRows.size(); ++i) {
    EXPECT_EQ(testRows[i].flag, productRows[i].flag) << i;
    EXPECT_EQ(testRows[i].replay, productRows[i].replay) << i;
    EXPECT_FALSE(testRows[i].testOnly) << i;
  }
  for (size_t i = productRows.size(); i < testRows.size(); ++i) {
    EXPECT_TRUE(testRows[i].testOnly) << testRows[i].flag;
  }
  // The test rows are an extension, not a different table.
  EXPECT_EQ(test->server().backend("llvm")->actionTableHash, product->server().backend("llvm")->actionTableHash);
}

}  // namespace
}  // namespace forkgym::testing
