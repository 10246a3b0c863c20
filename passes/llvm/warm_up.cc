#include "passes/llvm/warm_up.h"

#include <sys/mman.h>
#include <unistd.h>

#include <llvm/IR/Constants.h>
#include <llvm/IR/Instructions.h>
#include <llvm/IR/Module.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

namespace forkgym::passes {
namespace {

// Between two looks at `idle`: small enough that a client that rings waits
// well under a millisecond, large enough that the look costs nothing.
constexpr size_t kPagesPerChunk = 256;

size_t pageSize() {
  static const size_t size = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return size;
}

class PageSet {
 public:
  // The pages [begin, begin + bytes) lies on.
  void add(const void* begin, size_t bytes) {
    const uintptr_t first = reinterpret_cast<uintptr_t>(begin) / pageSize();
    const uintptr_t last = (reinterpret_cast<uintptr_t>(begin) + std::max<size_t>(bytes, 1) - 1) / pageSize();
    for (uintptr_t page = first; page <= last; ++page) {
      // Objects allocated one after another share pages: most repeats are
      // the page just added, and skipping them keeps the sort below short.
      if (page == lastAdded_) continue;
      pages_.push_back(page);
      lastAdded_ = page;
    }
  }

  // Populates the pages with `advice`, in runs of adjacent pages.
  WarmUpReport populate(int advice, const std::function<bool()>& idle) {
    std::sort(pages_.begin(), pages_.end());
    pages_.erase(std::unique(pages_.begin(), pages_.end()), pages_.end());
    WarmUpReport report;
    for (size_t i = 0; i < pages_.size();) {
      if (i % kPagesPerChunk == 0 && !idle()) return {report.pages, false};
      size_t run = 1;
      while (i + run < pages_.size() && pages_[i + run] == pages_[i] + run && run < kPagesPerChunk) ++run;
      // A page this process may not write (none should be: IR lives on the
      // heap) fails alone; the rest go on.
      if (madvise(reinterpret_cast<void*>(pages_[i] * pageSize()), run * pageSize(), advice) == 0) {
        report.pages += run;
      } else if (errno == EINVAL) {
        return {report.pages, false};  // the kernel has no such advice
      }
      i += run;
    }
    return report;
  }

 private:
  std::vector<uintptr_t> pages_;
  uintptr_t lastAdded_ = 0;
};

void addValue(PageSet& pages, const llvm::Value* value, size_t bytes) { pages.add(value, bytes); }

}  // namespace

WarmUpReport prefaultModuleForWriting(const llvm::Module& module, const std::function<bool()>& idle) {
  PageSet pages;
  auto addOperands = [&](const llvm::User& user) {
    if (user.getNumOperands() == 0) return;
    pages.add(user.op_begin(), sizeof(llvm::Use) * user.getNumOperands());
    for (const llvm::Use& use : user.operands()) {
      // A pass that replaces or drops a use of a constant or a global
      // rewrites that value's use list.
      if (llvm::isa<llvm::Constant>(use.get())) addValue(pages, use.get(), sizeof(llvm::Constant));
    }
  };
  for (const llvm::GlobalVariable& global : module.globals()) {
    addValue(pages, &global, sizeof(llvm::GlobalVariable));
    addOperands(global);
  }
  for (const llvm::Function& function : module) {
    addValue(pages, &function, sizeof(llvm::Function));
    for (const llvm::Argument& argument : function.args()) addValue(pages, &argument, sizeof(llvm::Argument));
    for (const llvm::BasicBlock& block : function) {
      addValue(pages, &block, sizeof(llvm::BasicBlock));
      for (const llvm::Instruction& instruction : block) {
        // The largest common instruction object; a smaller one's neighbour
        // on the same page is the module's too, nearly always.
        addValue(pages, &instruction, sizeof(llvm::CallInst));
        addOperands(instruction);
      }
    }
  }
  return pages.populate(MADV_POPULATE_WRITE, idle);
}

}  // namespace forkgym::passes
