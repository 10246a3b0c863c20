"""forkgym: compiler optimisation environments with the CompilerGym API on gymnasium 1.x.

    import forkgym
    env = forkgym.make("llvm-autophase-ic-v0")
    observation, info = env.reset()
    observation, reward, terminated, truncated, info = env.step(env.action_space.sample())

Each episode runs in its own sandboxed worker process forked from a zygote
(``forkgym-server``, shipped inside this package), so a compiler crash ends
one episode, never the process, and ``env.fork()`` is a ``fork(2)``.
"""

from __future__ import annotations

from typing import Any

from forkgym import system

# Before the extension loads: a missing system library is an ImportError that
# says which and how to install it, a missing tool a warning (forkgym.system).
system.check_at_import()

from forkgym import _forkgym  # noqa: F401, E402  (the extension; fails early if not built)
from forkgym import datasets
from forkgym import reproducer  # noqa: F401  (failed steps' reproducers pickle: infos cross processes)
from forkgym.benchmarks import (
    DEFAULT_BENCHMARK,
    Benchmark,
    benchmark_cache_dir,
    make_benchmark,
    make_benchmark_from_command_line,
)
from forkgym.envs import CompilerEnv
from forkgym.errors import (
    BackendUnavailable,
    BenchmarkInitError,
    BenchmarkNotFound,
    ChecksumMismatch,
    CompilerFailed,
    DatasetError,
    DownloadFailed,
    ForkgymError,
    InvalidAction,
    InvalidRequest,
    ProtocolMismatch,
    ResourceExhausted,
    ServerUnavailable,
    SessionCrashed,
    SessionNotStarted,
    Timeout,
    UnsafeArchive,
)
from forkgym.outcome import Outcome
from forkgym.gcc_env import GccEnv
from forkgym.llvm_env import LlvmEnv
from forkgym.offline import compute_observation
from forkgym.registration import ENV_TABLE, ENVIRONMENTS, EnvEntry, full_id, register_all
from forkgym.run_config import InputSet, RunCommand, RunConfig, RunFile, make_run_config
from forkgym.server import Server, ServerOptions, default_socket_path, server_binary
from forkgym.state import CompilerEnvState, CompilerEnvStateReader, CompilerEnvStateWriter
from forkgym.validate import ValidationResult

__version__ = "0.1.0"

register_all()

# Every env id, as CompilerGym's constant listed them (LLVM's and gcc-v0).
COMPILER_GYM_ENVS = list(ENV_TABLE)


def make(env_id: str, max_episode_steps: int | None = None, **kwargs: Any) -> Any:
    """An environment by id (``"llvm-ic-v0"`` or ``"forkgym/llvm-ic-v0"``).

    Returns the env itself (the id's class from :data:`ENV_TABLE`:
    :class:`LlvmEnv`, or :class:`CompilerEnv` for a backend with no class of
    its own), not gymnasium's checker wrappers, so the whole CompilerGym API
    is at hand; with ``max_episode_steps`` it is
    wrapped in :class:`forkgym.wrappers.TimeLimit`, which forwards that API.
    Keyword arguments override the id's defaults (``benchmark=``,
    ``observation_space=``, ``reward_space=``, ``step_timeout=``...).
    """
    import gymnasium as gym
    from gymnasium.envs.registration import load_env_creator

    from forkgym.envs import with_spec

    spec = gym.spec(full_id(env_id))
    env = with_spec(load_env_creator(spec.entry_point)(**{**spec.kwargs, **kwargs}), spec, kwargs)
    if max_episode_steps is not None:
        from forkgym.wrappers import TimeLimit

        return TimeLimit(env, max_episode_steps)
    return env


def make_vec(env_id: str, num_envs: int, **kwargs: Any) -> Any:
    """A gymnasium ``VectorEnv`` of ``num_envs`` episodes stepped with one native call
    (autoreset mode ``NEXT_STEP``). See :class:`forkgym.vector.CompilerVectorEnv`."""
    from forkgym.vector import CompilerVectorEnv

    return CompilerVectorEnv(num_envs, env_id=full_id(env_id), **kwargs)


def make_pool(env_id: str, num_envs: int, batch_size: int | None = None, **kwargs: Any) -> Any:
    """``num_envs`` episodes stepped asynchronously, in EnvPool's style:
    ``send(actions, env_ids)`` posts and returns, ``recv()`` returns the first
    ``batch_size`` results to come (``info["env_id"]`` says whose). See
    :class:`forkgym.vector.CompilerEnvPool`."""
    from forkgym.vector import CompilerEnvPool

    return CompilerEnvPool(num_envs, env_id=full_id(env_id), batch_size=batch_size, **kwargs)


__all__ = [
    "DEFAULT_BENCHMARK",
    "ENV_TABLE",
    "EnvEntry",
    "BackendUnavailable",
    "Benchmark",
    "BenchmarkInitError",
    "BenchmarkNotFound",
    "COMPILER_GYM_ENVS",
    "ChecksumMismatch",
    "CompilerEnv",
    "CompilerEnvState",
    "CompilerFailed",
    "CompilerEnvStateReader",
    "CompilerEnvStateWriter",
    "DatasetError",
    "DownloadFailed",
    "ForkgymError",
    "GccEnv",
    "InputSet",
    "InvalidAction",
    "InvalidRequest",
    "LlvmEnv",
    "Outcome",
    "ProtocolMismatch",
    "ResourceExhausted",
    "RunCommand",
    "RunConfig",
    "RunFile",
    "Server",
    "ServerOptions",
    "ServerUnavailable",
    "SessionCrashed",
    "SessionNotStarted",
    "Timeout",
    "UnsafeArchive",
    "ValidationResult",
    "benchmark_cache_dir",
    "compute_observation",
    "datasets",
    "make",
    "make_benchmark",
    "make_benchmark_from_command_line",
    "make_run_config",
    "default_socket_path",
    "make_pool",
    "make_vec",
    "server_binary",
]
