#include "passes/llvm/fault_injection.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <llvm/IR/BasicBlock.h>
#include <llvm/IR/DerivedTypes.h>
#include <llvm/IR/Function.h>
#include <llvm/IR/Module.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

namespace forkgym::passes {

#ifdef FORKGYM_TEST_ACTIONS
namespace {

// Volatile so the compiler cannot prove the address null and replace the
// store with a trap (SIGILL), which would test the wrong signal.
volatile uintptr_t gNullAddress = 0;

[[noreturn]] void segfault() {
  *reinterpret_cast<volatile int*>(gNullAddress) = 1;
  std::abort();  // unreachable unless page zero is mapped
}

[[noreturn]] void hang() {
  // A side-effect-free infinite loop is undefined behaviour in C++; the
  // volatile counter makes it a real one.
  volatile uint64_t spins = 0;
  for (;;) spins = spins + 1;
}

[[noreturn]] void exhaustMemory() {
  constexpr size_t kChunk = size_t{1} << 24;
  for (;;) {
    // Leaked on purpose; memset touches every page so the memory is really
    // committed, not just reserved.
    char* chunk = static_cast<char*>(::operator new(kChunk));
    std::memset(chunk, 0xa5, kChunk);
    asm volatile("" : : "r"(chunk) : "memory");
  }
}

// Forks until refused: by seccomp at the first fork (SIGSYS) in the
// in-process profile, by the episode's process limit in a runnable
// benchmark's worker, which may fork. Each child waits, forking nothing, so
// the flood fills the limit exactly; then the worker ends and reaps them
// all and carries on with every slot given back (an unreaped child would
// hold its slot for the rest of the episode, and a grandchild would be
// reaped only whenever the zygote gets to it). At most kMaxChildren, so a
// machine with no process limit is not flooded.
void forkBomb() {
  constexpr size_t kMaxChildren = 4096;
  pid_t children[kMaxChildren];
  size_t made = 0;
  while (made < kMaxChildren) {
    const pid_t pid = fork();
    if (pid == 0) {
      for (;;) pause();
    }
    if (pid < 0) break;
    children[made++] = pid;
  }
  for (size_t i = 0; i < made; ++i) {
    kill(children[i], SIGKILL);
    while (waitpid(children[i], nullptr, 0) < 0 && errno == EINTR) {
    }
  }
}

void openFile() {
  const int fd = open("/etc/passwd", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) close(fd);
}

void openSocket() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd >= 0) close(fd);
}

void execTrue() {
  char program[] = "/bin/true";
  char* const argv[] = {program, nullptr};
  char* const envp[] = {nullptr};
  execve(program, argv, envp);  // returns only if refused
}

// noinline and a live array after the call keep this a real recursion rather
// than a loop after tail-call elimination. The depth check can never fire
// before the stack runs out (that would take terabytes); it only tells the
// compiler the recursion is not unconditional.
[[gnu::noinline]] int recurse(int64_t depth) {
  volatile char frame[1024];
  frame[0] = static_cast<char>(depth);
  if (depth == INT64_MAX) return frame[0];
  return recurse(depth + 1) + frame[0];
}

bool breakModule(llvm::Module& module) {
  // A block without a terminator is the simplest thing the verifier rejects.
  // A new function keeps this deterministic whatever the module contains.
  auto* type = llvm::FunctionType::get(llvm::Type::getVoidTy(module.getContext()), false);
  auto* function = llvm::Function::Create(type, llvm::GlobalValue::InternalLinkage,
                                          "forkgym.verifier_failure", module);
  llvm::BasicBlock::Create(module.getContext(), "entry", function);
  return true;
}

}  // namespace

bool runFaultInjection(std::string_view flag, llvm::Module& module) {
  if (flag == "-forkgym-test-segfault") segfault();
  if (flag == "-forkgym-test-abort") std::abort();
  if (flag == "-forkgym-test-hang") hang();
  if (flag == "-forkgym-test-oom") exhaustMemory();
  if (flag == "-forkgym-test-fork-bomb") forkBomb();
  if (flag == "-forkgym-test-open") openFile();
  if (flag == "-forkgym-test-socket") openSocket();
  if (flag == "-forkgym-test-execve") execTrue();
  if (flag == "-forkgym-test-stack-overflow") recurse(0);
  if (flag == "-forkgym-test-verifier-failure") return breakModule(module);
  return false;
}
#else
// The product flavour has no TestCrash rows, so nothing calls this; it exists
// only so the session links the same way in both flavours, and it does nothing.
bool runFaultInjection(std::string_view, llvm::Module&) { return false; }
#endif

}  // namespace forkgym::passes
