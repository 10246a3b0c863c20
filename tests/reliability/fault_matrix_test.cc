// The fault-injection matrix (invariants 1, 2 and 4), one table-driven suite.
//
// Each row injects one fault into a real worker under the real sandbox (or
// kills a client or the zygote), and checks three things:
//   1. the expected outcome, with the message naming the fault;
//   2. nothing else disturbed: a bystander episode on the same zygote still
//      steps, and the zygote still starts new episodes;
//   3. nothing leaked, read from /proc: the zygote's children and open
//      descriptors, this process's descriptors and memfds and children,
//      /dev/shm and /tmp/forkgym-*, and processes of the hostile gcc.
// The denied-syscall rows come from sandbox::deniedSyscallExamples(), run in
// a worker by the test-only testSyscall request (FORKGYM_TEST_ACTIONS). The
// external-compiler rows step gcc-v0 episodes whose gcc is a hostile one
// (tests/passes/gcc/hostile_gcc.h), which the suite's server runs as its
// gcc.
// The matrix is printed as a table when the suite ends (and written to
// fault_matrix.txt next to the binary, which scripts/test prints).
#include <fcntl.h>
#include <seccomp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <algorithm>
#include <optional>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <thread>
#include <filesystem>

#include <capnp/message.h>

#include "ipc/control_socket.h"
#include "ipc/message_area.h"
#include "ipc/protocol.capnp.h"
#include "passes/runner.h"
#include "sandbox/isolation.h"
#include "sandbox/sandbox.h"
#include "tests/forkserver/runtime_fixture.h"
#include "tests/forkserver/load_fixture.h"
#include "tests/passes/gcc/hostile_gcc.h"

namespace forkgym::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// ------------------------------------------------------------ /proc probes --

std::set<pid_t> childrenOf(pid_t pid) {
  std::set<pid_t> children;
  const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  for (const auto& tid : listDir(tasks)) {
    std::ifstream in(tasks + "/" + tid + "/children");
    pid_t child;
    while (in >> child) children.insert(child);
  }
  return children;
}

// True for the init of a PID namespace (its last NSpid is 1): the reaper a
// zygote starts for its children's namespace, which lives as long as it does.
bool initOfItsNamespace(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("NSpid:", 0) == 0) return line.size() > 2 && line.ends_with("\t1");
  }
  return false;
}

// The zygote's episode processes (workers and spares), without the reaper.
size_t workersOf(pid_t zygote) {
  size_t count = 0;
  for (pid_t child : childrenOf(zygote)) count += !initOfItsNamespace(child);
  return count;
}

std::string readLink(const std::string& path) {
  char buffer[512];
  const ssize_t n = readlink(path.c_str(), buffer, sizeof(buffer) - 1);
  return n > 0 ? std::string(buffer, static_cast<size_t>(n)) : std::string();
}

struct FdCounts {
  size_t all = 0;
  size_t memfds = 0;
  bool operator==(const FdCounts&) const = default;
};

FdCounts fdsOf(const std::string& pid) {
  FdCounts counts;
  const std::string dir = "/proc/" + pid + "/fd";
  for (const auto& fd : listDir(dir)) {
    ++counts.all;
    if (readLink(dir + "/" + fd).starts_with("/memfd:")) ++counts.memfds;
  }
  return counts;
}

// /tmp and /dev/shm are machine-wide: what other programs on the machine
// make there while the matrix runs is not a leak of the row's. Left out:
// scripts/bench's and scripts/soak's work directories and Python
// multiprocessing's semaphores (forkgym itself names no shared memory and no
// semaphore).
std::set<std::string> forkgymTempFiles() {
  std::set<std::string> found;
  for (const auto& name : listDir("/tmp")) {
    if (name.starts_with("forkgym-") && !name.starts_with("forkgym-bench-") && !name.starts_with("forkgym-soak-")) {
      found.insert(name);
    }
  }
  return found;
}

std::set<std::string> sharedMemory() {
  std::set<std::string> found;
  for (const auto& name : listDir("/dev/shm")) {
    if (!name.starts_with("sem.mp-")) found.insert(name);
  }
  return found;
}

struct Snapshot {
  // The zygote's children are compared by number: it replaces a spare worker
  // (forked ahead for a recently reset benchmark) whenever one is taken.
  size_t zygoteChildren = 0;
  FdCounts zygoteFds;
  std::set<pid_t> ourChildren;
  FdCounts ourFds;
  std::set<std::string> shm;
  std::set<std::string> temp;
  // Processes of the hostile gcc (its driver and passes), wherever they
  // were reparented: none outlives the step or the worker that ran it.
  std::set<pid_t> compilers;
  bool operator==(const Snapshot&) const = default;
};

void reapZombies() {
  // Only zombies: the zygote we started is alive and is not touched.
  while (waitpid(-1, nullptr, WNOHANG) > 0) {
  }
}

Snapshot snapshot(pid_t zygote, const HostileGcc& gcc) {
  reapZombies();
  const std::vector<pid_t> compilers = gcc.processes();
  return Snapshot{childrenOf(zygote).size(), fdsOf(std::to_string(zygote)), childrenOf(getpid()), fdsOf("self"),
                  sharedMemory(), forkgymTempFiles(), std::set<pid_t>(compilers.begin(), compilers.end())};
}

template <typename T>
std::string diffSets(const char* what, const std::set<T>& before, const std::set<T>& after) {
  std::ostringstream out;
  for (const auto& x : after) {
    if (!before.contains(x)) out << what << " +" << x << " ";
  }
  for (const auto& x : before) {
    if (!after.contains(x)) out << what << " -" << x << " ";
  }
  return out.str();
}

std::string describeLeaks(const Snapshot& before, const Snapshot& after) {
  std::ostringstream out;
  if (before.zygoteChildren != after.zygoteChildren) {
    out << "zygote-children " << before.zygoteChildren << "->" << after.zygoteChildren << " ";
  }
  out << diffSets("our-child", before.ourChildren, after.ourChildren) << diffSets("shm", before.shm, after.shm)
      << diffSets("tmp", before.temp, after.temp) << diffSets("gcc-process", before.compilers, after.compilers);
  if (!(before.zygoteFds == after.zygoteFds)) {
    out << "zygote-fds " << before.zygoteFds.all << "->" << after.zygoteFds.all << " ";
  }
  if (!(before.ourFds == after.ourFds)) {
    out << "fds " << before.ourFds.all << "->" << after.ourFds.all << " memfds " << before.ourFds.memfds << "->"
        << after.ourFds.memfds << " ";
  }
  std::string text = out.str();
  if (!text.empty()) text.pop_back();
  return text;
}

// --------------------------------------------------------------- the rows --

struct Got {
  bool pass = false;
  std::string text;  // what happened, for the table
};

struct Row {
  std::string name;
  std::string expected;
  std::function<Got()> run;
};

struct Printed {
  std::string name, expected, got;
  long long ms;
  std::string leaks;
  bool pass;
};

std::vector<Printed>& printed() {
  static std::vector<Printed> rows;
  return rows;
}

// The suite's zygote: a shared server on a socket, so that client processes
// can be killed while the bystander (on its own connection) carries on. Its
// gcc backend runs the hostile gcc (tests/passes/gcc/hostile_gcc.h), which
// is the real gcc but for the compiles of the external-compiler rows.
struct Harness {
  std::string dir;
  std::string socket;
  std::unique_ptr<LoadGate> gate;  // loads of URIs with "gated" wait on it
  HostileGcc gcc;
  pid_t zygote = -1;
  std::shared_ptr<Connection> connection;
  std::shared_ptr<const Description> description;
  std::shared_ptr<const Description> gccDescription;
  std::unique_ptr<Env> bystander;

  uint32_t action(const std::string& flag) const { return static_cast<uint32_t>(description->findAction(flag)); }
  uint32_t gccAction(const std::string& name) const {
    return static_cast<uint32_t>(gccDescription->findAction(name));
  }
};

Harness* gHarness = nullptr;

Got outcomeIs(const StepResult& result, Outcome expected, const std::string& messageContains) {
  Got got;
  got.text = std::string(outcomeName(result.outcome)) + ": " + result.message;
  got.pass = result.outcome == expected && result.message.find(messageContains) != std::string::npos &&
             !result.reproducer.benchmark.empty();
  return got;
}

// A step with a test-only action in a fresh episode.
Got injectAction(const std::string& flag, Outcome expected, const std::string& contains, EnvOptions options = {}) {
  Env victim(gHarness->connection, options);
  if (auto ok = victim.reset(fileUri("crc32.c")); !ok) return {false, "reset failed: " + ok.error().message};
  const uint32_t actions[] = {gHarness->action("-mem2reg"), gHarness->action(flag)};
  auto result = victim.step(actions, std::vector<std::string>{"IrInstructionCount"});
  Got got = outcomeIs(result, expected, contains);
  if (victim.alive()) {
    got.pass = false;
    got.text += " (episode still alive)";
  }
  return got;
}

// A raw channel to a fresh worker, for requests Env does not send.
struct RawSession {
  SessionEnds ends;
  Channel channel;
};

Result<RawSession> rawSession(Connection& connection) {
  auto ends = connection.newSession(fileUri("crc32.c"), {}, 60s);
  if (!ends) return ends.takeError();
  auto channel = Channel::attach(std::move(ends->channel));
  if (!channel) return channel.takeError();
  return RawSession{std::move(*ends), std::move(*channel)};
}

std::string lastWordsOf(const Channel& channel) {
  const LastWords& words = channel.lastWords();
  if (!words.written.load()) return "no last words";
  return std::string(outcomeName(outcomeFromWire(words.outcome))) + ": " +
         std::string(words.message, strnlen(words.message, sizeof(words.message)));
}

Got deniedSyscall(const std::string& name) {
  const int number = seccomp_syscall_resolve_name(name.c_str());
  if (number < 0) return {false, "no syscall number for " + name};
  auto session = rawSession(*gHarness->connection);
  if (!session) return {false, "session: " + session.error().message};
  capnp::MallocMessageBuilder request;
  request.initRoot<proto::Request>().setTestSyscall(number);
  auto reply = session->channel.call(request, 10s);
  if (reply) {
    auto root = reply->reader->getRoot<proto::Reply>();
    return {false, root.isFailure() ? std::string(root.getFailure().getMessage().cStr()) : "answered"};
  }
  const std::string words = lastWordsOf(session->channel);
  const LastWords& last = session->channel.lastWords();
  const bool pass = reply.error().outcome == Outcome::SessionClosed && last.written.load() &&
                    outcomeFromWire(last.outcome) == Outcome::SandboxViolation &&
                    words.find(" " + name + " (") != std::string::npos;
  return {pass, words};
}

Got garbageInRegion() {
  auto session = rawSession(*gHarness->connection);
  if (!session) return {false, "session: " + session.error().message};
  auto& channel = session->channel;
  auto area = channel.region().requestArea();
  for (size_t i = 0; i < 4096; ++i) area[i] = std::byte(0x5A ^ (i * 7));
  channel.region().header().requestBytes = 4096;
  // The header's own fields scribbled too: offsets and capacities are the
  // reader's own copy, so only the lengths a peer can change matter.
  if (!channel.doorbell().ring(Ring::Request)) return {false, "ring failed"};
  auto rung = channel.doorbell().wait(10s);
  if (!rung) return {false, "no answer: " + rung.error().message};
  auto reply = readMessage(channel.region().replyArea(), channel.region().header().replyBytes);
  if (!reply) return {false, "unreadable reply"};
  auto root = (*reply)->getRoot<proto::Reply>();
  if (!root.isFailure()) return {false, "garbage was accepted"};
  Got got{outcomeFromWire(root.getFailure().getOutcome()) == Outcome::InvalidRequest,
          std::string(outcomeName(outcomeFromWire(root.getFailure().getOutcome())))};
  // The same worker still serves a proper step.
  capnp::MallocMessageBuilder request;
  request.initRoot<proto::Request>().initStep().initObservations(1).set(0, "IrInstructionCount");
  auto answer = channel.call(request, 10s);
  const bool serves = answer && answer->reader->getRoot<proto::Reply>().isStep();
  got.pass = got.pass && serves;
  got.text += serves ? ", then steps" : ", then broken";
  return got;
}

Got workerClosesChannel() {
  // Its own connection: when the client gives up on the lingering worker by
  // closing the connection, the zygote must end it.
  auto connection = Connection::connect(gHarness->socket);
  if (!connection) return {false, connection.error().message};
  auto session = rawSession(**connection);
  if (!session) return {false, "session: " + session.error().message};
  const pid_t worker = session->ends.pid;
  capnp::MallocMessageBuilder request;
  request.initRoot<proto::Request>().setTestCloseChannel();
  // A call with a long timeout: session_closed (not timed_out) means the
  // worker's closing woke the client at once.
  auto reply = session->channel.call(request, kHangGuard);
  Got got;
  got.text = reply ? "answered" : std::string(outcomeName(reply.error().outcome));
  got.pass = !reply && reply.error().outcome == Outcome::SessionClosed;
  const bool lingering = !processGone(worker);
  got.text += lingering ? ", worker lingers" : ", worker gone";
  session = makeError(Outcome::SessionClosed, "");
  connection->reset();
  const bool gone = waitUntilGone(worker);
  got.text += gone ? ", ended with its connection" : ", OUTLIVED its connection";
  got.pass = got.pass && gone;
  return got;
}

Got zygoteKilled() {
  auto connection = Connection::spawn(testServer());
  if (!connection) return {false, connection.error().message};
  const pid_t first = (*connection)->serverPid();
  Env running(*connection);
  if (!running.reset(fileUri("crc32.c"))) return {false, "reset failed"};
  const uint32_t mem2reg[] = {gHarness->action("-mem2reg")};
  if (!running.step(mem2reg).ok()) return {false, "step failed"};
  kill(first, SIGKILL);
  if (!waitUntilGone(first)) return {false, "zygote did not die"};

  Got got;
  auto step = running.step(mem2reg, std::vector<std::string>{"IrInstructionCount"});
  auto copy = running.fork();
  const bool continues = step.ok() && copy && copy->step(mem2reg).ok();
  got.text = continues ? "running episode steps and forks" : "running episode broke: " + step.message;
  Env fresh(*connection);
  auto reset = fresh.reset(fileUri("crc32.c"));
  const pid_t second = (*connection)->serverPid();
  const bool renewed = reset.ok() && second > 0 && second != first && fresh.step(mem2reg).ok();
  got.text += renewed ? "; new reset on a new zygote" : "; new reset failed: " + (reset ? "" : reset.error().message);
  got.pass = continues && renewed;
  return got;
}

struct ClientPids {
  pid_t worker = -1, fork = -1, server = -1;
};

// A client process that starts an episode and a fork, reports, then idles
// or hangs in a step until it is SIGKILLed.
Got clientKilled(bool privateZygote, bool hangInStep) {
  int report[2];
  if (pipe(report) != 0) return {false, "pipe"};
  const pid_t client = ::fork();
  if (client == 0) {
    close(report[0]);
    auto connection = privateZygote ? Connection::spawn(testServer()) : Connection::connect(gHarness->socket);
    if (!connection) _exit(3);
    Env env(*connection);
    if (!env.reset(fileUri("crc32.c"))) _exit(4);
    auto copy = env.fork();
    if (!copy) _exit(5);
    ClientPids pids{env.workerPid(), copy->workerPid(), (*connection)->serverPid()};
    if (hangInStep) {
      // Reports only once the worker is inside the hanging step.
      const uint32_t hang[] = {static_cast<uint32_t>((*(*connection)->describe())->findAction("-forkgym-test-hang"))};
      if (!env.beginStep(hang)) _exit(7);
      if (!eventually([&] { return env.requestStarted(); })) _exit(8);
    }
    if (write(report[1], &pids, sizeof(pids)) != sizeof(pids)) _exit(6);
    pause();
    _exit(0);
  }
  close(report[1]);
  ClientPids pids;
  const bool reported = read(report[0], &pids, sizeof(pids)) == static_cast<ssize_t>(sizeof(pids));
  close(report[0]);
  if (!reported) {
    kill(client, SIGKILL);
    waitpid(client, nullptr, 0);
    return {false, "client did not start"};
  }
  kill(client, SIGKILL);
  waitpid(client, nullptr, 0);
  // Each pidfd turns readable when its process ends: no timing involved,
  // the guard only catches a process that never ends.
  bool gone = waitUntilGone(pids.worker) && waitUntilGone(pids.fork);
  if (privateZygote) gone = gone && waitUntilGone(pids.server);
  return {gone, gone ? "worker, fork" + std::string(privateZygote ? ", zygote" : "") + " ended"
                     : "ORPHANS left (nothing ended them)"};
}

Got fdsToZygote() {
  auto fd = connectUnix(gHarness->socket);
  if (!fd) return {false, fd.error().message};
  // A valid hello, with a descriptor riding on it.
  capnp::MallocMessageBuilder hello;
  hello.initRoot<proto::ControlRequest>().initHello().setProtocolVersion(proto::PROTOCOL_VERSION);
  const int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  const int passed[] = {devnull};
  auto sent = sendFrame(fd->get(), hello, passed);
  close(devnull);
  if (!sent) return {false, "send: " + sent.error().message};
  auto answer = recvFrame(fd->get(), 10s, 0);
  const bool dropped = !answer && answer.error().message.find("closed the connection") != std::string::npos;
  return {dropped, dropped ? "connection dropped" : answer ? "answered" : answer.error().message};
}

Got fdsToWorker() {
  auto session = rawSession(*gHarness->connection);
  if (!session) return {false, "session: " + session.error().message};
  // One round trip first: the worker has finished its set-up (and closed
  // what it inherited) once it answers.
  capnp::MallocMessageBuilder first;
  first.initRoot<proto::Request>().initStep();
  if (!session->channel.call(first, 10s)) return {false, "first step failed"};
  const FdCounts before = fdsOf(std::to_string(session->ends.pid));
  // A proper step request, rung with a descriptor attached.
  capnp::MallocMessageBuilder request;
  request.initRoot<proto::Request>().initStep().initObservations(1).set(0, "IrInstructionCount");
  auto length = writeMessage(request, session->channel.region().requestArea());
  if (!length) return {false, "write"};
  session->channel.region().header().requestBytes = *length;
  const int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  const int passed[] = {devnull};
  auto rang = session->channel.doorbell().ring(Ring::Request, passed);
  close(devnull);
  if (!rang) return {false, "ring: " + rang.error().message};
  auto rung = session->channel.doorbell().wait(10s);
  if (!rung) return {false, "no answer: " + rung.error().message};
  auto reply = readMessage(session->channel.region().replyArea(), session->channel.region().header().replyBytes);
  if (!reply) return {false, "unreadable reply"};
  auto root = (*reply)->getRoot<proto::Reply>();
  Got got;
  got.pass = root.isFailure() && outcomeFromWire(root.getFailure().getOutcome()) == Outcome::InvalidRequest;
  got.text = root.isFailure() ? std::string("refused: ") + root.getFailure().getMessage().cStr() : "accepted";
  const FdCounts after = fdsOf(std::to_string(session->ends.pid));
  if (before.all != 0 && !(before == after)) {
    got.pass = false;
    got.text += "; worker kept it (" + std::to_string(before.all) + "->" + std::to_string(after.all) + " fds)";
  }
  capnp::MallocMessageBuilder step;
  step.initRoot<proto::Request>().initStep();
  auto answer = session->channel.call(step, 10s);
  const bool serves = answer && answer->reader->getRoot<proto::Reply>().isStep();
  got.pass = got.pass && serves;
  got.text += serves ? "; then steps" : "; then broken";
  return got;
}

// A chain of env.fork()s, each copy stepped and its parent closed: forked
// copies return to the worker's top-level loop, so the chain goes past the
// ~3,400 generations at which a nesting worker overflowed its stack.
Got forkChain(int generations) {
  Env current(gHarness->connection);
  if (!current.reset(fileUri("crc32.c"))) return {false, "reset failed"};
  for (int generation = 1; generation <= generations; ++generation) {
    auto child = current.fork();
    if (!child) return {false, "generation " + std::to_string(generation) + ": " + child.error().message};
    current = std::move(*child);
    auto stepped = current.step({});
    if (!stepped.ok()) {
      return {false, "generation " + std::to_string(generation) + ": " + std::string(outcomeName(stepped.outcome)) +
                         ": " + stepped.message};
    }
  }
  return {true, "generation " + std::to_string(generations) + " steps"};
}

// One attack of tests/hostile/hostile_server.cc against a real Env, on the
// hostile server's own private connection (the bystander and the zygote of
// the matrix are other processes: they must not notice).
Got hostileWorker(const std::string& attack, bool fork, Outcome expected, const std::string& words) {
  ServerOptions server;
  server.serverPath = FORKGYM_HOSTILE_SERVER;
  server.extraArgs = {"--attack", attack};
  auto connection = Connection::spawn(server);
  if (!connection) return {false, "spawn: " + connection.error().message};
  EnvOptions options;
  options.stepTimeout = kHangGuard;
  Env env(*connection, options);
  if (!env.reset("file:///hostile.c")) return {false, "reset failed"};
  Outcome outcome = Outcome::Ok;
  std::string message;
  if (fork) {
    auto copy = env.fork();
    outcome = copy ? Outcome::Ok : copy.error().outcome;
    message = copy ? "fork accepted" : copy.error().message;
  } else {
    auto result = env.step({}, std::vector<std::string>{"IrInstructionCount"});
    outcome = result.outcome;
    message = result.message;
  }
  Got got{outcome == expected && message.find(words) != std::string::npos && !env.alive(),
          std::string(outcomeName(outcome)) + ": " + message};
  if (env.alive()) got.text += " (episode still alive)";
  return got;
}

// Ctrl-C while the worker is inside a hanging step: a real SIGINT, whose
// handler the step's Interruption asks (as the Python client does).
volatile sig_atomic_t gSigint = 0;

Got sigintDuringStep() {
  struct sigaction handler {}, previous {};
  handler.sa_handler = [](int) { gSigint = 1; };
  sigaction(SIGINT, &handler, &previous);
  gSigint = 0;
  Env env(gHarness->connection);
  if (!env.reset(fileUri("crc32.c"))) return {false, "reset failed"};
  const pid_t worker = env.workerPid();
  const uint32_t actions[] = {gHarness->action("-mem2reg"), gHarness->action("-forkgym-test-hang")};
  Interruption interruption{[&] {
                              if (!gSigint && env.requestStarted()) raise(SIGINT);
                              return gSigint != 0;
                            },
                            std::chrono::milliseconds(20)};
  auto result = env.step(actions, {}, {}, &interruption);
  sigaction(SIGINT, &previous, nullptr);
  Got got = outcomeIs(result, Outcome::Interrupted, "interrupted");
  got.pass = got.pass && result.reproducer.actions.size() == 2 && !env.alive() && waitUntilGone(worker);
  if (env.alive()) got.text += " (episode still alive)";
  return got;
}

// env.fork() when the client has no descriptor left for the copy's channel.
Got forkOutOfDescriptors() {
  Env parent(gHarness->connection);
  if (!parent.reset(fileUri("crc32.c"))) return {false, "reset failed"};
  std::vector<int> free;
  for (int fd = 0; free.size() < 2; ++fd) {
    if (fcntl(fd, F_GETFD) == -1) free.push_back(fd);
  }
  rlimit saved{};
  getrlimit(RLIMIT_NOFILE, &saved);
  rlimit tight = saved;
  tight.rlim_cur = static_cast<rlim_t>(free[1]);  // one descriptor left; a fork needs three
  setrlimit(RLIMIT_NOFILE, &tight);
  auto copy = parent.fork();
  setrlimit(RLIMIT_NOFILE, &saved);
  if (copy) return {false, "forked anyway"};
  Got got{copy.error().outcome == Outcome::ResourceExhausted,
          std::string(outcomeName(copy.error().outcome)) + ": " + copy.error().message};
  const uint32_t mem2reg[] = {gHarness->action("-mem2reg")};
  const bool goesOn = parent.alive() && parent.step(mem2reg).ok();
  got.text += goesOn ? "; the episode goes on" : "; the episode was lost";
  got.pass = got.pass && goesOn;
  return got;
}

// The client process forks mid-episode: the child may not step the parent's
// episode (its worker and zygote are the parent's), and starts its own.
Got clientForksMidEpisode() {
  auto connection = Connection::spawn(testServer());
  if (!connection) return {false, connection.error().message};
  Env env(*connection);
  if (!env.reset(fileUri("crc32.c"))) return {false, "reset failed"};
  const pid_t parent = getpid();
  const pid_t child = ::fork();
  if (child == 0) {
    auto inherited = env.step({});
    if (inherited.outcome != Outcome::SessionClosed ||
        inherited.message.find("belongs to process " + std::to_string(parent)) == std::string::npos) {
      _exit(1);
    }
    if (!env.reset(fileUri("crc32.c")) || !env.step({}).ok()) _exit(2);
    _exit(0);
  }
  int status = 0;
  waitpid(child, &status, 0);
  const bool childOk = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  const bool parentGoesOn = env.step({}).ok();
  return {childOk && parentGoesOn, std::string(childOk ? "child refused the inherited episode, started its own"
                                                       : "child: exit " + std::to_string(WEXITSTATUS(status))) +
                                       (parentGoesOn ? "; parent goes on" : "; PARENT broken")};
}

// A fork reply carrying the pidfd of a process that is none of the
// episode's: the client must refuse the copy and signal nothing.
Got hostileForkPidfd() {
  const pid_t victim = ::fork();
  if (victim == 0) {
    for (;;) pause();
  }
  ServerOptions server;
  server.serverPath = FORKGYM_HOSTILE_SERVER;
  server.extraArgs = {"--attack", "fork-pidfd-of-an-unrelated-process", "--victim-pid", std::to_string(victim)};
  Got got;
  {
    auto connection = Connection::spawn(server);
    if (!connection) return {false, "spawn: " + connection.error().message};
    Env env(*connection);
    if (!env.reset("file:///hostile.c")) return {false, "reset failed"};
    auto copy = env.fork();
    if (copy) {
      copy->setStepTimeout(std::chrono::milliseconds(300));
      copy->step({});  // times out: the client kills what the pidfd names
    }
    got.text = copy ? "fork accepted" : std::string(outcomeName(copy.error().outcome)) + ": " + copy.error().message;
    got.pass = !copy && copy.error().outcome == Outcome::ProtocolMismatch;
  }
  const bool alive = waitpid(victim, nullptr, WNOHANG) == 0;
  got.text += alive ? "; the unrelated process lives" : "; the UNRELATED PROCESS WAS KILLED";
  got.pass = got.pass && alive;
  kill(victim, SIGKILL);
  waitpid(victim, nullptr, 0);
  return got;
}

// env.fork() past the episode's process limit (a private zygote started
// with --max-processes 8): limit_reached, and the episode, its copies and
// the zygote carry on.
Got forkBombUnderTheProcessLimit() {
  ServerOptions options = testServer();
  options.extraArgs = {"--max-processes", "8"};
  auto connection = Connection::spawn(options);
  if (!connection) return {false, connection.error().message};
  const auto& features = (*connection)->server().sandboxFeatures;
  if (std::find(features.begin(), features.end(), "process_limit") == features.end()) {
    // Nothing to exceed: the sandbox level says so (a server that may not
    // set RLIMIT_NPROC where it would hold, see README "Threat model").
    return {true, "not applicable: no process limit at sandbox level " + (*connection)->server().sandboxLevel};
  }
  Env bomb(*connection);
  if (!bomb.reset(fileUri("crc32.c"))) return {false, "reset failed"};
  std::vector<Env> copies;
  std::optional<Error> stopped;
  for (int i = 0; i < 64 && !stopped; ++i) {
    auto copy = bomb.fork();
    if (copy) {
      copies.push_back(std::move(*copy));
    } else {
      stopped = copy.error();
    }
  }
  if (!stopped) return {false, "64 forks under a limit of 8 processes"};
  Got got{stopped->outcome == Outcome::LimitReached && stopped->message.find("--max-processes") != std::string::npos,
          std::string(outcomeName(stopped->outcome)) + " after " + std::to_string(copies.size()) + " forks"};
  const uint32_t mem2reg[] = {gHarness->action("-mem2reg")};
  const bool carriesOn = bomb.step(mem2reg).ok() && !copies.empty() && copies.back().step(mem2reg).ok();
  Env fresh(*connection);
  const bool serves = fresh.reset(fileUri("crc32.c")).ok() && fresh.step(mem2reg).ok();
  got.text += carriesOn ? "; episode and copies step" : "; the EPISODE broke";
  got.text += serves ? ", zygote serves" : ", the ZYGOTE no longer serves";
  got.pass = got.pass && carriesOn && serves;
  return got;
}

// Limits of its own: the zygote keeps a spare worker (for a runnable
// benchmark, one per run configuration) only for sessions with the default
// limits, and a new spare is no leak of the row's.
EnvOptions ownLimits() {
  EnvOptions options;
  options.limits.cpuSecondsPerStep = 30;
  return options;
}

// A fork bomb injected into a runnable benchmark's worker, which may fork
// (it builds and runs programs): it stops at the runnable profile's process
// limit — what one build or run at a time needs, far below the episode
// default — the step completes, and the episode still builds and runs its
// program once the bomb's processes are gone.
Got forkBombInARunnableWorker() {
  const auto& features = gHarness->connection->server().sandboxFeatures;
  if (std::find(features.begin(), features.end(), "process_limit") == features.end()) {
    return {true, "not applicable: no process limit at sandbox level " + gHarness->connection->server().sandboxLevel};
  }
  RunConfig config;
  config.runTimeoutSeconds = 10;
  Env env(gHarness->connection, ownLimits());
  if (auto ok = env.reset(fileUri("crc32.c"), &config); !ok) return {false, "reset failed: " + ok.error().message};
  // The kernel's view of the worker's limit, once the worker has answered a
  // request (it applies its sandbox, limits included, while the client's
  // reset returns; its first answer comes after).
  if (!env.observe(std::vector<std::string>{"IrInstructionCount"}).ok()) return {false, "the worker does not answer"};
  std::ifstream limits("/proc/" + std::to_string(env.workerPid()) + "/limits");
  std::string line, processes;
  while (std::getline(limits, line)) {
    if (line.rfind("Max processes", 0) == 0) processes = line;
  }
  std::istringstream fields(processes.substr(std::string_view("Max processes").size()));
  uint64_t soft = 0;
  fields >> soft;
  // Counted per episode with a user namespace of its own, else shared by
  // every episode (isolation.h).
  const bool perEpisode = std::find(features.begin(), features.end(), "user_namespace") != features.end();
  const uint64_t expected = passes::kRunnableWorkerProcesses * (perEpisode ? 1 : sandbox::kSharedProcessLimitFactor);
  Got got{soft == expected, "worker's process limit " + std::to_string(soft)};
  const uint32_t bomb[] = {gHarness->action("-mem2reg"), gHarness->action("-forkgym-test-fork-bomb")};
  auto step = env.step(bomb, std::vector<std::string>{"IrInstructionCount"});
  got.text += step.ok() ? "; the bombed step completes" : "; the bombed step failed: " + step.message;
  auto ran = env.run(RunRequest{});
  const bool runs = ran && ran->built && ran->runs.size() == 1 &&
                    ran->runs[0].outcome == static_cast<uint16_t>(Outcome::Ok);
  got.text += runs ? ", then builds and runs its program" : ", then its program does NOT run";
  got.pass = got.pass && step.ok() && runs && env.alive();
  return got;
}

// ----------------------------------------------------------------- loads --

// A file of the row's own in the harness directory, removed after the row.
struct RowFile {
  std::string path;
  RowFile(const std::string& name, const std::string& text) : path(gHarness->dir + "/" + name) {
    std::ofstream(path, std::ios::binary) << text;
  }
  ~RowFile() { unlink(path.c_str()); }
};

Got resetFails(const std::string& uri, Outcome expected, std::vector<std::string> words) {
  Env env(gHarness->connection);
  auto status = env.reset(uri);
  if (status) return {false, "loaded"};
  Got got{status.error().outcome == expected, std::string(outcomeName(status.error().outcome)) + ": " +
                                                  status.error().message};
  for (const auto& word : words) got.pass = got.pass && status.error().message.find(word) != std::string::npos;
  return got;
}

// A load past its timeout is killed with the compiler it runs (on a private
// zygote with a 2 s load timeout; the matrix's own keeps the default).
Got loadPastItsTimeout() {
  BlockingSource stuck(gHarness->dir, "stuck");
  ServerOptions options = testServer();
  options.extraArgs = {"--load-timeout", "2"};
  auto connection = Connection::spawn(options);
  if (!connection) return {false, connection.error().message};
  Env env(*connection);
  auto status = env.reset("file://" + stuck.source);
  Got got{!status && status.error().outcome == Outcome::BenchmarkError &&
              status.error().message.find("took longer than 2 s") != std::string::npos,
          status ? "loaded" : std::string(outcomeName(status.error().outcome)) + ": " + status.error().message};
  const bool compilerGone = eventually([&] { return compilersOf(stuck.source).empty(); });
  got.text += compilerGone ? "; compiler gone" : "; the COMPILER OUTLIVED its load";
  got.pass = got.pass && compilerGone && env.reset(fileUri("crc32.c")).ok();
  return got;
}

// The client that asked for a load goes away: the load and its compiler end.
Got clientGoesAwayMidLoad() {
  BlockingSource abandoned(gHarness->dir, "abandoned");
  auto fd = connectUnix(gHarness->socket);
  if (!fd) return {false, fd.error().message};
  if (auto requested = requestSessionWithoutWaiting(fd->get(), "file://" + abandoned.source); !requested) {
    return {false, "request failed: " + requested.error().message};
  }
  // The compiler holds the include open once this open returns; holding the
  // write end keeps it blocked in read().
  UniqueFd writer = openOnceRead(abandoned.fifo);
  if (!writer) return {false, "the load never started"};
  fd->reset();
  const bool gone = eventually([&] { return compilersOf(abandoned.source).empty(); });
  return {gone, gone ? "loader and compiler ended with their client" : "the COMPILER OUTLIVED its client"};
}

// A load waiting at the gate blocks nobody: while it waits the zygote
// serves a reset and the bystander steps; then it completes.
Got slowLoadBlocksNobody() {
  RowFile gated("gated.c", "int main(void) { return 7; }\n");
  const pid_t client = ::fork();
  if (client == 0) {
    auto connection = Connection::connect(gHarness->socket);
    if (!connection) _exit(3);
    // Limits of its own: the zygote keeps spare workers only for sessions
    // with the default limits, and a new spare is no leak of this row's.
    EnvOptions options;
    options.limits.cpuSecondsPerStep = 30;
    Env env(*connection, options);
    _exit(env.reset("file://" + gated.path) ? 0 : 4);
  }
  UniqueFd gate = gHarness->gate->waitForLoader();
  if (!gate) {
    kill(client, SIGKILL);
    waitpid(client, nullptr, 0);
    return {false, "the load never reached the gate"};
  }
  Env other(gHarness->connection);
  const bool served = other.reset(fileUri("crc32.c")).ok() && other.step({}).ok();
  auto status = gHarness->connection->status();
  const bool stillLoading = status && status->pendingLoads == 1;
  (void)!write(gate.get(), "x", 1);
  int exit = 0;
  waitpid(client, &exit, 0);
  const bool loaded = WIFEXITED(exit) && WEXITSTATUS(exit) == 0;
  return {served && stillLoading && loaded,
          std::string(served ? "others served" : "OTHERS BLOCKED") + (stillLoading ? " while it loaded" : "") +
              (loaded ? "; then it loaded" : "; it FAILED")};
}

// A benchmark edited between two resets: the second serves the file as it
// is now (the cache is keyed by content), with another content hash.
Got benchmarkEditedBetweenResets() {
  RowFile source("edited.c", "int f(int x) { return x + 1; }\n");
  auto count = [](Env& env) -> int64_t {
    auto observed = env.observe(std::vector<std::string>{"IrInstructionCount"});
    return observed.ok() ? std::get<int64_t>(observed.observations[0]) : -1;
  };
  // Limits of its own: no spare worker is kept for this benchmark (a new
  // spare would be no leak of this row's).
  EnvOptions options;
  options.limits.cpuSecondsPerStep = 30;
  Env env(gHarness->connection, options);
  if (!env.reset("file://" + source.path)) return {false, "first reset failed"};
  const int64_t before = count(env);
  const std::string hashBefore = env.benchmarkHash();
  std::ofstream(source.path) << "int f(int x) { int y = x * 3; if (y > 7) y -= x; return y + 1; }\n";
  if (!env.reset("file://" + source.path)) return {false, "second reset failed"};
  const int64_t after = count(env);
  const bool fresh = before > 0 && after > before && env.benchmarkHash() != hashBefore;
  return {fresh, std::to_string(before) + " -> " + std::to_string(after) + " instructions" +
                     (env.benchmarkHash() != hashBefore ? ", new content hash" : ", SAME content hash")};
}

// ------------------------------------------------- external compiler --

// A gcc-v0 episode of a row's own. Limits of its own: no spare worker is
// kept for its benchmark (a new spare would be no leak of the row's).
EnvOptions gccEpisode() {
  EnvOptions options;
  options.backend = "gcc";
  options.limits.cpuSecondsPerStep = 30;
  return options;
}

// What the table shows of a failed compile: gcc's report of each attempt
// ("hostile ...: denied (...)"), else the first words of the message.
std::string compileSummary(const StepResult& result) {
  std::string attempts;
  for (size_t start = 0; start < result.message.size();) {
    const size_t end = std::min(result.message.find('\n', start), result.message.size());
    const std::string line = result.message.substr(start, end - start);
    if (line.starts_with("hostile ")) attempts += (attempts.empty() ? "" : "; ") + line.substr(8);
    start = end + 1;
  }
  std::string text = result.message.substr(0, result.message.find('\n'));
  for (const char* cut : {" (", "; ", ". Command"}) text = text.substr(0, text.find(cut));
  return std::string(outcomeName(result.outcome)) + ": " + (attempts.empty() ? text : attempts);
}

// The hostile gcc does `attack` when a step compiles: the step is
// compiler_failed with each of `words` in its message, none of `absent`
// and nothing the sandbox ALLOWED; the episode stays where it was (its
// command line without the step's -O2) and goes on: it answers and forks.
// `timeout`: the episode's gcc time limit.
Got hostileCompile(const std::string& attack, const std::vector<std::string>& words,
                   std::vector<std::string> absent = {}, const std::string& timeout = "") {
  RowFile source("hostile-" + attack + ".c", HostileGcc::source(attack));
  Env env(gHarness->connection, gccEpisode());
  if (auto ok = env.reset("file://" + source.path); !ok) return {false, "reset failed: " + ok.error().message};
  if (!timeout.empty()) {
    if (auto set = env.setParameter("timeout", timeout); !set) return {false, "timeout: " + set.error().message};
  }
  const uint32_t o2[] = {gHarness->gccAction("-O2")};
  auto result = env.step(o2, std::vector<std::string>{"obj_size"});
  Got got{result.outcome == Outcome::CompilerFailed, compileSummary(result)};
  absent.push_back("ALLOWED");
  for (const auto& word : words) got.pass = got.pass && result.message.find(word) != std::string::npos;
  for (const auto& word : absent) got.pass = got.pass && result.message.find(word) == std::string::npos;
  if (!got.pass) got.text += " | MESSAGE: " + result.message;

  // (Every compile in this episode is the hostile gcc's: the episode goes on
  // without one.)
  const std::string before = gHarness->gcc.path() + " -w -c src.c -o obj.o";
  const std::vector<std::string> line = {"command_line"};
  auto observed = env.observe(line);
  const bool stayed = observed.ok() && std::get<std::string>(observed.observations[0]) == before;
  auto copy = env.fork();
  auto copied = copy ? copy->observe(line) : StepResult{};
  const bool goesOn = env.alive() && copy && copied.ok() && std::get<std::string>(copied.observations[0]) == before;
  if (!stayed) got.text += "; the STATE MOVED";
  got.text += goesOn ? "; goes on" : "; the EPISODE broke";
  got.pass = got.pass && stayed && goesOn;
  return got;
}

// A live process of the hostile gcc named `name` (its comm), or -1.
pid_t hostileProcessNamed(const std::string& name) {
  for (pid_t pid : gHarness->gcc.processes()) {
    std::ifstream comm("/proc/" + std::to_string(pid) + "/comm");
    std::string text;
    std::getline(comm, text);
    if (text == name) return pid;
  }
  return -1;
}

// The worker is SIGKILLed while the hostile gcc's pass (as cc1: the
// driver's child, which the driver's own death signal does not reach) runs:
// the step is crashed, and the driver and the pass end with the worker.
// The pass names itself `passName` once it runs: the signal waited for.
Got passDiesWithItsWorker(const std::string& attack, const std::string& passName) {
  RowFile source("hostile-" + attack + ".c", HostileGcc::source(attack));
  Env env(gHarness->connection, gccEpisode());
  if (auto ok = env.reset("file://" + source.path); !ok) return {false, "reset failed: " + ok.error().message};
  const uint32_t o2[] = {gHarness->gccAction("-O2")};
  if (auto posted = env.beginStep(o2); !posted) return {false, "step: " + posted.error().message};
  pid_t pass = -1;
  eventually([&] { return (pass = hostileProcessNamed(passName)) > 0; });
  kill(env.workerPid(), SIGKILL);
  auto result = env.finishStep();
  if (pass <= 0) return {false, "the pass never ran; " + std::string(outcomeName(result.outcome)) + ": " + result.message};
  Got got{result.outcome == Outcome::Crashed && result.signal == SIGKILL && !env.alive(),
          std::string(outcomeName(result.outcome)) + " (signal " + std::to_string(result.signal) + ")"};
  const bool passGone = waitUntilGone(pass);
  const bool allGone = eventually([] { return gHarness->gcc.processes().empty(); });
  if (!passGone) kill(pass, SIGKILL);  // the row failed; what it left goes
  got.text += passGone && allGone ? "; driver and pass ended with the worker" : "; the PASS OUTLIVED its worker";
  got.pass = got.pass && passGone && allGone;
  return got;
}

// ---------------------------------------------------------------- runner --

// A runnable benchmark whose program is `source`: reset with a run
// configuration of `timeout` seconds, built and run once by the runner. The
// run's outcome is `expected` with each of `words` in its stdout or message;
// the episode goes on (a step and a fork answer); `then`, if given, checks
// more in the same episode.
Got runnerRow(const std::string& name, const std::string& source, Outcome expected,
              const std::vector<std::string>& words, uint32_t timeout = 2,
              const std::function<std::string(Env&)>& then = {}) {
  RowFile file("runner-" + name + ".c", source);
  RunConfig config;
  config.runTimeoutSeconds = timeout;
  Env env(gHarness->connection, ownLimits());
  if (auto ok = env.reset("file://" + file.path, &config); !ok) return {false, "reset failed: " + ok.error().message};
  auto ran = env.run(RunRequest{});
  if (!ran) return {false, "run failed: " + std::string(outcomeName(ran.error().outcome)) + ": " + ran.error().message};
  if (!ran->built || ran->runs.size() != 1) return {false, "not built or not run: " + ran->buildDiagnostics};
  const ProgramRun& run = ran->runs[0];
  Got got{run.outcome == static_cast<uint16_t>(expected),
          std::string(outcomeName(static_cast<Outcome>(run.outcome))) + ": " + run.message};
  const std::string seen = run.stdoutData + run.message;
  for (const auto& word : words) {
    if (seen.find(word) == std::string::npos) {
      got.pass = false;
      got.text += " | MISSING '" + word + "' in: " + seen;
    }
  }
  if (!run.stdoutData.empty()) got.text += " | " + run.stdoutData.substr(0, 120);
  if (then) {
    const std::string problem = then(env);
    if (!problem.empty()) {
      got.pass = false;
      got.text += " | " + problem;
    }
  }
  const uint32_t mem2reg[] = {gHarness->action("-mem2reg")};
  const bool steps = env.step(mem2reg, std::vector<std::string>{"IrInstructionCount"}).ok();
  auto copy = env.fork();
  const bool forks = copy && copy->observe(std::vector<std::string>{"IrInstructionCount"}).ok();
  got.text += steps && forks ? "; goes on" : "; the EPISODE broke";
  got.pass = got.pass && steps && forks;
  return got;
}

constexpr const char* kEscapeProgram = R"(#include <stdio.h>
int main(void) {
  const char* reads[] = {"/etc/passwd", "/proc/1/environ", "../../etc/hostname"};
  for (int i = 0; i < 3; ++i) printf("read %s: %s\n", reads[i], fopen(reads[i], "r") ? "OPENED" : "denied");
  const char* writes[] = {"/tmp/forkgym-escape", "../forkgym-escape", "/dev/shm/forkgym-escape"};
  for (int i = 0; i < 3; ++i) printf("write %s: %s\n", writes[i], fopen(writes[i], "w") ? "OPENED" : "denied");
  printf("own directory: %s\n", fopen("mine.txt", "w") ? "writable" : "DENIED");
  return 0;
}
)";

constexpr const char* kNetworkProgram = R"(#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
int main(void) {
  printf("before the socket\n");
  fflush(stdout);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in to = {0};
  to.sin_family = AF_INET;
  to.sin_port = htons(80);
  to.sin_addr.s_addr = htonl(0x01010101);
  printf("socket %d connect %d\n", fd, connect(fd, (struct sockaddr*)&to, sizeof to));
  return 0;
}
)";

constexpr const char* kForkBombProgram = R"(#include <stdio.h>
#include <unistd.h>
int main(void) {
  printf("bombing\n");
  fflush(stdout);
  for (;;) fork();
}
)";

constexpr const char* kForeverProgram = R"(int main(void) { volatile unsigned long n = 0; for (;;) ++n; }
)";

constexpr const char* kHugeFileProgram = R"(#include <stdio.h>
#include <string.h>
static char block[1 << 20];
int main(void) {
  FILE* f = fopen("huge", "w");
  memset(block, 'x', sizeof block);
  for (int i = 0; i < 1024; ++i) fwrite(block, 1, sizeof block, f);
  printf("wrote 1 GiB\n");
  return 0;
}
)";

// Many files below the file-size limit, until the private /tmp is full.
constexpr const char* kFillDiskProgram = R"(#include <errno.h>
#include <stdio.h>
#include <string.h>
static char block[1 << 20];
int main(void) {
  memset(block, 'x', sizeof block);
  for (int file = 0; file < 64; ++file) {
    char name[32];
    snprintf(name, sizeof name, "fill%d", file);
    FILE* f = fopen(name, "w");
    if (!f) { printf("open failed: %s\n", strerror(errno)); return 3; }
    for (int i = 0; i < 48; ++i) {
      if (fwrite(block, 1, sizeof block, f) != sizeof block || fflush(f) != 0) {
        printf("disk full: %s\n", strerror(errno));
        return 3;
      }
    }
    fclose(f);
  }
  printf("never full\n");
  return 0;
}
)";

constexpr const char* kChecksumProgram = R"(#include <stdio.h>
int main(void) { printf("checksum = 42\n"); return 0; }
)";

// Live processes whose command is `name` (a benchmark's program shows as
// its file name, e.g. "a.out").
std::vector<pid_t> processesNamed(const std::string& name) {
  std::vector<pid_t> found;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string pid = entry.path().filename();
    if (pid.empty() || !std::isdigit(static_cast<unsigned char>(pid[0]))) continue;
    std::ifstream comm(entry.path() / "comm");
    std::string text;
    std::getline(comm, text);
    std::ifstream stat(entry.path() / "stat");
    std::string statText;
    std::getline(stat, statText);
    const size_t close = statText.rfind(')');
    const bool zombie = close != std::string::npos && close + 2 < statText.size() && statText[close + 2] == 'Z';
    if (text == name && !zombie) found.push_back(std::stoi(pid));
  }
  return found;
}

// The worker is SIGKILLed while its program (and the children the program
// forked) run: the run request is crashed and every one of them ends.
Got programDiesWithItsWorker() {
  RowFile file("runner-orphan.c", R"(#include <unistd.h>
int main(void) { fork(); fork(); for (;;) pause(); }
)");  // pause(): the program_runner rule set lets ordinary programs wait
  RunConfig config;
  config.buildCommand = {"$CC", "$IN", "-o", "forkgym-orphan"};  // a name /proc shows as its command
  config.buildOutfile = "forkgym-orphan";
  config.runTimeoutSeconds = 600;
  Env env(gHarness->connection, ownLimits());
  if (auto ok = env.reset("file://" + file.path, &config); !ok) return {false, "reset failed: " + ok.error().message};
  const pid_t worker = env.workerPid();
  Result<RunResult> ran = makeError(Outcome::ServerError, "not run");
  std::thread running([&] { ran = env.run(RunRequest{}); });
  std::vector<pid_t> programs;
  const bool started = eventually([&] { return (programs = processesNamed("forkgym-orphan")).size() == 4; });
  kill(worker, SIGKILL);
  running.join();
  if (!started) return {false, "the program never ran 4 processes (" + std::to_string(programs.size()) + ")"};
  Got got{!ran && ran.error().outcome == Outcome::Crashed,
          ran ? std::string("run answered") : std::string(outcomeName(ran.error().outcome)) + ": " + ran.error().message};
  bool allGone = true;
  for (pid_t pid : programs) allGone = waitUntilGone(pid) && allGone;
  allGone = allGone && eventually([] { return processesNamed("forkgym-orphan").empty(); });
  got.text += allGone ? "; its 4 processes ended with it" : "; a PROGRAM OUTLIVED its worker";
  got.pass = got.pass && allGone;
  for (pid_t pid : processesNamed("forkgym-orphan")) kill(pid, SIGKILL);  // the row failed; what it left goes
  return got;
}

std::vector<Row> rows() {
  std::vector<Row> rows;
  EnvOptions quick;
  quick.stepTimeout = 1500ms;
  EnvOptions cpuLimited;
  cpuLimited.limits.cpuSecondsPerStep = 1;
  EnvOptions smallMemory;
  smallMemory.limits.addressSpaceMb = 1024;
  rows.push_back({"segfault", "crashed SIGSEGV",
                  [] { return injectAction("-forkgym-test-segfault", Outcome::Crashed, "SIGSEGV"); }});
  rows.push_back({"abort (LLVM assertion style)", "crashed SIGABRT",
                  [] { return injectAction("-forkgym-test-abort", Outcome::Crashed, "SIGABRT"); }});
  rows.push_back({"infinite loop, wall clock", "timed_out after 1.5 s",
                  [=] { return injectAction("-forkgym-test-hang", Outcome::TimedOut, "took longer", quick); }});
  rows.push_back({"infinite loop, CPU limit", "timed_out (SIGXCPU) after 1 CPU s", [=] {
                    return injectAction("-forkgym-test-hang", Outcome::TimedOut, "CPU time", cpuLimited);
                  }});
  rows.push_back({"unbounded memory", "out_of_memory at 1 GiB", [=] {
                    return injectAction("-forkgym-test-oom", Outcome::OutOfMemory, "memory", smallMemory);
                  }});
  rows.push_back({"fork bomb", "sandbox_violation clone",
                  [] { return injectAction("-forkgym-test-fork-bomb", Outcome::SandboxViolation, "clone"); }});
  rows.push_back({"fork bomb under the process limit", "limit_reached; episode, copies, zygote go on",
                  forkBombUnderTheProcessLimit});
  rows.push_back({"fork bomb in a runnable worker", "ok: stops at the runnable limit; the program still runs",
                  forkBombInARunnableWorker});
  rows.push_back({"stack overflow", "crashed SIGSEGV",
                  [] { return injectAction("-forkgym-test-stack-overflow", Outcome::Crashed, "SIGSEGV"); }});
  rows.push_back({"pass breaks the IR", "verifier_failed", [] {
                    return injectAction("-forkgym-test-verifier-failure", Outcome::VerifierFailed, "verif");
                  }});
  for (std::string_view name : sandbox::deniedSyscallExamples()) {
    const std::string syscall(name);
    rows.push_back({"denied syscall " + syscall, "sandbox_violation " + syscall,
                    [syscall] { return deniedSyscall(syscall); }});
  }
  rows.push_back({"worker shrinks its region", "sandbox_violation ftruncate", [] { return deniedSyscall("ftruncate"); }});
  // The external-compiler profile: gcc-v0's compiler is hostile_gcc.c.
  rows.push_back({"gcc opens a file outside its directory", "compiler_failed, EACCES; goes on", [] {
                    return hostileCompile("read", {"hostile read /etc/passwd: denied (EACCES)"});
                  }});
  rows.push_back({"gcc writes outside its private /tmp", "compiler_failed, EACCES; goes on", [] {
                    return hostileCompile("write", {"hostile write /dev/shm/forkgym-hostile: denied (EACCES)",
                                                    "hostile write /var/tmp/forkgym-hostile: denied (EACCES)"});
                  }});
  rows.push_back({"gcc executes a program not its own", "compiler_failed, EACCES; goes on", [] {
                    return hostileCompile("exec", {"hostile exec /bin/true: denied (EACCES)"});
                  }});
  rows.push_back({"gcc opens a network socket", "compiler_failed SIGSYS, no connect; goes on", [] {
                    // socket(AF_INET) traps: nothing reaches connect().
                    return hostileCompile("net", {"signal 31"}, {"connect"});
                  }});
  rows.push_back({"gcc crashes", "compiler_failed SIGSEGV; goes on",
                  [] { return hostileCompile("crash", {"signal 11"}); }});
  rows.push_back({"gcc hangs past its time limit", "compiler_failed after 1 s, killed; goes on",
                  [] { return hostileCompile("hang", {"timed out after 1 s"}, {}, "1"); }});
  rows.push_back({"gcc's pass runs, worker SIGKILLed", "crashed; driver and pass end",
                  [] { return passDiesWithItsWorker("cc1", "fghostile-cc1"); }});
  rows.push_back({"gcc's pass leaves its group, worker SIGKILLed", "crashed; driver and pass end",
                  [] { return passDiesWithItsWorker("escape", "fghostile-esc"); }});
  rows.push_back({"fork chain, 4,000 generations", "every generation steps", [] { return forkChain(4000); }});
  rows.push_back({"hostile worker: 4096 pointers to 1 MiB", "protocol_mismatch, not 4 GiB of copies", [] {
                    return hostileWorker("reply-overlapping-pointers", false, Outcome::ProtocolMismatch, "traversal");
                  }});
  rows.push_back({"hostile worker: failure 'ok'", "protocol_mismatch, episode ended", [] {
                    return hostileWorker("reply-failure-with-outcome-ok", false, Outcome::ProtocolMismatch,
                                         "names no failure");
                  }});
  rows.push_back({"hostile worker: dies saying 'ok'", "crashed, not ok", [] {
                    return hostileWorker("last-words-claiming-ok", false, Outcome::Crashed, "not a way to die");
                  }});
  rows.push_back({"hostile worker: says it died, lingers", "crashed, the client ends it", [] {
                    return hostileWorker("last-words-then-lingers", false, Outcome::Crashed, "dead (not really)");
                  }});
  rows.push_back({"hostile worker: empty doorbell record", "protocol_mismatch", [] {
                    return hostileWorker("ring-empty-record", false, Outcome::ProtocolMismatch, "empty doorbell");
                  }});
  rows.push_back({"hostile worker: malformed fork reply", "protocol_mismatch, no exception", [] {
                    return hostileWorker("fork-reply-root-pointer-out-of-bounds", true, Outcome::ProtocolMismatch,
                                         "malformed fork reply");
                  }});
  rows.push_back({"hostile worker: unsealed region in a fork", "protocol_mismatch (no SIGBUS later)", [] {
                    return hostileWorker("fork-region-is-unsealed", true, Outcome::ProtocolMismatch, "not sealed");
                  }});
  rows.push_back({"hostile worker: fork doorbell is a pipe", "protocol_mismatch", [] {
                    return hostileWorker("fork-doorbell-is-a-pipe", true, Outcome::ProtocolMismatch, "doorbell");
                  }});
  rows.push_back({"hostile worker: fork pidfd of an unrelated process", "protocol_mismatch, nothing signalled",
                  hostileForkPidfd});
  rows.push_back({"SIGINT during a step", "interrupted, worker killed, reproducer kept", sigintDuringStep});
  rows.push_back({"fork with no descriptors left", "resource_exhausted, episode goes on", forkOutOfDescriptors});
  rows.push_back({"client process forks mid-episode", "child refused the parent's episode", clientForksMidEpisode});
  rows.push_back({"FIFO named as a benchmark", "benchmark_error at once", [] {
                    const std::string fifo = gHarness->dir + "/pipe.bc";
                    mkfifo(fifo.c_str(), 0666);
                    Got got = resetFails("file://" + fifo, Outcome::BenchmarkError, {"not a regular file", "FIFO"});
                    unlink(fifo.c_str());
                    return got;
                  }});
  rows.push_back({"/dev/zero named as a benchmark", "benchmark_error at once", [] {
                    return resetFails("file:///dev/zero", Outcome::BenchmarkError, {"not a regular file", "device"});
                  }});
  rows.push_back({"bitcode claiming 2^28 types", "benchmark_error out of memory (1 GiB)", [] {
                    RowFile bomb("types.bc", bitcodeTypeBomb());
                    return resetFails("file://" + bomb.path, Outcome::BenchmarkError, {"out of memory"});
                  }});
  rows.push_back({"preprocessor bomb", "benchmark_error out of memory (1 GiB)", [] {
                    RowFile bomb("bomb.c", preprocessorBomb());
                    return resetFails("file://" + bomb.path, Outcome::BenchmarkError, {"out of memory"});
                  }});
  rows.push_back({"program opens files outside its directory", "ok: every attempt denied (EACCES); goes on", [] {
                    return runnerRow("escape", kEscapeProgram, Outcome::Ok,
                                     {"read /etc/passwd: denied", "read /proc/1/environ: denied",
                                      "read ../../etc/hostname: denied", "write /tmp/forkgym-escape: denied",
                                      "write ../forkgym-escape: denied", "write /dev/shm/forkgym-escape: denied",
                                      "own directory: writable"});
                  }});
  rows.push_back({"program opens a network socket", "sandbox_violation SIGSYS; goes on", [] {
                    return runnerRow("network", kNetworkProgram, Outcome::SandboxViolation,
                                     {"before the socket", "SIGSYS"});
                  }});
  rows.push_back({"program fork-bombs", "timed_out after 2 s; its processes end", [] {
                    return runnerRow("forkbomb", kForkBombProgram, Outcome::TimedOut, {"bombing", "timed out"});
                  }});
  rows.push_back({"program runs forever", "timed_out after 1 s; goes on", [] {
                    return runnerRow("forever", kForeverProgram, Outcome::TimedOut, {"timed out after 1 s"}, 1);
                  }});
  rows.push_back({"program writes a 1 GiB file", "output_too_large SIGXFSZ; goes on", [] {
                    return runnerRow("hugefile", kHugeFileProgram, Outcome::OutputTooLarge, {"SIGXFSZ"});
                  }});
  rows.push_back({"program fills the disk", "ok, exit 3 ENOSPC; the next run has the space back", [] {
                    return runnerRow("filldisk", kFillDiskProgram, Outcome::Ok,
                                     {"disk full: No space left on device", "exited with status 3"}, 10,
                                     [](Env& env) -> std::string {
                                       auto again = env.run(RunRequest{});
                                       if (!again || !again->built || again->runs.size() != 1) return "NO SECOND RUN";
                                       return again->runs[0].stdoutData.find("disk full") != std::string::npos
                                                  ? ""
                                                  : "second run: " + again->runs[0].stdoutData;
                                     });
                  }});
  rows.push_back({"program runs 30 times", "ok 30 times, same stdout", [] {
                    return runnerRow("checksum", kChecksumProgram, Outcome::Ok, {"checksum = 42"}, 10,
                                     [](Env& env) -> std::string {
                                       RunRequest request;
                                       request.repetitions = 30;
                                       request.warmups = 2;
                                       auto ran = env.run(request);
                                       if (!ran || ran->runs.size() != 30) return "NOT 30 RUNS";
                                       for (const auto& run : ran->runs) {
                                         if (run.stdoutData != "checksum = 42\n") return "stdout " + run.stdoutData;
                                       }
                                       return "";
                                     });
                  }});
  rows.push_back({"worker SIGKILLed while its program runs", "crashed; the program and its children end",
                  programDiesWithItsWorker});
  rows.push_back({"load past its timeout", "benchmark_error; the compiler is killed too", loadPastItsTimeout});
  rows.push_back({"client goes away mid-load", "the load and its compiler end", clientGoesAwayMidLoad});
  rows.push_back({"slow load", "blocks no other client", slowLoadBlocksNobody});
  rows.push_back({"benchmark edited between resets", "the new program, a new content hash",
                  benchmarkEditedBetweenResets});
  rows.push_back({"garbage in the shared region", "invalid_request, episode goes on", garbageInRegion});
  rows.push_back({"fd sent on the worker's doorbell", "invalid_request, fd dropped, goes on", fdsToWorker});
  rows.push_back({"fd sent to the zygote", "client dropped", fdsToZygote});
  rows.push_back({"worker closes its channel", "session_closed, not timed_out; worker ends with its client",
                  workerClosesChannel});
  rows.push_back({"zygote SIGKILL mid-episode", "episodes go on; next reset gets a new zygote", zygoteKilled});
  rows.push_back({"client SIGKILL (shared zygote)", "worker and fork end",
                  [] { return clientKilled(false, false); }});
  rows.push_back({"client SIGKILL (private zygote)", "worker, fork and zygote end",
                  [] { return clientKilled(true, false); }});
  rows.push_back({"hung worker, then client dies", "worker (inside a step) and fork end",
                  [] { return clientKilled(false, true); }});
  return rows;
}

const std::vector<Row>& allRows() {
  static const std::vector<Row> table = rows();
  return table;
}

// ------------------------------------------------------------ the suite --

class FaultMatrix : public ::testing::TestWithParam<size_t> {
 protected:
  static void SetUpTestSuite() {
    // Orphans of killed clients and zygotes come to us, so /proc shows them.
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    gHarness = new Harness();
    char dir[] = "/tmp/fgtest-matrix-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    // Open to all: a server started as root loads benchmarks (and opens the
    // test load gate) as its sandbox user, nobody.
    ASSERT_EQ(chmod(dir, 0755), 0);
    gHarness->dir = dir;
    gHarness->socket = gHarness->dir + "/server.sock";
    gHarness->gate = std::make_unique<LoadGate>(gHarness->dir, "gated");
    ASSERT_TRUE(gHarness->gate->made);
    ASSERT_FALSE(gHarness->gcc.path().empty()) << "the hostile gcc could not be set up";
    // Loads limited to 1 GiB (below the workers' default), so the memory
    // bombs end the same way on every machine.
    std::vector<std::string> arguments = {"--preload", fileUri("crc32.c"), "--load-memory-mb", "1024"};
    for (auto& argument : gHarness->gate->serverArguments()) arguments.push_back(argument);
    {
      const ScopedVariable gccIs = gHarness->gcc.asServersGcc();
      gHarness->zygote = startSocketServer(gHarness->socket, arguments);
    }
    ASSERT_GT(gHarness->zygote, 0) << "server did not start";
    auto connection = Connection::connect(gHarness->socket);
    ASSERT_TRUE(connection) << connection.error().message;
    gHarness->connection = *connection;
    auto description = gHarness->connection->describe();
    ASSERT_TRUE(description);
    gHarness->description = *description;
    auto gcc = gHarness->connection->describe("gcc");
    ASSERT_TRUE(gcc) << gcc.error().message;
    gHarness->gccDescription = *gcc;
    // Replays name the server's gcc: the hostile one.
    ASSERT_EQ(gHarness->gccDescription->replay.program, gHarness->gcc.path());
    gHarness->bystander = std::make_unique<Env>(gHarness->connection);
    ASSERT_TRUE(gHarness->bystander->reset(fileUri("crc32.c")));
  }

  static void TearDownTestSuite() {
    printTable();
    if (!gHarness) return;
    gHarness->bystander.reset();
    gHarness->connection.reset();
    if (gHarness->zygote > 0) {
      kill(gHarness->zygote, SIGTERM);
      waitpid(gHarness->zygote, nullptr, 0);
    }
    gHarness->gate.reset();
    rmdir(gHarness->dir.c_str());
    delete gHarness;
    gHarness = nullptr;
  }

  static void printTable() {
    std::ostringstream out;
    size_t nameWidth = 4, expectedWidth = 8;
    for (const auto& row : printed()) {
      nameWidth = std::max(nameWidth, row.name.size());
      expectedWidth = std::max(expectedWidth, row.expected.size());
    }
    auto pad = [](std::string text, size_t width) {
      text.resize(std::max(width, text.size()), ' ');
      return text;
    };
    size_t passed = 0;
    out << "\nFault-injection matrix\n"
        << pad("row", nameWidth) << " | " << pad("expected", expectedWidth) << " | pass | time ms | leaks | got\n";
    for (const auto& row : printed()) {
      passed += row.pass;
      std::string got = row.got.substr(0, 110);
      std::replace(got.begin(), got.end(), '\n', ' ');
      char time[16];
      std::snprintf(time, sizeof(time), "%7lld", row.ms);
      out << pad(row.name, nameWidth) << " | " << pad(row.expected, expectedWidth) << " | "
          << (row.pass ? "yes " : "NO  ") << " | " << time << " | " << (row.leaks.empty() ? "none " : row.leaks)
          << " | " << got << "\n";
    }
    out << passed << " of " << printed().size() << " rows passed\n";
    std::fputs(out.str().c_str(), stdout);
    std::ofstream(FORKGYM_MATRIX_OUTPUT) << out.str();
  }
};

TEST_P(FaultMatrix, FaultEndsOnlyItsEpisodeAndLeaksNothing) {
  ASSERT_TRUE(gHarness && gHarness->bystander);
  const Row& row = allRows()[GetParam()];
  // A settled baseline. The zygote answers requests in order, so once it
  // answers a status request it has sent (and closed) every descriptor of
  // earlier replies; it has no spare left to fork and no load under way; and
  // its only children are the bystander's worker and its spares (and the
  // reaper of their PID namespace) — a worker an earlier row ended is gone
  // (a killed one stays a child until reaped).
  ASSERT_TRUE(eventually([] {
    auto status = gHarness->connection->status();
    return status && status->sparesWanted == 0 && status->pendingLoads == 0 &&
           workersOf(gHarness->zygote) == 1 + status->spareBenchmarks.size();
  }));
  const Snapshot before = snapshot(gHarness->zygote, gHarness->gcc);

  const auto started = Clock::now();
  Got got = row.run();
  const long long ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started).count();

  // Nothing else disturbed: the bystander steps, the zygote starts episodes.
  const uint32_t mem2reg[] = {gHarness->action("-mem2reg")};
  auto bystander = gHarness->bystander->step(mem2reg, std::vector<std::string>{"IrInstructionCount"});
  Env fresh(gHarness->connection);
  const bool zygoteServes = fresh.reset(fileUri("crc32.c")).ok();
  fresh.close();
  if (!bystander.ok()) got.text += " | BYSTANDER: " + bystander.message;
  if (!zygoteServes) got.text += " | ZYGOTE no longer serves";

  // Nothing leaked. What the row ended dies and is reaped asynchronously
  // (a SIGKILL, then the zygote's SIGCHLD): polled until it has, the hang
  // guard catching what never ends.
  Snapshot after;
  eventually([&] {
    after = snapshot(gHarness->zygote, gHarness->gcc);
    return after == before;
  });
  const std::string leaks = describeLeaks(before, after);
  const bool pass = got.pass && bystander.ok() && zygoteServes && leaks.empty();
  printed().push_back({row.name, row.expected, got.text, ms, leaks, pass});

  EXPECT_TRUE(got.pass) << row.name << ": expected " << row.expected << ", got " << got.text;
  EXPECT_TRUE(bystander.ok()) << bystander.message;
  EXPECT_TRUE(zygoteServes);
  EXPECT_EQ(leaks, "") << row.name;
}

std::string rowName(const ::testing::TestParamInfo<size_t>& info) {
  std::string name;
  for (char c : allRows()[info.param].name) name += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  return std::to_string(info.param) + "_" + name;
}

INSTANTIATE_TEST_SUITE_P(Rows, FaultMatrix, ::testing::Range<size_t>(0, allRows().size()), rowName);

}  // namespace
}  // namespace forkgym::testing
