// Bitcode in and out of memory, byte-for-byte as opt writes it. Any process;
// no files.
//
// Two forms, and the two state hashes made of them:
//
// - With use-list order (opt's default output; the Bitcode observation, so a
//   replay starts from exactly the episode's state). Its SHA-1 is
//   BitcodeSha1, the state hash: everything of the module a later pass can
//   read, including the order of every value's use-list, which passes do
//   read (InstCombine queues a changed value's users in use-list order;
//   every walk over `users()` follows it), so it can change what they do. It equals the sha1sum of
//   `opt -passes=... -o out.bc` on the benchmark's Bitcode wherever the
//   passes' result does not depend on heap addresses.
// - Without (IrSha1): instructions, operands, types, names, attributes,
//   metadata, globals, target triple and data layout: what the IR text
//   shows (but its ModuleID comment), not use-list order. Some passes (NewGVN) leave use-lists
//   in an order that depends on heap addresses, so IrSha1 is what stays the
//   same across processes for the same IR: it equals the sha1sum of
//   `opt -passes=... -preserve-bc-uselistorder=false -o out.bc` on the
//   benchmark's Bitcode. Two states with one IrSha1 may still come out
//   differently from the same later passes; two with one BitcodeSha1 give
//   those passes the same module to read (with the exceptions below).
//
// What neither covers: use-list entries of users the writer does not write
// (a dead constant expression left in the LLVMContext still appears in a
// global's use-list); the analyses the pass manager keeps cached between
// steps (opt's single pipeline keeps them too, so a replay sees the same);
// and, by definition, heap addresses themselves, which is why one zygote's
// episodes cannot show address-dependent results and
// validate(fresh_process=True) compares BitcodeSha1 across processes. LLVM's
// own check that the writer records use-list order is `verify-uselistorder`.
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
