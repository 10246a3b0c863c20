"""Shared fixtures: envs on the bundled benchmark, closed after each test.

Every env in the test process shares one private zygote (forkgym's default),
so the suite pays LLVM's start-up once. That zygote is the test build of the
server, forkgym-test-server (built next to forkgym-server by scripts/setup):
it adds the test-only fault-injection actions the crash and recovery tests
use. The installed package's own server is the product build, which has
neither (test_product_build.py checks that).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data"
TEST_SERVER = Path(os.environ.get("FORKGYM_TEST_SERVER", REPO / "build" / "forkserver" / "forkgym-test-server"))

if not os.access(TEST_SERVER, os.X_OK):
    pytest.exit(f"{TEST_SERVER} not found: run `bash scripts/setup` (it builds forkgym-test-server), "
                "or set FORKGYM_TEST_SERVER to its path", returncode=4)
# Before forkgym spawns anything: every default server in this run (and in
# the processes the tests start) is the test build.
os.environ["FORKGYM_SERVER"] = str(TEST_SERVER)

import forkgym  # noqa: E402


@pytest.fixture
def env() -> Iterator[forkgym.LlvmEnv]:
    with forkgym.make("llvm-ic-v0") as e:
        yield e


@pytest.fixture
def data_dir() -> Path:
    return DATA


def flag(env: forkgym.LlvmEnv, name: str) -> int:
    """Index of an action flag (including the test-only ones past the space)."""
    return env.action_space.index(name)
