"""The environment ids, one row each, registered with gymnasium as ``forkgym/<id>``.

A row names the server backend, the default observation and reward spaces,
and the env class (``forkgym.envs:CompilerEnv`` for a backend with no class
of its own: it works from the backend's description alone). Adding a
compiler to the Python side is one row here. The LLVM ids and default spaces
are CompilerGym's. Episodes never end on their own (as in CompilerGym): wrap
with a time limit (``make(id, max_episode_steps=N)``) to bound them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import gymnasium as gym

NAMESPACE = "forkgym"

GENERIC = "forkgym.envs:CompilerEnv"
LLVM = "forkgym.llvm_env:LlvmEnv"
GCC = "forkgym.gcc_env:GccEnv"


@dataclass(frozen=True)
class EnvEntry:
    """One environment id: which backend, with which defaults, in which class."""

    backend: str
    observation_space: str | None = None
    reward_space: str | None = None
    entry_point: str = GENERIC


ENV_TABLE: dict[str, EnvEntry] = {
    "llvm-v0": EnvEntry("llvm", None, None, LLVM),
    "llvm-ic-v0": EnvEntry("llvm", None, "IrInstructionCountOz", LLVM),
    "llvm-codesize-v0": EnvEntry("llvm", None, "ObjectTextSizeOz", LLVM),
    "llvm-autophase-ic-v0": EnvEntry("llvm", "Autophase", "IrInstructionCountOz", LLVM),
    "llvm-autophase-codesize-v0": EnvEntry("llvm", "Autophase", "ObjectTextSizeOz", LLVM),
    "llvm-ir-ic-v0": EnvEntry("llvm", "Ir", "IrInstructionCountOz", LLVM),
    "llvm-ir-codesize-v0": EnvEntry("llvm", "Ir", "ObjectTextSizeOz", LLVM),
    "gcc-v0": EnvEntry("gcc", None, None, GCC),
}

# CompilerGym's LLVM environments: id -> (default observation space, default reward space).
ENVIRONMENTS: dict[str, tuple[str | None, str | None]] = {
    env_id: (entry.observation_space, entry.reward_space)
    for env_id, entry in ENV_TABLE.items()
    if entry.backend == "llvm"
}


def full_id(env_id: str) -> str:
    """``llvm-v0`` -> ``forkgym/llvm-v0`` (a full id is returned unchanged)."""
    return env_id if "/" in env_id else f"{NAMESPACE}/{env_id}"


def entry(env_id: str) -> EnvEntry:
    """The row of an id (``llvm-v0`` or ``forkgym/llvm-v0``)."""
    try:
        return ENV_TABLE[env_id.split("/")[-1]]
    except KeyError:
        from forkgym.errors import InvalidRequest

        raise InvalidRequest(f"unknown environment '{env_id}'; known: {', '.join(ENV_TABLE)}") from None


def _vector_env(env_id: str, **kwargs: Any) -> Any:
    """gymnasium's vector entry point for ``env_id`` (``gymnasium.make_vec``)."""
    from forkgym.vector import CompilerVectorEnv

    return CompilerVectorEnv(env_id=env_id, **kwargs)


def register_all() -> None:
    """Registers every id with gymnasium (idempotent)."""
    for env_id, row in ENV_TABLE.items():
        name = full_id(env_id)
        if name in gym.registry:
            continue
        kwargs: dict[str, Any] = {"observation_space": row.observation_space, "reward_space": row.reward_space}
        if row.entry_point == GENERIC:
            kwargs["backend"] = row.backend
        gym.register(
            id=name,
            entry_point=row.entry_point,
            # gymnasium passes a vector entry point only the id's kwargs, not the id.
            vector_entry_point=functools.partial(_vector_env, name),
            kwargs=kwargs,
            disable_env_checker=False,
        )
