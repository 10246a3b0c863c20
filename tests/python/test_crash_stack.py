"""A crashed worker's stack: the crash reporter records its return addresses,
the client symbolises them into a signature that names the crashing function
and stays the same from one crash at that place to the next."""

from __future__ import annotations

import pickle

import forkgym
from forkgym.crash_stack import signature, symbolize
from forkgym.errors import SessionCrashed, from_outcome
from forkgym.outcome import Outcome

from conftest import flag


def test_a_segfault_s_stack_signature_names_the_crashing_function(env) -> None:
    env.reset(benchmark="benchmark://forkgym-v0/crc32")
    _, _, _, truncated, info = env.step(flag(env, "-forkgym-test-segfault"))
    assert truncated and info["outcome"] == Outcome.CRASHED
    assert info["stack"], "the crash reporter recorded no stack"
    innermost = info["stack_signature"].split(" < ")[0]
    assert innermost.endswith("segfault"), info["stack_signature"]
    # The frames below it are the session's: the fault injection ran inside a step.
    assert "runFaultInjection" in info["stack_signature"], info["stack_signature"]
    # No address in the signature: two crashes at one place share it.
    assert "0x" not in info["stack_signature"]


def test_a_stack_overflow_is_signed_by_the_recursing_function(env) -> None:
    env.reset(benchmark="benchmark://forkgym-v0/crc32")
    _, _, _, truncated, info = env.step(flag(env, "-forkgym-test-stack-overflow"))
    assert truncated and info["outcome"] == Outcome.CRASHED
    assert info["stack_signature"].startswith("forkgym::passes::(anonymous namespace)::recurse"), info["stack_signature"]


def test_an_llvm_crash_is_signed_by_llvm_s_functions_the_same_way_on_two_programs(env) -> None:
    # LLVM 19's -scalarizer dereferences a null pointer on llvm-stress programs.
    signatures = set()
    for seed in (3, 5):
        env.reset(benchmark=f"generator://llvm-stress-v0/{seed}")
        _, _, _, truncated, info = env.step(env.action_space.index("-scalarizer"))
        assert truncated and info["outcome"] == Outcome.CRASHED and info["signal"] == 11
        assert "llvm::ScalarizerPass::run" in info["stack_signature"], info["stack_signature"]
        signatures.add(info["stack_signature"])
    assert len(signatures) == 1, signatures


def test_the_error_for_a_crash_carries_its_stack_and_signature(env) -> None:
    env.reset(benchmark="benchmark://forkgym-v0/crc32")
    _, _, _, _, info = env.step(flag(env, "-forkgym-test-segfault"))
    error = from_outcome(info["outcome"], info["error_details"], info["signal"], info["reproducer"], info["stack"])
    assert isinstance(error, SessionCrashed)
    assert error.stack_signature == info["stack_signature"]
    # Pickled (multiprocessing), the stack travels and signs the same.
    again = pickle.loads(pickle.dumps(error))
    assert again.stack == error.stack and again.stack_signature == error.stack_signature


def test_symbolisation_refuses_a_module_path_that_is_not_an_elf_file(tmp_path) -> None:
    # The worker writes the module paths, so they are untrusted: a relative or
    # non-ELF path is never handed to the symboliser, and names nothing.
    text = tmp_path / "notes.txt"
    text.write_text("not a program")
    frames = symbolize([(str(text), 0x10, False), ("relative/lib.so", 0x20, True), ("/no/such/lib.so", 1, False)])
    assert [f.function for f in frames] == ["", "", ""]
    assert signature([(str(text), 0x10, False)]) == ""


def test_a_step_that_did_not_crash_has_no_stack(env) -> None:
    env.reset(benchmark="benchmark://forkgym-v0/crc32")
    _, _, _, truncated, info = env.step(0)
    assert not truncated and "stack" not in info
    assert forkgym.SessionCrashed("x").stack_signature == ""
