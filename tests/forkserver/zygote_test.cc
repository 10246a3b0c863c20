// The zygote's own duties: preloading, the benchmark cache, the versioned
// hello, and answering malformed messages instead of crashing.
#include <capnp/message.h>

#include <algorithm>
#include <fstream>

#include "ipc/action_table_hash.h"
#include "ipc/control_socket.h"
#include "ipc/message_area.h"
#include "ipc/protocol.capnp.h"
#include "tests/forkserver/runtime_fixture.h"

namespace forkgym::testing {
namespace {

TEST(Zygote, PreloadedGeneratorRangeIsCachedAndServed) {
  ServerOptions options;
  options.preload = {"generator://csmith-v0/10..12"};
  auto connection = Connection::spawn(testServer(options));
  ASSERT_TRUE(connection) << connection.error().message;
  auto description = (*connection)->describe();
  ASSERT_TRUE(description);
  EXPECT_EQ((*description)->cachedBenchmarks.size(), 3u);
  Env env(*connection);
  ASSERT_TRUE(env.reset("generator://csmith-v0/11"));
  EXPECT_TRUE(env.observe(std::vector<std::string>{"IrInstructionCount"}).ok());
}

TEST(Zygote, LeastRecentlyUsedBenchmarksAreEvictedOverTheBudget) {
  ServerOptions options;
  options.extraArgs = {"--cache-mb", "0"};  // every insertion evicts all the others
  options.preload = {"generator://llvm-stress-v0/1..3"};
  auto connection = Connection::spawn(testServer(options));
  ASSERT_TRUE(connection) << connection.error().message;
  auto description = (*connection)->describe();
  ASSERT_TRUE(description);
  ASSERT_EQ((*description)->cachedBenchmarks.size(), 1u);
  EXPECT_EQ((*description)->cachedBenchmarks[0], "generator://llvm-stress-v0/3");
  // An evicted benchmark is loaded again on demand.
  Env env(*connection);
  EXPECT_TRUE(env.reset("generator://llvm-stress-v0/1"));
}

// The zygote's children once every episode is closed: only spare workers
// (and the reaper of the workers' PID namespace, which is not one).
size_t childCount(pid_t pid) {
  std::ifstream children("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
  size_t count = 0;
  for (std::string child; children >> child;) {
    std::ifstream comm("/proc/" + child + "/comm");
    std::string name;
    std::getline(comm, name);
    if (name != "forkgym-reaper") ++count;
  }
  return count;
}

TEST(Zygote, SpareWorkersStayWithinTheirCapacity) {
  ServerOptions options;
  options.extraArgs = {"--spare-workers", "2"};
  auto connection = Connection::spawn(testServer(options));
  ASSERT_TRUE(connection) << connection.error().message;
  auto spareFor = [&](const std::string& uri) {
    auto status = (*connection)->status();
    return status && std::ranges::find(status->spareBenchmarks, uri) != status->spareBenchmarks.end();
  };
  std::vector<pid_t> workers;
  for (int seed = 1; seed <= 4; ++seed) {
    Env env(*connection);
    const std::string uri = "generator://llvm-stress-v0/" + std::to_string(seed);
    ASSERT_TRUE(env.reset(uri));
    workers.push_back(env.workerPid());
    ASSERT_TRUE(eventually([&] { return spareFor(uri); })) << "the idle zygote forks a spare for " << uri;
    ASSERT_TRUE(env.reset(uri));  // and the reset takes it
    workers.push_back(env.workerPid());
  }
  // Settled: both wanted spares are there, and every episode's worker has
  // been reaped (the zygote has its exit status).
  ASSERT_TRUE(eventually([&] {
    auto status = (*connection)->status();
    return status && status->spareBenchmarks.size() == 2 && status->sparesWanted == 0;
  }));
  for (pid_t worker : workers) {
    ASSERT_TRUE(eventually([&] {
      auto exit = (*connection)->workerExit(worker);
      return exit && exit->known;
    })) << worker;
  }
  // Spares dropped over capacity were SIGKILLed and are reaped when they
  // die; nothing else may remain.
  const pid_t zygote = (*connection)->serverPid();
  EXPECT_TRUE(eventually([&] { return childCount(zygote) == 2; }))
      << childCount(zygote) << " children: one spare for each of the 2 most recently reset benchmarks, nothing else";
}

// Spares prepare their first step while they wait (passes/llvm/warm_up.h):
// an episode served by one must be the episode a worker forked on demand
// serves, whether its preparation had finished or the client cut it short.
// A runnable benchmark (csmith: its run configuration comes with the
// dataset) has spares too, forked with that configuration.
class SpareEpisode : public ::testing::TestWithParam<std::string> {};
INSTANTIATE_TEST_SUITE_P(Zygote, SpareEpisode,
                         ::testing::Values("generator://llvm-stress-v0/3", "generator://csmith-v0/1"));

TEST_P(SpareEpisode, IsTheOneAWorkerForkedOnDemandServes) {
  const std::string uri = GetParam();
  const char* flags[] = {"-sroa", "-instcombine", "-gvn", "-simplifycfg", "-dce"};
  auto episode = [&](auto& connection) {
    Env env(connection);
    std::vector<std::string> trace;
    if (!env.reset(uri)) return trace;
    auto description = connection->describe();
    if (!description) return trace;
    for (const char* flag : flags) {
      const uint32_t action[] = {static_cast<uint32_t>((*description)->findAction(flag))};
      if (!env.step(action).ok()) return trace;
      auto seen = env.observe(std::vector<std::string>{"IrSha1", "IrInstructionCount"});
      if (!seen.ok()) return trace;
      trace.push_back(std::get<std::string>(seen.observations[0]) + " " +
                      std::to_string(std::get<int64_t>(seen.observations[1])));
    }
    // A runnable episode's spare carries its run configuration: it runs.
    if (uri.find("csmith") != std::string::npos) {
      auto runtime = env.observe(std::vector<std::string>{"Runtime"});
      trace.push_back(runtime.ok() ? "ran" : "did not run: " + runtime.message);
    }
    return trace;
  };
  ServerOptions onDemand;
  onDemand.extraArgs = {"--spare-workers", "0"};
  auto plain = Connection::spawn(testServer(onDemand));
  ASSERT_TRUE(plain) << plain.error().message;
  const auto expected = episode(*plain);
  ASSERT_GE(expected.size(), std::size(flags));
  if (uri.find("csmith") != std::string::npos) ASSERT_EQ(expected.back(), "ran");

  auto spared = Connection::spawn(testServer(ServerOptions{}));
  ASSERT_TRUE(spared) << spared.error().message;
  EXPECT_EQ(episode(*spared), expected) << "the first reset forks on demand";
  auto spareReady = [&] {
    auto status = (*spared)->status();
    return status && std::ranges::find(status->spareBenchmarks, uri) != status->spareBenchmarks.end();
  };
  for (int i = 0; i < 5; ++i) {
    // Taken as soon as it exists, its preparation likely under way.
    ASSERT_TRUE(eventually(spareReady));
    EXPECT_EQ(episode(*spared), expected) << "episode " << i << " from a spare";
  }
}

// Speaks to a private server directly through the control socket.
class RawServer : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/fgtest-raw-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    socket_ = dir_ + "/s.sock";
    server_ = startSocketServer(socket_);
    ASSERT_GT(server_, 0) << "server did not start";
    auto fd = connectUnix(socket_);
    ASSERT_TRUE(fd) << fd.error().message;
    fd_ = std::move(*fd);
  }
  void TearDown() override {
    fd_.reset();
    kill(server_, SIGTERM);
    int status = 0;
    waitpid(server_, &status, 0);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the server must survive everything above";
    rmdir(dir_.c_str());
  }
  proto::Failure::Reader expectFailure(Frame& frame, capnp::FlatArrayMessageReader*& keep) {
    keep = new capnp::FlatArrayMessageReader(frame.words);
    auto reply = keep->getRoot<proto::ControlReply>();
    EXPECT_TRUE(reply.isFailure());
    return reply.getFailure();
  }
  std::string dir_, socket_;
  pid_t server_ = -1;
  UniqueFd fd_;
};

TEST_F(RawServer, WrongProtocolVersionIsAClearError) {
  capnp::MallocMessageBuilder hello;
  hello.initRoot<proto::ControlRequest>().initHello().setProtocolVersion(999);
  ASSERT_TRUE(sendFrame(fd_.get(), hello));
  auto frame = recvFrame(fd_.get(), std::chrono::seconds(10), 0);
  ASSERT_TRUE(frame);
  capnp::FlatArrayMessageReader reader(frame->words);
  auto reply = reader.getRoot<proto::ControlReply>();
  ASSERT_TRUE(reply.isFailure());
  EXPECT_EQ(outcomeFromWire(reply.getFailure().getOutcome()), Outcome::ProtocolMismatch);
  EXPECT_NE(std::string(reply.getFailure().getMessage().cStr()).find("999"), std::string::npos);
}

TEST_F(RawServer, RequestsBeforeHelloAndGarbageFramesAreRefused) {
  capnp::MallocMessageBuilder describe;
  describe.initRoot<proto::ControlRequest>().setDescribeBackend(kActionTableBackend);
  ASSERT_TRUE(sendFrame(fd_.get(), describe));
  auto frame = recvFrame(fd_.get(), std::chrono::seconds(10), 0);
  ASSERT_TRUE(frame);
  capnp::FlatArrayMessageReader reader(frame->words);
  EXPECT_EQ(outcomeFromWire(reader.getRoot<proto::ControlReply>().getFailure().getOutcome()), Outcome::ProtocolMismatch);

  // A frame whose Cap'n Proto segment table lies about its size.
  const uint32_t garbage[] = {16, 0xffffffffu, 7, 0x12345678u, 0xdeadbeefu};
  ASSERT_EQ(write(fd_.get(), garbage, sizeof(garbage)), static_cast<ssize_t>(sizeof(garbage)));
  auto answer = recvFrame(fd_.get(), std::chrono::seconds(10), 0);
  ASSERT_TRUE(answer) << answer.error().message;
  capnp::FlatArrayMessageReader garbageReply(answer->words);
  EXPECT_EQ(outcomeFromWire(garbageReply.getRoot<proto::ControlReply>().getFailure().getOutcome()),
            Outcome::InvalidRequest);
}

// The hello names the backend whose action table the client was built with,
// and its hash (ipc/action_table_hash.h); the server compares it with its
// own table's.
std::string helloFailure(int fd, uint64_t tableHash) {
  capnp::MallocMessageBuilder hello;
  auto request = hello.initRoot<proto::ControlRequest>().initHello();
  request.setProtocolVersion(proto::PROTOCOL_VERSION);
  auto known = request.initBackends(1);
  known[0].setName(kActionTableBackend);
  known[0].setActionTableHash(tableHash);
  if (!sendFrame(fd, hello)) return "send failed";
  auto frame = recvFrame(fd, std::chrono::seconds(10), 0);
  if (!frame) return "no answer: " + frame.error().message;
  capnp::FlatArrayMessageReader reader(frame->words);
  auto reply = reader.getRoot<proto::ControlReply>();
  if (!reply.isFailure()) return "accepted";
  if (outcomeFromWire(reply.getFailure().getOutcome()) != Outcome::ProtocolMismatch) return "wrong outcome";
  return reply.getFailure().getMessage().cStr();
}

std::string hex(uint64_t value) {
  char text[19];
  std::snprintf(text, sizeof(text), "%016llx", static_cast<unsigned long long>(value));
  return text;
}

TEST_F(RawServer, HelloForAnotherActionTableIsRefusedNamingBothTables) {
  const uint64_t other = kActionTableHash ^ 0x5a5a;
  const std::string message = helloFailure(fd_.get(), other);
  EXPECT_NE(message.find("client built for action table " + hex(other)), std::string::npos) << message;
  EXPECT_NE(message.find("server has " + hex(kActionTableHash)), std::string::npos) << message;
  EXPECT_NE(message.find("install matching forkgym client and server"), std::string::npos) << message;
  // Refused means not greeted: nothing else is served on this connection.
  capnp::MallocMessageBuilder describe;
  describe.initRoot<proto::ControlRequest>().setDescribeBackend(kActionTableBackend);
  ASSERT_TRUE(sendFrame(fd_.get(), describe));
  auto frame = recvFrame(fd_.get(), std::chrono::seconds(10), 0);
  ASSERT_TRUE(frame);
  capnp::FlatArrayMessageReader reader(frame->words);
  EXPECT_TRUE(reader.getRoot<proto::ControlReply>().isFailure());
}

TEST_F(RawServer, HelloWithoutAnActionTableHashIsRefused) {
  // 0 used to mean "any table": a client that does not know its table is
  // refused like one built for another.
  const std::string message = helloFailure(fd_.get(), 0);
  EXPECT_NE(message.find("client built for action table 0000000000000000"), std::string::npos) << message;
}

TEST_F(RawServer, HelloWithTheClientsTableHashIsAnswered) {
  EXPECT_EQ(helloFailure(fd_.get(), kActionTableHash), "accepted");
}

class WorkerChannel : public RuntimeTest {};

TEST_F(WorkerChannel, GarbageInTheSharedRegionGetsAnErrorReplyNotACrash) {
  auto ends = connection_->newSession(fileUri("crc32.c"), {}, std::chrono::seconds(60));
  ASSERT_TRUE(ends) << ends.error().message;
  auto channel = Channel::attach(std::move(ends->channel));
  ASSERT_TRUE(channel);
  // Scribble a bogus segment table into the request area and ring.
  auto area = channel->region().requestArea();
  for (size_t i = 0; i < 256; ++i) area[i] = std::byte(0xA5 ^ i);
  channel->region().header().requestBytes = 256;
  ASSERT_TRUE(channel->doorbell().ring(Ring::Request));
  auto rung = channel->doorbell().wait(std::chrono::seconds(10));
  ASSERT_TRUE(rung) << rung.error().message;
  auto reply = readMessage(channel->region().replyArea(), channel->region().header().replyBytes);
  ASSERT_TRUE(reply);
  auto root = (*reply)->getRoot<proto::Reply>();
  ASSERT_TRUE(root.isFailure());
  EXPECT_EQ(outcomeFromWire(root.getFailure().getOutcome()), Outcome::InvalidRequest);

  // A length past the end of the region is refused the same way.
  channel->region().header().requestBytes = 1ull << 40;
  ASSERT_TRUE(channel->doorbell().ring(Ring::Request));
  ASSERT_TRUE(channel->doorbell().wait(std::chrono::seconds(10)));

  // The worker still serves proper requests.
  capnp::MallocMessageBuilder request;
  auto step = request.initRoot<proto::Request>().initStep();
  step.initObservations(1).set(0, "IrInstructionCount");
  auto answer = channel->call(request, std::chrono::seconds(10));
  ASSERT_TRUE(answer) << answer.error().message;
  EXPECT_TRUE(answer->reader->getRoot<proto::Reply>().isStep());
}

TEST_F(WorkerChannel, OversizedRequestIsRefusedBeforeItIsSent) {
  Env env = newEnv();
  ASSERT_TRUE(env.reset(fileUri("crc32.c")));
  std::vector<std::string> names(20000, std::string(100, 'x'));  // ~2 MB of names
  auto result = env.step({}, names);
  EXPECT_EQ(result.outcome, Outcome::InvalidRequest);
  EXPECT_NE(result.message.find("does not fit"), std::string::npos) << result.message;
  EXPECT_TRUE(env.alive());
  EXPECT_TRUE(env.observe(std::vector<std::string>{"IrInstructionCount"}).ok());
}

}  // namespace
}  // namespace forkgym::testing
