// The hostile-worker harness against the real C++ client (invariant 4).
//
// Each row starts forkgym-hostile-server (tests/hostile/hostile_server.cc)
// with one attack, drives a real Env through Connection::spawn() — reset,
// then a step or a fork — and checks that the client survives with a clear
// typed outcome: the row's expected outcome and words in its message, the
// episode ended (a worker that broke the protocol is not trusted again) or
// going on, as the row says. Every row runs in a child process of the test,
// so a crash (SIGBUS, SIGSEGV) or an escaped exception fails the row rather
// than the suite, and a hang is caught by a guard far beyond any row's own
// timeout. Around every row: the client leaks no descriptor, and a process
// the client has no business with (the victim, started by the test) is still
// alive — a compromised worker must not be able to make its client signal it.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "client/connection.h"
#include "client/env.h"

namespace forkgym::testing {
namespace {

using namespace std::chrono_literals;

// Steps: up to three steps, stopping at the first that fails; each that
// succeeds must carry the scripted worker's count of requests (1001, 1002,
// 1003): a reply read for the wrong request shows.
enum class Op { Step, TwoSteps, Steps, Fork, Peek };

struct Row {
  const char* attack;
  Op op;
  std::set<Outcome> expected;  // any of these; all but Ok end the episode
  const char* messageContains;
  const char* observation = "IrInstructionCount";
};

void PrintTo(const Row& row, std::ostream* out) { *out << row.attack; }

const Outcome PM = Outcome::ProtocolMismatch;

const Row kRows[] = {
    // Lengths and contents of the reply area.
    {"reply-length-zero", Op::Step, {PM}, "announced a message of 0 bytes"},
    {"reply-length-huge", Op::Step, {PM}, "announced a message"},
    {"reply-length-negative", Op::Step, {PM}, "announced a message"},
    {"reply-length-unaligned", Op::Step, {PM}, "announced a message"},
    {"reply-length-past-the-region", Op::Step, {PM}, "announced a message"},
    {"reply-garbage", Op::Step, {PM}, "malformed"},
    {"reply-segment-table-lies", Op::Step, {PM}, "malformed"},
    {"reply-segment-count-huge", Op::Step, {PM}, "malformed"},
    {"reply-root-pointer-out-of-bounds", Op::Step, {PM}, "malformed"},
    {"reply-root-pointer-negative", Op::Step, {PM}, "malformed"},
    {"reply-overlapping-pointers", Op::Step, {PM}, "malformed"},
    {"reply-is-a-fork-result", Op::Step, {PM}, "answered a step with something else"},
    {"reply-failure-with-outcome-ok", Op::Step, {PM}, "names no failure"},
    {"reply-failure-with-unknown-outcome", Op::Step, {PM}, "names no failure"},
    {"reply-too-few-observations", Op::Step, {PM}, "0 observation(s) for 1 asked"},
    {"reply-observation-of-the-wrong-type", Op::Step, {PM}, "wrong type"},
    {"reply-list-of-the-wrong-length", Op::Step, {PM}, "3 values, not 56", "Autophase"},
    {"reply-program-graph-edge-past-the-nodes", Op::Step, {PM}, "joins a node that does not exist", "Programl"},
    {"reply-too-many-rewards", Op::Step, {PM}, "reward(s) for"},
    // The region itself: the client reads only lengths from the header and
    // its own copy of the layout; the seals keep the size.
    {"header-scribbled", Op::TwoSteps, {Outcome::Ok}, ""},
    {"region-shrunk", Op::TwoSteps, {Outcome::Ok}, ""},
    // Last words.
    {"last-words-without-nul", Op::Step, {Outcome::Crashed}, "AAAAAAAA"},
    {"last-words-claiming-ok", Op::Step, {Outcome::Crashed}, "not a way to die"},
    {"last-words-claiming-unknown-outcome", Op::Step, {Outcome::Crashed}, "not a way to die"},
    {"last-words-with-a-lying-stack", Op::Step, {Outcome::Crashed}, "a lying stack"},
    {"last-words-then-lingers", Op::Step, {Outcome::Crashed}, "dead (not really)"},
    // The doorbell.
    {"ring-unknown-byte", Op::Step, {PM}, "unknown record"},
    {"ring-request-byte", Op::Step, {PM}, "out of turn"},
    // The extra ring is caught when the client reads it before the worker
    // has answered the next request; otherwise the reply it reads is the
    // right one (each reply names its request). Never a wrong result.
    {"ring-twice", Op::Steps, {PM, Outcome::Ok}, ""},
    {"ring-oversized-record", Op::Step, {PM}, "oversized doorbell record"},
    {"ring-empty-record", Op::Step, {PM}, "empty doorbell record"},
    {"ring-with-a-descriptor", Op::Step, {PM}, "descriptors where none are allowed"},
    {"ring-with-many-descriptors", Op::Step, {PM}, "more descriptors than one ring may carry"},
    {"never-replies", Op::Step, {Outcome::TimedOut}, "took longer"},
    {"hangs-up-without-a-word", Op::Step, {Outcome::Crashed}, "exited with code 0"},
    {"deferred-action-then-a-slow-step", Op::TwoSteps, {Outcome::Ok}, ""},
    {"deferred-actions-claimed-then-never-replies", Op::TwoSteps, {Outcome::TimedOut}, "longer than 3000 ms"},
    // Fork replies.
    {"fork-reply-malformed", Op::Fork, {PM}, "malformed message"},
    {"fork-reply-root-pointer-out-of-bounds", Op::Fork, {PM}, "malformed fork reply"},
    {"fork-reply-overlapping-pointers", Op::Fork, {PM}, "without a new channel"},
    {"fork-reply-failure-with-outcome-ok", Op::Fork, {PM}, "names no failure"},
    {"fork-reply-without-descriptors", Op::Fork, {PM}, "without a new channel"},
    {"fork-reply-with-too-few-descriptors", Op::Fork, {PM}, "without a new channel"},
    {"fork-reply-with-too-many-descriptors", Op::Fork, {PM}, "more descriptors than one ring may carry"},
    {"fork-region-is-a-regular-file", Op::Fork, {PM}, "region"},
    {"fork-region-is-unsealed", Op::Fork, {PM}, "not sealed"},
    {"fork-doorbell-is-a-pipe", Op::Fork, {PM}, "doorbell"},
    {"fork-doorbell-is-a-stream-socket", Op::Fork, {PM}, "doorbell"},
    {"fork-reply-never-comes", Op::Fork, {Outcome::TimedOut}, "took longer"},
    // The copy's pidfd: the client will SIGKILL what it names, so it must
    // name a clone of this episode's worker and nothing else.
    {"fork-pidfd-of-an-unrelated-process", Op::Fork, {PM}, "refusing the forked worker"},
    {"fork-pid-of-an-unrelated-process", Op::Fork, {PM}, "refusing the forked worker"},
    {"fork-pidfd-of-the-worker-itself", Op::Fork, {PM}, "not a clone of this episode's worker"},
    {"fork-pidfd-is-not-a-pidfd", Op::Fork, {PM}, "not a pidfd"},
    // Peek replies (what the state cache knows of a state's next steps).
    {"peek-reply-with-too-few-answers", Op::Peek, {PM}, "with 1 answers"},
    {"peek-reply-is-a-step-result", Op::Peek, {PM}, "answered peek with something else"},
};

size_t openFds() {
  size_t count = 0;
  for (int fd = 0; fd < 4096; ++fd) count += fcntl(fd, F_GETFD) != -1;
  return count;
}

struct Report {
  Outcome outcome = Outcome::Ok;
  bool alive = false;
  bool workerGone = true;
  long long fdsBefore = 0, fdsAfter = 0;
  char message[512] = {};
};

bool gone(pid_t pid) {
  // Not our child (the hostile server's): gone once it is a zombie or reaped.
  const std::string path = "/proc/" + std::to_string(pid) + "/stat";
  FILE* stat = fopen(path.c_str(), "r");
  if (!stat) return true;
  char buffer[512] = {};
  const size_t n = fread(buffer, 1, sizeof(buffer) - 1, stat);
  fclose(stat);
  const std::string text(buffer, n);
  const auto close = text.rfind(')');
  return close != std::string::npos && close + 2 < text.size() && (text[close + 2] == 'Z' || text[close + 2] == 'X');
}

// Runs one row in this (child) process and fills the report.
void play(const Row& row, pid_t victim, Report& report) {
  report.fdsBefore = static_cast<long long>(openFds());
  {
    ServerOptions server;
    server.serverPath = FORKGYM_HOSTILE_SERVER;
    server.extraArgs = {"--attack", row.attack, "--victim-pid", std::to_string(victim)};
    auto connection = Connection::spawn(server);
    if (!connection) {
      std::snprintf(report.message, sizeof(report.message), "spawn: %s", connection.error().message.c_str());
      report.outcome = Outcome::ServerError;
      return;
    }
    EnvOptions options;
    options.stepTimeout = 1500ms;  // only never-replies and fork-reply-never-comes wait for it
    Env env(*connection, options);
    if (auto reset = env.reset("file:///hostile.c"); !reset) {
      std::snprintf(report.message, sizeof(report.message), "reset: %s", reset.error().message.c_str());
      report.outcome = Outcome::ServerError;
      return;
    }
    const pid_t worker = env.workerPid();
    const std::vector<std::string> observations{row.observation};
    const uint32_t actions[] = {1};
    std::string message;
    if (row.op == Op::Peek) {
      auto peeked = env.peek({1, 2}, "IrInstructionCountOz");
      report.outcome = peeked ? Outcome::Ok : peeked.error().outcome;
      message = peeked ? "peek accepted" : peeked.error().message;
    } else if (row.op == Op::Fork) {
      auto copy = env.fork();
      if (copy) {
        // Accepted: use the copy as an episode, then time it out, so the
        // client ends it through whatever it was handed.
        copy->setStepTimeout(300ms);
        auto stepped = copy->step(actions, observations);
        report.outcome = stepped.ok() ? Outcome::Ok : stepped.outcome;
        message = "fork accepted; then " + std::string(outcomeName(stepped.outcome)) + ": " + stepped.message;
        copy->close();
      } else {
        report.outcome = copy.error().outcome;
        message = copy.error().message;
      }
    } else {
      const int steps = row.op == Op::Step ? 1 : row.op == Op::TwoSteps ? 2 : 3;
      StepResult result;
      for (int i = 1; i <= steps; ++i) {
        result = env.step(actions, observations);
        if (!result.ok()) break;
        if (row.observation == std::string("IrInstructionCount") &&
            std::get<int64_t>(result.observations.at(0)) != 1000 + i) {
          result.outcome = Outcome::Ok;
          result.message = "WRONG RESULT: step " + std::to_string(i) + " read the reply to another request";
          break;
        }
      }
      report.outcome = result.outcome;
      message = result.message;
    }
    report.alive = env.alive();
    if (!report.alive) {
      // An ended episode's worker is gone (it was killed if it lingered).
      for (int i = 0; i < 2000 && !gone(worker); ++i) poll(nullptr, 0, 5);
      report.workerGone = gone(worker);
    }
    std::snprintf(report.message, sizeof(report.message), "%s", message.c_str());
  }
  report.fdsAfter = static_cast<long long>(openFds());
}

class HostileWorker : public ::testing::TestWithParam<Row> {
 protected:
  void SetUp() override {
    victim_ = fork();
    if (victim_ == 0) {
      for (;;) pause();
    }
  }
  void TearDown() override {
    kill(victim_, SIGKILL);
    waitpid(victim_, nullptr, 0);
  }
  pid_t victim_ = -1;
};

TEST_P(HostileWorker, ClientSurvivesWithATypedError) {
  const Row& row = GetParam();
  int pipeFds[2];
  ASSERT_EQ(pipe2(pipeFds, O_CLOEXEC), 0);
  const pid_t child = fork();
  if (child == 0) {
    close(pipeFds[0]);
    Report report;
    play(row, victim_, report);
    (void)!write(pipeFds[1], &report, sizeof(report));
    _exit(0);
  }
  close(pipeFds[1]);
  // A hang guard far beyond any row's own timeout, not a timing assertion.
  pollfd pfd{pipeFds[0], POLLIN, 0};
  const bool answered = poll(&pfd, 1, 120'000) == 1;
  Report report;
  const bool complete = answered && read(pipeFds[0], &report, sizeof(report)) == static_cast<ssize_t>(sizeof(report));
  close(pipeFds[0]);
  if (!answered) kill(child, SIGKILL);
  int status = 0;
  waitpid(child, &status, 0);

  ASSERT_TRUE(answered) << row.attack << ": the client hung";
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0 && complete)
      << row.attack << ": the client died"
      << (WIFSIGNALED(status) ? std::string(" of SIG") + sigabbrev_np(WTERMSIG(status)) : std::string());
  const std::string message = report.message;
  EXPECT_TRUE(row.expected.contains(report.outcome))
      << row.attack << ": got " << outcomeName(report.outcome) << ": " << message;
  EXPECT_NE(message.find(row.messageContains), std::string::npos) << row.attack << ": " << message;
  if (report.outcome != Outcome::Ok) EXPECT_FALSE(message.empty()) << row.attack;
  EXPECT_EQ(report.alive, report.outcome == Outcome::Ok) << row.attack << ": " << message;
  EXPECT_TRUE(report.workerGone) << row.attack << ": the ended episode's worker still runs";
  EXPECT_EQ(report.fdsAfter, report.fdsBefore) << row.attack << ": the client leaked descriptors";
  EXPECT_EQ(waitpid(victim_, nullptr, WNOHANG), 0) << row.attack << ": the client signalled an unrelated process";
}

std::string rowName(const ::testing::TestParamInfo<Row>& info) {
  std::string name;
  for (const char* c = info.param.attack; *c; ++c) name += std::isalnum(static_cast<unsigned char>(*c)) ? *c : '_';
  return name;
}

INSTANTIATE_TEST_SUITE_P(Attacks, HostileWorker, ::testing::ValuesIn(kRows), rowName);

// Not a worker but a server that skips the action-table check: the client
// checks the server's hello too.
TEST(HostileServer, HelloForAnotherActionTableIsRefusedByTheClient) {
  ServerOptions server;
  server.serverPath = FORKGYM_HOSTILE_SERVER;
  server.extraArgs = {"--attack", "hello-for-another-action-table"};
  auto connection = Connection::spawn(server);
  ASSERT_FALSE(connection);
  EXPECT_EQ(connection.error().outcome, Outcome::ProtocolMismatch);
  EXPECT_NE(connection.error().message.find("client built for action table"), std::string::npos)
      << connection.error().message;
  EXPECT_NE(connection.error().message.find("install matching forkgym client and server"), std::string::npos);
}

// The harness's own control: with no attack, the scripted worker is an
// honest one, so every failure above is the attack's doing.
TEST(HostileServer, WithoutAnAttackEpisodesStepAndFork) {
  ServerOptions server;
  server.serverPath = FORKGYM_HOSTILE_SERVER;
  server.extraArgs = {"--attack", "none"};
  auto connection = Connection::spawn(server);
  ASSERT_TRUE(connection) << connection.error().message;
  Env env(*connection);
  ASSERT_TRUE(env.reset("file:///hostile.c"));
  const uint32_t actions[] = {1};
  auto first = env.step(actions, std::vector<std::string>{"IrInstructionCount", "Autophase"});
  ASSERT_TRUE(first.ok()) << first.message;
  EXPECT_EQ(std::get<int64_t>(first.observations[0]), 1001);
  auto copy = env.fork();
  ASSERT_TRUE(copy) << copy.error().message;
  auto copied = copy->step(actions, std::vector<std::string>{"IrInstructionCount"});
  ASSERT_TRUE(copied.ok()) << copied.message;
  auto second = env.step(actions, std::vector<std::string>{"IrInstructionCount"});
  ASSERT_TRUE(second.ok()) << second.message;
  EXPECT_EQ(std::get<int64_t>(second.observations[0]), 1003);
}

}  // namespace
}  // namespace forkgym::testing
