#include "passes/llvm/module_sanitizer.h"

#include <llvm/IR/DebugInfo.h>
#include <llvm/IR/Module.h>
#include <llvm/Target/TargetMachine.h>
#include <llvm/TargetParser/Host.h>

#include "passes/llvm/target_machine.h"

namespace forkgym::passes {

Status sanitizeModule(llvm::Module& module) {
  llvm::StripDebugInfo(module);
  while (!module.named_metadata_empty()) {
    module.eraseNamedMetadata(&*module.named_metadata_begin());
  }
  for (llvm::Function& function : module) {
    function.removeFnAttr(llvm::Attribute::OptimizeNone);
  }
  module.setModuleIdentifier("-");
  module.setSourceFileName("-");

  // llvm-stress and hand-written IR often carry neither; without a triple
  // there is no TargetMachine, so no TTI and no object code.
  if (module.getTargetTriple().empty()) {
    module.setTargetTriple(llvm::sys::getDefaultTargetTriple());
    if (module.getDataLayoutStr().empty()) {
      auto machine = createTargetMachine(module.getTargetTriple(), TargetMachineUse::PassPipeline);
      if (!machine.ok()) return machine.takeError();
      module.setDataLayout((*machine)->createDataLayout());
    }
  }
  return okStatus();
}

}  // namespace forkgym::passes
