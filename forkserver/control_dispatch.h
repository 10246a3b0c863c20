// Control dispatch: the zygote's handling of one control frame from a client,
// separated from sockets and fork() so it can be driven from a byte buffer
// (tests/fuzz/control_fuzzer.cc) as well as from the zygote's event loop.
//
// Lifecycle (zygote process, or a fuzz harness; single-threaded):
//   1. The caller assembles a frame (FrameAssembler) and keeps `greeted` per
//      connection.
//   2. dispatchControlFrame() validates the frame as a ControlRequest, enforces
//      hello-first, the protocol version and, for each backend the client
//      was built knowing, the same action table, and calls the handler for
//      the one request it names. Anything malformed becomes a failure reply: nothing a
//      client sends can make it throw or crash (invariant 4).
//   3. The caller sends the reply, with its descriptors, on the connection —
//      unless the handler deferred a newSession (its benchmark is loading):
//      then there is no reply yet, and the caller answers when it can.
#pragma once

#include <capnp/message.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ipc/protocol.capnp.h"
#include "ipc/run_config.h"
#include "base/result.h"
#include "base/unique_fd.h"

namespace forkgym::forkserver {

// What the zygote does for each request, once the request has been validated.
class ControlHandler {
 public:
  virtual ~ControlHandler() = default;
  // The action-table hash of the server's backend `backend` (0: generated at
  // start-up, nothing to compare), or none when it has no such backend.
  virtual std::optional<uint64_t> actionTableHash(std::string_view backend) = 0;
  virtual void hello(proto::Hello::Builder out) = 0;
  // An InvalidRequest naming the server's backends for an unknown one.
  virtual Status describe(std::string_view backend, proto::Description::Builder out) = 0;
  virtual void workerExit(int32_t pid, proto::WorkerExit::Builder out) = 0;
  virtual void status(proto::ServerStatus::Builder out) = 0;
  // Starts a worker: Started when `out` is filled and the descriptors that
  // go with the reply appended; Deferred when the answer comes later (the
  // benchmark is loading); an error becomes the failure reply.
  enum class SessionStart { Started, Deferred };
  // runConfig: the client's run configuration (NewSession.runConfig), if
  // it sent one.
  virtual Result<SessionStart> newSession(const std::string& backend, const std::string& benchmark,
                                          proto::Limits::Reader limits, proto::SessionStarted::Builder out,
                                          std::vector<UniqueFd>& fds, const std::optional<RunConfig>& runConfig) = 0;
};

struct ControlReplyFrame {
  std::unique_ptr<capnp::MallocMessageBuilder> message;  // a ControlReply; null: deferred
  std::vector<UniqueFd> fds;
};

void setFailure(proto::Failure::Builder failure, const Error& error);

// `greeted` is the connection's state: false until a valid hello.
ControlReplyFrame dispatchControlFrame(kj::ArrayPtr<const capnp::word> frame, bool& greeted,
                                       ControlHandler& handler);

}  // namespace forkgym::forkserver
