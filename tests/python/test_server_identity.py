"""The client talks only to a server run by its own user (or root), and
trusts the default socket only in a directory private to that user."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import pytest

import forkgym

NOBODY = 65534

LISTEN_AS_NOBODY = """
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1])
s.listen(4)
print("ready", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def open_dir():
    path = tempfile.mkdtemp(prefix="fgtest-identity-")
    os.chmod(path, 0o777)  # another user may make its socket here
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_a_socket_served_by_another_user_is_refused(open_dir) -> None:
    if os.geteuid() != 0:
        pytest.skip(f"needs root to serve a socket as another user (uid {NOBODY})")
    socket_path = os.path.join(open_dir, "other.sock")
    # The system interpreter: this one may live where nobody cannot reach.
    other = subprocess.Popen([shutil.which("python3", path="/usr/bin:/bin"), "-c", LISTEN_AS_NOBODY, socket_path], user=NOBODY, group=NOBODY,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "ready"
        with pytest.raises(forkgym.ServerUnavailable) as refused:
            forkgym.make("llvm-v0", server=forkgym.ServerOptions(socket_path=socket_path))
    finally:
        other.stdin.close()
        other.wait()
        other.stdout.close()
    message = str(refused.value)
    assert f"runs as uid {NOBODY}" in message and socket_path in message


def test_a_default_socket_directory_with_the_wrong_mode_is_refused(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert forkgym.default_socket_path() == f"{tmp_path}/forkgym/forkgym.sock"
    (tmp_path / "forkgym").mkdir()
    os.chmod(tmp_path / "forkgym", 0o755)
    with pytest.raises(forkgym.ServerUnavailable, match="mode 0755") as refused:
        forkgym.make("llvm-v0", server=forkgym.ServerOptions(socket_path=forkgym.default_socket_path()))
    assert f"refusing the forkgym socket directory '{tmp_path}/forkgym'" in str(refused.value)
    server = subprocess.run([forkgym.server_binary()], env={**os.environ, "XDG_RUNTIME_DIR": str(tmp_path)},
                            capture_output=True, text=True)
    assert server.returncode == 1 and "refusing the forkgym socket directory" in server.stderr
