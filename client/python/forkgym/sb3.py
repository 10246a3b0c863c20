"""stable-baselines3 on forkgym's native vector env (``pip install 'forkgym[sb3]'``).

    from stable_baselines3 import PPO
    from forkgym.sb3 import make_vec_env

    venv = make_vec_env("llvm-autophase-ic-v0", n_envs=4, max_episode_steps=45,
                        benchmarks=["generator://csmith-v0/1", "generator://csmith-v0/2", ...], seed=0)
    PPO("MlpPolicy", venv).learn(10_000)

:class:`CompilerVecEnv` is SB3's ``VecEnv`` over a
:class:`forkgym.vector.CompilerVectorEnv`: every step posts all sub-envs'
actions to their workers with one native call (they compile concurrently,
in one Python process), where SB3's ``DummyVecEnv`` steps them one after the
other and ``SubprocVecEnv`` needs a process (and a zygote) per sub-env.

Two conventions differ between gymnasium's vector env and SB3's, and the
adapter converts them:

- Autoreset. forkgym's vector env resets a finished sub-env on the *next*
  step (gymnasium's ``AutoresetMode.NEXT_STEP``); SB3 expects it reset in the
  *same* step, the observation returned being the new episode's first, the
  last one in ``info["terminal_observation"]``. The adapter resets the
  finished sub-envs right after the step (the next benchmark of each, when
  the vector env cycles over ``benchmarks``).
- Results. ``done = terminated or truncated``, one info dict per sub-env,
  ``info["TimeLimit.truncated"] = truncated and not terminated``, rewards as
  float32 — as SB3's own vector envs give them. A worker crash is a
  truncated episode (``info["outcome"]`` says why), never an exception.

Lifecycle: ``make_vec_env`` / ``CompilerVecEnv(vector_env)`` → ``reset()``
→ ``step_async`` / ``step_wait`` (or ``step``) → ``close()`` (which closes
the vector env). Threads: one caller at a time, as SB3 uses it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

try:
    from stable_baselines3.common import env_util
    from stable_baselines3.common.vec_env import VecEnv
    from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvObs, VecEnvStepReturn
except ImportError as error:  # pragma: no cover - depends on what is installed
    raise ImportError(
        "forkgym.sb3 needs stable-baselines3 (and torch, which it pulls in): pip install 'forkgym[sb3]', "
        "or pip install stable-baselines3"
    ) from error

from forkgym.errors import InvalidRequest
from forkgym.vector import CompilerVectorEnv


class CompilerVecEnv(VecEnv):
    """SB3's ``VecEnv`` over a forkgym vector env (same-step autoreset, one info
    dict per sub-env, ``terminal_observation``). Closing it closes ``vector_env``."""

    def __init__(self, vector_env: CompilerVectorEnv) -> None:
        if not isinstance(vector_env, CompilerVectorEnv):
            raise InvalidRequest(f"CompilerVecEnv wraps a forkgym vector env (forkgym.make_vec(...)), not "
                                 f"{type(vector_env).__name__}; for other envs use SB3's DummyVecEnv or SubprocVecEnv")
        self.vector_env = vector_env
        self._actions: np.ndarray | None = None
        super().__init__(vector_env.num_envs, vector_env.single_observation_space, vector_env.single_action_space)
        self.metadata = {"render_modes": []}

    # ------------------------------------------------------------ episodes --

    def reset(self) -> VecEnvObs:
        """Resets every sub-env with the seeds of ``seed()`` and the options of
        ``set_options()`` (each used once, as SB3's vector envs do)."""
        seeds = None if all(s is None for s in self._seeds) else list(self._seeds)
        options = [dict(o or {}) for o in self._options]
        if all(o == options[0] for o in options):
            observations, infos = self.vector_env.reset(seed=seeds, options=options[0])
            self.reset_infos = _unbatch(infos, self.num_envs)
        else:  # different options per sub-env: one reset each
            for i, own in enumerate(options):
                mask = np.arange(self.num_envs) == i
                observations, infos = self.vector_env.reset(seed=seeds, options={**own, "reset_mask": mask})
                self.reset_infos[i] = _unbatch(infos, self.num_envs, [i])[0]
        self._reset_seeds()
        self._reset_options()
        return observations

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions)

    def step_wait(self) -> VecEnvStepReturn:
        if self._actions is None:
            raise InvalidRequest("step_wait() without step_async(actions): call step(actions), or step_async first")
        actions, self._actions = self._actions, None
        observations, rewards, terminated, truncated, infos = self.vector_env.step(actions)
        dones = terminated | truncated
        per_env = _unbatch(infos, self.num_envs)
        for i, info in enumerate(per_env):
            info["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
            if dones[i]:
                info["terminal_observation"] = observations[i].copy()
        if dones.any():
            # Same-step autoreset: the finished sub-envs start their next
            # episode now, and it is their observation SB3 gets.
            observations, reset_infos = self.vector_env.reset(options={"reset_mask": dones})
            for i, info in zip(np.flatnonzero(dones), _unbatch(reset_infos, self.num_envs, np.flatnonzero(dones))):
                self.reset_infos[i] = info
        return observations, rewards.astype(np.float32), dones, per_env

    def close(self) -> None:
        self.vector_env.close()

    # ---------------------------------------------------- sub-env access --

    def _targets(self, indices: VecEnvIndices) -> list[gym.Env]:
        envs = self.vector_env.wrapped_envs or self.vector_env.envs
        return [envs[i] for i in self._get_indices(indices)]

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        return [env.get_wrapper_attr(attr_name) for env in self._targets(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        for env in self._targets(indices):
            env.set_wrapper_attr(attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None,
                   **method_kwargs: Any) -> list[Any]:
        return [env.get_wrapper_attr(method_name)(*method_args, **method_kwargs) for env in self._targets(indices)]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return [env_util.is_wrapped(env, wrapper_class) for env in self._targets(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [None] * self.num_envs  # compiler envs render text, not images


def _unbatch(infos: dict[str, Any], num_envs: int, only: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """gymnasium's batched info dict (``key`` and its mask ``_key``) as one dict
    per sub-env (of ``only``, when given)."""
    ids = range(num_envs) if only is None else only
    per_env: list[dict[str, Any]] = [{} for _ in ids]
    for key, values in infos.items():
        if key.startswith("_"):
            continue
        mask = infos.get("_" + key)
        for position, i in enumerate(ids):
            if mask is None or mask[i]:
                value = values[i]
                if isinstance(value, dict):  # a nested info dict, batched the same way
                    value = _unbatch(value, num_envs, [i])[0]
                per_env[position][key] = value.item() if isinstance(value, np.generic) else value
    return per_env


def make_vec_env(
    env_id: str = "llvm-autophase-ic-v0",
    n_envs: int = 1,
    seed: int | None = None,
    *,
    max_episode_steps: int | None = None,
    benchmarks: list[Any] | None = None,
    wrappers: Sequence[Callable[[gym.Env], gym.Env]] | None = None,
    **env_kwargs: Any,
) -> CompilerVecEnv:
    """SB3's ``make_vec_env`` for a forkgym id: ``n_envs`` sub-envs in one
    native vector env (see :class:`forkgym.vector.CompilerVectorEnv` for
    ``benchmarks=``, cycled per sub-env, and ``wrappers=``); ``seed`` seeds
    sub-env ``i`` with ``seed + i`` at the first reset."""
    vector_env = CompilerVectorEnv(n_envs, env_id=env_id if "/" in env_id else f"forkgym/{env_id}",
                                   max_episode_steps=max_episode_steps, benchmarks=benchmarks, wrappers=wrappers,
                                   **env_kwargs)
    venv = CompilerVecEnv(vector_env)
    if seed is not None:
        venv.seed(seed)
    return venv


__all__ = ["CompilerVecEnv", "make_vec_env"]
