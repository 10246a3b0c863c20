"""The RLlib suite runs in its own virtual environment, .venv-rllib (Ray
pins its own gymnasium), made by scripts/setup: `.venv-rllib/bin/python -m
pytest tests/rllib`. Servers are the installed package's (product build)."""

from __future__ import annotations

import os
import select
import socket
from pathlib import Path
from typing import Any

# Bounds each wait for a process to exit: a hang fails the test instead of the run.
EXIT_GUARD_S = 90


def wait_exited(pid: int, guard: float = EXIT_GUARD_S) -> bool:
    """True once process `pid` (not necessarily our child) has exited, within `guard` seconds."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], guard)[0])
    finally:
        os.close(fd)


def zygotes_under(directory: str) -> dict[str, set[int]]:
    """forkgym-server zygotes serving a socket under `directory`: socket -> pids.
    A zygote's workers are forks of it (the same command line): only the
    process whose parent is not one of them counts."""
    lines: dict[int, tuple[int, list[str]]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if argv and argv[0].endswith("forkgym-server") and "--socket" in argv:
            path = argv[argv.index("--socket") + 1]
            if path.startswith(directory):
                lines[int(entry)] = (ppid, argv)
    zygotes: dict[str, set[int]] = {}
    for pid, (ppid, argv) in lines.items():
        if ppid in lines:
            continue  # a worker (or the zygote's namespace reaper)
        zygotes.setdefault(argv[argv.index("--socket") + 1], set()).add(pid)
    return zygotes


# Ray on loopback only: with this unset, Ray replaces 127.0.0.1 with the
# machine's routable address. Its temp files under this run's directory.
# Set before anything imports ray.
import atexit  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402

os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
RAY_TMPDIR = tempfile.mkdtemp(prefix="fgray-")
os.makedirs(os.path.join(RAY_TMPDIR, "ray"))
os.environ["RAY_TMPDIR"] = RAY_TMPDIR
atexit.register(shutil.rmtree, RAY_TMPDIR, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_cluster(temp_dirs: list[Path], cpus: list[int]) -> Any:
    """A Ray cluster of len(cpus) nodes on this machine (the first the head),
    each with its CPUs and temp dir (ray.cluster_utils.Cluster)."""
    from ray.cluster_utils import Cluster

    def agent_ports() -> dict[str, int]:
        # Fixed ports: else a raylet waits for its agents' port files, and
        # gives up under load.
        return {name: free_port() for name in ("metrics_export_port", "dashboard_agent_listen_port",
                                               "metrics_agent_port", "runtime_env_agent_port")}

    cluster = Cluster(initialize_head=True, head_node_args=dict(
        num_cpus=cpus[0], temp_dir=str(temp_dirs[0]), include_dashboard=False, **agent_ports()))
    try:
        for directory, n in zip(temp_dirs[1:], cpus[1:]):
            cluster.add_node(num_cpus=n, temp_dir=str(directory), **agent_ports())
    except BaseException:
        cluster.shutdown()
        raise
    return cluster


def ppo_config(socket_dir: str, num_env_runners: int) -> Any:
    """PPO on the new API stack on llvm-autophase-ic-v0, by its plain id,
    small enough for 2 cores: one CPU per env runner, one env each."""
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig

    return (
        PPOConfig()
        .environment("forkgym/llvm-autophase-ic-v0", env_config={
            "benchmarks": "forkgym-v0",
            "max_episode_steps": 8,
            "socket_dir": socket_dir,
            "idle_exit_seconds": 2,
        })
        .env_runners(num_env_runners=num_env_runners, num_envs_per_env_runner=1, num_cpus_per_env_runner=1,
                     rollout_fragment_length=16, sample_timeout_s=300)
        .learners(num_learners=0)
        .training(train_batch_size_per_learner=16 * num_env_runners, minibatch_size=24, num_epochs=1)
        .rl_module(model_config=DefaultModelConfig(fcnet_hiddens=[16]))
        .fault_tolerance(restart_failed_env_runners=True)
    )
