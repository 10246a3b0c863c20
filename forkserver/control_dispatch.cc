#include "forkserver/control_dispatch.h"

#include <capnp/serialize.h>

#include <cstdio>

#include "ipc/message_area.h"

namespace forkgym::forkserver {
namespace {

// More backends than any client is built knowing.
constexpr unsigned kMaxHelloBackends = 64;

std::string hex(uint64_t value) {
  char text[19];
  std::snprintf(text, sizeof(text), "%016llx", static_cast<unsigned long long>(value));
  return text;
}

}  // namespace

void setFailure(proto::Failure::Builder failure, const Error& error) {
  failure.setOutcome(static_cast<uint16_t>(error.outcome));
  failure.setMessage(error.message);
  failure.setSignal(error.signal);
}

ControlReplyFrame dispatchControlFrame(kj::ArrayPtr<const capnp::word> frame, bool& greeted,
                                       ControlHandler& handler) {
  ControlReplyFrame out;
  out.message = std::make_unique<capnp::MallocMessageBuilder>();
  auto root = out.message->initRoot<proto::ControlReply>();
  bool deferred = false;

  // Every field is validated where it is used; a malformed message makes
  // Cap'n Proto throw, which becomes a failure reply, never a crash.
  kj::Maybe<kj::Exception> exception = kj::runCatchingExceptions([&] {
    capnp::FlatArrayMessageReader reader(frame, peerReaderOptions(frame.size()));
    auto request = reader.getRoot<proto::ControlRequest>();
    const auto which = request.which();
    if (!greeted && which != proto::ControlRequest::HELLO) {
      setFailure(root.initFailure(), makeError(Outcome::ProtocolMismatch, "the first message must be a hello"));
      return;
    }
    switch (which) {
      case proto::ControlRequest::HELLO: {
        auto hello = request.getHello();
        if (hello.getProtocolVersion() != proto::PROTOCOL_VERSION) {
          setFailure(root.initFailure(),
                     makeError(Outcome::ProtocolMismatch,
                               "client speaks protocol " + std::to_string(hello.getProtocolVersion()) +
                                   ", server speaks " + std::to_string(proto::PROTOCOL_VERSION) +
                                   "; install matching forkgym client and server"));
          return;
        }
        // Each backend the client was built knowing must have the same
        // actions here. No wildcard: a client that names a backend without
        // its table's hash (0) is refused like one built for another table.
        // A backend whose table is generated at start-up (hash 0 here) has
        // nothing to compare; one the server lacks is the client's business.
        // Bounded before it is walked: a list of empty structs costs a peer
        // almost nothing to send and the zygote a loop per element.
        const auto backends = hello.getBackends();
        if (backends.size() > kMaxHelloBackends) {
          setFailure(root.initFailure(),
                     makeError(Outcome::ProtocolMismatch, "the hello names " + std::to_string(backends.size()) +
                                                              " backends; a client knows at most " +
                                                              std::to_string(kMaxHelloBackends)));
          return;
        }
        for (auto known : backends) {
          const std::string name = known.getName();
          const auto ours = handler.actionTableHash(name);
          if (!ours || *ours == 0 || known.getActionTableHash() == *ours) continue;
          setFailure(root.initFailure(),
                     makeError(Outcome::ProtocolMismatch,
                               "client built for action table " + hex(known.getActionTableHash()) + " of backend '" +
                                   name + "', server has " + hex(*ours) +
                                   "; install matching forkgym client and server"));
          return;
        }
        greeted = true;
        handler.hello(root.initHello());
        return;
      }
      case proto::ControlRequest::DESCRIBE_BACKEND: {
        const std::string backend = request.getDescribeBackend();
        if (auto described = handler.describe(backend, root.initDescription()); !described) {
          setFailure(root.initFailure(), described.error());
        }
        return;
      }
      case proto::ControlRequest::OBSOLETE_DESCRIBE:
        setFailure(root.initFailure(),
                   makeError(Outcome::ProtocolMismatch,
                             "describe without a backend is protocol 1; ask describeBackend with a backend's name "
                             "(the hello lists them)"));
        return;
      case proto::ControlRequest::WORKER_EXIT:
        handler.workerExit(request.getWorkerExit(), root.initWorkerExit());
        return;
      case proto::ControlRequest::STATUS:
        handler.status(root.initStatus());
        return;
      case proto::ControlRequest::NEW_SESSION: {
        auto session = request.getNewSession();
        const std::string uri = session.getBenchmark();
        const std::string backend = session.getBackend();
        std::optional<RunConfig> runConfig;
        if (session.hasRunConfig()) runConfig = readRunConfig(session.getRunConfig());
        auto started = handler.newSession(backend, uri, session.getLimits(), root.initSession(), out.fds, runConfig);
        if (!started) {
          out.fds.clear();
          setFailure(root.initFailure(), started.error());
        } else if (*started == ControlHandler::SessionStart::Deferred) {
          out.fds.clear();
          deferred = true;
        }
        return;
      }
      default:
        setFailure(root.initFailure(), makeError(Outcome::InvalidRequest, "unknown control request"));
    }
  });
  if (deferred && exception == nullptr) out.message.reset();
  KJ_IF_MAYBE(e, exception) {
    // The reply may be half built: start again with just the failure.
    out.fds.clear();
    out.message = std::make_unique<capnp::MallocMessageBuilder>();
    setFailure(out.message->initRoot<proto::ControlReply>().initFailure(),
               makeError(Outcome::InvalidRequest, std::string("malformed request: ") + e->getDescription().cStr()));
  }
  return out;
}

}  // namespace forkgym::forkserver
