// The ProGraML graph of an LLVM module (Cummins et al., ICML 2021), built as
// ProGraML's LLVM graph builder (programl/ir/llvm) builds it, which is what
// CompilerGym's Programl observation was, so that code written for it reads
// these graphs and counts the same nodes and edges:
//
//   node 0       the external root: an instruction, text "[external]", no
//                full_text feature;
//   instruction  one per instruction: text its opcode name ("add"),
//                full_text the instruction as IR prints it ("%3 = add nsw
//                i32 %1, %2"); a function declaration is one instruction
//                "; undefined function" (full_text ""), so that calls to it
//                have somewhere to go;
//   variable     one per *use* of an instruction's result (ProGraML's
//                choice: a value used three times is three nodes, each with
//                its def edge), and one per argument that has uses; text
//                the type ("i32", "ptr"; a struct value "struct"),
//                full_text "i32 %3";
//   constant     one per distinct constant operand, module-wide (integers,
//                floats, undef, constant expressions, and global variables:
//                to LLVM a global is a constant address); text its type,
//                full_text the constant as IR prints it ("i32 1"; a global:
//                its definition). Functions as operands are no node: calls
//                become call edges instead.
//
//   control (flow 0)  each instruction to the next in its block (position
//                0); each block's terminator to the first instruction of its
//                successors, position = successor number, for the blocks
//                reachable from the entry (a breadth-first walk, as ProGraML);
//   data (flow 1)     producer instruction -> its variable node (position
//                0); variable, argument or constant -> the instruction using
//                it, position = the operand's index in the instruction;
//   call (flow 2)     root -> every function's entry instruction and each of
//                its exits (reachable returns and unreachables, a
//                declaration's own node) -> root, for every function (as
//                ProGraML does, callers or not); each direct `call` -> its
//                callee's entry, and the callee's exits -> the call.
//
// Each node carries `function` (the function's index in the module, 0 for
// the root and constants) and `block` (ProGraML's module-wide block
// counter: an instruction's block; a variable the block of the instruction
// using it; an argument one past its function's last block; a constant the
// module's block count; 0 for the root and declarations).
//
// Deterministic: nodes and edges come in module order (functions, blocks,
// instructions, operands; ProGraML's own order depends on hash maps).
//
// Any process; reads the module only.
#pragma once

#include "base/result.h"
#include "passes/program_graph.h"

namespace llvm {
class Module;
}

namespace forkgym::passes {

// ServerError for IR ProGraML has no node for (an operand of a kind LLVM
// added since): a bug to report, never a graph with the operand missing.
Result<ProgramGraph> buildProgramlGraph(const llvm::Module& module);

}  // namespace forkgym::passes
