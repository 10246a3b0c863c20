"""The command line's frame (dispatch, the console script) and ``describe``.

Commands run as a user runs them: ``python -m forkgym ...`` or the
``forkgym`` script in a child process (the private zygote it spawns is the
test server, from this run's environment), or ``forkgym.cli.main`` in this
process where the output is all that is checked.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from forkgym.cli import COMMANDS, main as cli

SCRIPT = Path(sys.executable).parent / "forkgym"


def forkgym_cli(*arguments: str, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess:
    run = subprocess.run([sys.executable, "-m", "forkgym", *arguments], capture_output=True, text=True,
                         env=env)
    if check:
        assert run.returncode == 0, run.stderr
    return run


def test_every_command_is_one_row_and_each_row_names_a_module_with_a_command() -> None:
    import importlib

    for name, (module_name, text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        assert hasattr(module, "main") or (hasattr(module, "configure") and hasattr(module, "run")), name
        assert text, name


def test_the_console_script_and_the_module_print_the_same_command_list() -> None:
    assert SCRIPT.exists(), "pip install . installs the forkgym console script"
    script = subprocess.run([str(SCRIPT)], capture_output=True, text=True)
    module = forkgym_cli(check=False)
    assert script.returncode == module.returncode == 2
    assert script.stdout == module.stdout
    for name in COMMANDS:
        assert f"  {name} " in module.stdout


def test_an_unknown_command_says_so_and_lists_the_commands() -> None:
    run = forkgym_cli("serach", check=False)
    assert run.returncode == 2
    assert "unknown command 'serach'" in run.stderr and "  describe " in run.stderr and not run.stdout


def test_each_command_describes_its_arguments() -> None:
    for name in COMMANDS:
        run = subprocess.run([str(SCRIPT), name, "--help"], capture_output=True, text=True)
        assert run.returncode == 0, (name, run.stderr)
        assert "usage:" in run.stdout, name


def test_describe_lists_backends_actions_spaces_datasets_and_the_sandbox(capsys) -> None:
    assert cli(["describe", "llvm", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["sandbox"]["level"] in ("full", "reduced", "basic")
    assert isinstance(info["instructions_retired"]["available"], bool) and info["instructions_retired"]["reason"]
    [llvm] = info["backends"]
    assert llvm["name"] == "llvm" and llvm["version"].startswith("19.")
    flags = {a["flag"]: a for a in llvm["actions"]}
    assert len(llvm["actions"]) == 124, "the test build's fault actions are counted apart, never listed"
    assert flags["-mem2reg"]["runs"] == "function(mem2reg)" and flags["-mem2reg"]["index"] == 103
    assert "unavailable" in flags["-barrier"]
    observations = {o["name"]: o for o in llvm["observations"]}
    assert observations["Autophase"]["shape"] == [56] and observations["Autophase"]["deterministic"]
    assert observations["Runtime"]["runnable_only"] and not observations["Runtime"]["deterministic"]
    assert observations["ObjectTextSizeBytes"]["platform_dependent"]
    rewards = {r["name"] for r in llvm["rewards"]}
    assert {"IrInstructionCountOz", "ObjectTextSizeOz", "Runtime"} <= rewards
    datasets = {d["name"]: d for d in info["datasets"]}
    assert datasets["benchmark://forkgym-v0"]["installed"] and datasets["benchmark://forkgym-v0"]["size"] == 2
    assert datasets["generator://csmith-v0"]["kind"] == "generator"


def test_describe_prints_tables_a_person_reads() -> None:
    out = forkgym_cli("describe").stdout
    assert out.startswith("sandbox: ")
    assert "instructions retired counted: " in out
    assert "== backend llvm 19." in out and "== backend gcc" in out
    assert "103  -mem2reg" in out
    assert "IrInstructionCountOz" in out and "RUNNABLE-ONLY" in out
    assert "benchmark://forkgym-v0" in out


def test_describe_of_a_backend_the_server_lacks_names_the_ones_it_has() -> None:
    run = forkgym_cli("describe", "clang", check=False)
    assert run.returncode == 1
    assert "no backend 'clang'" in run.stderr and "llvm" in run.stderr


def test_describe_probe_runner_asks_the_runner_on_a_generated_program(capsys) -> None:
    assert cli(["describe", "llvm", "--json", "--probe-runner"]) == 0
    counter = json.loads(capsys.readouterr().out)["instructions_retired"]
    assert counter["how"] == "ran generator://csmith-v0/1"
    # Either a count, or the kernel's reason there is none.
    assert ("instructions" in counter["reason"]) if counter["available"] else counter["reason"]
