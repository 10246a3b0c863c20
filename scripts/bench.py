"""forkgym's performance harness: one run, this machine, ratios within it.

Measures (see the README's performance section for what the numbers mean):
  step       one action (-dce cheap, -instcombine medium, -gvn expensive) on a
             small, medium and large module: in-process floor (no IPC), the
             C++ client, the Python env; p50 and p99
  opt        the prior-work approach: one `opt` process per step (parse, run,
             write), as a ratio to a forkgym step
  reset/fork per module size, beside the in-process parse and CloneModule
             they avoid; Python env.fork() (the C++ fork plus the Python env)
  fork       Python env.fork() beside the C++ client's fork() per module
             size, alternated, with issue 13's targets (--only fork)
  start-up   zygote spawn to first completed step, nothing preloaded; on the
             large module as bitcode, the first reset and first step of an
             env that needs no baseline (llvm-v0) and of llvm-ic-v0 (its
             reward needs the -Oz instruction count), each in a new process,
             with the baseline disk cache cold and warm, beside the eager
             load (every baseline computed before the first reset returns:
             what the server did before, measured as the in-process cost)
  observe    each observation on the medium module
  representations
             each program-representation observation (InstCountDict,
             InstCountNorm, InstCountNormDict, AutophaseDict, LexedIr,
             LexedIrTuple, CpuInfo, BitcodeFile, Inst2vecPreprocessedText,
             Inst2vecEmbeddingIndices, Inst2vec, Programl, ProgramlJson,
             and Programl's bytes alone: worker and wire without the
             networkx graph) on the small, medium and
             large module through the Python env (computed in the worker,
             sent, presented in Python), p50/p99; the inst2vec statements'
             !UNK share and the data's one-time load; and
             forkgym.compute_observation() (a worker per call) on each
  codegen    ObjectTextSizeBytes (client, in process) per module size beside
             its reference, a `clang-19 -c -x ir` subprocess on the same
             bitcode (CompilerGym's definition), alternated; and whether the
             numbers are equal
  throughput random-episode steps/s with 1, 2, 4, 8, 16 envs: processes
             (one env each, up to 8), the synchronous vector env, and the
             asynchronous env pool (recv() of all sub-envs, and of half),
             with scaling efficiency on this machine's cores; and the env
             pool pinned to 1 core beside 2 cores (alternated, medians)
  memory     per-worker USS/PSS with 1, 8, 64 live episodes on one
             benchmark, and the zygote's RSS
  gcc        gcc-v0's step (the worker's own cost: gcc run in its private
             directory, obj.o read back; and through the server and the
             client, in the worker's sandbox) beside a plain loop of `gcc -c`
             subprocesses on the same preprocessed source and options
  datasets   listing each catalogue dataset from a manifest of its documented
             size (fetched and indexed once, then reopened, then iterated),
             and random_benchmark() latency on anghabench's 1,041,333 entries;
             the first reset on an installed benchmark (a new server) beside a
             reset the zygote's cache serves, for a prebuilt one and for a
             source one compiled by the loader or read from the module cached
             beside it
  search     `forkgym search --strategy greedy` on a ~10k-instruction csmith
             program (generator://csmith-v0/22, 9,110 instructions) with
             --jobs 2 beside --jobs 1: the same result, and the speed-up (the
             load average is recorded with it: the machine is shared); beside
             it what the machine allows this work: two --jobs 1 searches run at
             once as separate processes (each with its own server), whose
             throughput over one alone bounds any --jobs 2
  statecache the node-wide state cache: the same greedy search run twice on a
             5k-instruction csmith program (generator://csmith-v0/2) with a
             fresh cache (target: the second >= 5x faster), beside a run
             without it; random-policy episodes on one benchmark (an RL loop)
             with the cache on and off: hit rate and speed-up; and the cost
             it adds to a step that misses (on vs off, alternated). Every
             other section runs without the cache (FORKGYM_STATE_CACHE=0), so
             repeated steps are measured, not looked up.
  sb3        stable-baselines3's vector envs on llvm-autophase-ic-v0 (small
             module, episodes of 50 steps) with 1, 2, 4 sub-envs: DummyVecEnv
             (sub-envs stepped in turn), SubprocVecEnv (a process and a zygote
             per sub-env) and forkgym.sb3's adapter on the native vector env
             (one native call): random-action env steps/s, and PPO's training
             env steps/s with 4 sub-envs (--only sb3)
  runner     Runtime on a csmith program: mean and spread of 30 runs (the
             runner's own wall-clock measure, in the worker's sandbox), and
             the runner's overhead beside a bare fork+exec of the same binary
             (linked outside with clang-19 from the episode's bitcode)

Writes bench-out/bench.json and bench-out/bench.md and prints the tables.
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench-out"
RUNTIME_BENCH = ROOT / "build/tests/bench/runtime_bench"
GCC_BENCH = ROOT / "build/tests/bench/gcc_bench"
OPT = "/usr/lib/llvm-19/bin/opt"
ACTIONS = ["-dce", "-instcombine", "-gvn"]
# Random pass sequences occasionally hit a pathological compile time (e.g.
# -attributor after some sequences runs for tens of seconds on crc32); the
# throughput runs cut such steps off, as a researcher's time limit would.
STEP_TIMEOUT_S = 1.0
# Common passes with no pathological compile times: random episodes over
# them isolate scaling from the cut-off steps, which burn more CPU before
# their wall-clock deadline the more cores there are.
STEADY_PASSES = ("-instcombine", "-gvn", "-simplifycfg", "-sroa", "-early-cse", "-reassociate")


def generate_large_c(path: Path, functions: int = 420) -> None:
    """A deterministic C program of >=50k instructions at -O0: many small
    kernels (loops, branches, arrays, calls) like real numeric code."""
    lines = ["#include <stdio.h>", "static int table[256];"]
    for f in range(functions):
        a, b, c = 3 + f % 7, 5 + f % 11, 1 + f % 13
        lines.append(f"""
static int kernel{f}(int *v, int n, int s) {{
  int acc = s;
  for (int i = 0; i < n; ++i) {{
    int x = v[i] * {a} + (acc >> {c % 5 + 1});
    if (x % {b} == 0) acc += x ^ table[(x + i) & 255];
    else if (x & 1) acc -= x / {c};
    else acc ^= (x << 2) + i;
    switch ((x + acc) & 3) {{
      case 0: v[i] = acc + {a}; break;
      case 1: v[i] = acc - {b}; break;
      case 2: v[i] ^= acc; break;
      default: v[i] += i * {c};
    }}
  }}
  for (int i = 1; i < n; ++i) v[i] += v[i - 1] % {b + 2};
  return acc + v[n - 1];
}}""")
    lines.append("int main(void) {\n  int v[64];\n  int acc = 0;\n  for (int i = 0; i < 256; ++i) table[i] = i * 2654435761u >> 7;")
    lines.append("  for (int i = 0; i < 64; ++i) v[i] = i * 7 + 1;")
    for f in range(functions):
        lines.append(f"  acc += kernel{f}(v, 64, acc);")
    lines.append('  printf("%d\\n", acc);\n  return 0;\n}')
    path.write_text("\n".join(lines) + "\n")


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def timed(fn, n: int, before=None) -> list[float]:
    """fn's time, n times (µs); `before`, untimed, ahead of each."""
    samples = []
    for _ in range(n):
        if before is not None:
            before()
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e6)
    return samples


def modules(quick: bool) -> dict[str, str]:
    found = {
        "small": f"file://{ROOT}/tests/data/crc32.c",
        "medium": "generator://csmith-v0/2",
    }
    if not quick:
        large = OUT / "modules" / "large.c"
        large.parent.mkdir(parents=True, exist_ok=True)
        generate_large_c(large)
        found["large"] = f"file://{large}"
    return found


STARTUP_PROBE = """
import json, sys, time
begin = time.perf_counter()
import forkgym
start = time.perf_counter()
env = forkgym.make(sys.argv[1], benchmark=sys.argv[2])
env.reset()
reset = time.perf_counter()
env.step(env.action_space.names.index("-dce"))
step = time.perf_counter()
if len(sys.argv) > 3:  # keep the server until its baselines are stored there
    from pathlib import Path
    stored, deadline = Path(sys.argv[3]), time.monotonic() + 300
    while time.monotonic() < deadline and not (stored.is_dir() and any(not f.name.startswith(".") for f in stored.iterdir())):
        time.sleep(0.05)
env.close()
print(json.dumps({"import_ms": (start - begin) * 1e3, "first_reset_ms": (reset - start) * 1e3,
                  "first_step_ms": (step - start) * 1e3}))
"""


def startup_large_bench(bitcode: Path, quick: bool) -> dict:
    """First reset / first step on a large module in a new process (a new
    private zygote each time), per env and baseline-cache state."""
    rounds = 1 if quick else 3
    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="forkgym-bench-") as scratch:
        warm = Path(scratch) / "warm"

        def probe(env_name: str, cache: Path, *wait_for: str) -> dict:
            environment = dict(os.environ, XDG_CACHE_HOME=str(cache))
            out = subprocess.run([sys.executable, "-c", STARTUP_PROBE, env_name, f"file://{bitcode}", *wait_for],
                                 env=environment, check=True, capture_output=True, text=True).stdout
            return json.loads(out)

        # Warm the disk cache: a server computes the baselines in the
        # background and stores them (the probe waits for the file).
        probe("llvm-v0", warm, str(warm / "forkgym" / "baselines"))
        samples: dict[str, list[dict]] = {}
        for i in range(rounds):
            for env_name in ("llvm-v0", "llvm-ic-v0"):
                cold = Path(scratch) / f"cold-{env_name}-{i}"
                samples.setdefault(f"{env_name} cold", []).append(probe(env_name, cold))
                samples.setdefault(f"{env_name} warm", []).append(probe(env_name, warm))
        for name, runs in samples.items():
            rows[name] = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    return rows


def eager_baselines_ms(bitcode: Path) -> float:
    """What the loader used to compute before the first reset returned: all
    four baseline points (runtime_bench's in-process measure)."""
    out = subprocess.run([str(RUNTIME_BENCH), "--eager-baselines", f"file://{bitcode}"], check=True,
                         capture_output=True, text=True).stdout
    return float(out.strip())


def memory_walk_ms() -> list[float]:
    """A pointer chase with no compiler (runtime_bench --memory-walk), ms: hot,
    then its 1st, 2nd and 3rd pass after the pause a worker waits."""
    out = subprocess.run([str(RUNTIME_BENCH), "--memory-walk"], check=True, capture_output=True, text=True).stdout
    return [float(us) / 1000 for us in out.split()]


def runtime_bench(uri: str, quick: bool, observations: bool, actions: list[str] = ACTIONS) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json") as out:
        args = [str(RUNTIME_BENCH), "--json", out.name, "--actions", ",".join(actions), uri]
        if quick:
            args.insert(1, "--quick")
        if observations:
            args.insert(1, "--observations")
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL)
        return json.loads(Path(out.name).read_text())


def gcc_bench(source: Path, quick: bool) -> dict:
    args = [str(GCC_BENCH)] + (["--quick"] if quick else []) + [str(source)]
    return json.loads(subprocess.run(args, check=True, capture_output=True, text=True).stdout)


def client_gcc_steps(source: Path, quick: bool) -> dict:
    """gcc-v0 steps through the server and the client (Python's extension): the
    worker's step in its external-compiler sandbox plus the channel. Each lap
    is a fresh episode cycling -O1, -O2, -Os, -O3, so every step compiles a
    new state, as in gcc_bench's rows (resets are not timed)."""
    from forkgym import _forkgym

    connection = _forkgym.Connection.spawn()
    description = connection.describe("gcc")
    flags = [a.flag for a in description.actions]
    cycle = [flags.index(level) for level in ("-O1", "-O2", "-Os", "-O3")]
    env = _forkgym.Env(connection, backend="gcc")
    samples: list[float] = []
    while len(samples) < (8 if quick else 60):
        env.reset(f"file://{source}")
        for action in cycle:
            start = time.perf_counter()
            result = env.step([action], ["obj_size"])
            samples.append((time.perf_counter() - start) * 1e6)
            if not result.ok:
                raise RuntimeError(f"gcc-v0 step failed: {result.message}")
    env.close()
    return {"p50_us": percentile(samples, 0.5), "p99_us": percentile(samples, 0.99), "steps": len(samples)}


def python_steps(uri: str, quick: bool) -> dict[str, dict]:
    import forkgym

    results = {}
    with forkgym.make("llvm-v0", benchmark=uri) as env:
        env.reset()
        names = env.action_space.names
        for flag in ACTIONS:
            action = names.index(flag)
            for _ in range(3):
                env.step(action)
            probe = statistics.median(timed(lambda: env.step(action), 3))
            n = max(5, min(200 if quick else 2000, int((0.3e6 if quick else 3e6) / max(probe, 1))))
            samples = timed(lambda: env.step(action), n)
            results[flag] = {"p50_us": percentile(samples, 0.5), "p99_us": percentile(samples, 0.99), "samples": n}
        bitcode = env.observation["Bitcode"]
    samples = python_fork(uri, 50 if quick else 500)
    results["fork"] = {"p50_us": percentile(samples, 0.5), "p99_us": percentile(samples, 0.99),
                       "samples": len(samples)}
    return results, bytes(bitcode)


# Issue 13's targets for Python env.fork(), p50 (µs): the small module and a
# 50k-instruction one.
PYTHON_FORK_TARGET_US = {"small": 1000, "medium": 1500, "large": 1500}


def python_fork(uri: str, samples: int) -> list[float]:
    """Python env.fork() then close() after a step (as runtime_bench's C++
    row), µs per sample. Every 16 forks the closed copies' workers are waited
    for, outside the timing: a closed worker exits on its own time, and an
    episode may have only so many live forks (the server's --max-processes)."""
    import select

    import forkgym

    with forkgym.make("llvm-autophase-ic-v0", benchmark=uri) as env:
        env.reset()
        env.step(env.action_space.index("-mem2reg"))
        out: list[float] = []
        while len(out) < samples + 5:
            pids = []
            for _ in range(16):
                start = time.perf_counter()
                copy = env.fork()
                pids.append(copy.worker_pid)
                copy.close()
                out.append((time.perf_counter() - start) * 1e6)
            for pid in pids:
                try:
                    pidfd = os.pidfd_open(pid)
                except OSError:
                    continue  # already gone
                select.select([pidfd], [], [], 10)
                os.close(pidfd)
        return out[5: samples + 5]


def fork_bench(quick: bool, repetitions: int = 3) -> dict:
    """Python env.fork() beside the C++ client's fork() (runtime_bench's row) on
    each module, alternated `repetitions` times; medians of the p50s."""
    load_before = os.getloadavg()
    rows = {}
    for size, uri in modules(quick).items():
        if quick and size != "small":
            continue  # --quick: one module keeps the harness working
        python, cpp = [], []
        for _ in range(1 if quick else repetitions):
            samples = python_fork(uri, 50 if quick else 300)
            python.append((percentile(samples, 0.5), percentile(samples, 0.99)))
            native = {r["path"]: r for r in runtime_bench(uri, True, False, actions=["-dce"])["rows"]}["fork"]
            cpp.append((native["p50_us"], native["p99_us"]))
        rows[size] = {"python_p50_us": statistics.median(p for p, _ in python),
                      "python_p99_us": statistics.median(p for _, p in python),
                      "cpp_p50_us": statistics.median(p for p, _ in cpp),
                      "cpp_p99_us": statistics.median(p for _, p in cpp),
                      "target_p50_us": PYTHON_FORK_TARGET_US[size]}
    return {"rows": rows, "load_before": load_before, "load_after": os.getloadavg()}


REPRESENTATIONS = ["InstCountDict", "InstCountNorm", "InstCountNormDict", "AutophaseDict", "LexedIr",
                   "LexedIrTuple", "CpuInfo", "BitcodeFile", "Inst2vecPreprocessedText", "Inst2vecEmbeddingIndices",
                   "Inst2vec", "Programl", "ProgramlJson"]
# Looked up in the inst2vec data (fetched on first use): left out, and said, when it cannot be had.
INST2VEC_LOOKUPS = ("Inst2vecEmbeddingIndices", "Inst2vec")
# Programl's bytes as the worker sends them, not presented: what building the
# graph in C++ and the round trip cost, apart from networkx's graph.
PROGRAML_WIRE = "Programl (bytes, no networkx)"
# The target: Programl within 25 ms on a ~300-instruction module
# (csmith-v0/17: 268 instructions, a generated program, so the same anywhere).
PROGRAML_TARGET_URI, PROGRAML_TARGET_MS = "generator://csmith-v0/17", 25.0


def representations_bench(quick: bool) -> dict:
    """Each representation's latency per module size, as a user sees it:
    ``env.observation[name]`` (worker computes, shared memory, Python presents:
    parses JSON, builds the dict, writes the file), ms p50/p99; and
    ``compute_observation("Autophase", path)`` on the module's bitcode."""
    import forkgym
    from forkgym.datasets import inst2vec

    report = {}
    names = list(REPRESENTATIONS)
    import networkx  # noqa: F401  (Programl's first use imports it: not a lap's cost)
    try:  # the data's one-time cost (installed before: read, checked, indexed), apart from the lookups
        began = time.perf_counter()
        vocabulary = inst2vec.vocabulary()
        report["inst2vec_load_ms"] = (time.perf_counter() - began) * 1000
    except forkgym.DatasetError as e:
        print(f"bench: no inst2vec data, so no {' and '.join(INST2VEC_LOOKUPS)}: {e}", file=sys.stderr)
        vocabulary = None
        names = [n for n in names if n not in INST2VEC_LOOKUPS]
    for size, uri in modules(quick).items():
        laps = 3 if quick else (5 if size == "large" else 20)
        with forkgym.make("llvm-v0", benchmark=uri) as env, tempfile.TemporaryDirectory() as files:
            env.observation.file_directory = files
            env.reset()
            row = {"uri": uri, "instructions": int(env.observation["IrInstructionCount"]), "ms": {}}
            # CompilerGym's first spaces too (Ir, InstCount, Autophase, the
            # counts and sizes with their baselines...): every space that needs
            # no run configuration, those above last.
            needs_run = {r.name for r in env.description.observations if r.needs_run_config}
            basic = [n for n, spec in env.observation.spaces.items()
                     if n not in REPRESENTATIONS and spec.native not in needs_run]
            report["names"] = basic + names
            for name in basic + names:
                # Each on a fresh episode (a reset, not timed): a worker keeps
                # what it computed for its state, and a second ask is a copy.
                samples = [s / 1000 for s in timed(lambda: env.observation[name], laps, env.reset)]
                row["ms"][name] = {"p50": statistics.median(samples), "p99": percentile(samples, 0.99)}
            samples = [s / 1000 for s in timed(lambda: env._request([], ["Programl"], []), laps)]
            row["ms"][PROGRAML_WIRE] = {"p50": statistics.median(samples), "p99": percentile(samples, 0.99)}
            row["lexed_tokens"] = len(env.observation["LexedIrTuple"])
            statements = env.observation["Inst2vecPreprocessedText"]
            row["inst2vec_statements"] = len(statements)
            if vocabulary is not None:
                unknown = sum(i == vocabulary.unknown for i in vocabulary.encode(statements))
                row["inst2vec_unknown_share"] = unknown / max(len(statements), 1)
            graph = env.observation["Programl"]
            row["programl_nodes"], row["programl_edges"] = graph.number_of_nodes(), graph.number_of_edges()
            # A live 130k-node graph is ~700k objects that every full collection
            # of Python's garbage collector walks, in whatever is timed next.
            del graph
            bitcode = Path(files) / "module.bc"
            env.write_bitcode(bitcode)
            forkgym.compute_observation("Autophase", bitcode)  # the module's first load is not timed
            samples = [s / 1000 for s in timed(lambda: forkgym.compute_observation("Autophase", bitcode), laps)]
            row["compute_observation_ms"] = {"p50": statistics.median(samples), "p99": percentile(samples, 0.99)}
        report[size] = row
    gc.collect()  # the larger modules' garbage, not this module's laps
    with forkgym.make("llvm-v0", benchmark=PROGRAML_TARGET_URI) as env:
        env.reset()
        env.observation["Programl"]  # networkx imported, outside the laps
        samples = [s / 1000 for s in timed(lambda: env.observation["Programl"], 5 if quick else 50)]
        report["programl_target"] = {"uri": PROGRAML_TARGET_URI,
                                     "instructions": int(env.observation["IrInstructionCount"]),
                                     "p50": statistics.median(samples), "p99": percentile(samples, 0.99),
                                     "target_ms": PROGRAML_TARGET_MS, "load": os.getloadavg()}
    return report


def markdown_representations(report: dict) -> list[str]:
    rows = {k: v for k, v in report["representations"].items() if isinstance(v, dict) and "ms" in v}
    sizes = list(rows)
    out = ["", "### Every observation space (Python env, each on a fresh episode, ms p50 / p99; ObjectTextSize* "
           "answered at reset from the benchmark's baselines)", "",
           "| observation | " + " | ".join(f"{s} ({rows[s]['instructions']:,} instr.)" for s in sizes) + " |",
           "|---|" + "---:|" * len(sizes)]
    for name in report["representations"].get("names", REPRESENTATIONS) + [PROGRAML_WIRE]:
        if not all(name in rows[s]["ms"] for s in sizes):
            continue  # no inst2vec data
        out.append(f"| {name} | " + " | ".join(
            f"{rows[s]['ms'][name]['p50']:.2f} / {rows[s]['ms'][name]['p99']:.2f}" for s in sizes) + " |")
    out.append("| compute_observation(Autophase) | " + " | ".join(
        f"{rows[s]['compute_observation_ms']['p50']:.2f} / {rows[s]['compute_observation_ms']['p99']:.2f}"
        for s in sizes) + " |")
    out.append("| (LexedIr tokens) | " + " | ".join(f"{rows[s]['lexed_tokens']:,}" for s in sizes) + " |")
    out.append("| (Programl nodes / edges) | " + " | ".join(
        f"{rows[s]['programl_nodes']:,} / {rows[s]['programl_edges']:,}" for s in sizes) + " |")
    out.append("| (inst2vec statements) | " + " | ".join(f"{rows[s]['inst2vec_statements']:,}" for s in sizes) + " |")
    if all("inst2vec_unknown_share" in rows[s] for s in sizes):
        out.append("| (of which !UNK) | " + " | ".join(f"{rows[s]['inst2vec_unknown_share']:.1%}" for s in sizes)
                   + " |")
    target = report["representations"].get("programl_target")
    if target:
        out.append(f"\n(Programl on {target['uri']}, {target['instructions']} instructions: "
                   f"{target['p50']:.2f} ms p50, {target['p99']:.2f} ms p99; target ≤ {target['target_ms']:.0f} ms; "
                   f"load average {'/'.join(f'{x:.1f}' for x in target['load'])}.)")
    if "inst2vec_load_ms" in report["representations"]:
        out.append(f"\n(The inst2vec data read, checked and indexed once per process: "
                   f"{report['representations']['inst2vec_load_ms']:.0f} ms.)")
    return out


def markdown_fork(report: dict) -> list[str]:
    fork = report["fork"]
    load = lambda l: "/".join(f"{x:.1f}" for x in l)  # noqa: E731
    out = ["", "### Python env.fork() beside the C++ client's fork() (µs, p50 / p99)", "",
           "| module | Python fork() + close | C++ fork() + close | Python − C++ (p50) | target (p50) |", "|---|---:|---:|---:|---:|"]
    for size, row in fork["rows"].items():
        out.append(f"| {size} | {row['python_p50_us']:.0f} / {row['python_p99_us']:.0f} | {row['cpp_p50_us']:.0f} / "
                   f"{row['cpp_p99_us']:.0f} | {row['python_p50_us'] - row['cpp_p50_us']:.0f} | "
                   f"≤ {row['target_p50_us']} |")
    out += ["", f"Load average before / after: {load(fork['load_before'])} / {load(fork['load_after'])}."]
    return out


def opt_per_step(bitcode: bytes, pipeline: str, quick: bool) -> float:
    """The prior-work approach: a whole `opt` process per step."""
    with tempfile.TemporaryDirectory(prefix="forkgym-bench-") as tmp:
        source = Path(tmp) / "in.bc"
        source.write_bytes(bitcode)
        command = [OPT, f"-passes={pipeline}", str(source), "-o", str(Path(tmp) / "out.bc")]
        samples = timed(lambda: subprocess.run(command, check=True), 3 if quick else 10)
    return percentile(samples, 0.5)


def usable_actions(space, passes: tuple[str, ...] | None = None) -> list[int]:
    """Every action that does something, or only `passes`."""
    if passes is not None:
        return [space.index(flag) for flag in passes]
    return [i for i in range(space.n) if i not in space.unavailable]


def random_episode_worker(args) -> int:
    """One process: random episodes of 50 steps for `seconds`; returns steps."""
    env_id, uri, seconds, seed, *passes = args
    import forkgym

    rng = random.Random(seed)
    steps = 0
    with forkgym.make(env_id, benchmark=uri, step_timeout=STEP_TIMEOUT_S) as env:
        usable = usable_actions(env.action_space, passes[0] if passes else None)
        env.reset()
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            _, _, terminated, truncated, _ = env.step(rng.choice(usable))
            steps += 1
            if steps % 50 == 0 or terminated or truncated:
                env.reset()
    return steps


def batched_steps_per_s(uri: str, n: int, batch: int | None, seconds: float,
                        passes: tuple[str, ...] | None = None) -> float:
    """Random episodes of 50 steps through the synchronous vector env (batch
    None) or an env pool recv()ing `batch` results at a time; steps/s. (An
    endless episode of random passes can unroll a module into something huge.)"""
    import forkgym
    import numpy as np

    if batch is None:
        envs = forkgym.make_vec("llvm-ic-v0", num_envs=n, benchmark=uri, max_episode_steps=50,
                                step_timeout=STEP_TIMEOUT_S)
    else:
        envs = forkgym.make_pool("llvm-ic-v0", num_envs=n, batch_size=batch, benchmark=uri, max_episode_steps=50,
                                 step_timeout=STEP_TIMEOUT_S)
    try:
        space = envs.single_action_space
        usable = np.array(usable_actions(space, passes))
        rng = np.random.default_rng(0)
        if batch is None:
            envs.reset(seed=0)
        else:
            envs.async_reset(seed=0)
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            if batch is None:
                envs.step(rng.choice(usable, size=n))
                count += n
            else:
                _, rewards, _, _, info = envs.recv()
                envs.send(rng.choice(usable, size=len(rewards)), info["env_id"])
                count += len(rewards)
        return count / (time.perf_counter() - start)
    finally:
        envs.close()


SB3_KINDS = ("DummyVecEnv", "SubprocVecEnv", "forkgym.sb3")


def sb3_vec_env(kind: str, uri: str, n: int) -> object:
    """n sub-envs of llvm-autophase-ic-v0 on `uri` as stable-baselines3 vector env `kind`."""
    import forkgym
    from forkgym.sb3 import make_vec_env
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv

    if kind == "forkgym.sb3":
        return make_vec_env("llvm-autophase-ic-v0", n_envs=n, seed=0, max_episode_steps=50, benchmark=uri,
                            step_timeout=STEP_TIMEOUT_S)
    make = [lambda: forkgym.make("llvm-autophase-ic-v0", max_episode_steps=50, benchmark=uri,
                                 step_timeout=STEP_TIMEOUT_S)] * n
    venv = DummyVecEnv(make) if kind == "DummyVecEnv" else SubprocVecEnv(make)
    venv.seed(0)
    return venv


def sb3_bench(quick: bool) -> dict:
    import numpy as np
    from stable_baselines3 import PPO

    uri = modules(True)["small"]
    seconds = 1.0 if quick else 5.0
    rows: dict = {}
    for n in [1, 2] if quick else [1, 2, 4]:
        rows[n] = {}
        for kind in SB3_KINDS:
            venv = sb3_vec_env(kind, uri, n)
            try:
                usable = np.array(usable_actions(venv.action_space))
                rng = np.random.default_rng(0)
                venv.reset()
                count, start = 0, time.perf_counter()
                while time.perf_counter() - start < seconds:
                    venv.step(rng.choice(usable, size=n))
                    count += n
                rows[n][kind] = count / (time.perf_counter() - start)
            finally:
                venv.close()
    ppo: dict = {}
    n, steps = (2, 256) if quick else (4, 2048)
    for kind in SB3_KINDS:
        venv = sb3_vec_env(kind, uri, n)
        try:
            model = PPO("MlpPolicy", venv, n_steps=128, batch_size=128, n_epochs=1, seed=0, device="cpu")
            start = time.perf_counter()
            model.learn(total_timesteps=steps)
            ppo[kind] = model.num_timesteps / (time.perf_counter() - start)
        finally:
            venv.close()
    return {"uri": uri, "seconds": seconds, "rows": rows, "ppo_num_envs": n, "ppo_steps_per_s": ppo,
            "load": os.getloadavg()}


def markdown_sb3(report: dict) -> list[str]:
    sb3 = report.get("sb3")
    if not sb3:
        return []
    out = ["", "### stable-baselines3 vector envs (llvm-autophase-ic-v0, env steps/s)", "",
           "| sub-envs | " + " | ".join(SB3_KINDS) + " |", "|---|" + "---|" * len(SB3_KINDS)]
    for n, row in sb3["rows"].items():
        out.append(f"| {n} | " + " | ".join(f"{row[k]:.0f}" for k in SB3_KINDS) + " |")
    out.append(f"| PPO training, {sb3['ppo_num_envs']} sub-envs | "
               + " | ".join(f"{sb3['ppo_steps_per_s'][k]:.0f}" for k in SB3_KINDS) + " |")
    return out


def pinned_pool_worker(args) -> float:
    """In a fresh process pinned to `cores` (its zygote and workers inherit the
    affinity): batched_steps_per_s of an env pool."""
    uri, n, batch, seconds, cores, passes = args
    os.sched_setaffinity(0, cores)
    return batched_steps_per_s(uri, n, batch, seconds, passes)


def pool_batch(n: int) -> int:
    """The pool's batch size in the sweep: half the sub-envs, so a slow step holds up no batch."""
    return max(1, n // 2)


def throughput(uri: str, counts: list[int], seconds: float, max_processes: int = 8) -> dict:
    rows = {}
    for n in counts:
        row = {}
        if n <= max_processes:  # each process has a zygote of its own
            with multiprocessing.get_context("spawn").Pool(n) as pool:
                steps = sum(pool.map(random_episode_worker, [("llvm-ic-v0", uri, seconds, i) for i in range(n)]))
            row["processes_steps_per_s"] = steps / seconds
        row["vector_steps_per_s"] = batched_steps_per_s(uri, n, None, seconds)
        row["pool_full_batch_steps_per_s"] = batched_steps_per_s(uri, n, n, seconds)
        row["pool_batch"] = pool_batch(n)
        row["pool_steps_per_s"] = batched_steps_per_s(uri, n, pool_batch(n), seconds)
        rows[n] = row
    base = rows[counts[0]]
    cores = os.cpu_count() or 1
    for n, row in rows.items():
        ideal = min(n, cores) / counts[0]
        for kind in ("processes", "vector", "pool_full_batch", "pool"):
            if f"{kind}_steps_per_s" in row:
                row[f"{kind}_scaling"] = row[f"{kind}_steps_per_s"] / base[f"{kind}_steps_per_s"] / ideal
    return rows


def pinned_processes(uri: str, n: int, seconds: float, cores: set[int], passes: tuple[str, ...] | None) -> float:
    """n processes of one env each (random_episode_worker), all pinned to `cores`; steps/s."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(n, initializer=os.sched_setaffinity, initargs=(0, cores)) as pool:
        steps = sum(pool.map(random_episode_worker, [("llvm-ic-v0", uri, seconds, i, passes) for i in range(n)]))
    return steps / seconds


def core_scaling(uri: str, n: int, seconds: float, repetitions: int) -> dict:
    """Steps/s on 1 core and on 2 (the whole run pinned: client, zygote,
    workers) of the env pool, with batch 1 (EnvPool's asynchronous use:
    recv() returns the first sub-env ready) and half the sub-envs, and, as
    the reference of what the machine allows, of n separate processes;
    random episodes over every action and over STEADY_PASSES; alternated,
    each repetition in fresh processes; medians."""
    available = sorted(os.sched_getaffinity(0))
    if len(available) < 2:
        return {"skipped": "fewer than 2 cores"}
    one, two = {available[0]}, set(available[:2])
    load_before = os.getloadavg()
    # --quick keeps the harness working at the least cost: one workload.
    workloads = {"every action": None} if repetitions == 1 else {"every action": None, "steady passes": STEADY_PASSES}
    batches = sorted({1, pool_batch(n)})
    kinds = [f"pool batch {b}" for b in batches] + ["processes"]
    samples: dict[str, dict[str, list[float]]] = {w: {f"{k} {c}": [] for k in kinds for c in ("1", "2")}
                                                  for w in workloads}
    context = multiprocessing.get_context("spawn")
    for _ in range(repetitions):
        for workload, passes in workloads.items():
            for key, cores in (("1", one), ("2", two)):
                for batch in batches:
                    with context.Pool(1) as pool:
                        samples[workload][f"pool batch {batch} {key}"].append(
                            pool.apply(pinned_pool_worker, ((uri, n, batch, seconds, cores, passes),)))
                samples[workload][f"processes {key}"].append(pinned_processes(uri, n, seconds, cores, passes))
    rows = {}
    for workload, values in samples.items():
        median = {key: statistics.median(v) for key, v in values.items()}
        rows[workload] = {kind: {"one_core_steps_per_s": median[f"{kind} 1"], "two_cores_steps_per_s": median[f"{kind} 2"],
                                 "ratio": median[f"{kind} 2"] / median[f"{kind} 1"]} for kind in kinds}
        rows[workload]["samples"] = values
    return {"num_envs": n, "batches": batches, "rows": rows, "ratio": rows["every action"]["pool batch 1"]["ratio"],
            "load_before": load_before, "load_after": os.getloadavg()}


def smaps(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value, *_ = line.split()
        fields[name.rstrip(":")] = int(value)
    return fields


def memory(uri: str, counts: list[int]) -> dict:
    import forkgym

    rows = {}
    for n in counts:
        server = forkgym.Server()
        envs = [forkgym.make("llvm-v0", benchmark=uri, server=server) for _ in range(n)]
        try:
            for env in envs:
                env.reset()
                env.step(env.action_space.names.index("-dce"))
            workers = [smaps(env.worker_pid) for env in envs]
            zygote = smaps(envs[0].server_pid)
            uss = [w["Private_Clean"] + w["Private_Dirty"] for w in workers]
            rows[n] = {
                "worker_uss_kb_median": statistics.median(uss),
                "worker_pss_kb_median": statistics.median(w["Pss"] for w in workers),
                "zygote_rss_kb": zygote["Rss"],
            }
        finally:
            for env in envs:
                env.close()
            server.close()
    return rows


def datasets_bench(quick: bool) -> dict:
    """Manifest listing and random draws. The real manifests are not fetched
    (no network is assumed): each listed catalogue dataset gets a synthetic
    manifest of its documented size (paths of anghabench's length), served
    from a local file:// URL through the same download-and-index path, as a
    bench-only row beside the catalogue."""
    import bz2
    import dataclasses
    import hashlib

    import numpy as np

    from forkgym.datasets import Datasets, catalogue
    from forkgym.datasets.catalogue import Remote

    saved = {k: os.environ.get(k) for k in ("FORKGYM_SITE_DATA", "FORKGYM_CACHE", "FORKGYM_DATASET_MIRROR")}
    results: dict = {"datasets": {}}
    with tempfile.TemporaryDirectory(prefix="fgbench-datasets-") as tmp:
        os.environ.update(FORKGYM_SITE_DATA=f"{tmp}/site", FORKGYM_CACHE=f"{tmp}/cache")
        os.environ.pop("FORKGYM_DATASET_MIRROR", None)
        rows = []
        for row in catalogue.entries():
            if row.manifest is None or row.deprecated or not row.listed:
                continue
            count = min(row.size, 20_000) if quick else row.size
            text = "".join(f"dir{i % 4999}/sub{i % 37}/extr_file_{i}.c_function_{i % 101}\n" for i in range(count))
            path = Path(tmp) / f"{row.bare_name}-manifest.bz2"
            path.write_bytes(bz2.compress(text.encode(), 1))
            remote = Remote((path.as_uri(),), hashlib.sha256(path.read_bytes()).hexdigest())
            rows.append(dataclasses.replace(row, name=f"benchmark://bench-{row.bare_name}", manifest=remote))
        try:
            with catalogue.extended(rows):
                for row in rows:
                    started = time.perf_counter()
                    size = Datasets()[row.name].size  # fetched (from the file), decompressed, indexed
                    first = time.perf_counter() - started
                    started = time.perf_counter()
                    dataset = Datasets()[row.name]
                    assert dataset.size == size  # reopened: mapped, counted
                    reopen = time.perf_counter() - started
                    started = time.perf_counter()
                    listed = sum(1 for _ in dataset.benchmark_uris())
                    iterate = time.perf_counter() - started
                    assert listed == size
                    results["datasets"][row.bare_name.removeprefix("bench-")] = {
                        "size": size, "first_listing_ms": first * 1e3, "reopen_size_ms": reopen * 1e3,
                        "iterate_all_ms": iterate * 1e3}
                angha = Datasets()["bench-anghabench-v1"]
                rng = np.random.default_rng(0)
                draws = timed(lambda: angha.random_benchmark(rng), 2000 if quick else 20000)
                results["random_benchmark_us"] = {"entries": angha.size, "p50_us": percentile(draws, 0.5),
                                                  "p99_us": percentile(draws, 0.99)}
                collection = Datasets([Datasets()[r.name] for r in rows])
                draws = timed(lambda: collection.random_benchmark(rng, weighted=True), 2000 if quick else 20000)
                results["weighted_random_benchmark_us"] = {"p50_us": percentile(draws, 0.5),
                                                           "p99_us": percentile(draws, 0.99)}
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    return results


def dataset_resets_bench(quick: bool) -> dict:
    """First resets on installed datasets, each on a new server (nothing in
    its cache): a prebuilt benchmark (bitcode read and parsed), a source one
    compiled by the loader (no module beside it) and one whose module the
    last compile cached beside it; beside a second reset on the same server
    (the zygote's cache). Datasets are laid out by hand in a private site-data
    directory, as the Python package installs them."""
    import forkgym

    sources = {"crc32": ROOT / "tests/data/crc32.c"}
    large = OUT / "modules" / "large.c"
    # A full run wrote it; a quick run (the tests') must not pick it up from
    # an earlier full one: its first resets take seconds each.
    if large.exists() and not quick:
        sources["large"] = large
    laps = 3 if quick else 10
    saved = os.environ.get("FORKGYM_SITE_DATA")
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="fgbench-resets-") as tmp:
        site = Path(tmp)
        prebuilt = site / "datasets/bench-prebuilt-v0"
        source = site / "datasets/bench-source-v0"
        for directory, ini in ((prebuilt, "kind = prebuilt\nroot = contents\nsuffix = .bc\n"),
                               (source, "kind = source\nroot = contents\nsuffix = .c\nlanguage = c\n"
                                        "flags = -ferror-limit=1 -w\n")):
            (directory / "contents").mkdir(parents=True)
            (directory / "dataset.ini").write_text(ini)
        for name, path in sources.items():
            subprocess.run(["clang-19", "-c", "-emit-llvm", "-O1", "-Xclang", "-disable-llvm-passes", "-Xclang",
                            "-disable-llvm-optzns", "-w", str(path), "-o", str(prebuilt / "contents" / f"{name}.bc")],
                           check=True)
            (source / "contents" / f"{name}.c").write_bytes(path.read_bytes())
        for directory in (prebuilt, source):
            (directory / ".installed").touch()
        os.environ["FORKGYM_SITE_DATA"] = str(site)

        def first_reset(uri: str, before=lambda: None) -> tuple[float, float]:
            before()
            server = forkgym.Server()
            try:
                server.connection()  # spawned and greeted: only the reset is timed
                with forkgym.make("llvm-v0", server=server) as env:
                    started = time.perf_counter()
                    env.reset(benchmark=uri)
                    first = time.perf_counter() - started
                    started = time.perf_counter()
                    env.reset(benchmark=uri)
                    return first * 1e3, (time.perf_counter() - started) * 1e3
            finally:
                server.close()

        try:
            for name in sources:
                cached_module = source / "contents" / f"{name}.c.bc"
                rows = {
                    "prebuilt": [first_reset(f"benchmark://bench-prebuilt-v0/{name}") for _ in range(laps)],
                    "source, compiled": [first_reset(f"benchmark://bench-source-v0/{name}",
                                                     lambda: cached_module.unlink(missing_ok=True))
                                         for _ in range(laps)],
                    "source, module beside it": [first_reset(f"benchmark://bench-source-v0/{name}")
                                                 for _ in range(laps)],
                }
                results[name] = {kind: {"first_reset_ms": statistics.median(r[0] for r in runs),
                                        "cached_reset_ms": statistics.median(r[1] for r in runs)}
                                 for kind, runs in rows.items()}
        finally:
            if saved is None:
                os.environ.pop("FORKGYM_SITE_DATA", None)
            else:
                os.environ["FORKGYM_SITE_DATA"] = saved
    return results


def runner_bench(quick: bool, seed: int = 1) -> dict:
    """The runner on generator://csmith-v0/<seed>: 30 measured runs (after 2
    warm-ups) as Runtime sees them, the run request's own cost per run, and a
    bare fork+exec (subprocess with captured output) of the same program."""
    import forkgym
    from forkgym import _forkgym

    reps = 10 if quick else 30
    uri = f"generator://csmith-v0/{seed}"
    server = forkgym.Server()
    try:
        env = _forkgym.Env(server.connection())
        env.reset(uri)
        started = time.perf_counter()
        result = env.run(repetitions=reps, warmups=2)
        request_s = time.perf_counter() - started
        runs = [r.wall_seconds for r in result.runs]
        assert all(r.outcome == 0 and r.exit_code == 0 for r in result.runs), result.runs[0].message
        single = []
        for _ in range(5 if quick else 10):
            started = time.perf_counter()
            env.run()
            single.append(time.perf_counter() - started)
        bitcode = bytes(env.step([], ["Bitcode"]).observations[0])
        stdout = result.runs[0].stdout
        build_s = result.build_seconds
    finally:
        server.close()
    with tempfile.TemporaryDirectory(prefix="fgbench-runner-") as tmp:
        program = Path(tmp) / "a.out"
        (Path(tmp) / "in.bc").write_bytes(bitcode)
        subprocess.run(["clang-19", "-O0", "-w", str(Path(tmp) / "in.bc"), "-o", str(program)], check=True)
        bare = []
        for _ in range(2 + reps):
            started = time.perf_counter()
            done = subprocess.run([str(program)], capture_output=True, cwd=tmp)
            bare.append(time.perf_counter() - started)
            assert done.stdout == stdout, "the program printed something else outside the runner"
        bare = bare[2:]
    mean = statistics.mean(runs)
    return {
        "uri": uri,
        "repetitions": reps,
        "runtime_mean_ms": mean * 1e3,
        "runtime_stdev_ms": statistics.stdev(runs) * 1e3,
        "runtime_min_ms": min(runs) * 1e3,
        "runtime_max_ms": max(runs) * 1e3,
        "runtime_cv": statistics.stdev(runs) / mean,
        "bare_mean_ms": statistics.mean(bare) * 1e3,
        "bare_stdev_ms": statistics.stdev(bare) * 1e3,
        "request_per_run_ms": request_s / (reps + 2) * 1e3,
        "single_run_request_ms": statistics.median(single) * 1e3,
        "build_ms": build_s * 1e3,
    }


def markdown_runner(report: dict) -> list[str]:
    if "runner" not in report:
        return []
    r = report["runner"]
    return ["", f"### Runner: Runtime of {r['uri']} over {r['repetitions']} runs (ms)", "",
            "| Runtime mean | stdev | min | max | CV | bare fork+exec mean | stdev | runner − bare | "
            "run request per run | one-run request (link + run) | link |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            f"| {r['runtime_mean_ms']:.2f} | {r['runtime_stdev_ms']:.2f} | {r['runtime_min_ms']:.2f} | "
            f"{r['runtime_max_ms']:.2f} | {r['runtime_cv']:.2f} | {r['bare_mean_ms']:.2f} | {r['bare_stdev_ms']:.2f} | "
            f"{r['runtime_mean_ms'] - r['bare_mean_ms']:.2f} | {r['request_per_run_ms']:.2f} | "
            f"{r['single_run_request_ms']:.1f} | {r['build_ms']:.1f} |"]


SEARCH_BENCHMARK = "generator://csmith-v0/22"  # 9,110 instructions


def search_bench(quick: bool) -> dict:
    """`forkgym search --strategy greedy` with --jobs 1 and 2, alternated, three
    pairs (the best of each kept, and each pair's ratio: the machine's speed
    drifts between runs a minute apart), on one benchmark: the search's own
    wall time (the JSON's, zygote start-up excluded), the step count, and
    whether every run found the same sequence. Without the state cache (the
    pairs would answer each other)."""
    uri, extra = ("generator://csmith-v0/1", ["--steps", "3"]) if quick else (SEARCH_BENCHMARK, [])
    command = [sys.executable, "-m", "forkgym", "search", "--strategy", "greedy", "--json", "--no-progress", *extra, uri]
    runs: dict[int, list[dict]] = {1: [], 2: []}
    # Two --jobs 1 searches at once, in separate processes with separate
    # servers: nothing shared but the machine (cores, memory bandwidth, the
    # kernel's memory management, which forking a worker per candidate
    # leans on). Their throughput over one search alone is the most any
    # --jobs 2 can reach on this machine for this work.
    independent: list[float] = []
    load_before = os.getloadavg()
    for _ in range(1 if quick else 3):
        for jobs in (1, 2):
            completed = subprocess.run([*command, "--jobs", str(jobs)], capture_output=True, text=True, check=True)
            runs[jobs].append(json.loads(completed.stdout)["results"][0])
        both = [subprocess.Popen([*command, "--jobs", "1"], stdout=subprocess.PIPE, text=True) for _ in range(2)]
        outputs = [p.communicate()[0] for p in both]
        if any(p.returncode != 0 for p in both):
            raise RuntimeError("a search run alongside another failed")
        independent.append(max(json.loads(out)["results"][0]["walltime"] for out in outputs))
    load_after = os.getloadavg()
    best = {jobs: min(rs, key=lambda r: r["walltime"]) for jobs, rs in runs.items()}
    same = len({(tuple(r["found"]), tuple(r["actions"])) for rs in runs.values() for r in rs}) == 1
    return {"uri": uri, "instructions": best[1]["start_cost"], "found_passes": len(best[1]["found"]),
            "kept_passes": len(best[1]["actions"]), "steps": best[1]["steps"], "stop": best[1]["stop"],
            "jobs1_s": best[1]["walltime"], "jobs2_s": best[2]["walltime"],
            "speedup": best[1]["walltime"] / best[2]["walltime"], "same_result": same,
            "pair_speedups": [one["walltime"] / two["walltime"] for one, two in zip(runs[1], runs[2])],
            # Per repetition: two searches' work in the time the slower of the
            # pair took, over one search alone (that repetition's --jobs 1).
            "independent_s": independent,
            "machine_bounds": [2 * one["walltime"] / both for one, both in zip(runs[1], independent)],
            "vs_oz": best[1]["vs_oz"], "load_before": load_before, "load_after": load_after,
            "cores": os.cpu_count(), "runs": {str(j): [r["walltime"] for r in rs] for j, rs in runs.items()}}


STATE_CACHE_SEARCH = "generator://csmith-v0/2"  # ~5.1k instructions


def _segment(tag: str) -> str:
    return f"/forkgym-bench-{tag}-{os.getpid()}-{time.monotonic_ns()}"


def _drop_segment(name: str) -> None:
    Path("/dev/shm" + name).unlink(missing_ok=True)


class _cache_env:
    """Within it, servers spawned by this process use segment `name` (None: no cache)."""

    def __init__(self, name: str | None) -> None:
        self.env = _with_cache(name)

    def __enter__(self) -> None:
        self.saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(self.env)

    def __exit__(self, *args: object) -> None:
        os.environ.clear()
        os.environ.update(self.saved)


def _with_cache(name: str | None) -> dict[str, str]:
    """The environment of a server (or a CLI that spawns one) using segment
    `name`, or no cache when None."""
    env = dict(os.environ)
    env.pop("FORKGYM_STATE_CACHE", None)
    env.pop("FORKGYM_STATE_CACHE_NAME", None)
    if name is None:
        env["FORKGYM_STATE_CACHE"] = "0"
    else:
        env["FORKGYM_STATE_CACHE"] = "1"
        env["FORKGYM_STATE_CACHE_NAME"] = name
    return env


def state_cache_search(quick: bool) -> dict:
    """Greedy search twice on one fresh segment (cold, then warm), and once
    without the cache; the search's own wall time (zygote start-up excluded)."""
    uri, extra = ("generator://csmith-v0/1", ["--steps", "3"]) if quick else (STATE_CACHE_SEARCH, [])

    def search(env: dict[str, str]) -> dict:
        completed = subprocess.run(
            [sys.executable, "-m", "forkgym", "search", "--strategy", "greedy", "--json", "--no-progress", *extra,
             uri], capture_output=True, text=True, check=True, env=env)
        return json.loads(completed.stdout)["results"][0]

    load_before = os.getloadavg()
    name = _segment("search")
    try:
        uncached = search(_with_cache(None))
        cold = search(_with_cache(name))
        warm = search(_with_cache(name))
    finally:
        _drop_segment(name)
    load_after = os.getloadavg()
    same = len({(tuple(r["found"]), tuple(r["actions"])) for r in (uncached, cold, warm)}) == 1
    return {"uri": uri, "instructions": cold["start_cost"], "steps": cold["steps"], "uncached_s": uncached["walltime"],
            "cold_s": cold["walltime"], "warm_s": warm["walltime"], "speedup": cold["walltime"] / warm["walltime"],
            "same_result": same, "load_before": load_before, "load_after": load_after, "cores": os.cpu_count()}


# A policy part-way through training: most of its mass on a few passes.
NARROW_POLICY = ["-sroa", "-mem2reg", "-instcombine", "-simplifycfg", "-gvn", "-early-cse", "-dce", "-licm",
                 "-reassociate", "-sccp"]


def _rl_loop(name: str | None, uri: str, episodes: int, steps: int, seed: int, flags: list[str] | None) -> dict:
    """Random-policy episodes on one benchmark, as an RL training loop runs
    them: reset, then `steps` steps each observing Autophase and the
    IrInstructionCountOz reward; actions drawn uniformly from `flags` (None:
    every usable action)."""
    import forkgym
    from forkgym.server import Server, ServerOptions

    args = ("--no-state-cache",) if name is None else ("--state-cache-name", name)
    server = Server(ServerOptions(extra_args=args))
    rng = random.Random(seed)
    with forkgym.make("llvm-v0", benchmark=uri, server=server, observation_space="Autophase",
                      reward_space="IrInstructionCountOz", step_timeout=STEP_TIMEOUT_S) as env:
        usable = [i for i in range(env.action_space.n) if i not in env.action_space.unavailable] \
            if flags is None else [env.action_space.index(f) for f in flags]
        env.reset()
        start = time.perf_counter()
        for _ in range(episodes):
            env.reset()
            for _ in range(steps):
                _, _, terminated, truncated, _ = env.step(rng.choice(usable))
                if terminated or truncated:
                    break
        seconds = time.perf_counter() - start
    stats = server.connection().state_cache_stats() or {}
    return {"seconds": seconds, "hits": stats.get("hits", 0), "misses": stats.get("misses", 0),
            "bytes": stats.get("used_bytes", 0), "entries": stats.get("entries", 0)}


def state_cache_rl(quick: bool) -> dict:
    uri = "benchmark://forkgym-v0/crc32" if quick else STATE_CACHE_SEARCH
    episodes, steps = (10, 5) if quick else (200, 10)
    rows = {}
    for policy, flags in (("uniform over all actions", None), ("uniform over 10 passes", NARROW_POLICY)):
        name = _segment("rl")
        try:
            with _cache_env(None):
                off = _rl_loop(None, uri, episodes, steps, 0, flags)
            with _cache_env(name):
                on = _rl_loop(name, uri, episodes, steps, 0, flags)
        finally:
            _drop_segment(name)
        lookups = on["hits"] + on["misses"]
        rows[policy] = {"off_s": off["seconds"], "on_s": on["seconds"], "speedup": off["seconds"] / on["seconds"],
                        "hit_rate": on["hits"] / lookups if lookups else 0.0, "hits": on["hits"],
                        "lookups": lookups, "bytes": on["bytes"], "entries": on["entries"]}
    return {"uri": uri, "episodes": episodes, "steps": steps, "policies": rows, "load": os.getloadavg()}


def state_cache_miss(quick: bool) -> dict:
    """The cost the cache adds to a step it cannot answer: one fixed sequence
    from reset on a fresh segment each time (every lookup misses, every
    result is submitted), beside the same sequence without the cache,
    alternated; per-step medians."""
    import forkgym
    from forkgym.server import Server, ServerOptions

    uri = "benchmark://forkgym-v0/crc32" if quick else STATE_CACHE_SEARCH
    flags = ["-sroa", "-early-cse", "-instcombine", "-simplifycfg", "-reassociate", "-dce", "-adce", "-sccp",
             "-loop-rotate", "-licm"]
    samples: dict[str, list[float]] = {"on": [], "off": []}
    for _ in range(2 if quick else 6):
        for mode in ("off", "on"):
            name = _segment("miss")
            args = ("--no-state-cache",) if mode == "off" else ("--state-cache-name", name)
            try:
                with _cache_env(None if mode == "off" else name), \
                        forkgym.make("llvm-v0", benchmark=uri, server=Server(ServerOptions(extra_args=args)),
                                  observation_space="InstCount", reward_space="IrInstructionCountOz") as env:
                    env.reset()
                    for flag in flags:
                        start = time.perf_counter()
                        env.step(env.action_space.index(flag))
                        samples[mode].append((time.perf_counter() - start) * 1e6)
            finally:
                _drop_segment(name)
    on, off = statistics.median(samples["on"]), statistics.median(samples["off"])
    return {"uri": uri, "on_us": on, "off_us": off, "added_us": on - off, "load": os.getloadavg()}


def state_cache_bench(quick: bool) -> dict:
    return {"search": state_cache_search(quick), "rl": state_cache_rl(quick), "miss": state_cache_miss(quick)}


def markdown_state_cache(report: dict) -> list[str]:
    if "state_cache" not in report:
        return []
    s, r, m = (report["state_cache"][k] for k in ("search", "rl", "miss"))
    load = lambda avg: "/".join(f"{x:.1f}" for x in avg)
    return ["", f"### State cache: greedy search run twice ({s['uri']}, {s['instructions']:,.0f} instructions)", "",
            "| without cache (s) | first, cold (s) | second, warm (s) | second vs first (target >= 5x) "
            "| same result | candidate steps | load avg before / after |",
            "|---:|---:|---:|---:|---|---:|---|",
            f"| {s['uncached_s']:.2f} | {s['cold_s']:.2f} | {s['warm_s']:.2f} | **{s['speedup']:.1f}×** | "
            f"{'yes' if s['same_result'] else 'NO'} | {s['steps']:,} | {load(s['load_before'])} / "
            f"{load(s['load_after'])} on {s['cores']} cores |",
            "", f"### State cache: random-policy RL loop ({r['uri']}, {r['episodes']} episodes x {r['steps']} steps, "
            "Autophase + IrInstructionCountOz each step)", "",
            "| policy | cache off (s) | cache on (s) | speed-up | hit rate | hits / lookups | entries | bytes |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
            *[f"| {policy} | {p['off_s']:.2f} | {p['on_s']:.2f} | {p['speedup']:.2f}× | {p['hit_rate']:.1%} | "
              f"{p['hits']:,} / {p['lookups']:,} | {p['entries']:,} | {p['bytes']:,} |"
              for policy, p in r["policies"].items()],
            f"load avg after: {load(r['load'])}",
            "", f"### State cache: a step that misses ({m['uri']}; median µs per step, InstCount + reward)", "",
            "| cache off | cache on (all misses) | added | load avg |", "|---:|---:|---:|---|",
            f"| {m['off_us']:.0f} | {m['on_us']:.0f} | {m['added_us']:+.0f} | {load(m['load'])} |"]


def markdown_search(report: dict) -> list[str]:
    if "search" not in report:
        return []
    r = report["search"]
    load = lambda avg: "/".join(f"{x:.1f}" for x in avg)
    return ["", f"### Greedy search, --jobs 2 beside --jobs 1 ({r['uri']}, {r['instructions']:,.0f} instructions)", "",
            "| --jobs 1 (s) | --jobs 2 (s) | speed-up (best of each) | each pair's | machine's bound: two --jobs 1 "
            "at once, each repetition's | same result | candidate steps "
            "| passes found / kept | vs -Oz | load avg before / after (1/5/15 min) |",
            "|---:|---:|---:|---|---|---|---:|---:|---:|---|",
            f"| {r['jobs1_s']:.1f} | {r['jobs2_s']:.1f} | {r['speedup']:.2f}× | "
            f"{', '.join(f'{x:.2f}×' for x in r.get('pair_speedups', []))} | "
            f"{', '.join(f'{x:.2f}×' for x in r.get('machine_bounds', []))} | {'yes' if r['same_result'] else 'NO'} | "
            f"{r['steps']:,} | {r['found_passes']} / {r['kept_passes']} | {r['vs_oz']:.3f}× | "
            f"{load(r['load_before'])} / {load(r['load_after'])} on {r['cores']} cores |"]


def markdown_throughput(report: dict) -> list[str]:
    out = ["", f"### Throughput (random episodes, steps/s, {os.cpu_count()} cores)", "",
           "| envs | processes | scaling | vector env | scaling | pool, batch = envs | pool batch | pool | scaling |",
           "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for n, row in report["throughput"].items():
        processes = (f"{row['processes_steps_per_s']:.0f} | {row['processes_scaling']:.2f}"
                     if "processes_steps_per_s" in row else "— | —")
        out.append(f"| {n} | {processes} | {row['vector_steps_per_s']:.0f} | {row['vector_scaling']:.2f} | "
                   f"{row['pool_full_batch_steps_per_s']:.0f} | {row['pool_batch']} | {row['pool_steps_per_s']:.0f} | "
                   f"{row['pool_scaling']:.2f} |")
    scaling = report.get("core_scaling", {})
    if "ratio" in scaling:
        load = lambda l: "/".join(f"{x:.1f}" for x in l)  # noqa: E731
        out += ["", f"{scaling['num_envs']} sub-envs pinned to 1 core and to 2 (client, zygote and workers): the "
                f"pool with batch {' and '.join(str(b) for b in scaling['batches'])} beside {scaling['num_envs']} "
                f"separate processes, alternated, medians; random episodes over every action, and over "
                f"{', '.join(STEADY_PASSES)} only:", "",
                "| workload | | 1 core | 2 cores | 2 cores / 1 core |", "|---|---|---:|---:|---:|"]
        for workload, row in scaling["rows"].items():
            for kind, values in row.items():
                if kind == "samples":
                    continue
                label = f"env {kind} (target ≥ 1.8)" if kind.startswith("pool") else f"{kind} (reference)"
                out.append(f"| {workload} | {label} | {values['one_core_steps_per_s']:.0f} | "
                           f"{values['two_cores_steps_per_s']:.0f} | {values['ratio']:.2f}× |")
        out += ["", f"Load average before / after: {load(scaling['load_before'])} / {load(scaling['load_after'])}."]
    return out


def markdown_codegen(report: dict) -> list[str]:
    out: list[str] = []
    out += ["### ObjectTextSizeBytes beside `clang-19 -c -x ir` (ms, p50; the same bitcode, alternated)", "",
            "On a state one step (-strip: names dropped, code unchanged) past the benchmark, so code is "
            "generated; at reset the "
            "benchmark's initial baseline answers it.", "",
            "| module | instructions | client | in-process | clang-19 subprocess | clang / client | "
            "clang / in-process | at reset (client) | equal to clang's |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    phases = []
    for size, m in report["modules"].items():
        rows = {r["path"]: r for r in m["runtime"]["rows"]}
        client, local = rows["ObjectTextSizeBytes (client)"], rows["ObjectTextSizeBytes (in-process)"]
        clang = rows["clang-19 -c -x ir (subprocess)"]
        at_reset = rows.get("ObjectTextSizeBytes at reset (client)")
        out.append(f"| {size} | {m['runtime']['instructions']} | {client['p50_us'] / 1000:.1f} | {local['p50_us'] / 1000:.1f} | "
                   f"{clang['p50_us'] / 1000:.1f} | {clang['p50_us'] / client['p50_us']:.2f}× | "
                   f"{clang['p50_us'] / local['p50_us']:.2f}× | "
                   f"{at_reset['p50_us'] / 1000 if at_reset else float('nan'):.2f} | "
                   f"{'yes' if m['runtime']['object_size_equals_clang'] else '**no**'} |")
        if "codegen phase: bitcode parse" in rows:
            write, parse = rows["codegen phase: bitcode write (worker)"], rows["codegen phase: bitcode parse"]
            floor = rows["codegen phase: clang-19 on an empty module (subprocess)"]
            codegen = local["p50_us"] - parse["p50_us"]
            phases.append(f"| {size} | {write['p50_us'] / 1000:.1f} | {parse['p50_us'] / 1000:.1f} | "
                          f"{codegen / 1000:.1f} | {floor['p50_us'] / 1000:.1f} | {clang['p50_us'] / 1000:.1f} | "
                          f"{clang['p50_us'] / max(codegen, 1):.2f}× |")
    if phases:
        out += ["", "Phases (ms, p50 of the same run): the worker writes the state's bitcode and parses it, "
                "then generates code; clang parses the file, generates the same code and also starts a "
                "process (an empty module's run). The last column is the bound with no overhead at all: "
                "clang's run over code generation alone.", "",
                "| module | bitcode write (worker) | parse | code generation (in-process − parse) | "
                "clang-19, empty module | clang-19 | clang / code generation alone |",
                "|---|---:|---:|---:|---:|---:|---:|"] + phases
    if "codegen_load" in report:
        out += ["", f"Load average (1, 5, 15 min): {report['codegen_load']}."]
    out.append("")
    return out


def markdown_startup_large(report: dict) -> list[str]:
    out: list[str] = []
    large = report["startup_large"]
    out += [f"### Start-up on {large['module']} (a new process and server each; ms from `forkgym.make()`, median)", "",
            f"Baselines before: all four computed before the first reset returned, {large['eager_baselines_ms']:.0f} ms "
            "in process (the load's share it no longer has).", "",
            "| env | baseline disk cache | first reset (target ≤ 1000) | first step (with its reward) | `import forkgym` before it |",
            "|---|---|---:|---:|---:|"]
    for name, row in large["rows"].items():
        env_name, state = name.split(" ")
        out.append(f"| {env_name} | {state} | {row['first_reset_ms']:.0f} | {row['first_step_ms']:.0f} | "
                   f"{row['import_ms']:.0f} |")
    out.append("")
    return out


def markdown(report: dict) -> str:
    out = [f"machine: {report['machine']}" + ("; --quick run" if report.get("quick") else ""), ""]
    out.append("### Step latency (µs, p50 / p99)")
    out.append("")
    out.append("| module | instructions | action | in-process floor | C++ client | Python | C++ overhead | Python overhead | opt per step | opt / Python |")
    out.append("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for size, m in report["modules"].items():
        rows = {r["path"]: r for r in m["runtime"]["rows"]}
        for flag in ACTIONS:
            floor, cpp, py = rows[f"floor {flag}"], rows[f"client {flag}"], m["python"][flag]
            opt = m["opt_per_step_us"][flag]
            out.append(
                f"| {size} | {m['runtime']['instructions']} | {flag} | {floor['p50_us']:.1f} / {floor['p99_us']:.1f} | "
                f"{cpp['p50_us']:.1f} / {cpp['p99_us']:.1f} | {py['p50_us']:.1f} / {py['p99_us']:.1f} | "
                f"{cpp['p50_us'] - floor['p50_us']:.1f} | {py['p50_us'] - floor['p50_us']:.1f} | {opt:.0f} | {opt / py['p50_us']:.0f}× |")
    out += ["", "### Reset and fork (µs, p50 / p99) beside what they avoid", ""]
    out.append("| module | reset (cached) | fork | Python fork() | in-process parse | CloneModule |")
    out.append("|---|---:|---:|---:|---:|---:|")
    for size, m in report["modules"].items():
        rows = {r["path"]: r for r in m["runtime"]["rows"]}
        cell = lambda name: f"{rows[name]['p50_us']:.0f} / {rows[name]['p99_us']:.0f}"
        py_fork = m["python"]["fork"]
        out.append(f"| {size} | {cell('reset (cached)')} | {cell('fork')} | {py_fork['p50_us']:.0f} / {py_fork['p99_us']:.0f} | "
                   f"{cell('parse (in-process)')} | {cell('CloneModule (in-process)')} |")
    startup = report["modules"]["small"]["runtime"]["startup_ms"]
    bitcode = report["startup_bitcode_ms"]
    out += ["", "### Start-up (nothing preloaded; cumulative ms from spawning the zygote)", "",
            "| benchmark | hello | first reset (load, baselines) | first step |", "|---|---:|---:|---:|",
            f"| crc32.c (clang compile in the loader) | {startup['hello']:.1f} | {startup['first_reset']:.1f} | {startup['first_step']:.1f} |",
            f"| crc32.bc | {bitcode['hello']:.1f} | {bitcode['first_reset']:.1f} | {bitcode['first_step']:.1f} |", ""]
    out += markdown_startup_large(report)
    out += markdown_codegen(report)
    out += ["### First step after a reset beside its floor (ms, p50; faults: the worker's minor page faults, median)", "",
            "| module | instructions | action | floor (fresh parse, warm process) | floor, module out of the caches "
            "| floor after the same pause | spare warmed up | / floor | / floor after the pause | faults "
            "| --no-spare-warm-up | / floor | faults |",
            "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for size, m in report["modules"].items():
        rows = {r["path"]: r for r in m["runtime"]["rows"]}
        for flag, faults in m["runtime"].get("first_step_minor_faults", {}).items():
            floor = rows[f"first step {flag} (floor: fresh parse, warm process)"]["p50_us"]
            cold_floor = rows[f"first step {flag} (floor, module out of the caches)"]["p50_us"]
            paused_floor = rows[f"first step {flag} (floor after the same pause)"]["p50_us"]
            warm = rows[f"first step {flag} (after reset, spare warmed up)"]["p50_us"]
            cold = rows[f"first step {flag} (after reset, --no-spare-warm-up)"]["p50_us"]
            out.append(f"| {size} | {m['runtime']['instructions']} | {flag} | {floor / 1000:.2f} | {cold_floor / 1000:.2f} | "
                       f"{paused_floor / 1000:.2f} | {warm / 1000:.2f} | {warm / floor:.2f}× | {warm / paused_floor:.2f}× | "
                       f"{faults['warm_up']:.0f} | {cold / 1000:.2f} | {cold / floor:.2f}× | {faults['no_warm_up']:.0f} |")
        warm_up = next((r for r in m["runtime"]["rows"] if r["path"].startswith("spare warm-up")), None)
        if warm_up:
            out.append(f"| {size} | | {warm_up['path']} | | | | {warm_up['p50_us'] / 1000:.2f} (the spare's own time) "
                       "| | | | | | |")
    if "memory_walk_ms" in report:
        out += ["", "What the floor after the same pause pays, with no compiler at all: a pointer chase over 62,000 "
                "nodes of 192 bytes in random order (ms, p50), hot and in the first passes after a 300 ms pause, "
                "in one process that does nothing else:", "",
                "| hot | 1st pass after the same pause | 2nd pass | 3rd pass |", "|" + "---:|" * 4,
                "| " + " | ".join(f"{ms:.2f}" for ms in report["memory_walk_ms"]) + " |"]
    out += ["", "### Observations (medium module, cold, µs p50)", "", "| observation | p50 µs |", "|---|---:|"]
    for r in report["modules"]["medium"]["runtime"]["rows"]:
        if r["path"].startswith("observe "):
            out.append(f"| {r['path'][8:]} | {r['p50_us']:.0f} |")
    out += markdown_fork(report)
    out += markdown_throughput(report)
    out += ["", "### Memory (same benchmark; KiB)", "", "| live episodes | worker USS (median) | worker PSS (median) | zygote RSS |",
            "|---:|---:|---:|---:|"]
    for n, row in report["memory"].items():
        out.append(f"| {n} | {row['worker_uss_kb_median']:.0f} | {row['worker_pss_kb_median']:.0f} | {row['zygote_rss_kb']} |")
    out += ["", "### gcc-v0 step beside a plain `gcc -c` loop (µs, p50 / p99)", "",
            "| source | gcc-v0 step (obj_size) | plain `gcc -c` | step / plain | gcc-v0 step (obj_size + asm_size) "
            "| client step (server, sandbox) | client / plain |",
            "|---|---:|---:|---:|---:|---:|---:|"]
    for name, row in report["gcc"].items():
        step, plain, both = row["episode_step"], row["plain_gcc_c"], row["episode_step_with_asm"]
        client = row["client_step"]
        out.append(f"| {name} | {step['p50_us']:.0f} / {step['p99_us']:.0f} | {plain['p50_us']:.0f} / {plain['p99_us']:.0f} | "
                   f"{step['p50_us'] / plain['p50_us']:.2f} | {both['p50_us']:.0f} / {both['p99_us']:.0f} | "
                   f"{client['p50_us']:.0f} / {client['p99_us']:.0f} | {client['p50_us'] / plain['p50_us']:.2f} |")
    datasets = report["datasets"]
    out += ["", "### Datasets: listing from a manifest of the documented size (ms)", "",
            "| dataset | entries | first listing (fetch, index) | reopen + size | iterate all URIs |",
            "|---|---:|---:|---:|---:|"]
    for name, row in datasets["datasets"].items():
        out.append(f"| {name} | {row['size']:,} | {row['first_listing_ms']:.1f} | {row['reopen_size_ms']:.2f} | "
                   f"{row['iterate_all_ms']:.1f} |")
    draw, weighted = datasets["random_benchmark_us"], datasets["weighted_random_benchmark_us"]
    out += ["", f"random_benchmark() on {draw['entries']:,} entries: {draw['p50_us']:.1f} / {draw['p99_us']:.1f} µs "
            f"(p50 / p99); Datasets.random_benchmark(weighted=True) over them all: {weighted['p50_us']:.1f} / "
            f"{weighted['p99_us']:.1f} µs"]
    out += ["", "### Dataset resets (ms, median): the first on a new server, and the next on the same one", "",
            "| benchmark | kind | first reset | reset served by the zygote's cache |", "|---|---|---:|---:|"]
    for name, rows in report["dataset_resets"].items():
        for kind, row in rows.items():
            out.append(f"| {name} | {kind} | {row['first_reset_ms']:.1f} | {row['cached_reset_ms']:.2f} |")
    out += markdown_runner(report)
    out += markdown_sb3(report)
    if "representations" in report:
        out += markdown_representations(report)
    out += markdown_search(report)
    out += markdown_state_cache(report)
    return "\n".join(out) + "\n"


README_BEGIN = "<!-- scripts/bench --readme writes from here"
README_END = "<!-- to here: scripts/bench's tables -->"


def update_readme() -> int:
    """README.md's performance tables are bench-out/bench.md, as the last
    full run wrote it, between two markers: regenerated, never typed."""
    report = json.loads((OUT / "bench.json").read_text()) if (OUT / "bench.json").exists() else None
    if report is None or not (OUT / "bench.md").exists():
        print("bench: no run to take the tables from; run scripts/bench first", file=sys.stderr)
        return 2
    if report.get("quick"):
        print("bench: the last run was --quick; the README takes a full run's tables", file=sys.stderr)
        return 2
    readme = ROOT / "README.md"
    text = readme.read_text()
    begin, end = text.find(README_BEGIN), text.find(README_END)
    if begin < 0 or end < begin:
        print(f"bench: README.md has no '{README_BEGIN} ... {README_END}' block", file=sys.stderr)
        return 2
    load = lambda l: "/".join(f"{x:.1f}" for x in l)  # noqa: E731
    header = (f"{README_BEGIN} (a full run on {report.get('date', 'an unrecorded date')}, {report['machine']}, "
              f"{report['seconds'] / 60:.0f} min, load average {load(report.get('load_before', []))} before and "
              f"{load(report.get('load_after', []))} after) -->\n\n")
    body = (OUT / "bench.md").read_text().split("\n", 1)[1].lstrip("\n").replace("\n### ", "\n#### ")
    if body.startswith("### "):
        body = "#" + body
    readme.write_text(text[:begin] + header + body.rstrip("\n") + "\n\n" + text[end:])
    print(f"bench: README.md's performance tables are now {OUT / 'bench.md'}'s", file=sys.stderr)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small run (< 1 min) to check the harness works")
    parser.add_argument("--readme", action="store_true",
                        help="put the last full run's tables (bench-out/bench.md) into README.md's performance "
                             "section, between its markers, and stop")
    parser.add_argument("--only", choices=["runner", "search", "throughput", "fork", "codegen", "startup",
                                           "statecache", "sb3", "representations"],
                        help="run one section alone and print its table")
    args = parser.parse_args()
    if args.readme:
        return update_readme()
    # Every section but the state cache's measures work done, not looked up.
    os.environ["FORKGYM_STATE_CACHE"] = "0"
    if args.only == "statecache":
        report = {"state_cache": state_cache_bench(args.quick)}
        print(json.dumps(report, indent=2))
        print("\n".join(markdown_state_cache(report)))
        return 0
    if args.only == "sb3":
        report = {"sb3": sb3_bench(args.quick)}
        print(json.dumps(report, indent=2))
        print("\n".join(markdown_sb3(report)))
        return 0
    if args.only == "search":
        report = {"search": search_bench(args.quick)}
        print(json.dumps(report, indent=2))
        print("\n".join(markdown_search(report)))
        return 0
    if args.only == "fork":
        report = {"fork": fork_bench(args.quick)}
        print(json.dumps(report, indent=2))
        print("\n".join(markdown_fork(report)))
        return 0
    if args.only == "throughput":
        small = modules(True)["small"]
        report = {"throughput": throughput(small, [1, 2] if args.quick else [1, 2, 4, 8, 16],
                                           1.0 if args.quick else 5.0),
                  "core_scaling": core_scaling(small, 2 if args.quick else 8, 1.0 if args.quick else 6.0,
                                               1 if args.quick else 3)}
        print(json.dumps(report, indent=2))
        print("\n".join(markdown_throughput(report)))
        return 0
    if args.only == "codegen":
        before = " ".join(f"{x:.1f}" for x in os.getloadavg())
        report = {"modules": {size: {"runtime": runtime_bench(uri, args.quick, False)}
                              for size, uri in modules(args.quick).items()}}
        report["codegen_load"] = f"before {before}, after " + " ".join(f"{x:.1f}" for x in os.getloadavg())
        print(json.dumps(report, indent=2))
        print("\n".join(markdown_codegen(report)))
        return 0
    if args.only == "startup":
        large = OUT / "modules" / "large.c"
        large.parent.mkdir(parents=True, exist_ok=True)
        generate_large_c(large)
        bitcode = OUT / "modules" / "large.bc"
        subprocess.run(["clang-19", "-O0", "-Xclang", "-disable-O0-optnone", "-emit-llvm", "-c", str(large),
                        "-o", str(bitcode)], check=True)
        report = {"startup_large": {"module": bitcode.name, "rows": startup_large_bench(bitcode, args.quick),
                                    "eager_baselines_ms": eager_baselines_ms(bitcode)}}
        print(json.dumps(report, indent=2))
        print("\n".join(markdown_startup_large(report)))
        return 0
    if args.only == "representations":
        report = {"representations": representations_bench(args.quick)}
        print(json.dumps(report, indent=2))
        print("\n".join(markdown_representations(report)))
        return 0
    if args.only == "runner":
        report = {"runner": runner_bench(args.quick)}
        print(json.dumps(report, indent=2))
        print("\n".join(markdown_runner(report)))
        return 0
    OUT.mkdir(exist_ok=True)
    started = time.perf_counter()
    report: dict = {"machine": f"{os.cpu_count()} cores, {os.uname().release}", "modules": {}, "quick": args.quick,
                    "date": time.strftime("%Y-%m-%d"), "load_before": os.getloadavg()}
    for size, uri in modules(args.quick).items():
        print(f"bench: {size} module ({uri})", file=sys.stderr)
        entry = {"uri": uri, "runtime": runtime_bench(uri, args.quick, observations=size == "medium")}
        entry["python"], bitcode = python_steps(uri, args.quick)
        pipelines = {}
        import forkgym

        with forkgym.make("llvm-v0", benchmark=uri) as env:
            env.reset()
            for flag in ACTIONS:
                pipelines[flag] = env.commandline([env.action_space.names.index(flag)]).split("'")[1]
        entry["opt_per_step_us"] = {flag: opt_per_step(bitcode, pipelines[flag], args.quick) for flag in ACTIONS}
        report["modules"][size] = entry
    if not args.quick:  # the first-step floors' bound; it does not depend on a module
        report["memory_walk_ms"] = memory_walk_ms()
    # Start-up without a compiler in the way: the small module as bitcode.
    bitcode = OUT / "modules" / "crc32.bc"
    bitcode.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["clang-19", "-O0", "-Xclang", "-disable-O0-optnone", "-emit-llvm", "-c",
                    str(ROOT / "tests/data/crc32.c"), "-o", str(bitcode)], check=True)
    report["startup_bitcode_ms"] = runtime_bench(f"file://{bitcode}", True, False)["startup_ms"]
    print("bench: start-up on the large module", file=sys.stderr)
    large_bitcode = OUT / "modules" / "large.bc"
    if not args.quick:
        subprocess.run(["clang-19", "-O0", "-Xclang", "-disable-O0-optnone", "-emit-llvm", "-c",
                        str(OUT / "modules" / "large.c"), "-o", str(large_bitcode)], check=True)
    else:
        large_bitcode = bitcode  # keeps the quick run quick: the rows work the same
    report["startup_large"] = {"module": large_bitcode.name, "rows": startup_large_bench(large_bitcode, args.quick),
                               "eager_baselines_ms": eager_baselines_ms(large_bitcode)}
    small = report["modules"]["small"]["uri"]
    print("bench: throughput", file=sys.stderr)
    print("bench: fork", file=sys.stderr)
    report["fork"] = fork_bench(args.quick)
    report["throughput"] = throughput(small, [1, 2] if args.quick else [1, 2, 4, 8, 16], 1.0 if args.quick else 5.0)
    report["core_scaling"] = core_scaling(small, 2 if args.quick else 8, 1.0 if args.quick else 6.0,
                                          1 if args.quick else 3)
    print("bench: memory", file=sys.stderr)
    report["memory"] = memory(small, [1, 8] if args.quick else [1, 8, 64])
    print("bench: gcc", file=sys.stderr)
    sources = {"crc32.c": ROOT / "tests/data/crc32.c"}
    if not args.quick:
        sources["large.c"] = OUT / "modules" / "large.c"
    # large.c takes gcc seconds per compile (~4 CPU s at -O3): its row takes
    # the quick run's laps, so the whole harness stays within its budget.
    report["gcc"] = {name: gcc_bench(path, args.quick or name == "large.c")
                     | {"client_step": client_gcc_steps(path, args.quick or name == "large.c")}
                     for name, path in sources.items()}
    print("bench: datasets", file=sys.stderr)
    report["datasets"] = datasets_bench(args.quick)
    report["dataset_resets"] = dataset_resets_bench(args.quick)
    print("bench: runner", file=sys.stderr)
    report["runner"] = runner_bench(args.quick)
    if not args.quick:  # torch's import alone would double the quick run
        print("bench: sb3", file=sys.stderr)
        report["sb3"] = sb3_bench(args.quick)
    print("bench: representations", file=sys.stderr)
    report["representations"] = representations_bench(args.quick)
    print("bench: search", file=sys.stderr)
    report["search"] = search_bench(args.quick)
    print("bench: state cache", file=sys.stderr)
    report["state_cache"] = state_cache_bench(args.quick)
    report["seconds"] = time.perf_counter() - started
    report["load_after"] = os.getloadavg()
    (OUT / "bench.json").write_text(json.dumps(report, indent=2))
    table = markdown(report)
    (OUT / "bench.md").write_text(table)
    print(table)
    print(f"bench: {report['seconds']:.0f} s; wrote {OUT}/bench.json and bench.md", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
