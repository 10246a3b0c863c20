"""The hostile-worker harness against the real Python client (invariant 4).

Each row spawns forkgym-hostile-server (tests/hostile/hostile_server.cc,
built in the test tree) with one attack through ``ServerOptions.server_path``,
and drives a public ``forkgym.LlvmEnv``: reset, then a step or a fork. The
client must survive with a clear typed result — the row's forkgym exception,
or a truncated step whose ``info["outcome"]`` says what happened — with the
episode ended when the worker broke the protocol, no descriptor leaked, and a
process the client has no business with (the victim this test starts) still
alive. Rows run in a forked child of the test process, so a crash of the
client fails its row instead of the suite; a guard far beyond any row's own
timeout catches a hang. tests/hostile/hostile_worker_test.cc runs the same
attacks against the C++ client.
"""

from __future__ import annotations

import gc
import json
import os
import select
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

import forkgym
from forkgym import Outcome

from conftest import REPO

HOSTILE_SERVER = Path(os.environ.get("FORKGYM_HOSTILE_SERVER",
                                     REPO / "build" / "tests" / "hostile" / "forkgym-hostile-server"))

# STEPS: up to three steps, stopping at the first that fails; each that
# succeeds must carry the scripted worker's count of requests (1001, 1002,
# 1003): a reply read for the wrong request shows.
STEP, TWO_STEPS, STEPS, FORK = "step", "two steps", "steps", "fork"
PM, CRASHED, TIMED_OUT, OK = (Outcome.PROTOCOL_MISMATCH, Outcome.CRASHED, Outcome.TIMED_OUT, Outcome.OK)


@dataclass(frozen=True)
class Row:
    attack: str
    op: str
    outcome: Outcome | tuple[Outcome, ...]  # any of these; all but OK end the episode
    words: str
    observation: str = "IrInstructionCount"

    @property
    def outcomes(self) -> tuple[Outcome, ...]:
        return self.outcome if isinstance(self.outcome, tuple) else (self.outcome,)

    def __str__(self) -> str:
        return self.attack


ROWS = [
    Row("reply-length-zero", STEP, PM, "announced a message of 0 bytes"),
    Row("reply-length-huge", STEP, PM, "announced a message"),
    Row("reply-length-negative", STEP, PM, "announced a message"),
    Row("reply-length-unaligned", STEP, PM, "announced a message"),
    Row("reply-length-past-the-region", STEP, PM, "announced a message"),
    Row("reply-garbage", STEP, PM, "malformed"),
    Row("reply-segment-table-lies", STEP, PM, "malformed"),
    Row("reply-segment-count-huge", STEP, PM, "malformed"),
    Row("reply-root-pointer-out-of-bounds", STEP, PM, "malformed"),
    Row("reply-root-pointer-negative", STEP, PM, "malformed"),
    Row("reply-overlapping-pointers", STEP, PM, "malformed"),
    Row("reply-is-a-fork-result", STEP, PM, "answered a step with something else"),
    Row("reply-failure-with-outcome-ok", STEP, PM, "names no failure"),
    Row("reply-failure-with-unknown-outcome", STEP, PM, "names no failure"),
    Row("reply-too-few-observations", STEP, PM, "0 observation(s) for 1 asked"),
    Row("reply-observation-of-the-wrong-type", STEP, PM, "wrong type"),
    Row("reply-list-of-the-wrong-length", STEP, PM, "3 values, not 56", "Autophase"),
    Row("reply-program-graph-edge-past-the-nodes", STEP, PM, "joins a node that does not exist", "Programl"),
    Row("reply-too-many-rewards", STEP, PM, "reward(s) for"),
    Row("header-scribbled", TWO_STEPS, OK, ""),
    Row("region-shrunk", TWO_STEPS, OK, ""),
    Row("last-words-without-nul", STEP, CRASHED, "AAAAAAAA"),
    Row("last-words-claiming-ok", STEP, CRASHED, "not a way to die"),
    Row("last-words-claiming-unknown-outcome", STEP, CRASHED, "not a way to die"),
    Row("last-words-with-a-lying-stack", STEP, CRASHED, "a lying stack"),
    Row("last-words-then-lingers", STEP, CRASHED, "dead (not really)"),
    Row("ring-unknown-byte", STEP, PM, "unknown record"),
    Row("ring-request-byte", STEP, PM, "out of turn"),
    # The extra ring is caught when the client reads it before the worker has
    # answered the next request; otherwise the reply it reads is the right
    # one (each reply names its request). Never a wrong result.
    Row("ring-twice", STEPS, (PM, OK), ""),
    Row("ring-oversized-record", STEP, PM, "oversized doorbell record"),
    Row("ring-empty-record", STEP, PM, "empty doorbell record"),
    Row("ring-with-a-descriptor", STEP, PM, "descriptors where none are allowed"),
    Row("ring-with-many-descriptors", STEP, PM, "more descriptors than one ring may carry"),
    Row("never-replies", STEP, TIMED_OUT, "took longer"),
    Row("hangs-up-without-a-word", STEP, CRASHED, "exited with code 0"),
    Row("fork-reply-malformed", FORK, PM, "malformed message"),
    Row("fork-reply-root-pointer-out-of-bounds", FORK, PM, "malformed fork reply"),
    Row("fork-reply-overlapping-pointers", FORK, PM, "without a new channel"),
    Row("fork-reply-failure-with-outcome-ok", FORK, PM, "names no failure"),
    Row("fork-reply-without-descriptors", FORK, PM, "without a new channel"),
    Row("fork-reply-with-too-few-descriptors", FORK, PM, "without a new channel"),
    Row("fork-reply-with-too-many-descriptors", FORK, PM, "more descriptors than one ring may carry"),
    Row("fork-region-is-a-regular-file", FORK, PM, "region"),
    Row("fork-region-is-unsealed", FORK, PM, "not sealed"),
    Row("fork-doorbell-is-a-pipe", FORK, PM, "doorbell"),
    Row("fork-doorbell-is-a-stream-socket", FORK, PM, "doorbell"),
    # The copy's pidfd: the client will SIGKILL what it names, so it must
    # name a clone of this episode's worker and nothing else.
    Row("fork-pidfd-of-an-unrelated-process", FORK, PM, "refusing the forked worker"),
    Row("fork-pid-of-an-unrelated-process", FORK, PM, "refusing the forked worker"),
    Row("fork-pidfd-of-the-worker-itself", FORK, PM, "not a clone of this episode's worker"),
    Row("fork-pidfd-is-not-a-pidfd", FORK, PM, "not a pidfd"),
    Row("fork-reply-never-comes", FORK, TIMED_OUT, "took longer"),
]


def _gone(pid: int) -> bool:
    """The worker is the hostile server's child: gone once reaped or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat[stat.rindex(")") + 2] in "ZX"


def _play(row: Row, victim: int) -> dict:
    """Runs one row in this (child) process; returns what happened."""
    gc.collect()  # what earlier tests left for the collector is not this row's
    report: dict = {"fds_before": len(os.listdir("/proc/self/fd"))}
    options = forkgym.ServerOptions(server_path=str(HOSTILE_SERVER),
                                    extra_args=("--attack", row.attack, "--victim-pid", str(victim)))
    server = forkgym.Server(options)
    env = forkgym.LlvmEnv(server=server, step_timeout=1.5)
    try:
        env.reset()
        worker = env.worker_pid
        try:
            if row.op == FORK:
                copy = env.fork()
                copy._native.set_step_timeout(0.3)  # time the copy out, so the client ends it
                _, _, _, truncated, info = copy.step(1, observation_spaces=[row.observation])
                report.update(kind="fork accepted", truncated=truncated, outcome=int(info.get("outcome", OK)))
                copy.close()
            else:
                for step in range(1, {STEP: 1, TWO_STEPS: 2, STEPS: 3}[row.op] + 1):
                    observation, _, _, truncated, info = env.step(1, observation_spaces=[row.observation])
                    report.update(kind="returned", truncated=truncated, observation=str(observation),
                                  outcome=int(info.get("outcome", OK)), message=info.get("error_details", ""))
                    if truncated:
                        # The worker's stack is bounded by the client's arrays and names no function.
                        stack = info.get("stack", [])
                        if len(stack) > 48 or any(len(module) > 192 for module, _, _ in stack) or \
                                info.get("stack_signature"):
                            report["wrong"] = f"an unbounded or believed stack: {len(stack)} frames"
                        break
                    if row.observation == "IrInstructionCount" and observation[0] != 1000 + step:
                        report["wrong"] = f"step {step} read the reply to another request: {observation}"
                        break
        except forkgym.ForkgymError as error:
            report.update(kind="raised", type=type(error).__name__, outcome=int(error.outcome), message=str(error))
        report["in_episode"] = env.in_episode
        if not env.in_episode:
            for _ in range(2000):
                if _gone(worker):
                    break
                select.select([], [], [], 0.005)
        report["worker_gone"] = _gone(worker)
    finally:
        env.close()
        server.close()
        del env, server
        gc.collect()
    report["fds_after"] = len(os.listdir("/proc/self/fd"))
    return report


@pytest.fixture
def victim():
    """A process no episode has anything to do with (one per row)."""
    process = subprocess.Popen(["cat"], stdin=subprocess.PIPE)
    yield process
    process.kill()
    process.wait()


@pytest.mark.skipif(not os.access(HOSTILE_SERVER, os.X_OK), reason=f"{HOSTILE_SERVER} not built (bash scripts/setup)")
@pytest.mark.parametrize("row", ROWS, ids=str)
def test_client_survives_a_hostile_worker_with_a_typed_error(row: Row, victim: subprocess.Popen) -> None:
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(read_end)
        try:
            report = _play(row, victim.pid)
        except BaseException as error:  # the row's verdict, not the child's problem
            report = {"kind": "escaped", "type": type(error).__name__, "message": str(error)}
        os.write(write_end, json.dumps(report).encode())
        os._exit(0)
    os.close(write_end)
    # A hang guard far beyond any row's own timeout, not a timing assertion.
    ready, _, _ = select.select([read_end], [], [], 120)
    data = b""
    while ready:
        chunk = os.read(read_end, 65536)
        if not chunk:
            break
        data += chunk
    os.close(read_end)
    if not ready:
        os.kill(child, signal.SIGKILL)
    _, status = os.waitpid(child, 0)
    assert ready, f"{row}: the client hung"
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0 and data, \
        f"{row}: the client died ({'signal ' + str(os.WTERMSIG(status)) if os.WIFSIGNALED(status) else status})"
    report = json.loads(data)
    assert report["kind"] != "escaped", f"{row}: an untyped exception escaped: {report}"
    assert victim.poll() is None, f"{row}: the client signalled an unrelated process"
    assert report["fds_after"] == report["fds_before"], f"{row}: the client leaked descriptors: {report}"
    assert "wrong" not in report, f"{row}: WRONG RESULT: {report['wrong']}"

    outcome = Outcome(report["outcome"])
    assert outcome in row.outcomes, report
    if outcome == OK:
        assert report["kind"] == "returned" and not report["truncated"], report
        assert report["in_episode"], report
        return
    if outcome == PM or row.op == FORK:
        # Not a transition: a typed exception, the episode over.
        assert report["kind"] == "raised" and report["type"] == forkgym.errors.exception_type(outcome).__name__, report
    else:
        # An episode-ending outcome during a step truncates it (the gym contract).
        assert report["kind"] == "returned" and report["truncated"], report
    assert row.words in report["message"], report
    assert not report["in_episode"], report
    assert report["worker_gone"], f"{row}: the ended episode's worker still runs"


@pytest.mark.skipif(not os.access(HOSTILE_SERVER, os.X_OK), reason=f"{HOSTILE_SERVER} not built (bash scripts/setup)")
def test_a_hostile_worker_in_a_vector_env_loses_no_other_envs_step() -> None:
    """One sub-env's worker breaks the protocol in a batched step: the error is
    raised, and every other sub-env's step is still recorded (its worker
    applied the action, so its history and reproducer must say so)."""
    options = forkgym.ServerOptions(server_path=str(HOSTILE_SERVER),
                                    extra_args=("--attack", "reply-garbage", "--attacked-sessions", "1"))
    server = forkgym.Server(options)
    envs = forkgym.make_vec("llvm-v0", 3, server=server)
    try:
        envs.reset()
        with pytest.raises(forkgym.ProtocolMismatch, match="malformed"):
            envs.step([1, 2, 3])
        assert not envs.envs[0].in_episode
        for env, action in zip(envs.envs[1:], [2, 3]):
            assert env.in_episode
            assert env.actions == [action], "a sub-env's applied step went unrecorded"
        # The next batch resets the broken sub-env and steps the others.
        envs.step([4, 4, 4])
        assert [env.actions for env in envs.envs] == [[], [2, 4], [3, 4]]
    finally:
        envs.close()
        server.close()
