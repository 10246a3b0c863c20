"""``python -m forkgym <command>``: the Python package's command line.

Commands:
    validate [--env ID] [--jobs N] FILE...|-   replay and check state CSV files
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "validate":
        from forkgym.validate import main as validate

        return validate(rest)
    print(f"forkgym: unknown command '{command}'\n\n{__doc__.strip()}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
