#define _GNU_SOURCE
/* hostile_gcc: a "gcc" for the external-compiler sandbox's fault rows
 * (served_test.cc). Discovery and the loader's runs (--version, --help=,
 * -print-prog-name=, -E, -S) go to the real gcc, so the server starts and
 * loads benchmarks as with gcc itself; a compile (-c), which only a worker
 * runs, tries what a compromised compiler would and reports each outcome on
 * stderr, then fails as gcc does on bad input (exit status 1):
 *   read   open("/etc/passwd")          outside the system's directories
 *   write  create /dev/shm/forkgym-hostile, outside its private /tmp
 *   exec   execve("/bin/true")          not one of the compiler's binaries
 *   net    socket(AF_INET) and connect to 127.0.0.1:22 — last, since the
 *          sandbox traps an inet socket (SIGSYS kills this "compiler")
 * Each line says "hostile <what>: denied (<errno name>)" or "... ALLOWED". */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static void report(const char* what, int ok) {
  if (ok) fprintf(stderr, "hostile %s: ALLOWED\n", what);
  else fprintf(stderr, "hostile %s: denied (%s)\n", what, strerrorname_np(errno) ? strerrorname_np(errno) : "?");
}

int main(int argc, char** argv) {
  int compile = 0;
  for (int i = 1; i < argc; ++i) compile |= strcmp(argv[i], "-c") == 0;
  if (!compile) {
    argv[0] = (char*)"/usr/bin/gcc";
    execv(argv[0], argv);
    perror("hostile_gcc: execv /usr/bin/gcc");
    return 127;
  }
  int fd = open("/etc/passwd", O_RDONLY);
  report("read /etc/passwd", fd >= 0);
  fd = open("/dev/shm/forkgym-hostile", O_WRONLY | O_CREAT, 0644);
  report("write /dev/shm/forkgym-hostile", fd >= 0);
  if (fd >= 0) unlink("/dev/shm/forkgym-hostile");
  pid_t child = fork();
  if (child == 0) {
    execl("/bin/true", "true", (char*)NULL);
    _exit(errno);
  }
  int status = 0;
  waitpid(child, &status, 0);
  errno = WIFEXITED(status) ? WEXITSTATUS(status) : 0;
  report("exec /bin/true", WIFEXITED(status) && WEXITSTATUS(status) == 0);
  fflush(stderr);
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(22)};
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  report("connect 127.0.0.1:22", s >= 0 && connect(s, (struct sockaddr*)&to, sizeof to) == 0);
  fprintf(stderr, "src.c:1:1: error: hostile compiler refuses\n");
  return 1;
}
