// The inst2vec statements (Ben-Nun et al., "Neural Code Comprehension: A
// Learnable Representation of Code Semantics", NeurIPS 2018): the module as
// a list of normalised statements, the units the paper's vocabulary and
// 200-dimensional embeddings are indexed by.
//
//   1. Each global variable, function definition's header, basic block's
//      label (CompilerGym's observation has them; the vocabulary does not,
//      so they map to !UNK) and instruction is one statement, in module
//      order. Declarations, aliases, struct type definitions, inline-asm
//      calls without a result and metadata are not (the paper's keep()).
//   2. Each statement is written in the vocabulary's dialect: named structs
//      inlined as their bodies ("opaque" for a struct without one), and
//      typed pointers where the IR reveals the pointee: a load's or store's
//      pointer operand points to the value's type, a getelementptr's to its
//      source element type; an alloca, global, function or getelementptr
//      used as an operand points to what it allocates, holds or indexes; an
//      alloca or global holding a pointer holds what every pointer stored
//      into it points to, when they agree (null says nothing), and a pointer
//      loaded from it points there. Any other pointer stays "ptr" (LLVM 19
//      has no pointee types), which the vocabulary (built on typed-pointer
//      IR) does not know.
//   3. normaliseInst2vecStatement() applies the paper's rules: trailing
//      metadata and attribute groups removed, %locals to <%ID>, @globals to
//      <@ID>, floating-point immediates to <FLOAT>, integer immediates to
//      <INT> (not alignments, not the first value of a phi pair), c"..."
//      strings to <STRING>, and the element index type of extractelement and
//      insertelement to <TYP>.
//
// The lookup of statements in the vocabulary is data the client holds
// (client/python/forkgym/datasets/inst2vec.py). Any process; reads the module
// only.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace llvm {
class Module;
}

namespace forkgym::passes {

// How pointers are written before normalising: Typed is the observation's;
// Opaque (LLVM 19's own "ptr" everywhere) is there to measure what typing
// gains (forkgym-inst2vec-statements --opaque-pointers).
enum class Inst2vecPointers { Typed, Opaque };

// The module's statements, normalised (steps 1-3). InvalidRequest, naming the
// type, for a module with a struct whose inlined text passes 1 MiB (nesting
// can make it exponential in the module's size).
Result<std::vector<std::string>> inst2vecStatements(const llvm::Module& module,
                                                    Inst2vecPointers pointers = Inst2vecPointers::Typed);

// Step 3 on one statement already in the vocabulary's dialect, e.g.
// "%5 = load i32, i32* %3, align 4, !tbaa !7" -> "<%ID> = load i32, i32* <%ID>, align 4".
std::string normaliseInst2vecStatement(std::string_view statement);

// The statements as a JSON list of strings (the observation's wire form).
std::string inst2vecStatementsJson(const std::vector<std::string>& statements);

}  // namespace forkgym::passes
