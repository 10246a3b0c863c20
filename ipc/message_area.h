// Cap'n Proto messages in a fixed area of the shared region.
//
// The writer builds in private memory and copies the segments into the area
// (building in place would let a scribbling peer steer the builder's
// pointers); the reader parses in place, with Cap'n Proto's bounds checks
// guarding every access, so a hostile peer can at worst produce a message
// that fails validation.
#pragma once

#include <capnp/message.h>
#include <capnp/serialize.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <span>

#include "ipc/result.h"

namespace forkgym {

// Writes `message` into `area`. Returns its length in bytes, or an
// InvalidRequest error if it does not fit.
Result<size_t> writeMessage(capnp::MessageBuilder& message, std::span<std::byte> area);

// A reader over `length` bytes of `area`, or ProtocolMismatch if the length
// or the segment table is invalid. The area must outlive the reader.
Result<std::unique_ptr<capnp::FlatArrayMessageReader>> readMessage(std::span<std::byte> area, uint64_t length);

// Reader options for every message from a peer: bounded traversal and depth.
capnp::ReaderOptions peerReaderOptions();

}  // namespace forkgym
