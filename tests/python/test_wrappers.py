"""CompilerGym's wrappers, with the API forwarded through them."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import forkgym
from forkgym.wrappers import (
    CommandlineWithTerminalAction,
    ConstrainedCommandline,
    CycleOverBenchmarks,
    ForkOnStep,
    IterateOverBenchmarks,
    RandomOrderBenchmarks,
    TimeLimit,
)

CRC = "benchmark://forkgym-v0/crc32"
SMALL = "benchmark://forkgym-v0/small"


def test_time_limit_truncates_and_resets_its_count(env) -> None:
    wrapped = TimeLimit(env, max_episode_steps=3)
    wrapped.reset()
    assert [wrapped.step(0)[3] for _ in range(3)] == [False, False, True]
    wrapped.reset()
    assert wrapped.step(0)[3] is False


def test_cycle_over_benchmarks(env) -> None:
    wrapped = CycleOverBenchmarks(env, [CRC, SMALL])
    seen = []
    for _ in range(3):
        wrapped.reset()
        seen.append(str(wrapped.benchmark))
    assert seen == [CRC, SMALL, CRC]


def test_iterate_over_benchmarks_stops(env) -> None:
    wrapped = IterateOverBenchmarks(env, [SMALL])
    wrapped.reset()
    assert wrapped.benchmark == SMALL
    with pytest.raises(StopIteration):
        wrapped.reset()


def test_random_order_benchmarks(env) -> None:
    wrapped = RandomOrderBenchmarks(env, [CRC, SMALL], rng=np.random.default_rng(0))
    seen = set()
    for _ in range(8):
        wrapped.reset()
        seen.add(str(wrapped.benchmark))
    assert seen == {CRC, SMALL}


def test_constrained_commandline(env) -> None:
    wrapped = ConstrainedCommandline(env, flags=["-mem2reg", "-gvn", "-dce"])
    assert wrapped.action_space.n == 3 and wrapped.action_space.names == ["-mem2reg", "-gvn", "-dce"]
    wrapped.reset()
    _, reward, *_ = wrapped.step(0)
    assert reward > 0 and env.actions == [env.action_space.index("-mem2reg")]
    assert wrapped.actions == [0]
    assert wrapped.action_space.from_string(wrapped.action_space.to_string([0, 1])) == [0, 1]


def test_commandline_with_terminal_action(env) -> None:
    wrapped = CommandlineWithTerminalAction(env)
    assert wrapped.action_space.n == env.action_space.n + 1
    wrapped.reset()
    assert wrapped.step(0)[2] is False
    _, _, terminated, truncated, _ = wrapped.step(wrapped.action_space.n - 1)
    assert terminated and not truncated
    assert wrapped.action_space.names[-1] == "end-of-episode"


def test_fork_on_step_undo(env) -> None:
    wrapped = ForkOnStep(env)
    wrapped.reset()
    start = wrapped.ir_sha1
    wrapped.step(env.action_space.index("-mem2reg"))
    after_one = wrapped.ir_sha1
    wrapped.step(env.action_space.index("-instcombine"))
    assert len(wrapped.stack) == 2
    wrapped.undo()
    assert wrapped.ir_sha1 == after_one and len(wrapped.actions) == 1
    wrapped.undo()
    assert wrapped.ir_sha1 == start and wrapped.actions == []
    wrapped.undo()  # nothing left: a no-op
    wrapped.close()


def test_wrappers_forward_setters(env) -> None:
    wrapped = TimeLimit(IterateOverBenchmarks(env, itertools.repeat(SMALL)), 5)
    wrapped.observation_space = "Autophase"
    wrapped.reward_space = "IrInstructionCount"
    obs, _ = wrapped.reset()
    assert obs.shape == (56,) and wrapped.benchmark == SMALL
    forked = wrapped.fork()
    try:
        assert forked.actions == wrapped.actions
    finally:
        forked.close()
