// Loading benchmarks (points 6 and 7 of the concurrency work): a load runs in
// a loader child that sits in the zygote's poll set, so a client waits only
// for its own load; only regular files are loaded; every loader and the
// compiler it runs has limits, dies on timeout, and dies when the client that
// asked for it goes.
//
// A slow load is made controllable with the test build's load gate
// (tests/forkserver/load_fixture.h): the test opening the gate's write end
// returns exactly when a loader waits behind it, which is how the tests know
// a load is under way without sleeping.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <fstream>
#include <optional>
#include <sstream>

#include "ipc/control_socket.h"
#include "tests/forkserver/runtime_fixture.h"
#include "tests/forkserver/load_fixture.h"

namespace forkgym::testing {
namespace {

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

int64_t instructionCount(Env& env) {
  auto result = env.observe(std::vector<std::string>{"IrInstructionCount"});
  EXPECT_TRUE(result.ok()) << result.message;
  return result.ok() ? asInt(result.observations[0]) : -1;
}

// How many clients wait for the load of `uri` (0: no such load under way).
uint32_t waitersFor(Connection& connection, const std::string& uri) {
  auto status = connection.status();
  EXPECT_TRUE(status) << status.error().message;
  if (!status) return 0;
  for (const auto& load : status->loading) {
    if (load.benchmark == uri) return load.waiters;
  }
  return 0;
}

// Client threads of a test, joined however the test ends; before joining,
// the gate is opened for good, so no thread waits on it forever.
struct ClientThreads {
  std::string fifo;
  std::vector<std::thread> threads;
  ~ClientThreads() {
    const int writer = open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (writer >= 0) {
      for (size_t i = 0; i < threads.size(); ++i) (void)!write(writer, "x", 1);
      close(writer);
    }
    for (auto& thread : threads) {
      if (thread.joinable()) thread.join();
    }
  }
};

TEST(Loads, AClientWaitsOnlyForItsOwnLoad) {
  TestDir dir;
  const LoadGate loadGate(dir.path, "gated-");
  ASSERT_TRUE(loadGate.made);
  const std::string gated = dir.write("gated-small.c", readFile(dataPath("small.c")));
  std::vector<std::string> arguments = loadGate.serverArguments();
  arguments.insert(arguments.end(), {"--preload", fileUri("crc32.c")});
  SocketServer server(arguments);
  auto a = server.connect();
  ASSERT_TRUE(a);

  std::optional<Status> aReset;
  int64_t aCount = -1;
  ClientThreads clients{loadGate.fifo, {}};
  clients.threads.emplace_back([&] {
    Env env(a);
    aReset = env.reset("file://" + gated);
    if (*aReset) aCount = instructionCount(env);
  });
  UniqueFd gate = loadGate.waitForLoader();
  ASSERT_TRUE(gate) << "A's loader never reached the gate";

  // A's load is stuck; B is served all the same: its hello, the
  // description, a reset of a cached benchmark, and a load of its own.
  auto b = server.connect();
  ASSERT_TRUE(b);
  auto description = b->describe();
  ASSERT_TRUE(description) << description.error().message;
  Env envB(b);
  auto cached = envB.reset(fileUri("crc32.c"));
  ASSERT_TRUE(cached) << cached.error().message;
  const uint32_t mem2reg[] = {static_cast<uint32_t>((*description)->findAction("-mem2reg"))};
  EXPECT_TRUE(envB.step(mem2reg).ok());
  auto own = envB.reset(fileUri("small.c"));
  ASSERT_TRUE(own) << own.error().message;
  const int64_t expected = instructionCount(envB);

  ASSERT_EQ(write(gate.get(), "x", 1), 1);
  gate.reset();
  clients.threads[0].join();
  ASSERT_TRUE(aReset.has_value() && *aReset) << aReset->error().message;
  EXPECT_EQ(aCount, expected) << "A gets the program it asked for";
}

TEST(Loads, ClientsLoadingTheSameBenchmarkShareOneLoad) {
  TestDir dir;
  const LoadGate loadGate(dir.path, "gated-");
  ASSERT_TRUE(loadGate.made);
  const std::string uri = "file://" + dir.write("gated-small.c", readFile(dataPath("small.c")));
  SocketServer server(loadGate.serverArguments());
  auto observer = server.connect();
  ASSERT_TRUE(observer);

  constexpr int kClients = 3;
  std::vector<std::shared_ptr<Connection>> clients;
  for (int i = 0; i < kClients; ++i) clients.push_back(server.connect());
  std::vector<int64_t> counts(kClients, -1);
  ClientThreads running{loadGate.fifo, {}};
  auto& threads = running.threads;
  threads.emplace_back([&] {
    Env env(clients[0]);
    if (env.reset(uri)) counts[0] = instructionCount(env);
  });
  UniqueFd gate = loadGate.waitForLoader();
  ASSERT_TRUE(gate);
  for (int i = 1; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      Env env(clients[i]);
      if (env.reset(uri)) counts[i] = instructionCount(env);
    });
  }
  // The zygote's own count of who waits for this load.
  ASSERT_TRUE(eventually([&] { return waitersFor(*observer, uri) == kClients; }))
      << "waiters: " << waitersFor(*observer, uri);
  // One byte opens the gate for one loader: a second loader would wait
  // forever, and its clients with it.
  ASSERT_EQ(write(gate.get(), "x", 1), 1);
  gate.reset();
  for (auto& thread : threads) thread.join();
  for (int i = 0; i < kClients; ++i) EXPECT_GT(counts[i], 0) << "client " << i;
  EXPECT_EQ(counts[1], counts[0]);
  EXPECT_EQ(counts[2], counts[0]);
}

// A FIFO, a device, a socket named as a benchmark is refused at once, before
// anything opens it (opening a FIFO blocks; /dev/zero never ends).
TEST(Loads, OnlyRegularFilesAndDirectoriesAreBenchmarks) {
  TestDir dir;
  const std::string fifoBc = dir.path + "/pipe.bc";
  const std::string fifoC = dir.path + "/pipe.c";
  ASSERT_EQ(mkfifo(fifoBc.c_str(), 0666), 0);
  ASSERT_EQ(mkfifo(fifoC.c_str(), 0666), 0);
  const std::string zero = dir.path + "/zero.bc";
  ASSERT_EQ(symlink("/dev/zero", zero.c_str()), 0);
  const std::string socketPath = dir.path + "/socket.c";
  UniqueFd socketFd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::snprintf(address.sun_path, sizeof(address.sun_path), "%s", socketPath.c_str());
  ASSERT_EQ(bind(socketFd.get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);

  auto connection = Connection::spawn();
  ASSERT_TRUE(connection) << connection.error().message;
  for (const auto& [path, kind] : std::vector<std::pair<std::string, std::string>>{
           {fifoBc, "FIFO"}, {fifoC, "FIFO"}, {zero, "device"}, {"/dev/zero", "device"}, {socketPath, "socket"}}) {
    SCOPED_TRACE(path);
    Env env(*connection);
    auto status = env.reset("file://" + path);
    ASSERT_FALSE(status);
    EXPECT_EQ(status.error().outcome, Outcome::BenchmarkError) << outcomeName(status.error().outcome);
    EXPECT_NE(status.error().message.find("not a regular file"), std::string::npos) << status.error().message;
    EXPECT_NE(status.error().message.find(kind), std::string::npos) << status.error().message;
  }
  Env env(*connection);
  EXPECT_TRUE(env.reset(fileUri("crc32.c")));
}

TEST(Loads, LoadsThatBlowUpMemoryEndAsClearErrorsWhileOthersCarryOn) {
  TestDir dir;
  const std::string bitcode = dir.write("types.bc", bitcodeTypeBomb());
  const std::string bomb = dir.write("bomb.c", preprocessorBomb());
  SocketServer server({"--load-memory-mb", "512"});
  auto other = server.connect();
  auto attacker = server.connect();
  ASSERT_TRUE(other && attacker);
  Env bystander(other);
  ASSERT_TRUE(bystander.reset(fileUri("crc32.c")));
  const int64_t before = instructionCount(bystander);

  for (const std::string& path : {bitcode, bomb}) {
    SCOPED_TRACE(path);
    Env env(attacker);
    auto status = env.reset("file://" + path);
    ASSERT_FALSE(status);
    EXPECT_EQ(status.error().outcome, Outcome::BenchmarkError) << outcomeName(status.error().outcome);
    EXPECT_NE(status.error().message.find("out of memory"), std::string::npos) << status.error().message;
    EXPECT_NE(status.error().message.find("512 MB"), std::string::npos) << status.error().message;
    EXPECT_LT(status.error().message.size(), 2000u) << "no stack dumps in the message";
  }
  // Nobody else noticed: the bystander's episode and the zygote carry on.
  EXPECT_EQ(instructionCount(bystander), before);
  Env again(attacker);
  EXPECT_TRUE(again.reset(fileUri("small.c")));
}

// Processes started for a load that are still alive: the loader is a
// child of the zygote; the compiler it runs names the source on its
// command line.
std::vector<pid_t> loadProcesses(pid_t zygote, const std::string& source) {
  std::vector<pid_t> found = compilersOf(source);
  for (pid_t pid : descendantsOf(zygote)) {
    std::ifstream comm("/proc/" + std::to_string(pid) + "/comm");
    std::string name;
    comm >> name;
    if (name.starts_with("clang")) found.push_back(pid);
  }
  return found;
}

// SIGKILL takes effect asynchronously: waits for it to (the hang guard is
// below the loader's own per-tool limit, which would end the compiler too).
bool waitUntilNoLoadProcesses(pid_t zygote, const std::string& source) {
  return eventually([&] { return loadProcesses(zygote, source).empty(); });
}

TEST(Loads, ALoadPastItsTimeoutIsKilledWithTheCompilerItRuns) {
  TestDir dir;
  const BlockingSource stuck(dir.path, "stuck");
  ASSERT_TRUE(stuck.made);
  const std::string& source = stuck.source;
  ServerOptions options;
  options.extraArgs = {"--load-timeout", "2"};
  auto connection = Connection::spawn(options);
  ASSERT_TRUE(connection) << connection.error().message;
  Env env(*connection);
  auto status = env.reset("file://" + source);
  ASSERT_FALSE(status);
  EXPECT_EQ(status.error().outcome, Outcome::BenchmarkError);
  EXPECT_NE(status.error().message.find("took longer than 2 s"), std::string::npos) << status.error().message;
  EXPECT_TRUE(waitUntilNoLoadProcesses((*connection)->serverPid(), source))
      << "a compiler outlived its load's timeout";
  stuck.release();
  EXPECT_TRUE(env.reset(fileUri("crc32.c"))) << "the zygote carries on";
}

std::string linkOf(const std::string& path) {
  char target[256] = {};
  const ssize_t n = readlink(path.c_str(), target, sizeof(target) - 1);
  return n > 0 ? std::string(target, static_cast<size_t>(n)) : std::string();
}

// A compiler run by a loader holds its standard streams (and, preprocessing,
// the dependency pipe on 3) and the files it reads — none of the zygote's
// sockets, none of its workers' channels, not the loader's own result pipe.
TEST(Loads, ACompilerHoldsNothingOfTheZygoteOrItsLoader) {
  TestDir dir;
  const BlockingSource held(dir.path, "held");
  ASSERT_TRUE(held.made);
  const std::string& source = held.source;
  SocketServer server;
  auto connection = server.connect();
  ASSERT_TRUE(connection);
  Env bystander(server.connect());
  ASSERT_TRUE(bystander.reset(fileUri("crc32.c")));  // the zygote holds channel ends and sockets

  std::optional<Status> reset;
  std::thread client([&] {
    Env env(connection);
    reset = env.reset("file://" + source);
  });
  UniqueFd writer = openOnceRead(held.fifo);
  ASSERT_TRUE(writer) << "the load never started";
  // The preprocessing clang names the source; the loader is its parent, and
  // every clang the loader runs (the compiler waits for the text meanwhile)
  // is checked.
  pid_t loader = -1;
  for (pid_t pid : compilersOf(source)) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string skip;
    pid_t parent = -1;
    stat >> skip >> skip >> skip >> parent;
    if (std::ifstream("/proc/" + std::to_string(parent) + "/comm").good() && parent != server.pid()) loader = parent;
  }
  ASSERT_GT(loader, 0);
  const std::string resultPipe = linkOf("/proc/" + std::to_string(loader) + "/fd/3");
  ASSERT_FALSE(resultPipe.empty());
  std::ifstream children("/proc/" + std::to_string(loader) + "/task/" + std::to_string(loader) + "/children");
  int compilers = 0;
  for (pid_t compiler; children >> compiler;) {
    ++compilers;
    std::set<std::string> held;
    for (const auto& fd : listDir("/proc/" + std::to_string(compiler) + "/fd")) {
      const std::string link = linkOf("/proc/" + std::to_string(compiler) + "/fd/" + fd);
      // Beyond its streams, only files it opened itself (the header it reads).
      if (std::stoi(fd) > 3) EXPECT_TRUE(link.starts_with("/") && !link.starts_with("/memfd:")) << fd << ": " << link;
      held.insert(link);
    }
    EXPECT_FALSE(held.contains(resultPipe)) << "a compiler holds its loader's result pipe " << resultPipe;
    for (const auto& link : held) {
      EXPECT_FALSE(link.starts_with("socket:") || link.starts_with("anon_inode:")) << link;
    }
  }
  EXPECT_EQ(compilers, 2) << "the preprocessor, and the compiler started alongside it";

  writer.reset();  // the included header ends: the load completes
  client.join();
  ASSERT_TRUE(reset.has_value());
  EXPECT_TRUE(*reset) << reset->error().message;
}

TEST(Loads, AClientThatGoesAwayTakesItsLoadWithIt) {
  TestDir dir;
  const BlockingSource abandoned(dir.path, "abandoned");
  ASSERT_TRUE(abandoned.made);
  const std::string& source = abandoned.source;
  // Only the client going away may end this load, not its deadline.
  SocketServer server({"--load-timeout", "3600"});
  auto observer = server.connect();
  ASSERT_TRUE(observer);

  // A raw client: hello, then a session request it never waits for.
  auto fd = connectUnix(server.socketPath());
  ASSERT_TRUE(fd) << fd.error().message;
  auto requested = requestSessionWithoutWaiting(fd->get(), "file://" + source);
  ASSERT_TRUE(requested) << requested.error().message;
  // The compiler has the included FIFO open for reading once we can open its
  // write end (and our holding it keeps the compiler blocked in read()).
  UniqueFd writeEnd = openOnceRead(abandoned.fifo);
  ASSERT_TRUE(writeEnd) << "the load never started";
  ASSERT_FALSE(loadProcesses(server.pid(), source).empty()) << "the load should be running now";

  fd->reset();  // the client goes away
  EXPECT_TRUE(waitUntilNoLoadProcesses(server.pid(), source))
      << "the loader and its compiler outlived the client that asked for them";
  writeEnd.reset();  // (lets a compiler that outlived it finish)
  // The zygote still serves others.
  Env env(observer);
  EXPECT_TRUE(env.reset(fileUri("crc32.c")));
}

}  // namespace
}  // namespace forkgym::testing

namespace forkgym::testing {
namespace {

// Benchmark roots: with --benchmark-root, compiling reads nothing outside the
// roots and the system headers, and no error echoes a file from outside.
TEST(BenchmarkRoots, CompilingReadsAndEchoesNothingFromOutsideTheRoots) {
  TestDir outside;
  const std::string marker = "FGTEST-SECRET-LINE-4f1c";
  const std::string secret = outside.write("secret", marker + " 1;\nsecond line\n");
  TestDir root;
  ASSERT_EQ(mkdir((root.path + "/linked").c_str(), 0755), 0);  // searchable by the sandbox user
  ASSERT_EQ(symlink(secret.c_str(), (root.path + "/linked/a.c").c_str()), 0);
  root.write("includes.c", "#include \"" + secret + "\"\nint main(void) { return 0; }\n");
  root.write("embeds.c", "const char s[] = {\n#embed \"" + secret + "\"\n};\nint main(void) { return s[0]; }\n");
  const std::string climb = "../" + outside.path.substr(outside.path.rfind('/') + 1) + "/secret";
  root.write("climbs.c", "#include \"" + climb + "\"\nint main(void) { return 0; }\n");
  root.write("fine.h", "static int fine(void) { return 42; }\n");
  root.write("fine.c", "#include <stdio.h>\n#include \"fine.h\"\nint main(void) { printf(\"%d\", fine()); return 0; }\n");

  ServerOptions options;
  options.benchmarkRoots = {root.path};
  auto connection = Connection::spawn(options);
  ASSERT_TRUE(connection) << connection.error().message;
  for (const std::string name : {"linked/", "includes.c", "embeds.c", "climbs.c"}) {
    SCOPED_TRACE(name);
    Env env(*connection);
    auto status = env.reset("file://" + root.path + "/" + name);
    ASSERT_FALSE(status) << "compiled a benchmark that reads a file outside the root";
    EXPECT_EQ(status.error().outcome, Outcome::BenchmarkError) << outcomeName(status.error().outcome);
    EXPECT_EQ(status.error().message.find(marker), std::string::npos) << status.error().message;
    EXPECT_NE(status.error().message.find("outside the benchmark roots"), std::string::npos) << status.error().message;
    EXPECT_NE(status.error().message.find(secret), std::string::npos) << "names what it refused: " << status.error().message;
  }
  Env env(*connection);
  auto fine = env.reset("file://" + root.path + "/fine.c");
  EXPECT_TRUE(fine) << "a source in the root using its own and system headers compiles: " << fine.error().message;
}

}  // namespace
}  // namespace forkgym::testing
