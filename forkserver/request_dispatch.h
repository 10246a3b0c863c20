// Request dispatch: a worker's handling of one request from its client,
// separated from the channel and from fork() so it can be driven from a byte
// buffer (tests/fuzz/request_fuzzer.cc) as well as from the worker loop.
//
// Lifecycle (worker process, or a fuzz harness):
//   1. The worker loop receives a request message (ipc/channel.h).
//   2. dispatchRequest() reads it as a Request, validates every name before
//      anything touches the module (a typo loses nothing), and calls the
//      handler. Anything malformed becomes a failure reply.
//   3. The loop sends the reply (with descriptors for a fork) and exits if
//      the episode is over.
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

class RequestHandler {
 public:
  virtual ~RequestHandler() = default;
  // The row of the backend's observation (reward) table named `name`.
  virtual std::optional<size_t> findObservation(std::string_view name) = 0;
  virtual std::optional<size_t> findReward(std::string_view name) = 0;
  // A step whose names were found: rows of the tables, in the order asked.
  // Returns true when the episode is over.
  virtual bool step(const std::vector<uint32_t>& actions, const std::vector<size_t>& observations,
                    const std::vector<size_t>& rewards, proto::Reply::Builder reply) = 0;
  virtual void fork(proto::Reply::Builder reply, std::vector<UniqueFd>& fds) = 0;
  // A backend setting; answers Reply.parameter or a failure.
  virtual void setParameter(std::string_view key, std::string_view value, proto::Reply::Builder reply) = 0;
  // Builds and runs the benchmark's program; answers Reply.run or a failure.
  virtual void run(const RunRequest& request, proto::Reply::Builder reply) = 0;
  // What each action would return for reward row `rewardRow`, where the
  // state cache knows; answers Reply.peek or a failure. Changes nothing.
  virtual void peek(const std::vector<uint32_t>& actions, size_t rewardRow, proto::Reply::Builder reply) = 0;
  // Test-only requests (see protocol.capnp); called only by the test
  // flavour's dispatch (forkgym-test-server, FORKGYM_TEST_ACTIONS).
  virtual void testSyscall(int64_t number, proto::Reply::Builder reply) = 0;
  virtual void testCloseChannel() = 0;
};

struct RequestReply {
  std::unique_ptr<capnp::MallocMessageBuilder> message;  // a Reply
  std::vector<UniqueFd> fds;
  bool exitAfterReply = false;
};

RequestReply dispatchRequest(capnp::MessageReader& request, RequestHandler& handler);

// A failure reply for a request that could not even be read.
std::unique_ptr<capnp::MallocMessageBuilder> failureReply(const Error& error);

}  // namespace forkgym::forkserver
