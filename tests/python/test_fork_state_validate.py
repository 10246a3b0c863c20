"""fork() and deepcopy; CompilerEnvState CSV round trip; validate()."""

from __future__ import annotations

import copy
import hashlib
import io
import subprocess
import sys

import numpy as np
import pytest

import forkgym
from forkgym import CompilerEnvState, CompilerEnvStateReader, CompilerEnvStateWriter


def _actions(env, *flags):
    return [env.action_space.index(f) for f in flags]


def test_fork_then_identical_actions_give_identical_observations_and_rewards(env) -> None:
    env.reset()
    env.step(env.action_space.index("-mem2reg"))
    twin = env.fork()
    try:
        assert twin.actions == env.actions and twin.episode_reward == env.episode_reward
        assert twin.worker_pid != env.worker_pid
        for action in _actions(env, "-instcombine", "-simplifycfg", "-gvn", "-licm"):
            a = env.step(action, observation_spaces=["Autophase", "IrSha1"], reward_spaces=["IrInstructionCountOz"])
            b = twin.step(action, observation_spaces=["Autophase", "IrSha1"], reward_spaces=["IrInstructionCountOz"])
            np.testing.assert_array_equal(a[0][0], b[0][0])
            assert a[0][1] == b[0][1] and a[1] == b[1]
        assert env.episode_reward == twin.episode_reward
    finally:
        twin.close()


def test_fork_is_independent(env) -> None:
    env.reset()
    before = env.ir_sha1
    twin = copy.deepcopy(env)
    try:
        twin.step(env.action_space.index("-mem2reg"))
        assert env.ir_sha1 == before != twin.ir_sha1
        assert env.actions == [] and len(twin.actions) == 1
    finally:
        twin.close()


def test_action_space_strings_round_trip(env) -> None:
    actions = _actions(env, "-mem2reg", "-licm", "-loop-unroll", "-gvn")
    text = env.action_space.to_string(actions)
    assert text.startswith(env.connection.server.opt_path + " -passes='") and text.endswith("input.bc -o output.bc")
    assert env.action_space.from_string(text) == actions
    # CompilerGym's flag form is understood too.
    assert env.action_space.from_string("opt -mem2reg -licm -loop-unroll -gvn input.bc -o output.bc") == actions
    assert env.action_space.names[103] == "-mem2reg"


def test_commandline_names_the_servers_opt_and_replays_as_is(env, tmp_path) -> None:
    """Not a bare `opt` (on a machine with several LLVMs that is another version):
    the state's command line, run in a shell as written, gives the episode's IR."""
    opt = env.connection.server.opt_path
    assert opt.startswith("/") and opt.endswith("/opt")
    env.reset()
    (tmp_path / "input.bc").write_bytes(env.bitcode)
    env.multistep(_actions(env, "-mem2reg", "-instcombine", "-simplifycfg", "-gvn"))
    for commandline in (env.commandline(), env.state.commandline):
        assert commandline.startswith(opt + " "), commandline
        subprocess.run(commandline, shell=True, cwd=tmp_path, check=True)
        assert hashlib.sha1((tmp_path / "output.bc").read_bytes()).hexdigest() == env.ir_sha1


def test_state_round_trips_through_csv_and_validates(env) -> None:
    env.reset()
    env.multistep(_actions(env, "-mem2reg", "-instcombine", "-simplifycfg"))
    state = env.state
    assert state.reward == pytest.approx(env.episode_reward) and state.reward > 0
    buffer = io.StringIO()
    CompilerEnvStateWriter(buffer).write_state(state)
    assert buffer.getvalue().startswith("benchmark,reward,walltime,commandline,benchmark_hash\n")
    (read,) = CompilerEnvStateReader(io.StringIO(buffer.getvalue()))
    assert read == state
    result = env.validate(read)
    assert result.okay(), result.error_details
    assert result.reward_validated
    own = env.validate()
    assert own.okay() and own.ir_hash_validated


def test_tampered_reward_fails_validation(env) -> None:
    env.reset()
    env.multistep(_actions(env, "-mem2reg", "-instcombine"))
    state = env.state
    tampered = CompilerEnvState(state.benchmark, state.commandline, state.walltime, state.reward + 0.5)
    result = env.validate(tampered)
    assert not result.okay() and result.reward_validation_failed
    assert "❌" in str(result)


def test_apply_replays_a_state(env) -> None:
    env.reset()
    env.multistep(_actions(env, "-mem2reg", "-gvn"))
    state, sha1 = env.state, env.ir_sha1
    with forkgym.make("llvm-ic-v0") as other:
        other.apply(state)
        assert other.ir_sha1 == sha1 and other.state == state


def test_validate_cli_reports_each_state_and_fails_on_a_bad_one(env, tmp_path) -> None:
    env.reset()
    env.multistep(_actions(env, "-mem2reg", "-sroa"))
    good = env.state
    bad = CompilerEnvState(good.benchmark, good.commandline, good.walltime, (good.reward or 0) - 1.0)
    path = tmp_path / "states.csv"
    with open(path, "w") as f:
        writer = CompilerEnvStateWriter(f)
        writer.write_state(good)
        writer.write_state(bad)
    run = subprocess.run([sys.executable, "-m", "forkgym", "validate", str(path)], capture_output=True, text=True)
    lines = run.stdout.splitlines()
    assert run.returncode == 1, run.stdout + run.stderr
    assert lines[0].startswith("✅") and lines[1].startswith("❌")
    assert "1 of 2 states valid" in run.stdout and "geomean" in run.stdout

    good_only = tmp_path / "good.csv"
    good_only.write_text("benchmark,reward,walltime,commandline\n" + good.to_csv())
    run = subprocess.run([sys.executable, "-m", "forkgym", "validate", "-"], input=good_only.read_text(),
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 of 1 states valid" in run.stdout
