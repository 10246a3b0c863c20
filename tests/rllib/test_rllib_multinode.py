"""PPO (RLlib's new API stack) on a two-node Ray cluster on this machine.

The head node (2 CPUs) and a second node (1 CPU, its own temp dir) run
three env runners of one CPU each, so the head has two and the second node
one. The env is named by its plain id, with no creator of the test's own.
Mid-run one of the head's runners is killed (SIGKILL); RLlib restarts it.
The whole run is one fixture; each test asserts one property of it.
"""

from __future__ import annotations

import os
import signal
import time

import pytest

from conftest import RAY_TMPDIR, ppo_config, start_cluster, wait_exited, zygotes_under

# A hang (a runner that never comes back, a cluster that never starts) fails
# the run instead of holding CI: pytest-timeout, setup included.
pytestmark = pytest.mark.timeout(900)

ITERATIONS_BEFORE_KILL = 1
ITERATIONS_AFTER_KILL = 2
# Training goes on until the killed runner is back, at most this many more iterations.
ITERATIONS_TO_RECOVER = 30


def runners(algo) -> list[tuple[int, str]]:
    """(pid, node id) of each remote env runner."""
    import ray

    return algo.env_runner_group.foreach_env_runner(
        lambda runner: (os.getpid(), ray.get_runtime_context().get_node_id()), local_env_runner=False)


def runner_zygotes(algo) -> list[tuple[str, set[int]]]:
    """(node id, the zygote pids its envs use) of each remote env runner."""
    import ray

    return algo.env_runner_group.foreach_env_runner(
        lambda runner: (ray.get_runtime_context().get_node_id(),
                        {env.unwrapped.connection.zygote_pid for env in runner.env.unwrapped.envs}),
        local_env_runner=False)


def env_steps(result: dict) -> int:
    from ray.rllib.utils.metrics import ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED

    return int(result.get(ENV_RUNNER_RESULTS, {}).get(NUM_ENV_STEPS_SAMPLED, 0))


class Run:
    """What the training run observed."""

    def __init__(self) -> None:
        self.steps_before_kill: list[int] = []
        self.steps_after_kill: list[int] = []
        self.node_ids: list[str] = []
        self.runners_before: list[tuple[int, str]] = []
        self.runners_after: list[tuple[int, str]] = []
        self.killed: tuple[int, str] | None = None
        self.runner_zygotes: list[tuple[str, set[int]]] = []
        self.zygotes_before: dict[str, set[int]] = {}
        self.zygotes_after: dict[str, set[int]] = {}
        self.expected_sockets: set[str] = set()
        self.zygote_exits: dict[int, bool] = {}
        self.left_after_stop: dict[str, set[int]] = {}
        self.sockets_after_stop: list[str] = []
        self.ray_processes_after_stop: list[str] = []
        self.steps_per_second: float = 0.0


def ray_processes(*directories: str) -> list[str]:
    """Command lines of live processes that mention one of `directories` (Ray's session dirs)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                line = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(d in line for d in directories):
            found.append(f"{entry}: {line[:200]}")
    return found


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Run:
    import ray

    import forkgym.rllib  # noqa: F401  (registers the ids: all a user does)

    base = tmp_path_factory.mktemp("cluster")
    sockets = base / "sockets"
    sockets.mkdir(mode=0o700)
    head_dir, node_dir = base / "head", base / "node"
    observed = Run()
    cluster = start_cluster([head_dir, node_dir], [2, 1])
    try:
        ray.init(address=cluster.address)
        observed.node_ids = sorted(node["NodeID"] for node in ray.nodes() if node["Alive"])
        algo = ppo_config(str(sockets), num_env_runners=3).build_algo()
        try:
            observed.runners_before = runners(algo)
            for _ in range(ITERATIONS_BEFORE_KILL):
                observed.steps_before_kill.append(env_steps(algo.train()))
            observed.zygotes_before = zygotes_under(str(sockets))
            observed.runner_zygotes = runner_zygotes(algo)
            head = ray.get_runtime_context().get_node_id()
            observed.killed = next(r for r in observed.runners_before if r[1] == head)
            os.kill(observed.killed[0], signal.SIGKILL)
            started = time.monotonic()
            for i in range(ITERATIONS_AFTER_KILL + ITERATIONS_TO_RECOVER):
                observed.steps_after_kill.append(env_steps(algo.train()))
                if i + 1 >= ITERATIONS_AFTER_KILL and algo.env_runner_group.num_healthy_remote_workers() == 3:
                    break
            observed.steps_per_second = sum(observed.steps_after_kill) / (time.monotonic() - started)
            observed.runners_after = runners(algo)
            observed.zygotes_after = zygotes_under(str(sockets))
        finally:
            algo.stop()
        for node_id in observed.node_ids:
            observed.expected_sockets.add(forkgym.rllib.node_socket_path(
                forkgym.ServerOptions(idle_exit_seconds=2), str(sockets), "ray-" + node_id))
    finally:
        ray.shutdown()
        # Only this cluster's processes: `ray stop` would end every Ray
        # process of this user on the machine, a user's own jobs included.
        cluster.shutdown()
    for pids in observed.zygotes_after.values() or observed.zygotes_before.values():
        for pid in pids:
            observed.zygote_exits[pid] = wait_exited(pid)
    observed.left_after_stop = zygotes_under(str(sockets))
    observed.sockets_after_stop = sorted(p.name for p in sockets.glob("*.sock"))
    observed.ray_processes_after_stop = ray_processes(str(head_dir), str(node_dir), RAY_TMPDIR)
    print(f"\nRLlib PPO on 2 nodes, 3 env runners: {observed.steps_per_second:.1f} env steps/s "
          f"(iterations after the kill: {observed.steps_after_kill})")
    return observed


def test_env_runners_on_both_nodes_sample_the_plain_id(run):
    assert len(run.node_ids) == 2
    assert {node for _, node in run.runners_before} == set(run.node_ids)
    assert run.steps_before_kill and all(steps > 0 for steps in run.steps_before_kill), run.steps_before_kill


def test_training_continues_after_an_env_runner_is_killed(run):
    assert run.killed is not None
    assert run.steps_after_kill and all(steps > 0 for steps in run.steps_after_kill), run.steps_after_kill


def test_the_killed_env_runner_is_restarted(run):
    assert len(run.runners_after) == 3, run.runners_after
    assert run.killed[0] not in {pid for pid, _ in run.runners_after}
    assert sorted(node for _, node in run.runners_after) == sorted(node for _, node in run.runners_before)


def test_the_env_runners_of_a_node_share_one_zygote(run):
    by_node: dict[str, set[int]] = {}
    for node, pids in run.runner_zygotes:
        by_node.setdefault(node, set()).update(pids)
    assert sorted(by_node) == run.node_ids and all(len(pids) == 1 for pids in by_node.values()), by_node
    assert len(set.union(*by_node.values())) == 2, by_node


def test_each_node_has_exactly_one_zygote_shared_by_its_runners(run):
    for zygotes in (run.zygotes_before, run.zygotes_after):
        assert set(zygotes) == run.expected_sockets, (zygotes, run.expected_sockets)
        assert all(len(pids) == 1 for pids in zygotes.values()), zygotes


def test_the_head_nodes_zygote_survives_its_runner_being_killed(run):
    assert run.zygotes_after == run.zygotes_before


def test_nothing_is_left_after_ray_stop(run):
    assert run.zygote_exits and all(run.zygote_exits.values()), run.zygote_exits
    assert run.left_after_stop == {}
    assert run.sockets_after_stop == []
    assert run.ray_processes_after_stop == []
