"""The concurrency stress test: 8 Python threads and 4 forked child processes
at once, each resetting a mix of benchmarks (bundled C sources, a csmith
seed, an llvm-stress seed, a bitcode file, a directory of sources) and
checking every reset's initial instruction count against the benchmark's
own, measured once up front. Zero mismatches, no hang, and nothing left
behind: no process, descriptor or /tmp/forkgym-* file.

The children are forked while the threads run, from a process whose
server connection and episodes are in use: each child must forget what it
inherited (an inherited episode says whose it is), start its own zygote and
get the right programs.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import select
import threading
import traceback
from pathlib import Path

import forkgym

THREADS = 8
CHILDREN = 4
ROUNDS = 12
HANG_GUARD_S = 300  # a liveness guard, far above what the work takes


def _resets(env: forkgym.LlvmEnv, known: dict[str, int], offset: int) -> tuple[list[str], list[int]]:
    """ROUNDS resets through the mix; returns the mismatches and pidfds of the
    workers used (opened while each surely runs: pids are reused quickly)."""
    uris = list(known)
    mismatches: list[str] = []
    workers: list[int] = []
    mem2reg = env.action_space.index("-mem2reg")
    for round_ in range(ROUNDS):
        uri = uris[(offset + round_) % len(uris)]
        count, info = env.reset(benchmark=uri, observation_space="IrInstructionCount")
        if (int(count), info["benchmark"]) != (known[uri], uri):
            mismatches.append(f"reset({uri}) gave {info['benchmark']} with {int(count)} instructions, "
                              f"not {known[uri]}")
        workers.append(os.pidfd_open(env.worker_pid))
        env.step(mem2reg)
    return mismatches, workers


def _exited(pidfd: int) -> bool:
    """True once the process has exited (its pidfd polls readable); closes the pidfd."""
    try:
        return bool(select.select([pidfd], [], [], HANG_GUARD_S)[0])
    finally:
        os.close(pidfd)


def _child(index: int, known: dict[str, int], server: forkgym.Server, inherited: forkgym.LlvmEnv, out) -> None:
    report: dict[str, object] = {"index": index}
    try:
        try:
            inherited.step(inherited.action_space.index("-mem2reg"))
            report["inherited"] = "the inherited episode answered"
        except forkgym.SessionNotStarted as e:
            report["inherited"] = str(e)
        with forkgym.make("llvm-v0", server=server) as env:
            report["mismatches"], workers = _resets(env, known, index)
            report["zygote"] = env.server_pid
            zygote = os.pidfd_open(env.server_pid)
        inherited.close()
        server.close()
        # This child's zygote and workers are its own to account for.
        report["left_behind"] = sum(not _exited(fd) for fd in (zygote, *workers))
    except BaseException:  # noqa: BLE001 - every failure is reported
        report["error"] = traceback.format_exc()
    out.send(report)


def _open_fds() -> dict[int, str]:
    """This process's descriptors and what each one is."""
    fds = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            fds[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except FileNotFoundError:  # listdir's own
            pass
    return fds


def _forkgym_temp_files() -> set[str]:
    return {p.name for p in Path("/tmp").glob("forkgym-*")}


def test_threads_and_forked_children_resetting_mixed_benchmarks_get_the_right_programs(mixed_benchmarks) -> None:
    known = dict(mixed_benchmarks)
    # Earlier tests' garbage is collected now, not in the middle of this
    # test, where closing its descriptors would look like this test's doing.
    gc.collect()
    fds_before = _open_fds()
    temp_before = _forkgym_temp_files()

    server = forkgym.Server()  # this test's own zygote, shared by every thread as by default
    inherited = forkgym.make("llvm-v0", server=server)
    inherited.reset(benchmark=next(iter(known)))
    parent_zygote = inherited.server_pid
    zygote = os.pidfd_open(parent_zygote)

    lock = threading.Lock()
    failures: list[str] = []
    mismatches: list[str] = []
    workers: list[int] = []
    running = threading.Barrier(THREADS + 1)

    def thread_body(index: int) -> None:
        try:
            with forkgym.make("llvm-v0", server=server) as env:
                running.wait(HANG_GUARD_S)
                found, used = _resets(env, known, index)
            with lock:
                mismatches.extend(f"thread {index}: {m}" for m in found)
                workers.extend(used)
        except BaseException:  # noqa: BLE001
            with lock:
                failures.append(traceback.format_exc())

    threads = [threading.Thread(target=thread_body, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    running.wait(HANG_GUARD_S)  # every thread has its env and is resetting

    context = multiprocessing.get_context("fork")
    pipes = [context.Pipe(duplex=False) for _ in range(CHILDREN)]
    children = [context.Process(target=_child, args=(i, known, server, inherited, pipes[i][1]))
                for i in range(CHILDREN)]
    for child in children:
        child.start()
    reports = []
    for reader, writer in pipes:
        writer.close()
        assert reader.poll(HANG_GUARD_S), "a child hung"
        reports.append(reader.recv())
        reader.close()
    for child in children:
        child.join(HANG_GUARD_S)
    for thread in threads:
        thread.join(HANG_GUARD_S)
    exitcodes = [child.exitcode for child in children]
    for child in children:
        child.close()

    assert not [t for t in threads if t.is_alive()], "a thread hung"
    assert exitcodes == [0] * CHILDREN
    assert not failures, failures[0]
    for report in reports:
        assert "error" not in report, report["error"]
        assert f"belongs to process {os.getpid()}" in report["inherited"], report["inherited"]
        mismatches.extend(f"child {report['index']}: {m}" for m in report["mismatches"])
        assert report["zygote"] not in (-1, parent_zygote)
        assert report["left_behind"] == 0, f"child {report['index']} left processes behind"
    assert not mismatches, f"{len(mismatches)} wrong programs: {mismatches[:5]}"
    assert len(workers) == THREADS * ROUNDS

    # The parent's own episode went on through all of it.
    assert inherited.observation["IrInstructionCount"] == known[next(iter(known))]
    inherited.close()
    server.close()
    del inherited, server

    # Nothing left behind: every process has exited, and no descriptor or
    # temporary file remains.
    assert _exited(zygote), "the zygote outlived its client"
    assert all([_exited(worker) for worker in workers]), "a worker outlived its episode"
    assert _open_fds() == fds_before
    assert _forkgym_temp_files() <= temp_before
