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
#include <llvm/Passes/PassBuilder.h>
#include <llvm/Transforms/Instrumentation/AddressSanitizer.h>

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

// What clang -fsanitize=address does to the IR: every defined function
// asks for instrumentation, then the module pass adds the checks, the
// redzones around globals and the runtime's constructor. Instrumenting IR
// after the episode's passes sees the state's memory accesses as they are;
// what an earlier pass already optimised away (a redundant load of freed
// memory) it cannot see, as with any -O build.
void instrumentForAddressSanitizer(llvm::Module& module) {
  for (llvm::Function& function : module) {
    if (!function.isDeclaration()) function.addFnAttr(llvm::Attribute::SanitizeAddress);
  }
  llvm::LoopAnalysisManager loops;
  llvm::FunctionAnalysisManager functions;
  llvm::CGSCCAnalysisManager cgscc;
  llvm::ModuleAnalysisManager modules;
  llvm::PassBuilder builder;
  builder.registerModuleAnalyses(modules);
  builder.registerCGSCCAnalyses(cgscc);
  builder.registerFunctionAnalyses(functions);
  builder.registerLoopAnalyses(loops);
  builder.crossRegisterProxies(loops, functions, cgscc, modules);
  llvm::ModulePassManager pipeline;
  pipeline.addPass(llvm::AddressSanitizerPass(llvm::AddressSanitizerOptions{}));
  pipeline.run(module, modules);
}

// clang's -O0 optimisation pipeline, which `clang -c -x ir` runs before code
// generation (BackendUtil's RunOptimizationPipeline): buildO0DefaultPipeline,
// whose always-inliner changes the code of any module with alwaysinline
// functions. clang disables the verifier (-disable-llvm-verifier), as here.
void runClangO0Pipeline(llvm::Module& module, llvm::TargetMachine& machine) {
  llvm::LoopAnalysisManager loops;
  llvm::FunctionAnalysisManager functions;
  llvm::CGSCCAnalysisManager cgscc;
  llvm::ModuleAnalysisManager modules;
  llvm::PassBuilder builder(&machine);
  llvm::TargetLibraryInfoImpl libraryInfo{llvm::Triple(module.getTargetTriple())};
  functions.registerPass([&] { return llvm::TargetLibraryAnalysis(libraryInfo); });
  builder.registerModuleAnalyses(modules);
  builder.registerCGSCCAnalyses(cgscc);
  builder.registerFunctionAnalyses(functions);
  builder.registerLoopAnalyses(loops);
  builder.crossRegisterProxies(loops, functions, cgscc, modules);
  llvm::ModulePassManager pipeline = builder.buildO0DefaultPipeline(llvm::OptimizationLevel::O0);
  pipeline.run(module, modules);
}

}  // namespace

Result<int64_t> objectTextSize(std::string_view bitcode) {
  auto object = emitObject(bitcode, /*addressSanitizer=*/false);
  if (!object.ok()) return object.takeError();
  return berkeleyTextSize(llvm::StringRef(object->data(), object->size()));
}

Result<std::string> emitObject(std::string_view bitcode, bool addressSanitizer) {
  llvm::LLVMContext context;
  DiagnosticLog diagnostics;
  diagnostics.installOn(context);
  auto module = parseBitcode(bitcode, context, "the module");
  if (!module.ok()) return module.takeError();
  llvm::Module& m = **module;

  auto machine = createTargetMachine(m.getTargetTriple(), TargetMachineUse::ClangObject);
  if (!machine.ok()) return machine.takeError();
  // clang replaces the module's data layout with the target's before
  // codegen.
  m.setDataLayout((*machine)->createDataLayout());

  llvm::SmallVector<char, 0> object;
  llvm::raw_svector_ostream stream(object);
  llvm::legacy::PassManager passes;
  // clang registers TLI for the module's triple; without it codegen would
  // assume a generic library and lower some calls differently.
  llvm::TargetLibraryInfoImpl libraryInfo{llvm::Triple(m.getTargetTriple())};
  passes.add(new llvm::TargetLibraryInfoWrapperPass(libraryInfo));
  if ((*machine)->addPassesToEmitFile(passes, stream, nullptr, llvm::CodeGenFileType::ObjectFile,
                                      /*DisableVerify=*/true)) {
    return noObjectFile(m.getTargetTriple());
  }
  // clang runs the sanitizer after its pipeline's inliner (as the last
  // extension point of the -O0 pipeline).
  runClangO0Pipeline(m, **machine);
  if (addressSanitizer) instrumentForAddressSanitizer(m);
  passes.run(m);
  if (diagnostics.hasErrors()) {
    return makeError(Outcome::BenchmarkError,
                     "code generation failed: " + diagnostics.takeErrors());
  }
  return std::string(object.data(), object.size());
}

Error noObjectFile(std::string_view triple) {
  return makeError(Outcome::InvalidRequest,
                   "the benchmark's target '" + std::string(triple) +
                       "' emits no object files (its code generator writes assembly only), so the ObjectTextSize "
                       "observations and rewards are unavailable for it; the IrInstructionCount ones are not");
}

}  // namespace forkgym::passes
