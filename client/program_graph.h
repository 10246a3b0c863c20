// A program graph as a worker sent it: the bytes of an observation of form
// programGraph (ipc/protocol.capnp's ProgramGraph message, which the LLVM
// backend's Programl row computes), read and checked.
//
// Any process, any thread: a pure function of the bytes. Nothing a worker
// sends is trusted (DESIGN.md invariant 4): a message that does not parse,
// columns of different lengths, an edge naming a node that does not exist or
// a text index past the string table are ProtocolMismatch, never a graph
// with holes or an out-of-bounds read.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "base/result.h"

namespace forkgym {

struct ProgramGraphColumns {
  static constexpr uint32_t kNoFullText = 0xffffffffu;  // a node without a full_text feature

  // Node i is entry i of each node column (all the same length).
  std::vector<uint8_t> nodeType;        // 0 instruction, 1 variable, 2 constant
  std::vector<uint32_t> nodeText;       // into strings
  std::vector<uint32_t> nodeFullText;   // into strings, or kNoFullText
  std::vector<uint32_t> nodeFunction;
  std::vector<uint32_t> nodeBlock;
  // Edge j is entry j of each edge column.
  std::vector<uint8_t> edgeFlow;        // 0 control, 1 data, 2 call
  std::vector<uint32_t> edgePosition;
  std::vector<uint32_t> edgeSource;     // node indices
  std::vector<uint32_t> edgeTarget;
  std::vector<std::string> strings;
  std::vector<std::string> functionNames;
  std::string moduleName;
  std::vector<std::pair<std::string, std::string>> moduleFeatures;

  size_t nodeCount() const { return nodeType.size(); }
  size_t edgeCount() const { return edgeFlow.size(); }
};

Result<ProgramGraphColumns> readProgramGraph(std::span<const uint8_t> bytes);

// The same checks, copying nothing out (the client's check of a step reply).
Status checkProgramGraph(std::span<const uint8_t> bytes);

}  // namespace forkgym
