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

# The extension's names for the value types it knew before they were an enum.
_NATIVE_VALUE_TYPES = {"int64_list": "int64List", "bool": "boolean", "float64_list": "float64List",
                       "int64_map": "int64Map"}


@dataclass(frozen=True)
class ActionRow:
    """One action: its name (LLVM: the flag, ``-mem2reg``), what it does, and
    backend data (LLVM: the pass-pipeline text it runs)."""

    name: str
    description: str = ""
    pipeline: str = ""
    unavailable_reason: str = ""  # non-empty: a no-op kept so indices line up
    test_only: bool = False  # test builds' fault-injection actions, past the public space


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


@dataclass(frozen=True)
class BackendDescription:
    """Everything the client knows about one backend, as hashable data."""

    backend: str
    version: str
    action_space_name: str
    actions: tuple[ActionRow, ...]
    observations: tuple[SpaceRow, ...]
    rewards: tuple[SpaceRow, ...]
    # Backend data from the hello (LLVM: the server's opt), e.g. {"optPath": ...}.
    properties: tuple[tuple[str, str], ...] = ()

    def property(self, key: str, default: str = "") -> str:
        return dict(self.properties).get(key, default)


def _value_type(native: Any) -> str:
    name = native if isinstance(native, str) else getattr(native, "name", str(native))
    name = _NATIVE_VALUE_TYPES.get(name, name)
    if name not in VALUE_TYPES:
        raise InvalidRequest(f"the server described a space of value type '{name}', which this client does not "
                             f"know (it knows {', '.join(VALUE_TYPES)}); upgrade the forkgym package")
    return name


def _space_row(native: Any, feature_names: tuple[str, ...] = (), reward: bool = False) -> SpaceRow:
    if reward and not hasattr(native, "type"):
        kind = "float64"  # a reward is a float; rows without a type said nothing more
    else:
        kind = _value_type(getattr(native, "type", None) or native.value_type)
    shape = tuple(int(n) for n in getattr(native, "shape", ()) or ())
    if not shape and kind in ("int64List", "float64List"):
        length = int(getattr(native, "length", -1))
        shape = (length if length > 0 else -1,)
    low = float(getattr(native, "low", -math.inf))
    high = float(getattr(native, "high", math.inf))
    if not hasattr(native, "low") and kind in ("int64", "int64List") and not reward:
        low = 0.0  # counts and sizes, as every int64 space was before spaces had bounds
    return SpaceRow(
        name=native.name,
        type=kind,
        shape=shape,
        low=low,
        high=high,
        feature_names=tuple(getattr(native, "feature_names", ()) or feature_names),
        deterministic=bool(native.deterministic),
        platform_dependent=bool(native.platform_dependent),
        description=str(getattr(native, "description", "")),
    )


def _action_row(native: Any) -> ActionRow:
    return ActionRow(
        name=getattr(native, "name", "") or native.flag,
        description=native.description,
        pipeline=getattr(native, "replay", None) or getattr(native, "pipeline", ""),
        unavailable_reason=native.unavailable_reason,
        test_only=bool(native.test_only),
    )


def backend_names(server: Any) -> list[str]:
    """The backends a server's hello lists."""
    backends = getattr(server, "backends", None)
    return [b.name for b in backends] if backends is not None else ["llvm"]  # protocol 1: LLVM alone


def describe(connection: Any, backend: str) -> BackendDescription:
    """The description of ``backend`` on the server behind ``connection``.

    Raises InvalidRequest naming the server's backends when it has no such
    backend.
    """
    server = connection.server
    offered = backend_names(server)
    if backend not in offered:
        raise InvalidRequest(f"the server has no backend '{backend}'; its backends: {', '.join(offered)}")
    info = server.backend(backend) if hasattr(server, "backend") else None
    if info is not None:
        native = connection.describe(backend)
        version = native.version or info.version
        properties = tuple(sorted(dict(info.properties).items()))
        legacy_names: dict[str, tuple[str, ...]] = {}
    else:  # protocol 1: LLVM's facts at the top level, its named vectors description-wide
        native = connection.describe()
        version = str(server.llvm_version)
        properties = (("optPath", str(server.opt_path or "")),)
        legacy_names = {"InstCount": tuple(native.inst_count_names), "Autophase": tuple(native.autophase_names)}
    return BackendDescription(
        backend=backend,
        version=version,
        action_space_name=getattr(native, "action_space", "") or "Commandline",
        actions=tuple(_action_row(a) for a in native.actions),
        observations=tuple(_space_row(o, legacy_names.get(o.name, ())) for o in native.observations),
        rewards=tuple(_space_row(r, reward=True) for r in native.rewards),
        properties=properties,
    )
