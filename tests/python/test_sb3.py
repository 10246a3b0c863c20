"""forkgym.sb3: stable-baselines3's VecEnv on the native vector env, checked
against SB3's own env checker and DummyVecEnv, and trained on with PPO."""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.env_checker import check_env
from stable_baselines3.common.vec_env import DummyVecEnv, VecCheckNan, VecMonitor, VecNormalize

import forkgym
from forkgym.sb3 import CompilerVecEnv, make_vec_env
from forkgym.wrappers import CycleOverBenchmarks

ID = "llvm-autophase-ic-v0"
CRC = "benchmark://forkgym-v0/crc32"
SMALL = "benchmark://forkgym-v0/small"


def test_sb3s_env_checker_passes_on_the_env_without_a_warning() -> None:
    with forkgym.make(ID) as env, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env, warn=True)
    assert not caught, [str(w.message) for w in caught]


def _dummy(benchmark_shares: list[list[str]], max_episode_steps: int) -> DummyVecEnv:
    return DummyVecEnv([
        (lambda share=share: CycleOverBenchmarks(forkgym.make(ID, max_episode_steps=max_episode_steps), share))
        for share in benchmark_shares
    ])


def test_the_adapter_steps_as_sb3s_dummy_vec_env_does() -> None:
    # Same seeds, benchmarks and actions (a crash included): the same
    # observations, rewards, dones, terminal observations and truncation
    # flags, with SB3's same-step autoreset.
    benchmarks = [CRC, SMALL, SMALL, CRC, CRC]
    ours = make_vec_env(ID, n_envs=2, seed=3, max_episode_steps=3, benchmarks=benchmarks)
    reference = _dummy(ours.vector_env.sub_env_benchmarks, 3)
    reference.seed(3)
    try:
        assert ours.observation_space == reference.observation_space
        assert ours.action_space == reference.action_space
        np.testing.assert_array_equal(ours.reset(), reference.reset())
        assert [i["benchmark"] for i in ours.reset_infos] == [i["benchmark"] for i in reference.reset_infos]
        segfault = ours.get_attr("action_space")[0].index("-forkgym-test-segfault")
        rng = np.random.default_rng(0)
        saw_done = 0
        for step in range(10):
            actions = rng.integers(0, 50, size=2)
            if step == 4:
                actions[1] = segfault
            a, b = ours.step(actions), reference.step(actions)
            np.testing.assert_array_equal(a[0], b[0])
            np.testing.assert_allclose(a[1], b[1])
            assert a[1].dtype == b[1].dtype == np.float32
            np.testing.assert_array_equal(a[2], b[2])
            for mine, theirs in zip(a[3], b[3]):
                assert mine["TimeLimit.truncated"] == theirs["TimeLimit.truncated"]
                assert ("terminal_observation" in mine) == ("terminal_observation" in theirs)
                if "terminal_observation" in mine:
                    saw_done += 1
                    np.testing.assert_array_equal(mine["terminal_observation"], theirs["terminal_observation"])
                assert mine.get("outcome") == theirs.get("outcome")
            assert [i["benchmark"] for i in ours.reset_infos] == [i["benchmark"] for i in reference.reset_infos]
        assert saw_done >= 6
    finally:
        ours.close()
        reference.close()


def test_ppo_trains_a_few_hundred_steps_on_the_adapter() -> None:
    venv = VecCheckNan(VecNormalize(VecMonitor(make_vec_env(ID, n_envs=2, seed=0, max_episode_steps=16,
                                                            benchmarks=[CRC, SMALL])), norm_reward=False),
                       raise_exception=True)
    try:
        model = PPO("MlpPolicy", venv, n_steps=64, batch_size=64, n_epochs=2, seed=0, device="cpu")
        model.learn(total_timesteps=256)
        assert model.num_timesteps >= 256
        assert len(model.ep_info_buffer) >= 256 // 16 - 2  # episodes ended and were counted
        assert all(np.isfinite(e["r"]) for e in model.ep_info_buffer)
    finally:
        venv.close()


def test_attributes_and_methods_reach_the_sub_envs() -> None:
    venv = make_vec_env(ID, n_envs=2, benchmarks=[CRC, SMALL])
    try:
        venv.reset()
        assert [str(b) for b in venv.get_attr("benchmark")] == [CRC, SMALL]
        venv.set_attr("benchmark", SMALL, indices=[0])
        venv.seed(0)
        venv.set_options({"benchmark": SMALL})
        venv.reset()
        assert [str(b) for b in venv.get_attr("benchmark")] == [SMALL, SMALL]
        assert venv.env_method("commandline", indices=1)[0].startswith("/")
        assert venv.env_is_wrapped(CycleOverBenchmarks) == [False, False]
    finally:
        venv.close()


def test_bad_inputs_say_what_to_do() -> None:
    with pytest.raises(forkgym.InvalidRequest, match="forkgym.make_vec"):
        CompilerVecEnv(forkgym.make(ID))
    with make_vec_env(ID, n_envs=1).vector_env as vector_env:
        venv = CompilerVecEnv(vector_env)
        venv.reset()
        with pytest.raises(forkgym.InvalidRequest, match="step_async"):
            venv.step_wait()


def test_without_stable_baselines3_the_import_error_names_the_extra() -> None:
    code = ("import sys; sys.modules['stable_baselines3'] = None\n"
            "try:\n    import forkgym.sb3\nexcept ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True).stdout
    assert "pip install 'forkgym[sb3]'" in out
