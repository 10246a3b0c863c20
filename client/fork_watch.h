// ForkWatch: makes client objects safe across fork() of the client process.
//
// A child made by fork() (Python's os.fork, multiprocessing's 'fork' start
// method, gymnasium's AsyncVectorEnv) inherits copies of every descriptor
// the parent's client objects hold: the zygote's control socket and each
// episode's channel. Using them from the child would interleave its requests
// with the parent's on the same socket, and step the parent's workers. So a
// child forgets them: it closes its copies (the parent keeps its own; nothing
// is sent on them) and never signals or reaps the parent's processes.
//
// Lifecycle (any client process):
//   1. A client object (Connection, Env) holds a ForkWatch member built with
//      a callback; the watch registers itself in a process-wide list.
//   2. fork(): the pthread_atfork handlers hold the list's lock across the
//      fork (only ever held briefly, so this cannot deadlock), then, in the
//      child only, call every registered callback — single-threaded, before
//      fork() returns — and record the child's pid.
//   3. Destroying the watch unregisters it; declare it as the owner's last
//      member so it unregisters before the rest of the owner is destroyed.
// Callbacks run in a child that may have been forked while other threads
// held locks: they may only reset state (reinitialise a mutex, close
// descriptors), never take a lock or wait.
#pragma once

#include <sys/types.h>

namespace forkgym {

class ForkWatch {
 public:
  // forgetInChild(owner, parentPid) runs in each child of a fork().
  using Callback = void (*)(void* owner, pid_t parentPid) noexcept;

  ForkWatch(void* owner, Callback forgetInChild);
  ~ForkWatch();
  ForkWatch(const ForkWatch&) = delete;
  ForkWatch& operator=(const ForkWatch&) = delete;

 private:
  friend struct ForkWatchList;
  void* owner_;
  Callback forget_;
  ForkWatch* prev_ = nullptr;
  ForkWatch* next_ = nullptr;
};

// This process's pid without a system call (glibc no longer caches
// getpid()); kept current in fork() children by the atfork handler.
pid_t currentPid();

}  // namespace forkgym
