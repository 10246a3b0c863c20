"""Crashes and timeouts truncate the episode; a dead zygote is replaced on reset."""

from __future__ import annotations

import os
import signal

import pytest

import forkgym
from forkgym import Outcome


def test_crash_truncates_with_outcome_and_reproducer_then_reset_works(env) -> None:
    env.reset()
    _, first, *_ = env.step(env.action_space.index("-mem2reg"))
    assert first > 0
    segfault = env.action_space.index("-forkgym-test-segfault")
    obs, reward, terminated, truncated, info = env.step(segfault)
    assert truncated and not terminated
    assert info["outcome"] == Outcome.CRASHED and info["signal"] == signal.SIGSEGV
    assert info["reproducer"].benchmark == "benchmark://forkgym-v0/crc32"  # the URI, resolved by the server
    assert "mem2reg" in info["reproducer"].commandline
    assert reward == pytest.approx(-first)  # cancels the episode's return
    assert env.episode_reward == pytest.approx(0.0)
    with pytest.raises(forkgym.SessionNotStarted, match="reset"):
        env.step(0)
    env.reset()
    assert env.step(env.action_space.index("-mem2reg"))[1] == pytest.approx(first)


def test_crash_returns_default_observations() -> None:
    with forkgym.make("llvm-autophase-ic-v0") as env:
        env.reset()
        obs, _, _, truncated, _ = env.step(env.action_space.index("-forkgym-test-abort"))
        assert truncated and obs in env.observation_space and not obs.any()


def test_hang_times_out_and_truncates() -> None:
    with forkgym.make("llvm-ic-v0", step_timeout=1.0) as env:
        env.reset()
        _, _, _, truncated, info = env.step(env.action_space.index("-forkgym-test-hang"))
        assert truncated and info["outcome"] == Outcome.TIMED_OUT
        env.reset()
        assert env.step(0)[3] is False


def test_lazy_observation_after_a_crash_raises_a_typed_error(env) -> None:
    env.reset()
    env.step(env.action_space.index("-forkgym-test-segfault"))
    with pytest.raises(forkgym.SessionNotStarted):
        env.observation["Ir"]


def test_killing_the_zygote_mid_episode_then_reset_works() -> None:
    server = forkgym.Server()  # a private zygote, so other tests' envs are not affected
    with forkgym.make("llvm-ic-v0", server=server) as env:
        env.reset()
        env.step(env.action_space.index("-mem2reg"))
        old = env.server_pid
        assert old > 1 and old != os.getpid()
        os.kill(old, signal.SIGKILL)
        # The episode may finish or be truncated; either way, no exception.
        env.step(env.action_space.index("-instcombine"))
        env.reset()
        assert env.server_pid != old
        _, reward, _, truncated, _ = env.step(env.action_space.index("-mem2reg"))
        assert not truncated and reward > 0
