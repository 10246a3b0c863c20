"""Many episodes of one env id at once: ``CompilerEnvPool``, asynchronous in
EnvPool's style, and ``CompilerVectorEnv``, gymnasium's synchronous
``VectorEnv`` on top of it.

Every sub-env is a worker process, so the workers compile concurrently; the
only question is what the client waits for. ``CompilerEnvPool.send(actions,
env_ids)`` posts one step to each named sub-env and returns at once;
``recv()`` waits (the GIL released, in one ``poll`` over the workers'
doorbells) until ``batch_size`` sub-envs have results and returns those,
with their ids in ``info["env_id"]``. The sub-envs still running keep
running: with ``batch_size < num_envs`` no one waits for the slowest step,
which in phase ordering is often a hundred times the median. The
synchronous ``CompilerVectorEnv.step`` is ``send`` to every sub-env and
``recv`` of all of them, put back in sub-env order.

Autoreset follows gymnasium's ``AutoresetMode.NEXT_STEP`` in both: when a
sub-env ends (terminated, or truncated by a crash, a timeout or
``max_episode_steps``) its final observation is returned as usual; the next
action sent to it is ignored and it is reset instead, its result the reset
observation, reward 0 and ``terminated = truncated = False``.

A sub-env whose worker crashes, hangs past ``step_timeout`` or breaks the
protocol ends its episode only: its result is truncated, with
``info["outcome"]`` and ``info["error_details"]`` saying why (and
``info["error"]``, the exception, when the client refused the worker's
reply), and it autoresets. ``CompilerVectorEnv.step`` raises such an
exception after recording every other sub-env's step, as it always has.

Lifecycle: construct (no workers) → ``reset()`` / ``async_reset()`` →
``send``/``recv`` (or ``step``) → ``close()``.

Threads: calls are serialised by a lock, held while ``recv`` waits (the GIL
is released). ``os.fork()``: in the child, the sub-envs' episodes belong to
the parent; ``send``/``recv`` say so and ``reset()`` starts the child's own.
Ctrl-C while ``recv`` waits ends every step still running (each truncated,
its reproducer in its info) and raises ``KeyboardInterrupt``; the results are
kept, and the next ``recv`` returns them.
"""

from __future__ import annotations

import concurrent.futures
import os
import threading
import weakref
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import load_env_creator
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import (
    batch_space,
    concatenate,
    create_empty_array,
    create_shared_memory,
    read_from_shared_memory,
    write_to_shared_memory,
)

from forkgym import _forkgym
from forkgym.envs import CompilerEnv, StepPlan
from forkgym.errors import ForkgymError, InvalidRequest, SessionNotStarted
from forkgym.outcome import Outcome
from forkgym.registration import entry
from forkgym.spaces import NoObservation

_pools: weakref.WeakSet[CompilerEnvPool] = weakref.WeakSet()
_vector_envs: weakref.WeakSet[CompilerVectorEnv] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # See forkgym.envs: no lock survives a fork held. The steps in flight and
    # the results not yet received are the parent's.
    for pool in list(_pools):
        pool._lock = threading.RLock()
        pool._forget_parents_episodes()
    for env in list(_vector_envs):
        env._lock = threading.RLock()
        env._executor = None  # its threads were the parent's


os.register_at_fork(after_in_child=_after_fork_in_child)


# gymnasium's AsyncVectorEnv shares observations through shared memory, one
# buffer layout per space type; an env with no observation (llvm-ic-v0)
# shares nothing, and every sub-env's observation reads back as None.
@create_shared_memory.register(NoObservation)
def _no_shared_memory(space: NoObservation, n: int = 1, ctx: Any = None) -> None:
    return None


@read_from_shared_memory.register(NoObservation)
def _read_no_observations(space: NoObservation, shared_memory: None, n: int = 1) -> tuple[None, ...]:
    return (None,) * n


@write_to_shared_memory.register(NoObservation)
def _write_no_observation(space: NoObservation, index: int, value: None, shared_memory: None) -> None:
    pass


class _Result:
    """One sub-env's step (or reset) result, ready for ``recv``."""

    __slots__ = ("env_id", "observation", "reward", "terminated", "truncated", "info", "error")

    def __init__(self, env_id: int, observation: Any, reward: float, terminated: bool, truncated: bool,
                 info: dict[str, Any], error: ForkgymError | None = None) -> None:
        self.env_id = env_id
        self.observation = observation
        self.reward = reward
        self.terminated = terminated
        self.truncated = truncated
        self.info = info
        self.error = error


class _Infos:
    """gymnasium's per-key info batching for a batch of ``num_envs`` results."""

    _add_info = VectorEnv._add_info

    def __init__(self, num_envs: int) -> None:
        self.num_envs = num_envs


def benchmark_schedules(num_envs: int, benchmarks: Sequence[Any] | None) -> list[list[Any]] | None:
    """Each sub-env's benchmarks, in the order its resets take them (cycling):
    sub-env ``i`` gets ``benchmarks[i::num_envs]``, so every benchmark is
    visited and none by two sub-envs; with fewer benchmarks than sub-envs,
    sub-env ``i`` gets ``benchmarks[i % len(benchmarks)]``."""
    if benchmarks is None:
        return None
    if isinstance(benchmarks, (str, bytes)) or not isinstance(benchmarks, Sequence):
        raise InvalidRequest(f"benchmarks must be a list of benchmarks (URIs or Benchmark objects), not "
                             f"{type(benchmarks).__name__}; for one benchmark everywhere pass benchmark=")
    if not benchmarks:
        raise InvalidRequest("benchmarks: pass at least one benchmark (or leave it out for the env's default)")
    if len(benchmarks) < num_envs:
        return [[benchmarks[i % len(benchmarks)]] for i in range(num_envs)]
    return [list(benchmarks[i::num_envs]) for i in range(num_envs)]


class _BenchmarkCycles:
    """The benchmark each sub-env's next reset takes, from its schedule."""

    def __init__(self, schedules: list[list[Any]] | None) -> None:
        self.schedules = schedules
        self._next = [0] * (len(schedules) if schedules else 0)

    def reset_options(self, i: int, seed: int | None, options: dict[str, Any] | None) -> dict[str, Any] | None:
        """``options`` for sub-env ``i``'s reset, with its next benchmark unless one
        is given; a seeded reset starts its cycle over (a seeded run is repeatable)."""
        if self.schedules is None or (options and options.get("benchmark") is not None):
            return options
        if seed is not None:
            self._next[i] = 0
        schedule = self.schedules[i]
        benchmark = schedule[self._next[i] % len(schedule)]
        self._next[i] += 1
        return {**(options or {}), "benchmark": benchmark}


def _sub_envs(num_envs: int, env_id: str, schedules: list[list[Any]] | None,
              kwargs: dict[str, Any]) -> list[CompilerEnv]:
    if not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
        raise InvalidRequest(f"num_envs must be a positive integer, not {num_envs!r}")
    row = entry(env_id)
    env_class = load_env_creator(row.entry_point)
    kwargs = dict(kwargs)
    kwargs.setdefault("observation_space", row.observation_space)
    kwargs.setdefault("reward_space", row.reward_space)
    if getattr(env_class, "backend", None) is None:
        kwargs.setdefault("backend", row.backend)
    kwargs.pop("render_mode", None)
    return [env_class(**{**kwargs, **({"benchmark": schedules[i][0]} if schedules else {})}) for i in range(num_envs)]


class CompilerEnvPool:
    """``num_envs`` episodes of one env id, stepped asynchronously (EnvPool's API).

    Args:
        num_envs: number of sub-envs (each runs in its own worker).
        env_id: one of the registered ids; sets the env class and default spaces.
        batch_size: how many results ``recv()`` returns (default ``num_envs``).
        max_episode_steps: truncate each episode after this many steps.
        benchmarks: benchmarks the sub-envs cycle over, each its own share
            (:func:`benchmark_schedules`; default: every sub-env uses ``benchmark``).
            A reset given ``options={"benchmark": ...}`` takes that one instead.
        **kwargs: passed to every sub-env's constructor (``benchmark=``, ``step_timeout=``...).

    A training loop::

        pool = forkgym.make_pool("llvm-autophase-ic-v0", num_envs=16, batch_size=8)
        pool.async_reset()
        while training:
            obs, rewards, terminated, truncated, info = pool.recv()
            pool.send(policy(obs), info["env_id"])
    """

    def __init__(
        self,
        num_envs: int,
        env_id: str = "llvm-autophase-ic-v0",
        batch_size: int | None = None,
        max_episode_steps: int | None = None,
        benchmarks: list[Any] | None = None,
        **kwargs: Any,
    ) -> None:
        self._lock = threading.RLock()
        batch_size = num_envs if batch_size is None else batch_size
        if not isinstance(batch_size, (int, np.integer)) or not 1 <= batch_size <= num_envs:
            raise InvalidRequest(f"batch_size must be an integer from 1 to num_envs ({num_envs}), not {batch_size!r}")
        schedules = benchmark_schedules(num_envs, benchmarks)
        self.envs: list[CompilerEnv] = _sub_envs(num_envs, env_id, schedules, kwargs)
        self._cycles = _BenchmarkCycles(schedules)
        _pools.add(self)
        self.num_envs = int(num_envs)
        self.batch_size = int(batch_size)
        self.max_episode_steps = max_episode_steps
        self.single_observation_space = self.envs[0].observation_space
        self.single_action_space = self.envs[0].action_space
        self.observation_space = batch_space(self.single_observation_space, self.batch_size)
        self.action_space = batch_space(self.single_action_space, self.batch_size)
        self._in_flight: dict[int, StepPlan] = {}  # sub-env -> the step posted to its worker
        self._ready: deque[_Result] = deque()  # results not yet received, in the order they came
        self._held: set[int] = set()  # the sub-envs in _ready
        self._started = np.zeros(num_envs, dtype=np.bool_)  # reset at least once (in this process)
        self._needs_reset = np.zeros(num_envs, dtype=np.bool_)  # ended: the next action resets it
        self._steps = np.zeros(num_envs, dtype=np.int64)
        self._last_ids: np.ndarray | None = None  # the sub-envs of the last recv()
        self._inherited_from = 0  # in a fork() child: the pid whose episodes these were

    # ----------------------------------------------------------- resets --

    def async_reset(self, seed: int | Sequence[int | None] | None = None, options: dict[str, Any] | None = None,
                    env_ids: Any = None) -> None:
        """Resets the sub-envs (all, or ``env_ids``); their first observations are
        results for ``recv()``. A result not yet received is dropped."""
        with self._lock:
            ids = self._ids(env_ids, "async_reset")
            self._check_not_in_flight(ids, "reset")
            seeds = self._seeds(seed, ids)
            for i, env_seed in zip(ids, seeds):
                self._drop_held(i)
                self._ready.append(self._reset_one(i, env_seed, options))
                self._held.add(i)

    def reset(self, *, seed: int | Sequence[int | None] | None = None, options: dict[str, Any] | None = None,
              env_ids: Any = None) -> tuple[Any, dict[str, Any]]:
        """Resets the sub-envs (all, or ``env_ids``) and returns their first
        observations in ``env_ids`` order, with ``info["env_id"]``."""
        with self._lock:
            ids = self._ids(env_ids, "reset")
            self.async_reset(seed, options, ids)
            wanted = set(ids)
            taken = {r.env_id: r for r in self._ready if r.env_id in wanted}
            self._ready = deque(r for r in self._ready if r.env_id not in wanted)
            self._held -= wanted
            results = [taken[i] for i in ids]
            self._last_ids = np.asarray(ids, dtype=np.int32)
            observation, _, _, _, info = self._batch(results)
            return observation, info

    @property
    def sub_env_benchmarks(self) -> list[list[Any]] | None:
        """Each sub-env's benchmarks, in the order its resets take them (None
        without ``benchmarks=``)."""
        return self._cycles.schedules

    def _reset_one(self, i: int, seed: int | None, options: dict[str, Any] | None) -> _Result:
        options = self._cycles.reset_options(i, seed, options)
        observation, info = self.envs[i].reset(seed=seed, options=options)
        self._started[i] = True
        self._needs_reset[i] = False
        self._steps[i] = 0
        return _Result(i, observation, 0.0, False, False, info)

    def _seeds(self, seed: Any, ids: list[int]) -> list[int | None]:
        if seed is None or isinstance(seed, (int, np.integer)):
            return [None if seed is None else int(seed) + i for i in ids]
        seeds = list(seed)
        if len(seeds) != len(ids):
            raise InvalidRequest(f"seed: got {len(seeds)} seeds for {len(ids)} sub-envs; pass one per sub-env reset, "
                                 "or one int")
        return seeds

    # ------------------------------------------------------------ steps --

    def send(self, actions: Any, env_ids: Any = None) -> None:
        """Posts one action to each sub-env of ``env_ids`` (default: those the last
        ``recv()`` returned) and returns at once. A sub-env that ended is reset
        instead (its action ignored). Each sub-env takes one step at a time:
        ``recv()`` its result before sending it another action."""
        with self._lock:
            if env_ids is None:
                if self._last_ids is None:
                    raise InvalidRequest("send(actions) without env_ids steps the sub-envs the last recv() or reset() "
                                         "returned, and there was none yet: pass env_ids")
                env_ids = self._last_ids
            ids = self._ids(env_ids, "send")
            actions = list(actions)
            if len(actions) != len(ids):
                raise InvalidRequest(f"send: got {len(actions)} actions for {len(ids)} env_ids; pass one action per "
                                     "sub-env")
            self._check_started(ids)
            self._check_not_in_flight(ids, "send it another action")
            for i in ids:
                if i in self._held:
                    raise InvalidRequest(f"sub-env {i}'s last result has not been received yet: recv() it before "
                                         "sending it another action")
            # Every action is checked before anything is posted: a bad one
            # leaves every sub-env as it was.
            stepping, plans, resetting = [], [], []
            for i, action in zip(ids, actions):
                if self._needs_reset[i]:
                    resetting.append(i)
                    continue
                env = self.envs[i]
                plans.append(env._plan_step([action] if np.ndim(action) == 0 else list(action), None, None))
                stepping.append(i)
            # In flight before the post: a Ctrl-C from here on still finds them.
            self._in_flight.update(zip(stepping, plans))
            try:
                if stepping:
                    failed = _forkgym.post_steps(
                        [self.envs[i]._native for i in stepping], [p.native_actions for p in plans],
                        [p.native_observations for p in plans], [p.native_rewards for p in plans])
                    for i, plan, result in zip(stepping, plans, failed):
                        if result is not None:  # its worker was gone before the post: the result is here
                            del self._in_flight[i]
                            self._push(self._complete(i, plan, result))
                # Resets last: the workers just posted compute meanwhile.
                for i in resetting:
                    self._push(self._reset_one(i, None, None))
            except KeyboardInterrupt:
                self._end_in_flight()
                raise

    def recv(self) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """The first ``batch_size`` results to come: ``(observations, rewards,
        terminated, truncated, info)``, batched, ``info["env_id"]`` saying whose."""
        with self._lock:
            results = self._receive(self.batch_size)
            self._last_ids = np.fromiter((r.env_id for r in results), dtype=np.int32, count=len(results))
            return self._batch(results)

    def step(self, actions: Any, env_ids: Any = None) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """``send(actions, env_ids)`` then ``recv()``."""
        with self._lock:
            self.send(actions, env_ids)
            return self.recv()

    def _receive(self, count: int) -> list[_Result]:
        """The first ``count`` results to come, waiting for steps in flight as needed."""
        missing = count - len(self._ready)
        if missing > len(self._in_flight):
            raise InvalidRequest(
                f"recv() returns {count} results, but only {len(self._ready)} are ready and {len(self._in_flight)} "
                f"steps are in flight: send() actions to more sub-envs first (or reset them)")
        if missing > 0:
            try:
                waiting = list(self._in_flight)
                indices, results, interrupt = _forkgym.collect_steps([self.envs[i]._native for i in waiting], missing)
                for index, result in zip(indices, results):
                    i = waiting[index]
                    self._push(self._complete(i, self._in_flight.pop(i), result))
            except KeyboardInterrupt:
                self._end_in_flight()
                raise
            if interrupt is not None:
                raise interrupt
        taken = [self._ready.popleft() for _ in range(count)]
        self._held.difference_update(r.env_id for r in taken)
        return taken

    def _complete(self, i: int, plan: StepPlan, native_result: Any) -> _Result:
        """Records sub-env ``i``'s step (its history, episode reward) and makes its result."""
        env = self.envs[i]
        try:
            observation, reward, terminated, truncated, info = env._complete_step(plan, native_result)
        except ForkgymError as error:
            # The client refused the worker's reply (a protocol breach) or the
            # step failed without ending the episode: either way this episode
            # is over, truncated, and the sub-env autoresets.
            env.close()
            # Kept without its traceback, whose frames would hold this pool
            # (and the error itself) in a reference cycle.
            error = error.with_traceback(None)
            spec = env.observation_space_spec
            observation = spec.default() if spec is not None else None
            outcome = getattr(error, "outcome", Outcome.INVALID_REQUEST)
            info = {"outcome": outcome, "error_details": str(error), "reproducer": native_result.reproducer,
                    "error": error}
            self._needs_reset[i] = True
            return _Result(i, observation, 0.0, False, True, info, error)
        self._steps[i] += 1
        if self.max_episode_steps is not None and self._steps[i] >= self.max_episode_steps:
            truncated = True
        self._needs_reset[i] = terminated or truncated
        return _Result(i, observation, reward, terminated, truncated, info)

    def _end_in_flight(self) -> None:
        """After a Ctrl-C outside recv()'s native wait (which handles its own):
        every step in flight ends now, as an interrupted wait would end it —
        an answered one is recorded as usual, an unanswered one's worker is
        killed and its episode truncated (Outcome.INTERRUPTED) — so no step
        is lost between the workers and the sub-envs' histories."""
        for i, plan in list(self._in_flight.items()):
            env = self.envs[i]
            try:
                indices, results, _ = _forkgym.collect_steps([env._native], 0)
            except ForkgymError:  # its post never happened or failed
                indices, results = [], []
            del self._in_flight[i]
            if indices:
                self._push(self._complete(i, plan, results[0]))
                continue
            reproducer = env._native.reproducer() if env._native is not None else None
            env._actions.extend(plan.actions)
            env._episode_over = True
            env.close()  # closing its channel ends the worker
            spec = env.observation_space_spec
            self._needs_reset[i] = True
            self._push(_Result(i, spec.default() if spec is not None else None, 0.0, False, True,
                               {"outcome": Outcome.INTERRUPTED, "reproducer": reproducer,
                                "error_details": "the step was interrupted; the worker was killed"}))

    def _push(self, result: _Result) -> None:
        self._ready.append(result)
        self._held.add(result.env_id)

    def _batch(self, results: list[_Result]) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        n = len(results)
        out = create_empty_array(self.single_observation_space, n)
        observations = concatenate(self.single_observation_space, [r.observation for r in results], out)
        infos: dict[str, Any] = {}
        batcher = _Infos(n)
        for position, result in enumerate(results):
            infos = batcher._add_info(infos, result.info, position)
        infos["env_id"] = np.fromiter((r.env_id for r in results), dtype=np.int32, count=n)
        return (observations,
                np.fromiter((r.reward for r in results), dtype=np.float64, count=n),
                np.fromiter((r.terminated for r in results), dtype=np.bool_, count=n),
                np.fromiter((r.truncated for r in results), dtype=np.bool_, count=n),
                infos)

    # -------------------------------------------------------- checking --

    def _ids(self, env_ids: Any, what: str) -> list[int]:
        if env_ids is None:
            return list(range(self.num_envs))
        array = np.asarray(env_ids)
        if array.ndim != 1 or (array.size and not np.issubdtype(array.dtype, np.integer)):
            raise InvalidRequest(f"{what}: env_ids must be a list of sub-env indices (integers from 0 to "
                                 f"{self.num_envs - 1}), not {env_ids!r}")
        ids = [int(i) for i in array]
        bad = [i for i in ids if not 0 <= i < self.num_envs]
        if bad:
            raise InvalidRequest(f"{what}: no sub-env {bad[0]}; env_ids are 0..{self.num_envs - 1}")
        if len(set(ids)) != len(ids):
            twice = sorted({i for i in ids if ids.count(i) > 1})
            raise InvalidRequest(f"{what}: sub-env {twice[0]} is named twice in env_ids; name each once")
        return ids

    def _check_not_in_flight(self, ids: list[int], doing: str) -> None:
        busy = [i for i in ids if i in self._in_flight]
        if busy:
            raise InvalidRequest(f"sub-env {busy[0]} has a step in flight: recv() its result before you {doing} "
                                 f"(steps in flight: {sorted(self._in_flight)})")

    def _check_started(self, ids: list[int]) -> None:
        idle = [i for i in ids if not self._started[i]]
        if idle:
            if self._inherited_from:
                raise SessionNotStarted(
                    f"this vector env's episodes belong to process {self._inherited_from}; this process "
                    f"({os.getpid()}) was fork()ed from it and cannot use their workers. Call reset() to start "
                    "episodes of its own")
            raise SessionNotStarted(f"sub-env {idle[0]} has no episode yet: call reset() or async_reset() first")

    def _forget_parents_episodes(self) -> None:
        """In a fork() child: the steps in flight and the results not received are
        the parent's; every sub-env must be reset here before it steps."""
        if self._started.any():
            self._inherited_from = os.getppid()
        self._in_flight.clear()
        self._ready.clear()
        self._held.clear()
        self._started[:] = False
        self._needs_reset[:] = False
        self._last_ids = None

    def _drop_held(self, i: int) -> None:
        if i in self._held:
            self._ready = deque(r for r in self._ready if r.env_id != i)
            self._held.discard(i)

    # ---------------------------------------------------------- the rest --

    @property
    def in_flight(self) -> list[int]:
        """The sub-envs with a step posted whose result has not come yet."""
        return sorted(self._in_flight)

    def close(self) -> None:
        """Ends every sub-env's worker (steps in flight are abandoned)."""
        with self._lock:
            for env in self.envs:
                env.close()
            self._in_flight.clear()
            self._ready.clear()
            self._held.clear()
            self._started[:] = False

    def __enter__(self) -> CompilerEnvPool:
        return self

    def __exit__(self, *args: object) -> None:
        self.close()

    def __len__(self) -> int:
        return self.num_envs


class _WrappedRound:
    """One wrapped vector step's sub-env steps, each on an executor thread.
    Once cancelled (Ctrl-C), a step that has not started never starts, and
    cancel_and_wait() returns when those that had started have ended."""

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._running = 0
        self._cancelled = False

    def start(self) -> bool:
        with self._changed:
            if self._cancelled:
                return False
            self._running += 1
            return True

    def end(self) -> None:
        with self._changed:
            self._running -= 1
            self._changed.notify_all()

    def cancel_and_wait(self, end_running: Callable[[], Any]) -> None:
        with self._changed:
            self._cancelled = True
        end_running()
        with self._changed:
            self._changed.wait_for(lambda: self._running == 0)


class CompilerVectorEnv(VectorEnv):
    """``num_envs`` episodes of one env id behind gymnasium's ``VectorEnv`` API:
    a :class:`CompilerEnvPool` whose every step waits for all sub-envs.

    Args:
        num_envs: number of sub-environments (each runs in its own worker).
        env_id: one of the registered ids; sets the env class and default spaces.
        max_episode_steps: truncate each episode after this many steps.
        benchmarks: benchmarks the sub-envs cycle over, each its own share:
            sub-env ``i`` takes ``benchmarks[i::num_envs]`` in turn, one per
            reset (see :func:`benchmark_schedules`; default: every sub-env
            uses ``benchmark``).
        wrappers: functions applied in order to every sub-env (as gymnasium's
            ``make_vec(wrappers=)``), e.g. ``[lambda env: ConstrainedCommandline(env, flags)]``.
            The spaces are the wrapped sub-env's; ``envs`` stays the bare
            sub-envs, ``wrapped_envs`` the wrapped ones.
        **kwargs: passed to every sub-env's constructor.

    Without wrappers a step is one native call posting every sub-env's
    request; with wrappers each wrapped sub-env's ``step`` runs on a thread of
    its own (the GIL is released while its worker computes), so the workers
    still compile concurrently.

    Threads: calls are serialised by a lock. Ctrl-C during ``step`` ends every
    sub-episode still waiting (each truncated, with its reproducer in
    ``infos``) and then raises ``KeyboardInterrupt``; with wrappers it ends
    the running steps the same way (their wrappers see each step truncated,
    ``Outcome.INTERRUPTED``) and every sub-env is reset on the next step.
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    def __init__(
        self,
        num_envs: int,
        env_id: str = "llvm-autophase-ic-v0",
        max_episode_steps: int | None = None,
        benchmarks: list[Any] | None = None,
        wrappers: Sequence[Callable[[gym.Env], gym.Env]] | None = None,
        **kwargs: Any,
    ) -> None:
        self._lock = threading.RLock()
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        _vector_envs.add(self)
        self.pool = CompilerEnvPool(num_envs, env_id, batch_size=num_envs, max_episode_steps=max_episode_steps,
                                    benchmarks=benchmarks, **kwargs)
        self.envs: list[CompilerEnv] = self.pool.envs
        self.wrapped_envs: list[gym.Env] | None = None
        if wrappers:
            self.wrapped_envs = []
            for env in self.envs:
                for wrap in wrappers:
                    env = wrap(env)
                self.wrapped_envs.append(env)
        self.num_envs = num_envs
        self.max_episode_steps = max_episode_steps
        first = self.wrapped_envs[0] if self.wrapped_envs else self.pool
        self.single_observation_space = first.single_observation_space if first is self.pool else \
            first.observation_space
        self.single_action_space = first.single_action_space if first is self.pool else first.action_space
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._last_obs: list[Any] = [None] * num_envs
        self._all = np.arange(num_envs, dtype=np.int32)

    @property
    def sub_env_benchmarks(self) -> list[list[Any]] | None:
        """Each sub-env's benchmarks, in the order its resets take them (None
        without ``benchmarks=``)."""
        return self.pool.sub_env_benchmarks

    def reset(
        self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[Any, dict[str, Any]]:
        """Resets every sub-env (``options["reset_mask"]`` resets only some)."""
        with self._lock:
            # The vector env's own np_random takes one int; a list seeds the sub-envs only.
            super().reset(seed=int(seed) if isinstance(seed, (int, np.integer)) else None)
            options = dict(options or {})
            mask = options.pop("reset_mask", None)
            ids = list(range(self.num_envs)) if mask is None else [i for i in range(self.num_envs) if mask[i]]
            if seed is not None and not isinstance(seed, (int, np.integer)):
                seed = list(seed)
                if len(seed) != self.num_envs:
                    raise InvalidRequest(f"reset: got {len(seed)} seeds for {self.num_envs} sub-envs; pass one per "
                                         "sub-env (None leaves one unseeded), or one int")
                seed = [seed[i] for i in ids]
            elif isinstance(seed, (int, np.integer)):
                seed = [int(seed) + i for i in ids]
            if self.wrapped_envs is not None:
                return self._reset_wrapped(ids, seed, options)
            self._drain()
            self.pool.async_reset(seed, options, ids)
            results = self.pool._receive(len(ids))
            infos: dict[str, Any] = {}
            for result in results:
                self._last_obs[result.env_id] = result.observation
                infos = self._add_info(infos, result.info, result.env_id)
            return self._batch(self._last_obs), infos

    def step(self, actions: Any) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """One step of every sub-env; sub-envs that ended last step are reset instead."""
        with self._lock:
            actions = np.asarray(actions)
            if len(actions) != self.num_envs:
                raise InvalidRequest(f"step: got {len(actions)} actions for {self.num_envs} sub-envs; pass one each")
            if self.wrapped_envs is not None:
                return self._step_wrapped(actions)
            self._drain()
            try:
                self.pool.send(actions, self._all)
                results = self.pool._receive(self.num_envs)
            except KeyboardInterrupt:
                # Wherever it landed, every step is ended and recorded in its
                # sub-env's history; the next step starts afresh.
                self.pool._end_in_flight()
                self._drain()
                raise
            results.sort(key=lambda r: r.env_id)
            return self._gather(results)

    # ------------------------------------------- with sub-env wrappers --

    def _reset_wrapped(self, ids: list[int], seeds: list[int | None] | None,
                       options: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        pool = self.pool
        infos: dict[str, Any] = {}
        for position, i in enumerate(ids):
            seed = None if seeds is None else seeds[position]
            result = self._reset_wrapped_one(i, seed, options)
            self._last_obs[i] = result.observation
            infos = self._add_info(infos, result.info, i)
        pool._started[ids] = True
        return self._batch(self._last_obs), infos

    def _reset_wrapped_one(self, i: int, seed: int | None, options: dict[str, Any] | None) -> _Result:
        pool = self.pool
        observation, info = self.wrapped_envs[i].reset(seed=seed, options=pool._cycles.reset_options(i, seed, options))
        pool._needs_reset[i] = False
        pool._steps[i] = 0
        return _Result(i, observation, 0.0, False, False, info)

    def _step_wrapped_one(self, round_: _WrappedRound, i: int, action: Any) -> _Result | None:
        """Sub-env ``i``'s step through its wrappers (run on a thread of its own),
        or its reset if it ended last step; None if the round was cancelled first."""
        if not round_.start():
            return None
        try:
            return self._step_or_reset_wrapped(i, action)
        finally:
            round_.end()

    def _step_or_reset_wrapped(self, i: int, action: Any) -> _Result:
        pool = self.pool
        if pool._needs_reset[i]:
            return self._reset_wrapped_one(i, None, None)
        try:
            observation, reward, terminated, truncated, info = self.wrapped_envs[i].step(action)
        except ForkgymError as error:
            # As the native path: the episode ends truncated, the sub-env autoresets.
            self.envs[i].close()
            error = error.with_traceback(None)
            pool._needs_reset[i] = True
            info = {"outcome": getattr(error, "outcome", Outcome.INVALID_REQUEST), "error_details": str(error),
                    "error": error}
            return _Result(i, self._last_obs[i], 0.0, False, True, info, error)
        pool._steps[i] += 1
        if self.max_episode_steps is not None and pool._steps[i] >= self.max_episode_steps:
            truncated = True
        pool._needs_reset[i] = bool(terminated or truncated)
        return _Result(i, observation, float(reward), bool(terminated), bool(truncated), info)

    def _step_wrapped(self, actions: np.ndarray) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        pool = self.pool
        pool._check_started(list(range(self.num_envs)))
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(self.num_envs, thread_name_prefix="forkgym-sub-env")
        round_ = _WrappedRound()
        try:
            futures = [self._executor.submit(self._step_wrapped_one, round_, i, action)
                       for i, action in enumerate(actions)]
            results = [future.result() for future in futures]
        except KeyboardInterrupt:
            # The threads' steps hear no Ctrl-C: end them (each truncated,
            # Outcome.INTERRUPTED, its worker killed), then wait for them.
            # A Ctrl-C may land inside submit(), after the executor queued a
            # sub-env's step and before its future is ours: the round, not
            # the futures, knows what runs.
            natives = [env._native for env in self.envs if env._native is not None]
            try:
                round_.cancel_and_wait(lambda: [native.interrupt() for native in natives])
            finally:
                for native in natives:
                    native.interrupt(False)
            pool._needs_reset[:] = True
            raise
        return self._gather(results)

    def _gather(self, results: list[_Result]) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """A step's batch from every sub-env's result (in sub-env order); a
        sub-env's error is raised after every other result is recorded."""
        rewards = np.fromiter((r.reward for r in results), dtype=np.float64, count=self.num_envs)
        terminated = np.fromiter((r.terminated for r in results), dtype=np.bool_, count=self.num_envs)
        truncated = np.fromiter((r.truncated for r in results), dtype=np.bool_, count=self.num_envs)
        infos: dict[str, Any] = {}
        error = None
        for result in results:
            self._last_obs[result.env_id] = result.observation
            if result.error is not None:
                # Raised after every other sub-env's result is recorded:
                # their workers applied the step, so their histories say so.
                error = error or result.error
                continue
            infos = self._add_info(infos, result.info, result.env_id)
        if error is not None:
            raise error
        return self._batch(self._last_obs), rewards, terminated, truncated, infos

    def _drain(self) -> None:
        """Drops results an interrupted step left (each is in its sub-env's history)."""
        pool = self.pool
        if pool._in_flight:
            pool._receive(len(pool._ready) + len(pool._in_flight))
        pool._ready.clear()
        pool._held.clear()

    def _batch(self, observations: list[Any]) -> Any:
        out = create_empty_array(self.single_observation_space, self.num_envs)
        return concatenate(self.single_observation_space, observations, out)

    def __enter__(self) -> CompilerVectorEnv:
        return self

    def __exit__(self, *args: object) -> None:
        self.close()

    def close_extras(self, **kwargs: Any) -> None:
        with self._lock:
            if self._executor is not None:
                self._executor.shutdown(wait=True)
                self._executor = None
            for env in self.wrapped_envs or ():
                env.close()
            self.pool.close()

    @property
    def _outer_envs(self) -> list[Any]:
        return self.wrapped_envs if self.wrapped_envs is not None else self.envs

    def call(self, name: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        """Calls a method (or reads an attribute) on every (wrapped) sub-env."""
        results = []
        for env in self._outer_envs:
            attribute = env.get_wrapper_attr(name)
            results.append(attribute(*args, **kwargs) if callable(attribute) else attribute)
        return tuple(results)

    def get_attr(self, name: str) -> tuple[Any, ...]:
        return tuple(env.get_wrapper_attr(name) for env in self._outer_envs)

    def set_attr(self, name: str, values: Any) -> None:
        if not isinstance(values, (list, tuple)):
            values = [values] * self.num_envs
        if len(values) != self.num_envs:
            raise InvalidRequest(f"set_attr: got {len(values)} values for {self.num_envs} sub-envs; pass one each, "
                                 "or one value for all")
        for env, value in zip(self._outer_envs, values):
            env.set_wrapper_attr(name, value)


LlvmVectorEnv = CompilerVectorEnv  # the name it had when LLVM was the only backend
