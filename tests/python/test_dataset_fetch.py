"""Downloads a user can trust (forkgym.datasets.fetch, paths, manifest).

Every download comes from a loopback HTTP server these tests start, serving
archives and manifests the tests build; nothing reaches another host. Backoff
is shrunk to microseconds (never a sleep to synchronise): the processes the
tests kill stop at a point they announce on a pipe.
"""

from __future__ import annotations

import bz2
import gzip
import hashlib
import http.server
import io
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import textwrap
import threading
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import forkgym
from forkgym.datasets import fetch, paths
from forkgym.datasets.fetch import Archive
from forkgym.datasets.manifest import Manifest
from datasets_fixtures import Loopback, Respond, ok, status

FAST = {"backoff": 1e-4}  # retries in tests wait microseconds, not seconds


# ---------------------------------------------------------------------------
# Fixtures: private directories, a loopback server, archives built here


@pytest.fixture
def scratch() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="fgtest-fetch-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def dirs(scratch: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Site data and cache inside the scratch directory; no mirror, no proxy."""
    monkeypatch.setenv("FORKGYM_SITE_DATA", str(scratch / "site"))
    monkeypatch.setenv("FORKGYM_CACHE", str(scratch / "cache"))
    for variable in ("FORKGYM_DATASET_MIRROR", "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY",
                     "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(variable, raising=False)
    return scratch


def truncated(data: bytes, sent: threading.Event | None = None, hold: threading.Event | None = None) -> Respond:
    """Announces all of ``data``, sends half, then (after ``hold``, if given) closes."""
    def respond(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data[: len(data) // 2])
        handler.wfile.flush()
        if sent is not None:
            sent.set()
        if hold is not None:
            hold.wait(60)
        handler.close_connection = True
    return respond


def truncated_chunked(data: bytes) -> Respond:
    """Sends ``data`` chunked (no length announced, as GitHub's archives are),
    stopping in the middle of a chunk."""
    def respond(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        handler.wfile.write(b"%x\r\n" % len(data) + data[: len(data) // 2])
        handler.wfile.flush()
        handler.close_connection = True
    return respond


def gated(data: bytes, arrived: threading.Event, release: threading.Event) -> Respond:
    def respond(handler: http.server.BaseHTTPRequestHandler) -> None:
        arrived.set()
        release.wait(60)
        ok(data)(handler)
    return respond


@pytest.fixture
def http_server() -> Iterator[Loopback]:
    server = Loopback()
    try:
        yield server
    finally:
        server.close()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tarball(members: dict[str, bytes], compression: str = "bz2") -> bytes:
    """A tar archive of regular files (and directories for names ending in '/')."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode=f"w:{compression}") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name.rstrip("/"))
            if name.endswith("/"):
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            else:
                info.size = len(data)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def raw_tarball(infos: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for info, data in infos:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


TOY = {
    "toy-v0/": b"",
    "toy-v0/a.c": b"int a(void) { return 1; }\n",
    "toy-v0/sub/": b"",
    "toy-v0/sub/b.c": b"int b(void) { return 2; }\n",
    "toy-v0/sub/c.c": b"int c(void) { return 3; }\n",
    "elsewhere/readme": b"not under the prefix\n",
}
TOY_TAR = tarball(TOY)
TOY_INI = {"uri": "benchmark://toy-v0", "kind": "source", "root": "contents/toy-v0", "suffix": ".c",
           "language": "c"}


def toy_archive(url: str, data: bytes = TOY_TAR) -> Archive:
    return Archive(urls=(url,), sha256=sha(data), strip_prefix="toy-v0", name="toy-v0.tar.bz2")


def assert_toy_installed(dataset: Path) -> None:
    assert fetch.is_installed(dataset)
    root = dataset / "contents" / "toy-v0"
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) == ["a.c", "sub", "sub/b.c", "sub/c.c"]
    assert (root / "sub" / "b.c").read_bytes() == TOY["toy-v0/sub/b.c"]
    assert not (dataset / "contents" / "elsewhere").exists()  # only the prefix is extracted
    assert not list(dataset.glob(".tmp-*"))


def assert_nothing_installed(dataset: Path) -> None:
    assert not fetch.is_installed(dataset)
    assert not (dataset / "contents").exists()
    assert not list(dataset.glob(".tmp-*"))


def no_partial_downloads() -> bool:
    return not list(paths.downloads_dir().glob("*.part-*"))


# ---------------------------------------------------------------------------
# Directories


def test_directories_follow_forkgym_variables_then_xdg_then_defaults(monkeypatch: pytest.MonkeyPatch,
                                                                        scratch: Path) -> None:
    for variable in ("FORKGYM_SITE_DATA", "FORKGYM_CACHE", "XDG_DATA_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(variable, raising=False)
    if paths.AS_ROOT:
        assert paths.site_data_dir() == Path("/var/lib/forkgym")
        assert paths.cache_dir() == Path("/var/cache/forkgym")
    else:
        assert paths.site_data_dir() == Path.home() / ".local/share/forkgym"
        assert paths.cache_dir() == Path.home() / ".cache/forkgym"
    monkeypatch.setenv("XDG_DATA_HOME", str(scratch / "xdg-data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(scratch / "xdg-cache"))
    assert paths.site_data_dir() == scratch / "xdg-data" / "forkgym"
    assert paths.cache_dir() == scratch / "xdg-cache" / "forkgym"
    monkeypatch.setenv("FORKGYM_SITE_DATA", str(scratch / "site"))
    monkeypatch.setenv("FORKGYM_CACHE", str(scratch / "cache"))
    assert paths.site_data_dir() == scratch / "site"
    assert paths.cache_dir() == scratch / "cache"
    assert paths.dataset_dir("benchmark://cbench-v1") == scratch / "site" / "datasets" / "cbench-v1"
    assert paths.dataset_dir("cbench-v1") == scratch / "site" / "datasets" / "cbench-v1"
    assert paths.downloads_dir() == scratch / "cache" / "downloads"
    for bad in ("", "..", "a/b", "benchmark://../x", ".hidden"):
        with pytest.raises(ValueError, match="not a dataset name"):
            paths.dataset_dir(bad)


# ---------------------------------------------------------------------------
# Downloads and installs


def test_install_downloads_once_checks_extracts_the_prefix_and_marks_it_installed(
        dirs: Path, http_server: Loopback) -> None:
    url = http_server.script("/toy-v0.tar.bz2", ok(TOY_TAR))
    dataset = paths.dataset_dir("toy-v0")
    assert fetch.install(dataset, [toy_archive(url)], ini=TOY_INI) == dataset
    assert_toy_installed(dataset)
    assert (dataset / "dataset.ini").read_text() == (
        "uri = benchmark://toy-v0\nkind = source\nroot = contents/toy-v0\nsuffix = .c\nlanguage = c\n")
    assert fetch.cached_path(sha(TOY_TAR)).read_bytes() == TOY_TAR
    assert http_server.hits["/toy-v0.tar.bz2"] == 1
    # Installed: nothing is fetched again, by install() or download().
    fetch.install(dataset, [toy_archive(url)], ini=TOY_INI)
    assert fetch.download(url, sha(TOY_TAR)) == fetch.cached_path(sha(TOY_TAR))
    assert http_server.hits["/toy-v0.tar.bz2"] == 1
    # Uninstalled: the marker and the contents go, the download stays cached.
    fetch.uninstall(dataset)
    assert_nothing_installed(dataset)
    fetch.install(dataset, [toy_archive(url)], ini=TOY_INI)
    assert_toy_installed(dataset)
    assert http_server.hits["/toy-v0.tar.bz2"] == 1


def test_a_damaged_cached_download_is_fetched_again(dirs: Path, http_server: Loopback) -> None:
    url = http_server.script("/toy-v0.tar.bz2", ok(TOY_TAR))
    cached = fetch.download(url, sha(TOY_TAR), **FAST)
    cached.write_bytes(TOY_TAR[:-10])  # bit rot, or a wrong file placed by hand
    assert fetch.download(url, sha(TOY_TAR), **FAST).read_bytes() == TOY_TAR
    assert http_server.hits["/toy-v0.tar.bz2"] == 2


def test_a_checksum_mismatch_is_refused_at_once_and_nothing_is_extracted(dirs: Path, http_server: Loopback) -> None:
    tampered = tarball({**TOY, "toy-v0/a.c": b"int a(void) { return 666; }\n"})
    url = http_server.script("/toy-v0.tar.bz2", ok(tampered))
    dataset = paths.dataset_dir("toy-v0")
    with pytest.raises(forkgym.ChecksumMismatch) as caught:
        fetch.install(dataset, [toy_archive(url)], ini=TOY_INI, **FAST)
    message = str(caught.value)
    assert sha(tampered) in message and sha(TOY_TAR) in message and url in message
    assert "nothing of it was used" in message
    assert http_server.hits["/toy-v0.tar.bz2"] == 1  # not retried
    assert_nothing_installed(dataset)
    assert not fetch.cached_path(sha(TOY_TAR)).exists() and no_partial_downloads()


def test_a_truncated_download_is_retried_and_never_kept(dirs: Path, http_server: Loopback) -> None:
    url = http_server.script("/toy-v0.tar.bz2", truncated(TOY_TAR), ok(TOY_TAR))
    dataset = paths.dataset_dir("toy-v0")
    fetch.install(dataset, [toy_archive(url)], ini=TOY_INI, **FAST)
    assert_toy_installed(dataset)
    assert http_server.hits["/toy-v0.tar.bz2"] == 2

    other = tarball({"other/file": b"other\n" * 100})
    chunked = http_server.script("/chunked.tar.bz2", truncated_chunked(other), ok(other))
    assert fetch.download(chunked, sha(other), **FAST).read_bytes() == other
    assert http_server.hits["/chunked.tar.bz2"] == 2
    fetch.cached_path(sha(other)).unlink()

    always = http_server.script("/always-short.tar.bz2", truncated(other))
    with pytest.raises(forkgym.DownloadFailed, match="truncated: received") as caught:
        fetch.download(always, sha(other), max_retries=2, **FAST)
    assert "after 3 tries" in str(caught.value)
    assert http_server.hits["/always-short.tar.bz2"] == 3
    assert no_partial_downloads()


@pytest.mark.parametrize("code", [429, 500, 503])
def test_a_busy_server_is_retried_with_backoff_until_it_answers(dirs: Path, http_server: Loopback, code: int,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    waits: list[float] = []
    monkeypatch.setattr(fetch.time, "sleep", waits.append)  # record the schedule instead of waiting it
    url = http_server.script("/toy-v0.tar.bz2", status(code), status(code), status(code), ok(TOY_TAR))
    dataset = paths.dataset_dir("toy-v0")
    fetch.install(dataset, [toy_archive(url)], ini=TOY_INI, backoff=0.5)
    assert_toy_installed(dataset)
    assert http_server.hits["/toy-v0.tar.bz2"] == 4
    assert waits == [0.5, 1.0, 2.0]  # exponential
    # Each wait is said, with its reason.
    said = [r.getMessage() for r in caplog.records if r.name == "forkgym.datasets"]
    assert len(said) == 3 and all(f"HTTP {code}" in m and "toy-v0.tar.bz2" in m for m in said), said
    assert "try 2 of 5 in 0.5 s" in said[0]


def test_retries_are_bounded(dirs: Path, http_server: Loopback) -> None:
    url = http_server.script("/toy-v0.tar.bz2", status(429))
    with pytest.raises(forkgym.DownloadFailed, match="HTTP 429") as caught:
        fetch.download(url, sha(TOY_TAR), max_retries=3, **FAST)
    assert "after 4 tries" in str(caught.value)
    assert http_server.hits["/toy-v0.tar.bz2"] == 4


def test_a_missing_file_fails_at_once_and_falls_back_to_the_next_url(dirs: Path, http_server: Loopback) -> None:
    missing = http_server.url("/gone/toy-v0.tar.bz2")
    with pytest.raises(forkgym.DownloadFailed, match="HTTP 404") as caught:
        fetch.download(missing, sha(TOY_TAR), **FAST)
    assert "tries" not in str(caught.value)
    assert http_server.hits["/gone/toy-v0.tar.bz2"] == 1
    fallback = http_server.script("/toy-v0.tar.bz2", ok(TOY_TAR))
    assert fetch.download([missing, fallback], sha(TOY_TAR), **FAST).read_bytes() == TOY_TAR
    assert http_server.hits["/gone/toy-v0.tar.bz2"] == 2


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_with_no_server_the_error_says_how_to_place_the_file_by_hand(dirs: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/compiler_gym/toy-v0.tar.bz2"
    dataset = paths.dataset_dir("toy-v0")
    with pytest.raises(forkgym.DownloadFailed) as caught:
        fetch.install(dataset, [toy_archive(url)], ini=TOY_INI, max_retries=1, **FAST)
    message = str(caught.value)
    for needed in ("toy-v0.tar.bz2", url, sha(TOY_TAR), "cannot connect", str(fetch.cached_path(sha(TOY_TAR))),
                   "FORKGYM_DATASET_MIRROR"):
        assert needed in message, (needed, message)
    assert isinstance(caught.value, OSError)
    assert_nothing_installed(dataset)
    # Following the advice: the file placed by hand installs with no network.
    placed = fetch.cached_path(sha(TOY_TAR))
    placed.write_bytes(TOY_TAR)
    fetch.install(dataset, [toy_archive(url)], ini=TOY_INI, max_retries=0)
    assert_toy_installed(dataset)


def test_the_mirror_variable_takes_a_directory(dirs: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mirror = dirs / "mirror"
    mirror.mkdir()
    (mirror / "toy-v0.tar.bz2").write_bytes(TOY_TAR)
    monkeypatch.setenv("FORKGYM_DATASET_MIRROR", str(mirror))
    # The catalogue's host is never asked (nothing listens there).
    url = f"http://127.0.0.1:{free_port()}/some/path/toy-v0.tar.bz2"
    dataset = paths.dataset_dir("toy-v0")
    fetch.install(dataset, [toy_archive(url)], ini=TOY_INI, max_retries=0)
    assert_toy_installed(dataset)
    # The checksum still applies; a file the mirror lacks names the mirror's path.
    (mirror / "toy-v0.tar.bz2").write_bytes(TOY_TAR + b"garbage")
    fetch.cached_path(sha(TOY_TAR)).unlink()
    with pytest.raises(forkgym.ChecksumMismatch):
        fetch.download(url, sha(TOY_TAR), max_retries=0)
    (mirror / "toy-v0.tar.bz2").unlink()
    with pytest.raises(forkgym.DownloadFailed, match="no such file") as caught:
        fetch.download(url, sha(TOY_TAR), max_retries=0)
    assert str(mirror / "toy-v0.tar.bz2") in str(caught.value)


def test_the_mirror_variable_takes_a_base_url(dirs: Path, http_server: Loopback,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    http_server.script("/mirror/toy-v0.tar.bz2", ok(TOY_TAR))
    monkeypatch.setenv("FORKGYM_DATASET_MIRROR", http_server.url("/mirror/"))
    url = f"http://127.0.0.1:{free_port()}/github/archive/toy-v0.tar.bz2?raw=true"
    dataset = paths.dataset_dir("toy-v0")
    fetch.install(dataset, [toy_archive(url)], ini=TOY_INI, max_retries=0)
    assert_toy_installed(dataset)
    assert http_server.hits == {"/mirror/toy-v0.tar.bz2": 1}


def test_threads_downloading_the_same_file_share_one_download(dirs: Path, http_server: Loopback) -> None:
    arrived, release = threading.Event(), threading.Event()
    url = http_server.script("/toy-v0.tar.bz2", gated(TOY_TAR, arrived, release))
    results: list[Path | BaseException] = []

    def worker() -> None:
        try:
            results.append(fetch.download(url, sha(TOY_TAR), **FAST))
        except BaseException as e:  # noqa: BLE001 - reported below
            results.append(e)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    assert arrived.wait(60)
    release.set()
    for t in threads:
        t.join(60)
    assert results == [fetch.cached_path(sha(TOY_TAR))] * 4
    assert http_server.hits["/toy-v0.tar.bz2"] == 1


def test_the_dataset_lock_can_be_taken_again_by_its_holder(dirs: Path, http_server: Loopback) -> None:
    url = http_server.script("/toy-v0.tar.bz2", ok(TOY_TAR))
    dataset = paths.dataset_dir("toy-v0")
    finished = threading.Event()

    def finish(directory: Path) -> None:
        with fetch.dataset_lock(directory):  # e.g. writing the manifest, as listing does
            Manifest.write(directory, ["a", "sub/b", "sub/c"])

    def install() -> None:
        fetch.install(dataset, [toy_archive(url)], ini=TOY_INI, finish=finish)
        finished.set()

    # In a thread, so that a lock waiting for itself fails this test instead of hanging the suite.
    threading.Thread(target=install, daemon=True).start()
    assert finished.wait(60), "install() waited for its own lock"
    assert_toy_installed(dataset)
    assert list(Manifest(dataset)) == ["a", "sub/b", "sub/c"]


# ---------------------------------------------------------------------------
# Other processes: installing at once, and killed mid-install

CHILD = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from forkgym.datasets import fetch, paths

    url, digest, report_fd, stop_at = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    log = os.environ["FGTEST_STEP_LOG"]

    def hook(step, detail):
        with open(log, "a") as f:
            f.write(f"{os.getpid()} {step} {detail}\\n")
        if f"{step} {detail}" == stop_at:
            os.write(report_fd, b"stopped\\n")
            while True:  # wait here to be killed
                signal.pause()

    fetch._step_hook = hook
    archive = fetch.Archive(urls=(url,), sha256=digest, strip_prefix="toy-v0", name="toy-v0.tar.bz2")
    os.write(report_fd, b"start\\n")
    fetch.install(paths.dataset_dir("toy-v0"), [archive], ini={"uri": "benchmark://toy-v0"}, backoff=1e-4)
    os.write(report_fd, b"done\\n")
""")


def start_child(dirs: Path, url: str, stop_at: str = "") -> tuple[subprocess.Popen, int]:
    read_end, write_end = os.pipe()
    env = {**os.environ, "FGTEST_STEP_LOG": str(dirs / "steps.log")}
    child = subprocess.Popen([sys.executable, "-c", CHILD, url, sha(TOY_TAR), str(write_end), stop_at],
                             env=env, pass_fds=(write_end,))
    os.close(write_end)
    return child, read_end


def read_line(fd: int) -> bytes:
    line = b""
    while not line.endswith(b"\n"):
        byte = os.read(fd, 1)
        if not byte:
            return line
        line += byte
    return line


def steps(dirs: Path) -> list[str]:
    log = dirs / "steps.log"
    return [line.split(" ", 1)[1] for line in log.read_text().splitlines()] if log.exists() else []


def test_four_processes_installing_at_once_download_and_extract_once(dirs: Path, http_server: Loopback) -> None:
    arrived, release = threading.Event(), threading.Event()
    url = http_server.script("/toy-v0.tar.bz2", gated(TOY_TAR, arrived, release))
    children = [start_child(dirs, url) for _ in range(4)]
    try:
        # The download is held until every process has started installing.
        for _, fd in children:
            assert read_line(fd) == b"start\n"
        assert arrived.wait(60)
        release.set()
        for child, fd in children:
            assert read_line(fd) == b"done\n"
            assert child.wait(60) == 0
    finally:
        release.set()
        for child, fd in children:
            child.kill()
            child.wait()
            os.close(fd)
    assert http_server.hits["/toy-v0.tar.bz2"] == 1
    assert steps(dirs).count("downloaded toy-v0.tar.bz2") == 1
    assert steps(dirs).count("switched contents") == 1
    assert_toy_installed(paths.dataset_dir("toy-v0"))


@pytest.mark.parametrize("stop_at", [
    "member toy-v0/sub/b.c",   # mid-extraction, in the temporary directory
    "switching contents",      # extracted, not yet in place
    "switched contents",       # in place, dataset.ini and the marker not written
    "marking toy-v0",          # dataset.ini written, the marker not
])
def test_a_process_killed_mid_install_leaves_no_half_dataset_and_a_retry_succeeds(
        dirs: Path, http_server: Loopback, stop_at: str) -> None:
    url = http_server.script("/toy-v0.tar.bz2", ok(TOY_TAR))
    child, fd = start_child(dirs, url, stop_at)
    try:
        assert read_line(fd) == b"start\n"
        assert read_line(fd) == b"stopped\n"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        os.close(fd)
    dataset = paths.dataset_dir("toy-v0")
    assert not fetch.is_installed(dataset)
    fetch.install(dataset, [toy_archive(url)], ini=TOY_INI)
    assert_toy_installed(dataset)
    assert http_server.hits["/toy-v0.tar.bz2"] == 1  # the verified download was kept


def test_a_process_killed_mid_download_leaves_no_cached_file_and_a_retry_succeeds(
        dirs: Path, http_server: Loopback) -> None:
    sent, hold = threading.Event(), threading.Event()
    url = http_server.script("/toy-v0.tar.bz2", truncated(TOY_TAR, sent, hold), ok(TOY_TAR))
    child, fd = start_child(dirs, url)
    try:
        assert read_line(fd) == b"start\n"
        assert sent.wait(60)  # half the body is on its way: the child is writing its partial file
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        hold.set()
        os.close(fd)
    assert not fetch.cached_path(sha(TOY_TAR)).exists()
    dataset = paths.dataset_dir("toy-v0")
    fetch.install(dataset, [toy_archive(url)], ini=TOY_INI)
    assert_toy_installed(dataset)
    assert no_partial_downloads()


PROGRESS_CHILD = textwrap.dedent("""
    import sys
    from forkgym.datasets import fetch
    fetch.download(sys.argv[1], sys.argv[2], name="toy-v0.tar.bz2", max_retries=0)
""")


def test_a_progress_bar_shows_on_a_terminal_and_nowhere_else(dirs: Path, http_server: Loopback) -> None:
    import fcntl
    import pty
    import struct
    import termios

    url = http_server.script("/toy-v0.tar.bz2", ok(TOY_TAR))
    # stderr a pipe: silent.
    quiet = subprocess.run([sys.executable, "-c", PROGRESS_CHILD, url, sha(TOY_TAR)], capture_output=True,
                           timeout=120)
    assert quiet.returncode == 0 and quiet.stderr == b""
    # stderr a terminal: the bar, named after the file.
    fetch.cached_path(sha(TOY_TAR)).unlink()
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))  # a new pty is 0 columns wide
    child = subprocess.Popen([sys.executable, "-c", PROGRESS_CHILD, url, sha(TOY_TAR)], stderr=terminal)
    os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(controller)
    assert child.wait(120) == 0
    assert b"toy-v0.tar.bz2:" in shown and f"/{len(TOY_TAR)} ".encode() in shown and b"B/s" in shown, shown
    assert http_server.hits["/toy-v0.tar.bz2"] == 2


FULL_DISK_CHILD = textwrap.dedent("""
    import resource, signal, sys
    from forkgym.datasets import fetch, paths
    from forkgym.errors import DatasetError
    # Files may not grow past 4 KiB here: what a full disk does to a write.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
    for url, digest, prefix in zip(sys.argv[1::3], sys.argv[2::3], sys.argv[3::3]):
        archive = fetch.Archive(urls=(url,), sha256=digest, strip_prefix=prefix)
        try:
            fetch.install(paths.dataset_dir(prefix), [archive], ini={"uri": "benchmark://" + prefix}, backoff=1e-4)
        except DatasetError as e:
            print(type(e).__name__, e)
""")


def test_a_full_disk_is_named_as_such_and_not_retried(dirs: Path, http_server: Loopback) -> None:
    big_download = os.urandom(8192)  # incompressible: the download itself does not fit
    big_download_tar = tarball({"big-v0/noise": big_download}, "gz")
    big_file_tar = tarball({"zeros-v0/zeros": bytes(65536)})  # a small download whose file does not fit
    assert len(big_file_tar) < 4096
    first = http_server.script("/big-v0.tar.gz", ok(big_download_tar))
    second = http_server.script("/zeros-v0.tar.bz2", ok(big_file_tar))
    child = subprocess.run([sys.executable, "-c", FULL_DISK_CHILD, first, sha(big_download_tar), "big-v0",
                            second, sha(big_file_tar), "zeros-v0"], capture_output=True, text=True, timeout=120)
    assert child.returncode == 0, child.stderr
    download_error, extract_error = child.stdout.splitlines()
    assert download_error.startswith("DatasetError could not write the download big-v0.tar.gz to ")
    assert "File too large" in download_error and "FORKGYM_CACHE" in download_error
    assert extract_error.startswith("DatasetError could not extract zeros-v0.tar.bz2 into ")
    assert "Nothing was installed" in extract_error and "FORKGYM_SITE_DATA" in extract_error
    assert http_server.hits == {"/big-v0.tar.gz": 1, "/zeros-v0.tar.bz2": 1}
    assert no_partial_downloads()
    assert_nothing_installed(paths.dataset_dir("zeros-v0"))


# ---------------------------------------------------------------------------
# Hostile archives


def member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.mode = 0o644
    return info


HOSTILE = {
    "dot-dot": [(member("toy-v0/../../outside"), b"x")],
    "dot-dot-deep": [(member("toy-v0/sub/../../../outside"), b"x")],
    "absolute": [(member("/tmp/fgtest-outside-absolute"), b"x")],
    "symlink-out": [(member("toy-v0/link", tarfile.SYMTYPE, "../../../outside"), None)],
    "symlink-absolute": [(member("toy-v0/link", tarfile.SYMTYPE, "/etc/passwd"), None)],
    "write-through-symlink": [(member("toy-v0/link", tarfile.SYMTYPE, "."), None),
                              (member("toy-v0/link/x"), b"x")],
    "symlink-chain-out": [(member("toy-v0/", tarfile.DIRTYPE), None),
                          (member("toy-v0/a/b/", tarfile.DIRTYPE), None),
                          (member("toy-v0/a/b/p", tarfile.SYMTYPE, "../.."), None),
                          (member("toy-v0/x", tarfile.SYMTYPE, "a/b/p/../../../../outside"), None)],
    "symlink-loop": [(member("toy-v0/l1", tarfile.SYMTYPE, "l2"), None),
                     (member("toy-v0/l2", tarfile.SYMTYPE, "l1"), None)],
    "hardlink-out": [(member("toy-v0/h", tarfile.LNKTYPE, "../outside"), None)],
    "hardlink-absolute": [(member("toy-v0/h", tarfile.LNKTYPE, "/etc/passwd"), None)],
    "hardlink-to-nothing-extracted": [(member("toy-v0/h", tarfile.LNKTYPE, "etc/passwd"), None)],
    "character-device": [(member("toy-v0/null", tarfile.CHRTYPE), None)],
    "block-device": [(member("toy-v0/sda", tarfile.BLKTYPE), None)],
    "fifo": [(member("toy-v0/pipe", tarfile.FIFOTYPE), None)],
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_members_that_would_land_outside_the_dataset_refuse_the_archive_before_anything_is_written(
        dirs: Path, http_server: Loopback, case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # A normal file first, so "nothing is written" is visible: it must not be.
    data = raw_tarball([(member("toy-v0/a.c"), b"int a;\n")] + HOSTILE[case])
    url = http_server.script("/hostile.tar.gz", ok(data))
    written: list[str] = []
    monkeypatch.setattr(fetch, "_step_hook", lambda step, detail: written.append(f"{step} {detail}"))
    dataset = paths.dataset_dir("toy-v0")
    with pytest.raises(forkgym.UnsafeArchive, match="nothing was extracted"):
        fetch.install(dataset, [Archive(urls=(url,), sha256=sha(data), strip_prefix="toy-v0")], ini=TOY_INI)
    assert not [w for w in written if w.startswith(("member", "switch"))]
    assert_nothing_installed(dataset)
    # All that exists is the verified download, the locks and the empty dataset directory.
    everything = sorted(p.relative_to(dirs).as_posix() for p in dirs.rglob("*"))
    assert everything == ["cache", "cache/downloads", f"cache/downloads/{sha(data)}",
                          f"cache/downloads/{sha(data)}.lock", "site", "site/datasets", "site/datasets/.toy-v0.lock",
                          "site/datasets/toy-v0"]
    assert not Path("/tmp/fgtest-outside-absolute").exists()


def test_links_inside_the_tree_are_extracted(dirs: Path) -> None:
    data = raw_tarball([
        (member("toy-v0/a.c"), b"int a;\n"),
        (member("toy-v0/sub/", tarfile.DIRTYPE), None),
        (member("toy-v0/sub/up", tarfile.SYMTYPE, "../a.c"), None),
        (member("toy-v0/sub/same", tarfile.LNKTYPE, "toy-v0/a.c"), None),
        (member("toy-v0/dangling-but-inside", tarfile.SYMTYPE, "sub/none"), None),
    ])
    archive = dirs / "links.tar.gz"
    archive.write_bytes(data)
    dataset = paths.dataset_dir("toy-v0")
    with fetch.dataset_lock(dataset):
        root = fetch.extract(archive, dataset, "toy-v0")
    assert root == dataset / "contents" / "toy-v0"
    assert (root / "sub" / "up").read_bytes() == b"int a;\n" and (root / "sub" / "up").is_symlink()
    assert (root / "sub" / "same").stat().st_ino == (root / "a.c").stat().st_ino


def test_roots_installs_are_readable_by_its_sandbox_user_whatever_the_umask(dirs: Path, http_server: Loopback) -> None:
    info = member("toy-v0/sub/run.sh")
    info.mode = 0o755
    data = raw_tarball([(member("toy-v0/a.c"), b"int a;\n"), (info, b"#!/bin/sh\n")])
    url = http_server.script("/toy-v0.tar.gz", ok(data))
    notes = http_server.script("/notes.txt.bz2", ok(bz2.compress(b"notes\n")))
    previous = os.umask(0o077)
    try:
        dataset = paths.dataset_dir("toy-v0")
        fetch.install(dataset, [Archive(urls=(url,), sha256=sha(data), strip_prefix="toy-v0"),
                                Archive(urls=(notes,), sha256=sha(bz2.compress(b"notes\n")))], ini=TOY_INI)
    finally:
        os.umask(previous)
    shared = paths.AS_ROOT  # root's server reads as nobody; anyone else's as them, so their umask holds
    modes = {p.relative_to(dirs).as_posix(): p.stat().st_mode & 0o777
             for p in [dirs / "site", *(dirs / "site").rglob("*")] if not p.name.endswith(".lock")}
    for path, mode in modes.items():
        if path.endswith("run.sh"):
            assert mode == (0o755 if shared else 0o700), (path, oct(mode))
        elif (dirs / path).is_dir():
            assert mode == (0o755 if shared else 0o700), (path, oct(mode))
        else:
            assert mode == (0o644 if shared else 0o600), (path, oct(mode))
    assert "site/datasets/toy-v0/contents/toy-v0/a.c" in modes and "site/datasets/toy-v0/notes.txt" in modes
    assert "site/datasets/toy-v0/dataset.ini" in modes and "site/datasets/toy-v0/.installed" in modes


def test_single_compressed_files_and_tarballs_named_like_them(dirs: Path) -> None:
    dataset = paths.dataset_dir("toy-v0")
    text = b"line one\nline two\n"
    for suffix, compress in ((".bz2", bz2.compress), (".gz", gzip.compress)):
        archive = dirs / f"notes.txt{suffix}"
        archive.write_bytes(compress(text))
        assert fetch.extract(archive, dataset, name=archive.name).read_bytes() == text
    # jotaibench's "jotaibench.bz2" is a bzip2 tarball: recognised by content.
    archive = dirs / "jotaibench.bz2"
    archive.write_bytes(TOY_TAR)
    assert (fetch.extract(archive, dataset, "toy-v0", name=archive.name) / "a.c").read_bytes() == TOY["toy-v0/a.c"]
    # A prefix the archive lacks is a catalogue error, said before anything is written.
    with pytest.raises(forkgym.DatasetError, match="no 'cBench-v1' directory"):
        fetch.extract(archive, dataset, "cBench-v1", name=archive.name)


# ---------------------------------------------------------------------------
# Manifests


def test_a_manifest_is_built_from_a_compressed_download_and_read_lazily(dirs: Path) -> None:
    lines = [f"dir{i % 97}/prog-{i}" for i in range(1_000_000)]
    source = dirs / "manifest.bz2"
    source.write_bytes(bz2.compress(("\n".join(lines) + "\n").encode()))
    dataset = paths.dataset_dir("big-v0")
    built = Manifest.build(dataset, source)
    assert len(built) == 1_000_000
    idx = np.fromfile(dataset / "manifest.idx", dtype="<u8")
    assert idx.size == 1_000_001 and idx[0] == 0 and idx[-1] == (dataset / "manifest.txt").stat().st_size

    # Opened afresh: counting and drawing never read the list into memory.
    tracemalloc.start()
    try:
        manifest = Manifest(dataset)
        assert len(manifest) == 1_000_000
        rng = np.random.default_rng(7)
        drawn = [manifest.random(rng) for _ in range(1000)]
        assert manifest[0] == lines[0] and manifest[-1] == lines[-1] and manifest[123_456] == lines[123_456]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 << 20, f"{peak} bytes allocated: the list was materialised"
    expected = np.random.default_rng(7).integers(1_000_000, size=1)  # the same draws, by index
    assert drawn[0] == lines[int(expected[0])]
    assert set(drawn) <= set(lines)
    assert "dir5/prog-5" in manifest and "dir5/prog" not in manifest
    with pytest.raises(IndexError):
        manifest[1_000_000]
    assert sum(1 for _ in manifest) == 1_000_000


def test_a_manifest_drops_blank_lines_and_trailing_space_and_catches_damage(dirs: Path) -> None:
    dataset = paths.dataset_dir("small-v0")
    source = dirs / "manifest.gz"
    source.write_bytes(gzip.compress(b"a/one\r\n\nb/two  \n\nc/three"))
    manifest = Manifest.build(dataset, source)
    assert list(manifest) == ["a/one", "b/two", "c/three"]
    assert manifest.random(random.Random(1)) in {"a/one", "b/two", "c/three"}
    assert list(Manifest.write(dataset, ["x", "y/z"])) == ["x", "y/z"]
    assert list(Manifest.write(dataset, [])) == [] and len(Manifest(dataset)) == 0
    Manifest.write(dataset, ["x", "y/z"])
    with open(dataset / "manifest.idx", "r+b") as f:
        f.truncate(8 * 2)
    with pytest.raises(forkgym.DatasetError, match="damaged"):
        len(Manifest(dataset))
    assert not list(dataset.glob(".tmp-*"))
