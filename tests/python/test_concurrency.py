"""Client objects under real concurrency: Python threads, and processes forked
from a process that already holds a connection and episodes.

Every reset is checked against the benchmark's instruction count measured
once up front, so a reset that got another thread's (or the parent's)
worker — the wrong program — is caught, not just a crash.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import traceback
from pathlib import Path

import pytest

import forkgym

# A hang is a failure too: joins give up after this long (a liveness guard,
# far above what the work takes; timing itself is scripts/bench's business).
HANG_GUARD_S = 300


def reset_and_count(env: forkgym.LlvmEnv, uri: str) -> tuple[int, str]:
    """(initial instruction count, benchmark the env reports) of a fresh episode."""
    count, info = env.reset(benchmark=uri, observation_space="IrInstructionCount")
    return int(count), info["benchmark"]


def run_threads(count: int, work) -> list[str]:
    """Runs work(index) on `count` threads; returns the failures they reported."""
    failures: list[str] = []
    lock = threading.Lock()

    def body(index: int) -> None:
        try:
            work(index)
        except BaseException:  # noqa: BLE001 - every failure is reported
            with lock:
                failures.append(traceback.format_exc())

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(HANG_GUARD_S)
    hung = [t.name for t in threads if t.is_alive()]
    assert not hung, f"threads still running (hung): {hung}"
    return failures


def test_threads_resetting_mixed_benchmarks_each_get_their_own_program(mixed_benchmarks) -> None:
    server = forkgym.Server()  # one private zygote shared by every thread, as by default
    uris = list(mixed_benchmarks)
    mismatches: list[str] = []

    def work(index: int) -> None:
        with forkgym.make("llvm-v0", server=server) as env:
            for round_ in range(12):
                uri = uris[(index + round_) % len(uris)]
                count, reported = reset_and_count(env, uri)
                if (count, reported) != (mixed_benchmarks[uri], uri):
                    mismatches.append(f"thread {index}: reset({uri}) gave {reported} with {count} instructions")
                env.step(env.action_space.index("-mem2reg"))

    try:
        failures = run_threads(4, work)
    finally:
        server.close()
    assert not failures, failures[0]
    assert not mismatches, mismatches


def test_threads_sharing_one_env_serialise_their_steps() -> None:
    server = forkgym.Server()
    with forkgym.make("llvm-v0", server=server) as env:
        env.reset()
        noop = env.action_space.index("-mem2reg")

        def work(index: int) -> None:
            for _ in range(25):
                _, _, _, truncated, _ = env.step(noop)
                assert not truncated
                assert env.observation["IrInstructionCount"] > 0

        failures = run_threads(4, work)
        assert not failures, failures[0]
        assert len(env.actions) == 100
        assert env.validate().okay()
    server.close()


# ------------------------------------------------------------------ fork --

def _child_uses_inherited_env(env: forkgym.LlvmEnv, known: dict[str, int], parent_server_pid: int, queue) -> None:
    report: dict[str, object] = {}
    try:
        try:
            env.step(env.action_space.index("-mem2reg"))
            report["inherited_step"] = "no error"
        except forkgym.SessionNotStarted as e:
            report["inherited_step"] = str(e)
        counts = []
        for uri in known:
            counts.append((uri, *reset_and_count(env, uri)))
        report["counts"] = counts
        report["server_pid"] = env.server_pid
        report["parent_server_pid"] = parent_server_pid
        env.close()
    except BaseException:  # noqa: BLE001
        report["error"] = traceback.format_exc()
    queue.put(report)


def test_forked_child_gets_its_own_zygote_and_the_inherited_episode_raises(mixed_benchmarks) -> None:
    server = forkgym.Server()
    env = forkgym.make("llvm-v0", server=server)
    uris = list(mixed_benchmarks)
    count, _ = reset_and_count(env, uris[0])
    parent_server = env.server_pid
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    children = [
        context.Process(target=_child_uses_inherited_env, args=(env, mixed_benchmarks, parent_server, queue))
        for _ in range(2)
    ]
    for child in children:
        child.start()
    # The parent keeps stepping its episode while the children run.
    for _ in range(10):
        _, _, _, truncated, _ = env.step(env.action_space.index("-mem2reg"))
        assert not truncated
    reports = [queue.get(timeout=HANG_GUARD_S) for _ in children]
    for child in children:
        child.join(HANG_GUARD_S)
        assert child.exitcode == 0
    for report in reports:
        assert "error" not in report, report["error"]
        assert f"belongs to process {os.getpid()}" in report["inherited_step"]
        assert "reset()" in report["inherited_step"]
        for uri, count_, reported in report["counts"]:
            assert (count_, reported) == (mixed_benchmarks[uri], uri)
        assert report["server_pid"] not in (-1, parent_server)
    # The children neither killed nor reaped the parent's zygote, nor ended its episode.
    assert env.server_pid == parent_server
    assert env.observation["IrInstructionCount"] > 0
    assert reset_and_count(env, uris[1]) == (mixed_benchmarks[uris[1]], uris[1])
    env.close()
    server.close()


def _make_counting_env(uri: str):
    return lambda: forkgym.make("llvm-v0", benchmark=uri, observation_space="IrInstructionCount")


def test_async_vector_env_with_default_context_resets_each_sub_env_to_its_program(mixed_benchmarks) -> None:
    import gymnasium as gym

    uris = list(mixed_benchmarks)[:4]
    # AsyncVectorEnv builds one env in this process first (for its spaces),
    # then forks its workers: each inherits this process's connection.
    forkgym.make("llvm-v0").reset()
    vector = gym.vector.AsyncVectorEnv([_make_counting_env(uri) for uri in uris])
    try:
        for _ in range(4):
            observations, infos = vector.reset()
            assert list(infos["benchmark"]) == uris
            assert [int(x) for x in observations] == [mixed_benchmarks[uri] for uri in uris]
    finally:
        vector.close()
