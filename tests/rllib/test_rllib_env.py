"""forkgym.rllib's env creator, without a Ray cluster: observation dtypes,
normalised variants, benchmark partitioning, node zygotes, bad settings."""

from __future__ import annotations

import gc
import os
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import forkgym
import forkgym.rllib as fr
from conftest import wait_exited, zygotes_under


class Context(dict):
    """RLlib's EnvContext as an env creator sees it: a dict with indices."""

    def __init__(self, config: dict, worker_index: int = 0, num_workers: int = 0) -> None:
        super().__init__(config)
        self.worker_index = worker_index
        self.num_workers = num_workers


@pytest.fixture
def socket_dir(tmp_path: Path) -> str:
    directory = tmp_path / "node"
    directory.mkdir(mode=0o700)
    return str(directory)


@pytest.fixture(autouse=True)
def fresh_vector_indices():
    fr._made.clear()
    yield
    fr._made.clear()


def config(socket_dir: str, **kwargs) -> dict:
    return {"socket_dir": socket_dir, "idle_exit_seconds": 1, **kwargs}


def test_observations_are_float32_by_default_for_torch_models(socket_dir):
    with fr.make_env("llvm-autophase-ic-v0", config(socket_dir)) as env:
        observation, _ = env.reset()
        assert env.observation_space.dtype == np.float32 and observation.dtype == np.float32
        assert env.observation_space.contains(observation)
        observation, *_ = env.step(env.action_space.sample())
        assert observation.dtype == np.float32 and env.observation_space.contains(observation)


def test_observation_dtype_none_keeps_forkgyms_own(socket_dir):
    with fr.make_env("llvm-autophase-ic-v0", config(socket_dir, observation_dtype=None)) as env:
        assert env.reset()[0].dtype == np.int64


def test_normalized_autophase_and_instcount_divide_by_the_instruction_count(socket_dir):
    with forkgym.make("llvm-v0") as raw:
        raw.reset()
        autophase, instcount = raw.observation["Autophase"], raw.observation["InstCount"]
        names = list(raw.observation.spaces["Autophase"].feature_names)
    with fr.make_env("llvm-autophase-ic-v0", config(socket_dir, normalize=True)) as env:
        observation, _ = env.reset()
        assert observation.dtype == np.float32 and observation.shape == (56,)
        np.testing.assert_allclose(observation, autophase / autophase[names.index("TotalInsts")], rtol=1e-6)
        assert env.observation_space.contains(observation)
    with fr.make_env("llvm-v0", config(socket_dir, normalize=True, observation_space="InstCount")) as env:
        observation, _ = env.reset()
        # CompilerGym's InstCountNorm: counts[1:] / max(counts[0], 1).
        assert observation.shape == (69,)
        np.testing.assert_allclose(observation, instcount[1:] / instcount[0], rtol=1e-6)


def test_benchmarks_of_a_dataset_are_dealt_out_by_worker_and_vector_index(socket_dir):
    settings = config(socket_dir, benchmarks="gcc-c-torture-v0", max_benchmarks_per_dataset=8,
                      num_envs_per_env_runner=2)
    shares = []
    for worker in (1, 2):
        for _ in range(2):  # a runner's sub-envs, made in turn
            env = fr.make_env("llvm-ic-v0", Context(settings, worker_index=worker, num_workers=2))
            shares.append(env.get_wrapper_attr("benchmarks"))
            env.close()
    everything = [uri for share in shares for uri in share]
    assert len(everything) == 8 and len(set(everything)) == 8, shares
    assert all(len(share) == 2 for share in shares)


def test_each_reset_moves_to_the_next_benchmark_of_the_envs_share(socket_dir):
    uris = ["benchmark://forkgym-v0/crc32", "benchmark://forkgym-v0/small"]
    with fr.make_env("llvm-ic-v0", config(socket_dir, benchmarks=uris)) as env:
        seen = [env.reset()[1]["benchmark"] for _ in range(3)]
    assert seen == [uris[0], uris[1], uris[0]]


def test_more_envs_than_benchmarks_share_them():
    assert fr.partition(["a", "b"], 3, 4) == ["b"]
    assert fr.partition(["a", "b", "c"], 0, 2) == ["a", "c"]


def test_envs_of_one_node_share_one_zygote_that_exits_after_the_last(socket_dir):
    first = fr.make_env("llvm-ic-v0", config(socket_dir))
    second = fr.make_env("llvm-ic-v0", config(socket_dir))
    first.reset(), second.reset()
    zygotes = zygotes_under(socket_dir)
    assert len(zygotes) == 1 and all(len(pids) == 1 for pids in zygotes.values()), zygotes
    (path, (zygote,)), = zygotes.items()
    assert path == fr.node_socket_path(forkgym.ServerOptions(idle_exit_seconds=1), socket_dir)
    assert first.unwrapped.connection.zygote_pid == second.unwrapped.connection.zygote_pid == zygote
    first.close(), second.close()
    del first, second  # an env holds its connection while it exists
    gc.collect()
    forkgym.server._drop_shared()  # and so does the process-wide handle, until exit
    assert wait_exited(zygote)
    assert not os.path.exists(path)


def test_node_zygote_false_gives_this_process_its_own(socket_dir):
    with fr.make_env("llvm-ic-v0", config(socket_dir, node_zygote=False)) as env:
        env.reset()
        assert zygotes_under(socket_dir) == {}


@pytest.mark.parametrize("settings, message", [
    ({"observation_dtype": "floaty"}, "not a numpy dtype"),
    ({"normalize": True, "observation_space": "Ir"}, "normalize applies to Autophase and InstCount, not Ir"),
    ({"observation_space": "Ir"}, "observation_dtype applies to array observations"),
    ({"benchmarks": []}, "non-empty list"),
    ({"num_envs_per_env_runner": 0}, "whole number >= 1"),
    ({"no_such_setting": 1}, "passes the rest to forkgym.make"),
    ({"server": {"no_such_option": 1}}, "ServerOptions fields"),
    ({"server": {"socket_path": "/tmp/x.sock"}}, "set node_zygote=False"),
])
def test_bad_settings_say_what_is_wrong(socket_dir, settings, message):
    with pytest.raises(forkgym.InvalidRequest, match=message):
        fr.make_env("llvm-autophase-ic-v0", config(socket_dir, **settings)).reset()


def test_every_forkgym_id_is_registered_with_rllib():
    from ray.tune.registry import ENV_CREATOR, _global_registry

    fr.register()  # what importing did (held until the next ray.init stores it in the cluster)
    for env_id in forkgym.ENV_TABLE:
        assert _global_registry.contains(ENV_CREATOR, f"forkgym/{env_id}")
        assert _global_registry.contains(ENV_CREATOR, env_id)


def test_a_killed_compiler_worker_is_a_truncated_episode_and_the_next_reset_works(socket_dir):
    import signal

    with fr.make_env("llvm-autophase-ic-v0", config(socket_dir, max_episode_steps=100)) as env:
        env.reset()
        os.kill(env.unwrapped.worker_pid, signal.SIGKILL)
        observation, reward, terminated, truncated, info = env.step(0)
        assert truncated and not terminated and info["outcome"] != "ok", info
        assert env.observation_space.contains(observation)
        observation, _ = env.reset()
        assert env.observation_space.contains(observation)
        assert env.step(0)[3] is False
