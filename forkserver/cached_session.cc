#include "forkserver/cached_session.h"

#include <unistd.h>

#include <cstring>
#include <string>

#include "base/syscall.h"
#include "sandbox/sandbox.h"

namespace forkgym::forkserver {

CachedSession::CachedSession(passes::Session& session, const passes::Backend& backend, const StateCache* cache,
                             UniqueFd link, uint32_t cpuSecondsPerStep)
    : session_(session),
      space_(backend.actionSpace()),
      policy_(cachePolicyOf(backend)),
      cache_(cache),
      link_(std::move(link)),
      cpuSecondsPerStep_(cpuSecondsPerStep) {}

void CachedSession::start() {
  if (started_) return;
  started_ = true;
  if (cache_ == nullptr || !link_.valid() || !policy_.enabled) return;
  // Written by the zygote before it answered the client's newSession, so it
  // is here by the time any request is.
  StateCacheKey root;
  char buffer[sizeof(root) + 1];
  const ssize_t n = sysRaw([&] { return read(link_.get(), buffer, sizeof(buffer)); });
  if (n != static_cast<ssize_t>(sizeof(root))) return;
  std::memcpy(&root, buffer, sizeof(root));
  state_ = root;
}

std::optional<std::string> CachedSession::lookup(EntryKind kind, uint64_t a, uint64_t b) {
  auto value = cache_->lookup(entryKey(kind, *state_, a, b));
  ++(value ? unsentHits_ : unsentMisses_);
  return value;
}

void CachedSession::submit(EntryKind kind, std::span<const uint32_t> path, uint64_t a, uint64_t b,
                           std::string value) {
  Submission submission{kind, unsentHits_, unsentMisses_, {path.begin(), path.end()}, a, b, std::move(value)};
  if (submission.path.size() > kMaxPathLength || submission.value.size() > StateCache::kMaxValueBytes) return;
  const std::string message = encodeSubmission(submission);
  // Non-blocking: a zygote busy elsewhere costs an entry, never a wait.
  if (sysRaw([&] { return write(link_.get(), message.data(), message.size()); }) ==
      static_cast<ssize_t>(message.size())) {
    unsentHits_ = unsentMisses_ = 0;
  }
}

void CachedSession::flushCounts() {
  if (unsentHits_ == 0 && unsentMisses_ == 0) return;
  submit(EntryKind::Counts, {}, 0, 0, {});
}

Status CachedSession::materialize() {
  if (pending_.empty()) return okStatus();
  if (cpuSecondsPerStep_ > 0) sandbox::limitCpuForNextStep(uint64_t{cpuSecondsPerStep_} * (pending_.size() + 1));
  const std::vector<uint32_t> actions = std::exchange(pending_, {});
  auto applied = session_.applyActions(actions);
  if (!applied) {
    state_.reset();
    return applied.takeError();
  }
  return okStatus();
}

Result<passes::Session*> CachedSession::materialized() {
  if (auto done = materialize(); !done) return done.takeError();
  return &session_;
}

Result<passes::ApplyResult> CachedSession::applyActions(std::span<const uint32_t> actions) {
  bool allValid = true;
  for (uint32_t action : actions) {
    allValid = allValid && action < space_.actions.size() && space_.actions[action].unavailableReason.empty();
  }
  if (!state_ || !allValid) {
    // Uncached, or a bad index: the session says which, applying nothing.
    if (auto done = materialize(); !done) return done.takeError();
    return session_.applyActions(actions);
  }
  passes::ApplyResult result;
  for (uint32_t action : actions) {
    const bool cacheable = state_ && policy_.actions[action];
    if (cacheable) {
      auto changed = lookup(EntryKind::Transition, action, 0);
      if (changed && changed->size() == 1 && (*changed)[0] <= 1) {
        if ((*changed)[0] == 1) result.actionHadNoEffect = false;
        pending_.push_back(action);
        path_.push_back(action);
        state_ = nextState(*state_, action);
        continue;
      }
    }
    if (auto done = materialize(); !done) return done.takeError();
    const uint32_t one[] = {action};
    auto applied = session_.applyActions(one);
    if (!applied) {
      state_.reset();
      return applied.takeError();
    }
    if (!applied->actionHadNoEffect) result.actionHadNoEffect = false;
    if (!cacheable) {
      state_.reset();  // a nondeterministic or test action: nothing after it is cached
      continue;
    }
    submit(EntryKind::Transition, path_, action, 0, std::string(1, applied->actionHadNoEffect ? '\0' : '\1'));
    path_.push_back(action);
    state_ = nextState(*state_, action);
  }
  return result;
}

Result<passes::ObservationValue> CachedSession::observe(size_t row) {
  const bool cacheable = state_ && row < policy_.observations.size() && policy_.observations[row];
  if (cacheable) {
    if (auto bytes = lookup(EntryKind::Observation, row, 0)) {
      if (auto value = decodeObservation(*bytes)) return std::move(*value);
    }
  }
  if (auto done = materialize(); !done) return done.takeError();
  auto value = session_.observe(row);
  if (value && cacheable) submit(EntryKind::Observation, path_, row, 0, encodeObservation(*value));
  return value;
}

Result<double> CachedSession::reward(size_t row) {
  const bool cacheable = state_ && row < policy_.rewards.size() && policy_.rewards[row];
  const auto [a, b] = rewardKeyParts(row, session_.rewardPrevious(row));
  if (cacheable) {
    if (auto bytes = lookup(EntryKind::Reward, a, b)) {
      // The running state moves on exactly as computing the reward would have.
      if (auto value = decodeReward(*bytes); value && session_.setRewardPrevious(row, value->previous)) {
        return value->reward;
      }
    }
  }
  if (auto done = materialize(); !done) return done.takeError();
  auto reward = session_.reward(row);
  if (reward && cacheable) {
    submit(EntryKind::Reward, path_, a, b, encodeReward({*reward, session_.rewardPrevious(row)}));
  }
  return reward;
}

Result<std::vector<CachedSession::Peeked>> CachedSession::peek(std::span<const uint32_t> actions, size_t row) {
  for (uint32_t action : actions) {
    if (action >= space_.actions.size()) {
      return makeError(Outcome::InvalidRequest, "action " + std::to_string(action) +
                                                    " is not in the action space (0.." +
                                                    std::to_string(space_.actions.size() - 1) + ")");
    }
  }
  std::vector<Peeked> answers(actions.size());
  // Setting the reward's running state to what it is changes nothing, and
  // says whether a cached reward can stand in for computing it (reward()
  // answers from the cache on the same condition).
  const bool rewardCacheable = state_ && row < policy_.rewards.size() && policy_.rewards[row] &&
                               session_.setRewardPrevious(row, session_.rewardPrevious(row));
  if (!rewardCacheable) return answers;
  // The key a step's reward would have: the state after the action, and the
  // reward's running state now (before the step).
  const auto [a, b] = rewardKeyParts(row, session_.rewardPrevious(row));
  for (size_t i = 0; i < actions.size(); ++i) {
    const uint32_t action = actions[i];
    if (!policy_.actions[action] || !space_.actions[action].unavailableReason.empty()) continue;
    // Not counted unless both hit: a miss here is followed by the step
    // itself, whose own lookups count; a hit counts as the step's would.
    auto changed = cache_->lookup(entryKey(EntryKind::Transition, *state_, action, 0));
    if (!changed || changed->size() != 1 || (*changed)[0] > 1) continue;
    auto bytes = cache_->lookup(entryKey(EntryKind::Reward, nextState(*state_, action), a, b));
    if (!bytes) continue;
    auto value = decodeReward(*bytes);
    if (!value) continue;
    answers[i] = Peeked{true, value->reward, (*changed)[0] == 0};
    unsentHits_ += 2;
  }
  return answers;
}

Result<std::string> CachedSession::setParameter(std::string_view key, std::string_view value) {
  if (auto done = materialize(); !done) return done.takeError();
  auto answer = session_.setParameter(key, value);
  // The runtime parameters only change what Runtime measures, never cached;
  // any other parameter may change what the state means.
  if (answer && key != passes::Session::kRuntimeObservationCount &&
      key != passes::Session::kRuntimeWarmupRunsCount) {
    state_.reset();
  }
  return answer;
}

}  // namespace forkgym::forkserver
