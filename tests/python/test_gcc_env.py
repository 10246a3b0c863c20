"""gcc-v0 from Python: CompilerGym's GccEnv API on the gcc backend (a thin
subclass of the generic CompilerEnv), its choices set through the protocol's
parameters, its states replayed as gcc command lines."""

from __future__ import annotations

import pickle
import shlex
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

import pytest
from gymnasium.utils.env_checker import check_env

import forkgym
from forkgym.gcc_env import GccEnv

SOURCE = "benchmark://forkgym-v0/crc32"


@pytest.fixture
def gcc():
    with forkgym.make("gcc-v0", benchmark=SOURCE, reward_space="obj_size") as env:
        env.reset()
        yield env


def _choice(env: GccEnv, argument: str) -> tuple[int, int]:
    """(option index, choice) of a command-line argument such as ``-O2``."""
    spec = env.gcc_spec
    choices = spec.choices_from_command_line(f"gcc {argument} -w -c src.c -o obj.o")
    index = next(i for i, c in enumerate(choices) if c != -1)
    return index, choices[index]


def test_gcc_v0_is_a_gcc_env_and_passes_check_env() -> None:
    with forkgym.make("gcc-v0", benchmark=SOURCE) as env:
        assert type(env) is GccEnv and isinstance(env, forkgym.CompilerEnv)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            check_env(env, skip_render_check=True)
        assert not caught, [str(w.message) for w in caught]


def test_obj_size_is_the_size_of_the_object_file_its_command_line_writes(gcc: GccEnv, tmp_path) -> None:
    for name in ("-O2", "-fno-inline", "-funroll-loops"):
        gcc.step(gcc.action_space.index(name))
    command = gcc.commandline()
    assert command.split()[1:][-5:] == ["-w", "-c", "src.c", "-o", "obj.o"]
    (tmp_path / "src.c").write_text(gcc.source)
    subprocess.run(shlex.split(command), cwd=tmp_path, check=True)
    written = (tmp_path / "obj.o").read_bytes()
    assert gcc.obj_size == len(written)
    assert gcc.obj == written


def test_choices_round_trip_and_are_the_command_line(gcc: GccEnv) -> None:
    choices = [-1] * len(gcc.gcc_spec.options)
    for argument in ("-O3", "-fno-tree-vectorize"):
        index, choice = _choice(gcc, argument)
        choices[index] = choice
    gcc.choices = choices
    assert gcc.choices == choices
    assert "-O3" in gcc.commandline().split() and "-fno-tree-vectorize" in gcc.commandline().split()
    assert gcc.gcc_spec.choices_from_command_line(gcc.commandline()) == choices
    with gcc.fork() as copy:
        assert copy.choices == choices
        copy.choices = [-1] * len(choices)
        assert gcc.choices == choices
    clone = pickle.loads(pickle.dumps(gcc))
    try:
        assert clone.choices == choices and clone.obj_hash == gcc.obj_hash
    finally:
        clone.close()


def test_bad_choices_are_clear_errors_and_change_nothing(gcc: GccEnv) -> None:
    before = gcc.choices
    n = len(before)
    with pytest.raises(forkgym.InvalidRequest, match=f"has {n} options"):
        gcc.choices = before[:-1]
    with pytest.raises(forkgym.InvalidRequest, match="out of range"):
        gcc.choices = [len(gcc.gcc_spec.options[0])] + before[1:]
    # A combination gcc itself rejects: its reason, and the episode stays where it was.
    rejected = list(before)
    for argument in ("-fsection-anchors", "-fno-toplevel-reorder"):
        index, choice = _choice(gcc, argument)
        rejected[index] = choice
    with pytest.raises(forkgym.InvalidRequest, match="section-anchors"):
        gcc.choices = rejected
    assert gcc.choices == before
    gcc.step(gcc.action_space.index("-O1"))  # the episode goes on
    with pytest.raises(forkgym.InvalidRequest, match="whole number of seconds"):
        gcc.timeout = 0


def test_a_state_reached_by_setting_choices_validates_and_applies(gcc: GccEnv) -> None:
    gcc.step(gcc.action_space.index("-Os"))
    choices = gcc.choices
    index, choice = _choice(gcc, "-fno-inline")
    choices[index] = choice
    gcc.choices = choices
    gcc.step(gcc.action_space.index("-fno-unroll-loops"))
    state = gcc.state
    assert state.commandline == gcc.commandline()
    result = gcc.validate()
    assert result.okay(), result
    with forkgym.make("gcc-v0", reward_space="obj_size") as other:
        other.apply(state)
        assert other.choices == gcc.choices and other.obj_hash == gcc.obj_hash


def test_the_reproducer_names_the_states_command_line(gcc: GccEnv) -> None:
    gcc.step(gcc.action_space.index("-O2"))
    index, choice = _choice(gcc, "-fno-inline")
    choices = gcc.choices
    choices[index] = choice
    gcc.choices = choices
    assert gcc._native.reproducer().commandline == gcc.commandline() == gcc.state.commandline


def test_a_vector_of_gcc_envs_steps_together() -> None:
    with forkgym.make_vec("gcc-v0", num_envs=2, benchmark=SOURCE, reward_space="obj_size") as envs:
        assert all(type(env) is GccEnv for env in envs.envs)
        envs.reset(seed=0)
        _, rewards, terminated, truncated, _ = envs.step([envs.envs[0].action_space.index("-Os")] * 2)
        assert rewards[0] == rewards[1] and not terminated.any() and not truncated.any()


def test_a_compiler_failure_is_its_own_exception() -> None:
    from forkgym.errors import exception_type, from_outcome

    assert exception_type(forkgym.Outcome.COMPILER_FAILED) is forkgym.CompilerFailed
    error = from_outcome(int(forkgym.Outcome.COMPILER_FAILED), "gcc timed out after 1 s")
    assert "env.timeout" in str(error) and isinstance(error, forkgym.ForkgymError)


def test_a_compiler_that_breaks_its_sandbox_fails_the_step_and_the_episode_goes_on(monkeypatch) -> None:
    from conftest import REPO

    # Hands all but -c to the real gcc. Copied where the server's sandbox user
    # may run it (the build tree may sit under an owner-only /root), and not
    # under /tmp, which a gcc worker sees as its own private directory.
    bin_dir = Path(tempfile.mkdtemp(prefix="fgtest-gcc-", dir="/var/tmp"))
    bin_dir.chmod(0o755)
    hostile = bin_dir / "hostile_gcc"
    shutil.copy2(REPO / "build" / "tests" / "passes" / "gcc" / "hostile_gcc", hostile)
    hostile.chmod(0o755)
    monkeypatch.setenv("FORKGYM_GCC", str(hostile))
    server = forkgym.Server()
    server.connection()  # spawned now: its gcc is the hostile one
    monkeypatch.delenv("FORKGYM_GCC")
    try:
        with forkgym.make("gcc-v0", benchmark=SOURCE, server=server, reward_space="obj_size") as env:
            env.reset()
            assert env.gcc_spec.gcc == str(hostile)
            with pytest.raises(forkgym.CompilerFailed, match="compiler_failed"):
                env.step(env.action_space.index("-O2"))
            assert env.in_episode and env.actions == []
            assert env.choices == [-1] * len(env.gcc_spec.options)
            assert "crc" in env.source
    finally:
        server.close()
        shutil.rmtree(bin_dir, ignore_errors=True)


def test_without_gcc_gcc_v0_says_how_to_get_it_and_llvm_is_served(monkeypatch) -> None:
    # A server whose gcc is missing (here FORKGYM_GCC names nothing) starts
    # and serves LLVM; gcc-v0 is a clear error naming what is missing and how
    # to install it.
    monkeypatch.setenv("FORKGYM_GCC", "/nonexistent/gcc")
    server = forkgym.Server()
    try:
        server.connection()  # spawned now, without a gcc
        monkeypatch.delenv("FORKGYM_GCC")
        with pytest.raises(forkgym.BackendUnavailable) as raised:
            forkgym.make("gcc-v0", benchmark=SOURCE, server=server)
        message = str(raised.value)
        assert raised.value.outcome == forkgym.Outcome.BACKEND_UNAVAILABLE
        for words in ("gcc backend is unavailable", "/nonexistent/gcc", "apt-get install gcc", "FORKGYM_GCC"):
            assert words in message, message
        with forkgym.make("llvm-v0", benchmark=SOURCE, server=server) as env:
            env.reset()
            env.step(env.action_space.index("-mem2reg"))
    finally:
        server.close()
