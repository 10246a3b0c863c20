// Bitcode in and out of memory, byte-for-byte as opt writes it. Any process;
// no files.
//
// Two forms: with use-list order (opt's default output, and the Bitcode
// observation, so a replay starts from exactly the episode's state) and
// without (IrSha1). Some passes (NewGVN) leave use-lists in an order that
// depends on heap addresses, so only the form without is a deterministic
// hash of the module: IrSha1 equals the sha1sum of
// `opt -passes=... -preserve-bc-uselistorder=false -o out.bc`.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "base/result.h"

namespace llvm {
class LLVMContext;
class Module;
}  // namespace llvm

namespace forkgym::passes {

enum class UseListOrder { Preserve, Drop };

// Writes through the same BitcodeWriterPass opt ends its pipeline with.
std::string writeBitcode(llvm::Module& module, UseListOrder order = UseListOrder::Preserve);

// BenchmarkError naming `what` and LLVM's reason when the bytes are not
// bitcode LLVM 19 can read. Fully materialised (no lazy loading, which would
// read the buffer later).
Result<std::unique_ptr<llvm::Module>> parseBitcode(std::string_view bytes,
                                                   llvm::LLVMContext& context,
                                                   std::string_view what);

// Lower-case hex SHA-1, as sha1sum prints it.
std::string sha1Hex(std::string_view bytes);

}  // namespace forkgym::passes
