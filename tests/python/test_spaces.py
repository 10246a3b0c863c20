"""Every value type of the protocol has a space, derived from the description
row alone (type, shape, bounds, feature names), that contains the values the
extension returns and passes gymnasium's check_env."""

from __future__ import annotations

import copy
import math
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from forkgym.description import VALUE_TYPES, SpaceRow
from forkgym.spaces import Int64Map, NumberArray, observation_spec

# One row per value type, and a value of it as the extension returns it.
# (Floats have finite bounds here: gymnasium's checker warns on an infinite
# Box bound, which a described row may well have.)
ROWS = {
    "int64": (SpaceRow("Count", "int64", low=0), 7),
    "int64List": (SpaceRow("Counts", "int64List", shape=(3,), low=0, feature_names=("a", "b", "c")),
                  np.array([1, 2, 3], dtype=np.int64)),
    "text": (SpaceRow("Source", "text"), "int main() { return 0; } /* \u00e9 */"),
    "bytes": (SpaceRow("Object", "bytes"), np.frombuffer(b"\x7fELF", dtype=np.int8).copy()),
    "boolean": (SpaceRow("Ok", "boolean"), True),
    "float64": (SpaceRow("Runtime", "float64", low=0.0, high=3600.0), 0.25),
    "float64List": (SpaceRow("Runtimes", "float64List", shape=(2,), low=0.0, high=3600.0), np.array([0.5, 1.5])),
    "int64Map": (SpaceRow("InstructionCounts", "int64Map", low=0), {"add": 3, "mov": 10}),
}


def test_every_value_type_has_a_row_here() -> None:
    assert sorted(ROWS) == sorted(VALUE_TYPES)


@pytest.mark.parametrize("kind", sorted(ROWS))
def test_each_value_type_contains_its_values_default_and_samples(kind: str) -> None:
    row, value = ROWS[kind]
    spec = observation_spec(row)
    space = spec.space
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no casting warnings either
        assert value in space
        assert spec.default() in space
        space.seed(0)
        for _ in range(5):
            assert space.sample() in space


def test_bounds_and_shapes_come_from_the_row() -> None:
    box = observation_spec(SpaceRow("V", "float64List", shape=(4,), low=-1.0, high=1.0)).space
    assert isinstance(box, gym.spaces.Box) and box.shape == (4,) and box.dtype == np.float64
    assert np.array([0.0, 1.0, -1.0, 0.5]) in box and np.array([0.0, 2.0, 0.0, 0.0]) not in box
    scalar = observation_spec(SpaceRow("N", "int64", low=0, high=10)).space
    assert 10 in scalar and 11 not in scalar and -1 not in scalar and 1.5 not in scalar
    unbounded = observation_spec(SpaceRow("F", "float64")).space
    assert -1e300 in unbounded and math.isinf(unbounded.high)
    unsized = observation_spec(SpaceRow("L", "int64List", shape=(-1,), low=0)).space
    assert isinstance(unsized, NumberArray)
    assert np.arange(5, dtype=np.int64) in unsized and np.arange(50, dtype=np.int64) in unsized
    assert np.array([-1], dtype=np.int64) not in unsized
    digest = observation_spec(SpaceRow("H", "text", shape=(40,))).space
    assert "a" * 40 in digest and "a" * 39 not in digest


def test_an_int64_map_with_feature_names_holds_only_those_keys() -> None:
    space = observation_spec(SpaceRow("M", "int64Map", low=0, feature_names=("add", "mov"))).space
    assert isinstance(space, Int64Map)
    assert {"add": 1} in space and {"add": 1, "mov": 2} in space
    assert {"sub": 1} not in space and {"add": -1} not in space and {"add": 1.5} not in space
    assert [("add", 1)] not in space


class _OneObservationEnv(gym.Env):
    """A stand-in env whose observation is one described value."""

    def __init__(self, kind: str) -> None:
        row, self._value = ROWS[kind]
        self.observation_space = observation_spec(row).space
        self.action_space = gym.spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return copy.deepcopy(self._value), {}

    def step(self, action):
        return copy.deepcopy(self._value), 0.0, False, False, {}


@pytest.mark.parametrize("kind", sorted(ROWS))
def test_each_value_types_space_passes_check_env(kind: str) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(_OneObservationEnv(kind), skip_render_check=True)
    assert not caught, [str(w.message) for w in caught]


def test_a_replay_command_line_reads_back_even_where_replay_texts_hold_the_separator() -> None:
    from forkgym.description import ActionRow, ReplayCommand
    from forkgym.errors import InvalidAction
    from forkgym.spaces import ActionSpace

    rows = [ActionRow("a", replay="f(x,y)"), ActionRow("b", replay="g"), ActionRow("c", replay="f(x,y),g"),
            ActionRow("off", replay="", unavailable_reason="not in this build")]
    space = ActionSpace(rows, "Test", replay=ReplayCommand("/opt/my cc", " -p='", ",", "'", " in -o out"))
    line = space.to_string([1, 0, 3, 1])
    assert line == "'/opt/my cc' -p='g,f(x,y),g' in -o out"
    # The longest match wins: "f(x,y),g" is action c.
    assert space.from_string(line) == [1, 2]
    assert space.from_string(space.to_string([0, 1, 0])) == [2, 0]
    assert space.from_string(space.to_string([3])) == []
    with pytest.raises(InvalidAction, match="should start with"):
        space.from_string("cc -p='g' in -o out")
    with pytest.raises(InvalidAction, match="'h' .* is not the replay text"):
        space.from_string("'/opt/my cc' -p='g,h' in -o out")
