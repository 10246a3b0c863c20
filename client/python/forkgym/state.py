"""``CompilerEnvState``: an episode as a CSV row, and its reader and writer.

The format is CompilerGym's, header ``benchmark,reward,walltime,commandline``,
with a fifth column, ``benchmark_hash``: the content hash of the benchmark the
episode ran (the server's; ``validate()`` refuses to replay a state on
content that has changed since). The reward may be empty; CompilerGym's
four-column files read as states without a hash. Two states are equal when
benchmark and commandline match, rewards agree to 1e-5 and, when both have
one, their benchmark hashes match (walltime is ignored), so a state file
written by one run can be checked against a replay by another.
"""

from __future__ import annotations

import csv
import io
import math
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, TextIO

HEADER = ("benchmark", "reward", "walltime", "commandline", "benchmark_hash")
COMPILERGYM_HEADER = HEADER[:4]


@dataclass(frozen=True)
class CompilerEnvState:
    """What it takes to reproduce an episode: benchmark + commandline (+ the reward it
    got, and the content hash of the benchmark it ran)."""

    benchmark: str
    commandline: str
    walltime: float = 0.0
    reward: float | None = None
    benchmark_hash: str = ""

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CompilerEnvState):
            return NotImplemented
        if self.benchmark != other.benchmark or self.commandline != other.commandline:
            return False
        if self.benchmark_hash and other.benchmark_hash and self.benchmark_hash != other.benchmark_hash:
            return False
        if self.reward is None or other.reward is None:
            return self.reward is None and other.reward is None
        return math.isclose(self.reward, other.reward, rel_tol=1e-5, abs_tol=1e-5)

    def __hash__(self) -> int:
        return hash((self.benchmark, self.commandline))

    def has_reward(self) -> bool:
        return self.reward is not None

    def to_csv(self) -> str:
        """One CSV row (no header, with a trailing newline)."""
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow(self._row())
        return buffer.getvalue()

    def _row(self) -> list[str]:
        reward = "" if self.reward is None else repr(float(self.reward))
        return [self.benchmark, reward, repr(float(self.walltime)), self.commandline, self.benchmark_hash]

    @classmethod
    def from_csv(cls, row: str | list[str]) -> CompilerEnvState:
        """Parses one row (a string or split fields): 5 fields, or CompilerGym's 4."""
        fields = next(csv.reader([row])) if isinstance(row, str) else list(row)
        if len(fields) not in (4, 5):
            raise ValueError(
                f"a state row has 5 fields ({','.join(HEADER)}) or CompilerGym's first 4, got {len(fields)}: {row!r}"
            )
        benchmark, reward, walltime, commandline = fields[:4]
        return cls(
            benchmark=benchmark,
            reward=float(reward) if reward.strip() else None,
            walltime=float(walltime) if walltime.strip() else 0.0,
            commandline=commandline,
            benchmark_hash=fields[4].strip() if len(fields) == 5 else "",
        )


class CompilerEnvStateWriter:
    """Writes states as CSV (with the header first, unless ``header=False``)."""

    def __init__(self, f: TextIO, header: bool = True) -> None:
        self._writer = csv.writer(f, lineterminator="\n")
        self._f = f
        self._pending_header = header

    def write_state(self, state: CompilerEnvState, flush: bool = False) -> None:
        if self._pending_header:
            self._writer.writerow(HEADER)
            self._pending_header = False
        self._writer.writerow(state._row())
        if flush:
            self._f.flush()

    def __enter__(self) -> CompilerEnvStateWriter:
        return self

    def __exit__(self, *args: object) -> None:
        self._f.flush()


class CompilerEnvStateReader:
    """Iterates the states of a CSV file; the header row is optional and blank lines are skipped."""

    def __init__(self, f: Iterable[str]) -> None:
        self._f = f

    def __iter__(self) -> Iterator[CompilerEnvState]:
        for fields in csv.reader(self._f):
            if not fields or all(not f.strip() for f in fields):
                continue
            if tuple(f.strip() for f in fields) in (HEADER, COMPILERGYM_HEADER):
                continue
            yield CompilerEnvState.from_csv(fields)

    @staticmethod
    def read_paths(paths: Iterable[str]) -> Iterator[CompilerEnvState]:
        """States from files, ``-`` meaning standard input."""
        for path in paths:
            if path == "-":
                yield from CompilerEnvStateReader(sys.stdin)
            else:
                with open(path, newline="") as f:
                    yield from CompilerEnvStateReader(f)


def read_states(f: IO[str]) -> list[CompilerEnvState]:
    return list(CompilerEnvStateReader(f))
