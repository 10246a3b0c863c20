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


CRC = "benchmark://forkgym-v0/crc32"
SMALL = "benchmark://forkgym-v0/small"


def _benchmarks(info) -> list[str]:
    return [str(b) for b in info["benchmark"]]


def test_a_benchmark_list_longer_than_num_envs_cycles_per_sub_env() -> None:
    # Sub-env i takes benchmarks i, i + num_envs, i + 2 * num_envs... and
    # starts over: every benchmark is visited, none by two sub-envs.
    with forkgym.make_vec("llvm-ic-v0", num_envs=2, benchmarks=[CRC, SMALL, SMALL, SMALL, CRC],
                          max_episode_steps=1) as envs:
        assert envs.sub_env_benchmarks == [[CRC, SMALL, CRC], [SMALL, SMALL]]
        _, info = envs.reset()
        seen = [_benchmarks(info)]
        for _ in range(3):
            _, _, _, truncated, _ = envs.step(np.array([0, 0]))
            assert truncated.all()
            _, _, _, _, info = envs.step(np.array([0, 0]))  # the autoreset: the next benchmark of each
            seen.append(_benchmarks(info))
        assert seen == [[CRC, SMALL], [SMALL, SMALL], [CRC, SMALL], [CRC, SMALL]]
        _, info = envs.reset(seed=0)  # a seeded reset starts every cycle over
        assert _benchmarks(info) == [CRC, SMALL]
        _, info = envs.reset(options={"benchmark": SMALL})  # an explicit benchmark wins
        assert _benchmarks(info) == [SMALL, SMALL]


def test_fewer_benchmarks_than_sub_envs_are_shared_round_robin() -> None:
    with forkgym.make_vec("llvm-ic-v0", num_envs=3, benchmarks=[SMALL, CRC]) as envs:
        assert _benchmarks(envs.reset()[1]) == [SMALL, CRC, SMALL]
    with pytest.raises(forkgym.InvalidRequest, match="at least one benchmark"):
        forkgym.make_vec("llvm-ic-v0", num_envs=2, benchmarks=[])


def test_sub_env_wrappers_apply_to_every_sub_env() -> None:
    from forkgym.wrappers import ConstrainedCommandline

    flags = ["-mem2reg", "-gvn"]
    wrappers = [lambda e: ConstrainedCommandline(e, flags),
                lambda e: gym.wrappers.TransformReward(e, lambda r: 100.0 * r)]
    with forkgym.make_vec("llvm-autophase-ic-v0", num_envs=2, wrappers=wrappers, max_episode_steps=2) as envs, \
            forkgym.make_vec("llvm-autophase-ic-v0", num_envs=2, max_episode_steps=2) as plain:
        assert envs.single_action_space.n == 2 and envs.action_space.nvec.tolist() == [2, 2]
        obs, _ = envs.reset(seed=0)
        plain_obs, _ = plain.reset(seed=0)
        assert data_equivalence(obs, plain_obs)
        inner = [plain.envs[0].action_space.index(f) for f in flags]
        for step in range(3):
            obs, rewards, terminated, truncated, _ = envs.step(np.array([0, 1]))
            plain_obs, plain_rewards, _, plain_truncated, _ = plain.step(np.array(inner))
            assert data_equivalence(obs, plain_obs)
            assert np.allclose(rewards, 100.0 * plain_rewards)
            assert truncated.tolist() == plain_truncated.tolist() == [step == 1] * 2
        assert envs.envs[0].actions == [] and envs.envs[1].actions == []  # autoreset on the third step


def test_a_crash_under_sub_env_wrappers_truncates_and_autoresets() -> None:
    with forkgym.make_vec("llvm-ic-v0", num_envs=2,
                          wrappers=[lambda e: gym.wrappers.TransformReward(e, lambda r: r)]) as envs:
        envs.reset()
        segfault = envs.envs[0].action_space.index("-forkgym-test-segfault")
        _, _, _, truncated, info = envs.step(np.array([segfault, 0]))
        assert truncated.tolist() == [True, False] and info["_outcome"].tolist() == [True, False]
        _, rewards, _, truncated, _ = envs.step(np.array([0, 0]))
        assert rewards[0] == 0.0 and not truncated.any()
        assert envs.envs[0].actions == [] and len(envs.envs[1].actions) == 2


@pytest.mark.parametrize("env_id", ["llvm-autophase-ic-v0", "llvm-ic-v0"])
@pytest.mark.parametrize("mode", ["sync", "async", "vector_entry_point"])
def test_gymnasium_make_vec_works_in_every_mode(mode: str, env_id: str) -> None:
    kwargs = {"vector_kwargs": {"autoreset_mode": AutoresetMode.NEXT_STEP}} if mode != "vector_entry_point" else {}
    envs = gym.make_vec(f"forkgym/{env_id}", num_envs=2, vectorization_mode=mode, max_episode_steps=2, **kwargs)
    reference = forkgym.make_vec(env_id, num_envs=2, max_episode_steps=2)
    try:
        assert envs.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
        assert data_equivalence(envs.reset(seed=[3, 4])[0], reference.reset(seed=[3, 4])[0])
        for _ in range(4):
            actions = reference.action_space.sample()
            a, b = envs.step(actions), reference.step(actions)
            for x, y in zip(a[:4], b[:4]):
                assert data_equivalence(x, y), (mode, x, y)
    finally:
        envs.close()
        reference.close()


def test_the_readmes_benchmark_cycling_example_runs(capsys) -> None:
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "client" / "python" / "README.md").read_text()
    section = readme[readme.index("## Vector environments"):]
    example = next(block for block in re.findall(r"```python\n(.*?)```", section, re.S) if "benchmarks=" in block)
    exec(compile(example, "README.md", "exec"), {})
    assert "generator://csmith-v0/1" in capsys.readouterr().out


def test_a_crash_info_crosses_processes_in_gymnasiums_async_vector_env() -> None:
    # AsyncVectorEnv (and SB3's SubprocVecEnv) pickle each step's info in the
    # sub-env's process: a crash's reproducer must pickle, as what it says.
    envs = gym.make_vec("forkgym/llvm-ic-v0", num_envs=2, vectorization_mode="async")
    try:
        envs.reset()
        segfault = forkgym.make("llvm-ic-v0").action_space.index("-forkgym-test-segfault")
        _, _, _, truncated, info = envs.step(np.array([0, segfault]))
        assert truncated.tolist() == [False, True]
        reproducer = info["reproducer"][1]
        assert reproducer.benchmark == "benchmark://forkgym-v0/crc32" and list(reproducer.actions) == [segfault]
        assert reproducer.commandline.split()[0].endswith("opt") and reproducer.benchmark_hash
    finally:
        envs.close()
