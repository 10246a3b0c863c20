/* Reads numbers from input.txt and from standard input, scales them by
 * argv[1], writes their sum to result.txt and prints it: a program whose
 * every output a run configuration declares. */
#include <stdio.h>
#include <stdlib.h>

static long sum_of(FILE *in, long scale) {
  long total = 0, value = 0;
  while (fscanf(in, "%ld", &value) == 1) total += value * scale;
  return total;
}

int main(int argc, char **argv) {
  long scale = argc > 1 ? atol(argv[1]) : 1;
  FILE *in = fopen("input.txt", "r");
  if (!in) {
    perror("input.txt");
    return 2;
  }
  long total = sum_of(in, scale) + sum_of(stdin, scale);
  fclose(in);
  FILE *out = fopen("result.txt", "w");
  if (!out) return 3;
  fprintf(out, "%ld\n", total);
  fclose(out);
  printf("sum %ld\n", total);
  return 0;
}
