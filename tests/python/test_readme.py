"""The README's "for CompilerGym users" example runs as written (with a real path)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "client" / "python" / "README.md"


def _block_after(heading: str) -> str:
    text = README.read_text()
    section = text[text.index(heading):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_compilergym_port_example_runs(data_dir, capsys) -> None:
    code = _block_after("## For CompilerGym users").replace("/abs/path/to/qsort.c", str(data_dir / "small.c"))
    exec(compile(code, str(README), "exec"), {})
    assert capsys.readouterr().out.strip().endswith("True")


def test_quick_start_and_vector_examples_run() -> None:
    for heading in ("## Quick start", "## Vector environments", "### Asynchronous: an env pool"):
        namespace: dict = {}
        exec(compile("import forkgym\n" + _block_after(heading), str(README), "exec"), namespace)
        for name in ("envs", "pool"):
            if name in namespace:
                namespace[name].close()
