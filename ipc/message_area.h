// Cap'n Proto messages in a fixed area of the shared region.
//
// The writer builds in private memory and copies the segments into the area
// (building in place would let a scribbling peer steer the builder's
// pointers). A reader of a message from a less trusted peer — the client
// reading its worker's reply — copies it out first (copyMessage): a worker
// can rewrite the area while Cap'n Proto reads it, so a length or pointer
// could change between its bounds check and its use. The copy is cheap
// beside what a reply costs to produce: ~0.2 ms for the 2.7 MB Ir of a
// 62k-instruction module, which takes the worker ~80 ms to print; well
// under a microsecond for a step's usual sub-kilobyte reply. The worker reads its client's requests in place
// (readMessage): they are small, and a client can only mislead its own
// episode. Either way Cap'n Proto's bounds checks guard every access, so a
// hostile peer can at worst produce a message that fails validation.
#pragma once

#include <capnp/message.h>
#include <capnp/serialize.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <span>

#include "base/result.h"

namespace forkgym {

// Writes `message` into `area`. Returns its length in bytes, or an
// InvalidRequest error if it does not fit.
Result<size_t> writeMessage(capnp::MessageBuilder& message, std::span<std::byte> area);

// A reader over `length` bytes of `area`, or ProtocolMismatch if the length
// or the segment table is invalid. The area must outlive the reader. Reads
// through it are limited to a few times the message's size, so a message
// whose pointers overlap cannot make its reader copy without bound.
Result<std::unique_ptr<capnp::FlatArrayMessageReader>> readMessage(std::span<std::byte> area, uint64_t length);

// A reader over a private copy of the first `length` bytes of `area`, or
// ProtocolMismatch as readMessage(). `words` is declared first, so it
// outlives the reader that views it.
struct CopiedMessage {
  kj::Array<capnp::word> words;
  std::unique_ptr<capnp::FlatArrayMessageReader> reader;
};
Result<CopiedMessage> copyMessage(std::span<const std::byte> area, uint64_t length);

// Reader options for a message of `words` words from a peer: bounded depth,
// and reads bounded by the message's own size. Pointers in a hostile message
// may all point at one large object, and a list of zero-sized structs may
// claim millions of elements in a few bytes; an unbounded reader would copy
// gigabytes out of a few hundred bytes. An honest message is read about
// once; four times its size leaves ample room.
capnp::ReaderOptions peerReaderOptions(size_t words);

}  // namespace forkgym
