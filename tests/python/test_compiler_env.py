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
            assert copy._spaces is env._spaces
            for name, spec in env.observation.spaces.items():
                assert copy.observation.spaces[name] == spec
            for name, spec in env.reward.spaces.items():
                assert copy.reward.spaces[name] is spec
            assert copy.observation_space == env.observation_space
            # Every space the envs hand out is a copy of the shared one, not a new build.
            assert count_spaces[0] == 0
            np.testing.assert_array_equal(copy.step(0)[0], env.step(0)[0])


def test_envs_of_one_description_share_one_set_of_spaces(count_spaces) -> None:
    with forkgym.make("llvm-v0") as first:
        count_spaces[0] = 0
        with forkgym.make("llvm-ic-v0") as second:
            assert second._spaces is first._spaces
            assert second.observation.spaces["InstCountDict"] == first.observation.spaces["InstCountDict"]
            assert count_spaces[0] == 0
        # Another zygote with the same description: its envs share them too.
        server = forkgym.Server()
        with forkgym.make("llvm-v0", server=server) as third:
            assert third._spaces is first._spaces
            assert third.observation.spaces["Autophase"] == first.observation.spaces["Autophase"]
            assert count_spaces[0] == 0
        server.close()


def _samples(space, n: int = 4) -> list:
    """``n`` samples of ``space`` as comparable Python values."""
    out = []
    for _ in range(n):
        value = space.sample()
        out.append(sorted((k, int(v)) for k, v in value.items()) if isinstance(value, dict) else np.asarray(value).tolist())
    return out


# Every space an env hands out, by how a user reaches it.
SPACE_GETTERS = {
    "observation_space": lambda env: env.observation_space,
    "action_space": lambda env: env.action_space,
    "observation.spaces[InstCountDict]": lambda env: env.observation.spaces["InstCountDict"].space,
    "observation_space_spec.space": lambda env: env.observation_space_spec.space,
}


@pytest.mark.parametrize("where", SPACE_GETTERS)
def test_seeding_or_sampling_one_envs_space_never_changes_anothers_samples(where: str) -> None:
    """The spaces are shared per description; their generators must not be:
    another env's (or a fork's) samples stay what its own seed makes them."""
    get = SPACE_GETTERS[where]
    with forkgym.make("llvm-autophase-ic-v0") as alone:
        get(alone).seed(1)
        expected = _samples(get(alone))
    with forkgym.make("llvm-autophase-ic-v0") as mine, forkgym.make("llvm-autophase-ic-v0") as other:
        mine.reset()
        with mine.fork() as copy:
            get(other).seed(1)
            get(copy).seed(1)
            get(mine).seed(2)  # seeding and drawing from one env...
            _samples(get(mine), 7)
            assert _samples(get(other)) == expected  # ...leaves the others' draws alone
            assert _samples(get(copy)) == expected


def test_a_forks_generators_continue_from_its_parents_independently() -> None:
    """fork() is copy.deepcopy: the copy's generators (its spaces', np_random)
    start where the parent's are and then go their own way."""
    with forkgym.make("llvm-autophase-ic-v0") as env:
        env.reset(seed=5)
        env.observation_space.seed(6)
        env.observation_space.sample()
        env.action_space.sample()
        with env.fork() as copy:
            assert _samples(copy.observation_space) == _samples(env.observation_space)
            assert _samples(copy.action_space) == _samples(env.action_space)
            assert copy.np_random.integers(1 << 30) == env.np_random.integers(1 << 30)
            _samples(copy.observation_space, 3)  # the copy draws more...
            after_parent = _samples(env.observation_space)
        with forkgym.make("llvm-autophase-ic-v0") as twin:
            twin.reset(seed=5)
            twin.observation_space.seed(6)
            _samples(twin.observation_space, 1 + 4)
            assert _samples(twin.observation_space) == after_parent  # ...and the parent's draws do not move


def test_shared_spaces_cannot_be_changed_through_one_env() -> None:
    import dataclasses

    with forkgym.make("llvm-autophase-ic-v0") as env, forkgym.make("llvm-autophase-ic-v0") as other:
        with pytest.raises(ValueError, match="read-only"):
            env.observation_space.high[0] = 1  # a bound every env shares
        with pytest.raises(dataclasses.FrozenInstanceError):
            env.observation_space_spec.translate = lambda value: 0
        with pytest.raises(dataclasses.FrozenInstanceError):
            env.reward.spaces["IrInstructionCount"].range = (0, 1)
        assert other.observation_space == env.observation_space


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


def test_a_fork_equals_its_parent_and_neither_sees_the_others_later_changes(data_dir) -> None:
    with forkgym.make("llvm-autophase-ic-v0") as env:
        env.reset()
        env.step(env.action_space.index("-mem2reg"))
        with env.fork() as copy:
            for name in ("actions", "episode_reward", "benchmark", "benchmark_hash", "reward_space"):
                assert getattr(copy, name) == getattr(env, name), name
            assert copy.observation_space_spec.id == env.observation_space_spec.id
            assert copy.state.commandline == env.state.commandline and copy.ir_sha1 == env.ir_sha1
            parent = (list(env.actions), env.episode_reward, env.benchmark, env.ir_sha1)
            # Changes to the copy...
            copy.step(copy.action_space.index("-instcombine"))
            copy.observation_space = "InstCount"
            copy.reward_space = "IrInstructionCount"
            copy.benchmark = f"file://{data_dir / 'crc32.c'}"
            copy.action_space.seed(3)
            # ...leave the parent as it was, and the other way round.
            assert (env.actions, env.episode_reward, env.benchmark, env.ir_sha1) == parent
            assert env.observation_space_spec.id == "Autophase" and env.reward_space.name == "IrInstructionCountOz"
            child = (list(copy.actions), copy.episode_reward, copy.benchmark, copy.ir_sha1)
            env.step(env.action_space.index("-gvn"))
            env.observation_space = "Ir"
            assert (copy.actions, copy.episode_reward, copy.benchmark, copy.ir_sha1) == child
            assert copy.observation_space_spec.id == "InstCount"
