// A program graph: the nodes and edges of ProGraML's representation
// (Cummins et al., "ProGraML: A Graph-based Program Representation for Data
// Flow Analysis and Compiler Optimizations", ICML 2021), whatever compiler
// built it, and its wire form (ipc/protocol.capnp's ProgramGraph).
//
// Lifecycle (a worker, or a test):
//   1. A backend builds one from its module (LLVM: passes/llvm/programl.h),
//      adding strings, nodes and edges in a deterministic order.
//   2. encodeProgramGraph() turns it into the bytes of an observation of
//      form programGraph; the client decodes them (client/python/bindings.cc)
//      into a networkx MultiDiGraph or its node-link document.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace forkgym::passes {

// ProGraML's numbering (programl.proto's Node.Type and Edge.Flow), which
// code written for CompilerGym compares against.
enum class NodeType : uint8_t { Instruction = 0, Variable = 1, Constant = 2 };
enum class EdgeFlow : uint8_t { Control = 0, Data = 1, Call = 2 };

class ProgramGraph {
 public:
  static constexpr uint32_t kNoFullText = 0xffffffffu;  // protocol.capnp's noFullText

  struct Node {
    NodeType type;
    uint32_t text;      // index into strings()
    uint32_t fullText;  // index into strings(), or kNoFullText
    uint32_t function;
    uint32_t block;
  };
  struct Edge {
    EdgeFlow flow;
    uint32_t position;
    uint32_t source;
    uint32_t target;
  };

  // The index of `text` in the string table, added on first use.
  uint32_t intern(std::string_view text);

  // Returns the new node's index.
  uint32_t addNode(NodeType type, uint32_t text, uint32_t fullText, uint32_t function, uint32_t block);
  void addEdge(EdgeFlow flow, uint32_t position, uint32_t source, uint32_t target);

  void addFunction(std::string name) { functionNames_.push_back(std::move(name)); }
  void setModule(std::string name, std::vector<std::pair<std::string, std::string>> features) {
    moduleName_ = std::move(name);
    moduleFeatures_ = std::move(features);
  }

  const std::vector<Node>& nodes() const { return nodes_; }
  const std::vector<Edge>& edges() const { return edges_; }
  const std::vector<std::string>& strings() const { return strings_; }
  const std::string& text(uint32_t index) const { return strings_[index]; }
  const std::vector<std::string>& functionNames() const { return functionNames_; }
  const std::string& moduleName() const { return moduleName_; }
  const std::vector<std::pair<std::string, std::string>>& moduleFeatures() const { return moduleFeatures_; }

 private:
  std::vector<Node> nodes_;
  std::vector<Edge> edges_;
  std::vector<std::string> strings_;
  // Text -> its index in strings_ (the map owns copies: views into
  // strings_ would dangle when it grows).
  std::unordered_map<std::string, uint32_t> stringIndex_;
  std::vector<std::string> functionNames_;
  std::string moduleName_;
  std::vector<std::pair<std::string, std::string>> moduleFeatures_;
};

// The graph as one unpacked Cap'n Proto ProgramGraph message.
std::vector<uint8_t> encodeProgramGraph(const ProgramGraph& graph);

}  // namespace forkgym::passes
