/* A program for a run configuration with every part: a pre-run command
 * (`./a.out prepare` writes scale.txt), two input sets (arguments, stdin and
 * numbers.txt differ), declared output files (result.txt, and final.txt
 * that the post-run command `./a.out post` derives from result.txt's first
 * line).
 *
 * Its second line of result.txt asks whether n + 1 < n for the set's
 * argument: signed overflow, undefined behaviour that the unoptimised
 * program computes by wrapping ("wraps" for 2147483647) and that
 * -instcombine folds to false (the add is nsw), so an optimised build
 * differs on the set whose argument is INT_MAX only, in result.txt only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static long sum_of(FILE *in) {
  long total = 0, value = 0;
  while (fscanf(in, "%ld", &value) == 1) total += value;
  return total;
}

static int prepare(void) {
  FILE *out = fopen("scale.txt", "w");
  if (!out) return 5;
  fprintf(out, "3\n");
  return fclose(out) == 0 ? 0 : 5;
}

static int post(void) {
  char line[128] = "";
  FILE *in = fopen("result.txt", "r");
  if (!in || !fgets(line, sizeof line, in)) return 6;
  fclose(in);
  FILE *out = fopen("final.txt", "w");
  if (!out) return 6;
  fprintf(out, "post-run saw: %s", line);
  return fclose(out) == 0 ? 0 : 6;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "prepare") == 0) return prepare();
  if (argc > 1 && strcmp(argv[1], "post") == 0) return post();
  FILE *scale_file = fopen("scale.txt", "r");
  FILE *numbers = fopen("numbers.txt", "r");
  if (!scale_file || !numbers) {
    printf("missing %s\n", scale_file ? "numbers.txt" : "scale.txt (did the pre-run command run?)");
    return 4;
  }
  long scale = sum_of(scale_file);
  long total = (sum_of(numbers) + sum_of(stdin)) * scale;
  int n = argc > 1 ? atoi(argv[1]) : 0;
  FILE *out = fopen("result.txt", "w");
  if (!out) return 3;
  fprintf(out, "sum %ld\n%s\n", total, n + 1 < n ? "wraps" : "no wrap");
  fclose(out);
  printf("done\n");
  return 0;
}
