/* Prints the monotonic clock: two runs never agree, whatever the passes do. */
#include <stdio.h>
#include <time.h>

int main(void) {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  printf("%ld.%09ld\n", (long)now.tv_sec, now.tv_nsec);
  return 0;
}
