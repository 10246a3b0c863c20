"""The failure taxonomy fuzz and reduce share (forkgym.failures): every way an
episode can fail gets a kind and a signature that buckets its repeats."""

from __future__ import annotations

import forkgym
from forkgym.cli.reduce import ddmin, run_sequence
from forkgym.failures import message_signature

from conftest import flag


def test_each_test_fault_is_classified_by_kind_and_signature() -> None:
    with forkgym.make("llvm-v0") as env:
        uri = "benchmark://forkgym-v0/crc32"
        crash = run_sequence(env, uri, [0, flag(env, "-forkgym-test-segfault")])
        assert crash.kind == "crash" and crash.signal == 11 and crash.step == 1
        assert crash.signature.startswith("SIGSEGV ") and "segfault" in crash.signature, crash.signature
        abort = run_sequence(env, uri, [flag(env, "-forkgym-test-abort")])
        assert abort.kind == "crash" and abort.signature.startswith("SIGABRT "), abort.signature
        # The frames of abort() itself are not where it happened: the signature starts at its caller.
        assert "runFaultInjection" in abort.signature and "abort" not in abort.signature.split(" < ")[0][8:], \
            abort.signature
        verifier = run_sequence(env, uri, [flag(env, "-forkgym-test-verifier-failure")])
        assert verifier.kind == "verifier" and verifier.signature, verifier
        memory = run_sequence(env, uri, [flag(env, "-forkgym-test-oom")])
        assert memory.kind == "out_of_memory" and memory.signature == "in -forkgym-test-oom", memory
        # Two occurrences of one fault share a bucket.
        assert run_sequence(env, uri, [flag(env, "-forkgym-test-segfault")]).bucket == crash.bucket
        assert run_sequence(env, uri, [0, 1]) is None
    with forkgym.make("llvm-v0", step_timeout=1) as env:
        timeout = run_sequence(env, "benchmark://forkgym-v0/crc32", [flag(env, "-forkgym-test-hang")])
        assert timeout.kind == "timeout" and timeout.signature == "in -forkgym-test-hang", timeout


def test_message_signatures_drop_what_differs_between_programs() -> None:
    one = message_signature("Instruction does not dominate all uses!\n  %12 = add i32 %a, 1")
    two = message_signature("Instruction does not dominate all uses!\n  %7 = add i32 %b, 2")
    assert one == two == "Instruction does not dominate all uses!"
    assert message_signature("bad value '%x.3' in @main at 0x1234 [verifier_failed]; the episode is over") == \
        "bad value '…' in %v at N"


def test_ddmin_finds_a_one_minimal_subsequence() -> None:
    tests = []

    def interesting(candidate: list[int]) -> bool:
        tests.append(candidate)
        return 3 in candidate and 7 in candidate

    assert ddmin(list(range(10)), interesting) == [3, 7]
    assert ddmin([5], lambda c: c == [5]) == [5]
