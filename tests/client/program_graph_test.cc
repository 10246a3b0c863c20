// readProgramGraph (client/program_graph.h): a worker's program graph bytes
// read back, and every way they can be malformed refused as ProtocolMismatch
// naming what was wrong, never read out of bounds.
#include <gtest/gtest.h>

#include <capnp/message.h>
#include <capnp/serialize.h>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "client/program_graph.h"
#include "ipc/protocol.capnp.h"

namespace forkgym {
namespace {

// root -> a (call), a -> v (data): three nodes, two edges; `change` breaks it.
std::vector<uint8_t> graphBytes(const std::function<void(proto::ProgramGraph::Builder)>& change = {}) {
  capnp::MallocMessageBuilder message;
  auto graph = message.initRoot<proto::ProgramGraph>();
  auto types = graph.initNodeType(3);
  types.set(0, 0);
  types.set(1, 0);
  types.set(2, 1);
  auto texts = graph.initNodeText(3);
  texts.set(0, 0);
  texts.set(1, 1);
  texts.set(2, 2);
  auto full = graph.initNodeFullText(3);
  full.set(0, proto::NO_FULL_TEXT);
  full.set(1, 3);
  full.set(2, 4);
  graph.initNodeFunction(3);
  graph.initNodeBlock(3);
  auto flows = graph.initEdgeFlow(2);
  flows.set(0, 2);
  flows.set(1, 1);
  graph.initEdgePosition(2);
  auto sources = graph.initEdgeSource(2);
  sources.set(0, 0);
  sources.set(1, 1);
  auto targets = graph.initEdgeTarget(2);
  targets.set(0, 1);
  targets.set(1, 2);
  auto strings = graph.initStrings(5);
  strings.set(0, "[external]");
  strings.set(1, "add");
  strings.set(2, "i32");
  strings.set(3, "%1 = add i32 %0, 1");
  strings.set(4, "i32 %1");
  graph.initFunctionNames(1).set(0, "f");
  graph.setModuleName("m.c");
  if (change) change(graph);
  auto words = capnp::messageToFlatArray(message);
  auto bytes = words.asBytes();
  return std::vector<uint8_t>(bytes.begin(), bytes.end());
}

void expectRefused(const std::vector<uint8_t>& bytes, const std::string& saying) {
  auto read = readProgramGraph(bytes);
  ASSERT_FALSE(read.ok());
  EXPECT_EQ(read.error().outcome, Outcome::ProtocolMismatch);
  EXPECT_NE(read.error().message.find(saying), std::string::npos) << read.error().message;
  // The check alone (a step reply's) refuses it the same way.
  auto checked = checkProgramGraph(bytes);
  ASSERT_FALSE(checked.ok());
  EXPECT_EQ(checked.error().outcome, Outcome::ProtocolMismatch);
  EXPECT_EQ(checked.error().message, read.error().message);
}

TEST(ProgramGraphReader, ReadsEveryColumnBack) {
  auto read = readProgramGraph(graphBytes());
  ASSERT_TRUE(read.ok()) << read.error().message;
  EXPECT_TRUE(checkProgramGraph(graphBytes()).ok());
  EXPECT_EQ(read->nodeCount(), 3u);
  EXPECT_EQ(read->edgeCount(), 2u);
  EXPECT_EQ(read->nodeType, (std::vector<uint8_t>{0, 0, 1}));
  EXPECT_EQ(read->nodeFullText[0], ProgramGraphColumns::kNoFullText);
  EXPECT_EQ(read->strings[read->nodeFullText[1]], "%1 = add i32 %0, 1");
  EXPECT_EQ(read->edgeFlow, (std::vector<uint8_t>{2, 1}));
  EXPECT_EQ(read->edgeTarget, (std::vector<uint32_t>{1, 2}));
  EXPECT_EQ(read->functionNames, std::vector<std::string>{"f"});
  EXPECT_EQ(read->moduleName, "m.c");
}

// Checked and then copied, every column is read twice: a graph far larger
// than any fixed slack must still be within the reader's traversal limit.
TEST(ProgramGraphReader, ReadsALargeGraph) {
  constexpr unsigned kNodes = 20000;
  const std::vector<uint8_t> bytes = graphBytes([](proto::ProgramGraph::Builder g) {
    g.initNodeType(kNodes);
    g.initNodeText(kNodes);
    auto full = g.initNodeFullText(kNodes);
    for (unsigned i = 0; i < kNodes; ++i) full.set(i, proto::NO_FULL_TEXT);
    g.initNodeFunction(kNodes);
    g.initNodeBlock(kNodes);
    g.initEdgeFlow(kNodes);
    g.initEdgePosition(kNodes);
    auto sources = g.initEdgeSource(kNodes);
    auto targets = g.initEdgeTarget(kNodes);
    for (unsigned j = 0; j < kNodes; ++j) {
      sources.set(j, j);
      targets.set(j, (j + 1) % kNodes);
    }
  });
  auto read = readProgramGraph(bytes);
  ASSERT_TRUE(read.ok()) << read.error().message;
  EXPECT_EQ(read->nodeCount(), kNodes);
  EXPECT_EQ(read->edgeTarget.back(), 0u);
}

TEST(ProgramGraphReader, ReadsBytesAtAnyAlignment) {
  const std::vector<uint8_t> bytes = graphBytes();
  std::vector<uint8_t> shifted(bytes.size() + 1);
  std::copy(bytes.begin(), bytes.end(), shifted.begin() + 1);
  auto read = readProgramGraph(std::span<const uint8_t>(shifted).subspan(1));
  ASSERT_TRUE(read.ok()) << read.error().message;
  EXPECT_EQ(read->edgeTarget, (std::vector<uint32_t>{1, 2}));
}

TEST(ProgramGraphReader, RefusesEdgesToNodesThatDoNotExist) {
  expectRefused(graphBytes([](auto g) { g.getEdgeTarget().set(1, 3); }), "joins a node that does not exist");
  expectRefused(graphBytes([](auto g) { g.getEdgeSource().set(0, 0xffffffffu); }), "joins a node that does not exist");
}

TEST(ProgramGraphReader, RefusesTextsPastTheStringTable) {
  expectRefused(graphBytes([](auto g) { g.getNodeText().set(2, 5); }), "past the string table");
  expectRefused(graphBytes([](auto g) { g.getNodeFullText().set(1, 9); }), "past the string table");
}

TEST(ProgramGraphReader, RefusesColumnsOfDifferentLengthsAndUnknownKinds) {
  expectRefused(graphBytes([](auto g) { g.initNodeBlock(2); }), "node columns differ in length");
  expectRefused(graphBytes([](auto g) { g.initEdgePosition(1); }), "edge columns differ in length");
  expectRefused(graphBytes([](auto g) { g.getNodeType().set(2, 3); }), "has type 3");
  expectRefused(graphBytes([](auto g) { g.getEdgeFlow().set(0, 7); }), "has flow 7");
}

TEST(ProgramGraphReader, RefusesBytesThatAreNoMessage) {
  expectRefused({}, "not a whole number of message words");
  expectRefused({1, 2, 3}, "not a whole number of message words");
  std::vector<uint8_t> truncated = graphBytes();
  truncated.resize(truncated.size() / 2 / 8 * 8);
  expectRefused(truncated, "not well formed");
  // A segment table claiming more segments than there are bytes.
  expectRefused(std::vector<uint8_t>(16, 0xff), "not well formed");
}

}  // namespace
}  // namespace forkgym
