// Loads made controllable or hostile, shared by tests/forkserver/load_test.cc
// and the fault matrix's load rows: the test build's load gate, a source
// whose compile blocks, inputs that blow up a loader's memory, and a raw
// client that asks for a load and goes.
//
// Lifecycle of a gated load (a test process):
//   1. LoadGate gate(directory, "gated-") before the server starts, with
//      gate.serverArguments() on its command line (test builds'
//      --test-load-gate SUBSTRING=FIFO: a loader whose URI contains
//      SUBSTRING opens FIFO and reads one byte before it loads).
//   2. gate.waitForLoader() returns the FIFO's write end exactly when a
//      loader waits at the gate: its open is the signal, no sleeping.
//   3. One byte written lets one loader go.
// FIFOs are open to all: a loader runs as the server's sandbox user (nobody,
// when the tests run as root). Include tests/forkserver/runtime_fixture.h
// first.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include <capnp/message.h>
#include <capnp/serialize.h>

#include "base/unique_fd.h"
#include "ipc/action_table_hash.h"
#include "ipc/control_socket.h"
#include "ipc/protocol.capnp.h"

namespace forkgym::testing {

// Opens a FIFO's write end once a reader has it open (a loader at the gate,
// a compiler reading an included FIFO): without O_NONBLOCK the open would
// wait for that reader forever if it never came. Empty if none came before
// the hang guard.
inline UniqueFd openOnceRead(const std::string& fifo) {
  UniqueFd writer;
  eventually([&] {
    writer.reset(open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC));
    return static_cast<bool>(writer);
  });
  if (writer) fcntl(writer.get(), F_SETFL, 0);
  return writer;
}

struct LoadGate {
  LoadGate(const std::string& directory, std::string uriSubstring)
      : fifo(directory + "/gate"), substring(std::move(uriSubstring)), made(mkfifo(fifo.c_str(), 0666) == 0) {}
  ~LoadGate() { unlink(fifo.c_str()); }
  LoadGate(const LoadGate&) = delete;
  LoadGate& operator=(const LoadGate&) = delete;

  std::vector<std::string> serverArguments() const { return {"--test-load-gate", substring + "=" + fifo}; }
  UniqueFd waitForLoader() const { return openOnceRead(fifo); }

  std::string fifo;
  std::string substring;
  bool made;  // the FIFO exists
};

// A source whose compile blocks for good: it includes a FIFO nobody writes
// (name.h beside name.c, in `directory`).
struct BlockingSource {
  BlockingSource(const std::string& directory, const std::string& name)
      : fifo(directory + "/" + name + ".h"), source(directory + "/" + name + ".c") {
    made = mkfifo(fifo.c_str(), 0666) == 0;
    std::ofstream(source) << "#include \"" << fifo << "\"\nint main(void) { return 0; }\n";
  }
  ~BlockingSource() {
    release();
    unlink(fifo.c_str());
    unlink(source.c_str());
  }
  BlockingSource(const BlockingSource&) = delete;
  BlockingSource& operator=(const BlockingSource&) = delete;

  // Lets a compiler still blocked on the FIFO go (after a failed test), so
  // none is left behind.
  void release() const {
    const int writer = open(fifo.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (writer >= 0) close(writer);
  }

  std::string fifo;
  std::string source;
  bool made = false;
};

// 32 bytes of bitcode whose type table claims 2^28 entries: LLVM's reader
// allocates (and zero-fills) 2 GiB for it before finding nothing there.
inline std::string bitcodeTypeBomb() {
  const unsigned char bytes[] = {0x42, 0x43, 0xc0, 0xde, 0x21, 0x0c, 0x00, 0x00, 0x05, 0x00, 0x00,
                                 0x00, 0x89, 0x20, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x13, 0x04,
                                 0x20, 0x08, 0x82, 0x20, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00};
  return std::string(reinterpret_cast<const char*>(bytes), sizeof(bytes));
}

// Each macro level doubles the previous one's expansion inside a macro
// argument, which clang expands in memory before using it: gigabytes.
inline std::string preprocessorBomb() {
  std::string text = "#define E0(x) x x x x\n";
  for (int i = 1; i < 24; ++i) {
    text += "#define E" + std::to_string(i) + "(x) E" + std::to_string(i - 1) + "(E" + std::to_string(i - 1) + "(x))\n";
  }
  return text + "int a[] = { E23(1 +) 1 };\n";
}

// A raw client on `fd`: the hello the C++ client sends, its answer, then a
// newSession of the LLVM backend for `uri` that it does not wait for.
inline Status requestSessionWithoutWaiting(int fd, const std::string& uri) {
  capnp::MallocMessageBuilder hello;
  auto greeting = hello.initRoot<proto::ControlRequest>().initHello();
  greeting.setProtocolVersion(proto::PROTOCOL_VERSION);
  auto known = greeting.initBackends(1);
  known[0].setName(kActionTableBackend);
  known[0].setActionTableHash(kActionTableHash);
  if (auto sent = sendFrame(fd, hello); !sent) return sent.takeError();
  auto answer = recvFrame(fd, kHangGuard, 0);
  if (!answer) return answer.takeError();
  capnp::FlatArrayMessageReader reader(answer->words);
  if (!reader.getRoot<proto::ControlReply>().isHello()) {
    return makeError(Outcome::ProtocolMismatch, "the server refused the hello");
  }
  capnp::MallocMessageBuilder request;
  auto session = request.initRoot<proto::ControlRequest>().initNewSession();
  session.setBackend(kActionTableBackend);
  session.setBenchmark(uri);
  return sendFrame(fd, request);
}

}  // namespace forkgym::testing
