#include "passes/llvm/diagnostics.h"

#include <llvm/IR/DiagnosticHandler.h>
#include <llvm/IR/DiagnosticInfo.h>
#include <llvm/IR/DiagnosticPrinter.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/Support/raw_ostream.h>

namespace forkgym::passes {
namespace {

class Collector final : public llvm::DiagnosticHandler {
 public:
  explicit Collector(std::string& errors) : errors_(errors) {}

  bool handleDiagnostics(const llvm::DiagnosticInfo& info) override {
    if (info.getSeverity() == llvm::DS_Error) {
      llvm::raw_string_ostream stream(errors_);
      llvm::DiagnosticPrinterRawOStream printer(stream);
      info.print(printer);
      stream << '\n';
    }
    return true;  // handled: LLVM must neither print nor exit
  }

 private:
  std::string& errors_;
};

}  // namespace

void DiagnosticLog::installOn(llvm::LLVMContext& context) {
  context.setDiagnosticHandler(std::make_unique<Collector>(errors_));
}

}  // namespace forkgym::passes
