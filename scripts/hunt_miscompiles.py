#!/usr/bin/env python3
"""Hunts LLVM miscompiles with forkgym's actions, outside forkgym.

For GCC's C torture ``execute/`` programs (the installed gcc-c-torture-v0)
and csmith programs, built as the server builds them, it applies random
sequences of forkgym's actions (passes/llvm/actions.def, as ``opt -passes=``),
builds each result with -O0 code generation (as the runner does), runs it and
compares exit status and stdout with the unoptimised program's. A difference
counts only when the program is free of undefined behaviour as far as a
``-fsanitize=undefined,address`` build of its source can tell and two
unoptimised runs agree; the sequence is then reduced to the passes it needs
(each pass dropped in turn while the symptom stays). Findings are appended
to OUT/findings.jsonl, one JSON object a line (program, passes, symptom).

It runs one program at a time at the lowest priority; it needs clang-19,
opt-19, llc-19 and csmith (for csmith programs) on PATH.

    scripts/hunt_miscompiles --budget 2000 --out hunt-out
    scripts/hunt_miscompiles --reduce torture:execute/961017-2 --passes='-sink -reg2mem -attributor'

``--bias`` (default on) makes most sequences short ones around -attributor,
a known source of miscompiles.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TORTURE = Path(os.environ.get("FORKGYM_TORTURE", "/var/lib/forkgym/datasets/gcc-c-torture-v0"))
# The server's commands (passes/llvm/source_compiler.cc, benchmark_loader.cc).
DATASET_COMPILE = ["-c", "-emit-llvm", "-O1", "-Xclang", "-disable-llvm-passes", "-Xclang", "-disable-llvm-optzns",
                   "-fno-crash-diagnostics"]
SOURCE_COMPILE = ["-O0", "-Xclang", "-disable-O0-optnone", "-emit-llvm", "-c", "-w", "-fno-crash-diagnostics"]
CSMITH_FLAGS = ["--max-funcs", "5", "--max-block-depth", "4", "--max-expr-complexity", "6"]
CSMITH_INCLUDE = "/usr/include/csmith"
# Passes that act on what the Attributor deduces (attributes, folded values).
EXPLOITERS = ["-simplifycfg", "-instcombine", "-gvn", "-newgvn", "-early-cse", "-early-cse-memssa", "-licm", "-dse",
              "-sccp", "-ipsccp", "-functionattrs", "-rpo-functionattrs", "-globalopt", "-inline", "-dce", "-adce",
              "-bdce", "-memcpyopt", "-argpromotion", "-deadargelim", "-tailcallelim", "-mem2reg", "-sroa",
              "-jump-threading", "-correlated-propagation", "-loop-deletion", "-indvars", "-globaldce",
              "-reassociate", "-aggressive-instcombine", "-mldst-motion", "-gvn-hoist", "-sink", "-loop-rotate",
              "-simple-loop-unswitch", "-loop-unroll", "-constmerge", "-lower-expect", "-called-value-propagation",
              "-speculative-execution", "-partial-inliner"]


def actions() -> dict[str, str]:
    """flag -> pipeline text, from the action table."""
    text = (REPO / "passes/llvm/actions.def").read_text()
    rows = re.findall(r'^/\*\s*\d+\s*\*/\s*FORKGYM_ACTION\(\s*"([^"]+)",\s*"((?:[^"\\]|\\.)*)"', text, re.M)
    return {flag: pipeline.replace('\\"', '"') for flag, pipeline in rows}


ACTIONS = actions()


def run(argv: list[str], timeout: float, cwd: str | None = None) -> tuple[int | str, bytes, bytes]:
    """Runs ``argv`` in a process group of its own, killed as a whole on timeout."""
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd,
                          start_new_session=True) as process:
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            return "timeout", b"", b""
        return process.returncode, out, err


class Program:
    """One program: its source, its module as the server builds it, its behaviour."""

    def __init__(self, kind: str, ident: str, work: Path) -> None:
        self.kind, self.ident, self.work = kind, ident, work
        self.source = work / "program.c"
        self.bitcode = work / "program.bc"
        self.flags: list[str] = []

    def prepare(self) -> bool:
        if self.kind == "torture":
            self.source.write_bytes((TORTURE / "contents/gcc.c-torture" / f"{self.ident}.c").read_bytes())
            ini = (TORTURE / "dataset.ini").read_text()
            self.flags = re.search(r"^flags\s*=\s*(.*)$", ini, re.M).group(1).split()
            compile_args = DATASET_COMPILE + self.flags
        else:
            # In the work directory: csmith leaves a platform.info where it runs.
            rc, out, _ = run(["csmith", "--seed", self.ident, *CSMITH_FLAGS], 120, cwd=str(self.work))
            if rc != 0:
                return False
            self.source.write_bytes(out)
            self.flags = ["-w", "-I", CSMITH_INCLUDE]
            compile_args = SOURCE_COMPILE + ["-I", CSMITH_INCLUDE]
        rc, _, _ = run(["clang-19", *compile_args, str(self.source), "-o", str(self.bitcode)], 120)
        return rc == 0

    def build(self, bitcode: Path, exe: Path) -> bool:
        # Position-independent: clang-19 links a PIE by default on Debian.
        obj = exe.with_suffix(".o")
        if run(["llc-19", "-O0", "-relocation-model=pic", "-filetype=obj", str(bitcode), "-o", str(obj)], 120)[0] != 0:
            return False
        return run(["clang-19", str(obj), "-o", str(exe), "-lm"], 60)[0] == 0

    def behaviour(self, exe: Path, timeout: float) -> tuple[int | str, str]:
        rc, out, _ = run([str(exe)], timeout, cwd=str(self.work))
        return rc, hashlib.sha1(out).hexdigest()

    def optimise(self, flags: list[str], out: Path) -> bool:
        pipeline = ",".join(ACTIONS[f] for f in flags)
        return run(["opt-19", f"-passes={pipeline}", str(self.bitcode), "-o", str(out)], 120)[0] == 0

    def sanitizer_clean(self, expected: tuple[int | str, str]) -> bool:
        exe = self.work / "sanitized"
        rc, _, _ = run(["clang-19", "-O0", "-g", "-fsanitize=undefined,address", "-fno-sanitize-recover=all",
                        *self.flags, str(self.source), "-o", str(exe), "-lm"], 120)
        return rc == 0 and self.behaviour(exe, 60) == expected


def symptom(expected: tuple[int | str, str], got: tuple[int | str, str]) -> str:
    rc = got[0]
    if rc == "timeout":
        return "timed_out"
    if isinstance(rc, int) and rc < 0:
        return "crashed"
    if rc != expected[0]:
        return "wrong_exit_status"
    return "wrong_output"


class Hunt:
    def __init__(self, program: Program, run_limit: float) -> None:
        self.program = program
        self.run_limit = run_limit
        self.expected: tuple[int | str, str] = ("", "")

    def start(self) -> bool:
        """Builds and runs the unoptimised program twice; False if it is unusable."""
        p = self.program
        if not p.prepare() or not p.build(p.bitcode, p.work / "original"):
            return False
        began = time.monotonic()
        self.expected = p.behaviour(p.work / "original", 10)
        elapsed = time.monotonic() - began
        self.run_limit = max(self.run_limit, 20 * elapsed + 1)
        if self.expected[0] == "timeout" or p.behaviour(p.work / "original", 10) != self.expected:
            return False
        return not (p.kind == "torture" and self.expected[0] != 0)  # self-checking: 0 is success

    def outcome(self, flags: list[str]) -> str | None:
        """The symptom of ``flags`` (None: same behaviour, or opt/build failed)."""
        p = self.program
        optimised, exe = p.work / "optimised.bc", p.work / "optimised"
        if not p.optimise(flags, optimised) or not p.build(optimised, exe):
            return None
        got = p.behaviour(exe, self.run_limit)
        return None if got == self.expected else symptom(self.expected, got)

    def reduce(self, flags: list[str], kind: str) -> list[str]:
        """Drops passes one at a time while the same symptom stays."""
        i = 0
        while i < len(flags) and len(flags) > 1:
            fewer = flags[:i] + flags[i + 1:]
            if self.outcome(fewer) == kind:
                flags = fewer
            else:
                i += 1
        return flags


def sequence(rng: random.Random, flags: list[str], bias: bool) -> list[str]:
    if bias and rng.random() < 0.6:
        return ["-attributor", rng.choice(EXPLOITERS)]
    if bias and rng.random() < 0.4:
        return [rng.choice(["-mem2reg", "-sroa", "-early-cse", "-instcombine"]), "-attributor", rng.choice(EXPLOITERS)]
    seq = [rng.choice(flags) for _ in range(rng.randint(1, 12))]
    if bias and "-attributor" not in seq:
        seq.insert(rng.randrange(len(seq) + 1), "-attributor")
    return seq


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="hunt-out", help="directory for findings.jsonl and work files")
    parser.add_argument("--budget", type=int, default=1000, help="pass sequences to try")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: the time)")
    parser.add_argument("--programs", default="torture,csmith", help="torture, csmith, or both (comma-separated)")
    parser.add_argument("--per-program", type=int, default=16, help="sequences per program")
    parser.add_argument("--no-bias", dest="bias", action="store_false", help="uniformly random sequences")
    parser.add_argument("--reduce", metavar="KIND:ID",
                        help="reduce one finding instead of hunting: torture:execute/NAME or csmith:SEED, with --passes")
    parser.add_argument("--passes", metavar="FLAGS", help="the finding's flags, e.g. --passes='-sink -attributor'")
    args = parser.parse_args()
    os.nice(19)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.reduce:
        if not args.passes:
            parser.error("--reduce needs --passes='<flags>'")
        passes = args.passes.split()
        unknown = [f for f in passes if f not in ACTIONS]
        if unknown:
            parser.error(f"not actions: {' '.join(unknown)}")
        kind, _, ident = args.reduce.partition(":")
        with tempfile.TemporaryDirectory(dir=out) as work:
            hunt = Hunt(Program(kind, ident, Path(work)), 3)
            if not hunt.start():
                print("the unoptimised program is unusable (does not build, fails, or varies)", file=sys.stderr)
                return 1
            found = hunt.outcome(passes)
            print(json.dumps({"symptom": found, "passes": hunt.reduce(passes, found) if found else None}))
        return 0
    seed = args.seed if args.seed is not None else int(time.time())
    rng = random.Random(seed)
    kinds = args.programs.split(",")
    torture = sorted(line.strip() for line in (TORTURE / "manifest.txt").read_text().splitlines()
                     if line.startswith("execute/")) if "torture" in kinds else []
    flags = sorted(ACTIONS)
    tried = 0
    print(f"seed {seed}", file=sys.stderr)
    while tried < args.budget:
        kind = rng.choice(kinds)
        ident = rng.choice(torture) if kind == "torture" else str(rng.randrange(2**32 - 1))
        with tempfile.TemporaryDirectory(dir=out) as work:
            hunt = Hunt(Program(kind, ident, Path(work)), 3)
            if not hunt.start():
                continue
            for _ in range(args.per_program):
                tried += 1
                seq = sequence(rng, flags, args.bias)
                found = hunt.outcome(seq)
                if found is None:
                    continue
                if not hunt.program.sanitizer_clean(hunt.expected):
                    break  # undefined behaviour the sanitizers see: not a miscompile
                record = {"program": f"{kind}:{ident}", "found_with": seq, "passes": hunt.reduce(seq, found),
                          "symptom": found, "expected": hunt.expected[0]}
                print(json.dumps(record), flush=True)
                with open(out / "findings.jsonl", "a") as f:
                    print(json.dumps(record), file=f)
                break  # one finding per program
        print(f"tried {tried}", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
