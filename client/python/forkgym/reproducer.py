"""A failed step's reproducer, picklable.

The extension hands each failed step's reproducer (benchmark, its content
hash, the actions, the exact replay command line) to Python as a native
object, which cannot be pickled or copied. Step infos carry it, and infos
cross processes (gymnasium's ``AsyncVectorEnv``, SB3's ``SubprocVecEnv``)
and are deep-copied (SB3's ``DummyVecEnv``): registered with ``copyreg``, a
native reproducer pickles and copies as this record, with the same fields.
"""

from __future__ import annotations

import copyreg
from dataclasses import dataclass

from forkgym import _forkgym


@dataclass(frozen=True)
class Reproducer:
    benchmark: str
    benchmark_hash: str
    actions: list[int]
    commandline: str

    def __repr__(self) -> str:
        return (f"Reproducer(benchmark='{self.benchmark}', benchmark_hash='{self.benchmark_hash}', "
                f"commandline=\"{self.commandline}\")")


def _as_record(native: _forkgym.Reproducer) -> tuple[type[Reproducer], tuple[str, str, list[int], str]]:
    return Reproducer, (native.benchmark, native.benchmark_hash, list(native.actions), native.commandline)


copyreg.pickle(_forkgym.Reproducer, _as_record)
