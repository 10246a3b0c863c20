// The shared region against a peer that resizes it: regions are sealed once
// sized, and a client refuses a region that is not.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <gtest/gtest.h>

#include "ipc/shared_region.h"

namespace forkgym {
namespace {

constexpr int kResizeSeals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;

UniqueFd duplicate(int fd) { return UniqueFd(fcntl(fd, F_DUPFD_CLOEXEC, 0)); }

// What a client does with the memfd it received: map it, then read the last
// byte of the reply area (a shrunk region would SIGBUS here).
char touchEnd(const SharedRegion& region) {
  const auto area = region.replyArea();
  return static_cast<char>(*static_cast<volatile const std::byte*>(&area[area.size() - 1]));
}

TEST(SharedRegion, CreatedRegionIsSealedAgainstResizing) {
  auto region = SharedRegion::create();
  ASSERT_TRUE(region) << region.error().message;
  const int seals = fcntl(region->fd(), F_GET_SEALS);
  ASSERT_GE(seals, 0) << std::strerror(errno);
  EXPECT_EQ(seals & kResizeSeals, kResizeSeals);
  // Nothing stronger: both sides still write requests, replies and last words.
  EXPECT_EQ(seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE), 0);
}

TEST(SharedRegion, PeerThatShrinksTheRegionGetsEpermAndTheClientSurvives) {
  // The test plays the worker: it holds the memfd it created, the client
  // holds a copy it attached.
  auto worker = SharedRegion::create();
  ASSERT_TRUE(worker) << worker.error().message;
  auto client = SharedRegion::attach(duplicate(worker->fd()));
  ASSERT_TRUE(client) << client.error().message;
  const size_t size = client->size();

  errno = 0;
  EXPECT_EQ(ftruncate(worker->fd(), 0), -1);
  EXPECT_EQ(errno, EPERM);
  errno = 0;
  EXPECT_EQ(ftruncate(worker->fd(), static_cast<off_t>(size / 2)), -1);
  EXPECT_EQ(errno, EPERM);
  errno = 0;
  EXPECT_EQ(ftruncate(worker->fd(), static_cast<off_t>(size * 2)), -1);
  EXPECT_EQ(errno, EPERM);
  // Nor can the seals be taken back or changed.
  EXPECT_EQ(fcntl(worker->fd(), F_ADD_SEALS, F_SEAL_WRITE), -1);

  EXPECT_EQ(client->size(), size);
  EXPECT_EQ(touchEnd(*client), 0);
  EXPECT_EQ(client->header().magic, kRegionMagic);
}

// A region with a valid header whose memfd carries `seals` (-1: created
// without MFD_ALLOW_SEALING).
UniqueFd handMadeRegion(int seals) {
  const size_t bytes = kDefaultRegionBytes;
  const int fd = memfd_create("fgtest-region", MFD_CLOEXEC | (seals >= 0 ? MFD_ALLOW_SEALING : 0));
  if (fd < 0) return UniqueFd();
  UniqueFd owned(fd);
  // A genuine header, copied from a region create() laid out.
  if (ftruncate(fd, static_cast<off_t>(bytes)) != 0) return UniqueFd();
  auto model = SharedRegion::create();
  if (!model) return UniqueFd();
  if (pwrite(fd, &model->header(), sizeof(RegionHeader), 0) != static_cast<ssize_t>(sizeof(RegionHeader))) {
    return UniqueFd();
  }
  if (seals > 0 && fcntl(fd, F_ADD_SEALS, seals) != 0) return UniqueFd();
  return owned;
}

TEST(SharedRegion, AttachRefusesARegionWithoutResizeSeals) {
  struct Case {
    const char* what;
    int seals;
  };
  const Case cases[] = {
      {"created without MFD_ALLOW_SEALING", -1},
      {"sealable but not sealed", 0},
      {"shrink only", F_SEAL_SHRINK},
      {"shrink and grow, seals still open", F_SEAL_SHRINK | F_SEAL_GROW},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    UniqueFd fd = handMadeRegion(c.seals);
    ASSERT_TRUE(fd) << std::strerror(errno);
    auto attached = SharedRegion::attach(std::move(fd));
    ASSERT_FALSE(attached);
    EXPECT_EQ(attached.error().outcome, Outcome::ProtocolMismatch);
    EXPECT_NE(attached.error().message.find("seal"), std::string::npos) << attached.error().message;
  }
  // The same header with all three seals is accepted: the seals were the reason.
  auto sealed = SharedRegion::attach(handMadeRegion(kResizeSeals));
  EXPECT_TRUE(sealed) << sealed.error().message;
}

TEST(SharedRegion, AttachRefusesADescriptorThatIsNotAMemfd) {
  int pipeFds[2];
  ASSERT_EQ(pipe2(pipeFds, O_CLOEXEC), 0);
  UniqueFd readEnd(pipeFds[0]), writeEnd(pipeFds[1]);
  auto attached = SharedRegion::attach(std::move(readEnd));
  ASSERT_FALSE(attached);
  EXPECT_EQ(attached.error().outcome, Outcome::ProtocolMismatch);
}

}  // namespace
}  // namespace forkgym
