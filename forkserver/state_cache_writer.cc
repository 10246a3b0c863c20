#include "forkserver/state_cache_writer.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include "base/syscall.h"

namespace forkgym::forkserver {

std::string defaultStateCacheName() { return "/forkgym-state-cache-v1-" + std::to_string(getuid()); }

Status StateCacheWriter::open(const StateCacheOptions& options) {
  if (!options.enabled) return okStatus();
  const std::string name = options.name.empty() ? defaultStateCacheName() : options.name;
  auto opened = StateCache::open(name, options.megabytes << 20);
  if (!opened) return opened.takeError();
  cache_ = std::move(*opened);
  const auto stats = cache_->stats();
  spdlog::info("state cache {}: {} MiB, {} entries", name, stats.capacityBytes >> 20, stats.entries);
  return okStatus();
}

Result<std::pair<UniqueFd, UniqueFd>> StateCacheWriter::link() {
  int ends[2];
  auto made = sys("socketpair(state cache link)",
                  [&] { return socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ends); });
  if (!made) return made.takeError();
  // The zygote's end never blocks its event loop.
  UniqueFd worker(ends[0]);
  UniqueFd zygote(ends[1]);
  const int flags = fcntl(zygote.get(), F_GETFL);
  if (flags < 0 || fcntl(zygote.get(), F_SETFL, flags | O_NONBLOCK) < 0) {
    return makeError(Outcome::ServerError, errnoMessage("fcntl(state cache link)"));
  }
  return std::make_pair(std::move(worker), std::move(zygote));
}

void StateCacheWriter::adopt(pid_t worker, UniqueFd zygoteEnd, const passes::Backend& backend) {
  auto [policy, added] = policies_.try_emplace(&backend);
  if (added) policy->second = cachePolicyOf(backend);
  const int fd = zygoteEnd.get();
  links_[fd] = Link{std::move(zygoteEnd), worker, &backend, &policy->second, std::nullopt};
}

void StateCacheWriter::bind(pid_t worker, std::string_view contentHash, uint32_t clientUid) {
  for (auto& [fd, link] : links_) {
    if (link.worker != worker || link.root) continue;
    auto identity = link.backend->initialize();
    const StateCacheKey root = stateRoot(serverBuildId(), link.backend->name, identity ? identity->version : "",
                                         link.backend->actionSpace().hash, contentHash, clientUid);
    // The worker reads it at its first request, which comes after the
    // client has this session's reply, which comes after this.
    if (sysRaw([&] { return write(fd, &root, sizeof(root)); }) == static_cast<ssize_t>(sizeof(root))) {
      link.root = root;
    }
    return;
  }
}

void StateCacheWriter::addPollFds(std::vector<pollfd>& fds) const {
  for (const auto& [fd, link] : links_) fds.push_back({fd, POLLIN, 0});
}

bool StateCacheWriter::valid(const Link& link, const Submission& s) const {
  const CachePolicy& policy = *link.policy;
  if (s.kind == EntryKind::Counts) return s.path.empty() && s.value.empty();
  if (!link.root) return false;
  for (uint32_t action : s.path) {
    if (action >= policy.actions.size() || !policy.actions[action]) return false;
  }
  switch (s.kind) {
    case EntryKind::Transition:
      return s.a < policy.actions.size() && policy.actions[s.a] && s.b == 0 && s.value.size() == 1 &&
             static_cast<uint8_t>(s.value[0]) <= 1;
    case EntryKind::Observation: {
      if (s.a >= policy.observations.size() || !policy.observations[s.a] || s.b != 0) return false;
      auto value = decodeObservation(s.value);
      return value && passes::checkValue(link.backend->observationSpaces()[s.a], *value);
    }
    case EntryKind::Reward: {
      const uint64_t row = s.a & 0xffffffffu;
      const uint64_t hasPrevious = s.a >> 32;
      if (row >= policy.rewards.size() || !policy.rewards[row] || hasPrevious > 1) return false;
      if (hasPrevious == 0 && s.b != 0) return false;
      return decodeReward(s.value).has_value();
    }
    case EntryKind::Counts:
      break;
  }
  return false;
}

void StateCacheWriter::onReadable(int fd) {
  auto it = links_.find(fd);
  if (it == links_.end()) return;
  static thread_local std::string buffer(kMaxSubmissionBytes + 1, '\0');
  // A bounded batch per turn: one chatty worker cannot starve the loop.
  for (int i = 0; i < 64; ++i) {
    const ssize_t n = sysRaw([&] { return recv(fd, buffer.data(), buffer.size(), MSG_DONTWAIT | MSG_TRUNC); });
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) {
      links_.erase(it);  // every holder is gone
      return;
    }
    if (static_cast<size_t>(n) > kMaxSubmissionBytes) {
      ++rejected_;
      continue;
    }
    auto submission = decodeSubmission(std::string_view(buffer.data(), static_cast<size_t>(n)));
    if (!submission || !valid(it->second, *submission)) {
      ++rejected_;
      continue;
    }
    if (cache_) {
      cache_->addLookups(submission->hits, submission->misses);
      if (submission->kind != EntryKind::Counts) {
        const StateCacheKey state = stateAt(*it->second.root, submission->path);
        cache_->insert(entryKey(submission->kind, state, submission->a, submission->b), submission->value);
      }
    }
  }
}

std::optional<StateCacheStats> StateCacheWriter::stats() const {
  if (!cache_) return std::nullopt;
  return cache_->stats();
}

}  // namespace forkgym::forkserver
