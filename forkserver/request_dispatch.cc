#include "forkserver/request_dispatch.h"

#include "forkserver/control_dispatch.h"

namespace forkgym::forkserver {

std::unique_ptr<capnp::MallocMessageBuilder> failureReply(const Error& error) {
  auto message = std::make_unique<capnp::MallocMessageBuilder>();
  setFailure(message->initRoot<proto::Reply>().initFailure(), error);
  return message;
}

namespace {

enum class Table { Observation, Reward };

// The row of the observation or reward table named `name`, or a failure
// reply saying it is unknown.
std::optional<size_t> findRowOrFail(Table table, capnp::Text::Reader name, RequestHandler& handler,
                                    proto::Reply::Builder reply) {
  const std::string_view text(name.cStr(), name.size());
  const auto row = table == Table::Observation ? handler.findObservation(text) : handler.findReward(text);
  if (!row) {
    setFailure(reply.initFailure(),
               makeError(Outcome::InvalidRequest, std::string("unknown ") +
                                                      (table == Table::Observation ? "observation" : "reward") +
                                                      " space '" + std::string(text) +
                                                      "'; the server's description lists the valid names"));
  }
  return row;
}

// Returns true when the episode is over.
bool dispatchStep(proto::Step::Reader step, RequestHandler& handler, proto::Reply::Builder reply) {
  // Validate every name before touching the session: a typo loses nothing.
  // Names are looked up in place in the request: no copies per step.
  std::vector<size_t> observations, rewards;
  for (auto name : step.getObservations()) {
    const auto row = findRowOrFail(Table::Observation, name, handler, reply);
    if (!row) return false;
    observations.push_back(*row);
  }
  for (auto name : step.getRewards()) {
    const auto row = findRowOrFail(Table::Reward, name, handler, reply);
    if (!row) return false;
    rewards.push_back(*row);
  }
  auto actionList = step.getActions();
  std::vector<uint32_t> actions;
  actions.reserve(actionList.size());
  for (uint32_t action : actionList) actions.push_back(action);
  return handler.step(actions, observations, rewards, reply);
}

}  // namespace

RequestReply dispatchRequest(capnp::MessageReader& request, RequestHandler& handler) {
  RequestReply out;
  out.message = std::make_unique<capnp::MallocMessageBuilder>();
  kj::Maybe<kj::Exception> failure = kj::runCatchingExceptions([&] {
    auto root = request.getRoot<proto::Request>();
    auto reply = out.message->initRoot<proto::Reply>();
    switch (root.which()) {
      case proto::Request::STEP:
        out.exitAfterReply = dispatchStep(root.getStep(), handler, reply);
        return;
      case proto::Request::FORK:
        handler.fork(reply, out.fds);
        return;
      case proto::Request::SET_PARAMETER: {
        auto parameter = root.getSetParameter();
        handler.setParameter(std::string_view(parameter.getKey().cStr(), parameter.getKey().size()),
                             std::string_view(parameter.getValue().cStr(), parameter.getValue().size()), reply);
        return;
      }
      case proto::Request::RUN:
        handler.run(readRunRequest(root.getRun()), reply);
        return;
      case proto::Request::PEEK: {
        auto peek = root.getPeek();
        const auto row = findRowOrFail(Table::Reward, peek.getReward(), handler, reply);
        if (!row) return;
        std::vector<uint32_t> actions;
        actions.reserve(peek.getActions().size());
        for (uint32_t action : peek.getActions()) actions.push_back(action);
        handler.peek(actions, *row, reply);
        return;
      }
#ifdef FORKGYM_TEST_ACTIONS
      case proto::Request::TEST_SYSCALL:
        handler.testSyscall(root.getTestSyscall(), reply);
        return;
      case proto::Request::TEST_CLOSE_CHANNEL:
        handler.testCloseChannel();
        return;
#else
      case proto::Request::TEST_SYSCALL:
      case proto::Request::TEST_CLOSE_CHANNEL:
        setFailure(reply.initFailure(),
                   makeError(Outcome::InvalidRequest,
                             "test-only request refused: this is a product build of forkgym-server; the test "
                             "suites use forkgym-test-server"));
        return;
#endif
      default:
        setFailure(reply.initFailure(), makeError(Outcome::InvalidRequest, "unknown request type"));
    }
  });
  KJ_IF_MAYBE(e, failure) {
    // A malformed request (Cap'n Proto validation failed): answer, carry on.
    out.fds.clear();
    out.exitAfterReply = false;
    out.message = failureReply(
        makeError(Outcome::InvalidRequest, std::string("malformed request: ") + e->getDescription().cStr()));
  }
  return out;
}

}  // namespace forkgym::forkserver
