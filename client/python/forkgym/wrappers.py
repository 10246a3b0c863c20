"""Wrappers CompilerGym users relied on.

gymnasium 1.x wrappers no longer forward unknown attributes, but CompilerGym
code calls ``env.fork()``, ``env.observation["Ir"]``, ``env.benchmark = ...``
through wrappers. :class:`CompilerEnvWrapper` restores that forwarding; every
wrapper here derives from it, and :class:`TimeLimit` is gymnasium's with it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.wrappers import TimeLimit as _GymTimeLimit

from forkgym.benchmarks import Benchmark
from forkgym.envs import CompilerEnv
from forkgym.llvm_env import LlvmEnv
from forkgym.errors import InvalidAction


class CompilerEnvWrapper(gym.Wrapper):
    """A wrapper that forwards the CompilerGym API to the wrapped env.

    Reads of unknown public attributes and the ``benchmark``,
    ``observation_space`` and ``reward_space`` setters go to the inner env,
    so ``wrapped.observation_space = "Autophase"`` works as in CompilerGym.
    ``fork()`` forks the inner env and re-applies this wrapper around the copy.
    """

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.env, name)

    @property
    def observation_space(self) -> spaces.Space:  # type: ignore[override]
        return self.env.observation_space

    @observation_space.setter
    def observation_space(self, space: Any) -> None:
        self.env.observation_space = space

    @property
    def reward_space(self) -> Any:
        return self.env.reward_space

    @reward_space.setter
    def reward_space(self, space: Any) -> None:
        self.env.reward_space = space

    @property
    def benchmark(self) -> Benchmark:
        return self.env.benchmark

    @benchmark.setter
    def benchmark(self, benchmark: Any) -> None:
        self.env.benchmark = benchmark

    def step(self, action: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        return self.env.step(action, *args, **kwargs)

    def multistep(self, actions: Iterable[int], *args: Any, **kwargs: Any) -> Any:
        return self.env.multistep(actions, *args, **kwargs)

    def _rewrap(self, env: Any) -> CompilerEnvWrapper:
        """This wrapper around another env (used by fork)."""
        copy = object.__new__(type(self))
        copy.__dict__.update(self.__dict__)
        copy.env = env
        return copy

    def fork(self) -> CompilerEnvWrapper:
        return self._rewrap(self.env.fork())

    def __deepcopy__(self, memo: dict[int, Any]) -> CompilerEnvWrapper:
        return self.fork()


class TimeLimit(CompilerEnvWrapper, _GymTimeLimit):
    """gymnasium's TimeLimit (truncates after ``max_episode_steps``) with the
    CompilerGym API forwarded. A forked copy keeps the elapsed step count."""

    def __init__(self, env: gym.Env, max_episode_steps: int) -> None:
        _GymTimeLimit.__init__(self, env, max_episode_steps)

    def step(self, action: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        observation, reward, terminated, truncated, info = self.env.step(action, *args, **kwargs)
        self._elapsed_steps += 1
        if self._elapsed_steps >= self._max_episode_steps:
            truncated = True
        return observation, reward, terminated, truncated, info

    def multistep(self, actions: Iterable[int], *args: Any, **kwargs: Any) -> Any:
        actions = list(actions)
        observation, reward, terminated, truncated, info = self.env.multistep(actions, *args, **kwargs)
        self._elapsed_steps += len(actions)
        if self._elapsed_steps >= self._max_episode_steps:
            truncated = True
        return observation, reward, terminated, truncated, info


class _BenchmarkChooser(CompilerEnvWrapper):
    """Sets ``env.benchmark`` from ``next_benchmark()`` on every reset without an explicit benchmark."""

    def next_benchmark(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        if "benchmark" not in kwargs and not (options and "benchmark" in options):
            self.env.benchmark = self.next_benchmark()
        return self.env.reset(seed=seed, options=options, **kwargs)


class IterateOverBenchmarks(_BenchmarkChooser):
    """Each reset takes the next benchmark; ``StopIteration`` once they run out."""

    def __init__(self, env: gym.Env, benchmarks: Iterable[Any], fork_shares_iterator: bool = False) -> None:
        super().__init__(env)
        self._iterator = iter(benchmarks)

    def next_benchmark(self) -> Any:
        return next(self._iterator)


class CycleOverBenchmarks(_BenchmarkChooser):
    """Each reset takes the next benchmark, starting over after the last."""

    def __init__(self, env: gym.Env, benchmarks: Iterable[Any]) -> None:
        super().__init__(env)
        self._iterator = itertools.cycle(list(benchmarks))

    def next_benchmark(self) -> Any:
        return next(self._iterator)


class RandomOrderBenchmarks(_BenchmarkChooser):
    """Each reset takes a benchmark drawn uniformly (with replacement)."""

    def __init__(self, env: gym.Env, benchmarks: Iterable[Any], rng: np.random.Generator | None = None) -> None:
        super().__init__(env)
        self._benchmarks = list(benchmarks)
        self._rng = rng or np.random.default_rng()

    def next_benchmark(self) -> Any:
        return self._benchmarks[int(self._rng.integers(len(self._benchmarks)))]


class _SubsetActionSpace(spaces.Discrete):
    """A ``Discrete`` over some of the inner env's flags, with the same helpers."""

    def __init__(self, inner: Any, indices: Sequence[int]) -> None:
        super().__init__(len(indices))
        self.inner = inner
        self.indices = list(indices)
        self.name = "Commandline"

    @property
    def names(self) -> list[str]:
        return [self.inner.flags[i] for i in self.indices]

    @property
    def flags(self) -> list[str]:
        return self.names

    def to_inner(self, action: int) -> int:
        action = int(action)
        if not 0 <= action < self.n:
            raise InvalidAction(f"action {action} is not in the action space; valid actions are 0..{self.n - 1}")
        return self.indices[action]

    def to_string(self, actions: Iterable[int]) -> str:
        return self.inner.to_string([self.to_inner(a) for a in actions])

    def from_string(self, commandline: str) -> list[int]:
        lookup = {inner: i for i, inner in enumerate(self.indices)}
        out = []
        for inner in self.inner.from_string(commandline):
            if inner not in lookup:
                raise InvalidAction(f"{self.inner.flags[inner]} is not one of this env's allowed flags")
            out.append(lookup[inner])
        return out


class ConstrainedCommandline(CompilerEnvWrapper):
    """Restricts the action space to ``flags`` (in that order)."""

    def __init__(self, env: gym.Env, flags: Sequence[str]) -> None:
        super().__init__(env)
        inner = env.action_space
        self._action_space_subset = _SubsetActionSpace(inner, [inner.index(f) for f in flags])

    @property
    def action_space(self) -> _SubsetActionSpace:  # type: ignore[override]
        return self._action_space_subset

    @action_space.setter
    def action_space(self, space: Any) -> None:
        self._action_space_subset = space

    def _map(self, action: Any) -> Any:
        if np.ndim(action) == 0:
            return self._action_space_subset.to_inner(action)
        return [self._action_space_subset.to_inner(a) for a in action]

    def step(self, action: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        return self.env.step(self._map(action), *args, **kwargs)

    def multistep(self, actions: Iterable[int], *args: Any, **kwargs: Any) -> Any:
        return self.env.multistep(self._map(list(actions)), *args, **kwargs)

    @property
    def actions(self) -> list[int]:
        lookup = {inner: i for i, inner in enumerate(self._action_space_subset.indices)}
        return [lookup[a] for a in self.env.actions]


class _TerminalActionSpace(spaces.Discrete):
    """The inner action space plus one final "end of episode" action."""

    def __init__(self, inner: Any, terminal_name: str) -> None:
        super().__init__(inner.n + 1)
        self.inner = inner
        self.terminal_name = terminal_name
        self.name = "CommandlineWithTerminalAction"

    @property
    def names(self) -> list[str]:
        return [*self.inner.names, self.terminal_name]

    def to_string(self, actions: Iterable[int]) -> str:
        return self.inner.to_string([a for a in actions if a != self.n - 1])

    def from_string(self, commandline: str) -> list[int]:
        return self.inner.from_string(commandline)


class CommandlineWithTerminalAction(CompilerEnvWrapper):
    """Adds a terminal action (the last index) that ends the episode with
    ``terminated=True``: lets an agent decide when it is done."""

    def __init__(self, env: gym.Env, terminal_name: str = "end-of-episode") -> None:
        super().__init__(env)
        self._terminal_space = _TerminalActionSpace(env.action_space, terminal_name)

    @property
    def action_space(self) -> _TerminalActionSpace:  # type: ignore[override]
        return self._terminal_space

    @action_space.setter
    def action_space(self, space: Any) -> None:
        self._terminal_space = space

    def step(self, action: Any, observation_spaces: Any = None, reward_spaces: Any = None, **kwargs: Any) -> Any:  # type: ignore[override]
        terminal = self._terminal_space.n - 1
        actions = [int(action)] if np.ndim(action) == 0 else [int(a) for a in action]
        if terminal not in actions:
            return self.env.step(actions if np.ndim(action) else action, observation_spaces, reward_spaces, **kwargs)
        before = actions[: actions.index(terminal)]
        observation, reward, _, truncated, info = self.env.multistep(before, observation_spaces, reward_spaces)
        return observation, reward, not truncated, truncated, info

    def multistep(self, actions: Iterable[int], *args: Any, **kwargs: Any) -> Any:
        return self.step(list(actions), *args, **kwargs)


class ForkOnStep(CompilerEnvWrapper):
    """Forks the env before every step so :meth:`undo` can go back one step.

    Each fork is a copy-on-write worker, so keeping a long history is cheap
    in memory; ``undo()`` closes the current worker and resumes its parent.
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.stack: list[Any] = []

    def _clear(self) -> None:
        while self.stack:
            self.stack.pop().close()

    def reset(self, *args: Any, **kwargs: Any) -> Any:
        self._clear()
        return self.env.reset(*args, **kwargs)

    def step(self, action: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        self.stack.append(self.env.fork())
        return self.env.step(action, *args, **kwargs)

    def multistep(self, actions: Iterable[int], *args: Any, **kwargs: Any) -> Any:
        self.stack.append(self.env.fork())
        return self.env.multistep(actions, *args, **kwargs)

    def undo(self) -> Any:
        """Undoes the last step (a no-op with no history); returns the restored env."""
        if not self.stack:
            return self.env
        self.env.close()
        self.env = self.stack.pop()
        return self.env

    def fork(self) -> ForkOnStep:
        copy = ForkOnStep(self.env.fork())
        return copy

    def close(self) -> None:
        self._clear()
        self.env.close()


WrapperFactory = Callable[[gym.Env], gym.Env]

__all__ = [
    "CommandlineWithTerminalAction",
    "CompilerEnv",
    "CompilerEnvWrapper",
    "ConstrainedCommandline",
    "CycleOverBenchmarks",
    "ForkOnStep",
    "IterateOverBenchmarks",
    "LlvmEnv",
    "RandomOrderBenchmarks",
    "TimeLimit",
]
