"""``forkgym determinism``: does a state come out the same in every server process?

Every worker is a fork of its zygote, so within one zygote a result that
depends on heap addresses (NewGVN's use-list order, a pointer-keyed map's
iteration order) takes one or a few values and hides. This command replays
each state of a state CSV (:mod:`forkgym.state`) in N fresh server processes,
each started with ``--perturb-heap SEED`` (a different heap layout, even
with ASLR off), steps them in lockstep and compares the backend's state hash
(LLVM: ``BitcodeSha1``, which covers use-list order) after the benchmark
loads and after every action. A state whose hashes differ is
nondeterministic; the report names the first step and pass where they
diverge, how many different hashes the processes reached there, and whether
``IrSha1`` differs too (if not, only the use-list order does).

The servers are started once and reused for every state. Exit status: 0 when
every state is deterministic, 1 when one is not (or failed to replay).
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

EPILOG = """examples:
  forkgym determinism states.csv --processes 3
  forkgym search ... --states out.csv && forkgym determinism out.csv --json
"""


@dataclass
class DeterminismResult:
    benchmark: str
    commandline: str
    processes: int
    deterministic: bool = False
    divergent_step: int | None = None  # 0: the benchmark as loaded; n: after the n-th action
    divergent_pass: str | None = None
    distinct_hashes: int = 0
    ir_differs: bool | None = None
    hashes: list[str] = field(default_factory=list)  # at the divergent step (or the last), one per process
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        if self.error:
            return f"error  {self.benchmark}  {self.error}"
        if self.deterministic:
            return f"same   {self.benchmark}  {self.processes} processes agree after every step"
        where = "the benchmark as loaded" if self.divergent_step == 0 else \
            f"step {self.divergent_step} ({self.divergent_pass})"
        ir = "" if self.ir_differs is None else ("; the IR differs too" if self.ir_differs else
                                                 "; IrSha1 agrees: only the use-list order differs")
        return (f"DIFFER {self.benchmark}  first at {where}: {self.distinct_hashes} different hashes in "
                f"{self.processes} processes{ir}")


class ProcessSet:
    """N private zygotes of this package's server binary (or ``env``'s), each
    with its own ``--perturb-heap`` seed; closed together."""

    def __init__(self, count: int, seed: int, options: Any = None) -> None:
        from forkgym.server import Server, ServerOptions

        base = options or ServerOptions()
        rng = random.Random(seed)
        self.seeds = [rng.randrange(1, 2**62) for _ in range(count)]
        self.servers = [Server(dataclasses.replace(base, socket_path=None, preload=(),
                                                   extra_args=(*base.extra_args, "--perturb-heap", str(s))))
                        for s in self.seeds]

    def close(self) -> None:
        for server in self.servers:
            server.close()

    def __enter__(self) -> ProcessSet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_state(env: Any, processes: ProcessSet, benchmark: str, actions: Sequence[int],
                commandline: str = "") -> DeterminismResult:
    """Replays ``actions`` on ``benchmark`` in every process of ``processes``
    in lockstep and compares ``env``'s state hash after every step."""
    from forkgym import _forkgym
    from forkgym.benchmarks import session_benchmark
    from forkgym.envs import _reset_native
    from forkgym.outcome import outcome_name

    unwrapped = env.unwrapped
    result = DeterminismResult(benchmark, commandline, len(processes.servers))
    hash_name = unwrapped.state_hash_observation
    if hash_name is None:
        result.error = f"the {unwrapped._backend} backend has no state hash covering use-list order"
        return result
    ir_hash_name = unwrapped.validation_observations(unwrapped.reward_space)[0]
    names = unwrapped.action_space.flags
    natives: list[Any] = []
    try:
        for server in processes.servers:
            native = unwrapped._new_session(server.connection())
            natives.append(native)
            _reset_native(native, *session_benchmark(benchmark))
        for step in range(len(actions) + 1):
            todo = [[] if step == 0 else [actions[step - 1]] for _ in natives]
            replies, interrupt = _forkgym.step_many(natives, todo, [hash_name], [])
            if interrupt is not None:
                raise interrupt
            values = [reply.observations[0] if reply.ok else f"{outcome_name(reply.outcome)}: {reply.message}"
                      for reply in replies]
            result.hashes = [str(v) for v in values]
            if len(set(values)) == 1:
                if not replies[0].ok:
                    result.error = f"replay failed at step {step}: {values[0]}"
                    return result
                continue
            result.divergent_step = step
            result.divergent_pass = names[actions[step - 1]] if step else None
            result.distinct_hashes = len(set(values))
            if ir_hash_name is not None and all(reply.ok for reply in replies):
                observed = [native.step([], [ir_hash_name], []) for native in natives]
                if all(reply.ok for reply in observed):
                    result.ir_differs = len({reply.observations[0] for reply in observed}) > 1
            return result
        result.deterministic = True
        result.distinct_hashes = 1
        return result
    except Exception as e:  # noqa: BLE001 - reported per state, the others go on
        result.error = str(e)
        return result
    finally:
        for native in natives:
            native.close()


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="state CSV files (- for stdin)")
    parser.add_argument("--processes", "-n", type=int, default=3,
                        help="fresh server processes to compare (default 3, at least 2)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the processes' --perturb-heap values (default 0)")
    parser.add_argument("--env", default="llvm-v0", help="the environment (default llvm-v0)")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON document on stdout")


def run(arguments: argparse.Namespace) -> int:
    import json

    import forkgym
    from forkgym.state import CompilerEnvStateReader

    if arguments.processes < 2:
        raise ValueError("--processes must be at least 2: determinism compares processes")
    states = []
    for name in arguments.files:
        if name == "-":
            states.extend(CompilerEnvStateReader(sys.stdin))
        else:
            with open(name) as f:
                states.extend(CompilerEnvStateReader(f))
    results = []
    with forkgym.make(arguments.env) as env, ProcessSet(arguments.processes, arguments.seed,
                                                        env.unwrapped._server.options) as processes:
        for state in states:
            actions = env.action_space.from_string(state.commandline)
            result = check_state(env, processes, state.benchmark, actions, state.commandline)
            results.append(result)
            if not arguments.json:
                print(result, flush=True)
    differ = sum(1 for r in results if not r.deterministic)
    if arguments.json:
        print(json.dumps([r.to_json() for r in results], indent=2))
    else:
        print(f"{len(results) - differ} of {len(results)} states deterministic across {arguments.processes} "
              f"processes (--perturb-heap seeds {', '.join(map(str, processes.seeds))})")
    return 1 if differ else 0
