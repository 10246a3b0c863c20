"""Reproducibility across processes (DESIGN.md, invariant 3).

Every worker is a fork of its zygote, so the episodes of one zygote start
from nearly one heap, and a result of LLVM that depends on heap addresses
takes one or a few values there (two for the program below: ten episodes
of one zygote gave two BitcodeSha1s). NewGVN is such a pass: the use-list
order it leaves (which later passes read) follows the addresses of its
values. Here ``-sroa -newgvn`` on csmith program 2 gives a different
``BitcodeSha1`` (the state hash, use-list order included) in every zygote
process, and one ``IrSha1``; ``validate(fresh_process=True)`` replays the
episode in this zygote and in a zygote started for the purpose, compares
``BitcodeSha1`` after every step and names the first step that differs.

Out of 30 fresh zygotes no two agreed on this program's BitcodeSha1 after
``-newgvn`` (6 opt-19 processes gave 5 different ones): a fresh zygote that
agreed by chance would make the first test fail, never pass wrongly.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import forkgym
from conftest import TEST_SERVER
from forkgym.server import Server, ServerOptions
from forkgym.state import CompilerEnvStateWriter

# NewGVN leaves this program's use-lists in an order set by heap addresses.
NONDETERMINISTIC = "generator://csmith-v0/2"
NEWGVN = ["-sroa", "-newgvn"]
# Passes whose result (use-list order included) is the same in every process.
DETERMINISTIC = ["-sroa", "-instcombine", "-simplifycfg", "-gvn"]


def _step_all(env: forkgym.LlvmEnv, flags: list[str]) -> None:
    for flag in flags:
        *_, truncated, info = env.step(env.action_space.index(flag))
        assert not truncated, info


def test_newgvn_result_differs_across_zygotes_and_the_fresh_process_check_names_its_step(env):
    env.reset(benchmark=NONDETERMINISTIC)
    _step_all(env, NEWGVN)
    result = env.validate(fresh_process=True)
    assert not result.okay(), str(result)
    assert result.cross_process_divergent_step == 2  # the state after -newgvn; 0 is the benchmark as loaded
    assert not result.cross_process_validated
    assert "BitcodeSha1" in result.error_details and "-newgvn" in result.error_details, result.error_details
    # The IR is the same: only the use-list order differs, and the message says so.
    assert "IrSha1 is the same" in result.error_details, result.error_details
    # The checks within one zygote still pass: the difference only shows across processes.
    assert result.ir_hash_validated and not result.ir_hash_validation_failed
    assert not result.actions_replay_failed


def test_a_deterministic_sequence_is_validated_across_processes(env):
    env.reset(benchmark=NONDETERMINISTIC)
    _step_all(env, DETERMINISTIC)
    result = env.validate(fresh_process=True)
    assert result.okay(), str(result)
    assert result.cross_process_validated
    assert result.cross_process_divergent_step is None


def test_validate_without_fresh_process_does_not_see_the_newgvn_difference(env):
    env.reset(benchmark=NONDETERMINISTIC)
    _step_all(env, NEWGVN)
    result = env.validate()
    assert result.okay(), str(result)
    assert not result.cross_process_validated and result.cross_process_divergent_step is None


def _bitcode_sha1_after_newgvn(server: Server) -> tuple[str, str]:
    with forkgym.make("llvm-v0", benchmark=NONDETERMINISTIC, server=server) as env:
        env.reset()
        _step_all(env, NEWGVN)
        return env.observation["BitcodeSha1"], env.observation["IrSha1"]


def _server_without_aslr(directory: Path) -> str:
    setarch = shutil.which("setarch")
    assert setarch, "setarch (util-linux) is needed to start a server without ASLR"
    wrapper = directory / "server-without-aslr"
    wrapper.write_text(f'#!/bin/sh\nexec {setarch} -R {TEST_SERVER} "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


def test_perturbed_zygotes_differ_even_without_aslr(shared_tmp_path: Path):
    # Without ASLR, zygotes started alike mostly share one heap layout (15 of
    # 18 such zygotes agreed on this BitcodeSha1; the rest differed by the
    # timing of their loads); with --perturb-heap, 8 seeds gave 8 values.
    wrapper = _server_without_aslr(shared_tmp_path)
    hashes = []
    for seed in (1, 2, 3):
        server = Server(ServerOptions(server_path=wrapper, extra_args=("--perturb-heap", str(seed))))
        try:
            with forkgym.make("llvm-v0", benchmark=NONDETERMINISTIC, server=server) as env:
                env.reset()
                assert _personality(env.server_pid) & ADDR_NO_RANDOMIZE, "the server runs with ASLR after all"
                _step_all(env, NEWGVN)
                hashes.append((env.observation["BitcodeSha1"], env.observation["IrSha1"]))
        finally:
            server.close()
    assert len({bitcode for bitcode, _ in hashes}) == 3, hashes
    assert len({ir for _, ir in hashes}) == 1, hashes


def test_the_fresh_process_check_works_without_aslr(shared_tmp_path: Path):
    server = Server(ServerOptions(server_path=_server_without_aslr(shared_tmp_path)))
    try:
        with forkgym.make("llvm-v0", benchmark=NONDETERMINISTIC, server=server) as env:
            env.reset()
            _step_all(env, NEWGVN)
            assert _personality(env.server_pid) & ADDR_NO_RANDOMIZE, "the server runs with ASLR after all"
            result = env.validate(fresh_process=True)
            assert result.cross_process_divergent_step == 2, str(result)
    finally:
        server.close()


ADDR_NO_RANDOMIZE = 0x0040000


def _personality(pid: int) -> int:
    return int(Path(f"/proc/{pid}/personality").read_text(), 16)


def test_fresh_process_replays_leave_no_zygote_behind(env):
    env.reset(benchmark=NONDETERMINISTIC)
    _step_all(env, NEWGVN)
    before = _servers_of_this_process()
    assert env.server_pid in before
    env.validate(fresh_process=True)
    assert _servers_of_this_process() == before


def _servers_of_this_process() -> set[int]:
    """Pids of the forkgym servers this process started (its direct children)."""
    children = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        path = task / "children"
        if path.exists():
            children |= {int(pid) for pid in path.read_text().split()}
    return {pid for pid in children if _is_server(pid)}


def _is_server(pid: int) -> bool:
    try:
        return "forkgym" in Path(f"/proc/{pid}/comm").read_text()
    except OSError:
        return False


def test_fresh_process_on_a_backend_without_a_state_hash_is_refused_with_the_reason():
    # The test server's toy backend has no observation covering what a later step reads.
    with forkgym.CompilerEnv(backend="calculator", benchmark="generator://calculator-v0/5") as env:
        env.reset()
        env.step(0)
        with pytest.raises(forkgym.InvalidRequest, match="calculator backend has no state hash"):
            env.validate(fresh_process=True)
        assert env.validate().okay()


def test_the_command_line_checks_states_across_processes(env, shared_tmp_path) -> None:
    """python -m forkgym validate --fresh-process: the same check for a state CSV."""
    buffer = io.StringIO()
    writer = CompilerEnvStateWriter(buffer)
    for flags in (NEWGVN, DETERMINISTIC):
        env.reset(benchmark=NONDETERMINISTIC)
        _step_all(env, flags)
        writer.write_state(env.state)
    states = shared_tmp_path / "states.csv"
    states.write_text(buffer.getvalue())
    cli = subprocess.run([sys.executable, "-m", "forkgym", "validate", "--env", "llvm-v0", "--fresh-process",
                          "--jobs", "1", str(states)], capture_output=True, text=True, timeout=600)
    assert cli.returncode == 1, cli.stdout + cli.stderr  # one state is not valid
    assert "across processes: 1 the same, 1 diverged" in cli.stdout, cli.stdout + cli.stderr
    assert "-newgvn" in cli.stdout, cli.stdout
