// Crash isolation (invariant 1): each injected fault ends only its own
// episode, with its own outcome and a reproducer; the zygote and a
// concurrent episode carry on, and a new reset works at once.
#include <fcntl.h>

#include "ipc/protocol.capnp.h"
#include "tests/forkserver/runtime_fixture.h"

namespace forkgym::testing {
namespace {

class Isolation : public RuntimeTest {};

struct Fault {
  const char* flag;
  Outcome outcome;
  const char* messageContains;
};

const Fault kFaults[] = {
    {"-forkgym-test-segfault", Outcome::Crashed, "SIGSEGV"},
    {"-forkgym-test-abort", Outcome::Crashed, "SIGABRT"},
    {"-forkgym-test-stack-overflow", Outcome::Crashed, "SIGSEGV"},
    {"-forkgym-test-hang", Outcome::TimedOut, "took longer"},
    {"-forkgym-test-oom", Outcome::OutOfMemory, "memory"},
    {"-forkgym-test-fork-bomb", Outcome::SandboxViolation, "clone"},
    {"-forkgym-test-open", Outcome::SandboxViolation, "open"},
    {"-forkgym-test-socket", Outcome::SandboxViolation, "socket"},
    {"-forkgym-test-execve", Outcome::SandboxViolation, "execve"},
    {"-forkgym-test-verifier-failure", Outcome::VerifierFailed, "verif"},
};

TEST_F(Isolation, EachFaultEndsOnlyItsEpisodeWithItsOwnOutcome) {
  // Only the hang is ended by the step timeout; for every other fault the
  // timeout is a hang guard, so a slow machine (touching 1 GiB before the
  // memory limit bites can take seconds) cannot turn it into timed_out.
  EnvOptions hangs, others;
  hangs.stepTimeout = std::chrono::milliseconds(3000);
  others.stepTimeout = kHangGuard;
  hangs.limits.addressSpaceMb = others.limits.addressSpaceMb = 1024;
  Env bystander = newEnv();
  ASSERT_TRUE(bystander.reset(fileUri("crc32.c")));
  const uint32_t mem2reg[] = {action("-mem2reg")};

  for (const auto& fault : kFaults) {
    SCOPED_TRACE(fault.flag);
    Env victim = newEnv(fault.outcome == Outcome::TimedOut ? hangs : others);
    ASSERT_TRUE(victim.reset(fileUri("crc32.c")));
    const uint32_t actions[] = {action("-mem2reg"), action(fault.flag)};
    const auto started = std::chrono::steady_clock::now();
    auto result = victim.step(actions, std::vector<std::string>{"IrInstructionCount"});
    std::printf("  %-32s -> %-18s in %5lld ms: %s\n", fault.flag, std::string(outcomeName(result.outcome)).c_str(),
                static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                           std::chrono::steady_clock::now() - started).count()),
                result.message.c_str());
    EXPECT_EQ(result.outcome, fault.outcome) << outcomeName(result.outcome) << ": " << result.message;
    EXPECT_NE(result.message.find(fault.messageContains), std::string::npos) << result.message;
    EXPECT_FALSE(victim.alive());
    EXPECT_EQ(result.reproducer.benchmark, "file://" + dataPath("crc32.c"));
    EXPECT_EQ(result.reproducer.actions.size(), 2u);
    if (result.outcome == Outcome::Crashed) EXPECT_NE(result.signal, 0);

    // The zygote and the concurrent episode are untouched...
    auto alive = bystander.step(mem2reg, std::vector<std::string>{"IrInstructionCount"});
    EXPECT_TRUE(alive.ok()) << alive.message;
    // ...and the crashed env resets at once.
    ASSERT_TRUE(victim.reset(fileUri("crc32.c")));
    EXPECT_TRUE(victim.step(mem2reg).ok());
  }
}

TEST_F(Isolation, KilledWorkerWithoutLastWordsIsReportedWithItsSignal) {
  Env env = newEnv();
  ASSERT_TRUE(env.reset(fileUri("crc32.c")));
  kill(env.workerPid(), SIGKILL);
  auto result = env.step({}, std::vector<std::string>{"IrInstructionCount"});
  EXPECT_EQ(result.outcome, Outcome::Crashed);
  EXPECT_EQ(result.signal, SIGKILL);
  EXPECT_NE(result.message.find("SIGKILL"), std::string::npos) << result.message;
}

TEST_F(Isolation, RegionsOfRealWorkersAndTheirForksCannotBeResized) {
  // The test holds the same memfd the worker does, so it can try what a
  // compromised worker would: shrink the region under its client.
  auto ends = connection_->newSession(fileUri("crc32.c"), {}, std::chrono::seconds(60));
  ASSERT_TRUE(ends) << ends.error().message;
  const int memfd = fcntl(ends->channel.memfd.get(), F_DUPFD_CLOEXEC, 0);
  ASSERT_GE(memfd, 0);
  UniqueFd peerView(memfd);
  auto channel = Channel::attach(std::move(ends->channel));
  ASSERT_TRUE(channel) << channel.error().message;

  errno = 0;
  EXPECT_EQ(ftruncate(peerView.get(), 0), -1);
  EXPECT_EQ(errno, EPERM);

  capnp::MallocMessageBuilder request;
  request.initRoot<proto::Request>().setFork();
  auto forked = channel->call(request, std::chrono::seconds(60), 3);
  ASSERT_TRUE(forked) << forked.error().message;
  ASSERT_EQ(forked->fds.size(), 3u);
  // The region the worker made for its copy, inside its sandbox, is sealed too.
  errno = 0;
  EXPECT_EQ(ftruncate(forked->fds[0].get(), 0), -1);
  EXPECT_EQ(errno, EPERM);
  auto copy = Channel::attach(ClientEnds{std::move(forked->fds[0]), std::move(forked->fds[1])});
  ASSERT_TRUE(copy) << copy.error().message;

  // Both episodes still answer, their regions whole.
  for (Channel* each : {&*channel, &*copy}) {
    capnp::MallocMessageBuilder step;
    step.initRoot<proto::Request>().initStep().initObservations(1).set(0, "IrInstructionCount");
    auto answer = each->call(step, std::chrono::seconds(60));
    ASSERT_TRUE(answer) << answer.error().message;
    EXPECT_TRUE(answer->reader->getRoot<proto::Reply>().isStep());
  }
}

}  // namespace
}  // namespace forkgym::testing
