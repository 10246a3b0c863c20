// The state cache's segment on its own: values come back exactly or not at
// all — after eviction, after a writer killed mid-insert, in a forked child
// that inherits only the read-only view.
#include "ipc/state_cache.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

namespace forkgym {
namespace {

class StateCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    name_ = "/forkgym-state-cache-test-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    (void)StateCache::remove(name_);
  }
  void TearDown() override { (void)StateCache::remove(name_); }

  std::unique_ptr<StateCache> open(size_t bytes = 1 << 20) {
    auto cache = StateCache::open(name_, bytes);
    EXPECT_TRUE(cache.ok()) << cache.error().message;
    return std::move(*cache);
  }

  std::string name_;
};

StateCacheKey key(uint64_t n) { return {n * 0x9e3779b97f4a7c15ull, n}; }
std::string valueOf(uint64_t n, size_t size = 100) {
  std::string value(size, '\0');
  for (size_t i = 0; i < size; ++i) value[i] = static_cast<char>('a' + (n + i) % 26);
  return value;
}

TEST_F(StateCacheTest, AValueComesBackExactlyAndAnotherKeyMisses) {
  auto cache = open();
  ASSERT_TRUE(cache->insert(key(1), "one"));
  EXPECT_EQ(cache->lookup(key(1)), "one");
  EXPECT_EQ(cache->lookup(key(2)), std::nullopt);
  ASSERT_TRUE(cache->insert(key(1), "uno"));  // replaced, not duplicated
  EXPECT_EQ(cache->lookup(key(1)), "uno");
  EXPECT_EQ(cache->stats().entries, 1u);
}

TEST_F(StateCacheTest, ASecondOpenerSeesTheSameSegment) {
  auto first = open();
  ASSERT_TRUE(first->insert(key(7), "seven"));
  auto second = open(4 << 20);  // an existing segment keeps its creator's size
  EXPECT_EQ(second->lookup(key(7)), "seven");
  EXPECT_EQ(second->stats().capacityBytes, first->stats().capacityBytes);
}

TEST_F(StateCacheTest, ASmallBoundEvictsTheOldestAndNeverReturnsAWrongValue) {
  auto cache = open(64 << 10);  // the smallest ring: 64 KiB
  const uint64_t count = 2000;  // ~200 KB of values
  for (uint64_t n = 0; n < count; ++n) ASSERT_TRUE(cache->insert(key(n), valueOf(n)));
  const auto stats = cache->stats();
  EXPECT_EQ(stats.usedBytes, stats.capacityBytes);
  EXPECT_LT(stats.entries, count);
  uint64_t hits = 0;
  for (uint64_t n = 0; n < count; ++n) {
    auto value = cache->lookup(key(n));
    if (!value) continue;
    ++hits;
    ASSERT_EQ(*value, valueOf(n)) << "entry " << n;
  }
  EXPECT_EQ(hits, stats.entries);
  EXPECT_EQ(cache->lookup(key(0)), std::nullopt);             // the oldest went first
  EXPECT_EQ(cache->lookup(key(count - 1)), valueOf(count - 1));  // the newest stays
  EXPECT_LE(stats.entries * 104, stats.capacityBytes);
}

TEST_F(StateCacheTest, AWriterKilledMidInsertLeavesAnEntryReadersIgnoreAndNoLock) {
  auto cache = open();
  ASSERT_TRUE(cache->insert(key(1), valueOf(1, 1000)));
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // A second writer (another zygote): opens the segment itself.
    auto writer = StateCache::open(name_, 1 << 20);
    if (!writer.ok()) _exit(3);
    (*writer)->insertForTest(key(1), valueOf(2, 1000), [] { raise(SIGKILL); });
    _exit(4);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
  // Half of the new value is in the ring: neither value may come back as if whole.
  EXPECT_EQ(cache->lookup(key(1)), std::nullopt);
  // The lock died with its holder: the next insert goes in.
  ASSERT_TRUE(cache->insert(key(1), valueOf(3, 1000)));
  EXPECT_EQ(cache->lookup(key(1)), valueOf(3, 1000));
  EXPECT_EQ(cache->stats().dropped, 0u);
}

TEST_F(StateCacheTest, AForkedChildReadsButCannotWriteTheSegment) {
  auto cache = open();
  ASSERT_TRUE(cache->insert(key(5), "five"));
  int pipeFds[2];
  ASSERT_EQ(pipe(pipeFds), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(pipeFds[0]);
    char verdict = 'r';
    if (cache->lookup(key(5)) != "five") verdict = 'l';
    // insert() refuses: the writable view was not inherited (MADV_DONTFORK).
    if (cache->insert(key(6), "six")) verdict = 'i';
    // Every mapping of the segment this child has is read-only and cannot be
    // made writable: find them in /proc/self/maps and try.
    FILE* maps = fopen("/proc/self/maps", "r");
    char line[512];
    int found = 0;
    while (maps != nullptr && fgets(line, sizeof(line), maps) != nullptr) {
      if (strstr(line, name_.c_str() + 1) == nullptr) continue;
      ++found;
      unsigned long start = 0, end = 0;
      char perms[5] = {};
      sscanf(line, "%lx-%lx %4s", &start, &end, perms);
      if (perms[1] != '-') verdict = 'w';
      if (mprotect(reinterpret_cast<void*>(start), end - start, PROT_READ | PROT_WRITE) == 0) verdict = 'p';
      else if (errno != EACCES) verdict = 'e';
    }
    if (maps != nullptr) fclose(maps);
    if (found != 1) verdict = 'n';
    (void)!write(pipeFds[1], &verdict, 1);
    _exit(0);
  }
  close(pipeFds[1]);
  char verdict = '?';
  ASSERT_EQ(read(pipeFds[0], &verdict, 1), 1);
  close(pipeFds[0]);
  waitpid(child, nullptr, 0);
  EXPECT_EQ(verdict, 'r') << "l: lookup failed, i: insert worked, w: writable mapping, p: mprotect worked, "
                             "e: unexpected errno, n: not exactly one mapping";
  EXPECT_EQ(cache->lookup(key(6)), std::nullopt);
}

TEST_F(StateCacheTest, ABadNameIsAClearError) {
  auto cache = StateCache::open("no-slash", 1 << 20);
  ASSERT_FALSE(cache.ok());
  EXPECT_NE(cache.error().message.find("must be one '/'"), std::string::npos);
}

}  // namespace
}  // namespace forkgym
