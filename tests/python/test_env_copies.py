"""Copies of an env: pickle/cloudpickle (construction arguments plus the
episode, replayed on unpickle), deepcopy and fork() (also before reset(), as
in CompilerGym), and a fork the client has no descriptors for."""

from __future__ import annotations

import copy
import os
import pickle
import resource

import cloudpickle
import pytest

import forkgym


@pytest.mark.parametrize("dumps", [pickle.dumps, cloudpickle.dumps], ids=["pickle", "cloudpickle"])
def test_an_env_pickles_as_its_arguments_and_episode_and_replays_it(dumps) -> None:
    with forkgym.make("llvm-autophase-ic-v0", benchmark="benchmark://forkgym-v0/small", step_timeout=17.0) as env:
        env.reset()
        for flag in ("-mem2reg", "-instcombine", "-simplifycfg"):
            env.step(env.action_space.index(flag))
        copy_ = pickle.loads(dumps(env))
        try:
            assert copy_.ir_sha1 == env.ir_sha1
            assert copy_.actions == env.actions
            assert copy_.episode_reward == pytest.approx(env.episode_reward)
            assert copy_.benchmark == env.benchmark
            assert copy_.observation_space_spec.id == "Autophase"
            assert copy_.reward_space.name == "IrInstructionCountOz"
            assert copy_._limits == env._limits
            assert copy_.spec.id == env.spec.id
            assert copy_.worker_pid not in (-1, env.worker_pid)
            # Independent episodes from here on.
            copy_.step(copy_.action_space.index("-gvn"))
            assert env.actions != copy_.actions
        finally:
            copy_.close()


def test_an_env_without_an_episode_pickles_and_starts_none() -> None:
    with forkgym.make("llvm-ic-v0", benchmark="benchmark://forkgym-v0/small") as env:
        copy_ = pickle.loads(pickle.dumps(env))
        assert not copy_.in_episode
        copy_.reset()
        assert copy_.benchmark == "benchmark://forkgym-v0/small"
        copy_.close()


def test_deepcopy_and_fork_before_reset_start_the_episode(env) -> None:
    copied = copy.deepcopy(env)
    assert env.in_episode and copied.in_episode
    assert copied.ir_sha1 == env.ir_sha1
    copied.close()
    env.close()
    forked = env.fork()
    assert env.in_episode and forked.in_episode
    forked.close()


def test_a_fork_without_room_for_its_descriptors_fails_clearly_and_the_episode_goes_on(env) -> None:
    env.reset()
    mem2reg = env.action_space.index("-mem2reg")
    env.step(mem2reg)
    saved = resource.getrlimit(resource.RLIMIT_NOFILE)
    fillers: list[int] = []
    try:
        # Every descriptor number below a new limit taken but one: the copy needs three.
        highest = max(int(fd) for fd in os.listdir("/proc/self/fd"))
        resource.setrlimit(resource.RLIMIT_NOFILE, (highest + 2, saved[1]))
        while True:
            try:
                fillers.append(os.dup(0))
            except OSError:
                break
        os.close(fillers.pop())
        with pytest.raises(forkgym.ResourceExhausted, match="file-descriptor limit") as raised:
            env.fork()
    finally:
        for fd in fillers:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, saved)
    assert "ulimit -n" in str(raised.value) and "episode continues" in str(raised.value)
    assert env.in_episode
    assert not env.step(mem2reg)[3]
    forked = env.fork()
    assert forked.actions == env.actions
    forked.close()
