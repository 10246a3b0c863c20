#include "client/program_graph.h"

#include <cstring>

#include <capnp/serialize.h>
#include <kj/array.h>
#include <kj/exception.h>

#include "ipc/protocol.capnp.h"

namespace forkgym {
namespace {

static_assert(ProgramGraphColumns::kNoFullText == proto::NO_FULL_TEXT);

Error malformed(const std::string& what) {
  return makeError(Outcome::ProtocolMismatch,
                   "the worker sent a program graph that is not well formed: " + what +
                       " (a bug in the server's graph builder: report it with the benchmark and actions)");
}

template <typename T, typename List>
std::vector<T> column(List list) {
  std::vector<T> values(list.size());
  for (unsigned i = 0; i < list.size(); ++i) values[i] = list[i];
  return values;
}

std::vector<std::string> texts(capnp::List<capnp::Text>::Reader list) {
  std::vector<std::string> values;
  values.reserve(list.size());
  for (auto text : list) values.emplace_back(text.cStr(), text.size());
  return values;
}

Result<ProgramGraphColumns> read(proto::ProgramGraph::Reader in) {
  ProgramGraphColumns g;
  g.nodeType = column<uint8_t>(in.getNodeType());
  g.nodeText = column<uint32_t>(in.getNodeText());
  g.nodeFullText = column<uint32_t>(in.getNodeFullText());
  g.nodeFunction = column<uint32_t>(in.getNodeFunction());
  g.nodeBlock = column<uint32_t>(in.getNodeBlock());
  g.edgeFlow = column<uint8_t>(in.getEdgeFlow());
  g.edgePosition = column<uint32_t>(in.getEdgePosition());
  g.edgeSource = column<uint32_t>(in.getEdgeSource());
  g.edgeTarget = column<uint32_t>(in.getEdgeTarget());
  g.strings = texts(in.getStrings());
  g.functionNames = texts(in.getFunctionNames());
  g.moduleName = std::string(in.getModuleName().cStr(), in.getModuleName().size());
  for (auto feature : in.getModuleFeatures()) {
    g.moduleFeatures.emplace_back(std::string(feature.getKey().cStr(), feature.getKey().size()),
                                  std::string(feature.getValue().cStr(), feature.getValue().size()));
  }

  const size_t nodes = g.nodeCount();
  if (g.nodeText.size() != nodes || g.nodeFullText.size() != nodes || g.nodeFunction.size() != nodes ||
      g.nodeBlock.size() != nodes) {
    return malformed("its node columns differ in length");
  }
  const size_t edges = g.edgeCount();
  if (g.edgePosition.size() != edges || g.edgeSource.size() != edges || g.edgeTarget.size() != edges) {
    return malformed("its edge columns differ in length");
  }
  for (size_t i = 0; i < nodes; ++i) {
    if (g.nodeType[i] > 2) return malformed("node " + std::to_string(i) + " has type " + std::to_string(g.nodeType[i]));
    if (g.nodeText[i] >= g.strings.size() ||
        (g.nodeFullText[i] != ProgramGraphColumns::kNoFullText && g.nodeFullText[i] >= g.strings.size())) {
      return malformed("node " + std::to_string(i) + " names a text past the string table");
    }
  }
  for (size_t j = 0; j < edges; ++j) {
    if (g.edgeFlow[j] > 2) return malformed("edge " + std::to_string(j) + " has flow " + std::to_string(g.edgeFlow[j]));
    if (g.edgeSource[j] >= nodes || g.edgeTarget[j] >= nodes) {
      return malformed("edge " + std::to_string(j) + " joins a node that does not exist (" +
                       std::to_string(g.edgeSource[j]) + " -> " + std::to_string(g.edgeTarget[j]) + " in a graph of " +
                       std::to_string(nodes) + " nodes)");
    }
  }
  return g;
}

}  // namespace

Result<ProgramGraphColumns> readProgramGraph(std::span<const uint8_t> bytes) {
  if (bytes.empty() || bytes.size() % sizeof(capnp::word) != 0) {
    return malformed(std::to_string(bytes.size()) + " bytes is not a whole number of message words");
  }
  // The bytes arrive at any alignment; Cap'n Proto reads aligned words.
  kj::Array<capnp::word> words = kj::heapArray<capnp::word>(bytes.size() / sizeof(capnp::word));
  std::memcpy(words.begin(), bytes.data(), bytes.size());
  capnp::ReaderOptions options;
  // The whole message may be read (once each word), however large the graph.
  options.traversalLimitInWords = words.size() + 1024;
  Result<ProgramGraphColumns> result = malformed("unread");
  kj::Maybe<kj::Exception> failure = kj::runCatchingExceptions([&] {
    capnp::FlatArrayMessageReader message(words.asPtr(), options);
    result = read(message.getRoot<proto::ProgramGraph>());
  });
  KJ_IF_MAYBE (exception, failure) {
    return malformed(std::string(exception->getDescription().cStr()));
  }
  return result;
}

}  // namespace forkgym
