"""``CompilerVectorEnv``: N episodes of one env id stepped with one native call.

``step`` prepares every sub-env's request in Python, then ``step_many``
posts all of them to their workers before waiting for any reply, so the
workers compile concurrently (one process each) while Python waits once.

Autoreset follows gymnasium's ``AutoresetMode.NEXT_STEP``: when a sub-env
ends (truncated by a crash or by ``max_episode_steps``) its final
observation is returned as usual; on the *next* ``step`` that sub-env's
action is ignored and it is reset instead, returning the reset observation,
reward 0 and ``terminated = truncated = False``.
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any

import numpy as np
from gymnasium.envs.registration import load_env_creator
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space, concatenate, create_empty_array

from forkgym import _forkgym
from forkgym.envs import CompilerEnv
from forkgym.errors import ForkgymError
from forkgym.registration import entry


_vector_envs: weakref.WeakSet[CompilerVectorEnv] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for env in list(_vector_envs):  # see forkgym.envs: no lock survives a fork held
        env._lock = threading.RLock()


os.register_at_fork(after_in_child=_after_fork_in_child)


class CompilerVectorEnv(VectorEnv):
    """``num_envs`` episodes of one env id behind gymnasium's ``VectorEnv`` API.

    Args:
        num_envs: number of sub-environments (each runs in its own worker).
        env_id: one of the registered ids; sets the env class and default spaces.
        max_episode_steps: truncate each episode after this many steps.
        benchmarks: one benchmark per sub-env (default: every sub-env uses ``benchmark``).
        **kwargs: passed to every sub-env's constructor.

    Threads: calls are serialised by a lock. Ctrl-C during ``step`` ends every
    sub-episode still waiting (each truncated, with its reproducer in
    ``infos``) and then raises ``KeyboardInterrupt``.
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(
        self,
        num_envs: int,
        env_id: str = "llvm-autophase-ic-v0",
        max_episode_steps: int | None = None,
        benchmarks: list[Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._lock = threading.RLock()
        _vector_envs.add(self)
        row = entry(env_id)
        env_class = load_env_creator(row.entry_point)
        kwargs.setdefault("observation_space", row.observation_space)
        kwargs.setdefault("reward_space", row.reward_space)
        if getattr(env_class, "backend", None) is None:
            kwargs.setdefault("backend", row.backend)
        kwargs.pop("render_mode", None)
        self.envs: list[CompilerEnv] = [
            env_class(**{**kwargs, **({"benchmark": benchmarks[i]} if benchmarks else {})}) for i in range(num_envs)
        ]
        self.num_envs = num_envs
        self.max_episode_steps = max_episode_steps
        self.single_observation_space = self.envs[0].observation_space
        self.single_action_space = self.envs[0].action_space
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._autoreset = np.zeros(num_envs, dtype=np.bool_)
        self._steps = np.zeros(num_envs, dtype=np.int64)
        self._last_obs: list[Any] = [None] * num_envs

    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Resets every sub-env (``options["reset_mask"]`` resets only some)."""
        with self._lock:
            return self._reset(seed, options)

    def _reset(self, seed: Any, options: dict[str, Any] | None) -> tuple[Any, dict[str, Any]]:
        super().reset(seed=seed)
        if seed is None or isinstance(seed, int):
            seeds = [None if seed is None else seed + i for i in range(self.num_envs)]
        else:
            seeds = list(seed)
        options = dict(options or {})
        mask = options.pop("reset_mask", None)
        observations, infos = [], {}
        for i, env in enumerate(self.envs):
            if mask is not None and not mask[i]:
                observations.append(self._last_obs[i])
                continue
            obs, info = env.reset(seed=seeds[i], options=options)
            observations.append(obs)
            infos = self._add_info(infos, info, i)
            self._steps[i] = 0
            self._autoreset[i] = False
        self._last_obs = observations
        return self._batch(observations), infos

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """One step of every sub-env; sub-envs that ended last step are reset instead."""
        with self._lock:
            return self._step(actions)

    def _step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        actions = np.asarray(actions)
        observations: list[Any] = [None] * self.num_envs
        rewards = np.zeros(self.num_envs, dtype=np.float64)
        terminated = np.zeros(self.num_envs, dtype=np.bool_)
        truncated = np.zeros(self.num_envs, dtype=np.bool_)
        infos: dict[str, Any] = {}

        stepping, plans = [], []
        for i, env in enumerate(self.envs):
            if self._autoreset[i]:
                observations[i], info = env.reset()
                infos = self._add_info(infos, info, i)
                self._autoreset[i] = False
                self._steps[i] = 0
            else:
                action = actions[i]
                plans.append(env._plan_step([int(action)] if np.ndim(action) == 0 else list(action), None, None))
                stepping.append(i)

        interrupt = None
        error: ForkgymError | None = None
        if stepping:
            first = plans[0]
            results, interrupt = _forkgym.step_many(
                [self.envs[i]._native for i in stepping],
                [plan.native_actions for plan in plans],
                first.native_observations,
                first.native_rewards,
            )
            for i, plan, result in zip(stepping, plans, results):
                try:
                    obs, reward, term, trunc, info = self.envs[i]._complete_step(plan, result)
                except ForkgymError as raised:
                    # Raised after every other sub-env's result is recorded:
                    # their workers applied the step, so their histories must
                    # say so. A sub-env whose episode ended resets next step.
                    error = error or raised
                    self._autoreset[i] = not self.envs[i].in_episode
                    continue
                self._steps[i] += 1
                if self.max_episode_steps is not None and self._steps[i] >= self.max_episode_steps:
                    trunc = True
                observations[i], rewards[i], terminated[i], truncated[i] = obs, reward, term, trunc
                infos = self._add_info(infos, info, i)
                self._autoreset[i] = term or trunc
        self._last_obs = observations
        if interrupt is not None:
            raise interrupt
        if error is not None:
            raise error
        return self._batch(observations), rewards, terminated, truncated, infos

    def _batch(self, observations: list[Any]) -> Any:
        out = create_empty_array(self.single_observation_space, self.num_envs)
        return concatenate(self.single_observation_space, observations, out)

    def __enter__(self) -> CompilerVectorEnv:
        return self

    def __exit__(self, *args: object) -> None:
        self.close()

    def close_extras(self, **kwargs: Any) -> None:
        with self._lock:
            for env in self.envs:
                env.close()

    def call(self, name: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        """Calls a method (or reads an attribute) on every sub-env."""
        results = []
        for env in self.envs:
            attribute = getattr(env, name)
            results.append(attribute(*args, **kwargs) if callable(attribute) else attribute)
        return tuple(results)

    def get_attr(self, name: str) -> tuple[Any, ...]:
        return tuple(getattr(env, name) for env in self.envs)

    def set_attr(self, name: str, values: Any) -> None:
        if not isinstance(values, (list, tuple)):
            values = [values] * self.num_envs
        for env, value in zip(self.envs, values):
            setattr(env, name, value)


LlvmVectorEnv = CompilerVectorEnv  # the name it had when LLVM was the only backend
