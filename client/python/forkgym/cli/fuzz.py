"""``forkgym fuzz``: pass-ordering fuzzing with classified, bucketed, reduced failures.

Each execution picks a benchmark (a generator's program by seed, or a
dataset's or a URI you gave) and a pass sequence — random, or a mutation of a
sequence in the corpus (insert, delete, replace, swap, duplicate, splice) —
and runs it in a forkgym worker. Its outcome is classified
(:mod:`forkgym.failures`): crash (signal and symbolised stack signature),
fatal error or verifier failure (message signature), timeout, out of
memory; on a sample of the executions that succeed, a miscompile (semantic
validation, for runnable benchmarks: csmith, c-torture's execute tests) and
nondeterminism (the state hash after every step in two more server
processes with other heap layouts). Failures are bucketed by kind and
signature. A sequence that reached a new bucket, or a final module whose
instruction mix (InstCount, counts binned by powers of two) is new, joins
the corpus.

Each new bucket gets a self-contained artifact directory (input bitcode,
passes, outcome, log, the versioned ``opt`` command line that reproduces it;
:mod:`forkgym.cli.artifact`) and is reduced at once (``reduce``: ddmin of the
passes, then ``llvm-reduce`` of the IR unless ``--no-reduce-ir``).

Everything lives in the state directory, so ``fuzz`` resumes where it
stopped: ``fuzz.json`` (seed, executions, time, and the server whose
symbols signed its buckets: resuming with another build warns, since the
same crash may be signed differently), ``corpus.jsonl``, ``buckets.json``,
``timeline.csv`` and ``buckets/``. Execution *i* draws from
a generator seeded by (``--seed``, *i*), so with ``--jobs 1`` a run is
reproducible, resumed or not. ``report.md`` (and ``buckets.png``, with the
``forkgym[plots]`` extra) summarise the run when it ends.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from forkgym.failures import Failure, from_step_info

EPILOG = """examples:
  forkgym fuzz --state-dir fz --execs 2000 --jobs 2
  forkgym fuzz --state-dir fz --dataset generator://llvm-stress-v0 --dataset cbench-v1 --time 3600
  forkgym fuzz --state-dir fz            # resumes, with the options it was started with
"""

DEFAULT_DATASETS = ("generator://llvm-stress-v0", "generator://csmith-v0")
_STATE_VERSION = 1


def server_identity() -> dict[str, str]:
    """The forkgym-server this run's envs start (its path and content hash).
    A crash's stack signature is named from that binary's symbols, so another
    build may sign a crash already bucketed differently."""
    from forkgym.datasets.fetch import _sha256_of
    from forkgym.server import server_binary

    path = server_binary()
    try:
        return {"path": path, "sha256": _sha256_of(Path(path))}
    except OSError:
        return {"path": path, "sha256": ""}


def changed_server_warning(directory: Path, recorded: dict[str, str] | None, current: dict[str, str]) -> str | None:
    """What to tell a user who resumes ``directory`` with another server than it started with (None: the same)."""
    if recorded is not None and recorded.get("sha256") == current["sha256"]:
        return None
    before = (f"another forkgym-server ({recorded.get('path')}, sha256 {recorded.get('sha256', '')[:12]})"
              if recorded is not None else "a forkgym-server it did not record (made before fuzz recorded it)")
    return (f"fuzz: {directory} was started with {before}; this run uses {current['path']} "
            f"(sha256 {current['sha256'][:12]}). Stack signatures are named from the server's symbols, so a crash "
            f"already bucketed may be signed differently and open a bucket of its own; start a new --state-dir to "
            f"keep one server per campaign.")


def _slug(text: str, limit: int = 60) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:limit].strip("-")


class Benchmarks:
    """Where executions draw their benchmarks from: generators (a seed below
    ``generator_seeds``), datasets' URIs, and URIs given one by one."""

    def __init__(self, benchmarks: list[str], datasets: list[str], generator_seeds: int) -> None:
        from forkgym.benchmarks import canonical_uri

        self.uris = [canonical_uri(u) for u in benchmarks]
        self.generators: list[str] = []
        self.listed: list[str] = []
        for name in datasets:
            text = name if "://" in name else f"benchmark://{name}"
            if text.startswith("generator://"):
                self.generators.append(text.rstrip("/"))
                continue
            from forkgym.datasets import Datasets

            dataset = Datasets()[text]
            if dataset.kind == "generator":
                self.generators.append(dataset.name.rstrip("/"))
                continue
            uris = list(dataset.benchmark_uris())
            if not uris:
                raise ValueError(f"dataset {dataset.name} has no benchmarks (install it: forkgym datasets install "
                                 f"{dataset.name})")
            self.listed.extend(uris)
        self.generator_seeds = generator_seeds
        if not (self.uris or self.generators or self.listed):
            raise ValueError("nothing to fuzz: give --benchmark URIs or --dataset names")

    def pick(self, rng: random.Random) -> str:
        pools = [p for p in (self.uris, self.listed) if p] + ([self.generators] if self.generators else [])
        pool = rng.choice(pools)
        if pool is self.generators:
            return f"{rng.choice(self.generators)}/{rng.randrange(self.generator_seeds)}"
        return rng.choice(pool)


@dataclass
class Bucket:
    id: int
    bucket: str
    kind: str
    signature: str
    count: int
    first_exec: int
    first_time: float
    directory: str
    benchmark: str
    passes: list[str]
    reduced_passes: list[str] | None = None
    opt_reproduces: bool | None = None
    notes: list[str] = field(default_factory=list)


class FuzzState:
    """The state directory: loaded when it exists (resume), written as the run goes."""

    def __init__(self, directory: Path, options: dict[str, Any]) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "buckets").mkdir(exist_ok=True)
        meta_path = directory / "fuzz.json"
        if meta_path.is_file():
            meta = json.loads(meta_path.read_text())
            if meta.get("version") != _STATE_VERSION:
                raise ValueError(f"{meta_path} is from another version of fuzz; start a new --state-dir")
            self.options = meta["options"]
            self.execs = int(meta["execs"])
            self.elapsed = float(meta["elapsed"])
            self.counts: dict[str, int] = meta.get("counts", {})
            self.server: dict[str, str] | None = meta.get("server")
            self.resumed = True
        else:
            self.options = options
            self.execs = 0
            self.elapsed = 0.0
            self.counts = {}
            self.server = None
            self.resumed = False
        self.corpus: list[dict[str, Any]] = []
        self.seen: set[str] = set()
        corpus_path = directory / "corpus.jsonl"
        if corpus_path.is_file():
            for line in corpus_path.read_text().splitlines():
                if line.strip():
                    entry = json.loads(line)
                    self.corpus.append(entry)
                    self.seen.add(entry["key"])
        self.buckets: dict[str, Bucket] = {}
        buckets_path = directory / "buckets.json"
        if buckets_path.is_file():
            for data in json.loads(buckets_path.read_text()):
                self.buckets[data["bucket"]] = Bucket(**data)
        self.lock = threading.Lock()

    def save(self) -> None:
        meta = {"version": _STATE_VERSION, "options": self.options, "execs": self.execs,
                "elapsed": self.elapsed, "counts": self.counts, "server": self.server}
        self._replace(self.directory / "fuzz.json", json.dumps(meta, indent=2) + "\n")
        self._replace(self.directory / "buckets.json",
                      json.dumps([b.__dict__ for b in self.buckets.values()], indent=2) + "\n")

    def add_corpus(self, entry: dict[str, Any]) -> None:
        self.corpus.append(entry)
        self.seen.add(entry["key"])
        with open(self.directory / "corpus.jsonl", "a") as f:
            f.write(json.dumps(entry) + "\n")

    def timeline(self) -> None:
        path = self.directory / "timeline.csv"
        new = not path.exists()
        with open(path, "a", newline="") as f:
            writer = csv.writer(f)
            if new:
                writer.writerow(["elapsed_s", "execs", "buckets"])
            writer.writerow([f"{self.elapsed:.3f}", self.execs, len(self.buckets)])

    @staticmethod
    def _replace(path: Path, text: str) -> None:
        with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, prefix=f".{path.name}.") as f:
            f.write(text)
        os.replace(f.name, path)


def mutate(rng: random.Random, actions: list[int], other: list[int], action_count: int, max_length: int) -> list[int]:
    """One or a few random edits of ``actions`` (``other``: a second corpus sequence, for splicing)."""
    result = list(actions)
    for _ in range(rng.choice((1, 1, 2, 3))):
        op = rng.randrange(7)
        if op == 0 or not result:  # insert
            result.insert(rng.randint(0, len(result)), rng.randrange(action_count))
        elif op == 1 and len(result) > 1:  # delete
            del result[rng.randrange(len(result))]
        elif op == 2:  # replace
            result[rng.randrange(len(result))] = rng.randrange(action_count)
        elif op == 3 and len(result) > 1:  # swap
            i, j = rng.randrange(len(result)), rng.randrange(len(result))
            result[i], result[j] = result[j], result[i]
        elif op == 4:  # duplicate a slice
            i = rng.randrange(len(result))
            j = rng.randint(i + 1, len(result))
            result[j:j] = result[i:j]
        elif op == 5 and other:  # splice
            result = result[: rng.randint(0, len(result))] + other[rng.randint(0, len(other) - 1):]
        else:  # append a random tail
            result += [rng.randrange(action_count) for _ in range(rng.randint(1, 4))]
    return result[:max_length] or [rng.randrange(action_count)]


def _maybe_runnable(uri: str) -> bool:
    """Benchmarks with a run configuration: the datasets that have one, and yours (``?run=``)."""
    return "csmith-v0/" in uri or "gcc-c-torture-v0/execute" in uri or "run=" in uri


def novelty_key(inst_count: Any) -> str:
    """The final module's instruction mix, each count binned by its bit length."""
    return ",".join(str(int(c).bit_length()) for c in inst_count)


class Fuzzer:
    def __init__(self, state: FuzzState, benchmarks: Benchmarks, arguments: argparse.Namespace,
                 on_event: Callable[[str], None]) -> None:
        self.state = state
        self.benchmarks = benchmarks
        self.args = arguments
        self.on_event = on_event
        self.next_exec = state.execs
        self.stop_at_exec = state.execs + arguments.execs if arguments.execs else None
        self.deadline = time.monotonic() + arguments.time if arguments.time else None
        self.started = time.monotonic()
        self.elapsed_before = state.elapsed
        self.crossers: Any = None
        self.failures_seen = 0

    # ------------------------------------------------------------ one exec --

    def _plan(self, index: int, action_count: int) -> tuple[random.Random, str, list[int]]:
        rng = random.Random(f"{self.args.seed}/{index}")
        with self.state.lock:
            corpus = list(self.state.corpus)
        if corpus and rng.random() < self.args.mutate_ratio:
            base = rng.choice(corpus)
            other = rng.choice(corpus)
            benchmark = base["benchmark"] if rng.random() < 0.8 else self.benchmarks.pick(rng)
            actions = mutate(rng, base["actions"], other["actions"], action_count, self.args.max_length)
        else:
            benchmark = self.benchmarks.pick(rng)
            actions = [rng.randrange(action_count) for _ in range(rng.randint(1, self.args.max_length))]
        return rng, benchmark, actions

    def execute(self, env: Any, index: int) -> None:
        from forkgym.errors import ForkgymError

        rng, benchmark, actions = self._plan(index, env.action_space.n)
        try:
            env.reset(benchmark=benchmark)
        except ForkgymError as e:
            self._count("benchmark_error")
            self.on_event(f"benchmark {benchmark} did not load: {str(e).splitlines()[0]}")
            return
        observation, _, _, truncated, info = env.multistep(actions, observation_spaces=["InstCount"],
                                                           reward_spaces=[])
        failure: Failure | None = None
        key = None
        if truncated:
            failure = from_step_info(info, actions, env.action_space.flags)
        else:
            key = novelty_key(observation[0])
            failure = self._sampled_checks(env, rng, benchmark, actions)
        if failure is None:
            self._count("ok")
            with self.state.lock:
                if key is not None and key not in self.state.seen:
                    self.state.add_corpus({"benchmark": benchmark, "actions": actions, "key": key})
            return
        self._record(env, index, benchmark, actions, failure)

    def _sampled_checks(self, env: Any, rng: random.Random, benchmark: str, actions: list[int]) -> Failure | None:
        """Semantic validation and the cross-process check, on a sample of successful executions."""
        from forkgym.cli.reduce import semantics_check

        if self.args.semantics_rate and rng.random() < self.args.semantics_rate and _maybe_runnable(benchmark):
            self._count("semantics_checked")
            if failure := semantics_check(env, benchmark, actions):
                return failure
        if self.args.determinism_rate and rng.random() < self.args.determinism_rate:
            self._count("determinism_checked")
            return self._check_for("nondeterminism", env)(env, benchmark, actions)
        return None

    def _check_for(self, kind: str, env: Any) -> Any:
        """The check that finds a failure of behaviour of ``kind`` (None for a failure the run itself shows)."""
        from forkgym.cli.reduce import determinism_check, semantics_check

        if kind == "miscompile":
            return semantics_check
        if kind == "nondeterminism":
            return determinism_check(self._crossers(env))
        return None

    def _crossers(self, env: Any) -> Any:
        from forkgym.cli.determinism import ProcessSet

        with self.state.lock:
            if self.crossers is None:
                self.crossers = ProcessSet(2, self.args.seed, env.unwrapped._server.options)
            return self.crossers

    def _count(self, kind: str) -> None:
        with self.state.lock:
            self.state.counts[kind] = self.state.counts.get(kind, 0) + 1

    def _record(self, env: Any, index: int, benchmark: str, actions: list[int], failure: Failure) -> None:
        with self.state.lock:
            self.state.counts[failure.kind] = self.state.counts.get(failure.kind, 0) + 1
            self.failures_seen += 1
            known = self.state.buckets.get(failure.bucket)
            if known is not None:
                known.count += 1
                return
            number = len(self.state.buckets) + 1
            directory = self.state.directory / "buckets" / f"{number:03d}-{_slug(failure.bucket)}"
            names = env.action_space.flags
            bucket = Bucket(number, failure.bucket, failure.kind, failure.signature, 1, index,
                            round(self.elapsed(), 3), str(directory.relative_to(self.state.directory)), benchmark,
                            [names[a] for a in actions])
            self.state.buckets[failure.bucket] = bucket
            self.state.add_corpus({"benchmark": benchmark, "actions": actions, "key": f"bucket:{failure.bucket}"})
            self.state.elapsed = self.elapsed()
            self.state.timeline()
        self.on_event(f"new bucket {number}: {failure.bucket} ({benchmark}, {len(actions)} passes)")
        self._save_artifact(env, bucket, benchmark, actions, failure)

    def _save_artifact(self, env: Any, bucket: Bucket, benchmark: str, actions: list[int], failure: Failure) -> None:
        from forkgym.cli import artifact, reduce

        directory = self.state.directory / bucket.directory
        env.reset(benchmark=benchmark)
        artifact.write(directory, env, benchmark=benchmark, benchmark_hash=env.benchmark_hash, actions=actions,
                       failure=failure, input_bytes=env.bitcode, extra={"found_at_exec": bucket.first_exec})
        if not self.args.reduce:
            return
        try:
            outcome = reduce.reduce(env, benchmark=benchmark, actions=actions, output=directory / "reduced",
                                    reduce_ir_too=self.args.reduce_ir, ir_timeout=self.args.ir_timeout,
                                    input_bytes=None, log=lambda text: None,
                                    check=self._check_for(failure.kind, env))
            with self.state.lock:
                bucket.reduced_passes = outcome["actions"]
                bucket.opt_reproduces = outcome["opt_reproduces"]
                bucket.notes = outcome.get("notes", [])
        except (ValueError, AssertionError) as e:
            # A failure that does not happen again on its own (it depended on
            # the server's state) is kept unreduced, and says so.
            with self.state.lock:
                bucket.notes = [f"not reduced: {e}"]
        self.on_event(f"bucket {bucket.id} reduced to {len(bucket.reduced_passes or [])} passes: "
                      f"{' '.join(bucket.reduced_passes or [])}")

    # ------------------------------------------------------------ the loop --

    def elapsed(self) -> float:
        return self.elapsed_before + time.monotonic() - self.started

    def _claim(self) -> int | None:
        with self.state.lock:
            if self.stop_at_exec is not None and self.next_exec >= self.stop_at_exec:
                return None
            if self.deadline is not None and time.monotonic() >= self.deadline:
                return None
            index = self.next_exec
            self.next_exec += 1
            return index

    def _done(self) -> None:
        with self.state.lock:
            self.state.execs += 1

    def worker(self, progress: Any, stop: threading.Event) -> None:
        import forkgym

        with forkgym.make("llvm-v0", step_timeout=self.args.step_timeout,
                          address_space_mb=self.args.memory_mb) as env:
            while not stop.is_set():
                index = self._claim()
                if index is None:
                    return
                self.execute(env, index)
                self._done()
                if progress is not None:
                    with self.state.lock:
                        rate = (self.state.execs - self.start_execs) / max(time.monotonic() - self.started, 1e-9)
                        progress.set_postfix(buckets=len(self.state.buckets), corpus=len(self.state.corpus),
                                             execs_s=f"{rate:.1f}", refresh=False)
                        progress.update(1)
                if index % 50 == 0:
                    with self.state.lock:
                        self.state.elapsed = self.elapsed()
                        self.state.save()

    def run(self, progress: Any) -> None:
        self.start_execs = self.state.execs
        stop = threading.Event()
        threads = [threading.Thread(target=self._guard, args=(progress, stop), daemon=True)
                   for _ in range(self.args.jobs)]
        self.errors: list[BaseException] = []
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                while thread.is_alive():
                    thread.join(0.5)
        except KeyboardInterrupt:
            stop.set()
            for thread in threads:
                thread.join()
        finally:
            if self.crossers is not None:
                self.crossers.close()
            with self.state.lock:
                self.state.elapsed = self.elapsed()
                self.state.timeline()
                self.state.save()
        if self.errors:
            raise self.errors[0]

    def _guard(self, progress: Any, stop: threading.Event) -> None:
        try:
            self.worker(progress, stop)
        except BaseException as e:  # noqa: BLE001 - re-raised by run() in the main thread
            self.errors.append(e)
            stop.set()


# ---------------------------------------------------------------- report --


def write_report(state: FuzzState, plot: bool | None) -> tuple[Path, Path | None, str | None]:
    """report.md (and buckets.png): returns their paths and a note when the plot was left out."""
    png: Path | None = None
    note = None
    if plot is not False:
        try:
            png = plot_buckets(state)
        except ImportError:
            note = "no plot: matplotlib is missing; install forkgym[plots] (pip install 'forkgym[plots]')"
            if plot:
                raise ImportError(note) from None
    rate = state.execs / state.elapsed if state.elapsed else 0.0
    lines = ["# forkgym fuzz report", "",
             f"{state.execs:,} executions in {state.elapsed:,.1f} s ({rate:.1f}/s); {len(state.buckets)} buckets; "
             f"corpus of {len(state.corpus)} sequences; seed {state.options.get('seed')}.", "",
             "| outcome | executions |", "|---|---:|"]
    # ok, each failure kind, benchmark_error: one per execution. The sampled
    # checks of runs that succeeded are counted apart, so the table sums to
    # the executions.
    checks = {"semantics_checked": "semantic validation", "determinism_checked": "the cross-process check"}
    lines += [f"| {kind} | {count:,} |" for kind, count in sorted(state.counts.items()) if kind not in checks]
    sampled = [f"{label} {state.counts[kind]:,}" for kind, label in checks.items() if state.counts.get(kind)]
    if sampled:
        lines += ["", f"Sampled checks of runs that succeeded (counted above by their outcome): {', '.join(sampled)}."]
    lines += ["", "## Buckets", "", "| # | kind | signature | hits | found at (exec, s) | reduced passes | opt reproduces | artifact |",
              "|---:|---|---|---:|---|---|---|---|"]
    for b in sorted(state.buckets.values(), key=lambda b: b.id):
        reduced = " ".join(b.reduced_passes) if b.reduced_passes is not None else "-"
        reproduces = {True: "yes", False: "no", None: "-"}[b.opt_reproduces]
        signature = b.signature.replace("|", "\\|")
        lines.append(f"| {b.id} | {b.kind} | `{signature}` | {b.count:,} | {b.first_exec}, {b.first_time:.1f} | "
                     f"`{reduced}` | {reproduces} | [{b.directory}]({b.directory}) |")
    if png is not None:
        lines += ["", "## Buckets over time", "", f"![buckets over time]({png.name})"]
    elif note:
        lines += ["", f"({note})"]
    path = state.directory / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path, png, note


def plot_buckets(state: FuzzState) -> Path:
    """buckets.png: buckets found against time and executions (needs forkgym[plots])."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    times, execs, counts = [0.0], [0], [0]
    path = state.directory / "timeline.csv"
    if path.is_file():
        with open(path) as f:
            for row in csv.DictReader(f):
                times.append(float(row["elapsed_s"]))
                execs.append(int(row["execs"]))
                counts.append(int(row["buckets"]))
    figure, axis = plt.subplots(figsize=(7, 4))
    axis.step(times, counts, where="post")
    axis.set_xlabel("seconds")
    axis.set_ylabel("buckets")
    axis.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    axis.set_title(f"forkgym fuzz: {len(state.buckets)} buckets in {state.execs:,} executions")
    axis.grid(alpha=0.3)
    output = state.directory / "buckets.png"
    figure.tight_layout()
    figure.savefig(output, dpi=100)
    plt.close(figure)
    return output


# ------------------------------------------------------------------- CLI --


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state-dir", "-o", required=True,
                        help="where the corpus, buckets, artifacts and report live (resumed when it exists)")
    parser.add_argument("--benchmark", action="append", default=[], metavar="URI", help="a benchmark to fuzz (repeat)")
    parser.add_argument("--dataset", action="append", default=[], metavar="NAME",
                        help="a dataset or generator to draw from (repeat; default: llvm-stress-v0 and csmith-v0)")
    parser.add_argument("--generator-seeds", type=int, default=10_000,
                        help="generators' programs are drawn from seeds below this (default 10000)")
    parser.add_argument("--execs", type=int, default=0, help="stop after this many executions (0: no limit)")
    parser.add_argument("--time", type=float, default=0, help="stop after this many seconds (0: no limit)")
    parser.add_argument("--jobs", "-j", type=int, default=1, help="parallel episodes (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="the random seed (default 0)")
    parser.add_argument("--max-length", type=int, default=30, help="the longest pass sequence (default 30)")
    parser.add_argument("--mutate-ratio", type=float, default=0.5,
                        help="share of executions that mutate a corpus sequence (default 0.5)")
    parser.add_argument("--semantics-rate", type=float, default=0.02,
                        help="share of successful runs on runnable benchmarks validated semantically (default 0.02)")
    parser.add_argument("--determinism-rate", type=float, default=0.01,
                        help="share of successful runs replayed in two more processes (default 0.01)")
    parser.add_argument("--step-timeout", type=float, default=60.0, help="seconds per step before a timeout (60)")
    parser.add_argument("--memory-mb", type=int, default=0, help="a worker's address-space limit (0: server default)")
    parser.add_argument("--no-reduce", dest="reduce", action="store_false", help="do not reduce new buckets")
    parser.add_argument("--no-reduce-ir", dest="reduce_ir", action="store_false",
                        help="reduce new buckets' passes only, not their IR")
    parser.add_argument("--ir-timeout", type=float, default=600.0, help="seconds llvm-reduce may take per bucket")
    plots = parser.add_mutually_exclusive_group()
    plots.add_argument("--plot", dest="plot", action="store_true", default=None,
                       help="require the PNG plot (needs forkgym[plots]); default: plot when matplotlib is there")
    plots.add_argument("--no-plot", dest="plot", action="store_false")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON document on stdout")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar on stderr")


_RESUMED_OPTIONS = ("benchmark", "dataset", "generator_seeds", "seed", "max_length", "mutate_ratio",
                    "semantics_rate", "determinism_rate", "step_timeout", "memory_mb")


def run(arguments: argparse.Namespace) -> int:
    if arguments.jobs < 1:
        raise ValueError("--jobs must be at least 1")
    if arguments.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise ImportError("--plot needs matplotlib: install forkgym[plots] (pip install 'forkgym[plots]')") from None
    if not arguments.execs and not arguments.time:
        print("fuzz: no --execs or --time: runs until interrupted (Ctrl-C), then writes its report", file=sys.stderr)
    options = {name: getattr(arguments, name) for name in _RESUMED_OPTIONS}
    if not options["benchmark"] and not options["dataset"]:
        options["dataset"] = list(DEFAULT_DATASETS)
    state = FuzzState(Path(arguments.state_dir), options)
    if state.resumed:
        for name in _RESUMED_OPTIONS:  # what the run was started with
            setattr(arguments, name, state.options[name])
        print(f"fuzz: resuming {arguments.state_dir} after {state.execs:,} executions, {len(state.buckets)} buckets",
              file=sys.stderr)
    server = server_identity()
    if state.resumed and (warning := changed_server_warning(Path(arguments.state_dir), state.server, server)):
        print(warning, file=sys.stderr)
    if state.server is None:
        state.server = server  # the server its buckets were first signed by
    benchmarks = Benchmarks(state.options["benchmark"], state.options["dataset"], state.options["generator_seeds"])
    state.save()

    from tqdm import tqdm

    progress = tqdm(total=arguments.execs or None, unit="exec", file=sys.stderr, dynamic_ncols=True,
                    disable=None) if arguments.progress else None  # None: shown on a terminal

    def event(text: str) -> None:
        (progress.write if progress is not None else lambda t: print(t, file=sys.stderr))(f"fuzz: {text}")

    fuzzer = Fuzzer(state, benchmarks, arguments, event)
    try:
        fuzzer.run(progress)
    finally:
        if progress is not None:
            progress.close()
    report, png, note = write_report(state, arguments.plot)
    if note:
        print(f"fuzz: {note}", file=sys.stderr)
    summary = {"execs": state.execs, "elapsed_s": round(state.elapsed, 3), "counts": state.counts,
               "buckets": [b.__dict__ for b in sorted(state.buckets.values(), key=lambda b: b.id)],
               "report": str(report), "plot": str(png) if png else None}
    if arguments.json:
        print(json.dumps(summary, indent=2))
    else:
        print(report.read_text(), end="")
    return 0
