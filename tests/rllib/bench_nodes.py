"""Env steps/s of PPO (three env runners, RLlib's new API stack) on one Ray
node beside two nodes of this machine (reported, not asserted):

    .venv-rllib/bin/python tests/rllib/bench_nodes.py [ITERATIONS [CPUS,PER,NODE]]
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import ppo_config, start_cluster  # noqa: E402


def main() -> None:
    import ray
    from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED

    import forkgym.rllib  # noqa: F401

    iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    if len(sys.argv) < 3:
        # One driver process per cluster: Ray's env registry is keyed by the
        # first job of a process, so a second cluster would not find the ids.
        for layout in ("3", "2,1"):
            subprocess.run([sys.executable, __file__, str(iterations), layout], check=True)
        return
    for cpus in ([int(n) for n in sys.argv[2].split(",")],):
        base = Path(tempfile.mkdtemp(prefix="fgbench-"))
        sockets = base / "sockets"
        sockets.mkdir(mode=0o700)
        cluster = start_cluster([base / f"node{i}" for i in range(len(cpus))], cpus)
        try:
            ray.init(address=cluster.address)
            algo = ppo_config(str(sockets), num_env_runners=3).build_algo()
            algo.train()  # runners warm: their zygote started, benchmarks loaded
            start, steps = time.monotonic(), 0
            for _ in range(iterations):
                steps += int(algo.train()[ENV_RUNNER_RESULTS][NUM_ENV_STEPS_SAMPLED])
            rate = steps / (time.monotonic() - start)
            algo.stop()
        finally:
            ray.shutdown()
            cluster.shutdown()
            shutil.rmtree(base, ignore_errors=True)
        print(f"{len(cpus)} node(s), CPUs {cpus}, 3 env runners: {rate:.1f} env steps/s "
              f"({steps} steps, {iterations} iterations)", flush=True)


if __name__ == "__main__":
    main()
