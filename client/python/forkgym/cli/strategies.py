"""Search strategies over pass orderings, shared by ``search`` and ``leaderboard``.

Every strategy maximises the episode return in one reward space (the
objective) from a benchmark's initial state, and returns a
:class:`SearchResult`: the best action sequence, why the search stopped, its
wall time, and every failed step (a crash or timeout of a candidate is
counted and kept with its reproducer, never dropped silently).

Candidates are evaluated on copy-on-write forks of the episode
(``env.fork()``). With ``jobs`` > 1, a pool of threads evaluates them: the
work is in the forked worker processes, and client envs release the GIL while
a step is awaited, so threads overlap steps as well as processes would,
without a zygote and a replay of the episode per process. Each thread forks
its own copy of the current state once per round and forks candidates from
that copy, so the threads never queue on one env's lock. The choice among
candidates depends only on their rewards (ties: the lowest action index, the
earliest episode), never on which thread finished first, so a search gives
the same result with any ``jobs``.

Lifecycle: ``Searcher(config)`` → ``search(uri)`` per benchmark (one episode
root per benchmark, forked for every candidate, closed at the end) →
``close()`` (the thread pool).
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

# Rewards closer than this are equal (they are sums of ratios of integers).
EPSILON = 1e-9

STRATEGIES = ("greedy", "random", "beam", "policy")


@dataclass(frozen=True)
class Objective:
    """A reward space to maximise, and the cost observations that show it to a person:
    the cost after the search beside the cost after ``-Oz`` (when the backend has one)."""

    reward: str
    cost: str  # observation: the cost itself
    oz: str | None  # observation: the cost after -Oz, if any
    env_id: str | None  # the env id whose default reward this is (what `validate --env` takes)


# reward space → (cost observation, its -Oz baseline, env id). Derived for the
# ...Norm/...O3/plain variants of the same cost.
_COSTS = (
    ("IrInstructionCount", "IrInstructionCount", "IrInstructionCountOz"),
    ("ObjectTextSize", "ObjectTextSizeBytes", "ObjectTextSizeOz"),
    ("TextSize", "TextSizeBytes", "TextSizeOz"),
    ("Runtime", "Runtime", None),
)
_ENV_IDS = {"IrInstructionCountOz": "llvm-ic-v0", "ObjectTextSizeOz": "llvm-codesize-v0"}


def objective(reward: str) -> Objective:
    for prefix, cost, oz in _COSTS:
        if reward.startswith(prefix):
            return Objective(reward, cost, oz, _ENV_IDS.get(reward))
    return Objective(reward, "", None, None)


@dataclass
class SearchConfig:
    strategy: str = "greedy"
    reward: str = "IrInstructionCountOz"
    env_id: str = "llvm-v0"
    steps: int = 100  # greedy: the step cap; beam: the depth cap; random: an episode's length
    episodes: int = 100  # random: episodes per benchmark
    beam_width: int = 4
    time_budget: float | None = None  # seconds per benchmark
    step_timeout: float = 60.0
    jobs: int = 1
    seed: int = 0
    prune: bool = True
    check_opt: bool = False  # replay each result's command line with the server's opt: same IR hash?
    policy: Callable[[Any], Any] | None = None  # strategy "policy": policy(env) steps a reset env


@dataclass
class Failure:
    """A candidate step that ended its episode (crash, timeout, ...)."""

    outcome: str
    message: str
    reproducer: str


@dataclass
class SearchResult:
    benchmark: str
    actions: list[int]  # the best sequence, no-op passes pruned
    found: list[int]  # the best sequence as the strategy found it
    reward: float  # the return of `actions` in the objective's reward space
    stop: str  # why the search stopped
    walltime: float  # seconds, the whole search of this benchmark (pruning included)
    steps: int = 0  # candidate steps evaluated
    failures: list[Failure] = field(default_factory=list)
    commandline: str = ""
    flags: list[str] = field(default_factory=list)
    start_cost: float | None = None
    oz_cost: float | None = None
    final_cost: float | None = None
    state: Any = None  # CompilerEnvState of `actions`, walltime = the search's
    opt_check: str | None = None  # check_opt: "same IR hash", or what differed

    @property
    def vs_oz(self) -> float | None:
        """-Oz's cost over ours: > 1 means smaller than -Oz."""
        if self.oz_cost is None or not self.final_cost:
            return None
        return self.oz_cost / self.final_cost


def load_policy(text: str) -> Callable[[Any], Any]:
    """``module:callable`` or ``path/to/file.py:callable`` → the callable.
    It is called as ``policy(env)`` on an env reset to the benchmark and steps it
    (CompilerGym's leaderboard signature); the actions it took are the result."""
    module_name, sep, name = text.rpartition(":")
    if not sep or not module_name or not name:
        raise ValueError(f"--policy '{text}': give MODULE:CALLABLE (e.g. mypolicies:greedy) "
                         "or FILE.py:CALLABLE")
    if module_name.endswith(".py"):
        path = Path(module_name)
        if not path.is_file():
            raise ValueError(f"--policy '{text}': no file {path}")
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(module_name)
        except ImportError as e:
            raise ValueError(f"--policy '{text}': cannot import {module_name}: {e}") from e
    policy = getattr(module, name, None)
    if not callable(policy):
        raise ValueError(f"--policy '{text}': {module_name} has no callable '{name}'")
    return policy


class _Deadline:
    def __init__(self, budget: float | None) -> None:
        self.end = time.monotonic() + budget if budget else math.inf
        self.budget = budget

    def passed(self) -> bool:
        return time.monotonic() >= self.end


class Searcher:
    """Runs one strategy over benchmarks; the thread pool lives as long as it does."""

    def __init__(self, config: SearchConfig) -> None:
        if config.strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy '{config.strategy}'; strategies: {', '.join(STRATEGIES)}")
        if config.strategy == "policy" and config.policy is None:
            raise ValueError("strategy 'policy' needs --policy MODULE:CALLABLE")
        if config.jobs < 1 or config.steps < 1 or config.episodes < 1 or config.beam_width < 1:
            raise ValueError("--jobs, --steps, --episodes and --beam-width are at least 1")
        self.config = config
        self.objective = objective(config.reward)
        self._pool = ThreadPoolExecutor(config.jobs, thread_name_prefix="forkgym-search") if config.jobs > 1 else None
        self._lock = threading.Lock()
        # Set by close() (Ctrl-C included): threads stop at their next candidate
        # instead of finishing their share of the round.
        self._stopping = threading.Event()
        self._seconds: dict[int, float] = {}  # action -> how long its last candidate step took

    def close(self) -> None:
        self._stopping.set()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> Searcher:
        return self

    def __exit__(self, *args: object) -> None:
        self.close()

    # ------------------------------------------------------------ helpers --

    def make_env(self, uri: str) -> Any:
        import forkgym

        env = forkgym.make(self.config.env_id, reward_space=self.config.reward, step_timeout=self.config.step_timeout)
        try:
            env.reset(benchmark=uri)
        except BaseException:
            env.close()
            raise
        if self.config.reward not in [r.name for r in env.description.rewards]:
            env.close()
            raise ValueError(f"no reward space '{self.config.reward}'; rewards: "
                             f"{', '.join(r.name for r in env.description.rewards)}")
        return env

    def candidates(self, env: Any) -> list[int]:
        """The actions worth trying: every action of the space that does something on this build."""
        return [a for a in range(env.action_space.n) if a not in env.action_space.unavailable]

    def _map(self, function: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        if self._pool is None or len(items) <= 1:
            return [function(item) for item in items]
        return list(self._pool.map(function, items))

    def _step(self, env: Any, actions: Sequence[int], result: SearchResult) -> float | None:
        """Steps ``env`` by ``actions``; the reward, or None when the step ended the episode
        (recorded in ``result.failures``)."""
        _, reward, _, truncated, info = env.multistep(list(actions))
        with self._lock:
            result.steps += 1
            if truncated:
                outcome = info.get("outcome")
                reproducer = info.get("reproducer")
                result.failures.append(Failure(getattr(outcome, "name", str(outcome)).lower(),
                                               str(info.get("error_details", "")),
                                               getattr(reproducer, "commandline", "") or str(reproducer or "")))
                return None
        return float(reward)

    def _evaluate(self, env: Any, prefix_reward: float, actions: Sequence[int], result: SearchResult,
                  keep_best: bool = False) -> tuple[list[float | None], dict[int, Any]]:
        """Each action stepped once from ``env``'s state, in its own fork: the return
        after it. With ``keep_best``, also the fork of the best candidate each
        thread stepped ({index: env}), for the caller to adopt instead of
        stepping that action again, and to close."""
        rewards: list[float | None] = [None] * len(actions)
        kept: dict[int, Any] = {}

        def rank(i: int) -> tuple[float, int]:  # the order greedy picks by: return, then the lowest index
            return (rewards[i] if rewards[i] is not None else -math.inf, -i)

        def candidate(base: Any, i: int, held: int | None) -> int | None:
            """Steps candidate i from ``base``; the index whose fork this thread holds now."""
            started = time.perf_counter()
            child = base.fork()
            keep = False
            try:
                r = self._step(child, [actions[i]], result)
                rewards[i] = None if r is None else prefix_reward + r
                keep = keep_best and r is not None and (held is None or rank(i) > rank(held))
            finally:
                if not keep:
                    child.close()
            self._seconds[actions[i]] = time.perf_counter() - started
            if not keep:
                return held
            if held is not None:
                kept.pop(held).close()
            kept[i] = child
            return i

        if self._pool is None:
            held = None
            for i in range(len(actions)):
                held = candidate(env, i, held)
            return rewards, kept
        # Each thread takes the next candidate when it is free, the costliest
        # first (by what each action took last time): passes differ in cost by
        # orders of magnitude (-attributor against -dce), and a round lasts
        # until its slowest candidate ends, so the cheap ones fill in at the
        # end. Only the order of work depends on timing, never the result.
        indices = iter(sorted(range(len(actions)), key=lambda i: -self._seconds.get(actions[i], math.inf)))
        taking = threading.Lock()

        def next_index() -> int | None:
            with taking:
                return next(indices, None)

        def run(_: int) -> None:
            base = env.fork()  # this thread's copy: forks below queue on no other thread's lock
            held = None
            try:
                while (i := next_index()) is not None:
                    if self._stopping.is_set():
                        return
                    held = candidate(base, i, held)
            finally:
                base.close()

        self._map(run, list(range(min(self.config.jobs, len(actions)))))
        return rewards, kept

    # --------------------------------------------------------- strategies --

    def _greedy(self, root: Any, result: SearchResult, deadline: _Deadline) -> list[int]:
        """One action at a time: the one that raises the return most, until none
        does (or the step cap, or the time budget)."""
        env = root.fork()
        try:
            candidates = self.candidates(env)
            actions: list[int] = []
            total = 0.0
            while True:
                if len(actions) >= self.config.steps:
                    result.stop = f"step cap ({self.config.steps}) reached while still improving"
                    break
                if deadline.passed():
                    result.stop = f"time budget ({deadline.budget:g} s)"
                    break
                rewards, kept = self._evaluate(env, total, candidates, result, keep_best=True)
                best = max(range(len(candidates)), key=lambda i: (rewards[i] if rewards[i] is not None else -math.inf, -i))
                chosen = kept.pop(best, None)  # the best is the best its thread saw: it holds that fork
                for other in kept.values():
                    other.close()
                if rewards[best] is None or rewards[best] <= total + EPSILON:
                    if chosen is not None:
                        chosen.close()
                    result.stop = "no improvement"
                    break
                if chosen is not None:
                    env.close()
                    env = chosen  # the state after the best step: adopted, not stepped again
                    total = rewards[best]
                else:  # its thread was stopped before it could keep it
                    r = self._step(env, [candidates[best]], result)
                    if r is None:
                        result.stop = "the chosen step failed on replay"
                        break
                    total += r
                actions.append(candidates[best])
            return actions
        finally:
            env.close()

    def _random(self, root: Any, result: SearchResult, deadline: _Deadline) -> list[int]:
        """Episodes of uniformly random actions; the best prefix of any of them.
        Episode i draws from its own seed (the seed, the benchmark, i), so which
        episodes run where does not matter."""
        candidates = self.candidates(root)
        cap = self.config.steps

        def episode(index: int) -> tuple[float, int, list[int]]:
            if deadline.passed() or self._stopping.is_set():
                return (-math.inf, index, [])
            rng = random.Random(f"{self.config.seed}:{root.benchmark.uri}:{index}")
            env = root.fork()
            best, best_length, total, taken = 0.0, 0, 0.0, []
            try:
                for _ in range(cap):
                    if deadline.passed():
                        break
                    a = rng.choice(candidates)
                    r = self._step(env, [a], result)
                    if r is None:
                        break
                    taken.append(a)
                    total += r
                    if total > best + EPSILON:
                        best, best_length = total, len(taken)
            finally:
                env.close()
            return (best, index, taken[:best_length])

        outcomes = self._map(episode, list(range(self.config.episodes)))
        ran = sum(1 for o in outcomes if o[0] != -math.inf)
        best = max(outcomes, key=lambda o: (o[0], -o[1], -len(o[2])))
        result.stop = (f"{ran} of {self.config.episodes} episodes, time budget ({deadline.budget:g} s)"
                       if ran < self.config.episodes else f"{ran} episodes of {cap} steps")
        return best[2] if best[0] > EPSILON else []

    def _beam(self, root: Any, result: SearchResult, deadline: _Deadline) -> list[int]:
        """Keeps the ``beam_width`` best sequences of each length; stops when a
        length brings nothing better than the best so far."""
        width = self.config.beam_width
        candidates = self.candidates(root)
        beam = [(0.0, [], root.fork())]
        best_reward, best_actions = 0.0, []
        try:
            while True:
                if len(beam[0][1]) >= self.config.steps:
                    result.stop = f"step cap ({self.config.steps}) reached while still improving"
                    break
                if deadline.passed():
                    result.stop = f"time budget ({deadline.budget:g} s)"
                    break
                scored = []
                for b, (total, actions, env) in enumerate(beam):
                    rewards, _ = self._evaluate(env, total, candidates, result)
                    scored += [(r, b, actions + [candidates[i]]) for i, r in enumerate(rewards) if r is not None]
                scored.sort(key=lambda s: (-s[0], s[2]))
                chosen = scored[:width]
                if not chosen or chosen[0][0] <= best_reward + EPSILON:
                    result.stop = "no improvement"
                    break
                best_reward, best_actions = chosen[0][0], chosen[0][2]
                next_beam = []
                for r, b, actions in chosen:
                    env = beam[b][2].fork()
                    if self._step(env, [actions[-1]], result) is None:
                        env.close()
                        continue
                    next_beam.append((r, actions, env))
                for _, _, env in beam:
                    env.close()
                beam = next_beam
                if not beam:
                    result.stop = "every chosen step failed on replay"
                    break
        finally:
            for _, _, env in beam:
                env.close()
        return best_actions

    def _policy(self, root: Any, result: SearchResult, deadline: _Deadline) -> list[int]:
        env = root.fork()
        try:
            self.config.policy(env)  # type: ignore[misc]
            result.stop = "the policy returned"
            return list(env.actions)
        finally:
            env.close()

    # ------------------------------------------------------------ pruning --

    def replay_return(self, root: Any, actions: Sequence[int], result: SearchResult) -> float | None:
        env = root.fork()
        try:
            return self._step(env, actions, result) if actions else 0.0
        finally:
            env.close()

    def prune(self, root: Any, actions: list[int], reward: float, result: SearchResult) -> tuple[list[int], float]:
        """Drops every pass whose removal leaves the return no lower (tried last to
        first), so no kept pass is a no-op.

        Removing pass i changes nothing before i, so each trial starts from a
        fork of the state after ``kept[:i]`` (kept once per prefix) and steps
        only the passes after i. With ``jobs`` > 1 the next ``jobs`` trials
        run at once; one that removes a pass makes the trials below it in
        its batch stale, and they run again on the new sequence, so the
        result is the one a single job reaches."""
        kept = list(actions)
        prefixes: list[tuple[Any, float]] = [(root.fork(), 0.0)]  # (env at kept[:i], its return)
        try:
            for a in kept[:-1]:
                env, total = prefixes[-1]
                child = env.fork()
                r = self._step(child, [a], result)
                if r is None:  # the search's own sequence failed on replay: nothing to prune from
                    child.close()
                    return kept, reward
                prefixes.append((child, total + r))

            def trial(i: int) -> float | None:
                env, total = prefixes[i]
                rest = kept[i + 1:]
                if not rest:
                    return total
                child = env.fork()
                try:
                    r = self._step(child, rest, result)
                finally:
                    child.close()
                return None if r is None else total + r

            i = len(kept) - 1
            while i >= 0:
                batch = list(range(i, max(i - self.config.jobs, -1), -1))
                returns = self._map(trial, batch)
                for j, r in zip(batch, returns):
                    i = j - 1
                    if r is not None and r >= reward - EPSILON:
                        kept, reward = kept[:j] + kept[j + 1:], max(reward, r)
                        break  # the rest of the batch tried the old sequence
            return kept, reward
        finally:
            for env, _ in prefixes:
                env.close()

    # --------------------------------------------------------------- run --

    def search(self, uri: str) -> SearchResult:
        started = time.monotonic()
        deadline = _Deadline(self.config.time_budget)
        root = self.make_env(uri)
        try:
            result = SearchResult(benchmark=uri, actions=[], found=[], reward=0.0, stop="", walltime=0.0)
            found = getattr(self, "_" + self.config.strategy)(root, result, deadline)
            result.found = list(found)
            reward = self.replay_return(root, found, result) if found else 0.0
            if reward is None:
                raise RuntimeError(f"{uri}: the best sequence failed on replay: {result.failures[-1].message}")
            actions = found
            deterministic = next(r for r in root.description.rewards if r.name == self.config.reward).deterministic
            if self.config.prune and deterministic and found:
                actions, reward = self.prune(root, found, reward, result)
            result.actions, result.reward = actions, reward
            final = root.fork()
            try:
                if actions:
                    final.multistep(actions)
                result.commandline = final.commandline()
                result.flags = [final.action_space.flags[a] for a in actions]
                obj = self.objective
                if obj.cost:
                    result.start_cost = _cost(root.observation[obj.cost])
                    result.final_cost = _cost(final.observation[obj.cost])
                if obj.oz:
                    result.oz_cost = _cost(root.observation[obj.oz])
                if self.config.check_opt:
                    result.opt_check = check_with_opt(root.observation["Bitcode"], result.commandline,
                                                      str(final.observation["IrSha1"]))
                result.walltime = time.monotonic() - started
                result.state = replace(final.state, walltime=result.walltime)
            finally:
                final.close()
            return result
        finally:
            root.close()


def check_with_opt(bitcode: Any, commandline: str, ir_sha1: str) -> str:
    """Runs the episode's replay command line (the server's own ``opt``, by absolute
    path) on its initial bitcode; "same IR hash" when the output is the episode's IR."""
    import hashlib
    import shlex
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory(prefix="forkgym-opt-") as directory:
        Path(directory, "input.bc").write_bytes(bytes(bitcode))
        run = subprocess.run(shlex.split(commandline), cwd=directory, capture_output=True, text=True)
        if run.returncode != 0:
            return f"MISMATCH: opt exited with status {run.returncode}: {run.stderr.strip()[:300]}"
        got = hashlib.sha1(Path(directory, "output.bc").read_bytes()).hexdigest()
    return "same IR hash" if got == ir_sha1 else f"MISMATCH: opt's IR hash {got}, the episode's {ir_sha1}"


def _cost(value: Any) -> float:
    try:
        return float(value)
    except TypeError:  # Runtime: one value per run
        values = [float(v) for v in value]
        return sum(values) / len(values) if values else math.nan
