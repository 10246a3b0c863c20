"""Every registered id behaves as a gymnasium 1.x env with CompilerGym's defaults."""

from __future__ import annotations

import gc
import os
import select
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import forkgym
from forkgym.registration import ENVIRONMENTS

IDS = sorted(ENVIRONMENTS)
HANG_GUARD_S = 60  # only turns a hang into a failure


@pytest.mark.parametrize("env_id", IDS)
def test_check_env_passes_on_every_registered_id(env_id: str) -> None:
    with forkgym.make(env_id) as env:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            check_env(env.unwrapped, skip_render_check=True)
        assert not caught, [str(w.message) for w in caught]


@pytest.mark.parametrize("env_id", IDS)
def test_gymnasium_make_knows_the_id_with_compilergym_default_spaces(env_id: str) -> None:
    observation, reward = ENVIRONMENTS[env_id]
    env = gym.make(f"forkgym/{env_id}")
    try:
        unwrapped = env.unwrapped
        assert isinstance(unwrapped, forkgym.LlvmEnv)
        assert (unwrapped.observation_space_spec.id if unwrapped.observation_space_spec else None) == observation
        assert (unwrapped.reward_space.name if unwrapped.reward_space else None) == reward
        obs, info = env.reset()
        assert obs in env.observation_space
    finally:
        env.close()


def test_autophase_and_instcount_are_int64_boxes(env: forkgym.LlvmEnv) -> None:
    env.reset()
    autophase = env.observation["Autophase"]
    counts = env.observation["InstCount"]
    assert autophase.dtype == np.int64 and autophase.shape == (56,)
    assert counts.dtype == np.int64 and counts.shape == (70,)
    assert autophase in env.observation.spaces["Autophase"].space
    assert counts in env.observation.spaces["InstCount"].space
    assert counts[0] == env.observation["IrInstructionCount"]


def test_derived_observations_follow_compilergym(env: forkgym.LlvmEnv) -> None:
    env.reset()
    counts = env.observation["InstCount"]
    as_dict = env.observation["InstCountDict"]
    assert as_dict["TotalInstsCount"] == counts[0]
    norm = env.observation["InstCountNorm"]
    assert norm.dtype == np.float32 and norm.shape == (69,)
    np.testing.assert_allclose(norm, counts[1:] / counts[0], rtol=1e-6)
    assert set(env.observation["AutophaseDict"]) >= {"TotalInsts", "TotalBlocks"}
    assert len(env.observation["InstCountNormDict"]) == 69


def test_ir_text_hash_and_bitcode(env: forkgym.LlvmEnv, tmp_path) -> None:
    env.reset()
    assert "define" in env.ir
    sha1 = env.ir_sha1
    assert len(sha1) == 40 and sha1 in env.observation.spaces["IrSha1"].space
    bitcode = env.observation["Bitcode"]
    assert bitcode.dtype == np.int8 and bitcode.tobytes()[:2] == b"BC"
    env.write_ir(tmp_path / "a.ll")
    env.write_bitcode(tmp_path / "a.bc")
    assert (tmp_path / "a.bc").read_bytes() == bitcode.tobytes()
    assert (tmp_path / "a.ll").read_text() == env.ir
    path = env.observation["BitcodeFile"]
    try:
        assert open(path, "rb").read() == bitcode.tobytes()
    finally:
        import os

        os.unlink(path)


def test_reset_takes_benchmark_by_argument_and_options(env: forkgym.LlvmEnv, data_dir) -> None:
    uri = f"file://{data_dir}/small.c"
    env.reset(benchmark=uri)
    assert env.benchmark == uri
    env.reset(options={"benchmark": "benchmark://forkgym-v0/crc32"})
    assert env.benchmark == "benchmark://forkgym-v0/crc32"
    env.benchmark = uri  # takes effect at the next reset
    assert env.benchmark == "benchmark://forkgym-v0/crc32"
    env.reset()
    assert env.benchmark == uri


def test_step_with_explicit_spaces_returns_lists(env: forkgym.LlvmEnv) -> None:
    env.reset()
    mem2reg = env.action_space.index("-mem2reg")
    obs, rewards, terminated, truncated, info = env.step(
        mem2reg, observation_spaces=["IrInstructionCount", "Autophase"], reward_spaces=["IrInstructionCount"]
    )
    assert isinstance(obs, list) and len(obs) == 2 and isinstance(rewards, list)
    assert rewards[0] > 0  # mem2reg removes loads and stores
    assert not terminated and not truncated and info["action_had_no_effect"] is False


def test_multistep_equals_stepping_one_by_one(env: forkgym.LlvmEnv) -> None:
    actions = [env.action_space.index(f) for f in ("-mem2reg", "-instcombine", "-simplifycfg", "-gvn")]
    env.reset()
    env.multistep(actions)
    one_round_trip = (env.ir_sha1, env.episode_reward)
    env.reset()
    for a in actions:
        env.step(a)
    assert (env.ir_sha1, env.episode_reward) == pytest.approx(one_round_trip)
    assert env.actions == actions


def test_observation_and_reward_space_setters_by_name(env: forkgym.LlvmEnv) -> None:
    env.observation_space = "Autophase"
    env.reward_space = "IrInstructionCount"
    assert env.observation_space.shape == (56,)
    obs, _ = env.reset()
    assert obs.shape == (56,)
    _, reward, *_ = env.step(env.action_space.index("-mem2reg"))
    assert isinstance(reward, float) and reward > 0
    env.observation_space = None
    assert env.reset()[0] is None
    with pytest.raises(forkgym.InvalidRequest, match="valid names"):
        env.observation_space = "NoSuchSpace"


def test_lazy_reward_counts_towards_episode_reward(env: forkgym.LlvmEnv) -> None:
    env.reset()
    env.step(env.action_space.index("-mem2reg"))
    after_step = env.episode_reward
    assert env.reward["IrInstructionCountOz"] == 0.0  # nothing changed since
    oz = env.observation["IrInstructionCountOz"]
    initial = env.observation["IrInstructionCountO0"]
    now = env.observation["IrInstructionCount"]
    assert after_step == pytest.approx((initial - now) / max(initial - oz, 1))


def test_episode_bookkeeping(env: forkgym.LlvmEnv) -> None:
    env.reset()
    assert env.actions == [] and env.episode_reward == 0.0
    env.step(0)
    assert env.actions == [0]
    assert env.episode_walltime >= 0.0


def test_unavailable_flags_are_no_ops_that_keep_indices(env: forkgym.LlvmEnv) -> None:
    env.reset()
    barrier = env.action_space.index("-barrier")
    assert barrier == 7 and barrier in env.action_space.unavailable
    before = env.ir_sha1
    _, reward, _, truncated, info = env.step(barrier)
    assert info["action_had_no_effect"] and reward == 0.0 and not truncated
    assert env.ir_sha1 == before and env.actions == [barrier]


def test_invalid_action_raises_with_the_valid_range(env: forkgym.LlvmEnv) -> None:
    env.reset()
    with pytest.raises(forkgym.InvalidAction, match="valid actions are 0..123"):
        env.step(10_000)


def test_step_before_reset_says_to_reset() -> None:
    with forkgym.make("llvm-v0") as env:
        with pytest.raises(forkgym.SessionNotStarted, match="reset"):
            env.step(0)


def test_unknown_benchmark_raises_benchmark_not_found(env: forkgym.LlvmEnv) -> None:
    with pytest.raises(forkgym.BenchmarkNotFound, match="no such file"):
        env.reset(benchmark="file:///no/such/file.c")
    with pytest.raises(forkgym.BenchmarkNotFound, match="unknown dataset 'benchmark://cbench-v2'"):
        env.reset(benchmark="cbench-v2/qsort")


def test_benchmark_that_does_not_compile_raises_init_error(env: forkgym.LlvmEnv, data_dir) -> None:
    with pytest.raises(forkgym.BenchmarkInitError):
        env.reset(benchmark=f"file://{data_dir}/does_not_compile.c")
    env.reset()  # still usable


def test_context_manager_closes_the_worker() -> None:
    with forkgym.make("llvm-v0") as env:
        env.reset()
        assert env.in_episode
    assert not env.in_episode


def test_an_env_dropped_without_close_ends_its_worker_at_once() -> None:
    """As in code written for CompilerGym, which often never closes its envs:
    the last reference going ends the worker and its fork and closes their
    descriptors then, not at some later garbage collection (which under a
    test suite or a training loop may come in the middle of other work)."""
    collecting = gc.isenabled()
    gc.disable()
    workers: list[int] = []
    try:
        env = forkgym.make("llvm-ic-v0")
        env.reset()
        env.step(env.action_space.index("-mem2reg"))
        assert env.observation["IrInstructionCount"] > 0 and env.reward["IrInstructionCountOz"] is not None
        fork = env.fork()
        workers = [os.pidfd_open(e.worker_pid) for e in (env, fork)]
        view = env.observation
        del env, fork
        assert all(select.select([w], [], [], HANG_GUARD_S)[0] for w in workers), "a dropped env's worker lived on"
        with pytest.raises(forkgym.SessionNotStarted, match="keep a reference to the env"):
            view["IrInstructionCount"]
    finally:
        for worker in workers:
            os.close(worker)
        if collecting:
            gc.enable()


def test_render_ansi_returns_ir() -> None:
    with forkgym.make("llvm-v0", render_mode="ansi") as env:
        env.reset()
        assert "define" in env.render()


def test_make_with_max_episode_steps_truncates_and_forwards_the_api() -> None:
    with forkgym.make("llvm-ic-v0", max_episode_steps=2) as env:
        env.reset()
        assert not env.step(0)[3]
        assert env.step(0)[3]
        assert len(env.actions) == 2  # forwarded through the wrapper
        assert env.observation["IrInstructionCount"] > 0
