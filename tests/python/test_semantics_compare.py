"""How semantic validation judges what the runner reports (forkgym.semantics),
on run results written out here: each way an optimised program can differ is
named by its kind, and a difference two unoptimised runs also show is the
benchmark's nondeterminism, never reported as a miscompile."""

from __future__ import annotations

import re
import signal
from types import SimpleNamespace

import pytest

from forkgym.outcome import Outcome
from forkgym.semantics import SemanticsFailure, check_sanitized, compare


def run(input_set=0, outcome=Outcome.OK, exit_code=0, sig=0, stdout=b"checksum = 1\n", stderr=b"", files=None,
        message="", stdout_truncated=False):
    return SimpleNamespace(input_set=input_set, outcome=int(outcome), exit_code=exit_code, signal=sig,
                           stdout=stdout, stderr=stderr, stdout_truncated=stdout_truncated, stderr_truncated=False,
                           output_files=[SimpleNamespace(name=n, content=c) for n, c in (files or {}).items()],
                           message=message)


def result(*runs, built=True, diagnostics=""):
    return SimpleNamespace(built=built, build_outcome=int(Outcome.OK if built else Outcome.COMPILER_FAILED),
                           build_diagnostics=diagnostics, runs=list(runs))


def gold(*runs_per_set):
    """Two identical gold runs for each input set given."""
    return result(*[r for one in runs_per_set for r in (one, one)])


def kinds(report):
    return [f.kind for f in report.failures]


def test_agreeing_programs_are_validated() -> None:
    report = compare(gold(run(0), run(1, stdout=b"other\n")), result(run(0), run(1, stdout=b"other\n")))
    assert report.validated and not report.failures and report.nondeterministic is None


def test_a_segfault_is_a_crash_naming_its_signal() -> None:
    report = compare(gold(run()), result(run(outcome=Outcome.CRASHED, exit_code=-1, sig=signal.SIGSEGV,
                                             stdout=b"")))
    assert not report.validated
    (failure,) = report.failures
    assert failure.kind == SemanticsFailure.CRASHED and failure.signal == signal.SIGSEGV
    assert "SIGSEGV" in failure.message and "exited with status 0" in failure.message


def test_wrong_output_says_where_it_parts() -> None:
    report = compare(gold(run(stdout=b"a\nchecksum = 1\n")), result(run(stdout=b"a\nchecksum = 2\n")))
    assert kinds(report) == [SemanticsFailure.WRONG_OUTPUT]
    assert "stdout differs, line 2: expected checksum = 1, got checksum = 2" in report.failures[0].message


@pytest.mark.parametrize("candidate, kind", [
    (run(exit_code=1), SemanticsFailure.WRONG_EXIT_STATUS),
    (run(outcome=Outcome.TIMED_OUT, exit_code=-1, stdout=b""), SemanticsFailure.TIMED_OUT),
    (run(outcome=Outcome.OUT_OF_MEMORY, exit_code=-1, stdout=b""), SemanticsFailure.OUT_OF_MEMORY),
    (run(outcome=Outcome.SANDBOX_VIOLATION, exit_code=-1, sig=signal.SIGSYS, stdout=b""), SemanticsFailure.RUN_FAILED),
    (run(outcome=Outcome.TIMED_OUT, exit_code=-1, sig=signal.SIGXCPU, stdout=b""), SemanticsFailure.TIMED_OUT),
    (run(stderr=b"warning\n"), SemanticsFailure.WRONG_OUTPUT),
    (run(stdout=b"checksum = 1\n", stdout_truncated=True), SemanticsFailure.WRONG_OUTPUT),
])
def test_each_way_of_differing_has_its_kind(candidate, kind) -> None:
    assert kinds(compare(gold(run()), result(candidate))) == [kind]


def test_output_files_are_compared() -> None:
    expected = gold(run(files={"out.txt": b"1\n2\n"}))
    assert compare(expected, result(run(files={"out.txt": b"1\n2\n"})), outputs=["out.txt"]).validated
    wrong = compare(expected, result(run(files={"out.txt": b"1\n3\n"})), outputs=["out.txt"])
    assert kinds(wrong) == [SemanticsFailure.OUTPUT_FILE_DIFFERS] and "line 2" in wrong.failures[0].message
    missing = compare(expected, result(run()), outputs=["out.txt"])
    assert kinds(missing) == [SemanticsFailure.OUTPUT_FILE_DIFFERS] and "not written" in missing.failures[0].message


def test_a_difference_between_two_unoptimised_runs_is_nondeterminism_not_a_miscompile() -> None:
    noisy = result(run(stdout=b"time 1\n"), run(stdout=b"time 2\n"))
    report = compare(noisy, result(run(stdout=b"time 3\n")))
    assert report.failures == [] and not report.validated
    assert "two runs of the unoptimised program differ on input set 0" in report.nondeterministic
    assert "nondeterministic" in report.nondeterministic


def test_an_output_filter_compares_modulo_what_varies() -> None:
    noisy = result(run(stdout=b"x = 1\ntime 1\n"), run(stdout=b"x = 1\ntime 2\n"))
    for keep in ("^time ", re.compile(rb"^time "), lambda data: re.sub(rb"time \d+", b"", data)):
        assert compare(noisy, result(run(stdout=b"x = 1\ntime 3\n")), output_filter=keep).validated
        assert kinds(compare(noisy, result(run(stdout=b"x = 2\ntime 3\n")), output_filter=keep)) == [
            SemanticsFailure.WRONG_OUTPUT]


def test_stderr_can_be_left_out() -> None:
    assert compare(gold(run()), result(run(stderr=b"noise\n")), compare_stderr=False).validated


def test_a_gold_standard_that_does_not_build_or_finish_leaves_semantics_unverified() -> None:
    broken = compare(result(built=False, diagnostics="undefined reference to `sqrt'"), result(run()))
    assert not broken.validated and not broken.failures
    assert "did not build" in broken.unverified and "sqrt" in broken.unverified
    slow = compare(gold(run(outcome=Outcome.TIMED_OUT, exit_code=-1)), result(run()))
    assert "timed_out" in slow.unverified and "raise run_timeout" in slow.unverified and not slow.failures
    stopped = compare(gold(run(outcome=Outcome.SANDBOX_VIOLATION, exit_code=-1, sig=signal.SIGSYS,
                               message="stopped by the sandbox")), result(run()))
    assert "sandbox_violation (stopped by the sandbox)" in stopped.unverified and not stopped.failures


def test_a_gold_standard_that_crashes_the_same_way_is_still_a_standard() -> None:
    crash = run(outcome=Outcome.CRASHED, exit_code=-1, sig=signal.SIGABRT, stdout=b"")
    assert compare(gold(crash), result(crash)).validated
    assert kinds(compare(gold(crash), result(run()))) == [SemanticsFailure.WRONG_EXIT_STATUS]


def test_an_optimised_module_that_does_not_build_is_a_build_failure() -> None:
    report = compare(gold(run()), result(built=False, diagnostics="relocation out of range"))
    assert kinds(report) == [SemanticsFailure.BUILD_FAILED] and "relocation out of range" in report.failures[0].message


def test_a_missing_run_is_never_taken_for_agreement() -> None:
    report = compare(gold(run(0), run(1)), result(run(0)))
    assert not report.validated and "input set(s) [1]" in report.unverified


def test_a_sanitizer_report_is_a_failure_unless_the_unoptimised_program_reports_too() -> None:
    asan = b"==1==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x1\nmore\n"
    failures, excuse = check_sanitized(result(run(exit_code=1, stderr=asan)), result(run()), "asan")
    assert [f.kind for f in failures] == [SemanticsFailure.SANITIZER_REPORT] and excuse is None
    assert "heap-buffer-overflow" in failures[0].message
    failures, excuse = check_sanitized(result(run(exit_code=1, stderr=asan)), result(run(stderr=asan)), "asan")
    assert failures == [] and "undefined behaviour in the benchmark" in excuse
    failures, _ = check_sanitized(result(run()), result(run()), "asan")
    assert failures == []


def test_a_sanitizer_report_names_its_kind() -> None:
    asan = b"==1==ERROR: AddressSanitizer: stack-use-after-scope on address 0x1\nmore\n"
    failures, _ = check_sanitized(result(run(exit_code=1, stderr=asan)), result(run()), "asan")
    (failure,) = failures
    assert failure.sanitizer_kind == "stack-use-after-scope" and failure.input_set == 0


def test_an_asan_runtime_that_cannot_start_is_not_a_report_but_says_why_nothing_was_checked() -> None:
    cannot_start = (b"==7==ERROR: AddressSanitizer failed to allocate 0xdfff0001000 (15392894357504) bytes at address "
                    b"0x02008fff7000 (errno: 12)\n==7==ReserveShadowMemoryRange failed while trying to map "
                    b"0xdfff0001000 bytes. Perhaps you're using ulimit -v or ulimit -d\n")
    failures, excuse = check_sanitized(result(run(outcome=Outcome.CRASHED, exit_code=-1, sig=signal.SIGABRT,
                                                  stderr=cannot_start)), result(run()), "asan")
    assert failures == []
    assert "the asan build could not start its runtime" in excuse and "ReserveShadowMemoryRange" in excuse
