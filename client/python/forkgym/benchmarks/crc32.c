/* A small benchmark (~200 instructions at -O0): table-driven CRC-32 over a
 * generated buffer, in the spirit of cBench's crc32. */
#include <stdint.h>
#include <stdio.h>

static uint32_t table[256];

static void build_table(void) {
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    table[i] = c;
  }
}

static uint32_t crc32(const unsigned char *data, int length) {
  uint32_t crc = 0xFFFFFFFFu;
  for (int i = 0; i < length; ++i) crc = table[(crc ^ data[i]) & 0xFF] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

int main(void) {
  unsigned char buffer[4096];
  for (int i = 0; i < (int)sizeof(buffer); ++i) buffer[i] = (unsigned char)(i * 7 + 3);
  build_table();
  uint32_t total = 0;
  for (int round = 0; round < 16; ++round) {
    buffer[round] ^= (unsigned char)round;
    total += crc32(buffer, (int)sizeof(buffer));
  }
  printf("%08x\n", total);
  return 0;
}
