#include "passes/llvm/target_machine.h"

#include <llvm/MC/TargetRegistry.h>
#include <llvm/Target/TargetMachine.h>
#include <llvm/Target/TargetOptions.h>
#include <llvm/TargetParser/Triple.h>

namespace forkgym::passes {
namespace {

// opt and llc build their options with codegen::InitTargetOptionsFromCodeGenFlags,
// which needs LLVM's codegen command-line flags registered in this process.
// We set by hand the fields where its defaults differ from TargetOptions()'s,
// rather than register ~100 global cl::opts in a library.
llvm::TargetOptions toolDefaultOptions(const llvm::Triple& triple) {
  llvm::TargetOptions options;
  options.UseInitArray = true;  // -use-ctors defaults to false
  options.DataSections = triple.hasDefaultDataSections();
  options.EmulatedTLS = triple.hasDefaultEmulatedTLS();
  options.EnableTLSDESC = triple.hasDefaultTLSDESC();
  return options;
}

}  // namespace

Result<std::unique_ptr<llvm::TargetMachine>> createTargetMachine(std::string_view tripleText,
                                                                  TargetMachineUse use) {
  llvm::Triple triple{llvm::StringRef(tripleText)};
  std::string error;
  const llvm::Target* target = llvm::TargetRegistry::lookupTarget("", triple, error);
  if (target == nullptr) {
    return makeError(Outcome::BenchmarkError,
                     "no LLVM target for triple '" + std::string(tripleText) + "': " + error +
                         " (forkgym is built with the native target only; compile the "
                         "benchmark for the host)");
  }
  const llvm::CodeGenOptLevel level = use == TargetMachineUse::PassPipeline
                                          ? llvm::CodeGenOptLevel::None
                                          : llvm::CodeGenOptLevel::Default;
  std::unique_ptr<llvm::TargetMachine> machine(target->createTargetMachine(
      triple.getTriple(), /*CPU=*/"", /*Features=*/"", toolDefaultOptions(triple),
      /*RM=*/use == TargetMachineUse::Program ? std::optional(llvm::Reloc::PIC_) : std::nullopt, /*CM=*/std::nullopt,
      use == TargetMachineUse::Program ? llvm::CodeGenOptLevel::None : level));
  if (!machine) {
    return makeError(Outcome::BenchmarkError,
                     "LLVM could not create a target machine for '" + triple.getTriple() + "'");
  }
  return machine;
}

}  // namespace forkgym::passes
