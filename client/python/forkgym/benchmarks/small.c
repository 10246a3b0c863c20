// A small benchmark (~200 IR instructions at -O0) with loops, calls, a
// switch and memory traffic, so most actions have something to change.
#include <string.h>

static int table[16];

static int square(int x) { return x * x; }

static unsigned checksum(const unsigned char *data, int length) {
  unsigned crc = 0xffffffffu;
  for (int i = 0; i < length; ++i) {
    crc ^= data[i];
    for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ (0xedb88320u & -(crc & 1));
  }
  return ~crc;
}

static int classify(int value) {
  switch (value % 5) {
    case 0: return 3;
    case 1: return square(value);
    case 2: return value - 7;
    case 3: return value * 11;
    default: return 0;
  }
}

int main(int argc, char **argv) {
  unsigned char buffer[64];
  memset(buffer, argc, sizeof buffer);
  for (int i = 0; i < 16; ++i) table[i] = classify(i + argc);
  int total = 0;
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 16; ++j) total += table[i] * table[j] + square(i - j);
  return (int)(checksum(buffer, sizeof buffer) ^ (unsigned)total);
}
