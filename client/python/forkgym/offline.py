"""Observations of a module without an env: CompilerGym's
``compute_observation(observation_space, bitcode_path)``.

    import forkgym
    autophase = forkgym.compute_observation("Autophase", "prog.bc")

The module is captured as a benchmark by content (:func:`forkgym.make_benchmark`,
so the server's module cache serves a second call on the same file), one
worker is forked on it, asked for the one observation and ended. The
observation is computed in the worker, under its sandbox and limits, exactly
as in an episode: a module that crashes LLVM raises, it never takes down the
caller.
"""

from __future__ import annotations

import os
from typing import Any

from forkgym.benchmarks import make_benchmark
from forkgym.errors import InvalidRequest


def compute_observation(
    observation_space: Any,
    bitcode_path: str | os.PathLike[str],
    *,
    timeout: float = 300.0,
    server: Any = None,
    file_directory: str | os.PathLike[str] | None = None,
) -> Any:
    """One observation of the module in ``bitcode_path`` (LLVM bitcode, or
    textual IR in a ``.ll`` file), as ``env.observation[name]`` would give it
    at the start of an episode on it.

    Args:
        observation_space: a name (``"Autophase"``) or a space spec
            (``env.observation.spaces["Autophase"]``).
        bitcode_path: the module's file.
        timeout: seconds the worker may take (loading and computing).
        server: a :class:`forkgym.Server` or :class:`forkgym.ServerOptions`
            (default: the process's shared server).
        file_directory: where an observation that is a file (``BitcodeFile``)
            is written (default: the system temporary directory).

    Raises FileNotFoundError for a missing file, InvalidRequest for an
    unknown space (naming the valid ones) or a non-positive timeout,
    BenchmarkInitError for a file that is not a module LLVM reads, Timeout
    when the worker takes longer than ``timeout``.
    """
    from forkgym.llvm_env import LlvmEnv  # the env module imports much; only when called

    name = observation_space if isinstance(observation_space, str) else getattr(observation_space, "id", None)
    if not isinstance(name, str):
        raise InvalidRequest(f"observation_space must be a space's name or spec, not {observation_space!r}")
    if not timeout > 0:
        raise InvalidRequest(f"timeout must be a positive number of seconds, not {timeout!r}")
    path = os.fspath(bitcode_path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no module file '{path}' to compute {name} of (a bitcode or .ll file)")
    with LlvmEnv(server=server, step_timeout=timeout, reset_timeout=timeout) as env:
        if name not in env.observation.spaces:  # before anything is loaded
            env.observation[name]  # raises InvalidRequest naming the valid spaces
        if path.endswith(".ll"):
            benchmark = make_benchmark(path, server=server)
        else:
            with open(path, "rb") as module:
                benchmark = make_benchmark(module.read(), server=server)
        env.reset(benchmark=benchmark)
        return env.observation._compute(name, file_directory)
