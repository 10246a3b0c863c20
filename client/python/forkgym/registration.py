"""The environment ids, registered with gymnasium as ``forkgym/<id>``.

Same ids and default spaces as CompilerGym's LLVM environments. Episodes never
end on their own (as in CompilerGym): wrap with a time limit
(``make(id, max_episode_steps=N)``) to bound them.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

NAMESPACE = "forkgym"

# id -> (default observation space, default reward space)
ENVIRONMENTS: dict[str, tuple[str | None, str | None]] = {
    "llvm-v0": (None, None),
    "llvm-ic-v0": (None, "IrInstructionCountOz"),
    "llvm-codesize-v0": (None, "ObjectTextSizeOz"),
    "llvm-autophase-ic-v0": ("Autophase", "IrInstructionCountOz"),
    "llvm-autophase-codesize-v0": ("Autophase", "ObjectTextSizeOz"),
    "llvm-ir-ic-v0": ("Ir", "IrInstructionCountOz"),
    "llvm-ir-codesize-v0": ("Ir", "ObjectTextSizeOz"),
}


def full_id(env_id: str) -> str:
    """``llvm-v0`` -> ``forkgym/llvm-v0`` (a full id is returned unchanged)."""
    return env_id if "/" in env_id else f"{NAMESPACE}/{env_id}"


def register_all() -> None:
    """Registers every id with gymnasium (idempotent)."""
    for env_id, (observation, reward) in ENVIRONMENTS.items():
        name = full_id(env_id)
        if name in gym.registry:
            continue
        kwargs: dict[str, Any] = {"observation_space": observation, "reward_space": reward}
        gym.register(
            id=name,
            entry_point="forkgym.envs:LlvmEnv",
            vector_entry_point="forkgym.vector:LlvmVectorEnv",
            kwargs=kwargs,
            disable_env_checker=False,
        )
