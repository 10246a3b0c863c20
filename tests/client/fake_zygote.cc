// fake_zygote: a forkgym server that lies, for the client's identity checks.
//
//   fake_zygote SOCKET SCENARIO FOREIGN_PID
//
// Listens on SOCKET, prints "ready <pid>" on stdout once it does, serves one
// client, and exits when that client hangs up (killing what it started).
// It speaks the real protocol (hello, describe with one action, new
// sessions) and forks a real worker per session in its own process group;
// the worker answers steps with empty results. SCENARIO picks the lie:
//   session-foreign-pidfd  a new session's pidfd names FOREIGN_PID (and the
//                          worker exits on its first step)
//   fork-bystander-pidfd   a fork reply's pidfd names another child of this
//                          zygote, in another process group (another
//                          client's worker, say)
//   honest                 no lie (a server for the client's socket checks)
// Everything else is honest, so only the lie can make the client refuse.
// (Lying workers are tests/hostile's business; this is the zygote's side,
// and a server listening on a path, which that harness does not do.)
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "ipc/action_table_hash.h"
#include "ipc/channel.h"
#include "ipc/control_socket.h"
#include "ipc/message_area.h"
#include "ipc/protocol.capnp.h"

namespace {

using namespace forkgym;

std::string g_scenario;
pid_t g_foreign = -1;
pid_t g_bystander = -1;

int pidfdOpen(pid_t pid) { return static_cast<int>(syscall(SYS_pidfd_open, pid, 0)); }

[[noreturn]] void serveWorker(Channel channel) {
  for (;;) {
    auto request = channel.receiveRequest();
    if (!request) _exit(0);
    auto root = request->reader->getRoot<proto::Request>();
    capnp::MallocMessageBuilder reply;
    std::vector<UniqueFd> fds;
    if (root.isFork() && g_scenario == "fork-bystander-pidfd") {
      const pid_t named = g_bystander;
      auto created = Channel::create(channel.region().size());
      if (!created) _exit(3);
      auto fork = reply.initRoot<proto::Reply>().initFork();
      fork.setPid(named);
      fork.setRegionBytes(created->first.region().size());
      fds.push_back(std::move(created->second.memfd));
      fds.push_back(std::move(created->second.doorbell));
      fds.emplace_back(pidfdOpen(named));
    } else if (g_scenario == "session-foreign-pidfd") {
      _exit(0);  // the episode ends: the client kills what it believes is this worker
    } else {
      reply.initRoot<proto::Reply>().initStep();
    }
    std::vector<int> raw;
    for (auto& fd : fds) raw.push_back(fd.get());
    if (!channel.sendReply(reply, raw)) _exit(0);
  }
}

void answer(int client, capnp::MallocMessageBuilder& reply, std::span<const int> fds = {}) {
  if (!sendFrame(client, reply, fds)) _exit(0);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: fake_zygote SOCKET SCENARIO FOREIGN_PID\n");
    return 2;
  }
  const std::string path = argv[1];
  g_scenario = argv[2];
  g_foreign = static_cast<pid_t>(std::stol(argv[3]));
  signal(SIGPIPE, SIG_IGN);

  if (g_scenario == "fork-bystander-pidfd") {
    g_bystander = fork();
    if (g_bystander == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      setpgid(0, 0);
      for (;;) pause();
    }
    setpgid(g_bystander, g_bystander);
  }

  auto listener = listenUnix(path);
  if (!listener) {
    std::fprintf(stderr, "fake_zygote: %s\n", listener.error().message.c_str());
    return 1;
  }
  std::printf("ready %d\n", getpid());
  std::fflush(stdout);
  pollfd pfd{listener->get(), POLLIN, 0};
  poll(&pfd, 1, -1);
  UniqueFd client(accept4(listener->get(), nullptr, nullptr, SOCK_CLOEXEC));
  std::vector<pid_t> workers;

  for (;;) {
    auto frame = recvFrame(client.get(), std::nullopt, 0);
    if (!frame) break;
    capnp::FlatArrayMessageReader reader(frame->words, peerReaderOptions(frame->words.size()));
    auto request = reader.getRoot<proto::ControlRequest>();
    capnp::MallocMessageBuilder reply;
    auto root = reply.initRoot<proto::ControlReply>();
    if (request.isHello()) {
      auto hello = root.initHello();
      hello.setProtocolVersion(proto::PROTOCOL_VERSION);
      auto backends = hello.initBackends(1);
      backends[0].setName(kActionTableBackend);
      backends[0].setActionTableHash(kActionTableHash);
      answer(client.get(), reply);
    } else if (request.isDescribeBackend()) {
      auto actions = root.initDescription().initActions(1);
      actions[0].setFlag("-mem2reg");
      actions[0].setReplay("mem2reg");
      answer(client.get(), reply);
    } else if (request.isWorkerExit()) {
      root.initWorkerExit().setKnown(false);
      answer(client.get(), reply);
    } else if (request.isNewSession()) {
      auto created = Channel::create();
      if (!created) return 3;
      auto& [workerChannel, ends] = *created;
      const pid_t worker = fork();
      if (worker == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        setpgid(0, 0);
        client.reset();
        ends.memfd.reset();
        ends.doorbell.reset();
        serveWorker(std::move(workerChannel));
      }
      setpgid(worker, worker);
      workers.push_back(worker);
      const bool lie = g_scenario == "session-foreign-pidfd";
      auto session = root.initSession();
      session.setPid(lie ? g_foreign : worker);
      session.setRegionBytes(workerChannel.region().size());
      session.setBenchmark(request.getNewSession().getBenchmark());
      UniqueFd pidfd(pidfdOpen(lie ? g_foreign : worker));
      const int fds[] = {ends.memfd.get(), ends.doorbell.get(), pidfd.get()};
      answer(client.get(), reply, fds);
    }
  }
  for (pid_t worker : workers) kill(-worker, SIGKILL);
  if (g_bystander > 0) kill(g_bystander, SIGKILL);
  while (wait(nullptr) > 0) {
  }
  return 0;
}
