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

// Checks the message as it lies, before anything is copied out of it.
Status check(proto::ProgramGraph::Reader in) {
  const auto types = in.getNodeType();
  const auto texts = in.getNodeText();
  const auto fullTexts = in.getNodeFullText();
  const size_t nodes = types.size();
  if (texts.size() != nodes || fullTexts.size() != nodes || in.getNodeFunction().size() != nodes ||
      in.getNodeBlock().size() != nodes) {
    return malformed("its node columns differ in length");
  }
  const auto flows = in.getEdgeFlow();
  const auto sources = in.getEdgeSource();
  const auto targets = in.getEdgeTarget();
  const size_t edges = flows.size();
  if (in.getEdgePosition().size() != edges || sources.size() != edges || targets.size() != edges) {
    return malformed("its edge columns differ in length");
  }
  const size_t strings = in.getStrings().size();
  for (unsigned i = 0; i < nodes; ++i) {
    if (types[i] > 2) return malformed("node " + std::to_string(i) + " has type " + std::to_string(types[i]));
    const uint32_t full = fullTexts[i];
    if (texts[i] >= strings || (full != ProgramGraphColumns::kNoFullText && full >= strings)) {
      return malformed("node " + std::to_string(i) + " names a text past the string table");
    }
  }
  for (unsigned j = 0; j < edges; ++j) {
    if (flows[j] > 2) return malformed("edge " + std::to_string(j) + " has flow " + std::to_string(flows[j]));
    if (sources[j] >= nodes || targets[j] >= nodes) {
      return malformed("edge " + std::to_string(j) + " joins a node that does not exist (" +
                       std::to_string(sources[j]) + " -> " + std::to_string(targets[j]) + " in a graph of " +
                       std::to_string(nodes) + " nodes)");
    }
  }
  return okStatus();
}

ProgramGraphColumns copy(proto::ProgramGraph::Reader in) {
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
  return g;
}

// Parses `bytes` as one ProgramGraph message, checks it and hands it to
// `use` (which may copy out of it); a Cap'n Proto error is ProtocolMismatch.
template <typename T, typename Use>
Result<T> withGraph(std::span<const uint8_t> bytes, Use use) {
  if (bytes.empty() || bytes.size() % sizeof(capnp::word) != 0) {
    return malformed(std::to_string(bytes.size()) + " bytes is not a whole number of message words");
  }
  // Cap'n Proto reads aligned words: bytes at another alignment are copied.
  const size_t count = bytes.size() / sizeof(capnp::word);
  kj::Array<capnp::word> copied;
  kj::ArrayPtr<const capnp::word> words;
  if (reinterpret_cast<uintptr_t>(bytes.data()) % alignof(capnp::word) == 0) {
    words = kj::arrayPtr(reinterpret_cast<const capnp::word*>(bytes.data()), count);
  } else {
    copied = kj::heapArray<capnp::word>(count);
    std::memcpy(copied.begin(), bytes.data(), bytes.size());
    words = copied.asPtr();
  }
  capnp::ReaderOptions options;
  // Every word may be read twice (checked, then copied), however large the
  // graph; a message whose pointers share data to read it more is refused.
  options.traversalLimitInWords = 2 * count + 1024;
  Result<T> result = malformed("unread");
  kj::Maybe<kj::Exception> failure = kj::runCatchingExceptions([&] {
    capnp::FlatArrayMessageReader message(words, options);
    const auto graph = message.getRoot<proto::ProgramGraph>();
    if (auto checked = check(graph); !checked.ok()) {
      result = checked.takeError();
    } else {
      result = use(graph);
    }
  });
  KJ_IF_MAYBE (exception, failure) {
    return malformed(std::string(exception->getDescription().cStr()));
  }
  return result;
}

}  // namespace

Result<ProgramGraphColumns> readProgramGraph(std::span<const uint8_t> bytes) {
  return withGraph<ProgramGraphColumns>(bytes, [](proto::ProgramGraph::Reader graph) { return copy(graph); });
}

Status checkProgramGraph(std::span<const uint8_t> bytes) {
  return withGraph<Unit>(bytes, [](proto::ProgramGraph::Reader) { return Unit{}; });
}

}  // namespace forkgym
