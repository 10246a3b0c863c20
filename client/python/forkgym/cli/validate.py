"""``forkgym validate``: replay and check state CSV files (:mod:`forkgym.validate`,
which parses its own arguments; also installed as ``forkgym-validate``)."""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str]) -> int:
    from forkgym.validate import main as validate

    return validate(list(argv))
