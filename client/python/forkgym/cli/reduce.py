"""``forkgym reduce``: the smallest pass sequence and IR that still fail the same way.

Given a benchmark and a pass sequence that fails (or an artifact directory
``fuzz`` wrote), the failure is first reproduced in a worker and its bucket
taken (:mod:`forkgym.failures`: kind and signature, e.g. a crash's signal and
symbolised stack). Then

1. the pass sequence is cut after the pass that failed and reduced by delta
   debugging (ddmin): a subsequence is kept only when it fails with the same
   bucket, so a reduction never wanders off to another bug;
2. ``llvm-reduce`` (LLVM 19's) reduces the benchmark's IR with an
   interestingness test that runs the reduced pipeline on each candidate in a
   forkgym worker (the sandbox, the limits, the same classification) and
   keeps candidates with the same bucket. The test is a small script that asks
   this process over a Unix socket, so each of llvm-reduce's hundreds of
   tests costs one episode, not a Python start-up.

The output is an artifact directory (:mod:`forkgym.cli.artifact`) whose
``reproduce.sh`` is the versioned ``opt`` command line; it is run once and
``outcome.json`` records whether ``opt`` fails the same way (for a crash: by
the same signal).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from forkgym.cli import artifact
from forkgym.failures import Failure, from_step_info

EPILOG = """examples:
  forkgym reduce --benchmark generator://llvm-stress-v0/3 --passes "-sroa -gvn -scalarizer -licm" -o out
  forkgym reduce fuzz-state/buckets/001-crash-sigsegv-... -o reduced
"""

# LLVM 19's, the server's: another version's tools may misread its bitcode.
_LLVM_REDUCE_NAMES = ("llvm-reduce-19", "/usr/lib/llvm-19/bin/llvm-reduce")


def ddmin(items: Sequence[Any], interesting: Callable[[list[Any]], bool]) -> list[Any]:
    """Zeller's ddmin: a 1-minimal subsequence of ``items`` that is still
    ``interesting`` (``items`` itself must be). Tests are cached by content."""
    cache: dict[tuple, bool] = {}

    def test(candidate: list[Any]) -> bool:
        key = tuple(candidate)
        if key not in cache:
            cache[key] = interesting(candidate)
        return cache[key]

    current = list(items)
    granularity = 2
    while len(current) >= 2:
        size = len(current) // granularity
        chunks = [current[i:i + size] for i in range(0, len(current), size)] if size else [[x] for x in current]
        reduced = False
        for chunk in chunks:  # a chunk alone
            if test(chunk):
                current, granularity, reduced = chunk, 2, True
                break
        if not reduced:
            for i in range(len(chunks)):  # everything but a chunk
                complement = [x for j, c in enumerate(chunks) if j != i for x in c]
                if complement and test(complement):
                    current, granularity, reduced = complement, max(granularity - 1, 2), True
                    break
        if not reduced:
            if granularity >= len(current):
                break
            granularity = min(granularity * 2, len(current))
    return current


# A failure of behaviour, found by checking a sequence that ran: what the
# check finds on ``env`` after ``actions`` ran on ``benchmark``, or None.
BehaviourCheck = Callable[[Any, str, Sequence[int]], "Failure | None"]

# The failure kinds a sequence shows only when checked after it ran.
BEHAVIOUR_KINDS = ("miscompile", "nondeterminism")


def semantics_check(env: Any, benchmark: str, actions: Sequence[int]) -> Failure | None:
    """A miscompile: the program built from the state behaves unlike the
    unoptimised one (``validate(semantics=True)``; runnable benchmarks)."""
    result = env.validate(semantics=True)
    if result.benchmark_semantics_validation_failed and result.semantics_failures:
        check = result.semantics_failures[0]
        return Failure("miscompile", str(check.kind), check.message, check.signal, None)
    return None


def determinism_check(processes: Any) -> BehaviourCheck:
    """Nondeterminism: the state hash differs when ``processes`` (a
    :class:`forkgym.cli.determinism.ProcessSet`) replay the sequence."""
    from forkgym.cli.determinism import check_state

    def check(env: Any, benchmark: str, actions: Sequence[int]) -> Failure | None:
        result = check_state(env, processes, benchmark, actions)
        if result.deterministic or result.error is not None:
            return None
        where = result.divergent_pass or "the benchmark as loaded"
        step = result.divergent_step - 1 if result.divergent_step else None
        return Failure("nondeterminism", f"state hash differs across processes after {where}", str(result), 0, step)

    return check


def run_sequence(env: Any, benchmark: str, actions: Sequence[int],
                 check: BehaviourCheck | None = None) -> Failure | None:
    """Runs ``actions`` on a new episode of ``benchmark``: the failure, or None.
    With ``check``, a sequence that runs is then checked for a failure of behaviour."""
    env.reset(benchmark=benchmark)
    if not actions:
        return None
    *_, truncated, info = env.multistep(list(actions), observation_spaces=[], reward_spaces=[])
    if not truncated:
        return check(env, benchmark, actions) if check is not None else None
    return from_step_info(info, list(actions), env.action_space.flags)


def same_failure(found: Failure | None, target: Failure) -> bool:
    return found is not None and found.bucket == target.bucket


def reduce_actions(env: Any, benchmark: str, actions: Sequence[int], target: Failure,
                   on_test: Callable[[], None] | None = None, check: BehaviourCheck | None = None) -> list[int]:
    """The 1-minimal subsequence of ``actions`` (cut after the failing step) failing like ``target``."""
    if target.step is not None:
        actions = list(actions)[: target.step + 1]

    def interesting(candidate: list[int]) -> bool:
        if on_test:
            on_test()
        return bool(candidate) and same_failure(run_sequence(env, benchmark, candidate, check), target)

    return ddmin(list(actions), interesting)


def llvm_reduce_tool() -> str | None:
    for name in _LLVM_REDUCE_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


class _Oracle:
    """Answers llvm-reduce's interestingness script over a Unix socket: runs
    the pipeline on the candidate in a worker and says whether it failed like the target."""

    def __init__(self, env: Any, actions: list[int], target: Failure, workdir: Path) -> None:
        self.env, self.actions, self.target, self.workdir = env, actions, target, workdir
        self.path = workdir / "oracle.sock"
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(self.path))
        self.listener.listen(4)
        self.tests = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            with connection:
                request = b""
                while not request.endswith(b"\n"):
                    chunk = connection.recv(4096)
                    if not chunk:
                        break
                    request += chunk
                verdict = self._judge(Path(request.decode().strip()))
                connection.sendall(b"1" if verdict else b"0")

    def _judge(self, candidate: Path) -> bool:
        self.tests += 1
        # llvm-reduce writes its candidates owner-only; the server may read
        # files as another user, so each is copied where it can.
        copy = self.workdir / f"candidate{candidate.suffix or '.bc'}"
        try:
            shutil.copyfile(candidate, copy)
            os.chmod(copy, 0o644)
            return same_failure(run_sequence(self.env, f"file://{copy}", self.actions), self.target)
        except Exception:  # a candidate that does not load is not interesting
            return False

    def close(self) -> None:
        self.listener.close()


_SCRIPT = """import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect({socket!r})
s.sendall(os.path.abspath(sys.argv[-1]).encode() + b"\\n")
sys.exit(0 if s.recv(1) == b"1" else 1)
"""


def reduce_ir(env: Any, input_path: Path, actions: list[int], target: Failure, workdir: Path,
              timeout: float) -> tuple[Path | None, str]:
    """Runs llvm-reduce on ``input_path``; returns (the reduced .ll or None, a note)."""
    tool = llvm_reduce_tool()
    if tool is None:
        return None, "llvm-reduce-19 not found (Debian package llvm-19-tools): IR not reduced"
    workdir.mkdir(parents=True, exist_ok=True)
    workdir.chmod(0o755)
    oracle = _Oracle(env, actions, target, workdir)
    script = workdir / "interesting.py"
    script.write_text(f"#!{sys.executable} -S\n" + _SCRIPT.format(socket=str(oracle.path)))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    # llvm-reduce writes its result in its input's format: text, for a bug report.
    text = workdir / "input.ll"
    disassembler = shutil.which("llvm-dis-19") or shutil.which("/usr/lib/llvm-19/bin/llvm-dis")
    if disassembler is None:
        oracle.close()
        return None, "llvm-dis-19 not found: IR not reduced"
    subprocess.run([disassembler, str(input_path), "-o", str(text)], check=True, capture_output=True)
    output = workdir / "reduced.ll"
    try:
        run = subprocess.run([tool, "-j", "1", f"--test={script}", str(text), "-o", str(output)], cwd=workdir,
                             capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return None, f"llvm-reduce took longer than {timeout:.0f} s (--ir-timeout): IR not reduced"
    finally:
        oracle.close()
    if run.returncode != 0 or not output.is_file():
        lines = (run.stderr or run.stdout).strip().splitlines()
        return None, f"llvm-reduce failed ({lines[-1] if lines else run.returncode}): IR not reduced"
    return output, f"llvm-reduce: {oracle.tests} interestingness tests"


def run_reproducer(directory: Path) -> int:
    """Runs the artifact's reproduce.sh; its exit status (negative: killed by that signal)."""
    run = subprocess.run(["sh", str(directory / "reproduce.sh")], capture_output=True, timeout=600, check=False)
    status = run.returncode
    # sh reports a child killed by signal N as 128 + N.
    return -(status - 128) if status > 128 else status


def reproduces_under_opt(failure: Failure, status: int) -> bool:
    """Whether ``opt`` failed the way the worker did: the same signal for a crash, a failure otherwise."""
    if failure.kind == "crash" and failure.signal:
        return status == -failure.signal
    return status != 0


def reduce(env: Any, *, benchmark: str, actions: list[int], output: Path, kind: str | None = None,
           signature: str | None = None, reduce_ir_too: bool = True, ir_timeout: float = 600.0,
           input_bytes: bytes | None = None, label: str | None = None,
           log: Callable[[str], None] = lambda _: None, check: BehaviourCheck | None = None) -> dict[str, Any]:
    """The whole reduction (see the module docstring); returns the reduced artifact's outcome.json.
    ``label`` is the benchmark's name in the artifact (default: ``benchmark``).
    ``check`` finds a failure of behaviour (a miscompile, nondeterminism) in a
    sequence that runs; such a failure's passes are reduced, not its IR
    (llvm-reduce would test the pipeline, not the behaviour), and ``opt``
    cannot show it (opt_reproduces is None)."""
    target = run_sequence(env, benchmark, actions, check)
    if target is None:
        raise ValueError(f"{' '.join(env.action_space.flags[a] for a in actions)} on {benchmark} does not fail "
                         "in a worker: nothing to reduce")
    if kind and target.kind != kind:
        raise ValueError(f"the sequence fails as {target.bucket}, not as a {kind}")
    if signature and signature not in target.signature:
        raise ValueError(f"the sequence fails as {target.bucket}, whose signature does not contain {signature!r}")
    log(f"failure: {target.bucket} (after {len(actions)} passes)")
    tests = [0]
    reduced = reduce_actions(env, benchmark, actions, target, on_test=lambda: tests.__setitem__(0, tests[0] + 1),
                             check=check)
    log(f"passes: {len(actions)} -> {len(reduced)} ({tests[0]} tests): {' '.join(env.action_space.flags[a] for a in reduced)}")
    final = run_sequence(env, benchmark, reduced, check)
    assert final is not None and final.bucket == target.bucket
    behaviour = final.kind in BEHAVIOUR_KINDS
    benchmark_hash = env.benchmark_hash
    if input_bytes is None:
        env.reset(benchmark=benchmark)
        input_bytes = env.bitcode
    output.mkdir(parents=True, exist_ok=True)
    notes = []
    input_name = "input.bc"
    reduced_ir: Path | None = None
    if reduce_ir_too and behaviour:
        notes.append(f"IR not reduced: a {final.kind} shows only when the result is checked, which "
                     "llvm-reduce's interestingness test does not do")
    elif reduce_ir_too:
        with tempfile.TemporaryDirectory(prefix="forkgym-reduce-") as scratch:
            workdir = Path(scratch)
            workdir.chmod(0o755)
            original = workdir / "input.bc"
            original.write_bytes(input_bytes)
            original.chmod(0o644)
            path, note = reduce_ir(env, original, reduced, final, workdir / "llvm-reduce", ir_timeout)
            notes.append(note)
            log(note)
            if path is not None:
                input_name = "input.ll"
                reduced_ir = output / input_name
                shutil.copyfile(path, reduced_ir)
    extra = {"original_actions": [env.action_space.flags[a] for a in actions], "ddmin_tests": tests[0],
             "notes": notes}
    artifact.write(output, env, benchmark=label or benchmark, benchmark_hash=benchmark_hash, actions=reduced, failure=final,
                   input_bytes=reduced_ir.read_bytes() if reduced_ir else input_bytes, input_name=input_name,
                   extra=extra)
    status = run_reproducer(output)
    outcome = artifact.load(output)
    outcome["opt_exit_status"] = status
    # opt runs the passes; a miscompile or nondeterminism needs the result checked.
    outcome["opt_reproduces"] = None if behaviour else reproduces_under_opt(final, status)
    (output / "outcome.json").write_text(json.dumps(
        {k: v for k, v in outcome.items() if k != "input_path"}, indent=2) + "\n")
    log(f"opt: exit status {status} ({_opt_verdict(outcome['opt_reproduces'])})")
    return outcome


def _opt_verdict(reproduces: bool | None) -> str:
    return {True: "opt fails the same way", False: "opt does NOT fail the same way",
            None: "opt runs the passes; the failure shows when the result is checked"}[reproduces]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("artifact", nargs="?", help="an artifact directory fuzz wrote (its benchmark, passes, bucket)")
    parser.add_argument("--benchmark", help="the benchmark URI (instead of an artifact)")
    parser.add_argument("--passes", help="the pass sequence: CompilerGym's flags (\"-sroa -gvn\"; one flag as --passes=-gvn) or "
                             "an opt command line with -passes='...'")
    parser.add_argument("--kind", help="the failure kind to keep (crash, verifier, fatal_error, timeout, ...; "
                        "miscompile and nondeterminism are checked after the passes run)")
    parser.add_argument("--signature", help="text the failure's signature must contain")
    parser.add_argument("-o", "--output", help="where to write the reduced artifact (default: ARTIFACT/reduced)")
    parser.add_argument("--no-ir", dest="ir", action="store_false", help="reduce the pass sequence only")
    parser.add_argument("--ir-timeout", type=float, default=600.0, help="seconds llvm-reduce may take (default 600)")
    parser.add_argument("--step-timeout", type=float, default=60.0, help="seconds per episode step (default 60)")


def run(arguments: argparse.Namespace) -> int:
    import forkgym

    input_bytes = None
    if arguments.artifact:
        data = artifact.load(arguments.artifact)
        benchmark_text = f"file://{os.path.abspath(data['input_path'])}"
        passes = " ".join(data["actions"])
        kind = arguments.kind or data["kind"]
        signature = arguments.signature
        input_bytes = Path(data["input_path"]).read_bytes()
        label = data["benchmark"]
        output = Path(arguments.output or Path(arguments.artifact) / "reduced")
    else:
        if not arguments.benchmark or not arguments.passes:
            raise ValueError("give an artifact directory, or --benchmark URI and --passes \"-a -b ...\"")
        benchmark_text, passes = arguments.benchmark, arguments.passes
        kind, signature = arguments.kind, arguments.signature
        output = Path(arguments.output or "reduced")
        label = None
    with tempfile.TemporaryDirectory(prefix="forkgym-reduce-input-") as scratch:
        if input_bytes is not None:
            # The artifact's input, where the server's sandbox user can read it.
            Path(scratch).chmod(0o755)
            copy = Path(scratch) / ("input.ll" if benchmark_text.endswith(".ll") else "input.bc")
            copy.write_bytes(input_bytes)
            copy.chmod(0o644)
            benchmark_text = f"file://{copy}"
        if kind in BEHAVIOUR_KINDS and label is not None:
            # Its check builds and runs the program or replays the episode
            # elsewhere: the benchmark as named (with its run configuration).
            benchmark_text = label
        with contextlib.ExitStack() as stack:
            check = None
            if kind == "miscompile":
                check = semantics_check
            elif kind == "nondeterminism":
                from forkgym.cli.determinism import ProcessSet

                check = determinism_check(stack.enter_context(ProcessSet(2, 0)))
            env = stack.enter_context(forkgym.make("llvm-v0", step_timeout=arguments.step_timeout))
            actions = env.action_space.from_string(passes)
            outcome = reduce(env, benchmark=benchmark_text, actions=actions, output=output, kind=kind,
                             signature=signature, reduce_ir_too=arguments.ir, ir_timeout=arguments.ir_timeout,
                             input_bytes=input_bytes, label=label, log=lambda text: print(text, file=sys.stderr),
                             check=check)
    print(f"{outcome['bucket']}\n  passes: {' '.join(outcome['actions'])}\n  reproducer: {output}/reproduce.sh "
          f"({_opt_verdict(outcome['opt_reproduces'])})")
    return 1 if outcome["opt_reproduces"] is False else 0
