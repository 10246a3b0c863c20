#define _GNU_SOURCE
/* hostile_gcc: a "gcc" for the fault rows of the external-compiler sandbox
 * profile (tests/reliability/fault_matrix_test.cc, set up by
 * tests/passes/gcc/hostile_gcc.h; tests/python/test_gcc_env.py). Discovery
 * and the loader's runs (--version, --help=, -print-prog-name=, -E) go to
 * the real gcc, so the server starts and loads benchmarks as with gcc
 * itself. A compile (-c), which only a worker runs (whose sandbox would not
 * let it run the real driver: it may run only this program, cc1 and as),
 * does what the source names with an identifier forkgym_hostile_<attack>
 * (which survives preprocessing):
 *   read     open("/etc/passwd"): outside the system's directories
 *   write    create files in /dev/shm and /var/tmp (both writable by all):
 *            outside its private /tmp
 *   exec     execve("/bin/true"): not one of the compiler's binaries
 *   net      socket(AF_INET), then connect to 127.0.0.1:22: the sandbox
 *            traps an inet socket (SIGSYS kills this "compiler")
 *   crash    SIGSEGV
 *   hang     blocks for good (the step's compiler time limit ends it)
 *   cc1      a pass (a child) that blocks for good while the driver waits
 *            for it; it names itself "fghostile-cc1" (PR_SET_NAME) once it
 *            runs, the signal a test waits for
 *   escape   the same, but the pass first leaves the compile's process
 *            group (setpgid), named "fghostile-esc"
 *   (none)   read, write, exec, then net, in that order
 * Each attempt prints "hostile <what>: denied (<errno name>)" or "...
 * ALLOWED" on stderr; then it ends as gcc does on an internal compiler error
 * (exit status 4), which the server types compiler_failed. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static void report(const char* what, int ok) {
  if (ok) fprintf(stderr, "hostile %s: ALLOWED\n", what);
  else fprintf(stderr, "hostile %s: denied (%s)\n", what, strerrorname_np(errno) ? strerrorname_np(errno) : "?");
  fflush(stderr);
}

static void readOutside(void) {
  int fd = open("/etc/passwd", O_RDONLY);
  report("read /etc/passwd", fd >= 0);
}

static void writeOutside(void) {
  const char* paths[] = {"/dev/shm/forkgym-hostile", "/var/tmp/forkgym-hostile"};
  for (size_t i = 0; i < sizeof paths / sizeof *paths; ++i) {
    char what[64];
    snprintf(what, sizeof what, "write %s", paths[i]);
    int fd = open(paths[i], O_WRONLY | O_CREAT | O_EXCL, 0644);
    report(what, fd >= 0);
    if (fd >= 0) unlink(paths[i]);
  }
}

static void execOther(void) {
  pid_t child = fork();
  if (child == 0) {
    execl("/bin/true", "true", (char*)NULL);
    _exit(errno);
  }
  int status = 0;
  waitpid(child, &status, 0);
  errno = WIFEXITED(status) ? WEXITSTATUS(status) : 0;
  report("exec /bin/true", WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void network(void) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(22)};
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  report("connect 127.0.0.1:22", s >= 0 && connect(s, (struct sockaddr*)&to, sizeof to) == 0);
}

/* Blocks for good, in a call the sandbox allows (pause() is not): a read
 * of a pipe whose write end this process holds. */
static void blockForGood(void) {
  int ends[2];
  char byte;
  if (pipe(ends) != 0) abort();
  for (;;) read(ends[0], &byte, 1);
}

/* A pass the driver waits for, blocked for good once it has named itself. */
static void blockedPass(const char* name, int leaveGroup) {
  pid_t pass = fork();
  if (pass == 0) {
    if (leaveGroup) report("leave the process group", setpgid(0, 0) == 0);
    prctl(PR_SET_NAME, name, 0, 0, 0);
    blockForGood();
  }
  waitpid(pass, NULL, 0);
}

/* The attack the source names, "" for none. */
static void attackOf(char* attack, size_t size) {
  static char text[1 << 20];
  attack[0] = '\0';
  int fd = open("src.c", O_RDONLY);
  if (fd < 0) return;
  ssize_t n = read(fd, text, sizeof text - 1);
  close(fd);
  text[n > 0 ? n : 0] = '\0';
  const char* marker = strstr(text, "forkgym_hostile_");
  if (marker == NULL) return;
  marker += strlen("forkgym_hostile_");
  size_t length = strspn(marker, "abcdefghijklmnopqrstuvwxyz0123456789");
  if (length >= size) length = size - 1;
  memcpy(attack, marker, length);
  attack[length] = '\0';
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
  char attack[32];
  attackOf(attack, sizeof attack);
  if (strcmp(attack, "read") == 0) {
    readOutside();
  } else if (strcmp(attack, "write") == 0) {
    writeOutside();
  } else if (strcmp(attack, "exec") == 0) {
    execOther();
  } else if (strcmp(attack, "net") == 0) {
    network();
  } else if (strcmp(attack, "crash") == 0) {
    raise(SIGSEGV);
  } else if (strcmp(attack, "hang") == 0) {
    blockForGood();
  } else if (strcmp(attack, "cc1") == 0) {
    blockedPass("fghostile-cc1", 0);
  } else if (strcmp(attack, "escape") == 0) {
    blockedPass("fghostile-esc", 1);
  } else {
    readOutside();
    writeOutside();
    execOther();
    network();
  }
  fprintf(stderr, "src.c:1:1: internal compiler error: hostile compiler (%s)\n", attack[0] ? attack : "all");
  return 4;
}
