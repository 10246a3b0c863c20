"""Search strategies over pass orderings, shared by ``search`` and ``leaderboard``.

Every strategy maximises the episode return in one reward space (the
objective) from a benchmark's initial state, and returns a
:class:`SearchResult`: the best action sequence, why the search stopped, its
wall time, and every failed step (a crash or timeout of a candidate is
counted and kept with its reproducer, never dropped silently).

Candidates are evaluated on copy-on-write forks of the episode
(``env.fork()``; greedy and beam step each in native code that holds no GIL
from the fork to its close, CompilerEnv._try_action). With ``jobs`` > 1, a
pool of threads evaluates them: the work is in the forked worker processes,
so threads overlap steps as well as processes would, without a zygote and a
replay of the episode per process. Each thread forks its own copy of the
current state once per round and forks candidates from that copy, so the
threads never queue on one env's lock, and keeps to a core of its own with
its copy and candidates for the round (_SharedCore). The choice among
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
import os
import random
import signal
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

# Rewards closer than this are equal (they are sums of ratios of integers).
EPSILON = 1e-9
# Every fork of an episode counts against the server's per-episode process
# limit (32 by default on runnable benchmarks, whose programs run under it).
# A search holds the episode, its final state, and per --jobs thread up to
# three forks (its copy of the state, the best candidate so far, the one
# being stepped); what is left of PROCESS_LIMIT keeps a sequence's states.
PROCESS_LIMIT = 32


def checkpoint_budget(jobs: int) -> int:
    return max(2, PROCESS_LIMIT - 8 - 3 * jobs)

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
    share_cores: bool = True  # jobs > 1: each thread and the forks it steps keep to a core of their own
    seed: int = 0
    prune: bool = True
    check_opt: bool = False  # replay each result's command line with the server's opt: same IR hash?
    policy: Callable[[Any], Any] | None = None  # strategy "policy": policy(env) steps a reset env
    server: Any = None  # the forkgym.Server to search on; None: this process's default


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
    cached_steps: int = 0  # of those, how many the state cache answered without a fork (greedy)
    failures: list[Failure] = field(default_factory=list)
    commandline: str = ""
    flags: list[str] = field(default_factory=list)
    start_cost: float | None = None
    oz_cost: float | None = None
    final_cost: float | None = None
    state: Any = None  # CompilerEnvState of `actions`, walltime = the search's
    opt_check: str | None = None  # check_opt: "same IR hash", or what differed
    # Seconds per phase of walltime: load (the benchmark's first reset), strategy,
    # replay (the found sequence, once), prune, final (observations of the result).
    phases: dict[str, float] = field(default_factory=dict)

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


def _cores_for(jobs: int) -> list[int]:
    """The cores the ``jobs`` threads of a round take one each (see _SharedCore):
    this process's allowed cores, when ``jobs`` > 1 and there are that many,
    starting from one this process's id picks (so searches started together on
    a large machine spread); else none: nothing is pinned."""
    allowed = sorted(os.sched_getaffinity(0))
    if not 1 < jobs <= len(allowed):
        return []
    start = os.getpid() % len(allowed)
    return [allowed[(start + k) % len(allowed)] for k in range(jobs)]


class _SharedCore:
    """For one round, a search thread and the worker it forks candidates from (so
    every candidate too: a fork keeps its parent's cores) keep to one core, a
    different one per thread. A candidate is a chain of requests and replies
    between the thread and a worker: on one core each hand-over is a switch,
    across cores it wakes the other core (tens of µs on a virtual machine), and
    with every core busy those wake-ups are time no thread works. Neither side
    polls while it waits on one core (ipc/doorbell.cc), and the thread holds
    the GIL only between candidates (CompilerEnv._try_action). Only where it
    runs changes, never what: where the system refuses (another user's
    worker), the round runs unpinned."""

    def __init__(self, cores: list[int], share: int, base: Any) -> None:
        self._core = cores[share % len(cores)] if cores else None
        self._base = base
        self._before: set[int] | None = None

    def __enter__(self) -> _SharedCore:
        if self._core is None:
            return self
        try:
            before = os.sched_getaffinity(0)
            os.sched_setaffinity(self._base.worker_pid, {self._core})
            os.sched_setaffinity(0, {self._core})  # pid 0: this thread only
            self._before = before
        except OSError:
            pass
        return self

    def release(self, env: Any) -> None:
        """Gives ``env``, a fork made on this core, the cores the thread had before:
        a fork kept past the round (the round's best, then a checkpoint) would
        otherwise bind every later fork of it (pruning's trials) to this core."""
        if self._before is not None:
            try:
                os.sched_setaffinity(env.worker_pid, self._before)
            except OSError:
                pass

    def __exit__(self, *args: object) -> None:
        if self._before is not None:
            os.sched_setaffinity(0, self._before)
            self._before = None


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
        self._cores = _cores_for(config.jobs) if config.share_cores else []

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

        env = forkgym.make(self.config.env_id, reward_space=self.config.reward, step_timeout=self.config.step_timeout,
                           server=self.config.server)
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

    def _step(self, env: Any, actions: Sequence[int], result: SearchResult,
              cancelled: threading.Event | None = None) -> float | None:
        """Steps ``env`` by ``actions``; the reward, or None when the step ended the episode
        (recorded in ``result.failures`` unless the step was ``cancelled``: its worker
        killed on purpose, see _Trial)."""
        _, reward, _, truncated, info = env.multistep(list(actions))
        called_off = cancelled is not None and cancelled.is_set()
        self._count_step(result, info if truncated and not called_off else None)
        return None if truncated else float(reward)

    def _count_step(self, result: SearchResult, ended: dict[str, Any] | None) -> None:
        """One more step in ``result``; ``ended``: the info of a step that ended its
        episode (a crash, a timeout), kept as a failure with its reproducer."""
        with self._lock:
            result.steps += 1
            if ended is not None:
                outcome = ended.get("outcome")
                reproducer = ended.get("reproducer")
                result.failures.append(Failure(getattr(outcome, "name", str(outcome)).lower(),
                                               str(ended.get("error_details", "")),
                                               getattr(reproducer, "commandline", "") or str(reproducer or "")))

    def _evaluate(self, env: Any, prefix_reward: float, actions: Sequence[int], result: SearchResult,
                  keep_best: bool = False) -> tuple[list[float | None], dict[int, Any]]:
        """Each action stepped once from ``env``'s state, in its own fork: the return
        after it. With ``keep_best``, also the fork of the best candidate each
        thread stepped ({index: env}), for the caller to adopt instead of
        stepping that action again, and to close."""
        rewards: list[float | None] = [None] * len(actions)
        kept: dict[int, Any] = {}
        # Candidates whose step the state cache already holds (a search run
        # before, another search or episode on the machine) need no fork.
        cached = env.cached_rewards(actions, self.config.reward)
        for i, r in enumerate(cached):
            if r is not None:
                rewards[i] = prefix_reward + r
        todo = [i for i, r in enumerate(cached) if r is None]
        with self._lock:
            result.steps += len(actions) - len(todo)
            result.cached_steps += len(actions) - len(todo)

        def rank(i: int) -> tuple[float, int]:  # the order greedy picks by: return, then the lowest index
            return (rewards[i] if rewards[i] is not None else -math.inf, -i)

        def candidate(base: Any, i: int, held: int | None, core: _SharedCore | None = None) -> int | None:
            """Steps candidate i from ``base``; the index whose fork this thread holds now.
            Its fork is kept (and an env built for it) only if it ranks above the held one."""
            started = time.perf_counter()
            if not keep_best:
                bar, ties = math.inf, False
            elif held is None:
                bar, ties = -math.inf, True
            else:  # rank(): the higher return, then the lower index
                bar, ties = rewards[held], i < held
            r, ended, fork = base._try_action(actions[i], prefix_reward, bar, ties)
            self._count_step(result, ended)
            rewards[i] = None if r is None else prefix_reward + r
            self._seconds[actions[i]] = time.perf_counter() - started
            if fork is None:
                return held
            if held is not None:
                kept.pop(held).close()
            kept[i] = base._adopt_tried(fork, actions[i], r)
            if core is not None:
                core.release(kept[i])  # it may outlive the round (a checkpoint)
            return i

        if self._pool is None:
            held = None
            for i in todo:
                held = candidate(env, i, held)
            return rewards, kept
        # Each thread takes the next candidate when it is free, the costliest
        # first (by what each action took last time): passes differ in cost by
        # orders of magnitude (-attributor against -dce), and a round lasts
        # until its slowest candidate ends, so the cheap ones fill in at the
        # end. Only the order of work depends on timing, never the result.
        indices = iter(sorted(todo, key=lambda i: -self._seconds.get(actions[i], math.inf)))
        taking = threading.Lock()

        def next_index() -> int | None:
            with taking:
                return next(indices, None)

        def run(share: int) -> None:
            base = env.fork()  # this thread's copy: forks below queue on no other thread's lock
            held = None
            try:
                with _SharedCore(self._cores, share, base) as core:
                    while (i := next_index()) is not None:
                        if self._stopping.is_set():
                            return
                        held = candidate(base, i, held, core)
            finally:
                base.close()

        self._map(run, list(range(min(self.config.jobs, len(todo)))))
        return rewards, kept

    # --------------------------------------------------------- strategies --

    def _greedy(self, root: Any, result: SearchResult, deadline: _Deadline) -> tuple[list[int], Checkpoints | None]:
        """One action at a time: the one that raises the return most, until none
        does (or the step cap, or the time budget). Returns the states it
        passed through as checkpoints (see replay()): each is the fork its
        candidate step produced, so the found sequence needs no replay."""
        chain = Checkpoints(root.fork(), checkpoint_budget(self.config.jobs))
        try:
            candidates = self.candidates(root)
            actions: list[int] = []
            while True:
                env, total = chain.last
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
                    chain.add(chosen, rewards[best])  # adopted, not stepped again
                else:  # its thread was stopped before it could keep it
                    child = env.fork()
                    r = self._step(child, [candidates[best]], result)
                    if r is None:
                        child.close()
                        result.stop = "the chosen step failed on replay"
                        break
                    chain.add(child, total + r)
                actions.append(candidates[best])
            return actions, chain
        except BaseException:
            chain.close()
            raise

    def _random(self, root: Any, result: SearchResult, deadline: _Deadline) -> tuple[list[int], Checkpoints | None]:
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
        return (best[2] if best[0] > EPSILON else []), None

    def _beam(self, root: Any, result: SearchResult, deadline: _Deadline) -> tuple[list[int], Checkpoints | None]:
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
        return best_actions, None

    def _policy(self, root: Any, result: SearchResult, deadline: _Deadline) -> tuple[list[int], Checkpoints | None]:
        env = root.fork()
        try:
            self.config.policy(env)  # type: ignore[misc]
            result.stop = "the policy returned"
            return list(env.actions), None
        finally:
            env.close()

    # ------------------------------------------------------------ pruning --

    def replay(self, root: Any, actions: Sequence[int], result: SearchResult) -> Checkpoints | None:
        """The found sequence replayed from the benchmark, keeping checkpoints of
        its states, the last being the final state; None (everything closed)
        when a step fails. One replay serves as the check of the strategy's
        return, as pruning's starting points and as the final state, so none
        of the three steps the sequence again on its own."""
        chain = Checkpoints(root.fork(), checkpoint_budget(self.config.jobs))
        try:
            if self._extend(chain, list(actions), 0, len(actions), result):
                return chain
            chain.close()
            return None
        except BaseException:
            chain.close()
            raise

    def prune(self, chain: Checkpoints, actions: list[int], result: SearchResult) -> tuple[list[int], float, Any]:
        """Drops every pass whose removal leaves the return no lower (tried last to
        first, and again over the passes above a removal until a sweep removes
        nothing), so no kept pass is a no-op. ``chain`` holds checkpoints of
        ``actions``' states (replay()'s); it is consumed (closed). Returns the
        kept passes, their return and an env in their final state (the caller
        closes it).

        Removing pass i changes nothing before i, so each trial starts from a
        fork of the nearest checkpoint at or before i and steps only the
        passes from there, i left out. With ``jobs`` > 1, ``jobs`` trials
        run at once, each thread taking the next index when free; results are
        taken in order, and a trial that removes a pass makes those started
        below it stale: they are stopped (their workers killed), dropped and
        run again on the new sequence, so the result is the one a single job
        reaches. The env of the last
        trial that removed a pass is the final state."""
        kept = list(actions)
        final, reward = chain.take_last()

        def trial(start: int, passes: list[int], token: _Trial) -> tuple[float | None, Any]:
            """The return (and the env) of ``passes`` stepped from checkpoint ``start``."""
            env, total = chain.at(start)
            child = env.fork()
            if not passes:
                return total, child
            try:
                if not token.running(child.worker_pid):
                    child.close()
                    return None, None
                try:
                    r = self._step(child, passes, result, token.cancelled)
                finally:
                    token.finished()
            except BaseException:
                child.close()
                raise
            if r is None:
                child.close()
                return None, None
            return total + r, child

        def discard(future: Any, token: _Trial) -> None:
            """A trial nobody will read: stopped at once if it is stepping (its
            thread is then free for a trial that counts), and its env closed as
            soon as it ends (a live fork counts against the episode's process
            limit)."""
            def close(done: Any) -> None:
                try:
                    _, env = done.result()
                except BaseException:
                    return
                if env is not None:
                    env.close()
            token.cancel()
            if isinstance(future, _Done):
                close(future)
            else:
                future.add_done_callback(close)

        # index -> (future of trial(index, the kept passes after it), its _Trial)
        running: dict[int, tuple[Any, _Trial]] = {}
        try:
            bottom = 0
            while True:
                lowest = None  # the lowest index this sweep removed
                launch = commit = len(kept) - 1
                while commit >= bottom:
                    # One trial more than threads: a thread that ends its trial
                    # before an older one does takes the next at once instead of
                    # waiting for the commit (a removal kills the stale ones).
                    while launch >= bottom and len(running) < self.config.jobs + 1:
                        start = chain.at_or_before(launch)
                        passes = kept[start:launch] + kept[launch + 1:]  # pass `launch` left out
                        token = _Trial()
                        running[launch] = (self._pool.submit(trial, start, passes, token) if self._pool is not None
                                           else _Done(trial(start, passes, token)), token)
                        launch -= 1
                    r, env = running.pop(commit)[0].result()
                    if r is not None and r >= reward - EPSILON:
                        kept, reward, lowest = kept[:commit] + kept[commit + 1:], max(reward, r), commit
                        final.close()
                        final = env
                        for stale, token in running.values():  # they step the old sequence
                            discard(stale, token)
                        running.clear()
                        launch = commit - 1
                    elif env is not None:
                        env.close()
                    commit -= 1
                if lowest is None or lowest >= len(kept):
                    break
                # The passes from `lowest` on were judged beside a pass below them
                # that is gone now: judge them again, from checkpoints of the
                # new sequence (those up to `lowest` still hold).
                bottom = lowest
                if not self._extend(chain, kept, chain.rewind(lowest), len(kept) - 1, result):
                    break  # a step of the kept sequence failed on replay: keep what pruning reached
            result_final, final = final, None
            return kept, reward, result_final
        finally:
            for future, token in running.values():
                discard(future, token)
            chain.close()
            if final is not None:
                final.close()

    def _extend(self, chain: Checkpoints, actions: list[int], start: int, stop: int, result: SearchResult) -> bool:
        """Adds the states after actions[:start + 1] .. actions[:stop] to ``chain``, whose last is after actions[:start]."""
        for a in actions[start:stop]:
            env, total = chain.last
            child = env.fork()
            r = self._step(child, [a], result)
            if r is None:
                child.close()
                return False
            chain.add(child, total + r)
        return True

    # --------------------------------------------------------------- run --

    def search(self, uri: str) -> SearchResult:
        started = time.monotonic()
        deadline = _Deadline(self.config.time_budget)
        result = SearchResult(benchmark=uri, actions=[], found=[], reward=0.0, stop="", walltime=0.0)
        mark = started

        def phase(name: str) -> None:
            nonlocal mark
            now = time.monotonic()
            result.phases[name] = now - mark
            mark = now

        root = self.make_env(uri)
        phase("load")
        try:
            found, chain = getattr(self, "_" + self.config.strategy)(root, result, deadline)
            result.found = list(found)
            phase("strategy")
            if chain is None:  # greedy's own states are the replay; the others' are stepped here
                chain = self.replay(root, found, result)
            phase("replay")
            if chain is None:
                raise RuntimeError(f"{uri}: the best sequence failed on replay: {result.failures[-1].message}")
            actions = list(found)
            deterministic = next(r for r in root.description.rewards if r.name == self.config.reward).deterministic
            if self.config.prune and deterministic and found:
                actions, reward, final = self.prune(chain, actions, result)
            else:
                final, reward = chain.take_last()
                chain.close()
            phase("prune")
            result.actions, result.reward = actions, reward
            try:
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
                phase("final")
                result.walltime = time.monotonic() - started
                result.state = replace(final.state, walltime=result.walltime)
            finally:
                final.close()
            return result
        finally:
            root.close()


class _ReplayFailed(Exception):
    pass


class _Trial:
    """A pruning trial that may be called off while its worker steps: cancel()
    kills that worker (through a pidfd, so never another process that reused
    its pid), which ends the step at once instead of when its passes would."""

    def __init__(self) -> None:
        self.cancelled = threading.Event()
        self._lock = threading.Lock()
        self._pidfd: int | None = None

    def running(self, worker_pid: int) -> bool:
        """Called before the step; False if the trial is already called off."""
        with self._lock:
            if self.cancelled.is_set():
                return False
            self._pidfd = os.pidfd_open(worker_pid)
            return True

    def finished(self) -> None:
        with self._lock:
            if self._pidfd is not None:
                os.close(self._pidfd)
                self._pidfd = None

    def cancel(self) -> None:
        with self._lock:
            self.cancelled.set()
            if self._pidfd is not None:
                try:
                    signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
                except ProcessLookupError:  # it has exited already
                    pass


class _Done:
    """A finished trial, shaped like a future (one job runs trials inline)."""

    def __init__(self, value: Any) -> None:
        self._value = value

    def result(self) -> Any:
        return self._value


class Checkpoints:
    """Forks of a sequence's states: the state after its first i passes for
    some i, always 0 and the last, at most budget + 1 of them. When
    there would be more, every other one is closed (the spacing doubles), so a
    long sequence costs a few more steps per trial, never more forks than
    the server allows an episode."""

    def __init__(self, start: Any, budget: int) -> None:
        self._budget = budget
        self._states: dict[int, tuple[Any, float]] = {0: (start, 0.0)}
        self._length = 0
        self._spacing = 1

    @property
    def last(self) -> tuple[Any, float]:
        return self._states[self._length]

    def add(self, env: Any, total: float) -> None:
        """The state after one more pass (owned from now on)."""
        previous = self._length
        self._length += 1
        self._states[self._length] = (env, total)
        if previous % self._spacing:
            self._states.pop(previous)[0].close()
        while len(self._states) > self._budget + 1:
            self._spacing *= 2
            for i in [i for i in self._states if i % self._spacing and i != self._length]:
                self._states.pop(i)[0].close()

    def at_or_before(self, i: int) -> int:
        """The checkpoint nearest before the state after i passes (or at it)."""
        return max(j for j in self._states if j <= i)

    def at(self, i: int) -> tuple[Any, float]:
        return self._states[i]

    def rewind(self, i: int) -> int:
        """Closes the checkpoints after the state after i passes; returns the new last position."""
        for j in [j for j in self._states if j > i]:
            self._states.pop(j)[0].close()
        self._length = max(self._states)
        return self._length

    def take_last(self) -> tuple[Any, float]:
        """The final state, now the caller's; at_or_before() no longer returns it."""
        return self._states.pop(self._length)

    def close(self) -> None:
        for env, _ in self._states.values():
            env.close()
        self._states.clear()


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
