// Warm-up: what a spare worker does while it waits for a client, so the
// first step of the episode it will serve does not pay for copy-on-write
// faults on the module it shares with the zygote (~6 µs a page on a
// virtual machine; a first -instcombine on a 62k-instruction module took
// ~3,300 of them).
//
// Lifecycle (a spare worker, before its sandbox, single-threaded):
//   1. LlvmSession::prepareFirstStep() creates the pipeline runner (pass
//      manager and analysis registration), then calls
//      prefaultModuleForWriting(): every page that holds one of the module's
//      IR objects (functions, blocks, instructions and their operand lists,
//      globals, the constants they use, whose use lists a pass rewrites) is
//      made this process's own with MADV_POPULATE_WRITE — the copy the
//      first write would fault in, done now.
//   2. It stops as soon as `idle` returns false (the client rang): a spare
//      taken early serves at once and faults the rest in as it goes.
// Nothing a step can observe changes; best effort (a kernel older than 5.14
// has no MADV_POPULATE_WRITE, and this does nothing). The compiler's code is
// left alone: fork(2) does not copy page-table entries of file mappings, but
// their faults map 16 pages each from the page cache and copy nothing —
// populating all of LLVM's code took 5 ms per spare to save ~0.3 ms.
#pragma once

#include <cstddef>
#include <functional>

namespace llvm {
class Module;
}

namespace forkgym::passes {

struct WarmUpReport {
  size_t pages = 0;      // pages populated
  bool complete = true;  // false: stopped early (the client spoke) or the kernel refused
};

WarmUpReport prefaultModuleForWriting(const llvm::Module& module, const std::function<bool()>& idle);

}  // namespace forkgym::passes
