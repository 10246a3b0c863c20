// Signals while the client waits for a step: a step timeout is a deadline,
// and a wait can be interrupted (what Ctrl-C does in Python).
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/time.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

#include "tests/forkserver/runtime_fixture.h"

namespace forkgym::testing {
namespace {

using namespace std::chrono_literals;

std::atomic<int> g_alarms{0};
void countAlarm(int) { g_alarms.fetch_add(1, std::memory_order_relaxed); }

class ClientSignals : public RuntimeTest {};

TEST_F(ClientSignals, AnIntervalTimerDoesNotStretchTheStepTimeout) {
  Env env = newEnv();
  ASSERT_TRUE(env.reset(fileUri("crc32.c")));
  env.setStepTimeout(2s);

  // A 50 ms interval timer, without SA_RESTART, as a profiler or a
  // progress bar would install: every tick interrupts the wait.
  struct sigaction handler {};
  handler.sa_handler = countAlarm;
  sigemptyset(&handler.sa_mask);
  struct sigaction previous {};
  ASSERT_EQ(sigaction(SIGALRM, &handler, &previous), 0);

  // Hang guard: if the wait restarted its whole timeout on every tick it
  // would never end; after a minute the guard stops the timer (and the
  // step then times out) so the test fails instead of hanging. Its thread
  // blocks SIGALRM so every tick lands on the waiting thread.
  sigset_t alarm;
  sigemptyset(&alarm);
  sigaddset(&alarm, SIGALRM);
  pthread_sigmask(SIG_BLOCK, &alarm, nullptr);
  std::mutex mutex;
  std::condition_variable done;
  bool finished = false, guardFired = false;
  std::thread guard([&] {
    std::unique_lock lock(mutex);
    if (!done.wait_for(lock, 60s, [&] { return finished; })) {
      guardFired = true;
      itimerval off{};
      setitimer(ITIMER_REAL, &off, nullptr);
    }
  });
  pthread_sigmask(SIG_UNBLOCK, &alarm, nullptr);

  itimerval every50ms{{0, 50'000}, {0, 50'000}};
  ASSERT_EQ(setitimer(ITIMER_REAL, &every50ms, nullptr), 0);
  const uint32_t hang[] = {action("-forkgym-test-hang")};
  const auto start = std::chrono::steady_clock::now();
  StepResult result = env.step(hang);
  const auto took = std::chrono::steady_clock::now() - start;
  itimerval off{};
  setitimer(ITIMER_REAL, &off, nullptr);
  {
    std::lock_guard lock(mutex);
    finished = true;
  }
  done.notify_all();
  guard.join();
  sigaction(SIGALRM, &previous, nullptr);

  std::printf("step_timeout=2s under a 50 ms timer: returned %s after %.2f s (%d ticks)\n",
              std::string(outcomeName(result.outcome)).c_str(), std::chrono::duration<double>(took).count(),
              g_alarms.load());
  EXPECT_FALSE(guardFired) << "the step timeout restarted on every signal";
  EXPECT_EQ(result.outcome, Outcome::TimedOut) << result.message;
  EXPECT_GT(g_alarms.load(), 0);
  EXPECT_FALSE(env.alive());
  ASSERT_TRUE(env.reset(fileUri("crc32.c")));
}

TEST_F(ClientSignals, AnInterruptionEndsAHangingStepKillsTheWorkerAndKeepsTheReproducer) {
  Env env = newEnv();
  ASSERT_TRUE(env.reset(fileUri("crc32.c")));
  // Our own pidfd of the worker: it polls readable when the worker exits.
  UniqueFd worker(static_cast<int>(syscall(SYS_pidfd_open, env.workerPid(), 0)));
  ASSERT_TRUE(worker);
  const uint32_t steps[] = {action("-mem2reg"), action("-forkgym-test-hang")};
  // The interruption is asked only once the reply is late; the first ask
  // proves the step is under way, the next one stops it.
  std::atomic<int> asked{0};
  Interruption interruption{[&] { return asked.fetch_add(1) >= 1; }, 20ms};
  StepResult result = env.step(steps, {}, {}, &interruption);
  EXPECT_EQ(result.outcome, Outcome::Interrupted) << result.message;
  EXPECT_NE(result.message.find("interrupted"), std::string::npos) << result.message;
  EXPECT_EQ(result.reproducer.actions, std::vector<uint32_t>(std::begin(steps), std::end(steps)));
  EXPECT_NE(result.reproducer.commandline.find("mem2reg"), std::string::npos);
  EXPECT_FALSE(env.alive());
  pollfd exited{worker.get(), POLLIN, 0};
  EXPECT_EQ(poll(&exited, 1, 10'000), 1) << "the interrupted worker was not killed";
  ASSERT_TRUE(env.reset(fileUri("crc32.c")));
  const uint32_t mem2reg[] = {action("-mem2reg")};
  EXPECT_TRUE(env.step(mem2reg).ok());
}

}  // namespace
}  // namespace forkgym::testing
