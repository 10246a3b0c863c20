/* A two-file program: forkgym compiles each source and links the modules. */
#include <stdio.h>

double mean(const double *values, int count);
double variance(const double *values, int count);

int main(void) {
  double values[64];
  for (int i = 0; i < 64; ++i) values[i] = (i * 37 % 17) / 3.0;
  printf("%f %f\n", mean(values, 64), variance(values, 64));
  return 0;
}
