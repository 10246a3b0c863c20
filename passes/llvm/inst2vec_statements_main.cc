// forkgym-inst2vec-statements: prints the inst2vec statements of a module
// file (bitcode or textual IR) as the Inst2vecPreprocessedText observation
// computes them, as a JSON list; with --opaque-pointers, with LLVM 19's
// "ptr" left untyped. A development tool (scripts/inst2vec_unk_rate.py
// compares the two against the vocabulary); never shipped.
#include <cstdio>
#include <cstring>

#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/IRReader/IRReader.h>
#include <llvm/Support/SourceMgr.h>
#include <llvm/Support/raw_ostream.h>

#include "passes/llvm/inst2vec.h"

int main(int argc, char** argv) {
  const bool opaque = argc == 3 && std::strcmp(argv[1], "--opaque-pointers") == 0;
  if (argc != 2 && !opaque) {
    std::fprintf(stderr, "usage: forkgym-inst2vec-statements [--opaque-pointers] MODULE.bc|MODULE.ll\n");
    return 2;
  }
  llvm::LLVMContext context;
  llvm::SMDiagnostic diagnostic;
  std::unique_ptr<llvm::Module> module = llvm::parseIRFile(argv[argc - 1], diagnostic, context);
  if (!module) {
    diagnostic.print(argv[0], llvm::errs());
    return 1;
  }
  using forkgym::passes::Inst2vecPointers;
  auto statements =
      forkgym::passes::inst2vecStatements(*module, opaque ? Inst2vecPointers::Opaque : Inst2vecPointers::Typed);
  if (!statements.ok()) {
    llvm::errs() << argv[0] << ": " << statements.error().message << "\n";
    return 1;
  }
  llvm::outs() << forkgym::passes::inst2vecStatementsJson(*statements) << "\n";
  return 0;
}
