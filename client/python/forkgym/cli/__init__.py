"""``python -m forkgym <command>`` (and the ``forkgym`` console script).

One module per command in this package. A command is one row of
:data:`COMMANDS` (name → module, one-line help); its module defines either

- ``configure(parser)`` (add its arguments to an argparse parser) and
  ``run(arguments) -> int`` (the exit status), or
- ``main(argv) -> int``, for a command that parses its own arguments
  (``validate``, also installed as ``forkgym-validate``).

Modules are imported only when their command runs, so ``forkgym --help``
and each command start fast. Shared output (``--json``, tables, progress
bars on stderr) is in :mod:`forkgym.cli.output`. A :class:`ForkgymError`,
``LookupError``, ``ValueError``, ``OSError`` or ``ImportError`` (a missing
optional extra) escaping ``run`` is printed as
``forkgym COMMAND: message`` with exit status 1; bad arguments exit with 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# name: (module, one-line help). Add a command with one row here.
COMMANDS: dict[str, tuple[str, str]] = {
    "describe": ("forkgym.cli.describe", "backends, actions, observation and reward spaces, datasets, sandbox"),
    "search": ("forkgym.cli.search", "search pass orderings (random, greedy, beam, your policy); write states"),
    "leaderboard": ("forkgym.cli.leaderboard", "CompilerGym's llvm-ic-v0 leaderboard protocol for a policy"),
    "validate": ("forkgym.cli.validate", "replay and check state CSV files"),
    "datasets": ("forkgym.cli.datasets", "list, install, uninstall and show datasets"),
    "fuzz": ("forkgym.cli.fuzz", "fuzz pass orderings: classified, bucketed, reduced failures, a report"),
    "reduce": ("forkgym.cli.reduce", "the smallest pass sequence and IR that still fail the same way"),
    "determinism": ("forkgym.cli.determinism", "replay states in fresh server processes; report where they diverge"),
    "system": ("forkgym.system", "the system libraries and tools forkgym needs, found or missing"),
}


def _usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = [f"  {name.ljust(width)}  {text}" for name, (_, text) in COMMANDS.items()]
    return ("usage: forkgym COMMAND [ARGUMENTS]   (or python -m forkgym COMMAND ...)\n\n"
            "forkgym's command line. Commands:\n" + "\n".join(lines) +
            "\n\n`forkgym COMMAND --help` describes a command's arguments.\n")


def command_parser(name: str) -> argparse.ArgumentParser:
    """The argparse parser of command ``name`` (for commands with ``configure``)."""
    module = importlib.import_module(COMMANDS[name][0])
    parser = argparse.ArgumentParser(prog=f"forkgym {name}", description=COMMANDS[name][1],
                                     allow_abbrev=False, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=getattr(module, "EPILOG", None))
    module.configure(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        if argv and argv[0] in ("-h", "--help"):
            sys.stdout.write(_usage())
            return 0
        if argv:
            sys.stderr.write(_usage())
            print(f"\nforkgym: unknown command '{argv[0]}'", file=sys.stderr)
        else:
            sys.stdout.write(_usage())
        return 2
    name = argv[0]
    module = importlib.import_module(COMMANDS[name][0])
    if hasattr(module, "main"):
        return int(module.main(argv[1:]) or 0)
    arguments = command_parser(name).parse_args(argv[1:])
    from forkgym.errors import ForkgymError

    try:
        return int(module.run(arguments) or 0)
    except BrokenPipeError:
        # The reader went away (`forkgym describe --json | head`): nothing more to say.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (ForkgymError, LookupError, ValueError, OSError, ImportError) as e:
        print(f"forkgym {name}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"forkgym {name}: interrupted", file=sys.stderr)
        return 130
