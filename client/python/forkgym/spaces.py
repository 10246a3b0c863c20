"""Action, observation and reward spaces, built from the server's description.

The names, shapes and formulas are CompilerGym's (see the README); the
spaces are real gymnasium spaces so wrappers and vector envs work on them.
"""

from __future__ import annotations

import os
import shlex
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces

from forkgym.errors import InvalidAction, InvalidRequest

INT64_MAX = np.iinfo(np.int64).max
# What to_string() passes to opt besides the actions; from_string() skips it.
_OPT_OPTIONS = "-preserve-bc-uselistorder=false"


# --------------------------------------------------------------- actions --


class ActionSpace(spaces.Discrete):
    """CompilerGym's ``Commandline`` space: ``Discrete(124)`` over the LLVM flags.

    Indices and names match CompilerGym. Flags with no LLVM 19 equivalent stay
    in the space (so indices still line up) and are no-ops; their reason is
    in :attr:`unavailable`. Test-only fault-injection actions (test builds)
    lie past ``n``: the env accepts them but sampling never draws them.
    """

    def __init__(
        self, actions: Sequence[Any], seed: int | np.random.Generator | None = None, *, opt: str = "opt"
    ) -> None:
        public = [a for a in actions if not a.test_only]
        super().__init__(len(public), seed=seed)
        self.name = "Commandline"
        # The server's own opt by absolute path (its hello says which): another
        # LLVM's `opt` on PATH may misread LLVM 19 bitcode.
        self.opt = opt
        self.flags: list[str] = [a.flag for a in actions]
        self.pipelines: list[str] = [a.pipeline for a in actions]
        self.descriptions: list[str] = [a.description for a in actions]
        self.unavailable: dict[int, str] = {
            i: a.unavailable_reason for i, a in enumerate(actions) if a.unavailable_reason
        }
        self.test_only: frozenset[int] = frozenset(i for i, a in enumerate(actions) if a.test_only)
        self._by_flag = {}
        for i, flag in enumerate(self.flags):
            self._by_flag.setdefault(flag, i)
            self._by_flag.setdefault(flag.lstrip("-"), i)
        self._by_pipeline: dict[str, int] = {}
        for i, pipeline in enumerate(self.pipelines):
            if pipeline and i not in self.unavailable:
                self._by_pipeline.setdefault(pipeline, i)
        self._max_pieces = max((len(_split_pipeline(p)) for p in self._by_pipeline), default=1)

    @property
    def names(self) -> list[str]:
        """The flag of every action in the space, e.g. ``"-mem2reg"``."""
        return self.flags[: self.n]

    def __getstate__(self):  # np_random is reseeded on unpickle, as gymnasium does
        return super().__getstate__()

    def index(self, flag: str) -> int:
        """The index of a flag (``"-mem2reg"`` or ``"mem2reg"``)."""
        try:
            return self._by_flag[flag]
        except KeyError:
            raise InvalidAction(f"unknown action flag '{flag}'; see env.action_space.names") from None

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
        """A runnable command line of the server's ``opt`` replaying ``actions``
        (unavailable ones are no-ops), e.g.
        ``/usr/lib/llvm-19/bin/opt -passes='mem2reg,gvn' input.bc -o output.bc``."""
        pipelines = [self.pipelines[self.check(a)] for a in actions]
        passes = ",".join(p for p in pipelines if p)
        # Without use-list order, as IrSha1 hashes it: the output's sha1sum is
        # the episode's IrSha1.
        opt = f"{shlex.quote(self.opt)} {_OPT_OPTIONS}"
        if not passes:
            return f"{opt} input.bc -o output.bc"
        return f"{shlex.quote(self.opt)} -passes='{passes}' {_OPT_OPTIONS} input.bc -o output.bc"

    def to_flags(self, actions: Iterable[int]) -> str:
        """CompilerGym's form: ``opt -mem2reg -gvn input.bc -o output.bc`` (with the server's opt)."""
        flags = " ".join(self.flags[self.check(a)] for a in actions)
        opt = shlex.quote(self.opt)
        return f"{opt} {flags} input.bc -o output.bc" if flags else f"{opt} input.bc -o output.bc"

    def from_string(self, commandline: str) -> list[int]:
        """Actions from either :meth:`to_string`'s ``-passes=`` form or CompilerGym's flag form."""
        words = shlex.split(commandline)
        if words and os.path.basename(words[0]).startswith("opt"):
            words = words[1:]
        actions: list[int] = []
        for i, word in enumerate(words):
            if word.startswith("-passes=") or word.startswith("--passes="):
                actions.extend(self._parse_pipeline(word.split("=", 1)[1]))
            elif word == "-o" or (i > 0 and words[i - 1] == "-o") or word == _OPT_OPTIONS:
                continue
            elif word.startswith("-"):
                actions.append(self.index(word))
            # positional words are the input and output files
        return actions

    def _parse_pipeline(self, text: str) -> list[int]:
        pieces = _split_pipeline(text)
        actions: list[int] = []
        i = 0
        while i < len(pieces):
            for width in range(min(self._max_pieces, len(pieces) - i), 0, -1):
                index = self._by_pipeline.get(",".join(pieces[i : i + width]))
                if index is not None:
                    actions.append(index)
                    i += width
                    break
            else:
                raise InvalidAction(f"'{pieces[i]}' in -passes= is not the pipeline of any action")
        return actions


def _split_pipeline(text: str) -> list[str]:
    """Splits pass-pipeline text at top-level commas (nesting by () and <>)."""
    pieces, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "(<":
            depth += 1
        elif ch in ")>":
            depth -= 1
        elif ch == "," and depth == 0:
            pieces.append(text[start:i])
            start = i + 1
    if text[start:]:
        pieces.append(text[start:])
    return [p.strip() for p in pieces if p.strip()]


# ---------------------------------------------------------- observations --


class IrText(spaces.Text):
    """Textual IR: any ASCII text. ``contains`` is a C-speed check and ``sample``
    stays small, because real modules run to megabytes."""

    _CHARSET = "".join(chr(c) for c in range(32, 127)) + "\t\n"

    def __init__(self, max_length: int = 1 << 30) -> None:
        super().__init__(max_length=max_length, min_length=0, charset=self._CHARSET)

    def contains(self, x: Any) -> bool:
        return isinstance(x, str) and len(x) <= self.max_length and x.isascii()

    def sample(self, mask: Any = None, probability: Any = None) -> str:
        length = int(self.np_random.integers(0, 256))
        return "".join(self.np_random.choice(list(self._CHARSET), size=length))


class ByteArray(spaces.Space):
    """A variable-length ``int8`` array (``Bitcode``): gymnasium has no built-in
    space for a byte string of unknown length."""

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


@dataclass
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

    def default(self) -> Any:
        value = self.default_value
        return value.copy() if isinstance(value, np.ndarray) else (dict(value) if isinstance(value, dict) else value)


@dataclass
class RewardSpaceSpec:
    """One named reward (``IrInstructionCountOz``...). On a crash the env returns
    ``reward_on_error(episode_reward)``: minus the return so far."""

    name: str
    deterministic: bool = True
    platform_dependent: bool = False

    @property
    def id(self) -> str:
        return self.name

    def reward_on_error(self, episode_reward: float) -> float:
        return -episode_reward

    def __str__(self) -> str:
        return self.name


def _box_int(shape: tuple[int, ...]) -> spaces.Box:
    return spaces.Box(0, INT64_MAX, shape=shape, dtype=np.int64)


def _write_bitcode_file(bitcode: np.ndarray) -> str:
    """``BitcodeFile``: a file the caller owns and must delete."""
    fd, path = tempfile.mkstemp(prefix="forkgym-", suffix=".bc")
    with os.fdopen(fd, "wb") as out:
        out.write(bitcode.tobytes())
    return path


def build_observation_specs(description: Any) -> dict[str, ObservationSpaceSpec]:
    """Every observation the server offers, plus CompilerGym's derived views of
    them (dicts, normalised counts, a bitcode file), computed in Python."""
    specs: dict[str, ObservationSpaceSpec] = {}
    for d in description.observations:
        if d.value_type == "int64_list":
            space: spaces.Space = _box_int((d.length,))
            default: Any = np.zeros(d.length, dtype=np.int64)
        elif d.value_type == "text":
            if d.name == "IrSha1":
                space, default = spaces.Text(min_length=40, max_length=40, charset="0123456789abcdef"), ""
            else:
                space, default = IrText(), ""
        elif d.value_type == "bytes":
            space, default = ByteArray(), np.zeros(0, dtype=np.int8)
        elif d.value_type == "bool":
            space, default = spaces.Discrete(2), False
        else:
            space, default = _box_int(()), 0
        specs[d.name] = ObservationSpaceSpec(
            d.name, space, d.name, deterministic=d.deterministic, platform_dependent=d.platform_dependent,
            default_value=default,
        )

    if "InstCount" in specs:
        names = list(description.inst_count_names)
        keys = [f"{n}Count" for n in names]
        density = [f"{n}Density" for n in names[1:]]
        specs["InstCountDict"] = ObservationSpaceSpec(
            "InstCountDict", spaces.Dict({k: _box_int(()) for k in keys}), "InstCount",
            lambda v, keys=keys: {k: int(x) for k, x in zip(keys, v)},
            default_value={k: 0 for k in keys},
        )
        norm_space = spaces.Box(0.0, 1.0, shape=(len(names) - 1,), dtype=np.float32)
        specs["InstCountNorm"] = ObservationSpaceSpec(
            "InstCountNorm", norm_space, "InstCount", _inst_count_norm,
            default_value=np.zeros(len(names) - 1, dtype=np.float32),
        )
        specs["InstCountNormDict"] = ObservationSpaceSpec(
            "InstCountNormDict", spaces.Dict({k: spaces.Box(0.0, 1.0, shape=(), dtype=np.float32) for k in density}),
            "InstCount",
            lambda v, density=density: {k: float(x) for k, x in zip(density, _inst_count_norm(v))},
            default_value={k: 0.0 for k in density},
        )
    if "Autophase" in specs:
        names = list(description.autophase_names)
        specs["AutophaseDict"] = ObservationSpaceSpec(
            "AutophaseDict", spaces.Dict({k: _box_int(()) for k in names}), "Autophase",
            lambda v, names=names: {k: int(x) for k, x in zip(names, v)},
            default_value={k: 0 for k in names},
        )
    if "Bitcode" in specs:
        specs["BitcodeFile"] = ObservationSpaceSpec(
            "BitcodeFile", IrText(max_length=4096), "Bitcode", _write_bitcode_file, default_value=""
        )
    for spec in specs.values():
        spec.space.name = spec.id  # CompilerGym's spaces carry their name
    return specs


def _inst_count_norm(counts: np.ndarray) -> np.ndarray:
    return (counts[1:] / max(int(counts[0]), 1)).astype(np.float32)


def build_reward_specs(description: Any) -> dict[str, RewardSpaceSpec]:
    return {
        d.name: RewardSpaceSpec(d.name, deterministic=d.deterministic, platform_dependent=d.platform_dependent)
        for d in description.rewards
    }


def lookup(table: dict[str, Any], name: str, kind: str) -> Any:
    """``table[name]`` with an error that lists the valid names."""
    try:
        return table[name]
    except KeyError:
        raise InvalidRequest(f"unknown {kind} space '{name}'; valid names: {', '.join(sorted(table))}") from None


