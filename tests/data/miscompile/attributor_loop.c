/* An LLVM 19 miscompile: `opt -passes=attributor` alone turns this loop,
 * which ends after 2^18 iterations, into one that never ends.
 *
 * Found by the hunt (scripts/hunt_miscompiles) in GCC's C torture program
 * gcc.c-torture/execute/961017-2.c (gcc-c-torture-v0), under the sequence
 * -sink -reg2mem -attributor -post-inline-ee-instrument; reduced to
 * -attributor alone. This is that program's `unsigned int` branch, with its
 * implicit int and implicit declarations written out so that any C
 * compiler takes it; both forms miscompile the same way.
 *
 * Not undefined behaviour: `z` is unsigned (wraps by definition), `i` stays
 * far below INT_MAX, and a -fsanitize=undefined,address -O0 build runs clean
 * and exits 0, as two unoptimised runs do.
 *
 * Symptom (LLVM 19.1.7, x86-64): the unoptimised program exits 0 at once;
 * after the Attributor it spins until killed. The Attributor rewrites main
 * to `br label %loop` forever: it folds `z > 0` to true and `i > 0x40000`
 * to false, the values they take on the first iteration, as if the stores
 * of the loop body did not reach the loads through the back edge, and so
 * drops the loads, the stores and both exits. (Computing the cycle
 * analysis first, -passes='function(require<cycles>),attributor', changes
 * nothing.)
 */
#include <stdlib.h>

int main(void) {
  int i = 0;
  unsigned int z = 0;
  do {
    z -= 0x00004000;
    i++;
    if (i > 0x00040000) abort();
  } while (z > 0);
  exit(0);
}
