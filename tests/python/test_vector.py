"""make_vec: a gymnasium VectorEnv stepped with one native call, NEXT_STEP autoreset."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import data_equivalence
from gymnasium.vector import AutoresetMode, SyncVectorEnv

import forkgym


def test_vector_env_matches_gymnasiums_sync_vector_env() -> None:
    ours = forkgym.make_vec("llvm-autophase-ic-v0", num_envs=3)
    reference = SyncVectorEnv(
        [lambda: forkgym.make("llvm-autophase-ic-v0") for _ in range(3)], autoreset_mode=AutoresetMode.NEXT_STEP
    )
    try:
        assert ours.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
        assert ours.single_action_space == reference.single_action_space
        assert ours.observation_space == reference.observation_space
        obs_a, _ = ours.reset(seed=0)
        obs_b, _ = reference.reset(seed=0)
        assert data_equivalence(obs_a, obs_b)
        segfault = ours.envs[0].action_space.index("-forkgym-test-segfault")
        ours.action_space.seed(0)
        for step in range(6):
            actions = ours.action_space.sample()
            if step == 2:
                actions[1] = segfault  # one sub-env crashes: both must autoreset it next step
            a, b = ours.step(actions), reference.step(actions)
            for x, y in zip(a[:4], b[:4]):
                assert data_equivalence(x, y), (step, x, y)
            assert set(b[4]) <= set(a[4])
    finally:
        ours.close()
        reference.close()


def test_vector_env_spaces_and_batches() -> None:
    with forkgym.make_vec("llvm-autophase-ic-v0", num_envs=2) as envs:
        obs, info = envs.reset(seed=1)
        assert obs.shape == (2, 56) and obs.dtype == np.int64 and obs in envs.observation_space
        actions = envs.action_space.sample()
        obs, rewards, terminated, truncated, info = envs.step(actions)
        assert obs in envs.observation_space
        assert rewards.shape == (2,) and rewards.dtype == np.float64
        assert "action_had_no_effect" in info


def test_vector_env_autoresets_on_the_next_step_after_a_crash() -> None:
    with forkgym.make_vec("llvm-ic-v0", num_envs=2) as envs:
        envs.reset()
        segfault = envs.envs[0].action_space.index("-forkgym-test-segfault")
        _, _, _, truncated, info = envs.step(np.array([segfault, 0]))
        assert truncated.tolist() == [True, False]
        assert info["_outcome"].tolist() == [True, False]
        _, rewards, terminated, truncated, _ = envs.step(np.array([0, 0]))
        assert rewards[0] == 0.0 and not truncated.any() and not terminated.any()
        assert envs.envs[0].actions == []  # reset, the action ignored
        assert len(envs.envs[1].actions) == 2


def test_vector_env_max_episode_steps() -> None:
    with forkgym.make_vec("llvm-ic-v0", num_envs=2, max_episode_steps=2) as envs:
        envs.reset()
        assert not envs.step(np.array([0, 0]))[3].any()
        assert envs.step(np.array([0, 0]))[3].all()


def test_gymnasium_make_vec_uses_the_vector_entry_point() -> None:
    envs = gym.make_vec("forkgym/llvm-ic-v0", num_envs=2)
    try:
        assert isinstance(envs.unwrapped, forkgym.vector.LlvmVectorEnv)
        envs.reset()
        envs.step(envs.action_space.sample())
    finally:
        envs.close()


def test_vector_env_reset_takes_a_list_of_seeds() -> None:
    # gymnasium's VectorEnv.reset takes one seed per sub-env (None: unseeded).
    with forkgym.make_vec("llvm-ic-v0", num_envs=2) as envs:
        envs.reset(seed=[5, None])
        first = [envs.envs[0].action_space.sample() for _ in range(4)]
        envs.reset(seed=5)  # an int seeds sub-env i with seed + i
        assert [envs.envs[0].action_space.sample() for _ in range(4)] == first
        envs.reset(seed=[6, 5])
        assert [envs.envs[1].action_space.sample() for _ in range(4)] == first
        with pytest.raises(forkgym.InvalidRequest, match="one per sub-env"):
            envs.reset(seed=[1, 2, 3])
