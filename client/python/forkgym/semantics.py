"""Semantic validation: does the episode's program still behave like the
benchmark's?

The worker builds and runs programs (``Request.run``); this module only
compares what it reports. For a benchmark with a run configuration:

1. The gold standard: the benchmark as loaded (``original``), built and run
   twice on every input set. Two runs that differ mean the *benchmark* is
   nondeterministic (it reads the clock, addresses, uninitialised memory...):
   nothing can be concluded about the optimised program, and the result says
   so instead of reporting a miscompile. A gold run that does not finish
   normally (timed out, out of memory, stopped by the sandbox) or does not
   build leaves the semantics unverified, with the reason.
2. The candidate: the current state, built and run once on every input set,
   compared with the gold run: how the run ended (a signal the gold run did
   not get is ``crashed``; a limit is ``timed_out`` / ``out_of_memory``), the
   exit status, stdout and stderr (after an optional filter), and the
   configuration's output files. Its wall-clock limit comes from the gold
   runs (``candidate_timeout``): max(5 s, 10 x the slowest gold run), at
   most the configuration's run timeout — a state whose program hangs costs
   seconds, not c-torture's 300 s default. ``ValidationResult.semantics_run_timeout``
   and a ``timed_out`` failure's message say which limit was used.
3. Optionally a sanitizer build (``asan``) of the current state, under the
   same limit: a report in its stderr is ``sanitizer_report``, naming its
   kind (``SemanticsCheck.sanitizer_kind``, e.g. ``heap-buffer-overflow``) —
   unless the unoptimised program's own sanitizer build reports too, which is
   undefined behaviour in the benchmark, not a miscompile (unverified, with
   the report). A runtime that cannot start (its shadow memory refused) is
   never taken for a report: the result says nothing was checked. The
   program runs with no address-space limit (ASan reserves ~20 TB of shadow)
   but its allocator bounded at the episode's memory limit, no leak
   detection, and every other limit and confinement of a run (see the
   runner, passes/runner.h).

What UBSan could add and why it is not here: UBSan instruments in the
front end, from C semantics the IR no longer carries (signed overflow is an
``nsw`` flag a pass may drop; a shift amount's limit, a bool's range are
gone), so an IR-level build cannot be a UBSan build; run UBSan on the
benchmark's sources instead (the hunt in ``scripts/`` does).
"""

from __future__ import annotations

import enum
import math
import re
import signal as signals
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from forkgym.outcome import Outcome, outcome_name

# What a user may give to compare outputs modulo something (timings, addresses):
# a function of the bytes, or a regular expression whose matching lines are dropped.
OutputFilter = Callable[[bytes], bytes] | str | bytes | re.Pattern[bytes] | None

SANITIZERS = ("asan",)
# A report: "==pid==ERROR: AddressSanitizer: heap-buffer-overflow on address ...";
# the word after the sanitizer's name is the kind of error.
_SANITIZER_REPORT = re.compile(rb"ERROR: (AddressSanitizer|LeakSanitizer): ([\w-]+)[^\n]*")
# The runtime could not start (e.g. its shadow memory was refused: "ERROR:
# AddressSanitizer failed to allocate ... ReserveShadowMemoryRange failed"):
# nothing was checked, which is never a report about the program.
_SANITIZER_CANNOT_START = re.compile(rb"ERROR: (AddressSanitizer|LeakSanitizer) failed[^\n]*(\n[^\n]*)?")


class SemanticsFailure(str, enum.Enum):
    """How the optimised program differed from the unoptimised one."""

    WRONG_OUTPUT = "wrong_output"              # stdout or stderr differ
    WRONG_EXIT_STATUS = "wrong_exit_status"    # both exited, with different statuses
    CRASHED = "crashed"                        # ended by a signal (the gold run was not, or by another)
    TIMED_OUT = "timed_out"                    # ran past the run configuration's timeout
    OUT_OF_MEMORY = "out_of_memory"
    OUTPUT_FILE_DIFFERS = "output_file_differs"  # a declared output file differs or is missing
    SANITIZER_REPORT = "sanitizer_report"      # the sanitizer build reported an error
    BUILD_FAILED = "build_failed"              # the optimised module does not build
    RUN_FAILED = "run_failed"                  # any other way the run did not finish (sandbox, output size)

    def __str__(self) -> str:
        return self.value


@dataclass
class SemanticsCheck:
    """One check that failed: which, on which input set, and how."""

    kind: SemanticsFailure
    input_set: int
    message: str
    signal: int = 0
    # sanitizer_report: the kind of error the sanitizer names ("heap-buffer-overflow").
    sanitizer_kind: str = ""

    def __str__(self) -> str:
        return f"{self.kind.value} on input set {self.input_set}: {self.message}"


@dataclass
class SemanticsReport:
    """What semantic validation found.

    ``validated``: every check ran and passed. ``failures``: the checks that
    failed (the optimised program differs). ``nondeterministic``: why the
    gold standard cannot be trusted (two unoptimised runs differ), or None.
    ``unverified``: why the checks could not run (the gold standard did not
    build or finish, undefined behaviour in the benchmark), or None.
    """

    validated: bool = False
    failures: list[SemanticsCheck] = field(default_factory=list)
    nondeterministic: str | None = None
    unverified: str | None = None
    runs: int = 0  # programs run, gold and candidate, for the record
    # The wall-clock limit the state's programs ran under (candidate_timeout()).
    run_timeout: int | None = None
    # Every report of a sanitizer build, the state's and (when it reported)
    # the unoptimised program's — whether a failure or excused as the
    # benchmark's own undefined behaviour.
    sanitizer_reports: list[SemanticsCheck] = field(default_factory=list)


def _filter(output_filter: OutputFilter) -> Callable[[bytes], bytes]:
    if output_filter is None:
        return lambda data: data
    if callable(output_filter) and not isinstance(output_filter, re.Pattern):
        def apply(data: bytes) -> bytes:
            result = output_filter(data)
            if isinstance(result, str):
                result = result.encode()
            if not isinstance(result, (bytes, bytearray)):
                raise TypeError(f"the output filter returned {type(result).__name__}; it must return bytes")
            return bytes(result)

        return apply
    pattern = output_filter if isinstance(output_filter, re.Pattern) else re.compile(
        output_filter.encode() if isinstance(output_filter, str) else output_filter)
    if isinstance(pattern.pattern, str):
        pattern = re.compile(pattern.pattern.encode(), pattern.flags & ~re.UNICODE)

    def drop_lines(data: bytes) -> bytes:
        return b"".join(line for line in data.splitlines(keepends=True) if not pattern.search(line))

    return drop_lines


def _signal_name(number: int) -> str:
    try:
        return signals.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _first_difference(expected: bytes, got: bytes) -> str:
    """Where two outputs part, in words (first differing line, shortened)."""
    a, b = expected.splitlines(), got.splitlines()
    for i in range(max(len(a), len(b))):
        left = a[i] if i < len(a) else None
        right = b[i] if i < len(b) else None
        if left != right:
            def show(line: bytes | None) -> str:
                if line is None:
                    return "(nothing)"
                text = repr(line)[2:-1]
                return text if len(text) <= 120 else text[:117] + "..."

            return f"line {i + 1}: expected {show(left)}, got {show(right)}"
    return "they differ in line endings or a final newline"


@dataclass
class _Run:
    """One program run as compared: the runner's ProgramRun, outputs filtered."""

    input_set: int
    outcome: int
    exit_code: int
    signal: int
    stdout: bytes
    stderr: bytes
    stdout_truncated: bool
    stderr_truncated: bool
    files: dict[str, bytes]
    message: str
    timeout_seconds: int = 0  # the limit it ran under (0: not reported)

    @classmethod
    def of(cls, run: Any, keep: Callable[[bytes], bytes]) -> _Run:
        return cls(
            input_set=int(run.input_set),
            outcome=int(run.outcome),
            exit_code=int(run.exit_code),
            signal=int(run.signal),
            stdout=keep(bytes(run.stdout)),
            stderr=keep(bytes(run.stderr)),
            stdout_truncated=bool(run.stdout_truncated),
            stderr_truncated=bool(run.stderr_truncated),
            files={f.name: bytes(f.content) for f in run.output_files},
            message=str(run.message),
            timeout_seconds=int(getattr(run, "timeout_seconds", 0)),
        )

    def ended(self) -> str:
        """How the run ended, in words."""
        if self.outcome == Outcome.OK and not self.signal:
            return f"exited with status {self.exit_code}"
        if self.outcome in (Outcome.OK, Outcome.CRASHED) and self.signal:
            return f"was killed by {_signal_name(self.signal)}"
        return f"{outcome_name(self.outcome)}" + (f" ({self.message})" if self.message else "")


def _differences(gold: _Run, other: _Run, compare_stderr: bool, outputs: Sequence[str],
                 timeout_rule: str = "") -> list[SemanticsCheck]:
    """Every way ``other`` differs from ``gold`` (empty: they agree)."""
    where = other.input_set
    if other.outcome != Outcome.OK or other.signal:
        if gold.outcome == other.outcome and gold.signal == other.signal:
            pass  # the gold run ended the same way: compare what they wrote
        elif other.outcome == Outcome.TIMED_OUT:
            after = f" after {other.timeout_seconds} s" if other.timeout_seconds else ""
            rule = f" ({timeout_rule})" if timeout_rule else ""
            return [SemanticsCheck(SemanticsFailure.TIMED_OUT, where,
                                   f"the optimised program timed out{after}{rule}; the unoptimised one {gold.ended()}")]
        elif other.outcome == Outcome.OUT_OF_MEMORY:
            return [SemanticsCheck(SemanticsFailure.OUT_OF_MEMORY, where,
                                   f"the optimised program ran out of memory; the unoptimised one {gold.ended()}")]
        elif other.outcome in (Outcome.CRASHED, Outcome.OK) and other.signal:
            return [SemanticsCheck(SemanticsFailure.CRASHED, where,
                                   f"the optimised program was killed by {_signal_name(other.signal)}; the "
                                   f"unoptimised one {gold.ended()}", signal=other.signal)]
        else:  # stopped by the sandbox (SIGSYS), wrote too much (SIGXFSZ), ...
            return [SemanticsCheck(SemanticsFailure.RUN_FAILED, where,
                                   f"the optimised program {other.ended()}; the unoptimised one {gold.ended()}")]
    elif gold.outcome != Outcome.OK or gold.signal:
        return [SemanticsCheck(SemanticsFailure.WRONG_EXIT_STATUS, where,
                               f"the optimised program {other.ended()}; the unoptimised one {gold.ended()}")]
    found: list[SemanticsCheck] = []
    if other.exit_code != gold.exit_code:
        found.append(SemanticsCheck(SemanticsFailure.WRONG_EXIT_STATUS, where,
                                    f"exit status {other.exit_code}, expected {gold.exit_code}"))
    streams = [("stdout", gold.stdout, other.stdout, gold.stdout_truncated, other.stdout_truncated)]
    if compare_stderr:
        streams.append(("stderr", gold.stderr, other.stderr, gold.stderr_truncated, other.stderr_truncated))
    for name, expected, got, expected_cut, got_cut in streams:
        if expected != got or expected_cut != got_cut:
            cut = " (one of them was cut at the runner's limit)" if expected_cut or got_cut else ""
            found.append(SemanticsCheck(SemanticsFailure.WRONG_OUTPUT, where,
                                        f"{name} differs, {_first_difference(expected, got)}{cut}"))
    for name in outputs:
        expected_file, got_file = gold.files.get(name), other.files.get(name)
        if expected_file == got_file:
            continue
        if got_file is None:
            message = f"output file {name} was not written (the unoptimised program wrote {len(expected_file)} bytes)"
        elif expected_file is None:
            message = f"output file {name} was written, the unoptimised program wrote none"
        else:
            message = f"output file {name} differs, {_first_difference(expected_file, got_file)}"
        found.append(SemanticsCheck(SemanticsFailure.OUTPUT_FILE_DIFFERS, where, message))
    return found


def _by_input_set(runs: Sequence[_Run]) -> dict[int, list[_Run]]:
    grouped: dict[int, list[_Run]] = {}
    for run in runs:
        grouped.setdefault(run.input_set, []).append(run)
    return grouped


def _gold_did_not_finish(run: _Run) -> bool:
    """A gold run that hit a limit or the sandbox is no standard (one that crashed is:
    the optimised program must crash the same way)."""
    return run.outcome not in (Outcome.OK, Outcome.CRASHED)


def compare(
    gold: Any,
    candidate: Any,
    *,
    outputs: Sequence[str] | None = None,
    output_filter: OutputFilter = None,
    compare_stderr: bool = True,
    timeout_rule: str = "",
) -> SemanticsReport:
    """Compares the runner's RunResults: ``gold`` (the unoptimised program, two
    runs or more per input set) and ``candidate`` (the current state's).
    ``outputs``: the output files to compare (default: every one either wrote;
    the runner returns those of the run configuration that exist).

    Never reports a difference the gold runs disagree on: that is the
    benchmark's nondeterminism (``report.nondeterministic``), not a miscompile.
    """
    keep = _filter(output_filter)
    report = SemanticsReport()
    if not gold.built:
        report.unverified = (f"the unoptimised program did not build ({outcome_name(gold.build_outcome)}): "
                             f"{_shorten(gold.build_diagnostics)}; check the run configuration's build_cmd")
        return report
    if outputs is None:
        outputs = sorted({f.name for r in [*gold.runs, *candidate.runs] for f in r.output_files})
    gold_runs = _by_input_set([_Run.of(r, keep) for r in gold.runs])
    report.runs += len(gold.runs)
    for where, runs in sorted(gold_runs.items()):
        stuck = next((r for r in runs if _gold_did_not_finish(r)), None)
        if stuck is not None:
            hint = " (raise run_timeout)" if stuck.outcome == Outcome.TIMED_OUT else ""
            report.unverified = f"the unoptimised program {stuck.ended()} on input set {where}{hint}"
            return report
        for other in runs[1:]:
            differences = _differences(runs[0], other, compare_stderr, outputs)
            if differences:
                report.nondeterministic = (
                    f"two runs of the unoptimised program differ on input set {where} ("
                    + "; ".join(d.message for d in differences)
                    + "): the benchmark is nondeterministic, so a difference of the optimised program proves "
                    "nothing; filter what varies (output_filter) or make the program deterministic")
                return report
    if not candidate.built:
        report.failures.append(SemanticsCheck(
            SemanticsFailure.BUILD_FAILED, -1,
            f"the optimised module did not build ({outcome_name(candidate.build_outcome)}): "
            f"{_shorten(candidate.build_diagnostics)}"))
        return report
    report.runs += len(candidate.runs)
    for run in (_Run.of(r, keep) for r in candidate.runs):
        expected = gold_runs.get(run.input_set)
        if not expected:
            report.unverified = f"the runner gave no gold run for input set {run.input_set}"
            return report
        report.failures.extend(_differences(expected[0], run, compare_stderr, outputs, timeout_rule))
    missing = sorted(set(gold_runs) - {int(r.input_set) for r in candidate.runs})
    if missing:
        report.unverified = f"the runner gave no run of the optimised program for input set(s) {missing}"
        return report
    report.validated = not report.failures
    return report


def sanitizer_report(run: Any) -> str | None:
    """The first line of a sanitizer's report in a run's stderr, or None."""
    found = _SANITIZER_REPORT.search(bytes(run.stderr))
    return found.group(0).decode(errors="replace") if found else None


def sanitizer_kind(line: str) -> str:
    """The kind of error a report line names ("heap-buffer-overflow")."""
    found = _SANITIZER_REPORT.search(line.encode())
    return found.group(2).decode() if found else ""


def sanitizer_cannot_start(run: Any) -> str | None:
    """Why a sanitizer build's runtime could not start (its first lines), or None."""
    found = _SANITIZER_CANNOT_START.search(bytes(run.stderr))
    return " ".join(found.group(0).decode(errors="replace").split()) if found else None


def _reports(result: Any, sanitizer: str, whose: str) -> list[SemanticsCheck]:
    found = []
    for run in result.runs:
        line = sanitizer_report(run)
        if line is not None:
            found.append(SemanticsCheck(SemanticsFailure.SANITIZER_REPORT, int(run.input_set),
                                        f"the {sanitizer} build of {whose} reports: {line}",
                                        sanitizer_kind=sanitizer_kind(line)))
    return found


def check_sanitized(candidate: Any, original: Any | None, sanitizer: str) -> tuple[list[SemanticsCheck], str | None]:
    """Failures of the ``sanitizer`` build of the current state (``candidate``), and
    why they prove nothing, if the unoptimised program's build (``original``)
    reports too or the sanitizer's runtime could not start."""
    if not candidate.built:
        return [SemanticsCheck(SemanticsFailure.BUILD_FAILED, -1,
                               f"the {sanitizer} build of the optimised module did not build: "
                               f"{_shorten(candidate.build_diagnostics)}")], None
    for run in candidate.runs:
        why = sanitizer_cannot_start(run)
        if why is not None:
            return [], (f"the {sanitizer} build could not start its runtime on input set {int(run.input_set)}, so "
                        f"nothing was checked: {_shorten(why)}")
    found = _reports(candidate, sanitizer, "the optimised module")
    if found and original is not None and original.built:
        for report in _reports(original, sanitizer, "the unoptimised program"):
            return [], (f"the {sanitizer} build of the unoptimised program reports too, on input set "
                        f"{report.input_set} ({report.message.split('reports: ', 1)[1]}): undefined behaviour in "
                        f"the benchmark, not a miscompile")
    return found, None


def _shorten(text: str, limit: int = 400) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class SemanticsOptions:
    """What :meth:`forkgym.CompilerEnv.validate` checks of a runnable benchmark.

    ``semantics``: None (default) validates when the benchmark has a run
    configuration; True requires it (a state whose semantics could not be
    validated is not okay); False skips it. ``sanitizers``: sanitizer builds of
    the state to run too (``"asan"``). ``output_filter``: compare outputs
    modulo it (see :data:`OutputFilter`). ``compare_stderr``: compare stderr
    as well as stdout. ``gold_runs``: runs of the unoptimised program per
    input set (two or more detect a nondeterministic benchmark).
    """

    semantics: bool | None = None
    sanitizers: tuple[str, ...] = ()
    output_filter: OutputFilter = None
    compare_stderr: bool = True
    gold_runs: int = 2

    def __post_init__(self) -> None:
        from forkgym.errors import InvalidRequest

        sanitizers = (self.sanitizers,) if isinstance(self.sanitizers, str) else tuple(self.sanitizers)
        object.__setattr__(self, "sanitizers", sanitizers)
        for name in sanitizers:
            if name not in SANITIZERS:
                why = (" (UBSan checks C semantics the IR no longer carries, so a build of the optimised IR cannot "
                       "be a UBSan build; run UBSan on the benchmark's sources instead, e.g. clang-19 "
                       "-fsanitize=undefined; see forkgym.semantics)" if name == "ubsan" else "")
                raise InvalidRequest(f"unknown sanitizer {name!r}{why}; the runner builds {', '.join(SANITIZERS)}")
        if self.gold_runs < 1:
            raise InvalidRequest(f"gold_runs must be at least 1 (2 detects nondeterminism), got {self.gold_runs}")
        if self.semantics is False and sanitizers:
            raise InvalidRequest("sanitizers need semantic validation: drop semantics=False")
        _filter(self.output_filter)  # a bad filter is refused before anything runs


def is_not_runnable(error: Exception) -> bool:
    """Whether a run request was refused because the benchmark has no run configuration."""
    from forkgym.errors import InvalidRequest

    return isinstance(error, InvalidRequest) and "run configuration" in str(error)


# The candidate's limit (candidate_timeout()): a program that takes ten times
# as long as the unoptimised one is not going to end (the Attributor's
# miscompile makes main an empty infinite loop), and c-torture's 300 s default
# would make every such state cost five minutes.
CANDIDATE_TIMEOUT_FACTOR = 10
CANDIDATE_TIMEOUT_FLOOR = 5


def candidate_timeout(gold: Any) -> tuple[int, str]:
    """The wall-clock limit (s) of the state's programs, from the gold runs:
    max(CANDIDATE_TIMEOUT_FLOOR, CANDIDATE_TIMEOUT_FACTOR x the slowest gold
    run), at most the run configuration's timeout (the gold runs' limit);
    and the rule in words. 0: the configuration's (no gold run to go by)."""
    configured = max((int(getattr(r, "timeout_seconds", 0)) for r in gold.runs), default=0)
    if not configured:
        return 0, ""
    slowest = max(float(r.wall_seconds) for r in gold.runs)
    derived = max(CANDIDATE_TIMEOUT_FLOOR, math.ceil(CANDIDATE_TIMEOUT_FACTOR * slowest))
    rule = (f"max({CANDIDATE_TIMEOUT_FLOOR} s, {CANDIDATE_TIMEOUT_FACTOR} x the unoptimised program's "
            f"{slowest:.3f} s), at most {configured} s, the run configuration's timeout")
    return min(derived, configured), rule


def validate(native: Any, options: SemanticsOptions, open_original: Callable[[], Any]) -> SemanticsReport:
    """Semantic validation of ``native``'s current state (a worker at the state),
    as the module docstring says. ``open_original()`` gives a session at the
    benchmark's start (for the unoptimised program's sanitizer builds); the
    caller closes it. A benchmark without a run configuration raises the
    worker's InvalidRequest (see :func:`is_not_runnable`)."""
    gold = native.run("original", [], options.gold_runs, 0)
    limit, rule = candidate_timeout(gold)
    candidate = native.run("current", [], 1, 0, limit)
    report = compare(gold, candidate, output_filter=options.output_filter, compare_stderr=options.compare_stderr,
                     timeout_rule=rule)
    report.run_timeout = limit or None
    if report.nondeterministic or report.unverified:
        return report
    original = None
    try:
        for sanitizer in options.sanitizers:
            sanitized = native.run(sanitizer, [], 1, 0, limit)
            report.runs += len(sanitized.runs)
            report.sanitizer_reports.extend(_reports(sanitized, sanitizer, "the optimised module"))
            if not any(sanitizer_report(r) for r in sanitized.runs):
                failures, excuse = check_sanitized(sanitized, None, sanitizer)
            else:
                if original is None:
                    original = open_original()
                original_run = original.run(sanitizer, [], 1, 0, limit)
                report.runs += len(original_run.runs)
                report.sanitizer_reports.extend(_reports(original_run, sanitizer, "the unoptimised program"))
                failures, excuse = check_sanitized(sanitized, original_run, sanitizer)
            if excuse:
                report.unverified = excuse
                report.validated = False
                return report
            report.failures.extend(failures)
    finally:
        if original is not None:
            original.close()
    report.validated = not report.failures
    return report
