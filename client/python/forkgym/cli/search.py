"""``forkgym search``: search pass orderings for benchmarks, datasets or a sample of one.

For each benchmark, a strategy (:mod:`forkgym.cli.strategies`: greedy,
random, beam, or your policy) maximises the return in a reward space; the
passes that change nothing are pruned; the result is written as a state CSV
(``python -m forkgym validate`` replays it) and summarised in a table with the
geometric mean against ``-Oz``.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections.abc import Iterator
from typing import Any

from forkgym.cli.output import (
    add_json_flag,
    add_progress_flag,
    format_table,
    geomean,
    note,
    print_json,
    progress,
)
from forkgym.cli.strategies import STRATEGIES, SearchConfig, Searcher, SearchResult, load_policy

EPILOG = """benchmarks:
  benchmark://forkgym-v0/crc32, generator://csmith-v0/3, file:///abs/prog.c   one benchmark
  benchmark://cbench-v1, cbench-v1, generator://llvm-stress-v0                  a dataset (every benchmark,
                                                                                or --sample N of them)
examples:
  forkgym search --strategy greedy --jobs 2 benchmark://forkgym-v0/crc32
  forkgym search --strategy random --episodes 50 --steps 40 --time-budget 60 cbench-v1 --output states.csv
  forkgym search --strategy beam --beam-width 4 --reward ObjectTextSizeOz generator://csmith-v0 --sample 5 --seed 1
  forkgym search --policy mypolicies:ppo benchmark://forkgym-v0/small
  forkgym validate states.csv
"""

# Beyond this many benchmarks a dataset is sampled by drawing, not by listing it.
_LISTABLE = 100_000


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("benchmarks", nargs="+", metavar="BENCHMARK", help="benchmark URIs or dataset names")
    parser.add_argument("--strategy", choices=STRATEGIES, default=None,
                        help="greedy (default), random, beam, or policy (implied by --policy)")
    parser.add_argument("--policy", metavar="MODULE:CALLABLE",
                        help="your policy: called as policy(env) on an env reset to the benchmark; it steps it")
    parser.add_argument("--reward", default="IrInstructionCountOz",
                        help="the objective: a reward space (IrInstructionCountOz, ObjectTextSizeOz, Runtime "
                             "on runnable benchmarks, ...); default IrInstructionCountOz")
    parser.add_argument("--steps", type=int, default=100,
                        help="greedy and beam: the step cap (reported when hit); random: an episode's length "
                             "(default 100)")
    parser.add_argument("--episodes", type=int, default=100, help="random: episodes per benchmark (default 100)")
    parser.add_argument("--beam-width", type=int, default=4, help="beam: sequences kept per length (default 4)")
    parser.add_argument("--time-budget", type=float, metavar="SECONDS",
                        help="per benchmark: stop searching and keep the best so far")
    parser.add_argument("--step-timeout", type=float, default=60.0, metavar="SECONDS",
                        help="a step taking longer is killed and counted as a failure (default 60)")
    parser.add_argument("--jobs", "-j", type=int, default=1,
                        help="benchmarks searched at once, and forks evaluated at once inside each search "
                             "(default 1)")
    parser.add_argument("--no-share-cores", dest="share_cores", action="store_false",
                        help="with --jobs N inside a search, do not keep each of its N threads and the forks it "
                             "steps to a core of their own (by default they are, on N of this process's "
                             "allowed cores: run searches at once on one machine each under its own taskset, "
                             "or with this flag)")
    parser.add_argument("--sample", type=int, metavar="N", help="N benchmarks drawn from each dataset given")
    parser.add_argument("--seed", type=int, default=0, help="for --sample and the random strategy (default 0)")
    parser.add_argument("--no-prune", dest="prune", action="store_false",
                        help="keep passes that change nothing (pruning replays without each pass)")
    parser.add_argument("--check-opt", action="store_true",
                        help="also run each result's command line with the server's opt on the initial bitcode "
                             "and check it gives the episode's IR hash")
    parser.add_argument("--output", "-o", metavar="CSV", help="write the states here (default: only the table)")
    add_json_flag(parser)
    add_progress_flag(parser)


def _is_dataset(uri: str) -> bool:
    scheme, _, rest = uri.partition("://")
    return scheme in ("benchmark", "generator") and "/" not in rest.strip("/")


def benchmark_uris(names: list[str], sample: int | None, seed: int) -> Iterator[str]:
    """The benchmarks ``names`` stand for: URIs as they are; a dataset's every
    benchmark, or ``sample`` of them drawn with ``seed``."""
    from forkgym.benchmarks import canonical_uri
    from forkgym.datasets import Datasets

    datasets = Datasets()
    for name in names:
        uri = canonical_uri(name)
        if not _is_dataset(uri):
            if sample is not None:
                raise ValueError(f"--sample draws from datasets; {uri} is one benchmark")
            yield uri
            continue
        dataset = datasets[uri]
        if sample is None:
            if dataset.kind == "generator":
                raise ValueError(f"{dataset.name} is unbounded: give --sample N, or URIs such as {dataset.name}/1")
            yield from (canonical_uri(u) for u in dataset.benchmark_uris())
            continue
        if sample < 1:
            raise ValueError("--sample is at least 1")
        if dataset.kind != "generator" and dataset.size <= _LISTABLE:
            uris = [canonical_uri(u) for u in dataset.benchmark_uris()]
            if sample > len(uris):
                raise ValueError(f"--sample {sample}: {dataset.name} has {len(uris)} benchmarks")
            yield from random.Random(seed).sample(uris, sample)
            continue
        import numpy as np

        rng = np.random.default_rng(seed)
        drawn: list[str] = []
        while len(drawn) < sample:
            uri = canonical_uri(dataset.random_benchmark(rng))
            if uri not in drawn:
                drawn.append(uri)
        yield from drawn


def config_from(arguments: argparse.Namespace, jobs_inside: int) -> SearchConfig:
    strategy = arguments.strategy or ("policy" if arguments.policy else "greedy")
    if arguments.policy and strategy != "policy":
        raise ValueError(f"--policy runs your policy; it does not combine with --strategy {strategy}")
    return SearchConfig(
        strategy=strategy, reward=arguments.reward, steps=arguments.steps, episodes=arguments.episodes,
        beam_width=arguments.beam_width, time_budget=arguments.time_budget, step_timeout=arguments.step_timeout,
        jobs=jobs_inside, share_cores=getattr(arguments, "share_cores", True), seed=arguments.seed,
        prune=arguments.prune,
        check_opt=getattr(arguments, "check_opt", False),
        policy=load_policy(arguments.policy) if arguments.policy else None)


def split_jobs(jobs: int, benchmarks: int) -> tuple[int, int]:
    """``--jobs`` as (benchmarks at once, forks at once inside each): benchmarks
    first, the rest inside; their product never exceeds ``jobs``."""
    outer = max(1, min(jobs, benchmarks))
    return outer, max(1, jobs // outer)


def plan(arguments: argparse.Namespace, names: list[str]) -> tuple[list[str], SearchConfig, int, int]:
    """What search and leaderboard run: the benchmarks ``names`` give (each once,
    in order), the search configuration, and ``--jobs`` split into benchmarks
    at once and forks at once inside each (:func:`split_jobs`)."""
    uris = list(dict.fromkeys(benchmark_uris(names, arguments.sample, arguments.seed)))
    if not uris:
        raise ValueError("no benchmarks to search")
    if arguments.jobs < 1:
        raise ValueError("--jobs is at least 1")
    outer, inner = split_jobs(arguments.jobs, len(uris))
    return uris, config_from(arguments, inner), outer, inner


def run_all(uris: list[str], config: SearchConfig, outer: int, show_progress: bool) -> list[SearchResult | str]:
    """Searches every URI (``outer`` at a time); a benchmark that could not be
    searched gives its error text in its place."""
    from concurrent.futures import ThreadPoolExecutor

    from forkgym.errors import ForkgymError

    bar = progress(len(uris), f"{config.strategy} search", show_progress, unit="benchmark")

    def one(uri: str) -> SearchResult | str:
        with Searcher(config) as searcher:
            try:
                return searcher.search(uri)
            except (ForkgymError, LookupError, ValueError, RuntimeError) as e:
                return f"{type(e).__name__}: {e}"
            finally:
                bar.update(1)

    try:
        if outer == 1:
            return [one(u) for u in uris]
        with ThreadPoolExecutor(outer, thread_name_prefix="forkgym-benchmark") as pool:
            return list(pool.map(one, uris))
    finally:
        bar.close()


def _number(value: float | None) -> str:
    """A cost: counts and bytes as integers, seconds (Runtime) with 4 significant digits."""
    if value is None:
        return "-"
    return f"{value:,.0f}" if value == int(value) or abs(value) >= 1000 else f"{value:.4g}"


def summary(results: list[tuple[str, SearchResult | str]]) -> tuple[str, float]:
    """The table (one row per benchmark, then the geomean) and the geomean vs -Oz."""
    rows = []
    ratios = []
    for uri, r in results:
        if isinstance(r, str):
            rows.append((uri, "-", "-", "-", "-", "-", "-", "-", f"error: {r}"))
            continue
        ratio = r.vs_oz
        if ratio is not None:
            ratios.append(ratio)
        stop = r.stop + (f"; {len(r.failures)} failed steps" if r.failures else "")
        if r.opt_check is not None:
            stop += f"; opt: {r.opt_check}"
        rows.append((uri, _number(r.start_cost), _number(r.oz_cost), _number(r.final_cost),
                     "-" if ratio is None else f"{ratio:.3f}x", f"{r.reward:.4f}",
                     f"{len(r.actions)}/{len(r.found)}", f"{r.walltime:.1f}", stop))
    mean = geomean(ratios)
    rows.append(("geomean", "", "", "", "-" if mean != mean else f"{mean:.3f}x", "", "", "", ""))
    table = format_table(("BENCHMARK", "START", "-Oz", "BEST", "vs -Oz", "RETURN", "PASSES", "SECONDS", "STOPPED"),
                         rows, right=(1, 2, 3, 4, 5, 6, 7))
    return table, mean


def result_json(r: SearchResult | str, uri: str) -> dict[str, Any]:
    if isinstance(r, str):
        return {"benchmark": uri, "error": r}
    return {"benchmark": r.benchmark, "reward": r.reward, "actions": r.actions, "flags": r.flags,
            "found": r.found, "pruned": len(r.found) - len(r.actions), "commandline": r.commandline,
            "stop": r.stop, "walltime": r.walltime, "phases": r.phases, "steps": r.steps, "cached_steps": r.cached_steps, "start_cost": r.start_cost,
            "oz_cost": r.oz_cost, "final_cost": r.final_cost, "vs_oz": r.vs_oz,
            "failures": [f.__dict__ for f in r.failures], "opt_check": r.opt_check,
            "state": r.state.to_csv().rstrip("\n") if r.state is not None else None}


def write_states(path: str, results: list[SearchResult | str]) -> int:
    from forkgym.state import CompilerEnvStateWriter

    written = 0
    with open(path, "w", newline="") as f, CompilerEnvStateWriter(f) as writer:
        for r in results:
            if not isinstance(r, str) and r.state is not None:
                writer.write_state(r.state)
                written += 1
    return written


def run(arguments: argparse.Namespace) -> int:
    uris, config, outer, inner = plan(arguments, arguments.benchmarks)
    started = time.monotonic()
    results = run_all(uris, config, outer, arguments.progress)
    walltime = time.monotonic() - started
    if arguments.output:
        written = write_states(arguments.output, results)
    table, mean = summary(list(zip(uris, results)))
    if arguments.json:
        print_json({"strategy": config.strategy, "reward": config.reward, "jobs": arguments.jobs,
                    "benchmarks_at_once": outer, "forks_at_once": inner, "walltime": walltime,
                    "geomean_vs_oz": None if mean != mean else mean,
                    "results": [result_json(r, u) for u, r in zip(uris, results)]})
    else:
        sys.stdout.write(table)
        for r in results:
            if not isinstance(r, str) and r.failures:
                first = r.failures[0]
                note(f"{r.benchmark}: {len(r.failures)} steps failed; first: {first.outcome}: "
                     f"{first.message.strip()[:200]} (reproduce: {first.reproducer})")
        sys.stdout.write(f"\n{len(uris)} benchmarks, {config.strategy}, {config.reward}, --jobs {arguments.jobs} "
                         f"({outer} benchmarks x {inner} forks at once), {walltime:.1f} s\n")
    if arguments.output:
        from forkgym.cli.strategies import objective

        env_id = objective(config.reward).env_id
        check = f"forkgym validate --env {env_id} {arguments.output}" if env_id else \
            f"forkgym validate {arguments.output} (the rewards are {config.reward}'s)"
        note(f"wrote {written} states to {os.path.abspath(arguments.output)}; check them: {check}")
    if arguments.check_opt and not arguments.json:
        for r in results:
            if not isinstance(r, str):
                sys.stdout.write(f"{r.benchmark}: {r.commandline}\n")
    failed = [r for r in results if isinstance(r, str) or (r.opt_check or "").startswith("MISMATCH")]
    return 1 if failed else 0
