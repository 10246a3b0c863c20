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

// clang's BackendUtil initTargetOptions() for `clang -c -x ir` on Linux,
// where it differs from llc's: -faddrsig is the driver's default on ELF
// (a non-allocated section: it does not change the text size, but keeps the
// object byte-for-byte clang's).
llvm::TargetOptions clangDefaultOptions(const llvm::Triple& triple) {
  llvm::TargetOptions options = toolDefaultOptions(triple);
  options.EmitAddrsig = triple.isOSBinFormatELF();
  return options;
}

// The driver's -target-cpu and the features its TargetInfo derives from it
// (the "target-features" clang writes on every function it compiles), per
// architecture; an architecture not listed gets LLVM's generic CPU, which
// the equality test against clang-19 would catch on such a host.
struct ClangCpu {
  llvm::Triple::ArchType arch;
  const char* cpu;
  const char* features;
};
constexpr ClangCpu kClangCpus[] = {
    {llvm::Triple::x86_64, "x86-64", "+cmov,+cx8,+fxsr,+mmx,+sse,+sse2,+x87"},
};

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
  std::string cpu, features;
  llvm::TargetOptions options = toolDefaultOptions(triple);
  std::optional<llvm::Reloc::Model> relocation;
  if (use == TargetMachineUse::ClangObject) {
    for (const ClangCpu& row : kClangCpus) {
      if (row.arch == triple.getArch()) {
        cpu = row.cpu;
        features = row.features;
      }
    }
    options = clangDefaultOptions(triple);
    relocation = llvm::Reloc::PIC_;
  }
  // Both tools generate code at -O0 (opt's -codegen-opt-level, clang's
  // default -O0).
  std::unique_ptr<llvm::TargetMachine> machine(target->createTargetMachine(
      triple.getTriple(), cpu, features, options, relocation, /*CM=*/std::nullopt, llvm::CodeGenOptLevel::None));
  if (!machine) {
    return makeError(Outcome::BenchmarkError,
                     "LLVM could not create a target machine for '" + triple.getTriple() + "'");
  }
  return machine;
}

}  // namespace forkgym::passes
