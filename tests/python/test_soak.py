"""The short soak: 200 episodes (random benchmarks, actions, forks, injected
crashes) on 2 concurrent clients of one zygote, bounded to 60 s; nothing may
leak. The long run is `scripts/soak --episodes 10000 --clients 4`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_short_soak_contains_every_crash_and_leaks_nothing() -> None:
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "soak.py"), "--episodes", "200", "--clients", "2",
                          "--max-seconds", "60", "--generated", "2"],
                         capture_output=True, text=True, timeout=600)
    print(run.stdout)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "processes alive at end none; files left none" in run.stdout
