"""CompilerGym's wrappers, with the API forwarded through them."""

from __future__ import annotations

import itertools
import warnings

import gymnasium as gym
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


# ------------------------------------------- through any wrapper stack --

def _benchmarks_of_resets(env, count: int, **first_reset) -> list[str]:
    seen = [env.reset(**first_reset)[1]["benchmark"]]
    seen += [env.reset()[1]["benchmark"] for _ in range(count - 1)]
    return seen


def test_cycle_over_benchmarks_works_on_gymnasium_make_and_its_wrappers() -> None:
    # gymnasium.make wraps the env in OrderEnforcing and PassiveEnvChecker
    # (and TimeLimit): the chooser must reach the env itself, not set an
    # attribute on the outer gymnasium wrapper and change nothing.
    for inner in (gym.make("forkgym/llvm-ic-v0"), gym.make("forkgym/llvm-ic-v0", max_episode_steps=4)):
        wrapped = CycleOverBenchmarks(inner, [SMALL, CRC])
        try:
            assert _benchmarks_of_resets(wrapped, 3) == [SMALL, CRC, SMALL]
            assert str(inner.unwrapped.benchmark) == SMALL
        finally:
            wrapped.close()


def test_iterate_and_random_order_work_on_gymnasium_make() -> None:
    inner = gym.make("forkgym/llvm-ic-v0", max_episode_steps=4)
    try:
        assert _benchmarks_of_resets(IterateOverBenchmarks(inner, [SMALL, SMALL]), 2) == [SMALL, SMALL]
        assert set(_benchmarks_of_resets(RandomOrderBenchmarks(inner, [SMALL]), 3)) == {SMALL}
    finally:
        inner.close()


def test_a_chooser_under_gymnasium_wrappers_still_chooses() -> None:
    # The other way round: gymnasium's wrappers outside forkgym's chooser
    # only forward reset(seed=, options=); the chooser still picks.
    env = gym.wrappers.TimeLimit(CycleOverBenchmarks(forkgym.make("llvm-ic-v0"), [SMALL, CRC]), 4)
    try:
        assert _benchmarks_of_resets(env, 3) == [SMALL, CRC, SMALL]
    finally:
        env.close()


def test_an_explicit_benchmark_wins_over_the_chooser(env) -> None:
    wrapped = CycleOverBenchmarks(gym.wrappers.TimeLimit(env, 4), [SMALL])
    assert wrapped.reset(options={"benchmark": CRC})[1]["benchmark"] == CRC
    assert wrapped.reset(benchmark=CRC)[1]["benchmark"] == CRC
    assert wrapped.reset()[1]["benchmark"] == SMALL


def test_random_order_benchmarks_is_seeded_by_reset_seed(env) -> None:
    many = [CRC, SMALL]
    first = RandomOrderBenchmarks(env, many)
    a = _benchmarks_of_resets(first, 12, seed=7)
    b = _benchmarks_of_resets(first, 12, seed=7)
    second = RandomOrderBenchmarks(forkgym.make("llvm-ic-v0"), many, rng=np.random.default_rng(123))
    try:
        c = _benchmarks_of_resets(second, 12, seed=7)
    finally:
        second.close()
    assert a == b == c and set(a) == set(many)
    assert _benchmarks_of_resets(first, 12, seed=8) != a


def test_cycle_over_benchmarks_starts_over_on_a_seeded_reset(env) -> None:
    wrapped = CycleOverBenchmarks(env, [SMALL, CRC, SMALL, SMALL])
    assert _benchmarks_of_resets(wrapped, 2) == [SMALL, CRC]
    assert _benchmarks_of_resets(wrapped, 2, seed=0) == [SMALL, CRC]


@pytest.mark.parametrize("wrapper", [
    lambda e: TimeLimit(e, 5),
    lambda e: CycleOverBenchmarks(e, [CRC]),
    lambda e: ConstrainedCommandline(e, ["-mem2reg"]),
    CommandlineWithTerminalAction,
    ForkOnStep,
], ids=["TimeLimit", "CycleOverBenchmarks", "ConstrainedCommandline", "CommandlineWithTerminalAction",
        "ForkOnStep"])
def test_forkgym_wrappers_forward_the_compilergym_reset_keywords(env, wrapper) -> None:
    wrapped = wrapper(env)
    observation, info = wrapped.reset(benchmark=SMALL, observation_space="Autophase", reward_space="IrInstructionCount")
    assert info["benchmark"] == SMALL and observation.shape == (56,)
    assert env.reward_space.name == "IrInstructionCount"


def test_reset_options_carry_the_benchmark_through_gymnasium_make() -> None:
    # gymnasium's own wrappers take reset(seed=, options=) only: the README
    # documents options={"benchmark": ...} as the way through any stack.
    env = gym.make("forkgym/llvm-ic-v0", max_episode_steps=3)
    try:
        with pytest.raises(TypeError):
            env.reset(benchmark=SMALL)
        assert env.reset(options={"benchmark": SMALL})[1]["benchmark"] == SMALL
        assert env.reset()[1]["benchmark"] == SMALL  # it sticks, as env.benchmark = ... does
    finally:
        env.close()


def test_setters_reach_the_env_through_gymnasium_wrappers() -> None:
    # Setting observation_space on a gymnasium wrapper only overrides that
    # wrapper's space (the observations stay what they were): the forwarding
    # wrapper must set it on the env.
    wrapped = TimeLimit(gym.make("forkgym/llvm-ic-v0"), 3)
    try:
        wrapped.observation_space = "Autophase"
        wrapped.reward_space = "IrInstructionCount"
        wrapped.benchmark = SMALL
        observation, info = wrapped.reset()
        assert observation.shape == (56,) and observation in wrapped.observation_space
        assert info["benchmark"] == SMALL and wrapped.unwrapped.reward_space.name == "IrInstructionCount"
        assert wrapped.actions == []  # the CompilerGym API is read through the gymnasium wrappers too
    finally:
        wrapped.close()


# ------------------------------------------------------------ check_env --

@pytest.mark.parametrize("env_id", ["llvm-ir-ic-v0", "llvm-autophase-ic-v0"])
def test_check_env_is_clean_and_quiet_with_its_render_check(env_id: str, capfd) -> None:
    from gymnasium.utils.env_checker import check_env

    for env in (forkgym.make(env_id), gym.make(f"forkgym/{env_id}").unwrapped):
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                check_env(env)
        finally:
            env.close()
        assert not caught, [str(w.message) for w in caught]
    out, err = capfd.readouterr()
    assert out == "" and err == "", (out[:300], err[:300])


def test_bad_reset_keywords_and_empty_benchmark_lists_are_refused(env) -> None:
    wrapped = TimeLimit(env, 3)
    with pytest.raises(TypeError, match="'benchmarks'.*benchmark="):
        wrapped.reset(benchmarks=[SMALL])
    with pytest.raises(forkgym.InvalidRequest, match="disagree"):
        wrapped.reset(benchmark=SMALL, options={"benchmark": CRC})
    for chooser in (CycleOverBenchmarks, RandomOrderBenchmarks):
        with pytest.raises(forkgym.InvalidRequest, match="at least one benchmark"):
            chooser(env, [])
