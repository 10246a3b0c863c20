"""The installed package runs the product server; the suite runs the test build.

Product builds contain no test-only machinery (DESIGN.md invariant 6): the
forkgym-server installed inside the package has CompilerGym's 124 actions and
nothing else. The suite's own server (conftest.py) is forkgym-test-server,
which adds the fault-injection actions past the space, flagged test-only.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import forkgym
from forkgym import _forkgym

from conftest import TEST_SERVER


@pytest.fixture
def installed_server(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.delenv("FORKGYM_SERVER", raising=False)
    return forkgym.server_binary()


def test_the_installed_package_runs_its_bundled_server(installed_server: str) -> None:
    bundled = Path(forkgym.__file__).resolve().parent / "bin" / "forkgym-server"
    assert Path(installed_server) == bundled
    assert os.access(bundled, os.X_OK)
    assert bundled.resolve() != TEST_SERVER.resolve()


def test_the_installed_server_has_exactly_the_compilergym_actions(installed_server: str) -> None:
    connection = _forkgym.Connection.spawn(server_path=installed_server)
    actions = connection.describe().actions
    assert len(actions) == 124
    assert not any(a.test_only or a.flag.startswith("-forkgym-test-") for a in actions)

    with forkgym.make("llvm-v0", server=forkgym.ServerOptions(server_path=installed_server)) as env:
        assert env.action_space.n == 124
        assert len(env.action_space.flags) == 124
        with pytest.raises(forkgym.InvalidAction):
            env.action_space.index("-forkgym-test-segfault")


def test_the_test_server_adds_its_actions_past_the_space() -> None:
    with forkgym.make("llvm-v0") as env:
        assert env.action_space.n == 124
        extra = env.action_space.flags[124:]
        assert extra and all(flag.startswith("-forkgym-test-") for flag in extra)
        assert env.action_space.test_only == frozenset(range(124, len(env.action_space.flags)))


def test_client_and_both_servers_agree_on_the_action_table(installed_server: str) -> None:
    product = _forkgym.Connection.spawn(server_path=installed_server)
    test = _forkgym.Connection.spawn(server_path=str(TEST_SERVER))
    assert product.server.action_table_hash == test.server.action_table_hash != 0


def test_the_installed_server_names_llvm_s_functions_in_a_crash_stack(installed_server: str) -> None:
    # LLVM is linked into the server (cmake/static_libraries.cmake), so only
    # the server's own symbol table names LLVM's frames: the installed copy
    # must keep it (its debug information may go). LLVM 19's -scalarizer
    # dereferences a null pointer on this llvm-stress program.
    with forkgym.make("llvm-v0", server=forkgym.ServerOptions(server_path=installed_server)) as env:
        env.reset(benchmark="generator://llvm-stress-v0/3")
        _, _, _, truncated, info = env.step(env.action_space.index("-scalarizer"))
    assert truncated and info["signal"] == 11, info
    assert "llvm::ScalarizerPass::run" in info["stack_signature"], info["stack_signature"]
