#include "forkserver/single_thread.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace forkgym::forkserver {

int threadCount() {
  // Field 20 of /proc/self/stat; the command name (field 2) may contain
  // spaces, so count from the closing parenthesis.
  char buffer[1024];
  int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = read(fd, buffer, sizeof(buffer) - 1);
  close(fd);
  if (n <= 0) return -1;
  buffer[n] = '\0';
  const char* p = strrchr(buffer, ')');
  if (!p) return -1;
  int field = 2;
  for (; *p && field < 20; ++p) {
    if (*p == ' ') ++field;
  }
  return atoi(p);
}

void assertSingleThreaded() {
  const int threads = threadCount();
  if (threads != 1) {
    fprintf(stderr, "forkgym-server: refusing to fork with %d threads (invariant 5)\n", threads);
    abort();
  }
}

}  // namespace forkgym::forkserver
