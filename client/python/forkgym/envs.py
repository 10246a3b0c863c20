"""``CompilerEnv``: one compiler backend as a gymnasium 1.x environment with
the CompilerGym API, built from the backend's description alone.

Every episode is a worker process forked from the zygote; ``fork()`` forks
the worker. The env keeps only bookkeeping in Python (actions, episode
reward, chosen spaces); every observation and reward is computed in the
worker and crosses shared memory once per step. The spaces come from the
backend's description (:mod:`forkgym.spaces`), built once per description
and shared by every env and fork of it. A backend needs no class of its
own; one with helpers of its own subclasses this (``CompilerEnv``: IR,
bitcode, ``opt`` command lines; ``GccEnv``: ``choices``).

Lifecycle: ``CompilerEnv(backend=...)`` (no worker yet) → ``reset()`` (new
worker) → ``step()``/``multistep()``/``fork()`` → ``close()``. A crash or
timeout in a step truncates the episode (it does not raise); the next
``reset()`` starts a new worker, and a new zygote if the old one died.

Threads: an env may be used from several threads; its calls are serialised
by a lock (steps of different envs run in parallel, the GIL released).

``os.fork()``: in the child, an episode started by the parent belongs to the
parent; using it raises :class:`SessionNotStarted` saying so, and ``reset()``
starts one of the child's own (on the child's own zygote).

Ctrl-C during a long step raises ``KeyboardInterrupt`` within about 50 ms:
the worker is killed, the episode is over (``env.state`` and the
exception's ``reproducer`` attribute hold its actions), and ``reset()``
starts a new one.

Pickling (``pickle``, ``cloudpickle``, multiprocessing 'spawn'): an env
pickles as its construction arguments plus its episode (benchmark, actions)
and replays the episode when unpickled.
"""

from __future__ import annotations

import copy
import functools
import math
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

import gymnasium as gym
import numpy as np

from forkgym import _forkgym, crash_stack
from forkgym.benchmarks import Benchmark, canonical_uri, session_benchmark
from forkgym.datasets import Datasets
from forkgym.description import BackendDescription
from forkgym.errors import (
    BenchmarkInitError,
    BenchmarkNotFound,
    DatasetError,
    InvalidRequest,
    ServerUnavailable,
    SessionNotStarted,
    from_outcome,
)
from forkgym.outcome import Outcome, ends_episode, from_value
from forkgym.server import Server, ServerOptions, shared_server
from forkgym.spaces import (
    ActionSpace,
    ObservationSpaceSpec,
    RewardSpaceSpec,
    Spaces,
    build_observation_specs,
    build_reward_specs,
    freeze,
    lookup,
    private_space,
    rng_used,
    spaces_for,
)
from forkgym.state import CompilerEnvState

_envs: weakref.WeakSet[CompilerEnv] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # A thread of the parent may have held an env's lock at fork(); that
    # thread does not exist here, so the lock would never be released.
    for env in list(_envs):
        env._lock = threading.RLock()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _serialised(method: Callable[..., Any]) -> Callable[..., Any]:
    """Runs ``method`` holding the env's lock (one call at a time per env)."""

    @functools.wraps(method)
    def locked(self: CompilerEnv, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return method(self, *args, **kwargs)

    return locked


@dataclass
class StepPlan:
    """One step's request, prepared in Python and completed after the native call.
    Split in two so the vector env can send many plans with one ``step_many``."""

    actions: list[int]
    native_actions: list[int]
    observation_specs: list[ObservationSpaceSpec]
    reward_specs: list[RewardSpaceSpec]
    native_observations: list[str]
    native_rewards: list[str]
    default_reward: int | None  # index into native_rewards of the default reward space
    explicit_observations: bool
    explicit_rewards: bool


def _owning_env(view: Any) -> CompilerEnv:
    """The env a view (``env.observation``, ``env.reward``) belongs to. Views
    hold their env weakly: an env in no reference cycle is freed -- its worker
    ended, its descriptors closed -- the moment its last reference goes, not
    whenever the garbage collector next runs."""
    env = view._env_ref()
    if env is None:
        raise SessionNotStarted("the env this view belongs to no longer exists: keep a reference to the env "
                                "(env.observation and env.reward do not keep it alive)")
    return env


class OwnSpecs(Mapping):
    """``env.observation.spaces``: the described observations by name, each spec
    the env's own copy of the shared one (made on first use, see
    :func:`forkgym.spaces.private_space`), so that seeding or sampling a space
    got from one env never changes another env's samples."""

    def __init__(self, env: CompilerEnv) -> None:
        self._env_ref = weakref.ref(env)

    _env = property(_owning_env)

    def __getitem__(self, name: str) -> ObservationSpaceSpec:
        return self._env._own_spec(self._env._observation_specs[name])

    def __iter__(self):
        return iter(self._env._observation_specs)

    def __len__(self) -> int:
        return len(self._env._observation_specs)

    def __contains__(self, name: object) -> bool:
        return name in self._env._observation_specs


class ObservationView:
    """``env.observation["Ir"]``, or CompilerGym's call form
    ``env.observation.Ir()``: computes one observation of the current state on
    request.

    ``file_directory``: where observations that are files (``BitcodeFile``)
    are written (default None: the system temporary directory); the caller
    owns each file. ``env.observation.BitcodeFile(directory=...)`` chooses
    another for one call.
    """

    def __init__(self, env: CompilerEnv) -> None:
        self._env_ref = weakref.ref(env)
        self.spaces: Mapping[str, ObservationSpaceSpec] = OwnSpecs(env)
        self.file_directory: str | os.PathLike[str] | None = None

    _env = property(_owning_env)

    def __getitem__(self, name: str) -> Any:
        return self._compute(name, self.file_directory)

    def _compute(self, name: str, directory: Any) -> Any:
        env = self._env
        spec = lookup(env._observation_specs, name, "observation")
        if spec.prepare is not None:
            spec.prepare()
        result = env._request([], [spec.native], [])
        return spec.present(result.observations[0], directory)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        # Only for names that are no attribute of the view: the observation
        # spaces, as callables (CompilerGym's env.observation.Autophase()).
        if name.startswith("_"):
            raise AttributeError(name)
        env = self._env
        if name not in env._observation_specs:
            raise AttributeError(f"'{name}' is not an observation space of this env; valid names: "
                                 f"{', '.join(sorted(env._observation_specs))}")

        def compute(directory: str | os.PathLike[str] | None = None) -> Any:
            return self._compute(name, directory if directory is not None else self.file_directory)

        compute.__name__ = name
        compute.__doc__ = env._observation_specs[name].description
        return compute

    def __contains__(self, name: str) -> bool:
        return name in self._env._observation_specs

    def __iter__(self):
        return iter(self._env._observation_specs)


class RewardView:
    """``env.reward["IrInstructionCountOz"]``: the reward accrued since this reward
    was last computed. Asking for the default reward also counts towards
    ``episode_reward`` (the worker moves the reward's baseline on)."""

    def __init__(self, env: CompilerEnv) -> None:
        self._env_ref = weakref.ref(env)
        self.spaces: Mapping[str, RewardSpaceSpec] = env._reward_specs

    _env = property(_owning_env)

    def __getitem__(self, name: str) -> float:
        lookup(self.spaces, name, "reward")
        result = self._env._request([], [], [name])
        reward = float(result.rewards[0])
        if self._env._reward_spec is not None and name == self._env._reward_spec.name:
            self._env.episode_reward += reward
        return reward

    def __contains__(self, name: str) -> bool:
        return name in self.spaces

    def __iter__(self):
        return iter(self.spaces)


class CompilerEnv(gym.Env):
    """A compiler optimisation task: choose the next action for a program.

    Args:
        benchmark: URI or :class:`Benchmark` (default: the class's ``default_benchmark``).
        observation_space: name of the default observation space, or None.
        reward_space: name of the default reward space, or None.
        server: a :class:`Server` or :class:`ServerOptions`; default: one private
            zygote shared by every env of this process.
        step_timeout, reset_timeout: wall-clock seconds before a worker is killed.
        address_space_mb, cpu_seconds_per_step: per-worker limits (0 = server default).
        backend: the server's backend to use (a subclass names its own).
    """

    # "ansi" (render() returns the text) is the declared mode, so checkers
    # such as gymnasium's check_env render quietly; "human" (print it, as
    # CompilerGym's render did) is still accepted but not declared: checkers
    # would print a whole IR. A text env's nominal frame rate, as gymnasium's
    # text environments declare one.
    metadata = {"render_modes": ["ansi"], "render_fps": 4}
    # The backend a subclass is for (None: given to the constructor).
    backend: str | None = None
    default_benchmark: str | None = None
    # The observation that hashes everything a later step can read, which
    # validate(fresh_process=True) compares across processes (None: the
    # backend has none, and that check is refused).
    state_hash_observation: str | None = None
    # The named tuples of the backend's "records" observations, by name
    # (LLVM's LexedIrTuple: LexedToken); others get one of their own.
    record_types: Mapping[str, Any] = MappingProxyType({})

    def __init__(
        self,
        benchmark: str | Benchmark | None = None,
        observation_space: str | None = None,
        reward_space: str | None = None,
        *,
        server: Server | ServerOptions | None = None,
        step_timeout: float = 300.0,
        reset_timeout: float = 300.0,
        address_space_mb: int = 0,
        cpu_seconds_per_step: int = 0,
        render_mode: str | None = None,
        backend: str | None = None,
    ) -> None:
        cls = type(self)
        if backend is None:
            backend = cls.backend
        if backend is None:
            raise InvalidRequest(f"{cls.__name__} needs a backend: pass backend='<name>' (see forkgym.ENV_TABLE), "
                                 "or use forkgym.make(<env id>)")
        if cls.backend is not None and backend != cls.backend:
            raise InvalidRequest(f"{cls.__name__} is the '{cls.backend}' backend's env, not '{backend}'s; "
                                 f"use forkgym.CompilerEnv(backend='{backend}') or the backend's own env id")
        server = server if isinstance(server, Server) else shared_server(server)
        limits = (float(step_timeout), float(reset_timeout), int(address_space_mb), int(cpu_seconds_per_step))
        init_kwargs = dict(
            benchmark=benchmark, observation_space=observation_space, reward_space=reward_space,
            server=server, step_timeout=step_timeout, reset_timeout=reset_timeout,
            address_space_mb=address_space_mb, cpu_seconds_per_step=cpu_seconds_per_step, render_mode=render_mode,
            backend=backend,
        )
        self._setup(server, backend, limits, init_kwargs, spaces_for(server, backend, cls.build_spaces), render_mode)
        self._benchmark = self._as_benchmark(benchmark) if benchmark is not None else self._default_benchmark()
        self.observation_space = observation_space  # type: ignore[assignment]
        self.reward_space = reward_space  # type: ignore[assignment]

    def _setup(self, server: Server, backend: str, limits: tuple[float, float, int, int],
               init_kwargs: dict[str, Any], spaces: Spaces, render_mode: str | None,
               parent: CompilerEnv | None = None) -> None:
        """The state every env has, without a round trip or a space built: what
        ``__init__`` and ``fork()`` share. A fork's generators (its spaces', its
        ``np_random``) continue from its ``parent``'s, as ``copy.deepcopy``'s would."""
        self._lock = threading.RLock()
        _envs.add(self)
        self._server = server
        self._backend = backend
        self._limits = limits
        self._init_kwargs = init_kwargs
        self._spaces = spaces
        self.action_space = spaces.action_space.for_env(parent.action_space if parent is not None else None)
        # id(shared spec) -> (shared spec, this env's copy): the shared spec is
        # kept so that its id is never reused while the entry lives.
        self._own_specs: dict[int, tuple[ObservationSpaceSpec, ObservationSpaceSpec]] = {}
        # id(this env's copy) -> the shared spec it copies (a user may hand a copy back).
        self._own_ids: dict[int, ObservationSpaceSpec] = {}
        if parent is not None:
            for shared, theirs in parent._own_specs.values():
                if rng_used(theirs.space):  # else the shared space serves, copied on first use
                    self._adopt(shared, replace(shared, space=private_space(shared.space, theirs.space)))
            if parent._np_random is not None:
                self._np_random = copy.deepcopy(parent._np_random)
                self._np_random_seed = parent._np_random_seed
        self._observation_specs = spaces.observations
        self._reward_specs = spaces.rewards
        self.observation = ObservationView(self)
        self.reward = RewardView(self)
        self.datasets = Datasets()
        self.render_mode = render_mode

        self._native: _forkgym.Env | None = None
        self._native_connection: _forkgym.Connection | None = None
        self._benchmark: Benchmark | None = None
        self._benchmark_in_use: Benchmark | None = None
        self._observation_spec: ObservationSpaceSpec | None = None
        self._reward_spec: RewardSpaceSpec | None = None
        self._actions: list[int] = []
        self.episode_reward: float = 0.0
        self._episode_start = time.monotonic()
        self._episode_over = False

    @classmethod
    def build_spaces(cls, description: BackendDescription) -> Spaces:
        """Every space of this env class for ``description``; called once per
        description in a process (see :func:`forkgym.spaces.spaces_for`).
        A subclass adds its own derived observations in
        :meth:`derived_observations`."""
        observations = build_observation_specs(description, cls.record_types)
        observations.update(cls.derived_observations(description, observations))
        for spec in observations.values():
            spec.space.name = spec.id  # CompilerGym's spaces carry their name
            freeze(spec.space)
        # Read-only: every env and fork of this description shares them.
        return Spaces(
            description=description,
            action_space=cls.make_action_space(description),
            observations=MappingProxyType(observations),
            rewards=MappingProxyType(build_reward_specs(description)),
        )

    @classmethod
    def make_action_space(cls, description: BackendDescription) -> ActionSpace:
        return ActionSpace(description.actions, description.action_space_name, replay=description.replay)

    @classmethod
    def derived_observations(
        cls, description: BackendDescription, observations: dict[str, ObservationSpaceSpec]
    ) -> dict[str, ObservationSpaceSpec]:
        """Views a backend's env computes in Python from described observations
        (none by default)."""
        return {}

    @property
    def description(self) -> BackendDescription:
        """The backend's description (actions and spaces as data)."""
        return self._spaces.description

    @property
    def compiler_version(self) -> str:
        return self._spaces.description.version

    # ---------------------------------------------------------- spaces --

    def _own_spec(self, spec: ObservationSpaceSpec) -> ObservationSpaceSpec:
        """This env's copy of ``spec`` (made on first use; a copy of this env's is itself)."""
        if id(spec) in self._own_ids:
            return spec
        found = self._own_specs.get(id(spec))
        if found is None:
            return self._adopt(spec, replace(spec, space=private_space(spec.space)))
        return found[1]

    def _adopt(self, shared: ObservationSpaceSpec, own: ObservationSpaceSpec) -> ObservationSpaceSpec:
        self._own_specs[id(shared)] = (shared, own)
        self._own_ids[id(own)] = shared
        return own

    @property
    def observation_space(self) -> gym.spaces.Space:  # type: ignore[override]
        """The default observation's gymnasium space (``NoObservation`` if none),
        this env's own. Set it by name: ``env.observation_space = "Autophase"``."""
        if self._observation_spec is None:
            return self._own_no_observation()
        return self._own_spec(self._observation_spec).space

    def _own_no_observation(self) -> gym.spaces.Space:
        mine = self.__dict__.get("_no_observation")
        if mine is None:
            mine = self._no_observation = private_space(self._spaces.no_observation)
        return mine

    @observation_space.setter
    def observation_space(self, space: str | ObservationSpaceSpec | gym.spaces.Space | None) -> None:
        if space is None:
            self._observation_spec = None
        elif isinstance(space, ObservationSpaceSpec):
            self._observation_spec = self._own_ids.get(id(space), space)
        else:
            name = space if isinstance(space, str) else getattr(space, "name", None)
            self._observation_spec = lookup(self._observation_specs, str(name), "observation")

    @property
    def observation_space_spec(self) -> ObservationSpaceSpec | None:
        return self._own_spec(self._observation_spec) if self._observation_spec is not None else None

    @property
    def reward_space(self) -> RewardSpaceSpec | None:
        """The default reward space (``None`` if unset; steps then return reward 0.0).
        Set it by name: ``env.reward_space = "IrInstructionCountOz"``."""
        return self._reward_spec

    @reward_space.setter
    def reward_space(self, space: str | RewardSpaceSpec | None) -> None:
        self._reward_spec = None if space is None else lookup(self._reward_specs, str(space), "reward")

    # ------------------------------------------------------- benchmarks --

    def _as_benchmark(self, benchmark: str | Benchmark | Any) -> Benchmark:
        if isinstance(benchmark, Benchmark):
            return benchmark
        return Benchmark(canonical_uri(benchmark))

    def _default_benchmark(self) -> Benchmark | None:
        default = type(self).default_benchmark
        return Benchmark(default) if default else None

    @property
    def benchmark(self) -> Benchmark | None:
        """The benchmark of the current episode (or of the next, once set).
        Setting it takes effect at the next ``reset()``, as in CompilerGym."""
        return self._benchmark_in_use or self._benchmark

    @benchmark.setter
    def benchmark(self, benchmark: str | Benchmark) -> None:
        self._benchmark = self._as_benchmark(benchmark)

    # ----------------------------------------------------------- episode --

    @property
    def in_episode(self) -> bool:
        return self._native is not None and self._native.alive

    @_serialised
    def reset(  # type: ignore[override]
        self,
        *,
        seed: int | None = None,
        options: dict[str, Any] | None = None,
        benchmark: str | Benchmark | None = None,
        observation_space: str | None = None,
        reward_space: str | None = None,
    ) -> tuple[Any, dict[str, Any]]:
        """Starts a new episode in a fresh worker: ``(observation, info)``.

        The benchmark may be given as ``reset(benchmark=...)`` or
        ``options={"benchmark": ...}`` (also ``"observation_space"``,
        ``"reward_space"``). ``seed`` seeds ``np_random`` and the action
        space; compilation itself is deterministic.
        """
        super().reset(seed=seed)
        if seed is not None:
            self.action_space.seed(seed)
        options = options or {}
        benchmark = options.get("benchmark", benchmark)
        previous = self._benchmark
        if benchmark is not None:
            self.benchmark = benchmark
        if "observation_space" in options or observation_space is not None:
            self.observation_space = options.get("observation_space", observation_space)
        if "reward_space" in options or reward_space is not None:
            self.reward_space = options.get("reward_space", reward_space)

        if self._benchmark is None:
            raise BenchmarkNotFound(f"no benchmark: the '{self._backend}' backend has no default one; pass "
                                    "benchmark=<uri> to reset() or to the env")
        try:
            self._start_session(*session_benchmark(self._benchmark))
        except (BenchmarkNotFound, BenchmarkInitError, DatasetError):
            # A bad benchmark given to this reset does not stick: reset() works again.
            self._benchmark = previous
            raise
        self._benchmark_in_use = self._benchmark
        self._actions = []
        self.episode_reward = 0.0
        self._episode_start = time.monotonic()
        self._episode_over = False
        self._on_episode_start()
        observation = None
        if self._observation_spec is not None:
            observation = self.observation[self._observation_spec.id]
        return observation, {"benchmark": self._benchmark.uri}

    def _start_session(self, uri: str, run_config: Any = None) -> None:
        """A worker for ``uri`` (with ``run_config``, a :class:`forkgym.RunConfig`,
        when the benchmark has one of its own); if the zygote died, one retry on a
        new zygote."""
        for attempt in range(2):
            connection = self._server.connection()
            if self._native is None or self._native_connection is not connection:
                if self._native is not None:
                    self._native.close()
                self._native = self._new_session(connection)
                self._native_connection = connection
            try:
                _reset_native(self._native, uri, run_config)
                return
            except ServerUnavailable:
                if attempt:
                    raise
                self._server.renew(connection)

    def _on_episode_start(self) -> None:
        """Backend settings a new episode needs (a subclass's); nothing by default."""

    @_serialised
    def send_param(self, key: str, value: str) -> str:
        """Sets a backend parameter of this episode (CompilerGym's ``send_param``,
        e.g. gcc's ``choices``) and returns the backend's answer. An unknown key
        raises InvalidRequest naming the keys the backend accepts."""
        return self._require_episode().set_parameter(key, value)

    @_serialised
    def cached_rewards(self, actions: Iterable[int],
                       reward_space: str | RewardSpaceSpec | None = None) -> list[float | None]:
        """What stepping each action alone from the current state would reward
        (``reward_space``, by default the env's), for the actions whose step the
        node-wide state cache already holds; None for the others (for every
        action when the server runs without the cache). Changes nothing: no
        pass runs and the episode stays where it is. A search uses it to skip
        stepping candidates it has seen before (``forkgym search`` does)."""
        native = self._require_episode()
        checked = [self.action_space.check(a) for a in actions]
        if reward_space is None:
            if self._reward_spec is None:
                raise InvalidRequest("cached_rewards() needs a reward space: pass reward_space=, or set "
                                     "env.reward_space")
            name = self._reward_spec.name
        else:
            name = lookup(self._reward_specs, str(reward_space), "reward").name
        return [None if answer is None else float(answer[0]) for answer in native.peek(checked, name)]

    def _new_session(self, connection: _forkgym.Connection) -> _forkgym.Env:
        """A native session of this env's backend, with its limits (no worker until reset)."""
        return _forkgym.Env(connection, *self._limits, backend=self._backend)

    def _require_episode(self) -> _forkgym.Env:
        if self._native is None or not self._native.alive:
            owner = self._native.inherited_from if self._native is not None else 0
            if owner:
                raise SessionNotStarted(
                    f"this episode belongs to process {owner}; this process ({os.getpid()}) was fork()ed from it "
                    "and cannot use its worker. Call env.reset() to start one in this process"
                )
            why = "the last episode ended (see the step's info['outcome'])" if self._episode_over else \
                "no episode is running"
            raise SessionNotStarted(f"{why}; call env.reset() first")
        return self._native

    def _native_step(self, native: _forkgym.Env, actions: list[int], native_actions: list[int],
                     observations: list[str], rewards: list[str]) -> Any:
        """One native step. Ctrl-C while waiting ends the episode (the native
        layer killed the worker) and propagates with the reproducer attached."""
        try:
            return native.step(native_actions, observations, rewards)
        except KeyboardInterrupt:
            if not native.alive:
                self._actions.extend(actions)
                self._episode_over = True
            raise

    @_serialised
    def _request(self, actions: list[int], observations: list[str], rewards: list[str]) -> Any:
        """A step that must succeed (lazy observations, rewards): failures raise."""
        native = self._require_episode()
        result = self._native_step(native, actions, actions, observations, rewards)
        if not result.ok:
            if ends_episode(result.outcome):
                self._episode_over = True
            raise from_outcome(result.outcome, result.message, result.signal, result.reproducer, result.stack)
        return result

    # -------------------------------------------------------------- step --

    def step(  # type: ignore[override]
        self,
        action: int | Sequence[int],
        observation_spaces: Sequence[str | ObservationSpaceSpec] | None = None,
        reward_spaces: Sequence[str | RewardSpaceSpec] | None = None,
        observations: Sequence[str | ObservationSpaceSpec] | None = None,
        rewards: Sequence[str | RewardSpaceSpec] | None = None,
    ) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        """Applies one action (or a list, as ``multistep``).

        Returns gymnasium's five-tuple. With ``observation_spaces`` /
        ``reward_spaces`` the observation / reward are lists in that order.
        A worker crash or timeout returns ``truncated=True``, default
        observations, a reward cancelling the episode return, and
        ``info["outcome"]`` and ``info["reproducer"]``.
        """
        # An int is by far the most common action; np.ndim() alone costs a
        # few microseconds, a sizeable part of a small step.
        if isinstance(action, (int, np.integer)) or np.ndim(action) == 0:
            actions = [action]
        else:
            actions = list(action)  # type: ignore[arg-type]
        return self.multistep(actions, observation_spaces, reward_spaces, observations, rewards)

    @_serialised
    def multistep(
        self,
        actions: Iterable[int],
        observation_spaces: Sequence[str | ObservationSpaceSpec] | None = None,
        reward_spaces: Sequence[str | RewardSpaceSpec] | None = None,
        observations: Sequence[str | ObservationSpaceSpec] | None = None,
        rewards: Sequence[str | RewardSpaceSpec] | None = None,
    ) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        """Applies many actions in one round trip to the worker."""
        plan = self._plan_step(actions, observation_spaces or observations, reward_spaces or rewards)
        native = self._require_episode()
        result = self._native_step(native, plan.actions, plan.native_actions, plan.native_observations,
                                   plan.native_rewards)
        return self._complete_step(plan, result)

    def _plan_step(self, actions: Iterable[int], observation_spaces: Any, reward_spaces: Any) -> StepPlan:
        self._require_episode()
        checked = [self.action_space.check(a) for a in actions]
        unavailable = self.action_space.unavailable
        native_actions = [a for a in checked if a not in unavailable]

        explicit_obs = observation_spaces is not None
        if explicit_obs:
            obs_specs = [s if isinstance(s, ObservationSpaceSpec) else lookup(self._observation_specs, s, "observation")
                         for s in observation_spaces]
        else:
            obs_specs = [self._observation_spec] if self._observation_spec else []
        explicit_rewards = reward_spaces is not None
        if explicit_rewards:
            reward_specs = [lookup(self._reward_specs, str(s), "reward") for s in reward_spaces]
        else:
            reward_specs = [self._reward_spec] if self._reward_spec else []

        for spec in obs_specs:
            if spec.prepare is not None:  # before the worker steps: a failure here changes nothing
                spec.prepare()
        native_obs = list(dict.fromkeys(s.native for s in obs_specs))
        native_rewards = [s.name for s in reward_specs]
        default_reward = None
        if self._reward_spec is not None:
            # Always track the default reward so episode_reward stays the episode's return.
            if self._reward_spec.name not in native_rewards:
                native_rewards.append(self._reward_spec.name)
            default_reward = native_rewards.index(self._reward_spec.name)
        return StepPlan(checked, native_actions, obs_specs, reward_specs, native_obs, native_rewards,
                        default_reward, explicit_obs, explicit_rewards)

    @staticmethod
    def _ended_info(result: Any) -> dict[str, Any]:
        """step()'s info for a step that ended the episode."""
        return {
            "action_had_no_effect": True,
            "outcome": from_value(result.outcome),
            "error_details": result.message,
            "signal": result.signal,
            "reproducer": result.reproducer,
            # A crash's stack as the worker's crash reporter recorded it
            # ((module, offset, exact) per frame, innermost first) and its
            # symbolised signature (forkgym.crash_stack), "" without one.
            "stack": [tuple(frame) for frame in result.stack],
            "stack_signature": crash_stack.signature(result.stack) if result.stack else "",
        }

    def _complete_step(self, plan: StepPlan, result: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        truncated = False
        if result.ok:
            self._actions.extend(plan.actions)
            values = dict(zip(plan.native_observations, result.observations))
            directory = self.observation.file_directory
            observations = [spec.present(values[spec.native], directory) for spec in plan.observation_specs]
            native_rewards = list(result.rewards)
            if plan.default_reward is not None:
                self.episode_reward += native_rewards[plan.default_reward]
            rewards = native_rewards[: len(plan.reward_specs)]
            info: dict[str, Any] = {
                "action_had_no_effect": bool(result.action_had_no_effect) or not plan.native_actions,
            }
        elif ends_episode(result.outcome):
            # The worker is gone: truncate, cancel the return, say why and how to reproduce.
            self._actions.extend(plan.actions)
            self._episode_over = True
            truncated = True
            observations = [spec.default() for spec in plan.observation_specs]
            rewards = [spec.reward_on_error(self.episode_reward) for spec in plan.reward_specs]
            if self._reward_spec is not None:
                self.episode_reward += self._reward_spec.reward_on_error(self.episode_reward)
            info = self._ended_info(result)
        else:
            raise from_outcome(result.outcome, result.message, result.signal)

        if plan.explicit_observations:
            observation: Any = observations
        else:
            observation = observations[0] if observations else None
        if plan.explicit_rewards:
            reward: Any = [float(r) for r in rewards]
        else:
            reward = float(rewards[0]) if rewards else 0.0
        return observation, reward, False, truncated, info

    # ------------------------------------------------------------- fork --

    @_serialised
    def fork(self) -> CompilerEnv:
        """A copy of this episode in a copy-on-write ``fork(2)`` of its worker.

        The copy has the same actions, rewards so far and spaces, and evolves
        independently; close it when done (or let it be garbage collected).
        Before the first ``reset()`` (or after ``close()``) this starts the
        episode first, as CompilerGym did.
        """
        if self._native is None:
            self.reset()
        native = self._require_episode()
        return self._adopt_fork(native.fork())

    def _adopt_fork(self, copy_native: Any) -> CompilerEnv:
        """The env of ``copy_native``, a fork of this episode's worker."""
        # The copy shares this env's spaces: nothing is described or built.
        other = object.__new__(type(self))
        other._setup(self._server, self._backend, self._limits, self._init_kwargs, self._spaces, self.render_mode,
                     parent=self)
        other._native = copy_native
        other._native_connection = self._native_connection
        other._benchmark = self._benchmark
        other._benchmark_in_use = self._benchmark_in_use
        other._observation_spec = self._observation_spec
        other._reward_spec = self._reward_spec
        other._actions = list(self._actions)
        other.episode_reward = self.episode_reward
        other._episode_start = self._episode_start
        other.spec = self.spec
        return other

    @_serialised
    def _try_action(self, action: int, before: float = 0.0, keep_above: float = math.inf,
                    keep_ties: bool = False) -> tuple[float | None, dict[str, Any] | None, Any]:
        """A search's inner step (forkgym.cli.strategies): ``action`` stepped once in
        a fork of this episode, in this env's reward space, without building an
        env for the fork: (reward, ended, fork). The fork is kept, as a native
        handle for :meth:`_adopt_tried`, only if ``before`` + the reward beats
        ``keep_above`` (or ties it, with ``keep_ties``); else it is closed at
        once. When the fork's episode ended (a crash, a timeout) the reward is
        None and ``ended`` is the info :meth:`step` would have returned."""
        if self._reward_spec is None:
            raise ValueError("trying an action needs a reward space; make the env with reward_space=...")
        native = self._require_episode()
        # An unavailable action: the worker's InvalidRequest (with its reason) is raised below.
        result, fork = native.try_action(self.action_space.check(action), self._reward_spec.name, before, keep_above,
                                         keep_ties)
        if result.ok:
            return float(result.rewards[0]), None, fork
        if not ends_episode(result.outcome):
            raise from_outcome(result.outcome, result.message, result.signal)
        return None, self._ended_info(result), None

    def _adopt_tried(self, fork: Any, action: int, reward: float) -> CompilerEnv:
        """The env of a fork :meth:`_try_action` returned: this episode one step on."""
        other = self._adopt_fork(fork)
        other._actions.append(self.action_space.check(action))
        other.episode_reward += reward
        return other

    def __deepcopy__(self, memo: dict[int, Any]) -> CompilerEnv:
        return self.fork()

    # ---------------------------------------------------------- pickle --

    def __reduce__(self) -> tuple[Any, ...]:
        """Construction arguments plus the episode (benchmark, actions); unpickling
        starts a new worker and replays the actions (see :func:`_unpickle_env`)."""
        with self._lock:
            kwargs = dict(self._init_kwargs)
            kwargs["benchmark"] = self._benchmark.state_uri if self._benchmark is not None else None
            kwargs["observation_space"] = None
            kwargs["reward_space"] = None
            in_episode = self.in_episode
            state = {
                "observation_space": self._space_key(self._observation_spec, self._observation_specs),
                "reward_space": self._space_key(self._reward_spec, self._reward_specs),
                "episode": (self._benchmark_in_use or self._benchmark).state_uri if in_episode else None,
                "actions": list(self._actions),
                "episode_reward": self.episode_reward,
                "spec": self.spec,
                "extras": self._episode_extras() if in_episode else {},
            }
        return (_unpickle_env, (type(self), kwargs, state))

    def _episode_extras(self) -> dict[str, Any]:
        """What a pickle must carry besides the actions to rebuild the episode
        (a subclass's backend state set other than by actions); none by default."""
        return {}

    def _restore_extras(self, extras: dict[str, Any]) -> None:
        """Applies :meth:`_episode_extras` after the actions are replayed."""

    @staticmethod
    def _space_key(spec: Any, table: Mapping[str, Any]) -> Any:
        """A space by name when it is one of the table's, else the spec itself."""
        if spec is None:
            return None
        return spec.id if table.get(spec.id) is spec else spec

    @_serialised
    def close(self) -> None:
        """Ends the episode's worker. The env can be reset again afterwards."""
        if self._native is not None:
            self._native.close()
        self._native = None
        self._native_connection = None

    def __enter__(self) -> CompilerEnv:
        return self

    def __exit__(self, *args: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            # Not through close(): a finaliser must never wait for a lock.
            if self._native is not None:
                self._native.close()
        except Exception:
            pass

    # ------------------------------------------------ CompilerGym extras --

    @property
    def actions(self) -> list[int]:
        """Every action applied this episode, in order (including no-op unavailable ones)."""
        return list(self._actions)

    @property
    def episode_walltime(self) -> float:
        """Seconds since ``reset()``."""
        return time.monotonic() - self._episode_start

    def commandline(self, actions: Iterable[int] | None = None) -> str:
        """The backend's replay command line of the episode's actions (or of
        ``actions``); :meth:`commandline_to_actions` reads it back."""
        return self.action_space.to_string(self._actions if actions is None else actions)

    def commandline_to_actions(self, commandline: str) -> list[int]:
        return self.action_space.from_string(commandline)

    @property
    def state(self) -> CompilerEnvState:
        """The episode as a :class:`CompilerEnvState` (reward = episode_reward, or None
        without a reward space)."""
        benchmark = self.benchmark
        return CompilerEnvState(
            benchmark=benchmark.state_uri if benchmark is not None else "",
            commandline=self.commandline(),
            walltime=self.episode_walltime,
            reward=self.episode_reward if self._reward_spec is not None else None,
            benchmark_hash=self.benchmark_hash,
        )

    @property
    def benchmark_hash(self) -> str:
        """The content hash of this episode's benchmark as the server loaded it at
        ``reset()`` ("" before any episode): states and reproducers record it, and
        ``validate()`` refuses to replay a state on content that has changed since."""
        native = self._native
        return native.benchmark_hash if native is not None else ""

    def apply(self, state: CompilerEnvState) -> None:
        """Replays ``state`` in this env (resets to its benchmark, then reaches its
        state). Raises if the replay crashes."""
        self._check_replayable(state)
        self.reset(benchmark=state.benchmark)
        if state.benchmark_hash and self.benchmark_hash != state.benchmark_hash:
            from forkgym.validate import _changed_message

            raise BenchmarkInitError(_changed_message(state, self.benchmark_hash), Outcome.BENCHMARK_ERROR)
        self._replay_in_episode(state)

    def _check_replayable(self, state: CompilerEnvState) -> None:
        """Raises before any reset if ``state``'s command line is not this env's."""
        self.action_space.from_string(state.commandline)

    def _replay_in_episode(self, state: CompilerEnvState) -> None:
        """Reaches ``state`` from the start of an episode on its benchmark."""
        _, _, _, truncated, info = self.multistep(self.action_space.from_string(state.commandline))
        if truncated:
            raise from_outcome(info["outcome"], info["error_details"], info["signal"], info["reproducer"],
                               info.get("stack", ()))

    def _prepare_replay(self, native: _forkgym.Env, state: CompilerEnvState) -> list[int]:
        """For validation: sets up a fresh session on ``state``'s benchmark and
        returns the actions that reach ``state`` from there."""
        unavailable = self.action_space.unavailable
        return [a for a in self.action_space.from_string(state.commandline) if a not in unavailable]

    def validate(
        self,
        state: CompilerEnvState | None = None,
        *,
        fresh_process: bool = False,
        semantics: bool | None = None,
        sanitizers: Sequence[str] = (),
        output_filter: Any = None,
        compare_stderr: bool = True,
        gold_runs: int = 2,
    ) -> Any:
        """Replays a state (default: this episode) in a fresh worker and checks it.

        Returns a :class:`forkgym.validate.ValidationResult`; for this
        episode, when the backend has a state hash (LLVM: ``IrSha1``), the
        replay's must equal the current one.

        ``fresh_process=True`` also replays the state step by step in a zygote
        started for the purpose, with a heap laid out differently, and compares
        :attr:`state_hash_observation` (LLVM: ``BitcodeSha1``) after every
        step: a result that depends on heap addresses (which every episode of
        one zygote shares) shows as ``cross_process_divergent_step``
        (:func:`forkgym.validate.validate_across_processes`).

        A runnable benchmark (one with a run configuration: make_benchmark's
        keywords, or its dataset's) is also validated semantically
        (:mod:`forkgym.semantics`): the unoptimised program is built and run
        ``gold_runs`` times on every input set, the state's program once, and
        their exit status, stdout, stderr (unless ``compare_stderr=False``) and
        output files compared, modulo ``output_filter`` (a function of the
        bytes, or a regular expression whose matching lines are dropped);
        ``sanitizers=["asan"]`` runs an AddressSanitizer build of the state too.
        ``semantics=False`` skips this; ``semantics=True`` makes a state whose
        semantics could not be validated (not runnable, nondeterministic)
        not okay. The result's ``semantics_failures`` say which check failed
        and how; ``benchmark_nondeterministic`` that two unoptimised runs
        differed, so nothing was concluded.
        """
        from forkgym.semantics import SemanticsOptions
        from forkgym.validate import validate_across_processes, validate_states

        options = SemanticsOptions(semantics=semantics, sanitizers=tuple(sanitizers) if not isinstance(
            sanitizers, str) else (sanitizers,), output_filter=output_filter, compare_stderr=compare_stderr,
            gold_runs=gold_runs)
        expected_hash = None
        if state is None:
            state = self.state
            hash_name = self.validation_observations(self._reward_spec)[0]
            expected_hash = self.observation[hash_name] if hash_name else None
        result = validate_states([state], self, expected_sha1=[expected_hash], semantics=options)[0]
        if fresh_process and not (result.benchmark_changed or result.actions_replay_failed):
            validate_across_processes(self, state, result)
        return result

    @classmethod
    def validation_observations(cls, reward: RewardSpaceSpec | None) -> tuple[str | None, str | None, str | None]:
        """What validation compares, by observation name: the state hash (a replay
        must reproduce it), and the cost the reward measures with its baseline
        (for the size-vs-baseline summary). None where the backend has none."""
        return None, None, None

    @property
    def worker_pid(self) -> int:
        """The pid of the worker running this episode (-1 without one)."""
        return self._native.worker_pid if self._native is not None else -1

    @property
    def server_pid(self) -> int:
        """The pid of the private zygote this env uses (-1 for a shared socket server)."""
        return self._server.connection().server_pid

    @property
    def connection(self) -> _forkgym.Connection:
        return self._server.connection()

    def render(self) -> str | None:
        """``"ansi"`` returns the default observation as text; ``"human"`` prints it."""
        if self.render_mode is None:
            return None
        if self._observation_spec is None:
            raise InvalidRequest("nothing to render: set env.observation_space first")
        text = str(self.observation[self._observation_spec.id])
        if self.render_mode == "human":
            print(text)
            return None
        return text

    def __repr__(self) -> str:
        env_id = self.spec.id if self.spec else type(self).__name__
        uri = self.benchmark.uri if self.benchmark else None
        return f"<{env_id} benchmark={uri}>"


def _reset_native(native: _forkgym.Env, uri: str, run_config: Any) -> None:
    """Starts ``native``'s session on ``uri``, with the benchmark's own run
    configuration when it has one (else the server attaches its dataset's)."""
    if run_config is None:
        native.reset(uri)
    else:
        native.reset(uri, run_config.to_native())


def _unpickle_env(cls: type[CompilerEnv], kwargs: dict[str, Any], state: dict[str, Any]) -> CompilerEnv:
    """Rebuilds a pickled env: same arguments and spaces, and if it was in an
    episode, a new worker replaying that episode's actions."""
    env = cls(**kwargs)
    env.spec = state["spec"]
    env.observation_space = state["observation_space"]
    env.reward_space = state["reward_space"]
    if state["episode"] is not None:
        next_benchmark = env._benchmark
        env.reset(benchmark=state["episode"])
        env._benchmark = next_benchmark
        if state["actions"]:
            _, _, _, truncated, info = env.multistep(state["actions"])
            if truncated:
                raise from_outcome(info["outcome"], "replaying the pickled episode failed: " + info["error_details"],
                                   info["signal"], info["reproducer"])
        env._restore_extras(state.get("extras", {}))
        env.episode_reward = state["episode_reward"]
    return env


def with_spec(env: CompilerEnv, spec: gym.envs.registration.EnvSpec, kwargs: dict[str, Any]) -> CompilerEnv:
    env.spec = replace(spec, kwargs={**spec.kwargs, **kwargs})
    return env


def __getattr__(name: str) -> Any:
    # forkgym.envs.LlvmEnv is where LlvmEnv lived before the backends were split
    # (gymnasium entry points and pickles written then name it).
    if name == "LlvmEnv":
        from forkgym.llvm_env import LlvmEnv

        return LlvmEnv
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
