#include "passes/program_graph.h"

#include <algorithm>

#include <capnp/message.h>
#include <capnp/serialize.h>

#include "ipc/protocol.capnp.h"

namespace forkgym::passes {

static_assert(ProgramGraph::kNoFullText == proto::NO_FULL_TEXT);

uint32_t ProgramGraph::intern(std::string_view text) {
  auto [at, added] = stringIndex_.try_emplace(std::string(text), static_cast<uint32_t>(strings_.size()));
  if (added) strings_.emplace_back(text);
  return at->second;
}

uint32_t ProgramGraph::addNode(NodeType type, uint32_t text, uint32_t fullText, uint32_t function, uint32_t block) {
  nodes_.push_back({.type = type, .text = text, .fullText = fullText, .function = function, .block = block});
  return static_cast<uint32_t>(nodes_.size() - 1);
}

void ProgramGraph::addEdge(EdgeFlow flow, uint32_t position, uint32_t source, uint32_t target) {
  edges_.push_back({.flow = flow, .position = position, .source = source, .target = target});
}

namespace {

template <typename List, typename Rows, typename Field>
void fillColumn(List list, const Rows& rows, Field field) {
  for (unsigned i = 0; i < rows.size(); ++i) list.set(i, field(rows[i]));
}

kj::StringPtr textOf(const std::string& text) { return kj::StringPtr(text.c_str(), text.size()); }

}  // namespace

std::vector<uint8_t> encodeProgramGraph(const ProgramGraph& graph) {
  // One first segment large enough for the whole graph (a few words per
  // node and edge plus the strings): a single segment, a single copy out.
  size_t textBytes = 0;
  for (const std::string& text : graph.strings()) textBytes += text.size() + 8;
  const size_t words = 64 + (graph.nodes().size() * 14 + graph.edges().size() * 13 + textBytes) / 8;
  capnp::MallocMessageBuilder message(static_cast<unsigned>(std::min<size_t>(words, 1u << 28)));
  auto out = message.initRoot<proto::ProgramGraph>();
  const auto& nodes = graph.nodes();
  const auto& edges = graph.edges();
  const auto nodeCount = static_cast<unsigned>(nodes.size());
  const auto edgeCount = static_cast<unsigned>(edges.size());
  using Node = ProgramGraph::Node;
  using Edge = ProgramGraph::Edge;
  fillColumn(out.initNodeType(nodeCount), nodes, [](const Node& n) { return static_cast<uint8_t>(n.type); });
  fillColumn(out.initNodeText(nodeCount), nodes, [](const Node& n) { return n.text; });
  fillColumn(out.initNodeFullText(nodeCount), nodes, [](const Node& n) { return n.fullText; });
  fillColumn(out.initNodeFunction(nodeCount), nodes, [](const Node& n) { return n.function; });
  fillColumn(out.initNodeBlock(nodeCount), nodes, [](const Node& n) { return n.block; });
  fillColumn(out.initEdgeFlow(edgeCount), edges, [](const Edge& e) { return static_cast<uint8_t>(e.flow); });
  fillColumn(out.initEdgePosition(edgeCount), edges, [](const Edge& e) { return e.position; });
  fillColumn(out.initEdgeSource(edgeCount), edges, [](const Edge& e) { return e.source; });
  fillColumn(out.initEdgeTarget(edgeCount), edges, [](const Edge& e) { return e.target; });
  auto strings = out.initStrings(static_cast<unsigned>(graph.strings().size()));
  for (unsigned i = 0; i < strings.size(); ++i) strings.set(i, textOf(graph.strings()[i]));
  auto functions = out.initFunctionNames(static_cast<unsigned>(graph.functionNames().size()));
  for (unsigned i = 0; i < functions.size(); ++i) functions.set(i, textOf(graph.functionNames()[i]));
  out.setModuleName(textOf(graph.moduleName()));
  auto features = out.initModuleFeatures(static_cast<unsigned>(graph.moduleFeatures().size()));
  for (unsigned i = 0; i < features.size(); ++i) {
    features[i].setKey(textOf(graph.moduleFeatures()[i].first));
    features[i].setValue(textOf(graph.moduleFeatures()[i].second));
  }
  const kj::Array<capnp::word> flat = capnp::messageToFlatArray(message);
  const kj::ArrayPtr<const kj::byte> bytes = flat.asBytes();
  return std::vector<uint8_t>(bytes.begin(), bytes.end());
}

}  // namespace forkgym::passes
