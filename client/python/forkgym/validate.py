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

Semantic validation of runnable benchmarks (:mod:`forkgym.semantics`): the
unoptimised program and the state's are built and run by the replay's
worker, and compared; ``ValidationResult.semantics_failures`` says which
check failed and how, ``benchmark_nondeterministic`` that two unoptimised runs
differed (so nothing was concluded, and no miscompile is claimed).

Command line::

    python -m forkgym validate [--env llvm-ic-v0] [--jobs N] [--semantics|--no-semantics]
        [--sanitizer asan] [--ignore-output REGEX] [--no-stderr] [--gold-runs N] [--fresh-process]
        states.csv|-
    forkgym-validate states.csv
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import secrets
import re
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from forkgym import _forkgym
from forkgym.errors import ForkgymError, InvalidRequest
from forkgym.outcome import outcome_name
from forkgym.semantics import SANITIZERS, SemanticsCheck, SemanticsFailure, SemanticsOptions
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
    # Semantic validation (forkgym.semantics), for a benchmark with a run
    # configuration: validated only when every check ran and passed; failed
    # when the optimised program behaves differently (semantics_failures says
    # which check and how). A benchmark whose unoptimised program is
    # nondeterministic is never reported as failed: benchmark_nondeterministic,
    # and semantics_not_validated says why nothing could be concluded.
    benchmark_semantics_validated: bool = False
    benchmark_semantics_validation_failed: bool = False
    # validate(fresh_process=True): the state hash that covers use-list order
    # (LLVM: BitcodeSha1) matched after every step between a replay in this
    # zygote and one in a zygote started for the purpose; else the first step
    # where they differed (0: the benchmark as loaded, n: after the n-th action).
    cross_process_validated: bool = False
    cross_process_divergent_step: int | None = None
    benchmark_nondeterministic: bool = False
    semantics_failures: list[SemanticsCheck] = field(default_factory=list)
    semantics_not_validated: str | None = None
    # Every report of a sanitizer build (validate(sanitizers=...)), each a
    # sanitizer_report check naming its kind (SemanticsCheck.sanitizer_kind,
    # e.g. "heap-buffer-overflow"): the state's build's and, when the state's
    # reported, the unoptimised program's — the latter reporting too means
    # undefined behaviour in the benchmark (semantics_not_validated says so),
    # not a miscompile.
    sanitizer_reports: list[SemanticsCheck] = field(default_factory=list)
    # The wall-clock limit (s) the state's programs ran under: derived from
    # the unoptimised program's runs (forkgym.semantics.candidate_timeout),
    # at most the run configuration's timeout.
    semantics_run_timeout: int | None = None
    # validate(semantics=True): a state whose semantics were not validated is not okay.
    semantics_required: bool = False
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
            or self.cross_process_divergent_step is not None
            or (self.semantics_required and not self.benchmark_semantics_validated)
        )

    @property
    def semantics_failure(self) -> SemanticsFailure | None:
        """The kind of the first semantic check that failed (None if none did)."""
        return self.semantics_failures[0].kind if self.semantics_failures else None

    @property
    def error_details(self) -> str:
        return "; ".join(self.errors)

    def __str__(self) -> str:
        name = self.state.benchmark
        if not self.okay():
            details = self.error_details
            if self.semantics_required and not self.benchmark_semantics_validated and self.semantics_not_validated:
                details = "; ".join(filter(None, [details, f"semantics not validated: {self.semantics_not_validated}"]))
            return f"❌  {name}  {details}"
        parts = []
        if self.state.reward is not None:
            parts.append(f"{self.state.reward:.4f}")
        if self.size_vs_oz is not None:
            parts.append(f"{self.size_vs_oz:.3f}x vs -Oz")
        if self.benchmark_semantics_validated:
            parts.append("semantics validated")
        elif self.semantics_not_validated:
            parts.append(f"semantics not validated: {self.semantics_not_validated}")
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
    semantics: SemanticsOptions | None = None,
) -> list[ValidationResult]:
    """Validates ``states`` using ``env``'s server and reward space, ``jobs`` at a time,
    and the semantics of each runnable one as ``semantics`` says (default
    :class:`SemanticsOptions`: when the benchmark has a run configuration)."""
    semantics = semantics if semantics is not None else SemanticsOptions()
    from forkgym.benchmarks import session_benchmark
    from forkgym.envs import _reset_native

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
                uri, run_config = session_benchmark(state.benchmark)
                native = unwrapped._new_session(unwrapped._server.connection())
                _reset_native(native, uri, run_config)
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
            if not reply.ok:
                native.close()
                result.actions_replay_failed = True
                result.errors.append(f"replay {outcome_name(reply.outcome)}: {reply.message}")
                continue
            try:
                _check_replay(result, reply, wanted, reward_spec, expected_sha1[index] if expected_sha1 else None)
                _validate_semantics(unwrapped, native, result, semantics)
            finally:
                native.close()
        done += len(batch)
        if progress is not None:
            progress(done, len(states))
    return results


def validate_across_processes(env: Any, state: CompilerEnvState, result: ValidationResult) -> None:
    """Replays ``state`` step by step in two processes and compares the state hash after every step.

    Every worker is a fork of its zygote, so wherever LLVM's result depends
    on heap addresses (a pointer-keyed hash table's order, a sort by address:
    the use-list order NewGVN leaves is one) the episodes, replays and forks
    of one zygote agree, or take one of a few values, and the nondeterminism
    hardly shows. So one replay
    runs in a fresh worker of ``env``'s zygote and the other in a zygote
    started for this check with ``--perturb-heap`` (a random seed: its heap
    holds other blocks at other addresses, even where ASLR is off; with ASLR
    its base differs too), and the backend's state hash that covers what a
    later pass reads (LLVM: ``BitcodeSha1``, use-list order included) is
    compared after the benchmark loads and after each action. The first step
    where they differ goes into ``result.cross_process_divergent_step`` with a
    message in ``result.errors`` (saying whether the IR hash differs too);
    ``result.cross_process_validated`` when none does. The new zygote runs
    the binary and arguments of ``env``'s own private zygote (for an env on
    a socket server: this package's server, with default options), and is
    gone when this returns.
    """
    from forkgym.benchmarks import session_benchmark
    from forkgym.envs import _reset_native
    from forkgym.server import Server

    unwrapped = env.unwrapped
    hash_name = unwrapped.state_hash_observation
    if hash_name is None:
        raise InvalidRequest(
            f"validate(fresh_process=True): the {unwrapped._backend} backend has no state hash covering "
            "everything a later step reads, so runs in two processes cannot be compared; validate() without it"
        )
    ir_hash_name = unwrapped.validation_observations(unwrapped.reward_space)[0]
    seed = secrets.randbits(63)
    options = unwrapped._server.options
    # The env's server binary and arguments (site data, roots, ...), as a private zygote of its own.
    fresh_options = dataclasses.replace(
        options, socket_path=None, preload=(), extra_args=(*options.extra_args, "--perturb-heap", str(seed))
    )
    fresh = Server(fresh_options)
    natives: list[Any] = []
    try:
        for server in (unwrapped._server, fresh):
            native = unwrapped._new_session(server.connection())
            natives.append(native)
            _reset_native(native, *session_benchmark(state.benchmark))
            if state.benchmark_hash and native.benchmark_hash != state.benchmark_hash:
                result.errors.append(_changed_message(state, native.benchmark_hash))
                result.benchmark_changed = True
                return
        plans = [unwrapped._prepare_replay(native, state) for native in natives]
        actions = plans[0]
        names = unwrapped.action_space.names
        for step in range(len(actions) + 1):
            todo = [[] if step == 0 else [plan[step - 1]] for plan in plans]
            replies, interrupt = _forkgym.step_many(natives, todo, [hash_name], [])
            if interrupt is not None:
                raise interrupt
            what = "the benchmark as loaded" if step == 0 else f"step {step} ({names[actions[step - 1]]})"
            outcomes = [(reply.ok, reply.observations[0] if reply.ok else outcome_name(reply.outcome))
                        for reply in replies]
            if outcomes[0] == outcomes[1]:
                if not replies[0].ok:
                    result.actions_replay_failed = True
                    result.errors.append(f"replay {outcomes[0][1]} at {what}: {replies[0].message}")
                    return
                continue
            result.cross_process_divergent_step = step
            result.errors.append(_divergence_message(natives, replies, hash_name, ir_hash_name, what, seed))
            return
        result.cross_process_validated = True
    except (ForkgymError, ValueError) as e:
        result.errors.append(f"validate(fresh_process=True): {e}")
        result.actions_replay_failed = True
    finally:
        for native in natives:
            native.close()
        natives.clear()
        fresh.close()


def _divergence_message(natives: list[Any], replies: list[Any], hash_name: str, ir_hash_name: str | None,
                        what: str, seed: int) -> str:
    def described(reply: Any) -> str:
        return reply.observations[0] if reply.ok else f"{outcome_name(reply.outcome)} ({reply.message})"

    here, there = (described(reply) for reply in replies)
    message = (
        f"{hash_name} differs across processes at {what}: {here} in this zygote, {there} in a fresh one "
        f"(--perturb-heap {seed}): the same actions on the same benchmark reach different states, so this "
        f"result depends on heap addresses (LLVM is nondeterministic here)"
    )
    if ir_hash_name is not None and all(reply.ok for reply in replies):
        observed = [native.step([], [ir_hash_name], []) for native in natives]
        if all(reply.ok for reply in observed):
            ir_hashes = [reply.observations[0] for reply in observed]
            if ir_hashes[0] == ir_hashes[1]:
                message += f"; {ir_hash_name} is the same, so only the use-list order differs, which later passes read"
            else:
                message += f"; the IR differs too ({ir_hash_name} {ir_hashes[0]} and {ir_hashes[1]})"
    return message


def _check_replay(result: ValidationResult, reply: Any, wanted: Sequence[str | None], reward_spec: Any,
                  expected: str | None) -> None:
    """Compares a replay's observations and reward with what the state claims."""
    values = iter(reply.observations)
    sha1, final_cost, oz_cost = (None if name is None else next(values) for name in wanted)
    if final_cost is not None and oz_cost is not None and final_cost > 0:
        result.size_vs_oz = oz_cost / final_cost
    if reward_spec is not None:
        result.replay_reward = float(reply.rewards[0])
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


def _validate_semantics(unwrapped: Any, native: Any, result: ValidationResult, options: SemanticsOptions) -> None:
    """Semantic validation in the replay's worker (see forkgym.semantics)."""
    from forkgym import semantics
    from forkgym.benchmarks import session_benchmark
    from forkgym.envs import _reset_native

    result.semantics_required = options.semantics is True
    if options.semantics is False:
        result.semantics_not_validated = "not asked (semantics=False)"
        return

    def open_original() -> Any:
        uri, run_config = session_benchmark(result.state.benchmark)
        original = unwrapped._new_session(unwrapped._server.connection())
        try:
            _reset_native(original, uri, run_config)
        except BaseException:
            original.close()
            raise
        return original

    try:
        report = semantics.validate(native, options, open_original)
    except ForkgymError as e:
        if semantics.is_not_runnable(e):
            result.semantics_not_validated = f"the benchmark is not runnable ({e})"
        else:
            result.semantics_not_validated = f"running the programs failed: {e}"
            if options.semantics is True:
                result.errors.append(result.semantics_not_validated)
        return
    result.benchmark_semantics_validated = report.validated
    result.semantics_failures = list(report.failures)
    result.sanitizer_reports = list(report.sanitizer_reports)
    result.semantics_run_timeout = report.run_timeout
    if report.failures:
        result.benchmark_semantics_validation_failed = True
        result.errors.extend(f"semantics: {failure}" for failure in report.failures)
    elif report.nondeterministic:
        result.benchmark_nondeterministic = True
        result.semantics_not_validated = report.nondeterministic
    elif report.unverified:
        result.semantics_not_validated = report.unverified


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
    semantics = parser.add_argument_group(
        "semantic validation", "of runnable benchmarks (a run configuration: make_benchmark's keywords, a "
        "dataset's): the unoptimised program and the state's are built, run on every input set and compared")
    choice = semantics.add_mutually_exclusive_group()
    choice.add_argument("--semantics", dest="semantics", action="store_const", const=True, default=None,
                        help="require it: a state whose semantics could not be validated is a failure")
    choice.add_argument("--no-semantics", dest="semantics", action="store_const", const=False,
                        help="skip it (default: validate whenever the benchmark is runnable)")
    semantics.add_argument("--sanitizer", action="append", default=[], choices=list(SANITIZERS),
                           help="also run a sanitizer build of the state (repeatable)")
    semantics.add_argument("--ignore-output", metavar="REGEX", action="append", default=[],
                           help="compare outputs without the lines matching REGEX (repeatable)")
    semantics.add_argument("--no-stderr", action="store_true", help="compare stdout and output files, not stderr")
    parser.add_argument("--fresh-process", action="store_true",
                        help="also replay each state step by step in a new zygote with another heap layout and "
                        "compare the state hash (use-list order included) after every step: finds results that "
                        "depend on heap addresses, which the episodes of one zygote hide (validate(fresh_process=True))")
    semantics.add_argument("--gold-runs", type=int, default=2, metavar="N",
                           help="runs of the unoptimised program per input set (default 2: two that differ mean "
                           "the benchmark is nondeterministic, reported instead of a miscompile)")
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
    ignore = "|".join(f"(?:{pattern})" for pattern in args.ignore_output) or None
    try:
        options = SemanticsOptions(semantics=args.semantics, sanitizers=tuple(args.sanitizer), output_filter=ignore,
                                   compare_stderr=not args.no_stderr, gold_runs=args.gold_runs)
    except (ForkgymError, re.error) as e:
        print(f"forkgym validate: {e}", file=sys.stderr)
        return 2
    with forkgym.make(args.env, step_timeout=args.step_timeout) as env:
        results = validate_states(states, env, jobs=jobs, progress=_progress_bar(sys.stderr), semantics=options)
        if args.fresh_process:
            for result in results:
                if not (result.benchmark_changed or result.actions_replay_failed):
                    validate_across_processes(env, result.state, result)
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
    checked = sum(r.benchmark_semantics_validated for r in results)
    failed = sum(r.benchmark_semantics_validation_failed for r in results)
    noisy = sum(r.benchmark_nondeterministic for r in results)
    if checked or failed or noisy:
        print(f"semantics: {checked} validated, {failed} failed, {noisy} benchmark(s) nondeterministic")
    if args.fresh_process:
        same = sum(r.cross_process_validated for r in results)
        diverged = sum(r.cross_process_divergent_step is not None for r in results)
        print(f"across processes: {same} the same, {diverged} diverged")
    return 0 if passed == len(results) else 1
