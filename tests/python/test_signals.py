"""Signals while a step runs: the step timeout is a deadline however often a
signal interrupts the wait, and Ctrl-C ends a long step at once."""

from __future__ import annotations

import os
import select
import signal
import threading
import time

import gymnasium as gym
import pytest

import forkgym
from forkgym import Outcome

HANG_GUARD_S = 60  # far beyond what any wait here takes; it only turns a hang into a failure


def test_an_interval_timer_does_not_stretch_the_step_timeout() -> None:
    ticks: list[int] = []
    guard_fired = threading.Event()

    def stop_the_timer() -> None:
        # Were the timeout restarted on every tick, the step would never end.
        guard_fired.set()
        signal.setitimer(signal.ITIMER_REAL, 0)

    previous = signal.signal(signal.SIGALRM, lambda *_: ticks.append(1))
    guard = threading.Timer(HANG_GUARD_S, stop_the_timer)
    try:
        with forkgym.make("llvm-ic-v0", step_timeout=2.0) as env:
            env.reset()
            hang = env.action_space.index("-forkgym-test-hang")
            guard.start()
            signal.setitimer(signal.ITIMER_REAL, 0.05, 0.05)  # as a profiler or progress bar would
            started = time.monotonic()
            _, _, _, truncated, info = env.step(hang)
            took = time.monotonic() - started
            signal.setitimer(signal.ITIMER_REAL, 0)
            print(f"step_timeout=2 under a 50 ms timer: {info.get('outcome')!r} after {took:.2f} s, {len(ticks)} ticks")
            assert not guard_fired.is_set(), "the step timeout restarted on every signal"
            assert truncated and info["outcome"] == Outcome.TIMED_OUT
            assert ticks, "the timer's handler ran while the step waited"
            env.reset()
            assert not env.step(env.action_space.index("-mem2reg"))[3]
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        guard.cancel()
        signal.signal(signal.SIGALRM, previous)


def _ctrl_c_once_the_worker_is_in_the_step(native) -> threading.Thread:
    """Sends SIGINT to this process once the worker has started the step the
    main thread is about to post (the worker counts the requests it starts
    in the region)."""
    before = native.requests_started

    def wait_then_interrupt() -> None:
        deadline = time.monotonic() + HANG_GUARD_S
        while native.requests_started == before and time.monotonic() < deadline:
            os.sched_yield()  # readiness is the worker's signal, not time
        os.kill(os.getpid(), signal.SIGINT)

    return threading.Thread(target=wait_then_interrupt)


def _ctrl_c_during_a_vector_step(vector, actions: list[int]) -> None:
    """Steps ``vector`` by ``actions`` and sends Ctrl-C once sub-env 0's worker
    is in its step; the step must raise KeyboardInterrupt."""
    sender = _ctrl_c_once_the_worker_is_in_the_step(vector.envs[0]._native)
    sender.start()
    with pytest.raises(KeyboardInterrupt):
        vector.step(actions)
    sender.join()


@pytest.mark.usefixtures("ctrl_c_raises")
def test_ctrl_c_during_a_long_step_raises_keyboard_interrupt_and_ends_the_episode() -> None:
    with forkgym.make("llvm-ic-v0") as env:  # the default step timeout: 300 s
        env.reset()
        mem2reg = env.action_space.index("-mem2reg")
        hang = env.action_space.index("-forkgym-test-hang")
        env.step(mem2reg)
        worker = os.pidfd_open(env.worker_pid)
        sender = _ctrl_c_once_the_worker_is_in_the_step(env._native)
        sender.start()
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt) as raised:
            env.step(hang)
        took = time.monotonic() - started
        sender.join()
        print(f"Ctrl-C in a hanging step: KeyboardInterrupt {took * 1000:.0f} ms after the step began")
        # The episode is over, its worker killed, and the reproducer kept.
        assert raised.value.reproducer.actions == [mem2reg, hang]
        assert env.actions == [mem2reg, hang]
        assert "mem2reg" in env.state.commandline
        assert not env.in_episode
        assert select.select([worker], [], [], HANG_GUARD_S)[0], "the interrupted worker was not killed"
        os.close(worker)
        with pytest.raises(forkgym.SessionNotStarted, match="reset"):
            env.step(mem2reg)
        env.reset()
        assert not env.step(mem2reg)[3]


@pytest.mark.usefixtures("ctrl_c_raises")
def test_ctrl_c_during_a_vector_step_ends_the_stepped_episodes_and_records_them() -> None:
    with forkgym.make_vec("llvm-ic-v0", num_envs=2) as vector:
        vector.reset()
        hang = vector.envs[0].action_space.index("-forkgym-test-hang")
        mem2reg = vector.envs[0].action_space.index("-mem2reg")
        _ctrl_c_during_a_vector_step(vector, [hang, mem2reg])
        assert not vector.envs[0].in_episode and vector.envs[0].actions == [hang]
        # The other sub-env's step completed or was ended; either way its record matches its worker.
        other = vector.envs[1]
        assert other.actions == [mem2reg]
        vector.reset()
        _, rewards, _, truncated, _ = vector.step([mem2reg, mem2reg])
        assert not truncated.any() and (rewards > 0).all()


class _RecordOutcomes(gym.Wrapper):
    """Records each step's outcome as the sub-env's wrapper sees it."""

    def __init__(self, env: gym.Env, seen: list) -> None:
        super().__init__(env)
        self.seen = seen

    def step(self, action):
        result = self.env.step(action)
        self.seen.append((self.env.unwrapped, result[4].get("outcome")))
        return result


@pytest.mark.usefixtures("ctrl_c_raises")
def test_ctrl_c_during_a_wrapped_vector_step_ends_the_running_steps_at_once() -> None:
    """With sub-env wrappers each step runs on a thread of its own, where Python
    delivers no signal: Ctrl-C ends those steps (Outcome.INTERRUPTED, their
    workers killed) instead of waiting them out. (Were they waited out, the
    step timeout would end them: TIMED_OUT after 20 s here.)"""
    seen: list = []
    with forkgym.make_vec("llvm-ic-v0", num_envs=2, step_timeout=20.0,
                          wrappers=[lambda e: _RecordOutcomes(e, seen)]) as vector:
        vector.reset()
        hang = vector.envs[0].action_space.index("-forkgym-test-hang")
        mem2reg = vector.envs[0].action_space.index("-mem2reg")
        _ctrl_c_during_a_vector_step(vector, [hang, hang])
        outcomes = {vector.envs.index(env): outcome for env, outcome in seen}
        assert outcomes[0] == Outcome.INTERRUPTED and vector.envs[0].actions == [hang]
        # Sub-env 1's step was ended too, or Ctrl-C came before it was submitted.
        assert (outcomes.get(1), vector.envs[1].actions) in ((Outcome.INTERRUPTED, [hang]), (None, []))
        assert not vector.envs[0].in_episode
        # The next step resets every sub-env; the one after steps them.
        seen.clear()
        vector.step([mem2reg, mem2reg])
        _, rewards, _, truncated, _ = vector.step([mem2reg, mem2reg])
        assert not truncated.any() and (rewards > 0).all()
        assert [outcome for _, outcome in seen] == [None, None]
