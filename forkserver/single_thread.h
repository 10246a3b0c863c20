// Invariant 5: fork() is only called from a single-threaded process. The
// zygote checks before each fork (a thread started by a library behind our
// back would leave its locks held in every child).
#pragma once

namespace forkgym::forkserver {

// Aborts with a clear message if this process has more than one thread.
void assertSingleThreaded();
// Number of threads of this process, from /proc/self/stat.
int threadCount();

}  // namespace forkgym::forkserver
