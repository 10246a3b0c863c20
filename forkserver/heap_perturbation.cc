#include "forkserver/heap_perturbation.h"

#include <cstdlib>
#include <random>
#include <vector>

namespace forkgym::forkserver {

void perturbHeap(uint64_t seed) {
  std::mt19937_64 random(seed);
  // Kept for the life of the process: freeing them would undo the shift.
  static auto* const kept = new std::vector<void*>();
  // Small blocks of the sizes LLVM's values, uses and hash tables take,
  // half of them freed again: later allocations of those sizes reuse the
  // holes (glibc's tcache and bins) in an order set by the seed, so even the
  // relative order of later objects changes, not only their base address.
  constexpr int kBlocks = 4096;
  std::vector<void*> blocks;
  blocks.reserve(kBlocks);
  for (int i = 0; i < kBlocks; ++i) blocks.push_back(std::malloc(16 + random() % 1024));
  for (void* block : blocks) {
    if (random() % 2 == 0) {
      std::free(block);
    } else {
      kept->push_back(block);
    }
  }
  // Moves the top of the heap by a seed-chosen number of 16-byte units
  // (not a page multiple, so pointer hashes change in their low bits too),
  // and the next mmap()ed blocks (above glibc's 128 KiB threshold) by a
  // seed-chosen number of pages.
  kept->push_back(std::malloc(16 * (1 + random() % 8192)));
  kept->push_back(std::malloc((256 << 10) + 4096 * (random() % 64)));
}

}  // namespace forkgym::forkserver
