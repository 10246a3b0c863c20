// Heap perturbation: gives one zygote a heap layout of its own.
//
// Every worker is a fork of its zygote, so all episodes of one zygote start
// from nearly one heap: wherever LLVM's result depends on heap addresses
// (iterating a pointer-keyed DenseMap, sorting by address — the use-list
// order NewGVN leaves behind is one), the episodes, replays and forks of that
// zygote agree, or take one of a few values, and the nondeterminism hardly
// shows. A zygote started with
// `--perturb-heap SEED` first allocates blocks chosen by SEED and frees some
// of them, so what it allocates later (parsed benchmarks, and everything
// its workers allocate) lands at other addresses and in another relative
// order than in any zygote with another seed, even with ASLR off.
// validate(fresh_process=True) replays an episode in such a zygote and
// compares the state hash step by step (client/python/forkgym/validate.py).
//
// Lifecycle (the zygote only, single-threaded):
//   1. main() calls perturbHeap(seed) once, after parsing its options and
//      before any backend is initialised or benchmark loaded. The blocks it
//      keeps (well under 1 MiB) live as long as the process.
#pragma once

#include <cstdint>

namespace forkgym::forkserver {

void perturbHeap(uint64_t seed);

}  // namespace forkgym::forkserver
