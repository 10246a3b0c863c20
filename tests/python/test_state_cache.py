"""The node-wide state cache (README, "State cache"): a step, observation or
reward answered from the cache is exactly what running the passes gives — in
another worker of the same zygote, in a fork, and in another zygote sharing
the segment — and the cache can be turned off.

Each test uses a segment of its own (``--state-cache-name``), removed at the
end, so what another test or an earlier run cached cannot answer for it; the
servers' counts (``Connection.state_cache_stats()``) show which episode hit.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest

import forkgym
from forkgym.server import Server, ServerOptions

BENCHMARK = "benchmark://forkgym-v0/crc32"
FLAGS = ["-sroa", "-instcombine", "-simplifycfg", "-gvn", "-licm", "-loop-rotate", "-dce", "-instcombine", "-adce"]
# Answered from the cache on a hit.
CACHED = ["IrInstructionCount", "InstCount", "Autophase", "ObjectTextSizeBytes"]
REWARDS = ["IrInstructionCountOz", "ObjectTextSizeOz", "IrInstructionCount"]
# Always computed on the module: they show whether the module a worker
# materialises after following cached steps is the one the passes give.
IDENTITY = ["IrSha1", "BitcodeSha1", "Ir"]


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


@pytest.fixture
def segment() -> Iterator[str]:
    name = f"/forkgym-state-cache-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    yield name
    Path("/dev/shm" + name).unlink(missing_ok=True)


def _server(*args: str) -> Server:
    return Server(ServerOptions(extra_args=tuple(args)))


def _stats(server: Server) -> dict[str, int]:
    stats = server.connection().state_cache_stats()
    assert stats is not None
    return stats


def _episode(server: Server, fork_at: int | None = None) -> list[Any]:
    """Every step's cached observations, rewards and whether it changed the
    module; then the state's identity. With ``fork_at``, the rest of the
    episode runs in a fork taken after that many steps."""
    record: list[Any] = []
    with forkgym.make("llvm-v0", benchmark=BENCHMARK, server=server) as env:
        env.reset()
        current = env
        for i, flag in enumerate(FLAGS):
            if i == fork_at:
                current = env.fork()
            observations, rewards, _, truncated, info = current.step(
                current.action_space.index(flag), observation_spaces=CACHED, reward_spaces=REWARDS)
            assert not truncated, info
            record.append((flag, _plain(observations), list(rewards), info.get("action_had_no_effect")))
        record.append(("identity", [current.observation[name] for name in IDENTITY]))
        if current is not env:
            current.close()
    return record


def test_a_cached_episode_returns_exactly_what_running_its_passes_returns(segment):
    uncached = _episode(_server("--no-state-cache"))

    server = _server("--state-cache-name", segment)
    assert _episode(server) == uncached
    before = _stats(server)
    assert before["inserts"] > 0 and before["misses"] > 0

    # Another worker of the same zygote: every step, observation and reward
    # is a hit, and the module it materialises at the end is the same.
    assert _episode(server) == uncached
    after = _stats(server)
    assert after["hits"] - before["hits"] >= len(FLAGS) * (1 + len(CACHED) + len(REWARDS))
    assert after["misses"] == before["misses"]

    # A fork taken while steps were followed from the cache (pending,
    # not yet applied) carries them.
    assert _episode(server, fork_at=4) == uncached
    assert _stats(server)["misses"] == before["misses"]

    # Another zygote opening the same segment reads what the first wrote.
    other = _server("--state-cache-name", segment)
    assert _episode(other) == uncached
    assert _stats(other)["misses"] == before["misses"]
    assert _stats(other)["hits"] > after["hits"]


def test_a_nondeterministic_pass_ends_what_is_cached(segment):
    server = _server("--state-cache-name", segment)
    newgvn_first = ["-newgvn", "-instcombine", "-dce"]

    def run() -> list[Any]:
        with forkgym.make("llvm-v0", benchmark=BENCHMARK, server=server) as env:
            env.reset()
            out = []
            for flag in newgvn_first:
                observations, rewards, _, _, _ = env.step(env.action_space.index(flag), observation_spaces=CACHED,
                                                          reward_spaces=REWARDS)
                out.append((_plain(observations), list(rewards)))
            return out

    first = run()
    before = _stats(server)
    assert before["inserts"] == 0  # nothing after -newgvn is ever submitted
    assert run() == first
    after = _stats(server)
    assert (after["hits"], after["misses"], after["inserts"]) == (before["hits"], before["misses"], 0)


def test_the_cache_is_on_by_default_and_can_be_turned_off(monkeypatch, segment):
    monkeypatch.delenv("FORKGYM_STATE_CACHE", raising=False)
    assert _server("--no-state-cache").connection().state_cache_stats() is None
    monkeypatch.setenv("FORKGYM_STATE_CACHE", "0")
    assert _server("--state-cache-name", segment).connection().state_cache_stats() is None
    monkeypatch.delenv("FORKGYM_STATE_CACHE")
    stats = _server("--state-cache-name", segment, "--state-cache-mb", "1").connection().state_cache_stats()
    assert stats is not None and stats["name"] == segment and stats["capacity_bytes"] == 1 << 20
    monkeypatch.setenv("FORKGYM_STATE_CACHE_NAME", segment)
    stats = _server().connection().state_cache_stats()
    assert stats is not None and stats["name"] == segment, "on unless turned off"


def test_cached_rewards_are_what_stepping_gives_and_change_nothing(segment):
    server = _server("--state-cache-name", segment)
    flags = ["-sroa", "-instcombine", "-gvn", "-dce", "-simplifycfg", "-licm"]
    with forkgym.make("llvm-v0", benchmark=BENCHMARK, server=server, reward_space="IrInstructionCountOz") as env:
        env.reset()
        env.step(env.action_space.index("-mem2reg"))
        actions = [env.action_space.index(f) for f in flags]
        assert env.cached_rewards(actions) == [None] * len(actions), "nothing from this state is cached yet"
        stepped = []
        for a in actions:  # each alone from this state, in a fork: that is what puts it in the cache
            fork = env.fork()
            stepped.append(fork.step(a)[1])
            fork.close()
        count, before = env.observation["IrInstructionCount"], list(env.actions)
        # Workers hand what they computed to the zygote, which writes it to the
        # cache when it gets to it: wait for the cache to hold every one
        # (the deadline only turns a missing entry into a failure).
        deadline = time.monotonic() + 60
        while None in (known := env.cached_rewards(actions)) and time.monotonic() < deadline:
            os.sched_yield()
        assert known == stepped, "a cached reward is exactly what stepping gives"
        assert env.cached_rewards(actions, "IrInstructionCount") == [None] * len(actions), "another reward space"
        # Peeking changed nothing: the episode is where it was.
        assert env.observation["IrInstructionCount"] == count and env.actions == before
        assert env.step(actions[0])[1] == stepped[0]
        with pytest.raises(forkgym.InvalidAction, match="valid actions are"):
            env.cached_rewards([10_000])
        with pytest.raises(forkgym.InvalidRequest, match="unknown reward space .NoSuchReward.; valid names"):
            env.cached_rewards(actions, "NoSuchReward")
    with forkgym.make("llvm-v0", benchmark=BENCHMARK, server=_server("--no-state-cache"),
                      reward_space="IrInstructionCountOz") as env:
        env.reset()
        assert env.cached_rewards(actions) == [None] * len(actions), "without the cache nothing is known"


def test_a_second_greedy_search_takes_its_candidates_from_the_cache_and_finds_the_same(segment):
    from forkgym.cli.strategies import SearchConfig, Searcher

    runs = []
    for _ in range(2):  # each on a zygote of its own, sharing the segment
        server = _server("--state-cache-name", segment)
        with Searcher(SearchConfig(strategy="greedy", steps=4, server=server)) as searcher:
            runs.append(searcher.search(BENCHMARK))
        server.close()
    cold, warm = runs
    assert cold.cached_steps == 0 and warm.cached_steps > 0
    # The second search forks for the chosen candidates and the passes the
    # cache never holds, not for the rest; both find and keep the same passes
    # with the same return.
    assert warm.steps - warm.cached_steps < cold.steps / 10
    assert (warm.found, warm.actions, warm.reward) == (cold.found, cold.actions, cold.reward)
