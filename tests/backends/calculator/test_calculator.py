"""The toy backend from Python: no Python code knows it; the generic
CompilerEnv builds its spaces from the server's description alone, and one
env-table row makes it an env id."""

from __future__ import annotations

import os
from pathlib import Path

import gymnasium as gym

# The test build of the server has the calculator (its row in forkserver/main.cc).
_SERVER = Path(__file__).resolve().parents[3] / "build" / "forkserver" / "forkgym-test-server"
os.environ["FORKGYM_SERVER"] = os.environ.get("FORKGYM_TEST_SERVER", str(_SERVER))

import forkgym  # noqa: E402
from forkgym.registration import ENV_TABLE, EnvEntry, register_all  # noqa: E402

START = "generator://calculator-v0/5"


def test_the_generic_env_runs_it_from_its_description_alone() -> None:
    with forkgym.CompilerEnv(backend="calculator", benchmark=START, observation_space="Value",
                             reward_space="Decrease") as env:
        assert env.action_space.n == 4
        assert isinstance(env.observation.spaces["IsEven"].space, gym.spaces.Discrete)
        observation, _ = env.reset()
        assert observation == 5
        observation, reward, terminated, truncated, _ = env.step(env.action_space.index("double"))
        assert (observation, reward, terminated, truncated) == (10, -5.0, False, False)
        assert env.observation["IsEven"]
        assert env.observation["OpCounts"] == {"add1": 0, "double": 1, "halve": 0, "negate": 0}
        copy = env.fork()
        try:
            copy.step(env.action_space.index("negate"))
            assert copy.observation["Value"] == -10
            assert env.observation["Value"] == 10
        finally:
            copy.close()


def test_one_table_row_makes_it_an_env_id(monkeypatch) -> None:
    monkeypatch.setitem(ENV_TABLE, "calculator-v0", EnvEntry("calculator", "Value", "Decrease"))
    register_all()
    with forkgym.make("calculator-v0", benchmark=START) as env:
        assert env.reset()[0] == 5
        assert env.step(env.action_space.index("add1"))[:2] == (6, -1.0)
