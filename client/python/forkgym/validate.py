"""Validation: replay states in fresh workers and check what they claim.

A state is valid when its commandline replays from its benchmark without a
crash, and (when the state has a reward and the env's reward space is
deterministic) the replay's return equals the recorded reward. Replaying one
episode's actions in one step makes the return a single telescoped
difference, so it is compared with a 1e-5 tolerance. ``env.validate()`` on a
live episode also checks the replay's state hash (LLVM: the IR's) equals the
episode's, where the backend has one.

Replays run in parallel: each batch resets up to ``jobs`` workers and sends
all their action lists with one ``step_many`` call.

Command line::

    python -m forkgym validate [--env llvm-ic-v0] [--jobs N] states.csv|-
    forkgym-validate states.csv
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from forkgym import _forkgym
from forkgym.errors import ForkgymError
from forkgym.outcome import outcome_name
from forkgym.state import CompilerEnvState, CompilerEnvStateReader

@dataclass
class ValidationResult:
    """What validating one state found. ``okay()`` is the verdict."""

    state: CompilerEnvState
    walltime: float = 0.0
    reward_validated: bool = False
    reward_validation_failed: bool = False
    actions_replay_failed: bool = False
    ir_hash_validated: bool = False
    ir_hash_validation_failed: bool = False
    # The state recorded a benchmark content hash and the benchmark's content
    # is different now: the replay would be of another program, so it is refused.
    benchmark_changed: bool = False
    benchmark_semantics_validated: bool = False  # forkgym does not run programs (see README)
    benchmark_semantics_validation_failed: bool = False
    replay_reward: float | None = None
    size_vs_oz: float | None = None  # C(-Oz) / C(final): > 1 means smaller than -Oz
    errors: list[str] = field(default_factory=list)

    def okay(self) -> bool:
        return not (
            self.benchmark_changed
            or self.actions_replay_failed
            or self.reward_validation_failed
            or self.ir_hash_validation_failed
            or self.benchmark_semantics_validation_failed
        )

    @property
    def error_details(self) -> str:
        return "; ".join(self.errors)

    def __str__(self) -> str:
        name = self.state.benchmark
        if not self.okay():
            return f"❌  {name}  {self.error_details}"
        parts = []
        if self.state.reward is not None:
            parts.append(f"{self.state.reward:.4f}")
        if self.size_vs_oz is not None:
            parts.append(f"{self.size_vs_oz:.3f}x vs -Oz")
        return f"✅  {name}  " + "  ".join(parts)


def _changed_message(state: CompilerEnvState, current: str) -> str:
    return (
        f"the benchmark's content changed since this state was recorded (content hash "
        f"{state.benchmark_hash[:12]}... then, {current[:12]}... now): replaying it would run another "
        f"program; restore the benchmark, or record the episode again"
    )


def validate_states(
    states: Sequence[CompilerEnvState],
    env: Any,
    jobs: int = 2,
    expected_sha1: Sequence[str | None] | None = None,
    progress: Any = None,
) -> list[ValidationResult]:
    """Validates ``states`` using ``env``'s server and reward space, ``jobs`` at a time."""
    from forkgym.benchmarks import server_uri

    unwrapped = env.unwrapped
    reward_spec = unwrapped.reward_space
    # The env's backend says what to compare (None where it has no such observation).
    wanted = unwrapped.validation_observations(reward_spec)
    observations = [name for name in wanted if name is not None]
    rewards = [reward_spec.name] if reward_spec else []
    results: list[ValidationResult] = []
    done = 0
    for start in range(0, len(states), max(jobs, 1)):
        batch = list(states[start : start + max(jobs, 1)])
        natives, plans, pending = [], [], []
        for offset, state in enumerate(batch):
            result = ValidationResult(state=state)
            results.append(result)
            try:
                unwrapped._check_replayable(state)
                native = unwrapped._new_session(unwrapped._server.connection())
                native.reset(server_uri(state.benchmark))
            except (ForkgymError, ValueError) as e:
                result.actions_replay_failed = True
                result.errors.append(str(e))
                continue
            if state.benchmark_hash and native.benchmark_hash != state.benchmark_hash:
                native.close()
                result.benchmark_changed = True
                result.errors.append(_changed_message(state, native.benchmark_hash))
                continue
            try:
                native_actions = unwrapped._prepare_replay(native, state)
            except (ForkgymError, ValueError) as e:
                native.close()
                result.actions_replay_failed = True
                result.errors.append(str(e))
                continue
            natives.append(native)
            plans.append(native_actions)
            pending.append((start + offset, result, time.monotonic()))
        replies, interrupt = _forkgym.step_many(natives, plans, observations, rewards) if natives else ([], None)
        if interrupt is not None:
            for native in natives:
                native.close()
            raise interrupt
        for (index, result, began), reply, native in zip(pending, replies, natives):
            result.walltime = time.monotonic() - began
            native.close()
            if not reply.ok:
                result.actions_replay_failed = True
                result.errors.append(f"replay {outcome_name(reply.outcome)}: {reply.message}")
                continue
            values = iter(reply.observations)
            sha1, final_cost, oz_cost = (None if name is None else next(values) for name in wanted)
            if final_cost is not None and oz_cost is not None and final_cost > 0:
                result.size_vs_oz = oz_cost / final_cost
            if reward_spec is not None:
                result.replay_reward = float(reply.rewards[0])
            expected = expected_sha1[index] if expected_sha1 else None
            if expected is not None:
                if sha1 == expected:
                    result.ir_hash_validated = True
                else:
                    result.ir_hash_validation_failed = True
                    result.errors.append(f"{wanted[0]} {sha1} of the replay differs from the episode's {expected}")
            state = result.state
            if state.reward is not None and reward_spec is not None and reward_spec.deterministic:
                if math.isclose(state.reward, result.replay_reward, rel_tol=1e-5, abs_tol=1e-5):
                    result.reward_validated = True
                else:
                    result.reward_validation_failed = True
                    result.errors.append(
                        f"expected {reward_spec.name} reward {state.reward:.6f}, replay gave {result.replay_reward:.6f}"
                    )
        done += len(batch)
        if progress is not None:
            progress(done, len(states))
    return results


def _progress_bar(stream: TextIO) -> Any:
    """A one-line progress bar on ``stream`` (only when it is a terminal)."""
    if not stream.isatty():
        return None

    def show(done: int, total: int) -> None:
        width = 30
        filled = int(width * done / max(total, 1))
        stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        if done == total:
            stream.write("\r" + " " * (width + 24) + "\r")
        stream.flush()

    return show


def geomean(values: Iterable[float]) -> float | None:
    values = [v for v in values if v is not None and v > 0]
    if not values:
        return None
    return math.exp(sum(math.log(v) for v in values) / len(values))


def main(argv: Sequence[str] | None = None) -> int:
    """``forkgym validate``: one ✅/❌ line per state, a geomean summary; exit 1 on any failure."""
    parser = argparse.ArgumentParser(
        prog="forkgym validate",
        description="Replay CompilerEnvState CSV files (benchmark,reward,walltime,commandline[,benchmark_hash]) "
        "and check them.",
    )
    parser.add_argument("files", nargs="*", default=["-"], help="state CSV files; - reads standard input")
    parser.add_argument("--env", default="llvm-ic-v0", help="env id giving the reward space (default llvm-ic-v0)")
    parser.add_argument("--jobs", "-j", type=int, default=0, help="workers replaying at once (default: CPU count)")
    parser.add_argument("--step-timeout", type=float, default=300.0, help="seconds per replay before it is killed")
    args = parser.parse_args(argv)

    import os

    import forkgym

    jobs = args.jobs or os.cpu_count() or 2
    try:
        states = list(CompilerEnvStateReader.read_paths(args.files))
    except (OSError, ValueError) as e:
        print(f"forkgym validate: {e}", file=sys.stderr)
        return 2
    if not states:
        print("forkgym validate: no states to validate", file=sys.stderr)
        return 2
    with forkgym.make(args.env, step_timeout=args.step_timeout) as env:
        results = validate_states(states, env, jobs=jobs, progress=_progress_bar(sys.stderr))
    for result in results:
        print(result, flush=True)
    passed = sum(r.okay() for r in results)
    print(f"\n{passed} of {len(results)} states valid", end="")
    rewards = geomean(r.state.reward for r in results if r.okay() and r.state.reward is not None)
    if rewards is not None:
        print(f"; geomean reward {rewards:.4f}", end="")
    sizes = geomean(r.size_vs_oz for r in results if r.okay())
    if sizes is not None:
        print(f"; geomean size vs -Oz {sizes:.4f}x", end="")
    walltime = sum(r.walltime for r in results) / len(results)
    print(f"; mean replay walltime {walltime:.3f}s")
    return 0 if passed == len(results) else 1
