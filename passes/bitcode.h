// Bitcode in and out of memory, byte-for-byte as opt writes it, so that
// IrSha1 equals the sha1sum of `opt -passes=... -o out.bc`.
// Any process; no files.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "ipc/result.h"

namespace llvm {
class LLVMContext;
class Module;
}  // namespace llvm

namespace forkgym::passes {

// Writes with use-list order preserved (opt's -preserve-bc-uselistorder
// default), through the same BitcodeWriterPass opt ends its pipeline with.
std::string writeBitcode(llvm::Module& module);

// BenchmarkError naming `what` and LLVM's reason when the bytes are not
// bitcode LLVM 19 can read. Fully materialised (no lazy loading, which would
// read the buffer later).
Result<std::unique_ptr<llvm::Module>> parseBitcode(std::string_view bytes,
                                                   llvm::LLVMContext& context,
                                                   std::string_view what);

// Lower-case hex SHA-1, as sha1sum prints it.
std::string sha1Hex(std::string_view bytes);

}  // namespace forkgym::passes
