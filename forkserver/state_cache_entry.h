// State cache entries: how an episode's state and what was computed on it
// become keys and values of the node-wide cache (ipc/state_cache.h), and the
// message a worker submits an entry in (forkserver/state_cache_writer.h).
//
// A state is named by its path: the root — everything that fixes the
// episode's initial state and what its cached values are computed with —
// followed by every action applied since, in order:
//   root  = BLAKE3(build id of this server binary, backend name and version,
//                  action space hash, benchmark content hash, client uid)
//   S(0)  = root,  S(i+1) = BLAKE3(S(i), action i)
// The same benchmark content and the same actions give the same module
// (DESIGN.md invariant 3), so S names the full state (use-list order
// included) without hashing the module at each step — provided every action
// on the path is deterministic: an action the backend marks nondeterministic
// (LLVM's -newgvn leaves use-lists in heap-address order) or test-only ends
// the path, and nothing of that state or its descendants is cached. Values
// that depend on more than the module (a run configuration: Runtime,
// TextSizeBytes; time) are never cached, so the run configuration is not
// part of the root. The client uid keeps users apart (see the README's
// threat model): a worker can only ever submit under its own root.
//
// Keys: BLAKE3(kind, S, a, b) truncated to 128 bits, where (a, b) is
//   Transition: (action, 0)                 value: 1 byte, the module changed
//   Observation: (row, 0)                   value: encodeObservation()
//   Reward: (row | has previous << 32, previous's bits)
//                                           value: the reward and the new previous
// Any process; pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ipc/state_cache.h"
#include "passes/backend.h"
#include "passes/spaces.h"

namespace forkgym::forkserver {

// What of `backend` the cache may hold, by index: product actions that are
// deterministic; observations and rewards that are deterministic, need no
// run configuration and are not in the backend's computedObservations. All
// false (enabled false) for a backend without a state-cache policy, or whose
// replay command is built from the state (it could not name a followed state).
struct CachePolicy {
  bool enabled = false;
  std::vector<bool> actions;
  std::vector<bool> observations;
  std::vector<bool> rewards;
};
CachePolicy cachePolicyOf(const passes::Backend& backend);

enum class EntryKind : uint8_t { Transition = 1, Observation = 2, Reward = 3, Counts = 4 };

StateCacheKey stateRoot(std::string_view buildId, std::string_view backend, std::string_view backendVersion,
                        uint64_t actionSpaceHash, std::string_view contentHash, uint32_t clientUid);
StateCacheKey nextState(const StateCacheKey& state, uint32_t action);
StateCacheKey entryKey(EntryKind kind, const StateCacheKey& state, uint64_t a, uint64_t b);
// The state reached from `root` along `path`.
StateCacheKey stateAt(const StateCacheKey& root, std::span<const uint32_t> path);

// This server binary's GNU build id (hex), or failing that its inode and
// modification time: two builds never share cached values.
const std::string& serverBuildId();

// A reward's (a, b) for its running state before the step.
std::pair<uint64_t, uint64_t> rewardKeyParts(size_t row, std::optional<double> previous);

std::string encodeObservation(const passes::ObservationValue& value);
// nullopt for anything malformed (bounded: never trusts a length).
std::optional<passes::ObservationValue> decodeObservation(std::string_view bytes);

struct RewardValue {
  double reward = 0;
  std::optional<double> previous;  // the running state after the step
};
std::string encodeReward(const RewardValue& value);
std::optional<RewardValue> decodeReward(std::string_view bytes);

// What a worker sends its zygote: the path from its root (the zygote
// derives the key itself, so a worker can only write under its own root),
// the entry, and the lookups it made since its last message.
struct Submission {
  EntryKind kind = EntryKind::Counts;
  uint32_t hits = 0;
  uint32_t misses = 0;
  std::vector<uint32_t> path;
  uint64_t a = 0;
  uint64_t b = 0;
  std::string value;
};
inline constexpr size_t kMaxPathLength = 4096;
inline constexpr size_t kMaxSubmissionBytes = StateCache::kMaxValueBytes + 64 + 4 * kMaxPathLength;
std::string encodeSubmission(const Submission& submission);
std::optional<Submission> decodeSubmission(std::string_view bytes);

}  // namespace forkgym::forkserver
