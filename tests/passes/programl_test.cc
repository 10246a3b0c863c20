// The ProGraML graph builder (passes/llvm/programl.h): counts derived by
// hand on a small function, and properties every graph must have.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <tuple>

#include <llvm/AsmParser/Parser.h>
#include <llvm/IR/Instructions.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/Support/SourceMgr.h>

#include "passes/llvm/programl.h"
#include "test_benchmarks.h"

namespace forkgym::passes {
namespace {

using testing::parseForTest;
using testing::smallProgramUri;

// What clang-19 -O0 -Xclang -disable-O0-optnone makes of
//
//   int calls;
//   int weight(int);
//
//   int square(int x) {
//     calls++;
//     return weight(x * x);
//   }
//
//   int sum_squares(int n) {
//     int total = 0;
//     for (int i = 0; i < n; ++i)
//       total += square(i);
//     return total;
//   }
//
// after opt -passes=mem2reg, attributes and metadata removed.
constexpr const char* kSumSquares = R"(
source_filename = "sum_squares.c"
target triple = "x86_64-pc-linux-gnu"

@calls = dso_local global i32 0, align 4

define dso_local i32 @square(i32 noundef %x) {
entry:
  %0 = load i32, ptr @calls, align 4
  %inc = add nsw i32 %0, 1
  store i32 %inc, ptr @calls, align 4
  %mul = mul nsw i32 %x, %x
  %call = call i32 @weight(i32 noundef %mul)
  ret i32 %call
}

declare i32 @weight(i32 noundef)

define dso_local i32 @sum_squares(i32 noundef %n) {
entry:
  br label %for.cond

for.cond:
  %total.0 = phi i32 [ 0, %entry ], [ %add, %for.inc ]
  %i.0 = phi i32 [ 0, %entry ], [ %inc, %for.inc ]
  %cmp = icmp slt i32 %i.0, %n
  br i1 %cmp, label %for.body, label %for.end

for.body:
  %call = call i32 @square(i32 noundef %i.0)
  %add = add nsw i32 %total.0, %call
  br label %for.inc

for.inc:
  %inc = add nsw i32 %i.0, 1
  br label %for.cond

for.end:
  ret i32 %total.0
}
)";

std::unique_ptr<llvm::Module> parse(llvm::LLVMContext& context, const char* ir) {
  llvm::SMDiagnostic diagnostic;
  auto module = llvm::parseAssemblyString(ir, diagnostic, context);
  EXPECT_TRUE(module) << diagnostic.getMessage().str();
  return module;
}

ProgramGraph build(const llvm::Module& module) {
  auto graph = buildProgramlGraph(module);
  EXPECT_TRUE(graph.ok()) << graph.error().message;
  return graph.ok() ? std::move(*graph) : ProgramGraph();
}

size_t countNodes(const ProgramGraph& graph, NodeType type) {
  return std::count_if(graph.nodes().begin(), graph.nodes().end(),
                       [&](const ProgramGraph::Node& node) { return node.type == type; });
}

size_t countEdges(const ProgramGraph& graph, EdgeFlow flow) {
  return std::count_if(graph.edges().begin(), graph.edges().end(),
                       [&](const ProgramGraph::Edge& edge) { return edge.flow == flow; });
}

// The node whose full_text is `text` (the test's texts are unique).
uint32_t nodeWithFullText(const ProgramGraph& graph, const std::string& text) {
  for (uint32_t i = 0; i < graph.nodes().size(); ++i) {
    const uint32_t full = graph.nodes()[i].fullText;
    if (full != ProgramGraph::kNoFullText && graph.text(full) == text) return i;
  }
  ADD_FAILURE() << "no node with full_text '" << text << "'";
  return 0;
}

bool hasEdge(const ProgramGraph& graph, EdgeFlow flow, uint32_t source, uint32_t target, uint32_t position = 0) {
  return std::any_of(graph.edges().begin(), graph.edges().end(), [&](const ProgramGraph::Edge& edge) {
    return edge.flow == flow && edge.source == source && edge.target == target && edge.position == position;
  });
}

// The derivation (functions in module order: square 0, weight 1,
// sum_squares 2):
//
// Instruction nodes, 19: the root; square's 6 (load add store mul call
//   ret); weight's declaration node; sum_squares' 11 (br | phi phi icmp br |
//   call add br | add br | ret).
// Variable nodes, 15: one per use of an instruction's result, one per used
//   argument. square: %0 (by add), %inc (store), %mul (call), %call (ret) =
//   4, and %x = 1. sum_squares: %total.0 twice (add, ret), %i.0 three times
//   (icmp, call, add), %cmp (br), %call (add), %add (phi), %inc (phi) = 9,
//   and %n = 1.
// Constant nodes, 3: @calls (a global is a constant address), i32 1 (both
//   increments share LLVM's one i32 1), i32 0 (both phis). The callees
//   @weight and @square are functions: no node.
// => 37 nodes.
//
// Control edges, 16: within blocks, square 5, sum_squares 0+3+2+1+0 = 6;
//   between blocks entry->for.cond, for.cond->for.body (position 0),
//   for.cond->for.end (1), for.body->for.inc, for.inc->for.cond = 5.
// Data edges, 35: square: 4 uses + 4 defs, %x->mul twice (positions 0, 1),
//   @calls->load (0) and ->store (1), 1->add (1) = 13; sum_squares: 9 uses
//   + 9 defs, %n->icmp (1), 0->each phi (0) twice, 1->add (1) = 22.
// Call edges, 10: root->entry and exit->root for each of the 3 functions
//   (the declaration's node is its entry and its exit) = 6; square's call
//   -> weight and back = 2; sum_squares' call -> square's load, square's
//   ret -> that call = 2.
// => 61 edges.
TEST(Programl, HandCheckedFunctionHasTheCountsDerivedByHand) {
  llvm::LLVMContext context;
  auto module = parse(context, kSumSquares);
  const ProgramGraph graph = build(*module);

  EXPECT_EQ(countNodes(graph, NodeType::Instruction), 19u);
  EXPECT_EQ(countNodes(graph, NodeType::Variable), 15u);
  EXPECT_EQ(countNodes(graph, NodeType::Constant), 3u);
  EXPECT_EQ(graph.nodes().size(), 37u);
  EXPECT_EQ(countEdges(graph, EdgeFlow::Control), 16u);
  EXPECT_EQ(countEdges(graph, EdgeFlow::Data), 35u);
  EXPECT_EQ(countEdges(graph, EdgeFlow::Call), 10u);
  EXPECT_EQ(graph.edges().size(), 61u);
  EXPECT_EQ(graph.functionNames(), (std::vector<std::string>{"square", "weight", "sum_squares"}));
  EXPECT_EQ(graph.moduleName(), "sum_squares.c");
}

TEST(Programl, NodesCarryProgramlsTextsFunctionsAndBlocks) {
  llvm::LLVMContext context;
  auto module = parse(context, kSumSquares);
  const ProgramGraph graph = build(*module);
  const auto& nodes = graph.nodes();

  // The root comes first: an instruction with no full_text.
  ASSERT_FALSE(nodes.empty());
  EXPECT_EQ(nodes[0].type, NodeType::Instruction);
  EXPECT_EQ(graph.text(nodes[0].text), "[external]");
  EXPECT_EQ(nodes[0].fullText, ProgramGraph::kNoFullText);

  const uint32_t mul = nodeWithFullText(graph, "%mul = mul nsw i32 %x, %x");
  EXPECT_EQ(nodes[mul].type, NodeType::Instruction);
  EXPECT_EQ(graph.text(nodes[mul].text), "mul");
  EXPECT_EQ(nodes[mul].function, 0u);
  EXPECT_EQ(nodes[mul].block, 0u);

  const uint32_t x = nodeWithFullText(graph, "i32 %x");
  EXPECT_EQ(nodes[x].type, NodeType::Variable);
  EXPECT_EQ(graph.text(nodes[x].text), "i32");
  EXPECT_TRUE(hasEdge(graph, EdgeFlow::Data, x, mul, 0));
  EXPECT_TRUE(hasEdge(graph, EdgeFlow::Data, x, mul, 1));

  const uint32_t calls = nodeWithFullText(graph, "@calls = dso_local global i32 0, align 4");
  EXPECT_EQ(nodes[calls].type, NodeType::Constant);
  EXPECT_EQ(graph.text(nodes[calls].text), "ptr");
  const uint32_t store = nodeWithFullText(graph, "store i32 %inc, ptr @calls, align 4");
  EXPECT_TRUE(hasEdge(graph, EdgeFlow::Data, calls, store, 1));

  const uint32_t weight = nodeWithFullText(graph, "");
  EXPECT_EQ(graph.text(nodes[weight].text), "; undefined function");
  EXPECT_EQ(nodes[weight].function, 1u);

  // sum_squares' blocks are the module's blocks 1..5 (square's is 0).
  const uint32_t compare = nodeWithFullText(graph, "%cmp = icmp slt i32 %i.0, %n");
  EXPECT_EQ(nodes[compare].function, 2u);
  EXPECT_EQ(nodes[compare].block, 2u);
  const uint32_t loopBranch = nodeWithFullText(graph, "br i1 %cmp, label %for.body, label %for.end");
  const uint32_t callSquare = nodeWithFullText(graph, "%call = call i32 @square(i32 noundef %i.0)");
  const uint32_t sumReturn = nodeWithFullText(graph, "ret i32 %total.0");
  EXPECT_TRUE(hasEdge(graph, EdgeFlow::Control, loopBranch, callSquare, 0));
  EXPECT_TRUE(hasEdge(graph, EdgeFlow::Control, loopBranch, sumReturn, 1));

  // Call edges: the call to its callee's entry, the callee's return back.
  const uint32_t squareEntry = nodeWithFullText(graph, "%0 = load i32, ptr @calls, align 4");
  const uint32_t squareReturn = nodeWithFullText(graph, "ret i32 %call");
  EXPECT_TRUE(hasEdge(graph, EdgeFlow::Call, callSquare, squareEntry));
  EXPECT_TRUE(hasEdge(graph, EdgeFlow::Call, squareReturn, callSquare));
  EXPECT_TRUE(hasEdge(graph, EdgeFlow::Call, 0, squareEntry));
  EXPECT_TRUE(hasEdge(graph, EdgeFlow::Call, squareReturn, 0));
  const uint32_t callWeight = nodeWithFullText(graph, "%call = call i32 @weight(i32 noundef %mul)");
  EXPECT_TRUE(hasEdge(graph, EdgeFlow::Call, callWeight, weight));
  EXPECT_TRUE(hasEdge(graph, EdgeFlow::Call, weight, callWeight));
}

// On a real program: every instruction is a node (plus the root and one per
// declaration), every direct call has its call edges, every edge joins
// nodes of the kinds ProGraML allows, and a second build is identical.
TEST(Programl, EveryInstructionIsANodeAndEveryCallHasCallEdges) {
  ParsedBenchmark benchmark = parseForTest(smallProgramUri());
  const llvm::Module& module = *benchmark.module;
  const ProgramGraph graph = build(module);

  size_t declarations = 0;
  std::vector<std::pair<const llvm::CallInst*, const llvm::Function*>> calls;
  for (const llvm::Function& function : module) {
    if (function.isDeclaration()) ++declarations;
    for (const llvm::BasicBlock& block : function) {
      for (const llvm::Instruction& instruction : block) {
        if (const auto* call = llvm::dyn_cast<llvm::CallInst>(&instruction)) {
          if (call->getCalledFunction()) calls.emplace_back(call, call->getCalledFunction());
        }
      }
    }
  }
  ASSERT_FALSE(calls.empty()) << "small.c should call functions";
  EXPECT_EQ(countNodes(graph, NodeType::Instruction), 1 + module.getInstructionCount() + declarations);

  // Nodes of each function in order: its first instruction node is its entry.
  std::vector<uint32_t> firstNodeOfFunction(graph.functionNames().size(), UINT32_MAX);
  for (uint32_t i = 1; i < graph.nodes().size(); ++i) {
    const auto& node = graph.nodes()[i];
    if (node.type == NodeType::Instruction && firstNodeOfFunction[node.function] == UINT32_MAX) {
      firstNodeOfFunction[node.function] = i;
    }
  }
  std::map<const llvm::Function*, uint32_t> functionIndex;
  uint32_t index = 0;
  for (const llvm::Function& function : module) functionIndex[&function] = index++;
  // Instruction nodes follow module order, so the k-th instruction node of
  // the module (after the root, skipping declarations) is its k-th instruction.
  std::map<const llvm::Instruction*, uint32_t> nodeOf;
  uint32_t next = 1;
  for (const llvm::Function& function : module) {
    while (next < graph.nodes().size() && graph.nodes()[next].type != NodeType::Instruction) ++next;
    if (function.isDeclaration()) {
      ++next;
      continue;
    }
    for (const llvm::BasicBlock& block : function) {
      for (const llvm::Instruction& instruction : block) {
        while (graph.nodes()[next].type != NodeType::Instruction) ++next;
        EXPECT_EQ(graph.text(graph.nodes()[next].text), instruction.getOpcodeName());
        nodeOf[&instruction] = next++;
      }
    }
  }
  for (const auto& [call, callee] : calls) {
    const uint32_t site = nodeOf.at(call);
    const uint32_t entry = firstNodeOfFunction[functionIndex.at(callee)];
    EXPECT_TRUE(hasEdge(graph, EdgeFlow::Call, site, entry)) << graph.text(graph.nodes()[site].fullText);
  }
  for (const auto& edge : graph.edges()) {
    const NodeType source = graph.nodes()[edge.source].type;
    const NodeType target = graph.nodes()[edge.target].type;
    if (edge.flow == EdgeFlow::Data) {
      EXPECT_NE(source == NodeType::Instruction, target == NodeType::Instruction);
    } else {
      EXPECT_EQ(source, NodeType::Instruction);
      EXPECT_EQ(target, NodeType::Instruction);
    }
  }
  EXPECT_EQ(encodeProgramGraph(graph), encodeProgramGraph(build(module)));
}

// Indirect calls have no callee to link; unreachable blocks keep their nodes
// (ProGraML walks successors from the entry only); an empty module is the root.
TEST(Programl, IndirectCallsUnreachableBlocksAndEmptyModules) {
  llvm::LLVMContext context;
  auto module = parse(context, R"(
define i32 @apply(ptr %f, i32 %v) {
entry:
  %r = call i32 %f(i32 %v)
  ret i32 %r
dead:
  ret i32 0
}
)");
  const ProgramGraph graph = build(*module);
  // root, call, ret, dead ret = 4 instructions; %f, %v, %r = 3 variables;
  // i32 0 = 1 constant.
  EXPECT_EQ(countNodes(graph, NodeType::Instruction), 4u);
  EXPECT_EQ(countNodes(graph, NodeType::Variable), 3u);
  EXPECT_EQ(countNodes(graph, NodeType::Constant), 1u);
  // call->ret; %f->call (position 1: after the argument), %v->call, %r
  // def and use, 0->dead ret; root->entry, ret->root (the dead block is not
  // reached, so it is no exit).
  EXPECT_EQ(countEdges(graph, EdgeFlow::Control), 1u);
  EXPECT_EQ(countEdges(graph, EdgeFlow::Data), 5u);
  EXPECT_EQ(countEdges(graph, EdgeFlow::Call), 2u);
  const uint32_t f = nodeWithFullText(graph, "ptr %f");
  const uint32_t call = nodeWithFullText(graph, "%r = call i32 %f(i32 %v)");
  EXPECT_TRUE(hasEdge(graph, EdgeFlow::Data, f, call, 1));

  llvm::LLVMContext emptyContext;
  auto empty = parse(emptyContext, "");
  const ProgramGraph root = build(*empty);
  EXPECT_EQ(root.nodes().size(), 1u);
  EXPECT_TRUE(root.edges().empty());
}

}  // namespace
}  // namespace forkgym::passes
