#include "client/fork_watch.h"

#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <mutex>

namespace forkgym {

struct ForkWatchList {
  std::mutex mutex;
  ForkWatch* head = nullptr;
  std::atomic<pid_t> pid{getpid()};

  static ForkWatchList& get();

  static void prepare() { get().mutex.lock(); }
  static void parent() { get().mutex.unlock(); }
  static void child() {
    ForkWatchList& list = get();
    const pid_t parentPid = list.pid.load(std::memory_order_relaxed);
    list.pid.store(getpid(), std::memory_order_relaxed);
    for (ForkWatch* watch = list.head; watch; watch = watch->next_) watch->forget_(watch->owner_, parentPid);
    list.mutex.unlock();
  }
};

ForkWatchList& ForkWatchList::get() {
  // Never destroyed: objects with static storage may still unregister
  // during exit, after this function's statics would have gone.
  static ForkWatchList* list = [] {
    auto* made = new ForkWatchList();
    pthread_atfork(&ForkWatchList::prepare, &ForkWatchList::parent, &ForkWatchList::child);
    return made;
  }();
  return *list;
}

ForkWatch::ForkWatch(void* owner, Callback forgetInChild) : owner_(owner), forget_(forgetInChild) {
  ForkWatchList& list = ForkWatchList::get();
  std::lock_guard lock(list.mutex);
  next_ = list.head;
  if (next_) next_->prev_ = this;
  list.head = this;
}

ForkWatch::~ForkWatch() {
  ForkWatchList& list = ForkWatchList::get();
  std::lock_guard lock(list.mutex);
  if (prev_) prev_->next_ = next_;
  else list.head = next_;
  if (next_) next_->prev_ = prev_;
}

pid_t currentPid() { return ForkWatchList::get().pid.load(std::memory_order_relaxed); }

}  // namespace forkgym
