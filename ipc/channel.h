// Channel: one client's private line to one worker — a SharedRegion for the
// message bodies plus a Doorbell for turns.
//
// Lifecycle:
//   1. Whoever starts a worker (the zygote, or a worker answering env.fork())
//      calls Channel::create(): the worker keeps the Channel, and
//      ClientEnds (memfd + doorbell end) go to the client over SCM_RIGHTS.
//   2. The client calls Channel::attach(ClientEnds) and then call() per
//      request; the worker loops receiveRequest() / sendReply().
//   3. Either side closing its doorbell ends the conversation: the worker
//      exits, the client reports the worker's last words.
// The client numbers its requests (RegionHeader::requestSeq); a worker's
// reply must carry the number of the request it answers, so an extra or
// stale ring is a ProtocolMismatch rather than an old reply read as new.
#pragma once

#include <capnp/message.h>
#include <capnp/serialize.h>

#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "ipc/doorbell.h"
#include "base/result.h"
#include "ipc/shared_region.h"
#include "base/unique_fd.h"

namespace forkgym {

struct ClientEnds {
  UniqueFd memfd;
  UniqueFd doorbell;
};

struct Message {
  kj::Array<capnp::word> storage;  // a reply's private copy (empty for requests read in place)
  std::unique_ptr<capnp::FlatArrayMessageReader> reader;
  std::vector<UniqueFd> fds;
};

class Channel {
 public:
  Channel() = default;
  Channel(SharedRegion region, Doorbell doorbell)
      : region_(std::move(region)), doorbell_(std::move(doorbell)) {}

  static Result<std::pair<Channel, ClientEnds>> create(size_t regionBytes = kDefaultRegionBytes);
  static Result<Channel> attach(ClientEnds ends);

  // Client side: write `request`, ring, wait up to `timeout` for the reply.
  // SessionClosed if the worker died (read lastWords() to learn why),
  // TimedOut if it did not answer in time (the caller kills it).
  // TimedOut and Interrupted leave the worker mid-request: the caller kills it.
  Result<Message> call(capnp::MessageBuilder& request, std::optional<std::chrono::milliseconds> timeout,
                       size_t maxReplyFds = 0, const Interruption* interruption = nullptr);
  // call() in two halves, so a client can post requests to many workers
  // before waiting for any of them (vector environments).
  Status post(capnp::MessageBuilder& request);
  Result<Message> collect(std::optional<std::chrono::milliseconds> timeout, size_t maxReplyFds = 0,
                          const Interruption* interruption = nullptr);

  // Worker side: wait for the next request (forever). SessionClosed when
  // the client is gone.
  Result<Message> receiveRequest();
  Status sendReply(capnp::MessageBuilder& reply, std::span<const int> fds = {});

  // Client side: true once the worker has started on the request post()
  // wrote (it took it off the doorbell and is working on it). Tests poll
  // this instead of sleeping while a worker enters a step.
  bool requestStarted() const;

  const LastWords& lastWords() const { return region_.header().lastWords; }
  SharedRegion& region() { return region_; }
  const SharedRegion& region() const { return region_; }
  Doorbell& doorbell() { return doorbell_; }
  bool valid() const { return region_.size() != 0; }

 private:
  // How long collect() polls before sleeping: about as long as recent
  // replies took, when that is short enough to be worth a core's time.
  std::chrono::microseconds replySpin() const;

  SharedRegion region_;
  Doorbell doorbell_;
  // Client: the number of the last request posted. Worker: the number of
  // the request being answered. Private copies: the region is the peer's
  // to scribble on.
  uint64_t seq_ = 0;
  std::chrono::steady_clock::time_point postedAt_{};
  double typicalReplyUs_ = 0;  // moving average of post -> reply
};

}  // namespace forkgym
