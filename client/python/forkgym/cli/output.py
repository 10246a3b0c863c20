"""What every command shares for output: ``--json``, plain tables, progress bars.

Results go to stdout (a table, or one JSON document with ``--json``);
progress bars and notes go to stderr, so ``forkgym search --json ... | jq``
and redirections keep only the result.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterable, Sequence
from typing import Any


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the result as one JSON document on stdout")


def add_progress_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-progress", dest="progress", action="store_false",
                        help="no progress bars on stderr (they are shown when stderr is a terminal)")


def print_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, default=_jsonable)
    sys.stdout.write("\n")


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def format_table(header: Sequence[str], rows: Iterable[Sequence[Any]], right: Sequence[int] = ()) -> str:
    """A plain table: columns padded to their widest cell, two spaces apart;
    the columns whose indices are in ``right`` are right-aligned (numbers)."""
    cells = [[str(c) for c in header]] + [[("" if c is None else str(c)) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = []
    for row in cells:
        padded = [cell.rjust(widths[i]) if i in right else cell.ljust(widths[i]) for i, cell in enumerate(row)]
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines) + "\n"


def print_table(header: Sequence[str], rows: Iterable[Sequence[Any]], right: Sequence[int] = ()) -> None:
    sys.stdout.write(format_table(header, rows, right))


def progress(total: int | None = None, description: str = "", enabled: bool | None = True, unit: str = "it"):
    """A tqdm bar on stderr; shown only when ``enabled`` and stderr is a terminal
    (``enabled=None`` leaves the decision to tqdm)."""
    from tqdm import tqdm

    disable = not enabled or not sys.stderr.isatty() if enabled is not None else None
    return tqdm(total=total, desc=description, file=sys.stderr, disable=disable, unit=unit, leave=False,
                dynamic_ncols=True)


def geomean(values: Iterable[float]) -> float:
    """The geometric mean of positive values (nan when there are none or one is not positive)."""
    values = list(values)
    if not values or any(not v > 0 for v in values):
        return math.nan
    return math.exp(sum(math.log(v) for v in values) / len(values))


def note(text: str) -> None:
    """A line for the user on stderr (keeps stdout for the result)."""
    print(text, file=sys.stderr, flush=True)
