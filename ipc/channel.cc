#include "ipc/channel.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <atomic>
#include <unistd.h>

#include "ipc/message_area.h"
#include "base/syscall.h"

namespace forkgym {

Result<std::pair<Channel, ClientEnds>> Channel::create(size_t regionBytes) {
  auto region = SharedRegion::create(regionBytes);
  if (!region) return region.takeError();
  auto bells = Doorbell::createPair();
  if (!bells) return bells.takeError();
  auto dup = sys("dup(memfd)", [&] { return fcntl(region->fd(), F_DUPFD_CLOEXEC, 0); });
  if (!dup) return dup.takeError();
  ClientEnds ends{UniqueFd(*dup), bells->second.release()};
  return std::pair{Channel(std::move(*region), std::move(bells->first)), std::move(ends)};
}

Result<Channel> Channel::attach(ClientEnds ends) {
  // The doorbell came from a peer: it must be a connected Unix
  // SOCK_SEQPACKET socket, or turns and peer death mean nothing.
  int type = 0, domain = 0;
  socklen_t length = sizeof(type);
  const bool isSocket = getsockopt(ends.doorbell.get(), SOL_SOCKET, SO_TYPE, &type, &length) == 0 &&
                        (length = sizeof(domain), getsockopt(ends.doorbell.get(), SOL_SOCKET, SO_DOMAIN, &domain, &length) == 0);
  sockaddr_un peer{};
  socklen_t peerLength = sizeof(peer);
  if (!isSocket || type != SOCK_SEQPACKET || domain != AF_UNIX ||
      getpeername(ends.doorbell.get(), reinterpret_cast<sockaddr*>(&peer), &peerLength) != 0) {
    return makeError(Outcome::ProtocolMismatch, "the peer's doorbell is not a connected Unix SOCK_SEQPACKET socket");
  }
  auto region = SharedRegion::attach(std::move(ends.memfd));
  if (!region) return region.takeError();
  return Channel(std::move(*region), Doorbell(std::move(ends.doorbell)));
}

Result<Message> Channel::call(capnp::MessageBuilder& request, std::optional<std::chrono::milliseconds> timeout,
                              size_t maxReplyFds, const Interruption* interruption) {
  if (auto posted = post(request); !posted) return posted.takeError();
  return collect(timeout, maxReplyFds, interruption);
}

Status Channel::post(capnp::MessageBuilder& request) {
  auto length = writeMessage(request, region_.requestArea());
  if (!length) return length.takeError();
  RegionHeader& header = region_.header();
  header.requestBytes = *length;
  header.requestSeq.store(++seq_, std::memory_order_release);
  postedAt_ = std::chrono::steady_clock::now();
  return doorbell_.ring(Ring::Request);
}

bool Channel::requestStarted() const {
  return seq_ != 0 && region_.header().startedSeq.load(std::memory_order_acquire) == seq_;
}

std::chrono::microseconds Channel::replySpin() const {
  // Replies that usually take under ~300 µs are cheaper to wait for awake
  // (a wake-up costs ~100 µs on a virtual machine); for slower ones the
  // wake-up is noise and spinning would only burn a core other episodes
  // could use.
  constexpr double kWorthSpinningUs = 300;
  if (typicalReplyUs_ <= 0 || typicalReplyUs_ > kWorthSpinningUs) return kDefaultSpin;
  return std::chrono::microseconds(static_cast<int64_t>(std::max(1.5 * typicalReplyUs_ + 20, 50.0)));
}

Result<Message> Channel::collect(std::optional<std::chrono::milliseconds> timeout, size_t maxReplyFds,
                                 const Interruption* interruption) {
  RegionHeader& header = region_.header();
  auto rung = doorbell_.wait(timeout, maxReplyFds, replySpin(), interruption);
  const double tookUs =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - postedAt_).count();
  typicalReplyUs_ = typicalReplyUs_ <= 0 ? tookUs : 0.8 * typicalReplyUs_ + 0.2 * tookUs;
  if (!rung) return rung.takeError();
  if (rung->ring != Ring::Reply) return makeError(Outcome::ProtocolMismatch, "the worker rang out of turn");
  if (const uint64_t answered = header.replySeq.load(std::memory_order_acquire); answered != seq_) {
    return makeError(Outcome::ProtocolMismatch, "the worker rang out of turn: its reply answers request " +
                                                    std::to_string(answered) + ", not request " +
                                                    std::to_string(seq_));
  }
  // One read of the length the worker wrote, and a private copy of the
  // message: the worker can rewrite both while we parse (message_area.h).
  const uint64_t length = std::atomic_ref<uint64_t>(header.replyBytes).load(std::memory_order_acquire);
  auto reply = copyMessage(region_.replyArea(), length);
  if (!reply) return reply.takeError();
  return Message{std::move(reply->words), std::move(reply->reader), std::move(rung->fds)};
}

Result<Message> Channel::receiveRequest() {
  auto rung = doorbell_.wait(std::nullopt, 0);
  if (!rung) return rung.takeError();
  if (rung->ring != Ring::Request) return makeError(Outcome::ProtocolMismatch, "the client rang out of turn");
  // Echoed in the reply (even to a request that turns out unreadable), and
  // published now so the client can see this request has started.
  seq_ = region_.header().requestSeq.load(std::memory_order_acquire);
  region_.header().startedSeq.store(seq_, std::memory_order_release);
  auto reader = readMessage(region_.requestArea(), region_.header().requestBytes);
  if (!reader) return reader.takeError();
  return Message{{}, std::move(*reader), {}};
}

Status Channel::sendReply(capnp::MessageBuilder& reply, std::span<const int> fds) {
  auto length = writeMessage(reply, region_.replyArea());
  if (!length) return length.takeError();
  region_.header().replyBytes = *length;
  region_.header().replySeq.store(seq_, std::memory_order_release);
  return doorbell_.ring(Ring::Reply, fds);
}

}  // namespace forkgym
