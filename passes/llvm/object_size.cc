#include "passes/llvm/object_size.h"

#include <llvm/ADT/SmallVector.h>
#include <llvm/Analysis/TargetLibraryInfo.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/LegacyPassManager.h>
#include <llvm/IR/Module.h>
#include <llvm/Object/ObjectFile.h>
#include <llvm/Support/MemoryBuffer.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/Target/TargetMachine.h>
#include <llvm/TargetParser/Triple.h>

#include "passes/llvm/bitcode.h"
#include "passes/llvm/diagnostics.h"
#include "passes/llvm/target_machine.h"

namespace forkgym::passes {
namespace {

Result<int64_t> berkeleyTextSize(llvm::StringRef object) {
  auto file = llvm::object::ObjectFile::createObjectFile(llvm::MemoryBufferRef(object, "object"));
  if (!file) {
    return makeError(Outcome::ServerError,
                     "LLVM emitted an unreadable object file: " + toString(file.takeError()));
  }
  // llvm-size's Berkeley format: allocated sections that are executable or
  // read-only count as text.
  int64_t text = 0;
  for (const llvm::object::SectionRef& section : (*file)->sections()) {
    if (section.isBerkeleyText()) text += static_cast<int64_t>(section.getSize());
  }
  return text;
}

}  // namespace

Result<int64_t> objectTextSize(std::string_view bitcode) {
  llvm::LLVMContext context;
  DiagnosticLog diagnostics;
  diagnostics.installOn(context);
  auto module = parseBitcode(bitcode, context, "the module");
  if (!module.ok()) return module.takeError();
  llvm::Module& m = **module;

  auto machine = createTargetMachine(m.getTargetTriple(), TargetMachineUse::ObjectEmission);
  if (!machine.ok()) return machine.takeError();
  // llc replaces the module's data layout with the target's before codegen.
  m.setDataLayout((*machine)->createDataLayout());

  llvm::SmallVector<char, 0> object;
  llvm::raw_svector_ostream stream(object);
  llvm::legacy::PassManager codegen;
  // llc registers TLI for the module's triple; without it codegen would
  // assume a generic library and lower some calls differently.
  llvm::TargetLibraryInfoImpl libraryInfo{llvm::Triple(m.getTargetTriple())};
  codegen.add(new llvm::TargetLibraryInfoWrapperPass(libraryInfo));
  if ((*machine)->addPassesToEmitFile(codegen, stream, nullptr, llvm::CodeGenFileType::ObjectFile,
                                      /*DisableVerify=*/true)) {
    return noObjectFile(m.getTargetTriple());
  }
  codegen.run(m);
  if (diagnostics.hasErrors()) {
    return makeError(Outcome::BenchmarkError,
                     "code generation failed: " + diagnostics.takeErrors());
  }
  return berkeleyTextSize(llvm::StringRef(object.data(), object.size()));
}

Error noObjectFile(std::string_view triple) {
  return makeError(Outcome::InvalidRequest,
                   "the benchmark's target '" + std::string(triple) +
                       "' emits no object files (its code generator writes assembly only), so the ObjectTextSize "
                       "observations and rewards are unavailable for it; the IrInstructionCount ones are not");
}

}  // namespace forkgym::passes
