"""Action, observation and reward spaces, derived from a backend's description.

Every space comes from a description row (:mod:`forkgym.description`): its
value type picks the gymnasium space (:data:`VALUE_TYPE_SPACES`), its shape,
bounds and feature names fill it in. Nothing here knows a backend; a backend's
env class may add derived views (LLVM's ``InstCountDict``...) on top, in its
own module. The spaces are real gymnasium spaces so wrappers and vector envs
work on them.

Spaces are built once per description and shared: :func:`spaces_for` keeps
one :class:`Spaces` per (env class, description) for the whole process, and
remembers which one each server's connection uses, so a new env or a
``fork()`` builds nothing. Shared spaces are prototypes, never changed after
they are built (their bounds arrays are read-only). What an env hands out is
its own light copy (:func:`private_space`, made on first use): the tables
and bounds shared, the random number generators its own, so seeding or
sampling one env's space never changes another env's samples. A ``fork()``
is a ``copy.deepcopy``: its spaces' generators continue from the parent's
state, independently.
"""

from __future__ import annotations

import copy
import math
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from gymnasium import spaces

from forkgym.description import ActionRow, BackendDescription, ReplayCommand, SpaceRow, describe
from forkgym.errors import InvalidAction, InvalidRequest

INT64_MIN = np.iinfo(np.int64).min
INT64_MAX = np.iinfo(np.int64).max
# The upper bound of an int64 space with none: one less than the largest
# int64, because gymnasium samples integers from [low, high + 1).
INT64_HIGH = INT64_MAX - 1


# --------------------------------------------------------------- actions --


class ActionSpace(spaces.Discrete):
    """A backend's actions as ``Discrete(n)``, with their names.

    Actions with no effect on this build (``unavailable``) stay in the space so
    indices line up with the backend's table; test-only fault-injection
    actions (test builds) lie past ``n``: the env accepts them but sampling
    never draws them. A command line is the backend's replay command
    (:class:`forkgym.description.ReplayCommand`), which :meth:`from_string`
    reads back; a backend whose env has a class of its own may write its own.
    """

    def __init__(self, actions: Sequence[ActionRow], name: str = "Commandline", seed: Any = None,
                 replay: ReplayCommand | None = None) -> None:
        public = [a for a in actions if not a.test_only]
        super().__init__(len(public), seed=seed)
        self.name = name
        self.rows: tuple[ActionRow, ...] = tuple(actions)
        self.replay = replay or ReplayCommand()
        self.flags: list[str] = [a.name for a in actions]
        self.descriptions: list[str] = [a.description for a in actions]
        self.unavailable: dict[int, str] = {
            i: a.unavailable_reason for i, a in enumerate(actions) if a.unavailable_reason
        }
        self.test_only: frozenset[int] = frozenset(i for i, a in enumerate(actions) if a.test_only)
        self._by_flag: dict[str, int] = {}
        for i, flag in enumerate(self.flags):
            self._by_flag.setdefault(flag, i)
            self._by_flag.setdefault(flag.lstrip("-"), i)
        self._by_replay: dict[str, int] = {}
        for i, action in enumerate(actions):
            if action.replay and i not in self.unavailable:
                self._by_replay.setdefault(action.replay, i)
        separator = self.replay.separator
        self._max_pieces = max((len(r.split(separator)) if separator else 1 for r in self._by_replay), default=1)

    @property
    def names(self) -> list[str]:
        """The name of every action in the space (LLVM: its flag, ``"-mem2reg"``)."""
        return self.flags[: self.n]

    def for_env(self, rng_from: ActionSpace | None = None) -> ActionSpace:
        """This space for one env: the tables shared, the random number generator
        its own (a copy of ``rng_from``'s, as ``copy.deepcopy`` would make)."""
        return private_space(self, rng_from)

    def index(self, flag: str) -> int:
        """The index of an action by name (``"-mem2reg"`` or ``"mem2reg"``)."""
        try:
            return self._by_flag[flag]
        except KeyError:
            raise InvalidAction(f"unknown action '{flag}'; see env.action_space.names") from None

    def check(self, action: int) -> int:
        """Validates one action index, raising InvalidAction with the valid range."""
        try:
            index = int(action)
        except (TypeError, ValueError):
            raise InvalidAction(f"action {action!r} is not an integer index into env.action_space") from None
        if not 0 <= index < len(self.flags):
            raise InvalidAction(f"action {index} is not in the action space; valid actions are 0..{self.n - 1}")
        return index

    def to_string(self, actions: Iterable[int]) -> str:
        """The backend's replay command line of ``actions`` (as the server writes
        it in reproducers); actions without replay text are left out."""
        texts = [self.rows[self.check(a)].replay for a in actions]
        joined = self.replay.separator.join(t for t in texts if t)
        line = _shell_quoted(self.replay.program)
        if joined:
            line += self.replay.actions_prefix + joined + self.replay.actions_suffix
        return line + self.replay.tail

    def from_string(self, commandline: str) -> list[int]:
        """The actions of a command line :meth:`to_string` wrote."""
        replay = self.replay
        text = commandline.strip()
        program = _shell_quoted(replay.program)
        if not text.startswith(program):
            raise InvalidAction(f"'{commandline}' is not a {self.name} command line: it should start with "
                                f"'{program}' (see env.commandline())")
        text = text[len(program):]
        if replay.tail.strip() and text.endswith(replay.tail.rstrip()):
            text = text[: len(text) - len(replay.tail.rstrip())]
        if not text.strip():
            return []
        if not (text.startswith(replay.actions_prefix) and text.endswith(replay.actions_suffix)):
            raise InvalidAction(f"'{commandline}' is not a {self.name} command line (see env.commandline())")
        text = text[len(replay.actions_prefix): len(text) - len(replay.actions_suffix)]
        pieces = text.split(replay.separator) if replay.separator else [text]
        actions: list[int] = []
        i = 0
        while i < len(pieces):
            # The longest run of pieces that is one action's text: a replay
            # text may itself hold the separator.
            for width in range(min(self._max_pieces, len(pieces) - i), 0, -1):
                index = self._by_replay.get(replay.separator.join(pieces[i: i + width]))
                if index is not None:
                    actions.append(index)
                    i += width
                    break
            else:
                raise InvalidAction(f"'{pieces[i]}' in '{commandline}' is not the replay text of any action")
        return actions


def _shell_quoted(word: str) -> str:
    """A word as the server quotes it in command lines (client/connection.cc)."""
    if word and all(c in _PLAIN for c in word):
        return word
    return "'" + word.replace("'", "'\\''") + "'"


_PLAIN = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/._-+=:,@")


# ----------------------------------------------------------- value spaces --


class Scalar(spaces.Box):
    """A number: ``Box`` of shape ``()`` that also contains plain Python numbers
    (as observations return them) without gymnasium's casting warning."""

    def contains(self, x: Any) -> bool:
        if isinstance(x, (bool, np.bool_)):
            return False
        if isinstance(x, (int, float, np.integer, np.floating)):
            if np.issubdtype(self.dtype, np.integer) and not isinstance(x, (int, np.integer)):
                return False
            return bool(self.low <= x <= self.high)
        return super().contains(x)


class TextSpace(spaces.Text):
    """Text of any content (IR, assembly, a source file). ``contains`` is a
    C-speed check and ``sample`` stays small, because real values run to
    megabytes."""

    _CHARSET = "".join(chr(c) for c in range(32, 127)) + "\t\n"

    def __init__(self, max_length: int = 1 << 30, min_length: int = 0, charset: str | None = None) -> None:
        super().__init__(max_length=max_length, min_length=min_length, charset=charset or self._CHARSET)

    def contains(self, x: Any) -> bool:
        return isinstance(x, str) and self.min_length <= len(x) <= self.max_length

    def sample(self, mask: Any = None, probability: Any = None) -> str:
        low = self.min_length
        length = int(self.np_random.integers(low, max(low, min(self.max_length, 256)) + 1))
        return "".join(self.np_random.choice(list(self.character_list), size=length))


IrText = TextSpace  # the name LLVM's text spaces had


class ByteArray(spaces.Space):
    """A variable-length ``int8`` array (``Bitcode``, an object file): gymnasium
    has no built-in space for a byte string of unknown length."""

    def __init__(self, seed: int | None = None) -> None:
        super().__init__(shape=None, dtype=np.int8, seed=seed)

    @property
    def is_np_flattenable(self) -> bool:
        return False

    def contains(self, x: Any) -> bool:
        return isinstance(x, np.ndarray) and x.dtype == np.int8 and x.ndim == 1

    def sample(self, mask: Any = None, probability: Any = None) -> np.ndarray:
        return self.np_random.integers(-128, 128, size=int(self.np_random.integers(0, 64)), dtype=np.int8)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ByteArray)

    def __repr__(self) -> str:
        return "ByteArray()"


class NumberArray(spaces.Space):
    """A 1-D array of any length (an ``int64List`` or ``float64List`` whose
    size depends on the program), each element within ``[low, high]``."""

    def __init__(self, dtype: Any, low: float, high: float, seed: int | None = None) -> None:
        super().__init__(shape=None, dtype=dtype, seed=seed)
        self.low, self.high = low, high

    @property
    def is_np_flattenable(self) -> bool:
        return False

    def contains(self, x: Any) -> bool:
        return (isinstance(x, np.ndarray) and x.dtype == self.dtype and x.ndim == 1
                and bool(np.all(x >= self.low)) and bool(np.all(x <= self.high)))

    def sample(self, mask: Any = None, probability: Any = None) -> np.ndarray:
        size = int(self.np_random.integers(0, 16))
        low, high = max(self.low, -1e6), min(self.high, 1e6)
        if np.issubdtype(self.dtype, np.integer):
            return self.np_random.integers(int(low), int(high) + 1, size=size).astype(self.dtype)
        return self.np_random.uniform(low, high, size=size).astype(self.dtype)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, NumberArray) and other.dtype == self.dtype
                and other.low == self.low and other.high == self.high)

    def __repr__(self) -> str:
        return f"NumberArray({self.dtype}, low={self.low}, high={self.high})"


class Int64Map(spaces.Space):
    """A ``dict`` from names to ``int`` counts (an ``int64Map``, e.g. gcc's
    instruction counts). With ``keys``, every name is one of them."""

    def __init__(self, keys: Sequence[str] = (), low: float = INT64_MIN, high: float = INT64_MAX,
                 seed: int | None = None) -> None:
        super().__init__(shape=None, dtype=None, seed=seed)
        self.keys = tuple(keys)
        self._key_set = frozenset(keys)
        self.low, self.high = low, high

    @property
    def is_np_flattenable(self) -> bool:
        return False

    def contains(self, x: Any) -> bool:
        if not isinstance(x, dict):
            return False
        for key, value in x.items():
            if not isinstance(key, str) or (self._key_set and key not in self._key_set):
                return False
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
                return False
            if not self.low <= value <= self.high:
                return False
        return True

    def sample(self, mask: Any = None, probability: Any = None) -> dict[str, int]:
        keys = self.keys or tuple(f"key{i}" for i in range(8))
        chosen = [k for k in keys if self.np_random.integers(0, 2)]
        low, high = int(max(self.low, 0)), int(min(self.high, 1000))
        return {k: int(self.np_random.integers(low, high + 1)) for k in chosen}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Int64Map) and other.keys == self.keys and (other.low, other.high) == (self.low, self.high)

    def __repr__(self) -> str:
        return f"Int64Map({len(self.keys)} keys)" if self.keys else "Int64Map()"


class NoObservation(spaces.Space):
    """The observation space of an env with no observation selected (``llvm-v0``,
    ``llvm-ic-v0``): the only observation is ``None``, as in CompilerGym."""

    def __init__(self, seed: int | None = None) -> None:
        super().__init__(shape=None, dtype=None, seed=seed)
        self.name = None

    @property
    def is_np_flattenable(self) -> bool:
        return False

    def contains(self, x: Any) -> bool:
        return x is None

    def sample(self, mask: Any = None, probability: Any = None) -> None:
        return None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NoObservation)

    def __repr__(self) -> str:
        return "NoObservation()"


def _int_bound(value: float, default: int) -> int:
    return default if math.isinf(value) else int(value)


def _sized(row: SpaceRow) -> bool:
    return bool(row.shape) and all(n >= 0 for n in row.shape)


def _int64(row: SpaceRow) -> tuple[spaces.Space, Any]:
    return Scalar(_int_bound(row.low, INT64_MIN), _int_bound(row.high, INT64_HIGH), shape=(), dtype=np.int64), 0


def _int64_list(row: SpaceRow) -> tuple[spaces.Space, Any]:
    low, high = _int_bound(row.low, INT64_MIN), _int_bound(row.high, INT64_HIGH)
    if not _sized(row):
        return NumberArray(np.int64, low, high), np.zeros(0, dtype=np.int64)
    return spaces.Box(low, high, shape=row.shape, dtype=np.int64), np.zeros(row.shape, dtype=np.int64)


def _float64(row: SpaceRow) -> tuple[spaces.Space, Any]:
    return Scalar(row.low, row.high, shape=(), dtype=np.float64), 0.0


def _float64_list(row: SpaceRow) -> tuple[spaces.Space, Any]:
    if not _sized(row):
        return NumberArray(np.float64, row.low, row.high), np.zeros(0, dtype=np.float64)
    return spaces.Box(row.low, row.high, shape=row.shape, dtype=np.float64), np.zeros(row.shape, dtype=np.float64)


def _text(row: SpaceRow) -> tuple[spaces.Space, Any]:
    if _sized(row) and len(row.shape) == 1:  # text of a fixed length (a hash)
        return TextSpace(max_length=row.shape[0], min_length=row.shape[0]), ""
    return TextSpace(), ""


def _int64_map(row: SpaceRow) -> tuple[spaces.Space, Any]:
    return Int64Map(row.feature_names, _int_bound(row.low, INT64_MIN), _int_bound(row.high, INT64_HIGH)), {}


# Value type -> (space, value a truncated step returns) for one row.
VALUE_TYPE_SPACES: dict[str, Callable[[SpaceRow], tuple[spaces.Space, Any]]] = {
    "int64": _int64,
    "int64List": _int64_list,
    "text": _text,
    "bytes": lambda row: (ByteArray(), np.zeros(0, dtype=np.int8)),
    "boolean": lambda row: (spaces.Discrete(2), False),
    "float64": _float64,
    "float64List": _float64_list,
    "int64Map": _int64_map,
}


# ------------------------------------------------------------ space specs --


@dataclass(frozen=True)
class ObservationSpaceSpec:
    """One named observation: its gymnasium space, which server observation it is
    computed from, and how (``translate``). ``default_value`` is what a truncated
    step returns after a crash."""

    id: str
    space: spaces.Space
    native: str
    translate: Callable[[Any], Any] = lambda value: value
    deterministic: bool = True
    platform_dependent: bool = False
    default_value: Any = None
    description: str = ""
    feature_names: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.id

    def default(self) -> Any:
        value = self.default_value
        return value.copy() if isinstance(value, np.ndarray) else (dict(value) if isinstance(value, dict) else value)

    def __str__(self) -> str:
        return self.id


@dataclass(frozen=True)
class RewardSpaceSpec:
    """One named reward (``IrInstructionCountOz``...). On a crash the env returns
    ``reward_on_error(episode_reward)``: minus the return so far."""

    name: str
    deterministic: bool = True
    platform_dependent: bool = False
    range: tuple[float, float] = (-math.inf, math.inf)
    description: str = ""

    @property
    def id(self) -> str:
        return self.name

    def reward_on_error(self, episode_reward: float) -> float:
        return -episode_reward

    def __str__(self) -> str:
        return self.name


def observation_spec(row: SpaceRow) -> ObservationSpaceSpec:
    """The spec of one described observation, its space chosen by value type."""
    space, default = VALUE_TYPE_SPACES[row.type](row)
    return ObservationSpaceSpec(
        row.name, space, row.name, deterministic=row.deterministic, platform_dependent=row.platform_dependent,
        default_value=default, description=row.description, feature_names=row.feature_names,
    )


def build_observation_specs(description: BackendDescription) -> dict[str, ObservationSpaceSpec]:
    """One spec per observation the backend describes."""
    return {row.name: observation_spec(row) for row in description.observations}


def build_reward_specs(description: BackendDescription) -> dict[str, RewardSpaceSpec]:
    return {
        row.name: RewardSpaceSpec(row.name, deterministic=row.deterministic, platform_dependent=row.platform_dependent,
                                  range=(row.low, row.high), description=row.description)
        for row in description.rewards
    }


def lookup(table: Mapping[str, Any], name: str, kind: str) -> Any:
    """``table[name]`` with an error that lists the valid names."""
    try:
        return table[name]
    except KeyError:
        raise InvalidRequest(f"unknown {kind} space '{name}'; valid names: {', '.join(sorted(table))}") from None


# ------------------------------------------------------ per-env copies --


def _children(space: spaces.Space) -> list[tuple[str, Any]]:
    """The attributes of a composite space that hold spaces (Dict's and Tuple's
    ``spaces``, Sequence's ``feature_space``, Graph's ``node_space``...)."""
    found = []
    for name, value in vars(space).items():
        if isinstance(value, spaces.Space):
            found.append((name, value))
        elif isinstance(value, (dict, tuple)) and value and all(
                isinstance(v, spaces.Space) for v in (value.values() if isinstance(value, dict) else value)):
            found.append((name, value))
    return found


def private_space(prototype: spaces.Space, rng_from: spaces.Space | None = None) -> spaces.Space:
    """``prototype`` for one env: a shallow copy sharing every table and bounds
    array, with random number generators of its own (in every subspace). With
    ``rng_from`` (the same space of another env: a fork's parent), each
    generator starts as a copy of the corresponding one there, as
    ``copy.deepcopy`` would make it; otherwise it is made on first use."""
    mine = copy.copy(prototype)
    generator = getattr(rng_from, "_np_random", None)
    mine._np_random = copy.deepcopy(generator) if generator is not None else None
    for name, value in _children(prototype):
        theirs = getattr(rng_from, name, None)
        if isinstance(value, spaces.Space):
            setattr(mine, name, private_space(value, theirs))
        elif isinstance(value, dict):
            setattr(mine, name, {k: private_space(v, theirs.get(k) if isinstance(theirs, dict) else None)
                                 for k, v in value.items()})
        else:
            setattr(mine, name, tuple(private_space(v, theirs[i] if isinstance(theirs, tuple) else None)
                                      for i, v in enumerate(value)))
    return mine


def rng_used(space: spaces.Space) -> bool:
    """True once any generator of ``space`` (or of a subspace) exists: seeded, or sampled from."""
    if getattr(space, "_np_random", None) is not None:
        return True
    for _, value in _children(space):
        members = [value] if isinstance(value, spaces.Space) else list(
            value.values() if isinstance(value, dict) else value)
        if any(rng_used(member) for member in members):
            return True
    return False


def freeze(space: spaces.Space) -> None:
    """Makes a prototype's arrays (a Box's bounds) read-only, in every subspace:
    every env's copy shares them, so a write would change them all."""
    for value in vars(space).values():
        if isinstance(value, np.ndarray):
            value.flags.writeable = False
    for _, value in _children(space):
        for member in [value] if isinstance(value, spaces.Space) else list(
                value.values() if isinstance(value, dict) else value):
            freeze(member)


# ------------------------------------------------------------ shared cache --


@dataclass(frozen=True)
class Spaces:
    """Every space of one backend for one env class, shared by all its envs.

    ``action_space`` is a prototype: each env takes ``action_space.for_env()``.
    """

    description: BackendDescription
    action_space: ActionSpace
    observations: Mapping[str, ObservationSpaceSpec]
    rewards: Mapping[str, RewardSpaceSpec]
    no_observation: NoObservation = field(default_factory=NoObservation)
    # Backend data an env class asks the server for once per description
    # (gcc's spec), kept beside the spaces.
    extras: dict[str, Any] = field(default_factory=dict, compare=False)


# How an env class turns a description into its spaces (CompilerEnv.build_spaces).
SpacesBuilder = Callable[[BackendDescription], Spaces]

_lock = threading.Lock()
# (builder, description) -> Spaces, for the whole process: servers with the
# same description (several zygotes, a renewed one) share one set.
_built: dict[tuple[SpacesBuilder, BackendDescription], Spaces] = {}
builds = 0  # Spaces built in this process (the tests read it: a fork must build none)


def spaces_for(server: Any, backend: str, build: SpacesBuilder) -> Spaces:
    """The shared spaces of ``backend`` on ``server`` for an env class's ``build``:
    described and built on first use, then reused by every env and fork (the
    server remembers them for as long as it keeps its connection)."""
    return server.per_connection(("spaces", build, backend), lambda connection: _shared(connection, backend, build))


def _shared(connection: Any, backend: str, build: SpacesBuilder) -> Spaces:
    global builds
    description = describe(connection, backend)
    with _lock:
        found = _built.get((build, description))
        if found is None:
            found = _built[(build, description)] = build(description)
            builds += 1
        return found


def _after_fork_in_child() -> None:
    global _lock
    _lock = threading.Lock()  # a parent's thread may have held it at fork()


os.register_at_fork(after_in_child=_after_fork_in_child)
