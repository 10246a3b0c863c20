"""Shared fixtures: envs on the bundled benchmark, closed after each test.

Every env in the test process shares one private zygote (forkgym's default),
so the suite pays LLVM's start-up once.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import forkgym

DATA = Path(__file__).resolve().parents[1] / "data"


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
