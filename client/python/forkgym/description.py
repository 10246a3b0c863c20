"""A backend's description, read once from the server into plain Python rows.

The server describes each backend as data: its actions and, for every
observation and reward, a row (name, value type, shape, bounds, feature
names, flags). :func:`describe` turns the native description into frozen,
hashable rows, so a description can key the space cache
(:mod:`forkgym.spaces`) and every env of the backend builds its spaces from
rows alone, never from backend-specific fields.

Lifecycle: one :func:`describe` per (connection, backend), by the space
cache; rows are immutable and shared by every env and fork afterwards.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from forkgym.errors import InvalidRequest

# The value types of the protocol's ValueType enum, by their Python names.
VALUE_TYPES = ("int64", "int64List", "text", "bytes", "boolean", "float64", "float64List", "int64Map")



@dataclass(frozen=True)
class ActionRow:
    """One action: its name (LLVM: the flag, ``-mem2reg``), what it does, and
    backend data (LLVM: the pass-pipeline text it runs)."""

    name: str
    description: str = ""
    replay: str = ""  # what it adds to the replay command line (LLVM: its pass pipeline)
    unavailable_reason: str = ""  # non-empty: a no-op kept so indices line up
    test_only: bool = False  # test builds' fault-injection actions, past the public space


@dataclass(frozen=True)
class ReplayCommand:
    """How a backend writes an episode's replay command line: ``program``, then
    (if any action has replay text) ``actions_prefix``, the actions' replay
    texts joined by ``separator``, ``actions_suffix``; then ``tail``."""

    program: str = ""
    actions_prefix: str = ""
    separator: str = " "
    actions_suffix: str = ""
    tail: str = ""


@dataclass(frozen=True)
class SpaceRow:
    """One observation or reward space as data."""

    name: str
    type: str  # one of VALUE_TYPES
    shape: tuple[int, ...] = ()  # () for scalars and unsized values; -1 marks a dimension of any size
    low: float = -math.inf  # a Box's bounds, or a reward's range
    high: float = math.inf
    feature_names: tuple[str, ...] = ()  # one per element of a vector, or a map's keys
    deterministic: bool = True
    platform_dependent: bool = False
    description: str = ""
    needs_run_config: bool = False  # computed by running the program: runnable benchmarks only
    # How the client presents the value (the protocol's ValueForm): "plain",
    # "featureDict" (a dict keyed by feature_names), "json" (parsed),
    # "file" (written to a file the caller owns, its name ending in
    # file_suffix; the path), "records" (a list of named tuples whose
    # fields are feature_names), "programGraph" / "programGraphNodeLink"
    # (bytes holding a program graph, shown as a networkx MultiDiGraph / its
    # node-link document: forkgym.program_graph).
    form: str = "plain"
    float32: bool = False  # float64 values narrowed to float32 (CompilerGym's dtype)
    file_suffix: str = ""


@dataclass(frozen=True)
class BackendDescription:
    """Everything the client knows about one backend, as hashable data."""

    backend: str
    version: str
    action_space_name: str
    actions: tuple[ActionRow, ...]
    observations: tuple[SpaceRow, ...]
    rewards: tuple[SpaceRow, ...]
    replay: ReplayCommand = ReplayCommand()
    # Backend facts from the hello (LLVM: the server's opt), e.g. (("optPath", ...),).
    properties: tuple[tuple[str, str], ...] = ()
    description: str = ""

    def property(self, key: str, default: str = "") -> str:
        return dict(self.properties).get(key, default)


def _value_type(name: str) -> str:
    if name not in VALUE_TYPES:
        raise InvalidRequest(f"the server described a space of value type '{name}', which this client does not "
                             f"know (it knows {', '.join(VALUE_TYPES)}); upgrade the forkgym package")
    return name


def _space_row(native: Any) -> SpaceRow:
    kind = _value_type(native.type)
    shape = tuple(int(n) for n in native.shape)
    if not shape and kind in ("int64List", "float64List"):
        shape = (-1,)  # a list whose length depends on the program
    return SpaceRow(
        name=native.name,
        type=kind,
        shape=shape,
        low=float(native.low),
        high=float(native.high),
        feature_names=tuple(native.feature_names),
        deterministic=bool(native.deterministic),
        platform_dependent=bool(native.platform_dependent),
        description=str(native.description),
        needs_run_config=bool(native.needs_run_config),
        form=str(native.form),
        float32=bool(native.float32),
        file_suffix=str(native.file_suffix),
    )


def _action_row(native: Any) -> ActionRow:
    return ActionRow(
        name=native.flag,
        description=native.description,
        replay=native.replay,
        unavailable_reason=native.unavailable_reason,
        test_only=bool(native.test_only),
    )


def backend_names(server: Any) -> list[str]:
    """The backends a server's hello lists."""
    return [b.name for b in server.backends]


def describe(connection: Any, backend: str) -> BackendDescription:
    """The description of ``backend`` on the server behind ``connection``.

    Raises InvalidRequest naming the server's backends when it has no such
    backend, BackendUnavailable saying why when it could not start it (gcc-v0
    without gcc).
    """
    server = connection.server
    info = server.backend(backend)
    if info is None:
        # The hello lists the backends served; asked, the server raises
        # BackendUnavailable with why for one it could not start, and
        # InvalidRequest for one it never had (said here with its list).
        try:
            connection.describe(backend)
        except InvalidRequest:
            pass
        raise InvalidRequest(f"the server has no backend '{backend}'; its backends: "
                             f"{', '.join(backend_names(server))}")
    native = connection.describe(backend)
    replay = native.replay
    return BackendDescription(
        backend=backend,
        version=native.version or info.version,
        action_space_name=native.action_space,
        actions=tuple(_action_row(a) for a in native.actions),
        observations=tuple(_space_row(o) for o in native.observations),
        rewards=tuple(_space_row(r) for r in native.rewards),
        replay=ReplayCommand(replay.program, replay.actions_prefix, replay.separator, replay.actions_suffix,
                             replay.tail),
        properties=tuple(sorted(dict(info.properties).items())),
        description=str(native.description),
    )
