"""``python -m forkgym <command>``: the command line, in :mod:`forkgym.cli`
(also installed as the ``forkgym`` console script). ``python -m forkgym``
lists the commands; ``python -m forkgym COMMAND --help`` describes one."""

from __future__ import annotations

import sys

from forkgym.cli import main

if __name__ == "__main__":
    sys.exit(main())
