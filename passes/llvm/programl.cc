#include "passes/llvm/programl.h"

#include <deque>
#include <optional>
#include <string>

#include <llvm/ADT/DenseMap.h>
#include <llvm/ADT/DenseSet.h>
#include <llvm/ADT/MapVector.h>
#include <llvm/IR/CFG.h>
#include <llvm/IR/Constants.h>
#include <llvm/IR/Function.h>
#include <llvm/IR/InlineAsm.h>
#include <llvm/IR/Instructions.h>
#include <llvm/IR/Metadata.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/ModuleSlotTracker.h>
#include <llvm/Support/raw_ostream.h>

namespace forkgym::passes {
namespace {

constexpr std::string_view kRootText = "[external]";
constexpr std::string_view kDeclarationText = "; undefined function";

// A use of an argument or a constant, resolved to a node once every function
// (for constants) or the function (for arguments) has been walked.
struct OperandUse {
  uint32_t instruction;
  uint32_t position;
};

struct EntryExits {
  uint32_t entry = 0;
  std::vector<uint32_t> exits;
};

class Builder {
 public:
  explicit Builder(const llvm::Module& module) : module_(module), slots_(&module) {}

  Result<ProgramGraph> build() {
    graph_.setModule(module_.getSourceFileName(), {{"llvm_target_triple", module_.getTargetTriple()},
                                                   {"llvm_data_layout", module_.getDataLayoutStr()}});
    root_ = graph_.addNode(NodeType::Instruction, graph_.intern(kRootText), ProgramGraph::kNoFullText, 0, 0);
    for (const llvm::Function& function : module_) {
      const auto index = static_cast<uint32_t>(functions_.size());
      functionIndex_[&function] = index;
      graph_.addFunction(function.getName().str());
      auto walked = function.isDeclaration() ? declaration(index) : walkFunction(function, index);
      if (!walked.ok()) return walked.takeError();
      functions_.push_back(std::move(*walked));
    }
    for (const EntryExits& function : functions_) addCall(root_, function);
    for (const auto& [site, callee] : callSites_) addCall(site, functions_[functionIndex_.lookup(callee)]);
    for (const auto& [constant, uses] : constants_) {
      const uint32_t node = graph_.addNode(NodeType::Constant, typeText(constant->getType()),
                                           graph_.intern(printed(*constant)), 0, blockCount_);
      for (const OperandUse& use : uses) graph_.addEdge(EdgeFlow::Data, use.position, node, use.instruction);
    }
    return std::move(graph_);
  }

 private:
  EntryExits declaration(uint32_t function) {
    const uint32_t node =
        graph_.addNode(NodeType::Instruction, graph_.intern(kDeclarationText), graph_.intern(""), function, 0);
    return {.entry = node, .exits = {node}};
  }

  Result<EntryExits> walkFunction(const llvm::Function& function, uint32_t index) {
    llvm::DenseMap<const llvm::Instruction*, uint32_t> instructionNodes;
    llvm::DenseMap<const llvm::BasicBlock*, std::pair<uint32_t, uint32_t>> blockEnds;  // first, last
    llvm::DenseMap<const llvm::Argument*, std::vector<OperandUse>> argumentUses;
    std::vector<std::pair<const llvm::Instruction*, uint32_t>> definitions;  // producer, variable

    for (const llvm::BasicBlock& block : function) {
      std::optional<uint32_t> previous;
      uint32_t first = 0;
      for (const llvm::Instruction& instruction : block) {
        const uint32_t node = graph_.addNode(NodeType::Instruction, graph_.intern(instruction.getOpcodeName()),
                                             graph_.intern(printed(instruction)), index, blockCount_);
        instructionNodes[&instruction] = node;
        if (previous) {
          graph_.addEdge(EdgeFlow::Control, 0, *previous, node);
        } else {
          first = node;
        }
        previous = node;
        if (const auto* call = llvm::dyn_cast<llvm::CallInst>(&instruction)) {
          if (const llvm::Function* callee = call->getCalledFunction()) callSites_.emplace_back(node, callee);
        }
        uint32_t position = 0;
        for (const llvm::Use& use : instruction.operands()) {
          const llvm::Value* value = use.get();
          if (llvm::isa<llvm::Function>(value)) {
            // A callee (or a function's address): the call edges say it.
          } else if (const auto* constant = llvm::dyn_cast<llvm::Constant>(value)) {
            constants_[constant].push_back({node, position});
          } else if (const auto* producer = llvm::dyn_cast<llvm::Instruction>(value)) {
            const uint32_t variable = graph_.addNode(NodeType::Variable, typeText(producer->getType()),
                                                     graph_.intern(variableText(*producer)), index, blockCount_);
            graph_.addEdge(EdgeFlow::Data, position, variable, node);
            definitions.emplace_back(producer, variable);
          } else if (const auto* argument = llvm::dyn_cast<llvm::Argument>(value)) {
            argumentUses[argument].push_back({node, position});
          } else if (!llvm::isa<llvm::BasicBlock>(value) && !llvm::isa<llvm::InlineAsm>(value) &&
                     !llvm::isa<llvm::MetadataAsValue>(value)) {
            return makeError(Outcome::ServerError,
                             "Programl has no node for operand " + std::to_string(position) + " (" +
                                 printed(*value) + ") of '" + printed(instruction) + "' in function '" +
                                 function.getName().str() + "' (a bug: report it with the IR observation)");
          }
          ++position;
        }
      }
      if (!previous) {
        return makeError(Outcome::ServerError, "Programl: a block of function '" + function.getName().str() +
                                                   "' has no instructions (the module is not valid IR)");
      }
      blockEnds[&block] = {first, *previous};
      ++blockCount_;
    }

    for (const llvm::Argument& argument : function.args()) {
      auto uses = argumentUses.find(&argument);
      if (uses == argumentUses.end()) continue;
      std::string text;
      llvm::raw_string_ostream out(text);
      argument.printAsOperand(out, /*PrintType=*/true, slots_);
      out.flush();
      const uint32_t node =
          graph_.addNode(NodeType::Variable, typeText(argument.getType()), graph_.intern(text), index, blockCount_);
      for (const OperandUse& use : uses->second) graph_.addEdge(EdgeFlow::Data, use.position, node, use.instruction);
    }
    for (const auto& [producer, variable] : definitions) {
      auto node = instructionNodes.find(producer);
      if (node == instructionNodes.end()) {
        return makeError(Outcome::ServerError, "Programl: '" + printed(*producer) + "' is used in function '" +
                                                   function.getName().str() +
                                                   "' but is not one of its instructions (the module is not valid IR)");
      }
      graph_.addEdge(EdgeFlow::Data, 0, node->second, variable);
    }

    // Blocks to their successors, breadth first from the entry: ProGraML
    // links the blocks it reaches, and a reachable block without successors
    // (a return, an unreachable) is an exit of the function.
    const llvm::BasicBlock* entry = &function.getEntryBlock();
    EntryExits ends{.entry = blockEnds[entry].first, .exits = {}};
    llvm::DenseSet<const llvm::BasicBlock*> seen{entry};
    std::deque<const llvm::BasicBlock*> queue{entry};
    while (!queue.empty()) {
      const llvm::BasicBlock* block = queue.front();
      queue.pop_front();
      const uint32_t last = blockEnds[block].second;
      uint32_t successorNumber = 0;
      for (const llvm::BasicBlock* successor : llvm::successors(block)) {
        graph_.addEdge(EdgeFlow::Control, successorNumber++, last, blockEnds[successor].first);
        if (seen.insert(successor).second) queue.push_back(successor);
      }
      if (successorNumber == 0) ends.exits.push_back(last);
    }
    return ends;
  }

  void addCall(uint32_t site, const EntryExits& callee) {
    graph_.addEdge(EdgeFlow::Call, 0, site, callee.entry);
    for (uint32_t exit : callee.exits) graph_.addEdge(EdgeFlow::Call, 0, exit, site);
  }

  // A value as IR prints it, without the indentation instructions get.
  std::string printed(const llvm::Value& value) {
    std::string text;
    llvm::raw_string_ostream out(text);
    value.print(out, slots_);
    out.flush();
    const size_t start = text.find_first_not_of(' ');
    return start == std::string::npos ? std::string() : text.substr(start);
  }

  // "i32 %3": the type ProGraML names the value with, and its IR name.
  std::string variableText(const llvm::Instruction& producer) {
    std::string text = graph_.text(typeText(producer.getType()));
    text += ' ';
    llvm::raw_string_ostream out(text);
    producer.printAsOperand(out, /*PrintType=*/false, slots_);
    out.flush();
    return text;
  }

  // A type's text: as IR prints it, except that ProGraML names every struct
  // type "struct" (so that struct names do not grow the vocabulary).
  uint32_t typeText(const llvm::Type* type) {
    auto known = typeTexts_.find(type);
    if (known != typeTexts_.end()) return known->second;
    std::string text;
    if (type->isStructTy()) {
      text = "struct";
    } else {
      llvm::raw_string_ostream out(text);
      type->print(out);
      out.flush();
    }
    const uint32_t index = graph_.intern(text);
    typeTexts_[type] = index;
    return index;
  }

  const llvm::Module& module_;
  // One slot numbering for the whole module: printing a value on its own
  // would number its function afresh each time (quadratic in its size).
  llvm::ModuleSlotTracker slots_;
  ProgramGraph graph_;
  uint32_t root_ = 0;
  uint32_t blockCount_ = 0;
  std::vector<EntryExits> functions_;
  llvm::DenseMap<const llvm::Function*, uint32_t> functionIndex_;
  std::vector<std::pair<uint32_t, const llvm::Function*>> callSites_;
  llvm::MapVector<const llvm::Constant*, std::vector<OperandUse>> constants_;  // in order of first use
  llvm::DenseMap<const llvm::Type*, uint32_t> typeTexts_;
};

}  // namespace

Result<ProgramGraph> buildProgramlGraph(const llvm::Module& module) { return Builder(module).build(); }

}  // namespace forkgym::passes
