"""Ray RLlib: forkgym's environments by their plain ids in every env runner.

Usage (RLlib's new API stack)::

    import forkgym.rllib  # registers every forkgym id with RLlib (Ray's env registry)
    from ray.rllib.algorithms.ppo import PPOConfig

    config = PPOConfig().environment(
        "forkgym/llvm-autophase-ic-v0",  # or "llvm-autophase-ic-v0"
        env_config={"benchmarks": "cbench-v1", "max_episode_steps": 32},
    ).env_runners(num_env_runners=4, num_envs_per_env_runner=2)

Importing this module in the driver is all it takes: the registration is
stored in the cluster, and each env runner builds its envs with
:func:`make_env` (no creator of your own, no ``import forkgym`` in the
runners). What each env gets, from ``env_config`` (:data:`ENV_CONFIG`):

- **Observations for neural networks**: float32 by default (RLlib's torch
  models take float32; forkgym's Autophase and InstCount are int64), and
  with ``"normalize": True`` the Autophase and InstCount variants divided by
  the program's instruction count (InstCount as CompilerGym's InstCountNorm).
- **Benchmarks split across env runners**: ``"benchmarks"`` (a dataset, a
  benchmark URI, or a list of them) is dealt out by worker index and vector
  index, so the runners' envs train on different programs; each env cycles
  over its own share.
- **One zygote per node**: every env runner of a node connects to one
  ``forkgym-server`` on a node-local socket (:func:`node_socket_path`),
  started by the first runner, surviving runner restarts, exiting once no
  runner has used it for ``idle_exit_seconds``.
- **Fault tolerance**: a crashed, hung or killed compiler worker is a
  truncated episode (``info["outcome"]`` says why), never an exception in the
  env runner; a killed env runner is restarted by RLlib
  (``fault_tolerance(restart_failed_env_runners=True)``, the default) and
  connects to its node's zygote again.

Outside Ray, :func:`make_env` works in any process (its "node" is then the
machine). Ray keys its env registry by a driver process's first job: one
cluster per driver process (a second ``ray.init()`` there does not see the ids).
"""

from __future__ import annotations

import hashlib
import itertools
import os
import socket
import threading
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from functools import partial
from typing import Any

import gymnasium as gym
import numpy as np

import forkgym
from forkgym.errors import InvalidRequest
from forkgym.registration import ENV_TABLE, full_id
from forkgym.server import ServerOptions, default_socket_path

# env_config keys this module reads (every other key goes to forkgym.make:
# observation_space, reward_space, step_timeout, ...), with their defaults.
ENV_CONFIG: dict[str, Any] = {
    # A dataset ("cbench-v1", "benchmark://cbench-v1"), a benchmark URI, or a
    # list of either, dealt out across env runners and their sub-envs.
    # None: the id's default benchmark everywhere.
    "benchmarks": None,
    # At most this many benchmarks taken from each dataset (a generator
    # dataset, csmith-v0 or llvm-stress-v0, has no end).
    "max_benchmarks_per_dataset": 10_000,
    # Episodes end after this many steps (truncated); None: they never end
    # by themselves, as in CompilerGym.
    "max_episode_steps": None,
    # The observation's dtype ("float32", "float64"), or None to keep
    # forkgym's own (int64 for Autophase and InstCount).
    "observation_dtype": "float32",
    # Autophase and InstCount divided by the instruction count (float32).
    "normalize": False,
    # One zygote per node, on a node-local socket; False: one per process.
    "node_zygote": True,
    # Where node sockets are made (default: the directory of
    # forkgym.default_socket_path(), private to this user).
    "socket_dir": None,
    # A node's zygote exits after this long with no runner connected.
    "idle_exit_seconds": 30,
    # How many sub-envs each env runner has (RLlib does not tell an env):
    # set it to num_envs_per_env_runner to split benchmarks among sub-envs too.
    "num_envs_per_env_runner": 1,
    # The zygote's options (forkgym.ServerOptions fields: preload, cache_mb, ...).
    "server": None,
}


def _context(env_config: Mapping[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any], int, int]:
    """(this module's settings, the rest for forkgym.make, worker index, number of workers)."""
    given = dict(env_config or {})
    worker_index = int(getattr(env_config, "worker_index", 0) or 0)
    num_workers = int(getattr(env_config, "num_workers", 0) or 0)
    given.pop("num_envs", None)  # RLlib's vector entry point adds it
    ours = {key: given.pop(key, default) for key, default in ENV_CONFIG.items()}
    if ours["observation_dtype"] is not None:
        try:
            ours["observation_dtype"] = np.dtype(ours["observation_dtype"])
        except TypeError:
            raise InvalidRequest(f"env_config['observation_dtype']={ours['observation_dtype']!r} is not a numpy "
                                 "dtype; use 'float32' (RLlib's torch models), 'float64' or None") from None
    for key in ("max_benchmarks_per_dataset", "idle_exit_seconds", "num_envs_per_env_runner"):
        if not isinstance(ours[key], int) or ours[key] < 1:
            raise InvalidRequest(f"env_config['{key}'] must be a whole number >= 1, not {ours[key]!r}")
    return ours, given, worker_index, num_workers


# Envs made so far in this process, per (env id, worker index): the next
# env's vector index (RLlib gives every sub-env of a runner the same context).
_made: dict[tuple[str, int], int] = {}
_made_lock = threading.Lock()


def make_env(env_id: str, env_config: Mapping[str, Any] | None = None) -> gym.Env:
    """An env of ``env_id`` for RLlib (its env creator): ``env_config`` is
    RLlib's EnvContext (or any mapping) with the keys of :data:`ENV_CONFIG`
    and keyword arguments of :func:`forkgym.make`."""
    ours, make_kwargs, worker_index, num_workers = _context(env_config)
    with _made_lock:
        key = (full_id(env_id), worker_index)
        vector_index = _made.get(key, 0) % ours["num_envs_per_env_runner"]
        _made[key] = _made.get(key, 0) + 1
    if ours["node_zygote"]:
        make_kwargs["server"] = node_server_options(ours["server"], ours["socket_dir"], ours["idle_exit_seconds"])
    elif ours["server"] is not None:
        make_kwargs["server"] = ServerOptions(**ours["server"])
    try:
        env = forkgym.make(env_id, **make_kwargs)
    except TypeError as error:  # an unknown keyword
        raise InvalidRequest(f"env_config for {env_id}: {error}; forkgym.rllib reads {', '.join(ENV_CONFIG)}, "
                             "and passes the rest to forkgym.make") from None
    try:
        if ours["benchmarks"] is not None:
            slots = max(num_workers, 1) * ours["num_envs_per_env_runner"]
            slot = max(worker_index - 1, 0) * ours["num_envs_per_env_runner"] + vector_index
            share = partition(benchmark_list(env, ours["benchmarks"], ours["max_benchmarks_per_dataset"]),
                              slot, slots)
            env = CycleBenchmarks(env, share)
        if ours["normalize"]:
            env = NormalizedObservation(env)
        elif ours["observation_dtype"] is not None and env.unwrapped.observation_space_spec is not None:
            env = ObservationDtype(env, ours["observation_dtype"])
        if ours["max_episode_steps"] is not None:
            env = gym.wrappers.TimeLimit(env, int(ours["max_episode_steps"]))
    except BaseException:
        env.close()
        raise
    return env


def benchmark_list(env: gym.Env, benchmarks: str | Sequence[str], per_dataset: int) -> list[str]:
    """The benchmark URIs ``benchmarks`` names: each dataset's (at most
    ``per_dataset`` of them, in the dataset's order), each URI as is."""
    names = [benchmarks] if isinstance(benchmarks, str) else list(benchmarks)
    if not names or not all(isinstance(name, str) for name in names):
        raise InvalidRequest(f"env_config['benchmarks'] must be a dataset or benchmark URI, or a non-empty list "
                             f"of them, not {benchmarks!r}")
    datasets = env.unwrapped.datasets
    uris: list[str] = []
    for name in names:
        if is_dataset(datasets, name):
            found = list(itertools.islice(datasets[name].benchmark_uris(), per_dataset))
            if not found:
                raise InvalidRequest(f"dataset '{name}' has no benchmarks installed; install it "
                                     f"(python -m forkgym datasets install {name}) or name benchmark URIs")
            uris += found
        else:
            uris.append(name)
    return uris


def is_dataset(datasets: Any, name: str) -> bool:
    """Whether ``name`` is a dataset's name (with or without its scheme),
    not one of its benchmarks (which ``name in datasets`` also accepts)."""
    bare = name.rstrip("/")
    return name in datasets and datasets[name].name.rstrip("/") in (bare, f"benchmark://{bare}")


def partition(uris: Sequence[str], slot: int, slots: int) -> list[str]:
    """The share of ``uris`` of env number ``slot`` of ``slots``: every
    ``slots``-th, from ``slot`` on; with fewer benchmarks than envs, one
    benchmark, shared with the envs whose slot matches it modulo their count."""
    share = list(uris[slot::slots])
    return share or [uris[slot % len(uris)]]


def node_id() -> str:
    """This node's identity: Ray's node id inside a Ray worker or driver,
    else the host name (a machine is a node)."""
    try:
        import ray

        if ray.is_initialized():
            return "ray-" + ray.get_runtime_context().get_node_id()
    except ImportError:
        pass
    return "host-" + socket.gethostname()


def node_socket_path(options: ServerOptions | None = None, socket_dir: str | None = None,
                     node: str | None = None) -> str:
    """The socket of ``node``'s shared zygote (default: this node's) for
    these server options: one per node and per configuration, in
    ``socket_dir`` (default: the directory of
    :func:`forkgym.default_socket_path`, made private if missing)."""
    directory = socket_dir or os.path.dirname(default_socket_path())
    os.makedirs(directory, mode=0o700, exist_ok=True)
    configuration = repr(sorted(asdict(options or ServerOptions()).items()))
    digest = hashlib.sha256(f"{node or node_id()}\0{configuration}".encode()).hexdigest()[:16]
    return os.path.join(directory, f"node-{digest}.sock")


def node_server_options(server: Mapping[str, Any] | None = None, socket_dir: str | None = None,
                        idle_exit_seconds: int = 30) -> ServerOptions:
    """ServerOptions that share this node's zygote (see the module's docstring)."""
    try:
        base = ServerOptions(**dict(server or {}))
    except TypeError as error:
        raise InvalidRequest(f"env_config['server']: {error}; its keys are forkgym.ServerOptions fields") from None
    if base.socket_path or base.shared_socket:
        raise InvalidRequest("env_config['server'] names a socket, but node_zygote picks the node's own; "
                             "set node_zygote=False to use your socket")
    fields = {**asdict(base), "idle_exit_seconds": idle_exit_seconds}
    fields["shared_socket"] = node_socket_path(ServerOptions(**fields), socket_dir)
    return ServerOptions(**fields)


class CycleBenchmarks(gym.Wrapper):
    """Each reset moves to the next benchmark of a fixed list (this env's share)."""

    def __init__(self, env: gym.Env, benchmarks: Sequence[str]) -> None:
        super().__init__(env)
        self.benchmarks = list(benchmarks)
        self._next = itertools.cycle(self.benchmarks)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        self.env.unwrapped.benchmark = next(self._next)
        return self.env.reset(seed=seed, options=options)


class ObservationDtype(gym.ObservationWrapper):
    """A Box observation cast to ``dtype`` (RLlib's torch models need float32)."""

    def __init__(self, env: gym.Env, dtype: np.dtype) -> None:
        super().__init__(env)
        space = env.observation_space
        if not isinstance(space, gym.spaces.Box):
            raise InvalidRequest(f"observation_dtype applies to array observations; {space_name(env)} is {space}. "
                                 "Choose an array observation space (Autophase, InstCount...) or set "
                                 "observation_dtype=None")
        self.dtype = np.dtype(dtype)
        self.observation_space = gym.spaces.Box(space.low.astype(self.dtype), space.high.astype(self.dtype),
                                                space.shape, self.dtype)

    def observation(self, observation: Any) -> np.ndarray:
        return np.asarray(observation, dtype=self.dtype)


# The normalised variants: (observation space, feature counted by, features kept).
# InstCount's is CompilerGym's InstCountNorm (counts[1:] / max(counts[0], 1)).
NORMALIZED = {
    "Autophase": ("TotalInsts", slice(None)),
    "InstCount": ("TotalInsts", slice(1, None)),
}


class NormalizedObservation(gym.ObservationWrapper):
    """Autophase or InstCount divided by the program's instruction count, as float32."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        name = space_name(env)
        if name not in NORMALIZED:
            raise InvalidRequest(f"normalize applies to {' and '.join(NORMALIZED)}, not {name}; choose one with "
                                 "observation_space=... or set normalize=False")
        total, self.keep = NORMALIZED[name]
        names = list(env.unwrapped.observation_space_spec.feature_names)
        if total not in names:
            raise InvalidRequest(f"{name} has no {total} feature to normalise by (features: {names})")
        self.total = names.index(total)
        size = len(range(*self.keep.indices(len(names))))
        self.observation_space = gym.spaces.Box(0.0, np.inf, (size,), np.float32)

    def observation(self, observation: Any) -> np.ndarray:
        counts = np.asarray(observation, dtype=np.float64)
        return (counts[self.keep] / max(counts[self.total], 1.0)).astype(np.float32)


def space_name(env: gym.Env) -> str:
    spec = env.unwrapped.observation_space_spec
    return spec.id if spec is not None else "no observation space"


def register() -> None:
    """Registers every forkgym id (``forkgym/<id>`` and ``<id>``) with RLlib.
    Done on import; idempotent."""
    try:
        from ray.tune.registry import register_env
    except ImportError as error:
        raise ImportError(f"forkgym.rllib needs Ray RLlib and torch ({error}): "
                          "pip install 'ray[rllib]' torch") from error

    for env_id in ENV_TABLE:
        creator = partial(make_env, env_id)
        register_env(full_id(env_id), creator)
        register_env(env_id, creator)


register()
