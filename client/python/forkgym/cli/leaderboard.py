"""``forkgym leaderboard``: CompilerGym's llvm-ic-v0 leaderboard protocol for a policy.

The protocol (CompilerGym's ``leaderboard/llvm_instcount``): for every
benchmark of a dataset (cbench-v1 by default), run the policy on an
``llvm-ic-v0`` episode and record its wall time; replay every resulting
state in a fresh worker and check its reward (a result that does not
validate is reported and scored as -Oz would be: a ratio of 1, as
CompilerGym's harness refuses it); score = geometric mean over the
benchmarks of the instruction count after ``-Oz`` over the policy's
(> 1: smaller than ``-Oz``), beside the mean wall time.

The policy is a search strategy (greedy, random, beam, with ``search``'s
options) or your callable (``--policy MODULE:CALLABLE``: ``policy(env)``
steps an env reset to the benchmark, CompilerGym's signature). The result
is a table (or ``--json``), the states (``--output``), and a plot (``--plot
FILE.png``: per-benchmark ratios and the geomean; needs the ``plots`` extra,
``pip install 'forkgym[plots]'``, for matplotlib).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from typing import Any

from forkgym.cli.output import add_json_flag, add_progress_flag, format_table, geomean, note, print_json
from forkgym.cli.search import plan, run_all, write_states
from forkgym.cli.strategies import STRATEGIES

EPILOG = """examples:
  forkgym leaderboard --strategy greedy                       cbench-v1, as CompilerGym's leaderboard
  forkgym leaderboard --policy mypolicies:ppo --plot ppo.png benchmark://forkgym-v0
  forkgym leaderboard --strategy random --time-budget 60 gcc-c-torture-v0 --sample 20 --seed 1
"""

REWARD = "IrInstructionCountOz"  # the protocol's (llvm-ic-v0's)
ENV_ID = "llvm-ic-v0"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("datasets", nargs="*", default=["benchmark://cbench-v1"], metavar="DATASET",
                        help="datasets or benchmark URIs (default benchmark://cbench-v1, the leaderboard's)")
    parser.add_argument("--strategy", choices=[s for s in STRATEGIES if s != "policy"], default=None,
                        help="the search strategy as the policy (default greedy)")
    parser.add_argument("--policy", metavar="MODULE:CALLABLE", help="your policy: policy(env) steps a reset env")
    parser.add_argument("--steps", type=int, default=100, help="greedy and beam: step cap; random: episode length")
    parser.add_argument("--episodes", type=int, default=100, help="random: episodes per benchmark")
    parser.add_argument("--beam-width", type=int, default=4)
    parser.add_argument("--time-budget", type=float, metavar="SECONDS", help="per benchmark")
    parser.add_argument("--step-timeout", type=float, default=60.0, metavar="SECONDS")
    parser.add_argument("--jobs", "-j", type=int, default=1, help="benchmarks at once, and forks at once inside each")
    parser.add_argument("--sample", type=int, metavar="N", help="N benchmarks drawn from each dataset")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-prune", dest="prune", action="store_false", help="keep passes that change nothing")
    parser.add_argument("--output", "-o", metavar="CSV", help="write the states here")
    parser.add_argument("--plot", metavar="PNG", help="draw the per-benchmark ratios (needs forkgym[plots])")
    add_json_flag(parser)
    add_progress_flag(parser)


def require_matplotlib() -> Any:
    """matplotlib's pyplot on the Agg backend, or an ImportError naming the extra."""
    try:
        import matplotlib
    except ImportError as e:
        raise ImportError("plots need matplotlib, which forkgym's optional 'plots' extra installs: "
                          "pip install 'forkgym[plots]' (or pip install matplotlib)") from e
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot(rows: list[dict[str, Any]], score: float, title: str, path: str) -> None:
    """A bar per benchmark (its ratio to -Oz, invalid ones hatched), the -Oz line and the geomean."""
    plt = require_matplotlib()
    names = [r["benchmark"].split("://", 1)[-1] for r in rows]
    ratios = [r["ratio"] for r in rows]
    figure, axes = plt.subplots(figsize=(max(7.0, 0.45 * len(rows) + 2), 5.0))
    bars = axes.bar(range(len(rows)), ratios, color=["tab:blue" if r["valid"] else "tab:red" for r in rows])
    for bar, r in zip(bars, rows):
        if not r["valid"]:
            bar.set_hatch("//")
    axes.axhline(1.0, color="black", linewidth=1, label="-Oz")
    if math.isfinite(score):
        axes.axhline(score, color="tab:green", linestyle="--", label=f"geomean {score:.3f}x")
    axes.set_xticks(range(len(rows)), names, rotation=60, ha="right", fontsize=8)
    axes.set_ylabel("instructions after -Oz / after the policy")
    axes.set_title(title, fontsize=10)
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def run(arguments: argparse.Namespace) -> int:
    import forkgym
    from forkgym.validate import validate_states

    if arguments.plot:
        require_matplotlib()  # before hours of search, not after
    arguments.reward = REWARD
    uris, config, outer, _ = plan(arguments, arguments.datasets)
    policy_name = arguments.policy or config.strategy
    started = time.monotonic()
    results = run_all(uris, config, outer, arguments.progress)
    states = [r.state for r in results if not isinstance(r, str)]
    with forkgym.make(ENV_ID) as env:
        checks = {v.state.benchmark: v for v in validate_states(states, env, jobs=arguments.jobs)} if states else {}
    walltime = time.monotonic() - started

    rows: list[dict[str, Any]] = []
    for uri, r in zip(uris, results):
        if isinstance(r, str):
            rows.append({"benchmark": uri, "valid": False, "ratio": 1.0, "walltime": None, "error": r,
                         "passes": 0, "reward": None})
            continue
        check = checks.get(r.state.benchmark)
        valid = check is not None and check.okay() and check.reward_validated
        rows.append({"benchmark": uri, "valid": valid, "ratio": r.vs_oz if valid and r.vs_oz else 1.0,
                     "walltime": r.walltime, "reward": r.reward, "passes": len(r.actions),
                     "oz_cost": r.oz_cost, "final_cost": r.final_cost, "commandline": r.commandline,
                     "error": "" if valid else (check.error_details if check is not None else "not validated")})
    score = geomean(row["ratio"] for row in rows)
    times = [row["walltime"] for row in rows if row["walltime"] is not None]
    mean_time = statistics.fmean(times) if times else math.nan
    invalid = sum(1 for row in rows if not row["valid"])
    if arguments.output:
        write_states(arguments.output, results)
    title = f"llvm-ic-v0: {policy_name} on {', '.join(arguments.datasets)}\ngeomean {score:.3f}x vs -Oz"
    if arguments.plot:
        plot(rows, score, title, arguments.plot)
    if arguments.json:
        print_json({"protocol": ENV_ID, "policy": policy_name, "benchmarks": len(rows),
                    "geomean_vs_oz": score, "mean_walltime": mean_time, "invalid": invalid, "walltime": walltime,
                    "results": rows})
    else:
        table = format_table(
            ("BENCHMARK", "-Oz", "POLICY", "vs -Oz", "PASSES", "SECONDS", "VALIDATED"),
            [(row["benchmark"], f"{row['oz_cost']:,.0f}" if row.get("oz_cost") is not None else "-",
              f"{row['final_cost']:,.0f}" if row.get("final_cost") is not None else "-", f"{row['ratio']:.3f}x",
              row["passes"], "-" if row["walltime"] is None else f"{row['walltime']:.1f}",
              "yes" if row["valid"] else f"NO: {row['error'][:120]}") for row in rows],
            right=(1, 2, 3, 4, 5))
        sys.stdout.write(table)
        sys.stdout.write(f"\nllvm-ic-v0 leaderboard, policy {policy_name}: geomean {score:.3f}x vs -Oz over "
                         f"{len(rows)} benchmarks ({invalid} not validated, scored 1.000x), mean wall time "
                         f"{mean_time:.2f} s per benchmark; {walltime:.1f} s in all\n")
    if arguments.plot:
        note(f"wrote the plot to {arguments.plot}")
    return 0 if invalid == 0 else 1
