// Capturing LLVM's diagnostics instead of letting LLVM print them.
//
// Why: an LLVMContext without a handler writes warnings to stderr and calls
// exit(1) on the first error (for example a link conflict), which would kill
// a loader child without a message, and in a sandboxed worker even a warning
// would be a write the sandbox may refuse. Install a collector on every
// context we create or are handed; read the errors after the operation.
#pragma once

#include <string>

namespace llvm {
class LLVMContext;
}

namespace forkgym::passes {

class DiagnosticLog {
 public:
  DiagnosticLog() = default;
  // The installed handler points at errors_, so the log cannot move.
  DiagnosticLog(const DiagnosticLog&) = delete;
  DiagnosticLog& operator=(const DiagnosticLog&) = delete;

  // The log must outlive the context's use of it (the context keeps a
  // pointer); keep it next to the context.
  void installOn(llvm::LLVMContext& context);

  bool hasErrors() const { return !errors_.empty(); }
  // Error messages, one per line. Warnings and remarks are dropped.
  const std::string& errors() const { return errors_; }
  std::string takeErrors() { return std::move(errors_); }

 private:
  std::string errors_;
};

}  // namespace forkgym::passes
