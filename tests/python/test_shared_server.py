"""One zygote shared by several processes: ServerOptions(shared_socket=...).

The first process to need it starts a detached `forkgym-server --socket
PATH --exit-when-idle N`; the others connect; it outlives any one of them
and exits once none has been connected for N seconds. (forkgym.rllib gives
each node such a socket; tests/rllib drives it from a Ray cluster.)
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import forkgym
from forkgym.server import Server, ServerOptions

# Bounds a wait for a process to exit: a hang fails the test instead of the run.
EXIT_GUARD_S = 60


def wait_exited(pid: int) -> bool:
    """True once process `pid` (not necessarily our child) has exited, within the guard."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], EXIT_GUARD_S)[0])
    finally:
        os.close(fd)


@pytest.fixture
def socket_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "node"
    directory.mkdir(mode=0o700)
    return directory


def options(socket_dir: Path, **kwargs) -> ServerOptions:
    return ServerOptions(shared_socket=str(socket_dir / "zygote.sock"), idle_exit_seconds=1, **kwargs)


def test_processes_sharing_a_socket_share_one_detached_zygote_that_exits_after_the_last(socket_dir):
    first, second = Server(options(socket_dir)), Server(options(socket_dir))
    zygote = first.connection().zygote_pid
    assert second.connection().zygote_pid == zygote
    # Detached: no child of the process that started it (killing that
    # process, or its process group, leaves it to the others).
    assert zygote not in {int(p) for p in Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").read_text().split()}
    assert os.getsid(zygote) == zygote
    with forkgym.make("llvm-ic-v0", server=first) as env:
        env.reset()
        env.step(0)
    first.close()
    assert os.path.exists(socket_dir / "zygote.sock")
    second.close()
    assert wait_exited(zygote), "the shared zygote outlived its last client"
    assert not os.path.exists(socket_dir / "zygote.sock")


CLIENT = textwrap.dedent("""
    import sys
    from forkgym.server import Server, ServerOptions
    server = Server(ServerOptions(shared_socket=sys.argv[1], idle_exit_seconds=int(sys.argv[2])))
    print(server.connection().zygote_pid, flush=True)
    sys.stdin.readline()  # holds its connection until told
    print(server.connection().zygote_pid, flush=True)
""")


def start_client(socket_dir: Path, idle_exit_seconds: int = 1) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", CLIENT, str(socket_dir / "zygote.sock"), str(idle_exit_seconds)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def test_concurrent_starters_start_one_zygote(socket_dir):
    clients = [start_client(socket_dir) for _ in range(3)]
    try:
        pids = {int(client.stdout.readline()) for client in clients}
        assert len(pids) == 1, f"each starter got its own zygote: {pids}"
    finally:
        for client in clients:
            client.communicate("\n", timeout=EXIT_GUARD_S)
    assert wait_exited(pids.pop())


def test_a_client_killed_leaves_the_zygote_to_the_others_and_a_restarted_one_finds_it(socket_dir):
    starter = start_client(socket_dir, idle_exit_seconds=30)
    zygote = int(starter.stdout.readline())
    other = start_client(socket_dir, idle_exit_seconds=30)
    assert int(other.stdout.readline()) == zygote
    starter.send_signal(signal.SIGKILL)
    starter.wait(timeout=EXIT_GUARD_S)
    restarted = start_client(socket_dir, idle_exit_seconds=30)
    assert int(restarted.stdout.readline()) == zygote
    # The survivor's connection still serves.
    assert int(other.communicate("\n", timeout=EXIT_GUARD_S)[0]) == zygote
    restarted.communicate("\n", timeout=EXIT_GUARD_S)
    os.kill(zygote, signal.SIGTERM)  # 30 s idle: ended here rather than waited for
    assert wait_exited(zygote)


def test_a_socket_path_and_a_shared_socket_together_are_refused(socket_dir):
    both = ServerOptions(socket_path=str(socket_dir / "a.sock"), shared_socket=str(socket_dir / "b.sock"))
    with pytest.raises(forkgym.InvalidRequest, match="not both"):
        Server(both).connection()


def test_a_shared_socket_in_a_missing_directory_is_refused(socket_dir):
    with pytest.raises(forkgym.InvalidRequest, match="directory does not exist"):
        Server(ServerOptions(shared_socket=str(socket_dir / "missing" / "z.sock"))).connection()


def test_a_shared_server_that_cannot_start_says_why(socket_dir):
    with pytest.raises(forkgym.ServerUnavailable, match="unknown option '--no-such-option'"):
        Server(options(socket_dir, extra_args=("--no-such-option",))).connection()


def test_exit_when_idle_needs_a_positive_number_of_seconds(socket_dir):
    server = forkgym.server_binary()
    result = subprocess.run([server, "--socket", str(socket_dir / "z.sock"), "--exit-when-idle", "0"],
                            capture_output=True, text=True, timeout=EXIT_GUARD_S)
    assert result.returncode == 2 and "--exit-when-idle must be 1..86400" in result.stderr
