// A channel whose worker keeps writing after it replied: the client reads
// the reply it was given, not whatever the region holds by the time each
// field is looked at.
#include <cstring>

#include <gtest/gtest.h>

#include "ipc/channel.h"
#include "ipc/protocol.capnp.h"

namespace forkgym {
namespace {

TEST(Channel, ReplyIsReadFromAPrivateCopyTheWorkerCannotRewrite) {
  auto created = Channel::create();
  ASSERT_TRUE(created) << created.error().message;
  auto& [worker, ends] = *created;
  auto client = Channel::attach(std::move(ends));
  ASSERT_TRUE(client) << client.error().message;

  capnp::MallocMessageBuilder request;
  request.initRoot<proto::Request>().initStep();
  ASSERT_TRUE(client->post(request));
  ASSERT_TRUE(worker.receiveRequest());
  capnp::MallocMessageBuilder reply;
  auto failure = reply.initRoot<proto::Reply>().initFailure();
  failure.setMessage("the reply the worker sent");
  failure.setSignal(11);
  ASSERT_TRUE(worker.sendReply(reply));

  auto received = client->collect(std::chrono::seconds(10));
  ASSERT_TRUE(received) << received.error().message;
  // The worker scribbles over the reply area (and its length) after ringing,
  // as a compromised one could while the client parses.
  auto area = worker.region().replyArea();
  std::memset(area.data(), 0xA5, 1 << 16);
  worker.region().header().replyBytes = 8;

  auto root = received->reader->getRoot<proto::Reply>();
  ASSERT_TRUE(root.isFailure());
  EXPECT_EQ(std::string(root.getFailure().getMessage().cStr()), "the reply the worker sent");
  EXPECT_EQ(root.getFailure().getSignal(), 11);
}

}  // namespace
}  // namespace forkgym
