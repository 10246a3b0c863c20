/* Writes one element past a heap array: undefined behaviour that the
 * unoptimised program survives (the allocator's slack absorbs it), and that
 * AddressSanitizer reports in any build of it, optimised or not. */
#include <stdio.h>
#include <stdlib.h>

int main(void) {
  volatile int n = 4;
  int *values = malloc(n * sizeof(int));
  for (int i = 0; i <= n; ++i) values[i] = i;
  printf("%d\n", values[0] + values[1]);
  free(values);
  return 0;
}
