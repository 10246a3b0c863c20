// forkgym-hostile-server: a test-only stand-in for forkgym-server whose
// workers are compromised, for the hostile-worker harness
// (tests/hostile/hostile_worker_test.cc, tests/python/test_hostile_worker.py).
//
// It speaks the real control protocol (hello, describe, newSession,
// workerExit, with the real action table and spaces) on the connection a
// client spawned it with, so the real C++ and Python clients drive it as they
// would forkgym-server. Each session's worker is a plain child process — no
// LLVM, no sandbox — that answers honestly (plausible observations of the
// right types) until the request its attack waits for; then it plays the
// attack: anything into the shared region, anything on the doorbell, any
// descriptors, or no reply at all.
//
// Lifecycle (the server process, then one child per session):
//   1. Started by Connection::spawn() with --connected-fd N and
//      --attack NAME (and --victim-pid PID for attacks that hand over a
//      pidfd of an unrelated process; --attacked-sessions N to make only the
//      first N sessions' workers attack); unknown options are ignored.
//   2. Serves control frames until the client hangs up, then exits; its
//      workers die with it (PR_SET_PDEATHSIG), as do their forks.
//   3. A worker serves its channel: honest replies, the attack once, then
//      honest replies again (or it lingers, or exits, as the attack says)
//      until its client closes the doorbell.
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <capnp/message.h>
#include <capnp/serialize.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "forkserver/control_dispatch.h"
#include "forkserver/zygote.h"
#include "ipc/action_table_hash.h"
#include "ipc/channel.h"
#include "ipc/control_socket.h"
#include "ipc/descriptor_passing.h"
#include "ipc/message_area.h"
#include "ipc/protocol.capnp.h"
#include "ipc/shared_region.h"
#include "passes/llvm/backend.h"

namespace forkgym::hostile {
namespace {

std::string gAttack;
pid_t gVictim = -1;
int gAttackedSessions = -1;  // --attacked-sessions N: only the first N sessions attack (-1: all)
int gControlFd = -1;  // the server's connection: closed in every worker

// ------------------------------------------------------------ raw writes --

RegionHeader& header(Channel& channel) { return channel.region().header(); }

// Writes `reply` into the reply area and marks it as the answer to the
// request being served, without ringing: attacks then spoil what they like.
size_t writeReply(Channel& channel, capnp::MessageBuilder& reply) {
  auto length = writeMessage(reply, channel.region().replyArea());
  if (!length) _exit(90);
  header(channel).replyBytes = *length;
  header(channel).replySeq.store(header(channel).startedSeq.load());
  return *length;
}

void ringRaw(int fd, const void* bytes, size_t size, std::span<const int> fds = {}) {
  iovec iov{const_cast<void*>(bytes), size};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  // Room for any number of descriptors: Doorbell::ring() would refuse more
  // than a real worker may send.
  std::vector<char> control(CMSG_SPACE(sizeof(int) * (fds.empty() ? 1 : fds.size())), 0);
  if (!fds.empty()) {
    msg.msg_control = control.data();
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(cmsg), fds.data(), sizeof(int) * fds.size());
  }
  sendmsg(fd, &msg, MSG_NOSIGNAL);
}

void ring(Channel& channel, char byte = 'r', std::span<const int> fds = {}) {
  ringRaw(channel.doorbell().fd(), &byte, 1, fds);
}

// Waits until the client closes its doorbell end (or forever), then exits:
// a worker that never answers, but does not outlive its client either.
[[noreturn]] void lingerUntilClientGone(int doorbell) {
  for (;;) {
    pollfd pfd{doorbell, 0, 0};  // POLLHUP is always reported
    if (poll(&pfd, 1, -1) > 0 && (pfd.revents & (POLLHUP | POLLERR))) _exit(0);
    char byte;
    if (pfd.revents & POLLIN) {
      if (recv(doorbell, &byte, 1, MSG_DONTWAIT) == 0) _exit(0);
    }
  }
}

int openDevNull() { return open("/dev/null", O_RDONLY | O_CLOEXEC); }

// ------------------------------------------------------------ honest part --

// A step answered as a real worker would: one value of the described type
// per observation (IrInstructionCount counts the requests served, so a
// reply read twice shows), 0.0 per reward.
void honestStep(proto::Step::Reader step, uint64_t served, capnp::MessageBuilder& reply) {
  auto names = step.getObservations();
  auto result = reply.initRoot<proto::Reply>().initStep();
  auto values = result.initObservations(names.size());
  for (unsigned i = 0; i < names.size(); ++i) {
    const std::string_view name(names[i].cStr(), names[i].size());
    passes::ValueType type = passes::ValueType::Int64;
    int64_t length = 0;
    for (const auto& space : passes::kLlvmBackend.observationSpaces()) {
      if (space.name == name) {
        type = space.type;
        length = space.shape.empty() ? 0 : space.shape[0];
      }
    }
    switch (type) {
      case passes::ValueType::Int64:
        values[i].setInt64(name == "IrInstructionCount" ? static_cast<int64_t>(1000 + served) : 0);
        break;
      case passes::ValueType::Int64List:
        values[i].initInt64List(static_cast<unsigned>(length));
        break;
      case passes::ValueType::Text:
        values[i].setText("");
        break;
      case passes::ValueType::Bytes:
        values[i].initBytes(0);
        break;
      case passes::ValueType::Bool:
        values[i].setBoolean(false);
        break;
      case passes::ValueType::Float64:
        values[i].setFloat64(0);
        break;
      case passes::ValueType::Float64List:
        values[i].initFloat64List(static_cast<unsigned>(length));
        break;
      case passes::ValueType::Int64Map:
        values[i].initInt64Map(0);
        break;
    }
  }
  result.initRewards(step.getRewards().size());
  result.setActionHadNoEffect(false);
}

struct HostileWorker;
[[noreturn]] void serve(HostileWorker& worker);

struct HostileWorker {
  Channel channel;
  uint64_t served = 0;
  bool attacked = false;
};

// A copy of this worker serving its own new channel; returns the client's
// ends and a pidfd of the copy.
struct ForkedCopy {
  ClientEnds ends;
  UniqueFd pidfd;
  pid_t pid = -1;
};

// silent: the copy never answers (so a client that times it out signals
// whatever pidfd it was handed for it).
ForkedCopy honestFork(HostileWorker& worker, bool silent = false) {
  auto created = Channel::create(worker.channel.region().size());
  if (!created) _exit(91);
  auto& [copyChannel, ends] = *created;
  // As the real worker does: the copy is the server's child (CLONE_PARENT)
  // in this worker's process group, which is what the client verifies.
  const pid_t pid = static_cast<pid_t>(syscall(SYS_clone, CLONE_PARENT | SIGCHLD, nullptr, nullptr, nullptr, nullptr));
  if (pid < 0) _exit(92);
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    ends.memfd.reset();
    ends.doorbell.reset();
    if (silent) lingerUntilClientGone(copyChannel.doorbell().fd());
    HostileWorker copy{std::move(copyChannel), worker.served, true};
    serve(copy);
  }
  const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) _exit(93);
  return ForkedCopy{std::move(ends), UniqueFd(pidfd), pid};
}

void replyFork(HostileWorker& worker, int32_t pid, std::span<const int> fds) {
  capnp::MallocMessageBuilder reply;
  auto fork = reply.initRoot<proto::Reply>().initFork();
  fork.setPid(pid);
  fork.setRegionBytes(worker.channel.region().size());
  writeReply(worker.channel, reply);
  ring(worker.channel, 'r', fds);
}

// ----------------------------------------------------------------- attacks --

enum class On { Step, Fork, Peek };

struct Attack {
  const char* name;
  On on;
  std::function<void(HostileWorker&, proto::Request::Reader)> play;
};

// Writes an honest reply to the step, then lets `spoil` change what the
// client will read, then rings.
auto spoiledStep(std::function<void(HostileWorker&)> spoil) {
  return [spoil](HostileWorker& worker, proto::Request::Reader request) {
    capnp::MallocMessageBuilder reply;
    honestStep(request.getStep(), worker.served, reply);
    writeReply(worker.channel, reply);
    spoil(worker);
    ring(worker.channel);
  };
}

// Replies to a step with `build`'s message, rung honestly.
auto replyWith(std::function<void(proto::Reply::Builder, proto::Step::Reader)> build) {
  return [build](HostileWorker& worker, proto::Request::Reader request) {
    capnp::MallocMessageBuilder reply;
    build(reply.initRoot<proto::Reply>(), request.getStep());
    writeReply(worker.channel, reply);
    ring(worker.channel);
  };
}

void fill(Channel& channel, size_t bytes, uint8_t seed) {
  auto area = channel.region().replyArea();
  for (size_t i = 0; i < bytes && i < area.size(); ++i) area[i] = std::byte(static_cast<uint8_t>(seed ^ (i * 131)));
}

// Words of a hand-built message, copied into the reply area.
void writeWords(Channel& channel, const std::vector<uint64_t>& words) {
  std::memcpy(channel.region().replyArea().data(), words.data(), words.size() * 8);
  header(channel).replyBytes = words.size() * 8;
  header(channel).replySeq.store(header(channel).startedSeq.load());
}

// A StepResult whose `count` observations are all texts pointing at one
// shared `textBytes`-byte text: overlapping pointers, so a reader that
// follows each of them copies count * textBytes bytes out of a message of
// about textBytes.
std::vector<uint64_t> overlappingTexts(uint32_t count, uint32_t textBytes) {
  auto structPointer = [](int32_t offset, uint16_t dataWords, uint16_t pointers) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(offset) << 2)) | (uint64_t{dataWords} << 32) |
           (uint64_t{pointers} << 48);
  };
  auto listPointer = [](int32_t offset, uint32_t elementSize, uint32_t count) {
    return uint64_t{1} | (static_cast<uint64_t>(static_cast<uint32_t>(offset) << 2)) |
           (uint64_t{elementSize} << 32) | (uint64_t{count} << 35);
  };
  const uint32_t textWords = (textBytes + 1 + 7) / 8;
  const uint32_t elementWords = 3;  // ObservationValue: 2 data words, 1 pointer
  const uint32_t first = 7;         // first element's word, after the list's tag word at 6
  const uint32_t text = first + elementWords * count;
  // Segment table (one segment), then the segment.
  std::vector<uint64_t> words;
  const uint32_t segmentWords = text + textWords;
  words.push_back(uint64_t{segmentWords} << 32);  // count-1 = 0, then the size
  std::vector<uint64_t> segment(segmentWords, 0);
  segment[0] = structPointer(0, 1, 1);          // root -> Reply at 1
  segment[1] = 0;                               // Reply tag: step
  segment[2] = structPointer(0, 1, 2);          // Reply.step -> StepResult at 3
  segment[3] = 0;
  segment[4] = listPointer(1, 7, elementWords * count);  // observations -> tag at 6
  segment[5] = 0;                               // rewards: null
  segment[6] = structPointer(static_cast<int32_t>(count), 2, 1);  // tag: count elements of 2+1 words
  for (uint32_t i = 0; i < count; ++i) {
    const uint32_t at = first + elementWords * i;
    segment[at + 1] = 2;  // union tag: text
    segment[at + 2] = listPointer(static_cast<int32_t>(text - (at + 2) - 1), 2, textBytes + 1);
  }
  std::memset(&segment[text], 'x', textBytes);
  words.insert(words.end(), segment.begin(), segment.end());
  return words;
}

// A pidfd of a process that is not this episode's worker (the victim the
// test started), or of the zygote-like server, or of this worker itself.
int victimPidfd() {
  const int fd = static_cast<int>(syscall(SYS_pidfd_open, gVictim, 0));
  if (fd < 0) _exit(94);
  return fd;
}

std::vector<Attack> attacks() {
  std::vector<Attack> table;
  auto step = [&](const char* name, std::function<void(HostileWorker&, proto::Request::Reader)> play) {
    table.push_back({name, On::Step, std::move(play)});
  };
  auto fork = [&](const char* name, std::function<void(HostileWorker&, proto::Request::Reader)> play) {
    table.push_back({name, On::Fork, std::move(play)});
  };
  auto peek = [&](const char* name, std::function<void(proto::Reply::Builder, proto::Peek::Reader)> build) {
    table.push_back({name, On::Peek, [build](HostileWorker& worker, proto::Request::Reader request) {
                       capnp::MallocMessageBuilder reply;
                       build(reply.initRoot<proto::Reply>(), request.getPeek());
                       writeReply(worker.channel, reply);
                       ring(worker.channel);
                     }});
  };

  // --- lengths and contents of the reply area ---
  step("reply-length-zero", spoiledStep([](HostileWorker& w) { header(w.channel).replyBytes = 0; }));
  step("reply-length-huge", spoiledStep([](HostileWorker& w) { header(w.channel).replyBytes = 1ull << 62; }));
  step("reply-length-negative", spoiledStep([](HostileWorker& w) { header(w.channel).replyBytes = ~uint64_t{7}; }));
  step("reply-length-unaligned", spoiledStep([](HostileWorker& w) { header(w.channel).replyBytes += 3; }));
  step("reply-length-past-the-region", spoiledStep([](HostileWorker& w) {
         header(w.channel).replyBytes = w.channel.region().replyArea().size() + 8;
       }));
  step("reply-garbage", spoiledStep([](HostileWorker& w) {
         fill(w.channel, 4096, 0x5a);
         header(w.channel).replyBytes = 4096;
       }));
  step("reply-segment-table-lies", spoiledStep([](HostileWorker& w) {
         auto* table = reinterpret_cast<uint32_t*>(w.channel.region().replyArea().data());
         table[0] = 0;            // one segment...
         table[1] = 0x7fffffff;   // ...of 16 GiB
       }));
  step("reply-segment-count-huge", spoiledStep([](HostileWorker& w) {
         reinterpret_cast<uint32_t*>(w.channel.region().replyArea().data())[0] = 0xfffffff0u;
       }));
  step("reply-root-pointer-out-of-bounds", spoiledStep([](HostileWorker& w) {
         auto* words = reinterpret_cast<uint64_t*>(w.channel.region().replyArea().data());
         words[1] = (uint64_t{0x1fffffff} << 2) | (uint64_t{1} << 32) | (uint64_t{1} << 48);
       }));
  step("reply-root-pointer-negative", spoiledStep([](HostileWorker& w) {
         auto* words = reinterpret_cast<uint64_t*>(w.channel.region().replyArea().data());
         words[1] = (static_cast<uint64_t>(static_cast<uint32_t>(-1000) << 2)) | (uint64_t{1} << 32) |
                    (uint64_t{1} << 48);
       }));
  step("reply-overlapping-pointers", [](HostileWorker& w, proto::Request::Reader) {
    // 1 MiB of text behind 4096 pointers: 4 GiB for a reader without limits.
    writeWords(w.channel, overlappingTexts(4096, 1 << 20));
    ring(w.channel);
  });
  step("reply-is-a-fork-result", replyWith([](proto::Reply::Builder reply, proto::Step::Reader) {
         reply.initFork().setPid(1);
       }));
  step("reply-failure-with-outcome-ok", replyWith([](proto::Reply::Builder reply, proto::Step::Reader) {
         auto failure = reply.initFailure();
         failure.setOutcome(0);
         failure.setMessage("all is well");
       }));
  step("reply-failure-with-unknown-outcome", replyWith([](proto::Reply::Builder reply, proto::Step::Reader) {
         reply.initFailure().setOutcome(9999);
       }));
  step("reply-too-few-observations", replyWith([](proto::Reply::Builder reply, proto::Step::Reader) {
         reply.initStep();
       }));
  step("reply-observation-of-the-wrong-type", replyWith([](proto::Reply::Builder reply, proto::Step::Reader step) {
         auto values = reply.initStep().initObservations(step.getObservations().size());
         for (auto value : values) value.setText("not a number");
       }));
  step("reply-list-of-the-wrong-length", replyWith([](proto::Reply::Builder reply, proto::Step::Reader step) {
         auto values = reply.initStep().initObservations(step.getObservations().size());
         for (auto value : values) value.initInt64List(3);
       }));
  // A program graph (Programl) whose last edge joins a node that does not
  // exist: bytes of the right type, which only reading them shows are a lie.
  step("reply-program-graph-edge-past-the-nodes",
       replyWith([](proto::Reply::Builder reply, proto::Step::Reader step) {
         capnp::MallocMessageBuilder lie;
         auto graph = lie.initRoot<proto::ProgramGraph>();
         graph.initNodeType(1);
         graph.initNodeText(1);
         graph.initNodeFullText(1);
         graph.initNodeFunction(1);
         graph.initNodeBlock(1);
         graph.initEdgeFlow(1);
         graph.initEdgePosition(1);
         graph.initEdgeSource(1);
         graph.initEdgeTarget(1).set(0, 7);
         graph.initStrings(1).set(0, "[external]");
         const kj::Array<capnp::word> words = capnp::messageToFlatArray(lie);
         auto values = reply.initStep().initObservations(step.getObservations().size());
         for (auto value : values) value.setBytes(words.asBytes());
       }));
  step("reply-too-many-rewards", replyWith([](proto::Reply::Builder reply, proto::Step::Reader step) {
         capnp::MallocMessageBuilder honest;
         honestStep(step, 0, honest);
         reply.setStep(honest.getRoot<proto::Reply>().getStep());
         reply.getStep().initRewards(step.getRewards().size() + 5);
       }));

  // --- the region header ---
  step("header-scribbled", spoiledStep([](HostileWorker& w) {
         RegionHeader& h = header(w.channel);
         h.magic = 0;
         h.layoutVersion = 77;
         h.totalBytes = 1;
         h.requestOffset = ~uint64_t{0};
         h.requestCapacity = ~uint64_t{0};
         h.replyOffset = 1ull << 63;
         h.replyCapacity = ~uint64_t{0};
       }));
  step("region-shrunk", spoiledStep([](HostileWorker& w) {
         // Refused by the seals on a real region; the client must not care.
         (void)!ftruncate(w.channel.region().fd(), 4096);
       }));

  // --- last words ---
  auto dieWith = [](uint16_t outcome, const char* message, size_t length) {
    return [=](HostileWorker& w, proto::Request::Reader) {
      LastWords& words = header(w.channel).lastWords;
      words.outcome = outcome;
      words.signal = 11;
      std::memcpy(words.message, message, std::min(length, sizeof(words.message)));
      words.written.store(1);
      _exit(3);
    };
  };
  static const std::string kNoNul(400, 'A');
  step("last-words-without-nul", dieWith(3, kNoNul.c_str(), kNoNul.size()));
  step("last-words-claiming-ok", dieWith(0, "fine", 5));
  step("last-words-claiming-unknown-outcome", dieWith(9999, "?", 2));
  step("last-words-with-a-lying-stack", [](HostileWorker& w, proto::Request::Reader) {
    // Counts past the arrays, module indices past the modules, paths without
    // a NUL: the client must bound all of it.
    CrashStack& stack = header(w.channel).crashStack;
    stack.frameCount = ~uint32_t{0};
    stack.moduleCount = ~uint32_t{0};
    for (auto& module : stack.modules) std::memset(module, 'A', sizeof(module));
    for (uint32_t i = 0; i < kCrashStackFrames; ++i) stack.frames[i] = {~uint64_t{0} - i, i % 2 ? 1u : ~0u, 7};
    LastWords& words = header(w.channel).lastWords;
    words.outcome = 3;
    words.signal = 11;
    std::memcpy(words.message, "a lying stack", 14);
    words.written.store(1);
    _exit(3);
  });
  step("last-words-then-lingers", [](HostileWorker& w, proto::Request::Reader) {
    LastWords& words = header(w.channel).lastWords;
    words.outcome = 3;
    std::memcpy(words.message, "dead (not really)", 18);
    words.written.store(1);
    // Drops its channel but keeps running: only the client can end it now.
    w.channel = Channel();
    for (;;) pause();
  });

  // --- the doorbell ---
  step("ring-unknown-byte", [](HostileWorker& w, proto::Request::Reader request) {
    capnp::MallocMessageBuilder reply;
    honestStep(request.getStep(), w.served, reply);
    writeReply(w.channel, reply);
    ring(w.channel, 'x');
    lingerUntilClientGone(w.channel.doorbell().fd());
  });
  step("ring-request-byte", [](HostileWorker& w, proto::Request::Reader) {
    ring(w.channel, 'q');
    lingerUntilClientGone(w.channel.doorbell().fd());
  });
  step("ring-twice", [](HostileWorker& w, proto::Request::Reader request) {
    // An honest reply rung twice: the second ring would answer the client's
    // next request with this reply.
    capnp::MallocMessageBuilder reply;
    honestStep(request.getStep(), w.served, reply);
    writeReply(w.channel, reply);
    ring(w.channel);
    ring(w.channel);
  });
  step("ring-oversized-record", [](HostileWorker& w, proto::Request::Reader request) {
    capnp::MallocMessageBuilder reply;
    honestStep(request.getStep(), w.served, reply);
    writeReply(w.channel, reply);
    const std::string record(4000, 'r');
    ringRaw(w.channel.doorbell().fd(), record.data(), record.size());
    lingerUntilClientGone(w.channel.doorbell().fd());
  });
  step("ring-empty-record", [](HostileWorker& w, proto::Request::Reader) {
    ringRaw(w.channel.doorbell().fd(), "", 0);
    lingerUntilClientGone(w.channel.doorbell().fd());
  });
  step("ring-with-a-descriptor", [](HostileWorker& w, proto::Request::Reader request) {
    capnp::MallocMessageBuilder reply;
    honestStep(request.getStep(), w.served, reply);
    writeReply(w.channel, reply);
    const int fd = openDevNull();
    ring(w.channel, 'r', std::span<const int>(&fd, 1));
    lingerUntilClientGone(w.channel.doorbell().fd());
  });
  step("ring-with-many-descriptors", [](HostileWorker& w, proto::Request::Reader request) {
    capnp::MallocMessageBuilder reply;
    honestStep(request.getStep(), w.served, reply);
    writeReply(w.channel, reply);
    std::vector<int> fds(16);
    for (int& fd : fds) fd = openDevNull();
    ring(w.channel, 'r', fds);
    lingerUntilClientGone(w.channel.doorbell().fd());
  });
  step("never-replies", [](HostileWorker& w, proto::Request::Reader) {
    lingerUntilClientGone(w.channel.doorbell().fd());
  });
  step("hangs-up-without-a-word", [](HostileWorker& w, proto::Request::Reader) { _exit(0); });
  // Deferred actions (a state cache's): the client allows the next request
  // one step's time more for each, but never more than the episode stepped.
  auto deferThen = [](uint32_t deferred, std::function<void(HostileWorker&)> next) {
    return [deferred, next](HostileWorker& w, proto::Request::Reader request) {
      capnp::MallocMessageBuilder reply;
      honestStep(request.getStep(), w.served, reply);
      reply.getRoot<proto::Reply>().getStep().setActionsDeferred(deferred);
      writeReply(w.channel, reply);
      ring(w.channel);
      next(w);
    };
  };
  // One deferred action (as many as the episode stepped): the second step's
  // reply comes after 1.2 step timeouts, inside the two it is allowed.
  step("deferred-action-then-a-slow-step", deferThen(1, [](HostileWorker& w) {
    auto request = w.channel.receiveRequest();
    if (!request) _exit(0);
    ++w.served;
    poll(nullptr, 0, 1800);  // the step timeout is 1500 ms (hostile_worker_test.cc)
    capnp::MallocMessageBuilder reply;
    honestStep(request->reader->getRoot<proto::Request>().getStep(), w.served, reply);
    if (!w.channel.sendReply(reply)) _exit(0);
  }));
  // Claims four billion deferred actions, then never answers: the client
  // waits two step timeouts (one action stepped), not 190 years.
  step("deferred-actions-claimed-then-never-replies", deferThen(0xffffffffu, [](HostileWorker& w) {
    auto request = w.channel.receiveRequest();
    if (!request) _exit(0);
    lingerUntilClientGone(w.channel.doorbell().fd());
  }));

  // --- fork replies ---
  fork("fork-reply-malformed", [](HostileWorker& w, proto::Request::Reader) {
    fill(w.channel, 256, 0x33);
    header(w.channel).replyBytes = 256;
    header(w.channel).replySeq.store(header(w.channel).startedSeq.load());
    auto copy = honestFork(w);
    const int fds[] = {copy.ends.memfd.get(), copy.ends.doorbell.get(), copy.pidfd.get()};
    ring(w.channel, 'r', fds);
  });
  fork("fork-reply-root-pointer-out-of-bounds", [](HostileWorker& w, proto::Request::Reader) {
    // Framed properly; the root pointer leads out of the message.
    capnp::MallocMessageBuilder reply;
    reply.initRoot<proto::Reply>().initFork().setPid(1);
    writeReply(w.channel, reply);
    auto* words = reinterpret_cast<uint64_t*>(w.channel.region().replyArea().data());
    words[1] = (uint64_t{0x1fffffff} << 2) | (uint64_t{1} << 32) | (uint64_t{1} << 48);
    auto copy = honestFork(w);
    const int fds[] = {copy.ends.memfd.get(), copy.ends.doorbell.get(), copy.pidfd.get()};
    ring(w.channel, 'r', fds);
  });
  fork("fork-reply-overlapping-pointers", [](HostileWorker& w, proto::Request::Reader) {
    writeWords(w.channel, overlappingTexts(64, 4096));  // a StepResult where a ForkResult belongs
    ring(w.channel);
  });
  fork("fork-reply-failure-with-outcome-ok", [](HostileWorker& w, proto::Request::Reader) {
    capnp::MallocMessageBuilder reply;
    reply.initRoot<proto::Reply>().initFailure().setOutcome(0);
    writeReply(w.channel, reply);
    ring(w.channel);
  });
  fork("fork-reply-without-descriptors", [](HostileWorker& w, proto::Request::Reader) {
    replyFork(w, 4242, {});
  });
  fork("fork-reply-with-too-few-descriptors", [](HostileWorker& w, proto::Request::Reader) {
    auto copy = honestFork(w);
    const int fds[] = {copy.ends.memfd.get(), copy.ends.doorbell.get()};
    replyFork(w, copy.pid, fds);
  });
  fork("fork-reply-with-too-many-descriptors", [](HostileWorker& w, proto::Request::Reader) {
    auto copy = honestFork(w);
    std::vector<int> fds = {copy.ends.memfd.get(), copy.ends.doorbell.get(), copy.pidfd.get()};
    for (int i = 0; i < 8; ++i) fds.push_back(openDevNull());
    replyFork(w, copy.pid, fds);
  });
  fork("fork-region-is-a-regular-file", [](HostileWorker& w, proto::Request::Reader) {
    auto copy = honestFork(w);
    // A file with the region's size and header, which anyone may truncate.
    char path[] = "/tmp/fgtest-hostile-XXXXXX";
    const int file = mkstemp(path);
    unlink(path);
    std::vector<std::byte> head(4096);
    void* map = mmap(nullptr, 4096, PROT_READ, MAP_SHARED, copy.ends.memfd.get(), 0);
    std::memcpy(head.data(), map, head.size());
    (void)!ftruncate(file, static_cast<off_t>(w.channel.region().size()));
    (void)!pwrite(file, head.data(), head.size(), 0);
    const int fds[] = {file, copy.ends.doorbell.get(), copy.pidfd.get()};
    replyFork(w, copy.pid, fds);
    close(file);
  });
  fork("fork-region-is-unsealed", [](HostileWorker& w, proto::Request::Reader) {
    // A memfd laid out like a region but open to resizing: shrunk under the
    // client's mapping once it is in use, it would SIGBUS the client.
    const int raw = static_cast<int>(syscall(SYS_memfd_create, "forkgym-channel", MFD_CLOEXEC));
    const size_t bytes = w.channel.region().size();
    (void)!ftruncate(raw, static_cast<off_t>(bytes));
    void* map = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, raw, 0);
    std::memcpy(map, &header(w.channel), 4096);
    auto* h = static_cast<RegionHeader*>(map);
    h->requestSeq = h->startedSeq = h->replySeq = 0;
    h->lastWords.written = 0;
    auto copy = honestFork(w);
    const int fds[] = {raw, copy.ends.doorbell.get(), copy.pidfd.get()};
    replyFork(w, copy.pid, fds);
    (void)!ftruncate(raw, 4096);
  });
  fork("fork-doorbell-is-a-pipe", [](HostileWorker& w, proto::Request::Reader) {
    auto copy = honestFork(w);
    int pipeFds[2];
    if (pipe2(pipeFds, O_CLOEXEC) != 0) _exit(95);
    const int fds[] = {copy.ends.memfd.get(), pipeFds[0], copy.pidfd.get()};
    replyFork(w, copy.pid, fds);
  });
  fork("fork-doorbell-is-a-stream-socket", [](HostileWorker& w, proto::Request::Reader) {
    auto copy = honestFork(w);
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) _exit(95);
    const int fds[] = {copy.ends.memfd.get(), pair[0], copy.pidfd.get()};
    replyFork(w, copy.pid, fds);
  });
  fork("fork-pidfd-is-not-a-pidfd", [](HostileWorker& w, proto::Request::Reader) {
    auto copy = honestFork(w);
    const int fds[] = {copy.ends.memfd.get(), copy.ends.doorbell.get(), openDevNull()};
    replyFork(w, copy.pid, fds);
  });
  fork("fork-pidfd-of-an-unrelated-process", [](HostileWorker& w, proto::Request::Reader) {
    auto copy = honestFork(w, true);
    const int fds[] = {copy.ends.memfd.get(), copy.ends.doorbell.get(), victimPidfd()};
    replyFork(w, copy.pid, fds);
  });
  fork("fork-pid-of-an-unrelated-process", [](HostileWorker& w, proto::Request::Reader) {
    auto copy = honestFork(w, true);
    const int fds[] = {copy.ends.memfd.get(), copy.ends.doorbell.get(), copy.pidfd.get()};
    replyFork(w, gVictim, fds);
  });
  fork("fork-pidfd-of-the-worker-itself", [](HostileWorker& w, proto::Request::Reader) {
    auto copy = honestFork(w, true);
    const int self = static_cast<int>(syscall(SYS_pidfd_open, getpid(), 0));
    const int fds[] = {copy.ends.memfd.get(), copy.ends.doorbell.get(), self};
    replyFork(w, getpid(), fds);
  });
  fork("fork-reply-never-comes", [](HostileWorker& w, proto::Request::Reader) {
    lingerUntilClientGone(w.channel.doorbell().fd());
  });

  // --- peek replies: one answer per action asked, or the episode ends ---
  peek("peek-reply-with-too-few-answers", [](proto::Reply::Builder reply, proto::Peek::Reader asked) {
    auto result = reply.initPeek();
    const unsigned n = asked.getActions().size() - 1;
    result.initKnown(n);
    result.initRewards(n);
    result.initActionHadNoEffect(n);
  });
  peek("peek-reply-is-a-step-result", [](proto::Reply::Builder reply, proto::Peek::Reader) { reply.initStep(); });
  return table;
}

[[noreturn]] void serve(HostileWorker& worker) {
  static const std::vector<Attack> table = attacks();
  const Attack* attack = nullptr;
  for (const auto& row : table) {
    if (gAttack == row.name) attack = &row;
  }
  for (;;) {
    auto request = worker.channel.receiveRequest();
    if (!request) {
      if (request.error().outcome == Outcome::SessionClosed) _exit(0);
      _exit(96);  // the real client never sends garbage
    }
    auto root = request->reader->getRoot<proto::Request>();
    ++worker.served;
    const bool isStep = root.isStep(), isFork = root.isFork(), isPeek = root.isPeek();
    if (attack && !worker.attacked &&
        ((attack->on == On::Step && isStep) || (attack->on == On::Fork && isFork) ||
         (attack->on == On::Peek && isPeek))) {
      worker.attacked = true;
      attack->play(worker, root);
      continue;
    }
    capnp::MallocMessageBuilder reply;
    if (isStep) {
      honestStep(root.getStep(), worker.served, reply);
      if (!worker.channel.sendReply(reply)) _exit(0);
    } else if (isFork) {
      auto copy = honestFork(worker);
      const int fds[] = {copy.ends.memfd.get(), copy.ends.doorbell.get(), copy.pidfd.get()};
      replyFork(worker, copy.pid, fds);
    } else {
      reply.initRoot<proto::Reply>().initFailure().setOutcome(static_cast<uint16_t>(Outcome::InvalidRequest));
      if (!worker.channel.sendReply(reply)) _exit(0);
    }
  }
}

bool knownAttack(const std::string& name) {
  for (const auto& row : attacks()) {
    if (name == row.name) return true;
  }
  return name == "none" || name == "hello-for-another-action-table";
}

// ------------------------------------------------------------ the server --

class HostileServer : public forkserver::ControlHandler {
 public:
  std::optional<uint64_t> actionTableHash(std::string_view backend) override {
    if (backend != passes::kLlvmBackend.name) return std::nullopt;
    return kActionTableHash;
  }
  void hello(proto::Hello::Builder out) override {
    const passes::Backend* const backends[] = {&passes::kLlvmBackend};
    forkserver::fillHello(out, backends);
    // A server that skips the check and runs another table.
    if (gAttack == "hello-for-another-action-table") out.getBackends()[0].setActionTableHash(kActionTableHash ^ 0xf00d);
  }
  Status describe(std::string_view backend, proto::Description::Builder out) override {
    if (backend != passes::kLlvmBackend.name) return makeError(Outcome::InvalidRequest, "this server has llvm only");
    forkserver::fillDescription(out, passes::kLlvmBackend, {});
    return okStatus();
  }
  void status(proto::ServerStatus::Builder) override {}
  void workerExit(int32_t pid, proto::WorkerExit::Builder out) override {
    int status = 0;
    if (pid <= 0 || waitpid(pid, &status, WNOHANG) != pid) return;  // not ours, or still running
    out.setKnown(true);
    out.setExitCode(WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    out.setSignal(WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  }
  Result<SessionStart> newSession(const std::string&, const std::string& benchmark, proto::Limits::Reader,
                                  proto::SessionStarted::Builder out, std::vector<UniqueFd>& fds,
                                  const std::optional<RunConfig>&) override {
    auto created = Channel::create();
    if (!created) return created.takeError();
    auto& [channel, ends] = *created;
    ++sessions_;
    const pid_t pid = fork();
    if (pid < 0) return makeError(Outcome::ServerError, "fork failed");
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      close(gControlFd);
      ends.memfd.reset();
      ends.doorbell.reset();
      // Sessions past --attacked-sessions are honest (their worker counts
      // as having attacked already).
      HostileWorker worker{std::move(channel), 0, gAttackedSessions >= 0 && sessions_ > gAttackedSessions};
      serve(worker);
    }
    const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
    out.setPid(pid);
    out.setRegionBytes(channel.region().size());
    out.setBenchmark(benchmark);
    fds.push_back(std::move(ends.memfd));
    fds.push_back(std::move(ends.doorbell));
    fds.emplace_back(pidfd);
    return SessionStart::Started;
  }

 private:
  int sessions_ = 0;
};

}  // namespace
}  // namespace forkgym::hostile

int main(int argc, char** argv) {
  using namespace forkgym;
  int fd = -1;
  for (int i = 1; i + 1 < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--connected-fd") fd = hostile::gControlFd = std::atoi(argv[++i]);
    else if (arg == "--attack") hostile::gAttack = argv[++i];
    else if (arg == "--victim-pid") hostile::gVictim = std::atoi(argv[++i]);
    else if (arg == "--attacked-sessions") hostile::gAttackedSessions = std::atoi(argv[++i]);
  }
  if (fd < 0 || !hostile::knownAttack(hostile::gAttack)) {
    std::fprintf(stderr, "forkgym-hostile-server: need --connected-fd N and a known --attack (got '%s')\n",
                 hostile::gAttack.c_str());
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  signal(SIGCHLD, SIG_DFL);
  hostile::HostileServer server;
  bool greeted = false;
  for (;;) {
    auto frame = recvFrame(fd, std::nullopt, 0);
    if (!frame) break;
    auto reply = forkserver::dispatchControlFrame(frame->words, greeted, server);
    std::vector<int> fds;
    for (auto& passed : reply.fds) fds.push_back(passed.get());
    if (!sendFrame(fd, *reply.message, fds)) break;
  }
  return 0;
}
