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

import collections
import copy
import json
import math
import os
import tempfile
import threading
from collections import abc
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
from gymnasium import spaces

from forkgym import program_graph
from forkgym.description import ActionRow, BackendDescription, ReplayCommand, SpaceRow, describe
from forkgym.errors import InvalidAction, InvalidRequest

INT64_MIN = np.iinfo(np.int64).min
INT64_MAX = np.iinfo(np.int64).max
# The upper bound of an int64 space with none: one less than the largest
# int64, because gymnasium samples integers from [low, high + 1).
INT64_HIGH = INT64_MAX - 1


# --------------------------------------------------------------- actions --


class NamedDiscrete(spaces.Discrete):
    """CompilerGym's ``NamedDiscrete``: ``Discrete(len(items))`` whose points
    have names, and which may have a name itself.

    >>> space = NamedDiscrete(["a", "b", "c"], name="letters")
    >>> space["b"], space.names[2], space.to_string([0, 2]), space.from_string(["c", "a"])
    (1, 'c', 'a c', [2, 0])

    ``space[name]`` and ``from_string`` raise ``ValueError`` for a name not
    in the space.
    """

    def __init__(self, items: Iterable[str], name: str | None = None, seed: Any = None) -> None:
        self.names = [str(x) for x in items]
        super().__init__(len(self.names), seed=seed)
        self.name = name

    def __getitem__(self, name: str) -> int:
        """The index of the point named ``name``."""
        return self._index_of(name)

    def _index_of(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise ValueError(f"'{name}' is not a name in the space {self.name or ''}; see .names") from None

    def to_string(self, values: int | Iterable[int]) -> str:
        """The name of one point, or the names of several joined by spaces."""
        if isinstance(values, (int, np.integer)):
            return self.names[int(values)]
        return " ".join(self.names[int(v)] for v in values)

    def from_string(self, values: str | Iterable[str]) -> int | list[int]:
        """The index of one name, or the indices of several."""
        if isinstance(values, str):
            return self._index_of(values)
        return [self._index_of(v) for v in values]

    def __repr__(self) -> str:
        return f"NamedDiscrete([{', '.join(self.names)}])"


class CommandlineFlag(NamedTuple):
    """One flag of a :class:`Commandline` space."""

    name: str  # e.g. "LoopUnroll"
    flag: str  # e.g. "--unroll"
    description: str


class Commandline(NamedDiscrete):
    """CompilerGym's ``Commandline``: a :class:`NamedDiscrete` whose points are
    command-line flags (the names are the flags).

    >>> space = Commandline([CommandlineFlag("a", "-a", "A flag"), CommandlineFlag("b", "-b", "Another")])
    >>> space["-b"], space.flags[0], space.descriptions[1], space.to_string([0, 1]), space.from_string("-b -a")
    (1, '-a', 'Another', '-a -b', [1, 0])

    ``from_string`` raises ``LookupError`` for an unknown flag. A backend's
    action space (:class:`ActionSpace`) is one, whose ``to_string`` writes the
    backend's replay command line instead.
    """

    def __init__(self, items: Iterable[CommandlineFlag], name: str | None = None, seed: Any = None) -> None:
        items = list(items)
        self.flags = [f.flag for f in items]
        self.descriptions = [f.description for f in items]
        super().__init__(self.flags, name, seed=seed)

    def to_string(self, values: int | Iterable[int]) -> str:
        """The flags of ``values`` joined by spaces."""
        if isinstance(values, (int, np.integer)):
            return self.flags[int(values)]
        return " ".join(self.flags[int(v)] for v in values)

    commandline = to_string  # CompilerGym's earlier name

    def from_string(self, commandline: str) -> list[int]:  # type: ignore[override]
        """The indices of the flags of a command line ``to_string`` wrote."""
        values = []
        for flag in commandline.split():
            try:
                values.append(self.flags.index(flag))
            except ValueError:
                raise LookupError(f"unknown flag '{flag}'; see .flags") from None
        return values

    from_commandline = from_string

    def __repr__(self) -> str:
        return f"Commandline([{' '.join(self.flags)}])"



class ActionSpace(Commandline):
    """A backend's actions as ``Discrete(n)``, with their names: a
    :class:`Commandline`, so ``space["-mem2reg"]`` is the index of an action.

    Actions with no effect on this build (``unavailable``) stay in the space so
    indices line up with the backend's table; test-only fault-injection
    actions (test builds) lie past ``n``: the env accepts them but sampling
    never draws them. A command line is the backend's replay command
    (:class:`forkgym.description.ReplayCommand`), which :meth:`from_string`
    reads back; a backend whose env has a class of its own may write its own.
    """

    def __init__(self, actions: abc.Sequence[ActionRow], name: str = "Commandline", seed: Any = None,
                 replay: ReplayCommand | None = None) -> None:
        public = [a for a in actions if not a.test_only]
        # Not Commandline's constructor: `names` is a view of the flags here.
        spaces.Discrete.__init__(self, len(public), seed=seed)
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

    def __getitem__(self, flag: str) -> int:
        """CompilerGym's lookup: ``env.action_space["-mem2reg"]`` is that action's
        index (InvalidAction, a ValueError, for an unknown name)."""
        return self.index(flag)

    def index(self, flag: str) -> int:
        """The index of an action by name (``"-mem2reg"`` or ``"mem2reg"``)."""
        try:
            return self._by_flag[flag]
        except (KeyError, TypeError):
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
    (as observations return them) without gymnasium's casting warning.

    Also CompilerGym's ``Scalar(name, min=None, max=None, dtype=np.float64)``
    (a first argument that is a name, or ``min``/``max`` keywords): ``None``
    bounds are none, ``dtype`` may be ``int`` or ``float``, and ``min``,
    ``max`` read back as given.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if (args and isinstance(args[0], str)) or {"name", "min", "max"} & kwargs.keys():
            self._init_compilergym(*args, **kwargs)
        else:
            super().__init__(*args, **kwargs)
            self.name = None

    def _init_compilergym(self, name: str | None = None, min: float | None = None, max: float | None = None,
                          dtype: Any = np.float64, seed: Any = None) -> None:
        dtype = np.dtype(np.int64 if dtype is int else np.float64 if dtype is float else dtype)
        integral = np.issubdtype(dtype, np.integer)
        low = min if min is not None else (np.iinfo(dtype).min if integral else -np.inf)
        high = max if max is not None else (np.iinfo(dtype).max - 1 if integral else np.inf)
        super().__init__(low, high, shape=(), dtype=dtype, seed=seed)
        self.name = name

    @property
    def min(self) -> float | None:
        """The lower bound (None: none)."""
        low = self.low.item()
        return None if low == -math.inf or (isinstance(low, int) and low <= INT64_MIN) else low

    @property
    def max(self) -> float | None:
        """The upper bound (None: none)."""
        high = self.high.item()
        return None if high == math.inf or (isinstance(high, int) and high >= INT64_HIGH) else high

    def contains(self, x: Any) -> bool:
        if isinstance(x, (bool, np.bool_)):
            return False
        if isinstance(x, (int, float, np.integer, np.floating)):
            if np.issubdtype(self.dtype, np.integer) and not isinstance(x, (int, np.integer)):
                return False
            return bool(self.low <= x <= self.high)
        # A 0-d array; never text ("5"), which gymnasium's Box would cast.
        return isinstance(x, np.ndarray) and super().contains(x)


class Sequence(spaces.Space):
    """CompilerGym's ``Sequence``: a sequence of values whose length lies in
    ``size_range`` (``(lower, upper)``, upper None: unbounded).

    For ``dtype`` ``str`` or ``bytes`` the whole value is of that type (text,
    a byte string); for an array, its dtype must be a subtype of ``dtype``;
    otherwise every element must be an instance of ``dtype`` (within
    ``scalar_range``, a :class:`Scalar`, when given). Unlike CompilerGym's,
    ``sample()`` gives a value the space contains where it can make one (text,
    bytes, numbers; an empty list of records), so gymnasium's checks of an
    env's spaces pass; it raises ``NotImplementedError`` otherwise.
    """

    def __init__(self, name: str | None = None, size_range: tuple[int, int | None] = (0, None), dtype: Any = bytes,
                 opaque_data_format: str | None = None, scalar_range: Scalar | None = None,
                 seed: Any = None) -> None:
        super().__init__(shape=None, dtype=None, seed=seed)
        self.name = name
        self.size_range = (int(size_range[0]), None if size_range[1] is None else int(size_range[1]))
        self.dtype = dtype
        self.opaque_data_format = opaque_data_format
        self.scalar_range = scalar_range

    @property
    def is_np_flattenable(self) -> bool:
        return False

    def contains(self, x: Any) -> bool:
        try:
            length = len(x)
        except TypeError:
            return False
        lower, upper = self.size_range
        if not lower <= length <= (math.inf if upper is None else upper):
            return False
        if self.dtype in (str, bytes):
            return isinstance(x, self.dtype)
        if isinstance(x, np.ndarray):
            return bool(np.issubdtype(x.dtype, self.dtype)) and (
                self.scalar_range is None or all(self.scalar_range.contains(v) for v in x.tolist()))
        if isinstance(x, (str, bytes)):
            return False
        for element in x:
            if not _is_of(element, self.dtype):
                return False
            if self.scalar_range is not None and not self.scalar_range.contains(element):
                return False
        return True

    def sample(self, mask: Any = None, probability: Any = None) -> Any:
        lower, upper = self.size_range
        length = int(self.np_random.integers(lower, max(lower, min(upper if upper is not None else 16, 16)) + 1))
        if self.dtype is str:
            return "".join(self.np_random.choice(list("abcdefghijklmnopqrstuvwxyz0123456789 "), size=length))
        if self.dtype is bytes:
            return self.np_random.integers(0, 256, size=length, dtype=np.uint8).tobytes()
        if self.scalar_range is not None:
            return [self.scalar_range.sample() for _ in range(length)]
        if self.dtype in (int, float) or (not isinstance(self.dtype, type) or issubclass(self.dtype, np.generic)):
            dtype = np.int64 if self.dtype is int else np.float64 if self.dtype is float else self.dtype
            if np.issubdtype(dtype, np.integer):
                return [int(v) for v in self.np_random.integers(0, 100, size=length)] if self.dtype is int \
                    else self.np_random.integers(0, 100, size=length).astype(dtype)
            values = self.np_random.uniform(0, 1, size=length)
            return [float(v) for v in values] if self.dtype is float else values.astype(dtype)
        if lower == 0:
            return []
        raise NotImplementedError(f"cannot sample a sequence of at least {lower} {self.dtype.__name__} values")

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Sequence) and other.name == self.name and other.size_range == self.size_range
                and other.dtype == self.dtype and other.opaque_data_format == self.opaque_data_format
                and other.scalar_range == self.scalar_range)

    def __repr__(self) -> str:
        upper = "inf" if self.size_range[1] is None else self.size_range[1]
        fmt = f" -> {self.opaque_data_format}" if self.opaque_data_format else ""
        return f"{getattr(self.dtype, '__name__', self.dtype)}_list<>[{self.size_range[0]},{upper}]){fmt}"


def _is_of(value: Any, dtype: Any) -> bool:
    """``value`` is of ``dtype`` (a Python type, or a numpy dtype its scalar type matches)."""
    if isinstance(dtype, type) and not issubclass(dtype, np.generic):
        if dtype is int:
            return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
        if dtype is float:
            return isinstance(value, (float, np.floating))
        return isinstance(value, dtype)
    return bool(np.issubdtype(type(value), dtype))


class _OpaqueSpace(spaces.Space):
    """A space of Python values with no shape or dtype (a document, a list of
    statements, a graph): gymnasium cannot flatten them. Subclasses say what
    they contain and sample; equal when of the same class."""

    def __init__(self, seed: int | None = None) -> None:
        super().__init__(shape=None, dtype=None, seed=seed)

    @property
    def is_np_flattenable(self) -> bool:
        return False

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class JsonValue(_OpaqueSpace):
    """A parsed JSON document (``CpuInfo``, ``LexedIr``): a ``dict`` or a ``list``."""

    def contains(self, x: Any) -> bool:
        return isinstance(x, (dict, list))

    def sample(self, mask: Any = None, probability: Any = None) -> dict[str, Any]:
        return {}


class ProgramGraphSpace(_OpaqueSpace):
    """The space of ``Programl``: any ``networkx.MultiDiGraph`` (CompilerGym's
    was an opaque ``json://networkx/MultiDiGraph`` sequence)."""

    def contains(self, x: Any) -> bool:
        import networkx as nx

        return isinstance(x, nx.MultiDiGraph)

    def sample(self, mask: Any = None, probability: Any = None) -> Any:
        return program_graph.empty_graph()


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
    size depends on the program), each element within ``[low, high]``. With
    ``columns``, a 2-D array of any number of rows of that many values each
    (``Inst2vec``: one 200-value row per statement)."""

    def __init__(self, dtype: Any, low: float, high: float, seed: int | None = None,
                 columns: int | None = None) -> None:
        super().__init__(shape=None, dtype=dtype, seed=seed)
        self.low, self.high = low, high
        self.columns = columns

    @property
    def is_np_flattenable(self) -> bool:
        return False

    def _row_shape(self) -> tuple[int, ...]:
        return () if self.columns is None else (self.columns,)

    def contains(self, x: Any) -> bool:
        return (isinstance(x, np.ndarray) and x.dtype == self.dtype and x.shape[1:] == self._row_shape()
                and x.ndim == 1 + len(self._row_shape())
                and bool(np.all(x >= self.low)) and bool(np.all(x <= self.high)))

    def sample(self, mask: Any = None, probability: Any = None) -> np.ndarray:
        size = (int(self.np_random.integers(0, 16)), *self._row_shape())
        low, high = max(self.low, -1e6), min(self.high, 1e6)
        if np.issubdtype(self.dtype, np.integer):
            return self.np_random.integers(int(low), int(high) + 1, size=size).astype(self.dtype)
        return self.np_random.uniform(low, high, size=size).astype(self.dtype)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, NumberArray) and other.dtype == self.dtype
                and other.low == self.low and other.high == self.high and other.columns == self.columns)

    def __repr__(self) -> str:
        columns = "" if self.columns is None else f", columns={self.columns}"
        return f"NumberArray({self.dtype}, low={self.low}, high={self.high}{columns})"


class TextList(_OpaqueSpace):
    """A ``list`` of ``str`` of any length (``Inst2vecPreprocessedText``: one
    statement each)."""

    def contains(self, x: Any) -> bool:
        return isinstance(x, list) and all(isinstance(s, str) for s in x)

    def sample(self, mask: Any = None, probability: Any = None) -> list[str]:
        return ["".join(self.np_random.choice(list("abcdefgh <>%="), size=8)) for _ in range(3)]


class Int64Map(spaces.Space):
    """A ``dict`` from names to ``int`` counts (an ``int64Map``, e.g. gcc's
    instruction counts). With ``keys``, every name is one of them."""

    def __init__(self, keys: abc.Sequence[str] = (), low: float = INT64_MIN, high: float = INT64_MAX,
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
    # Form "file": the value is bytes written to a new file whose name ends
    # with this suffix; the caller gets the path (see present()).
    file_suffix: str | None = None
    # Called before the request that computes the value: what translate needs
    # that may be missing (data to download) fails there, before the step.
    prepare: Callable[[], Any] | None = None

    @property
    def name(self) -> str:
        return self.id

    def present(self, value: Any, file_directory: str | os.PathLike[str] | None = None) -> Any:
        """The value as the caller sees it: ``translate(value)``, or for a file
        form, the path of a new file in ``file_directory`` (default: the system
        temporary directory) holding it, which the caller owns and deletes."""
        if self.file_suffix is None:
            return self.translate(value)
        return write_value_file(value, file_directory, self.file_suffix)

    def default(self) -> Any:
        value = self.default_value
        if callable(value):  # a fresh value each time (an empty graph)
            return value()
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


def _identity(value: Any) -> Any:
    return value


def write_value_file(value: Any, directory: str | os.PathLike[str] | None, suffix: str) -> str:
    """Writes bytes (an ``int8`` array, as ``Bytes`` values arrive) to a new
    file in ``directory`` (default: the system temporary directory) and returns
    its path; the caller owns the file. The worker cannot write outside its
    sandbox, so the client writes what the worker sent."""
    data = value.tobytes() if isinstance(value, np.ndarray) else bytes(value)
    directory = os.fspath(directory) if directory is not None else tempfile.gettempdir()
    if not os.path.isdir(directory):
        raise InvalidRequest(f"cannot write the observation's file to '{directory}': not a directory; "
                             "set env.observation.file_directory (or pass directory=) to one that exists")
    fd, path = tempfile.mkstemp(prefix="forkgym-", suffix=suffix, dir=directory)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    return path


def _as_float32(row: SpaceRow, space: spaces.Space, default: Any) -> tuple[spaces.Space, Any, Callable[[Any], Any]]:
    """``float32``: the float64 values the wire carries, narrowed (CompilerGym's dtype)."""
    if isinstance(space, spaces.Box):
        narrowed = spaces.Box(np.float32(row.low), np.float32(row.high), shape=space.shape, dtype=np.float32)
        return narrowed, default.astype(np.float32), lambda value: value.astype(np.float32)
    if isinstance(space, NumberArray):
        return NumberArray(np.float32, row.low, row.high), default.astype(np.float32), \
            lambda value: value.astype(np.float32)
    return Scalar(row.low, row.high, shape=(), dtype=np.float32), 0.0, lambda value: float(np.float32(value))


# What each ValueForm makes of (row, space by value type, its default, its
# translate, a record type): (space, default, translate, file suffix).
FormResult = tuple[spaces.Space, Any, Callable[[Any], Any], "str | None"]


def _feature_dict(row: SpaceRow, space: spaces.Space, default: Any, translate: Callable[[Any], Any],
                  record_type: Any) -> FormResult:
    keys = tuple(row.feature_names)
    if not isinstance(space, spaces.Box) or space.shape != (len(keys),):
        raise InvalidRequest(f"the server described '{row.name}' as a dict of a list that is not {len(keys)} long; "
                             "upgrade the forkgym package")
    integral = np.issubdtype(space.dtype, np.integer)
    python = int if integral else float

    def to_dict(value: Any) -> dict[str, Any]:
        return dict(zip(keys, map(python, translate(value).tolist())))

    members = {k: Scalar(space.low.flat[i], space.high.flat[i], shape=(), dtype=space.dtype)
               for i, k in enumerate(keys)}
    return spaces.Dict(members), {k: python(0) for k in keys}, to_dict, None


def _json(row: SpaceRow, space: spaces.Space, default: Any, translate: Callable[[Any], Any],
          record_type: Any) -> FormResult:
    return JsonValue(), {}, json.loads, None


def _records(row: SpaceRow, space: spaces.Space, default: Any, translate: Callable[[Any], Any],
             record_type: Any) -> FormResult:
    record = record_type or collections.namedtuple(f"{row.name}Record", row.feature_names)

    def to_records(value: str) -> list[Any]:
        return [record(*fields) for fields in json.loads(value)]

    return Sequence(row.name, dtype=record), [], to_records, None


def _file(row: SpaceRow, space: spaces.Space, default: Any, translate: Callable[[Any], Any],
          record_type: Any) -> FormResult:
    return Sequence(row.name, size_range=(0, 4096), dtype=str), "", _identity, row.file_suffix


def _program_graph(row: SpaceRow, space: spaces.Space, default: Any, translate: Callable[[Any], Any],
                   record_type: Any) -> FormResult:
    return ProgramGraphSpace(), program_graph.empty_graph, program_graph.to_networkx, None


def _program_graph_node_link(row: SpaceRow, space: spaces.Space, default: Any, translate: Callable[[Any], Any],
                             record_type: Any) -> FormResult:
    return JsonValue(), program_graph.empty_node_link, program_graph.to_node_link, None


VALUE_FORMS: dict[str, Callable[..., FormResult]] = {
    "plain": lambda row, space, default, translate, record_type: (space, default, translate, None),
    "featureDict": _feature_dict,
    "json": _json,
    "records": _records,
    "file": _file,
    "programGraph": _program_graph,
    "programGraphNodeLink": _program_graph_node_link,
}


def _unknown_form(row: SpaceRow) -> Callable[[Any], Any]:
    def refuse(value: Any) -> Any:
        raise InvalidRequest(f"the server presents '{row.name}' in the form '{row.form}', which this client "
                             f"does not know (it knows {', '.join(VALUE_FORMS)}); upgrade the forkgym package")
    return refuse


def observation_spec(row: SpaceRow, record_type: Any = None) -> ObservationSpaceSpec:
    """The spec of one described observation: its space chosen by value type,
    then shaped by its form (a dict, parsed JSON, records, a file) and dtype.
    ``record_type``: the named tuple a ``records`` form makes (default: one
    named ``<name>Record`` with the row's feature names as fields)."""
    space, default = VALUE_TYPE_SPACES[row.type](row)
    translate: Callable[[Any], Any] = _identity
    if row.float32:
        space, default, translate = _as_float32(row, space, default)
    form = VALUE_FORMS.get(row.form)
    file_suffix = None
    if form is None:
        translate = _unknown_form(row)
    else:
        space, default, translate, file_suffix = form(row, space, default, translate, record_type)
    return ObservationSpaceSpec(
        row.name, space, row.name, translate=translate, deterministic=row.deterministic,
        platform_dependent=row.platform_dependent, default_value=default, description=row.description,
        feature_names=row.feature_names, file_suffix=file_suffix,
    )


def build_observation_specs(description: BackendDescription,
                            record_types: Mapping[str, Any] | None = None) -> dict[str, ObservationSpaceSpec]:
    """One spec per observation the backend describes (``record_types``: an env
    class's named tuples for its ``records`` observations, by name)."""
    record_types = record_types or {}
    return {row.name: observation_spec(row, record_types.get(row.name)) for row in description.observations}


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
