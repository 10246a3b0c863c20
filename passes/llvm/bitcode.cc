#include "passes/llvm/bitcode.h"

#include <llvm/Bitcode/BitcodeReader.h>
#include <llvm/Bitcode/BitcodeWriterPass.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/PassManager.h>
#include <llvm/Support/Error.h>
#include <llvm/Support/MemoryBuffer.h>
#include <llvm/Support/SHA1.h>
#include <llvm/Support/raw_ostream.h>

namespace forkgym::passes {

std::string writeBitcode(llvm::Module& module, UseListOrder order) {
  std::string bytes;
  llvm::raw_string_ostream stream(bytes);
  // The pass, not WriteBitcodeToFile directly, because in LLVM 19 the pass
  // also picks the debug-info format to write; no summary index is asked
  // for, so it never touches the (empty) analysis manager.
  llvm::ModuleAnalysisManager unused;
  llvm::BitcodeWriterPass(stream, order == UseListOrder::Preserve).run(module, unused);
  stream.flush();
  return bytes;
}

Result<std::unique_ptr<llvm::Module>> parseBitcode(std::string_view bytes,
                                                   llvm::LLVMContext& context,
                                                   std::string_view what) {
  // The buffer's name becomes the module identifier; "-" is what every
  // sanitised benchmark is called (CompilerGym's convention), and the
  // identifier is not stored in bitcode.
  llvm::MemoryBufferRef buffer(llvm::StringRef(bytes.data(), bytes.size()), "-");
  llvm::Expected<std::unique_ptr<llvm::Module>> module = llvm::parseBitcodeFile(buffer, context);
  if (!module) {
    return makeError(Outcome::BenchmarkError,
                     std::string(what) + " is not valid LLVM bitcode: " +
                         llvm::toString(module.takeError()));
  }
  return std::move(*module);
}

std::string sha1Hex(std::string_view bytes) {
  llvm::SHA1 hasher;
  hasher.update(llvm::StringRef(bytes.data(), bytes.size()));
  const std::array<uint8_t, 20> digest = hasher.final();
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(40);
  for (uint8_t byte : digest) {
    hex.push_back(kHex[byte >> 4]);
    hex.push_back(kHex[byte & 0xf]);
  }
  return hex;
}

}  // namespace forkgym::passes
