"""``GccEnv``: gcc-v0, choosing gcc's command-line options, as CompilerGym had it.

A thin subclass of :class:`forkgym.envs.CompilerEnv`: the spaces come from
the ``gcc`` backend's description like any backend's; this adds
CompilerGym's gcc helpers. The state of an episode is one choice per option
of the installed gcc (``env.choices``, -1 meaning "not on the command
line"); actions move choices, and ``env.choices = [...]`` sets them all at
once (the server's ``choices`` parameter). The options themselves, read by
the server from gcc's own help, are ``env.gcc_spec``.

An episode's state (``env.state``) records gcc's command line, which is the
whole of the state: ``apply()``, ``validate()`` and pickling replay it as
choices, so a state reached by setting choices directly replays exactly.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from forkgym.benchmarks import DEFAULT_BENCHMARK
from forkgym.envs import CompilerEnv
from forkgym.errors import InvalidAction, InvalidRequest
from forkgym.spaces import RewardSpaceSpec
from forkgym.state import CompilerEnvState

# What gcc's command line holds besides the chosen options
# (`gcc <options> -w -c src.c -o obj.o`).
_FIXED_WORDS = {"-w", "-c", "-S", "src.c"}


@dataclass(frozen=True)
class GccOption:
    """One option of the installed gcc: ``len(option)`` choices, each one
    argument on the command line (choice -1: the option is absent)."""

    name: str  # CompilerGym's name: "-O", "-ftree-vectorize", "--param=max-unroll-times"
    kind: str  # optimization_level, flag, flag_enum, flag_int, param_enum, param_int
    size: int
    arguments: tuple[str, ...] = ()  # the argument of each choice, for enumerated options
    min: int = 0  # integer options: choice k is `<name>=<min + k>`
    max: int = 0

    def __len__(self) -> int:
        return self.size

    @property
    def is_integer(self) -> bool:
        return self.kind in ("flag_int", "param_int")

    def argument(self, choice: int) -> str:
        """The command-line argument of ``choice`` (0 <= choice < len(self))."""
        if not 0 <= choice < self.size:
            raise InvalidRequest(f"{self.name} has choices -1 (absent) to {self.size - 1}, not {choice}")
        return f"{self.name}={self.min + choice}" if self.is_integer else self.arguments[choice]


@dataclass(frozen=True)
class GccSpec:
    """The installed gcc the server runs, and its options in choice order."""

    gcc: str  # the binary the server runs
    version: str
    options: tuple[GccOption, ...]

    @classmethod
    def from_json(cls, text: str) -> GccSpec:
        data = json.loads(text)
        return cls(
            gcc=data["binary"],
            version=data["version"],
            options=tuple(
                GccOption(o["name"], o["kind"], int(o["size"]), tuple(o.get("choices", ())),
                          int(o.get("min", 0)), int(o.get("max", 0)))
                for o in data["options"]
            ),
        )

    def check_choices(self, choices: Sequence[int]) -> list[int]:
        """``choices`` as ints, or InvalidRequest saying which one is wrong."""
        try:
            values = [int(c) for c in choices]
        except (TypeError, ValueError):
            raise InvalidRequest(f"choices must be a list of {len(self.options)} integers, one per option of "
                                 "env.gcc_spec.options (-1 for absent)") from None
        if len(values) != len(self.options):
            raise InvalidRequest(f"got {len(values)} choices; gcc {self.version} has {len(self.options)} options "
                                 "(env.gcc_spec.options), one choice each (-1 for absent)")
        for index, (value, option) in enumerate(zip(values, self.options)):
            if not -1 <= value < option.size:
                raise InvalidRequest(f"choice {value} for option {index} ({option.name}) is out of range: it has "
                                     f"choices -1 (absent) to {option.size - 1}")
        return values

    def choices_from_command_line(self, command_line: str) -> list[int]:
        """The choices a gcc command line (as ``env.commandline()`` writes it) sets."""
        choices = [-1] * len(self.options)
        exact: dict[str, tuple[int, int]] = {}
        integer: dict[str, int] = {}
        for index, option in enumerate(self.options):
            if option.is_integer:
                integer[option.name] = index
            else:
                for choice, argument in enumerate(option.arguments):
                    exact.setdefault(argument, (index, choice))
        words = shlex.split(command_line)
        skip_next = False
        for position, word in enumerate(words):
            if position == 0 or skip_next or word in _FIXED_WORDS:
                skip_next = False
                continue
            if word == "-o":
                skip_next = True
                continue
            if word in exact:
                index, choice = exact[word]
            else:
                name, _, value = word.rpartition("=")
                index = integer.get(name, -1)
                if index < 0 or not value.lstrip("-").isdigit():
                    raise InvalidAction(f"'{word}' in the command line is not an option of gcc {self.version} "
                                        "(see env.gcc_spec.options)")
                option = self.options[index]
                choice = int(value) - option.min
                if not 0 <= choice < option.size:
                    raise InvalidAction(f"'{word}' is out of range: {option.name} takes {option.min} to {option.max}")
            choices[index] = choice
        return choices


def _whole_seconds(value: float | None) -> int | None:
    """A gcc time limit as the backend takes it: whole seconds, at least 1."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = 0.0
    if not seconds.is_integer() or seconds < 1:
        raise InvalidRequest(f"timeout must be a whole number of seconds from 1 (or None for the server's "
                             f"default), not {value!r}")
    return int(seconds)


class GccEnv(CompilerEnv):
    """gcc-v0: choose gcc's options for a C program, to make its code smaller.

    Arguments as :class:`CompilerEnv`'s, plus ``timeout``: seconds each gcc
    run may take (default: the server's, 60). ``gcc_bin`` (CompilerGym's
    choice of gcc) is not supported: the server runs its installed gcc.
    """

    backend = "gcc"
    default_benchmark = DEFAULT_BENCHMARK

    def __init__(self, *args: Any, timeout: float | None = None, gcc_bin: str | None = None, **kwargs: Any) -> None:
        if gcc_bin is not None:
            raise InvalidRequest("gcc_bin is not supported: forkgym's gcc-v0 runs the server's installed gcc "
                                 "(env.gcc_spec.gcc)")
        self._timeout = _whole_seconds(timeout)
        super().__init__(*args, **kwargs)
        self._init_kwargs["timeout"] = self._timeout

    def _on_episode_start(self) -> None:
        if self._timeout is not None:
            self._require_episode().set_parameter("timeout", str(self._timeout))

    # ---------------------------------------------------------- the spec --

    @property
    def gcc_spec(self) -> GccSpec:
        """The options of the gcc the server runs (asked once per description)."""
        return self._gcc_spec(None)

    def _gcc_spec(self, native: Any) -> GccSpec:
        """The spec, asked of ``native`` (a running session) or this env's episode
        the first time."""
        spec = self._spaces.extras.get("gcc_spec")
        if spec is None:
            text = native.set_parameter("gcc_spec", "") if native is not None else self.send_param("gcc_spec", "")
            spec = self._spaces.extras.setdefault("gcc_spec", GccSpec.from_json(text))
        return spec

    @property
    def timeout(self) -> float | None:
        """Seconds each gcc run may take (None: the server's default)."""
        return self._timeout

    @timeout.setter
    def timeout(self, seconds: float | None) -> None:
        whole = _whole_seconds(seconds)
        if self.in_episode:
            self.send_param("timeout", "" if whole is None else str(whole))
        self._timeout = whole
        self._init_kwargs["timeout"] = whole

    # ---------------------------------------------------------- choices --

    @property
    def choices(self) -> list[int]:
        """One choice per option of :attr:`gcc_spec` (-1: absent). Settable:
        ``env.choices = [...]`` moves the episode to that state (gcc compiles
        it; a combination gcc rejects raises and changes nothing)."""
        return [int(c) for c in self.observation["choices"]]

    @choices.setter
    def choices(self, choices: Sequence[int]) -> None:
        values = self.gcc_spec.check_choices(choices)
        self.send_param("choices", ",".join(map(str, values)))

    # ------------------------------------------------- CompilerGym's views --

    @property
    def source(self) -> str:
        """The benchmark's preprocessed C source, as gcc compiles it."""
        return self.observation["source"]

    @property
    def rtl(self) -> str:
        return self.observation["rtl"]

    @property
    def asm(self) -> str:
        return self.observation["asm"]

    @property
    def asm_size(self) -> int:
        return self.observation["asm_size"]

    @property
    def asm_hash(self) -> str:
        return self.observation["asm_hash"]

    @property
    def instruction_counts(self) -> dict[str, int]:
        return self.observation["instruction_counts"]

    @property
    def obj(self) -> bytes:
        return self.observation["obj"].tobytes()

    @property
    def obj_size(self) -> int:
        return self.observation["obj_size"]

    @property
    def obj_hash(self) -> str:
        return self.observation["obj_hash"]

    @property
    def obj_text_size(self) -> int:
        return self.observation["obj_text_size"]

    # ------------------------------------------------- state and replay --

    def commandline(self, actions: Iterable[int] | None = None) -> str:
        """gcc's command line for the current state: ``gcc <options> -w -c src.c -o obj.o``
        (run by hand on the benchmark's source, it writes the same object file)."""
        if actions is not None:
            raise InvalidRequest("gcc-v0's command line is the current state's (choices can also be set "
                                 "directly); call env.commandline() without actions")
        return self.observation["command_line"]

    def commandline_to_actions(self, commandline: str) -> list[int]:
        raise InvalidRequest("a gcc command line sets choices, not actions: use "
                             "env.gcc_spec.choices_from_command_line(...) and env.choices = ...")

    def _replay_in_episode(self, state: CompilerEnvState) -> None:
        self.choices = self.gcc_spec.choices_from_command_line(state.commandline)

    def _check_replayable(self, state: CompilerEnvState) -> None:
        """Checked once an episode can read the spec (in ``_replay_in_episode``)."""

    def _prepare_replay(self, native: Any, state: CompilerEnvState) -> list[int]:
        choices = self._gcc_spec(native).choices_from_command_line(state.commandline)
        native.set_parameter("choices", ",".join(map(str, choices)))
        return []

    def _episode_extras(self) -> dict[str, Any]:
        return {"choices": self.choices}

    def _restore_extras(self, extras: dict[str, Any]) -> None:
        if extras.get("choices") is not None and extras["choices"] != self.choices:
            self.choices = extras["choices"]

    @classmethod
    def validation_observations(cls, reward: RewardSpaceSpec | None) -> tuple[str | None, str | None, str | None]:
        cost = reward.name if reward is not None and reward.name in ("obj_size", "asm_size", "obj_text_size") \
            else "obj_size"
        return "obj_hash", cost, None
