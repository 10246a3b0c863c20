"""make_pool: sub-envs stepped asynchronously in EnvPool's style (send/recv,
the first batch_size results, env ids), NEXT_STEP autoreset, a broken
sub-env truncated and reset, clear errors for bad input, threads and
fork() of the client process."""

from __future__ import annotations

import linecache
import os
import signal
import sys
import threading
import time

import numpy as np
import pytest

import forkgym
from forkgym import Outcome
from forkgym.errors import InvalidAction, InvalidRequest, SessionNotStarted

from test_hostile_worker import HOSTILE_SERVER
from test_signals import HANG_GUARD_S

ENV_ID = "llvm-autophase-ic-v0"


def _flags(space, *names: str) -> list[int]:
    return [space.index(n) for n in names]


def _sequential(script: list[int], max_episode_steps: int) -> list[tuple]:
    """What one env gives for ``script`` under NEXT_STEP autoreset: the
    reference the pool's results must equal."""
    out = []
    with forkgym.make(ENV_ID) as env:
        observation, _ = env.reset()
        out.append((observation.tolist(), 0.0, False, False))
        steps, ended = 0, False
        for action in script:
            if ended:
                observation, _ = env.reset()
                out.append((observation.tolist(), 0.0, False, False))
                steps, ended = 0, False
                continue
            observation, reward, terminated, truncated, _ = env.step(action)
            steps += 1
            truncated = truncated or steps >= max_episode_steps
            out.append((observation.tolist(), reward, terminated, truncated))
            ended = terminated or truncated
    return out


def test_batched_results_equal_stepping_each_sub_env_alone() -> None:
    """Whatever order the results come in, each sub-env's sequence is the one a
    single env gives for the same actions (autoresets included)."""
    with forkgym.make_pool(ENV_ID, num_envs=4, batch_size=2, max_episode_steps=3) as pool:
        names = ["-mem2reg", "-instcombine", "-simplifycfg", "-gvn", "-licm", "-sroa", "-dce", "-loop-rotate"]
        scripts = [_flags(pool.single_action_space, *np.roll(names, i)[:6]) for i in range(4)]
        got: dict[int, list[tuple]] = {i: [] for i in range(4)}
        pool.async_reset()
        sent = [0] * 4
        while True:
            try:
                observations, rewards, terminated, truncated, info = pool.recv()
            except InvalidRequest:  # fewer than a batch left
                break
            assert observations.shape == (2, 56) and rewards.shape == terminated.shape == truncated.shape == (2,)
            assert observations in pool.observation_space
            for row, i in enumerate(info["env_id"]):
                got[int(i)].append((observations[row].tolist(), float(rewards[row]), bool(terminated[row]),
                                    bool(truncated[row])))
            ids = [int(i) for i in info["env_id"] if sent[i] < len(scripts[i])]
            if ids:
                pool.send([scripts[i][sent[i]] for i in ids], ids)
                for i in ids:
                    sent[i] += 1
        for i in range(4):
            expected = _sequential(scripts[i], 3)
            assert got[i] == expected[: len(got[i])], i
        # Most of the 28 results came, and every full sequence holds an autoreset.
        assert sum(len(g) for g in got.values()) >= 24
        assert sum(len(got[i]) == 7 for i in range(4)) >= 3


def test_recv_returns_the_first_results_to_come_with_their_env_ids() -> None:
    with forkgym.make_pool("llvm-ic-v0", num_envs=3, batch_size=1, step_timeout=HANG_GUARD_S) as pool:
        pool.reset()
        hang, mem2reg = _flags(pool.single_action_space, "-forkgym-test-hang", "-mem2reg")
        pool.send([hang, mem2reg, mem2reg], [0, 1, 2])
        # Sub-env 0 never answers: the other two come first, one per recv.
        first, second = pool.recv()[4]["env_id"], pool.recv()[4]["env_id"]
        assert sorted([*first, *second]) == [1, 2]
        assert pool.in_flight == [0]
        # The default env_ids of send() are those the last recv() returned.
        pool.send([mem2reg])
        assert sorted(pool.in_flight) == [0, int(second[0])]
        assert pool.envs[int(second[0])].actions == [mem2reg]


def test_a_crashing_sub_env_is_truncated_and_reset_the_others_go_on() -> None:
    with forkgym.make_pool("llvm-ic-v0", num_envs=3, batch_size=3) as pool:
        pool.reset()
        segfault, mem2reg = _flags(pool.single_action_space, "-forkgym-test-segfault", "-mem2reg")
        _, rewards, _, truncated, info = pool.step([mem2reg, segfault, mem2reg], [0, 1, 2])
        by_id = {int(i): row for row, i in enumerate(info["env_id"])}
        crashed = by_id[1]
        assert truncated[crashed] and not truncated[by_id[0]] and not truncated[by_id[2]]
        assert info["outcome"][crashed] == Outcome.CRASHED and info["_outcome"][crashed]
        assert "segfault" in info["reproducer"][crashed].commandline or info["reproducer"][crashed].actions
        assert not pool.envs[1].in_episode
        # Next step: sub-env 1 resets (its action ignored), the others step on.
        _, rewards, terminated, truncated, info = pool.step([mem2reg, mem2reg, mem2reg], [0, 1, 2])
        row = list(info["env_id"]).index(1)
        assert rewards[row] == 0.0 and not terminated[row] and not truncated[row]
        assert pool.envs[1].in_episode and pool.envs[1].actions == []
        assert pool.envs[0].actions == [mem2reg, mem2reg] and pool.envs[2].actions == [mem2reg, mem2reg]


def test_a_hung_sub_env_times_out_alone() -> None:
    with forkgym.make_pool("llvm-ic-v0", num_envs=2, batch_size=1, step_timeout=1.0) as pool:
        pool.reset()
        hang, mem2reg = _flags(pool.single_action_space, "-forkgym-test-hang", "-mem2reg")
        pool.send([hang, mem2reg], [0, 1])
        assert list(pool.recv()[4]["env_id"]) == [1]
        _, _, _, truncated, info = pool.recv()  # waits out sub-env 0's timeout, no longer
        assert list(info["env_id"]) == [0] and truncated[0] and info["outcome"][0] == Outcome.TIMED_OUT
        pool.send([mem2reg], [0])  # resets it
        _, rewards, _, truncated, info = pool.recv()
        assert list(info["env_id"]) == [0] and rewards[0] == 0.0 and not truncated[0]


def test_bad_input_is_refused_clearly_and_changes_nothing() -> None:
    with pytest.raises(InvalidRequest, match="batch_size must be an integer from 1 to num_envs"):
        forkgym.make_pool("llvm-ic-v0", num_envs=2, batch_size=3)
    with forkgym.make_pool("llvm-ic-v0", num_envs=3, batch_size=2) as pool:
        mem2reg = pool.single_action_space.index("-mem2reg")
        with pytest.raises(SessionNotStarted, match="reset"):
            pool.send([mem2reg], [0])
        pool.reset()
        with pytest.raises(InvalidRequest, match="no sub-env 3; env_ids are 0..2"):
            pool.send([mem2reg], [3])
        with pytest.raises(InvalidRequest, match="no sub-env -1"):
            pool.send([mem2reg], [-1])
        with pytest.raises(InvalidRequest, match="sub-env 1 is named twice"):
            pool.send([mem2reg, mem2reg], [1, 1])
        with pytest.raises(InvalidRequest, match="2 actions for 1 env_ids"):
            pool.send([mem2reg, mem2reg], [1])
        with pytest.raises(InvalidRequest, match="integers"):
            pool.send([mem2reg], ["a"])
        with pytest.raises(InvalidAction, match="not in the action space"):
            pool.send([mem2reg, 10_000], [0, 1])
        assert pool.in_flight == []  # the bad action posted nothing, not even sub-env 0's
        with pytest.raises(InvalidRequest, match="only 0 are ready and 0 steps are in flight"):
            pool.recv()
        pool.send([mem2reg], [0])
        with pytest.raises(InvalidRequest, match="sub-env 0 has a step in flight: recv"):
            pool.send([mem2reg], [0])  # send twice without recv
        with pytest.raises(InvalidRequest, match="sub-env 0 has a step in flight"):
            pool.async_reset(env_ids=[0])
        with pytest.raises(InvalidRequest, match="only 0 are ready and 1 steps are in flight"):
            pool.recv()  # batch_size 2, one step in flight: it would wait forever
        pool.send([mem2reg], [1])
        assert sorted(pool.recv()[4]["env_id"]) == [0, 1]
        assert [env.actions for env in pool.envs] == [[mem2reg], [mem2reg], []]


def _ctrl_c_once_recv_waits(native) -> threading.Thread:
    """Sends SIGINT to this process once the worker has started the step about
    to be posted and the main thread waits for it in recv()'s native call
    (its frame shows the call): never earlier, in send(), where the
    KeyboardInterrupt would escape the test."""
    before = native.requests_started
    main = threading.main_thread().ident

    def waiting_in_recv() -> bool:
        frame = sys._current_frames().get(main)
        return (frame is not None and frame.f_code.co_name == "_receive"
                and "collect_steps(" in linecache.getline(frame.f_code.co_filename, frame.f_lineno))

    def wait_then_interrupt() -> None:
        deadline = time.monotonic() + HANG_GUARD_S
        while not (native.requests_started != before and waiting_in_recv()) and time.monotonic() < deadline:
            os.sched_yield()  # readiness is the worker's and the waiting thread's signal, not time
        os.kill(os.getpid(), signal.SIGINT)

    return threading.Thread(target=wait_then_interrupt)


@pytest.mark.usefixtures("ctrl_c_raises")
def test_ctrl_c_in_recv_ends_the_waiting_steps_and_keeps_every_result() -> None:
    with forkgym.make_pool("llvm-ic-v0", num_envs=2, batch_size=2) as pool:
        pool.reset()
        hang, mem2reg = _flags(pool.single_action_space, "-forkgym-test-hang", "-mem2reg")
        sender = _ctrl_c_once_recv_waits(pool.envs[0]._native)
        sender.start()
        pool.send([hang, mem2reg], [0, 1])
        with pytest.raises(KeyboardInterrupt):
            pool.recv()
        sender.join()
        _, _, _, truncated, info = pool.recv()  # the interrupted batch, nothing lost
        by_id = {int(i): row for row, i in enumerate(info["env_id"])}
        assert truncated[by_id[0]] and info["outcome"][by_id[0]] == Outcome.INTERRUPTED
        assert pool.envs[0].actions == [hang] and pool.envs[1].actions == [mem2reg]


def test_several_threads_share_a_pool_and_lose_no_result() -> None:
    with forkgym.make_pool("llvm-ic-v0", num_envs=4, batch_size=1) as pool:
        pool.reset()
        mem2reg = pool.single_action_space.index("-mem2reg")
        pool.send([mem2reg] * 4, [0, 1, 2, 3])
        received: list[int] = []
        lock = threading.Lock()

        def loop() -> None:
            for _ in range(15):
                env_id = int(pool.recv()[4]["env_id"][0])
                pool.send([mem2reg], [env_id])
                with lock:
                    received.append(env_id)

        threads = [threading.Thread(target=loop) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(HANG_GUARD_S)
        assert len(received) == 45
        # Every result received was one step of its sub-env, recorded once; each
        # sub-env has one more step posted, recorded once its result is in.
        for i, env in enumerate(pool.envs):
            assert len(env.actions) == received.count(i) + (0 if i in pool.in_flight else 1)


def test_a_forked_client_process_starts_episodes_of_its_own() -> None:
    with forkgym.make_pool("llvm-ic-v0", num_envs=2, batch_size=2) as pool:
        pool.reset()
        mem2reg = pool.single_action_space.index("-mem2reg")
        pool.send([mem2reg, mem2reg], [0, 1])
        read, write = os.pipe()
        child = os.fork()
        if child == 0:  # pragma: no cover - the child reports through the pipe
            verdict = b"ok"
            try:
                try:
                    pool.send([mem2reg], [0])
                    verdict = b"send of the parent's episode did not raise"
                except SessionNotStarted as error:
                    if f"belong to process {os.getppid()}" not in str(error):
                        verdict = f"unclear error: {error}".encode()
                if verdict == b"ok":
                    pool.reset()
                    _, rewards, _, truncated, _ = pool.step([mem2reg, mem2reg], [0, 1])
                    if truncated.any() or not (rewards > 0).all():
                        verdict = b"the child's own episodes did not step"
            except BaseException as error:  # noqa: BLE001
                verdict = f"{type(error).__name__}: {error}".encode()
            os.write(write, verdict)
            os._exit(0)
        os.close(write)
        with os.fdopen(read, "rb") as pipe:
            verdict = pipe.read()
        os.waitpid(child, 0)
        assert verdict == b"ok", verdict
        # The parent's steps in flight were untouched by the child.
        _, rewards, _, truncated, info = pool.recv()
        assert sorted(info["env_id"]) == [0, 1] and not truncated.any() and (rewards > 0).all()


@pytest.mark.skipif(not os.access(HOSTILE_SERVER, os.X_OK), reason=f"{HOSTILE_SERVER} not built (bash scripts/setup)")
def test_a_sub_env_whose_worker_breaks_the_protocol_is_truncated_alone() -> None:
    """The pool never raises for one sub-env's worker: the reply it refused is
    that sub-env's truncated result, saying why, and the sub-env resets."""
    options = forkgym.ServerOptions(server_path=str(HOSTILE_SERVER),
                                    extra_args=("--attack", "reply-garbage", "--attacked-sessions", "1"))
    server = forkgym.Server(options)
    try:
        with forkgym.make_pool("llvm-v0", num_envs=3, batch_size=3, server=server) as pool:
            pool.reset()
            _, rewards, _, truncated, info = pool.step([1, 2, 3], [0, 1, 2])
            by_id = {int(i): row for row, i in enumerate(info["env_id"])}
            broken = by_id[0]
            assert truncated.tolist() == [row == broken for row in range(3)]
            assert info["outcome"][broken] == Outcome.PROTOCOL_MISMATCH
            assert "malformed" in info["error_details"][broken]
            assert isinstance(info["error"][broken], forkgym.ProtocolMismatch)
            assert not pool.envs[0].in_episode
            assert [env.actions for env in pool.envs[1:]] == [[2], [3]]
            pool.step([4, 4, 4], [0, 1, 2])  # sub-env 0 resets, the others step on
            assert [env.actions for env in pool.envs] == [[], [2, 4], [3, 4]]
    finally:
        server.close()


def test_ctrl_c_just_after_the_post_loses_no_step(monkeypatch) -> None:
    """A KeyboardInterrupt landing in send() right after the native post (before
    the pool wrote down what it posted) still ends every posted step: the
    answered one recorded, the hung one's worker killed, both results kept."""
    from forkgym import vector

    with forkgym.make_pool("llvm-ic-v0", num_envs=2, batch_size=2) as pool:
        pool.reset()
        hang, mem2reg = _flags(pool.single_action_space, "-forkgym-test-hang", "-mem2reg")
        real = vector._forkgym

        class InterruptedAfterPosting:
            collect_steps = staticmethod(real.collect_steps)

            @staticmethod
            def post_steps(*args):
                real.post_steps(*args)
                raise KeyboardInterrupt  # Ctrl-C arrives before send() has noted what it posted

        monkeypatch.setattr(vector, "_forkgym", InterruptedAfterPosting)
        with pytest.raises(KeyboardInterrupt):
            pool.send([hang, mem2reg], [0, 1])
        monkeypatch.setattr(vector, "_forkgym", real)
        assert pool.in_flight == []
        _, _, _, truncated, info = pool.recv()
        by_id = {int(i): row for row, i in enumerate(info["env_id"])}
        assert truncated[by_id[0]] and info["outcome"][by_id[0]] == Outcome.INTERRUPTED
        assert pool.envs[0].actions == [hang] and not pool.envs[0].in_episode
        # The other step was either answered (recorded) or ended with it: either way its history says so.
        assert pool.envs[1].actions == [mem2reg]
        pool.send([mem2reg, mem2reg], [0, 1])  # sub-env 0 resets, 1 steps on
        _, _, _, truncated, info = pool.recv()
        assert not truncated.any()
