#include "ipc/message_area.h"

#include <algorithm>
#include <cstring>

namespace forkgym {

capnp::ReaderOptions peerReaderOptions(size_t words) {
  capnp::ReaderOptions options;
  options.traversalLimitInWords = 4 * uint64_t{words} + 1024;
  options.nestingLimit = 32;
  return options;
}

Result<size_t> writeMessage(capnp::MessageBuilder& message, std::span<std::byte> area) {
  auto segments = message.getSegmentsForOutput();
  // Segment table: (count - 1), then each size in words, padded to a word.
  const size_t tableWords = (segments.size() + 2) / 2;
  size_t totalWords = tableWords;
  for (auto segment : segments) totalWords += segment.size();
  const size_t totalBytes = totalWords * sizeof(capnp::word);
  if (totalBytes > area.size()) {
    return makeError(Outcome::InvalidRequest,
                     "message of " + std::to_string(totalBytes) + " bytes does not fit the " +
                         std::to_string(area.size()) + "-byte shared area; ask for fewer or smaller observations");
  }
  auto* table = reinterpret_cast<uint32_t*>(area.data());
  table[0] = static_cast<uint32_t>(segments.size() - 1);
  for (size_t i = 0; i < segments.size(); ++i) table[i + 1] = static_cast<uint32_t>(segments[i].size());
  if (segments.size() % 2 == 0) table[segments.size() + 1] = 0;
  std::byte* out = area.data() + tableWords * sizeof(capnp::word);
  for (auto segment : segments) {
    std::memcpy(out, segment.begin(), segment.size() * sizeof(capnp::word));
    out += segment.size() * sizeof(capnp::word);
  }
  return totalBytes;
}

namespace {

bool validLength(std::span<const std::byte> area, uint64_t length) {
  return length != 0 && length <= area.size() && length % sizeof(capnp::word) == 0;
}

Error invalidLength(std::span<const std::byte> area, uint64_t length) {
  return makeError(Outcome::ProtocolMismatch, "the peer announced a message of " + std::to_string(length) +
                                                  " bytes, which is not a whole number of words within the " +
                                                  std::to_string(area.size()) + "-byte area");
}

Result<std::unique_ptr<capnp::FlatArrayMessageReader>> readerOver(kj::ArrayPtr<const capnp::word> words) {
  // The segment table is validated here; a malformed one throws, which we
  // turn into an error instead of letting it unwind through a public API.
  const capnp::ReaderOptions options = peerReaderOptions(words.size());
  std::unique_ptr<capnp::FlatArrayMessageReader> reader;
  kj::Maybe<kj::Exception> failure = kj::runCatchingExceptions([&] {
    reader = std::make_unique<capnp::FlatArrayMessageReader>(words, options);
  });
  KJ_IF_MAYBE(e, failure) {
    return makeError(Outcome::ProtocolMismatch, std::string("malformed message from peer: ") + e->getDescription().cStr());
  }
  return reader;
}

}  // namespace

Result<std::unique_ptr<capnp::FlatArrayMessageReader>> readMessage(std::span<std::byte> area, uint64_t length) {
  if (!validLength(area, length)) return invalidLength(area, length);
  return readerOver(kj::ArrayPtr<const capnp::word>(reinterpret_cast<const capnp::word*>(area.data()),
                                                    length / sizeof(capnp::word)));
}

Result<CopiedMessage> copyMessage(std::span<const std::byte> area, uint64_t length) {
  if (!validLength(area, length)) return invalidLength(area, length);
  CopiedMessage message{kj::heapArray<capnp::word>(length / sizeof(capnp::word)), nullptr};
  std::memcpy(message.words.begin(), area.data(), length);
  auto reader = readerOver(kj::ArrayPtr<const capnp::word>(message.words.begin(), message.words.size()));
  if (!reader) return reader.takeError();
  message.reader = std::move(*reader);
  return message;
}

}  // namespace forkgym
