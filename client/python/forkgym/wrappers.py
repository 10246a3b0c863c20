"""Wrappers CompilerGym users relied on.

gymnasium 1.x wrappers no longer forward unknown attributes, but CompilerGym
code calls ``env.fork()``, ``env.observation["Ir"]``, ``env.benchmark = ...``
and ``env.reset(benchmark=...)`` through wrappers. :class:`CompilerEnvWrapper`
restores that forwarding; every wrapper here derives from it, and
:class:`TimeLimit` is gymnasium's with it.

gymnasium's own wrappers (what ``gymnasium.make`` adds: ``OrderEnforcing``,
``PassiveEnvChecker``, ``TimeLimit``) may sit anywhere in a stack, and they
forward only ``reset(seed=, options=)``. So the wrappers here pass a
benchmark, observation space or reward space down as ``reset(options=...)``
(which :meth:`CompilerEnv.reset` reads, through any stack), and set the
CompilerGym attributes on the env itself (``env.unwrapped``) when the env
they wrap is a gymnasium wrapper, whose own attribute would change nothing.
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
from forkgym.errors import InvalidAction, InvalidRequest


# CompilerGym's reset keywords, passed down a wrapper stack as reset options.
RESET_KEYWORDS = ("benchmark", "observation_space", "reward_space")


def _forwards_compilergym_api(env: Any) -> bool:
    return isinstance(env, (CompilerEnvWrapper, CompilerEnv))


class CompilerEnvWrapper(gym.Wrapper):
    """A wrapper that forwards the CompilerGym API to the wrapped env.

    Reads of unknown public attributes and the ``benchmark``,
    ``observation_space`` and ``reward_space`` setters go to the inner env
    (past any gymnasium wrapper, to the env itself), so
    ``wrapped.observation_space = "Autophase"`` works as in CompilerGym.
    ``reset(benchmark=, observation_space=, reward_space=)`` is passed down as
    ``reset(options=...)``, which gymnasium's wrappers forward too.
    ``fork()`` forks the inner env and re-applies this wrapper around the copy.
    """

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if _forwards_compilergym_api(self.env):
            return getattr(self.env, name)
        return self.env.get_wrapper_attr(name)  # searches the gymnasium wrappers, then the env

    def _compilergym_env(self) -> Any:
        """Where a CompilerGym attribute is set: the wrapped env when it forwards
        the API, else the env itself (a gymnasium wrapper would keep it)."""
        return self.env if _forwards_compilergym_api(self.env) else self.env.unwrapped

    @property
    def observation_space(self) -> spaces.Space:  # type: ignore[override]
        return self.env.observation_space

    @observation_space.setter
    def observation_space(self, space: Any) -> None:
        self._compilergym_env().observation_space = space

    @property
    def reward_space(self) -> Any:
        return self._compilergym_env().reward_space

    @reward_space.setter
    def reward_space(self, space: Any) -> None:
        self._compilergym_env().reward_space = space

    @property
    def benchmark(self) -> Benchmark:
        return self._compilergym_env().benchmark

    @benchmark.setter
    def benchmark(self, benchmark: Any) -> None:
        self._compilergym_env().benchmark = benchmark

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None,  # type: ignore[override]
              **keywords: Any) -> Any:
        """gymnasium's ``reset(seed=, options=)``, also taking CompilerGym's
        ``benchmark=``, ``observation_space=``, ``reward_space=``."""
        return self.env.reset(seed=seed, options=reset_options(options, keywords))

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


def reset_options(options: dict[str, Any] | None, keywords: dict[str, Any]) -> dict[str, Any] | None:
    """``options`` with CompilerGym's reset keywords added (an option given
    both ways must agree); other keywords are refused with a clear error."""
    unknown = [k for k in keywords if k not in RESET_KEYWORDS]
    if unknown:
        raise TypeError(f"reset() got an unexpected keyword argument '{unknown[0]}'; it takes seed=, options= "
                        f"and CompilerGym's {', '.join(k + '=' for k in RESET_KEYWORDS)}")
    given = {k: v for k, v in keywords.items() if v is not None}
    if not given:
        return options
    merged = dict(options or {})
    for key, value in given.items():
        if key in merged and merged[key] != value:
            raise InvalidRequest(f"reset(): {key}={value!r} and options['{key}']={merged[key]!r} disagree; "
                                 "give it one way")
        merged[key] = value
    return merged


class TimeLimit(CompilerEnvWrapper, _GymTimeLimit):
    """gymnasium's TimeLimit (truncates after ``max_episode_steps``) with the
    CompilerGym API forwarded. A forked copy keeps the elapsed step count."""

    def __init__(self, env: gym.Env, max_episode_steps: int) -> None:
        _GymTimeLimit.__init__(self, env, max_episode_steps)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None,  # type: ignore[override]
              **keywords: Any) -> Any:
        return _GymTimeLimit.reset(self, seed=seed, options=reset_options(options, keywords))

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
    """Picks the benchmark of every reset that names none (``next_benchmark()``)
    and passes it down as ``reset(options={"benchmark": ...})``, which reaches
    the env through any wrapper stack. ``reset(seed=)`` seeds the choice
    (:meth:`on_seed`), so a seeded run visits the same benchmarks."""

    def next_benchmark(self) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def on_seed(self, seed: int) -> None:
        """Called by ``reset(seed=seed)`` before the choice; none by default."""

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None,  # type: ignore[override]
              **keywords: Any) -> Any:
        options = reset_options(options, keywords)
        if seed is not None:
            self.on_seed(seed)
        if not (options and options.get("benchmark") is not None):
            options = {**(options or {}), "benchmark": self.next_benchmark()}
        return self.env.reset(seed=seed, options=options)


class IterateOverBenchmarks(_BenchmarkChooser):
    """Each reset takes the next benchmark; ``StopIteration`` once they run out.
    (An iterator cannot start over: ``reset(seed=)`` does not restart it.)"""

    def __init__(self, env: gym.Env, benchmarks: Iterable[Any], fork_shares_iterator: bool = False) -> None:
        super().__init__(env)
        self._iterator = iter(benchmarks)

    def next_benchmark(self) -> Any:
        return next(self._iterator)


class CycleOverBenchmarks(_BenchmarkChooser):
    """Each reset takes the next benchmark, starting over after the last;
    ``reset(seed=)`` starts over from the first."""

    def __init__(self, env: gym.Env, benchmarks: Iterable[Any]) -> None:
        super().__init__(env)
        self._benchmarks = list(benchmarks)
        if not self._benchmarks:
            raise InvalidRequest("CycleOverBenchmarks needs at least one benchmark")
        self._iterator = itertools.cycle(self._benchmarks)

    def on_seed(self, seed: int) -> None:
        self._iterator = itertools.cycle(self._benchmarks)

    def next_benchmark(self) -> Any:
        return next(self._iterator)


class RandomOrderBenchmarks(_BenchmarkChooser):
    """Each reset takes a benchmark drawn uniformly (with replacement) by
    ``rng``; ``reset(seed=s)`` replaces it with ``np.random.default_rng(s)``,
    so the draws after a seeded reset depend on the seed alone."""

    def __init__(self, env: gym.Env, benchmarks: Iterable[Any], rng: np.random.Generator | None = None) -> None:
        super().__init__(env)
        self._benchmarks = list(benchmarks)
        if not self._benchmarks:
            raise InvalidRequest("RandomOrderBenchmarks needs at least one benchmark")
        self._rng = rng or np.random.default_rng()

    def on_seed(self, seed: int) -> None:
        self._rng = np.random.default_rng(seed)

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

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None,  # type: ignore[override]
              **keywords: Any) -> Any:
        self._clear()
        return super().reset(seed=seed, options=options, **keywords)

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
