#include "ipc/channel.h"

#include <fcntl.h>
#include <unistd.h>

#include "ipc/message_area.h"
#include "ipc/syscall.h"

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
  auto region = SharedRegion::attach(std::move(ends.memfd));
  if (!region) return region.takeError();
  return Channel(std::move(*region), Doorbell(std::move(ends.doorbell)));
}

Result<Message> Channel::call(capnp::MessageBuilder& request, std::optional<std::chrono::milliseconds> timeout,
                              size_t maxReplyFds) {
  if (auto posted = post(request); !posted) return posted.takeError();
  return collect(timeout, maxReplyFds);
}

Status Channel::post(capnp::MessageBuilder& request) {
  auto length = writeMessage(request, region_.requestArea());
  if (!length) return length.takeError();
  region_.header().requestBytes = *length;
  return doorbell_.ring(Ring::Request);
}

Result<Message> Channel::collect(std::optional<std::chrono::milliseconds> timeout, size_t maxReplyFds) {
  RegionHeader& header = region_.header();
  auto rung = doorbell_.wait(timeout, maxReplyFds);
  if (!rung) return rung.takeError();
  if (rung->ring != Ring::Reply) return makeError(Outcome::ProtocolMismatch, "the worker rang out of turn");
  auto reader = readMessage(region_.replyArea(), header.replyBytes);
  if (!reader) return reader.takeError();
  return Message{std::move(*reader), std::move(rung->fds)};
}

Result<Message> Channel::receiveRequest() {
  auto rung = doorbell_.wait(std::nullopt, 0);
  if (!rung) return rung.takeError();
  if (rung->ring != Ring::Request) return makeError(Outcome::ProtocolMismatch, "the client rang out of turn");
  auto reader = readMessage(region_.requestArea(), region_.header().requestBytes);
  if (!reader) return reader.takeError();
  return Message{std::move(*reader), {}};
}

Status Channel::sendReply(capnp::MessageBuilder& reply, std::span<const int> fds) {
  auto length = writeMessage(reply, region_.replyArea());
  if (!length) return length.takeError();
  region_.header().replyBytes = *length;
  return doorbell_.ring(Ring::Reply, fds);
}

}  // namespace forkgym
