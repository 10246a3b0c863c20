"""A generic CompilerEnv built from a backend's description, its spaces built
once per description and shared by every env and fork; LlvmEnv a thin
subclass; env ids as rows of one table."""

from __future__ import annotations

import os
import pickle
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.envs.registration import load_env_creator
from gymnasium.utils.env_checker import check_env

import forkgym
from forkgym.registration import ENV_TABLE


@pytest.fixture
def count_spaces(monkeypatch):
    """How many gymnasium spaces are constructed (read ``count[0]``)."""
    count = [0]
    original = spaces.Space.__init__

    def counting(self, *args, **kwargs):
        count[0] += 1
        original(self, *args, **kwargs)

    monkeypatch.setattr(spaces.Space, "__init__", counting)
    return count


def test_a_fork_builds_no_space_and_shares_its_parents(count_spaces) -> None:
    with forkgym.make("llvm-autophase-ic-v0") as env:
        env.reset()
        env.step(env.action_space.index("-mem2reg"))
        count_spaces[0] = 0
        with env.fork() as copy:
            assert count_spaces[0] == 0
            for name, spec in env.observation.spaces.items():
                assert copy.observation.spaces[name] is spec
            for name, spec in env.reward.spaces.items():
                assert copy.reward.spaces[name] is spec
            assert copy.observation_space is env.observation_space
            np.testing.assert_array_equal(copy.step(0)[0], env.step(0)[0])


def test_envs_of_one_description_share_one_set_of_spaces(count_spaces) -> None:
    with forkgym.make("llvm-v0") as first:
        count_spaces[0] = 0
        with forkgym.make("llvm-ic-v0") as second:
            assert count_spaces[0] == 0
            assert second.observation.spaces["InstCountDict"] is first.observation.spaces["InstCountDict"]
        # Another zygote with the same description: its envs share them too.
        server = forkgym.Server()
        with forkgym.make("llvm-v0", server=server) as third:
            assert count_spaces[0] == 0
            assert third.observation.spaces["Autophase"] is first.observation.spaces["Autophase"]
        server.close()


def test_shared_space_tables_are_read_only() -> None:
    with forkgym.make("llvm-v0") as env:
        with pytest.raises(TypeError):
            env.observation.spaces["Ir"] = env.observation.spaces["Autophase"]
        with pytest.raises(TypeError):
            del env.reward.spaces["IrInstructionCount"]


def test_each_env_samples_actions_with_its_own_generator() -> None:
    with forkgym.make("llvm-v0") as a, forkgym.make("llvm-v0") as b:
        assert a.action_space is not b.action_space
        a.reset(seed=7)
        b.reset(seed=7)
        assert [a.action_space.sample() for _ in range(5)] == [b.action_space.sample() for _ in range(5)]
        with a.fork() as copy:
            assert copy.action_space is not a.action_space
            assert copy.action_space == a.action_space


def test_llvm_env_is_a_thin_subclass_of_compiler_env() -> None:
    assert issubclass(forkgym.LlvmEnv, forkgym.CompilerEnv)
    for helper in ("ir", "ir_sha1", "bitcode", "write_ir", "write_bitcode", "make_benchmark"):
        assert hasattr(forkgym.LlvmEnv, helper)
        assert not hasattr(forkgym.CompilerEnv, helper)


def test_compiler_env_works_from_the_description_alone(data_dir) -> None:
    uri = f"file://{data_dir / 'crc32.c'}"
    with forkgym.CompilerEnv(backend="llvm", benchmark=uri, reward_space="IrInstructionCount") as env:
        assert type(env) is forkgym.CompilerEnv
        env.reset()
        for row in env.description.observations:
            if row.needs_run_config:  # crc32.c has no run configuration
                continue
            value = env.observation[row.name]
            assert value in env.observation.spaces[row.name].space, row.name
        names = env.action_space.names
        _, reward, _, truncated, _ = env.step(names.index("-mem2reg"))
        assert not truncated and reward > 0
        with env.fork() as copy:
            assert type(copy) is forkgym.CompilerEnv
            assert copy.observation["IrInstructionCount"] == env.observation["IrInstructionCount"]
        # A generic command line is the backend's replay command, as the
        # server writes it in reproducers, and reads back.
        assert env.commandline() == env._native.reproducer().commandline
        assert "-passes='function(mem2reg)'" in env.commandline()
        assert env.commandline_to_actions(env.commandline()) == env.actions
        state = env.state
        assert env.validate().okay()
        with forkgym.CompilerEnv(backend="llvm", benchmark=uri, reward_space="IrInstructionCount") as other:
            other.apply(state)
            assert other.observation["IrSha1"] == env.observation["IrSha1"]
        clone = pickle.loads(pickle.dumps(env))
        try:
            assert type(clone) is forkgym.CompilerEnv and clone.actions == env.actions
            assert clone.observation["IrSha1"] == env.observation["IrSha1"]
        finally:
            clone.close()


def test_compiler_env_passes_check_env(data_dir) -> None:
    with forkgym.CompilerEnv(backend="llvm", benchmark=f"file://{data_dir / 'crc32.c'}",
                             observation_space="Autophase", reward_space="IrInstructionCount") as env:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            check_env(env, skip_render_check=True)
        assert not caught, [str(w.message) for w in caught]


def test_a_backend_the_server_lacks_is_a_clear_error_naming_its_backends() -> None:
    with pytest.raises(forkgym.InvalidRequest, match="no backend 'nonesuch'.*llvm"):
        forkgym.CompilerEnv(backend="nonesuch")
    with pytest.raises(forkgym.InvalidRequest, match="needs a backend"):
        forkgym.CompilerEnv()
    with pytest.raises(forkgym.InvalidRequest, match="'llvm' backend's env"):
        forkgym.LlvmEnv(backend="nonesuch")


def test_a_generic_env_without_a_default_benchmark_says_to_give_one() -> None:
    with forkgym.CompilerEnv(backend="llvm") as env:
        with pytest.raises(forkgym.BenchmarkNotFound, match="benchmark=<uri>"):
            env.reset()


@pytest.mark.parametrize("env_id", sorted(ENV_TABLE))
def test_every_row_of_the_env_table_makes_its_class_with_its_defaults(env_id: str) -> None:
    row = ENV_TABLE[env_id]
    with forkgym.make(env_id) as env:
        assert type(env) is load_env_creator(row.entry_point)
        assert env.unwrapped._backend == row.backend
        assert (env.observation_space_spec.id if env.observation_space_spec else None) == row.observation_space
        assert (env.reward_space.name if env.reward_space else None) == row.reward_space
    vector = gym.make_vec(f"forkgym/{env_id}", num_envs=1)
    try:
        assert type(vector.unwrapped.envs[0]) is load_env_creator(row.entry_point)
    finally:
        vector.close()


def test_the_llvm_rows_are_compilergyms_llvm_environments() -> None:
    llvm = {k: (r.observation_space, r.reward_space) for k, r in ENV_TABLE.items() if r.backend == "llvm"}
    assert llvm == forkgym.ENVIRONMENTS
    assert forkgym.COMPILER_GYM_ENVS == list(ENV_TABLE) and "gcc-v0" in forkgym.COMPILER_GYM_ENVS


def test_every_observation_space_samples_values_it_contains_and_contains_its_values() -> None:
    with forkgym.make("llvm-v0") as env:
        env.reset()
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # gymnasium's casting warning too
            runs = {row.name for row in env.description.observations if row.needs_run_config}
            for name, spec in env.observation.spaces.items():
                spec.space.seed(1)
                assert spec.space.sample() in spec.space, name
                if name in runs:  # the default benchmark has no run configuration
                    continue
                value = env.observation[name]
                assert value in spec.space, name
                if name == "BitcodeFile":
                    os.unlink(value)


CALCULATOR = "generator://calculator-v0/5"  # the test server's toy backend: a program is an integer


def test_a_backend_without_a_class_passes_check_env_and_replays_its_states() -> None:
    with forkgym.CompilerEnv(backend="calculator", benchmark=CALCULATOR, observation_space="Value",
                             reward_space="Decrease") as env:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            check_env(env, skip_render_check=True)
        assert not caught, [str(w.message) for w in caught]
        env.reset()
        env.multistep([env.action_space.index(a) for a in ("double", "add1", "negate")])
        assert env.commandline() == "calculator double add1 negate" == env._native.reproducer().commandline
        assert env.observation["OpCounts"] in env.observation.spaces["OpCounts"].space
        result = env.validate()
        assert result.okay() and result.reward_validated, result
        with forkgym.CompilerEnv(backend="calculator", reward_space="Decrease") as other:
            other.apply(env.state)
            assert other.observation["Value"] == env.observation["Value"] == -11
        with pytest.raises(forkgym.InvalidAction, match="should start with 'calculator'"):
            env.commandline_to_actions("opt -passes=dce")
        with pytest.raises(forkgym.InvalidAction, match="'triple' .* is not the replay text of any action"):
            env.commandline_to_actions("calculator double triple")


def test_a_backend_parameter_it_does_not_know_is_a_clear_error() -> None:
    with forkgym.CompilerEnv(backend="calculator", benchmark=CALCULATOR) as env:
        with pytest.raises(forkgym.SessionNotStarted):
            env.send_param("anything", "1")
        env.reset()
        with pytest.raises(forkgym.InvalidRequest, match="anything"):
            env.send_param("anything", "1")
        assert env.observation["Value"] == 5  # the episode goes on
