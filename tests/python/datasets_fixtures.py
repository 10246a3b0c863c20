"""What the dataset tests share: private site-data and cache directories, a
loopback HTTP server they start themselves, and archives and manifests they
build. Nothing reaches another host: the real catalogue is only read, and
datasets the tests install are test-only catalogue rows
(``catalogue.extended``) whose URLs are the loopback server's.
"""

from __future__ import annotations

import bz2
import collections
import hashlib
import http.server
import io
import shutil
import tarfile
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

import forkgym
from forkgym.datasets.catalogue import Remote

# A source the datasets tests compile with -DSCALE=... -DOFFSET=...
SOURCE_TEXT = "int scaled(int x) { return x * SCALE + OFFSET; }\n"


Respond = Callable[[http.server.BaseHTTPRequestHandler], None]


def ok(data: bytes) -> Respond:
    def respond(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)
    return respond


def status(code: int) -> Respond:
    def respond(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(code)
        handler.send_header("Content-Length", "0")
        handler.end_headers()
    return respond


class Loopback:
    """An HTTP server on 127.0.0.1 answering each path from a script of
    responses (the last one repeats) and counting the requests per path; a
    path with no script is a 404."""

    def __init__(self) -> None:
        self.routes: dict[str, list[Respond]] = {}
        self.hits: collections.Counter[str] = collections.Counter()
        self.lock = threading.Lock()
        loopback = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                with loopback.lock:
                    loopback.hits[self.path] += 1
                    script = loopback.routes.get(self.path)
                    respond = (script.pop(0) if len(script) > 1 else script[0]) if script else status(404)
                respond(self)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       name="fgtest-loopback", daemon=True)
        self.thread.start()

    def script(self, path: str, *responses: Respond) -> str:
        """Answers ``path`` ("/name") with ``responses`` in turn; returns its URL."""
        with self.lock:
            self.routes[path] = list(responses)
        return self.url(path)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def serve(self, name: str, data: bytes) -> Remote:
        """Serves ``data`` as ``name``; returns the catalogue's view of it."""
        return Remote((self.script(f"/{name}", ok(data)),), hashlib.sha256(data).hexdigest())

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.fixture(scope="module")
def loopback() -> Iterator[Loopback]:
    server = Loopback()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def site(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Private site-data and cache directories (readable by a root server's sandbox
    user), no mirror, no proxy; what a server started in the test inherits."""
    root = Path(tempfile.mkdtemp(prefix="fgtest-datasets-"))
    root.chmod(0o755)
    monkeypatch.setenv("FORKGYM_SITE_DATA", str(root / "site"))
    monkeypatch.setenv("FORKGYM_CACHE", str(root / "cache"))
    for variable in ("FORKGYM_DATASET_MIRROR", "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY",
                     "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(variable, raising=False)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def tarball(files: Mapping[str, bytes], mode: str = "w:bz2") -> bytes:
    """A tar archive of ``files`` (path -> contents), with an entry for each
    directory (as tar and GitHub's archives have), compressed as ``mode`` says."""
    buffer = io.BytesIO()
    directories = sorted({"/".join(path.split("/")[:i]) for path in files for i in range(1, path.count("/") + 1)})
    with tarfile.open(fileobj=buffer, mode=mode) as tar:
        for path in directories:
            info = tarfile.TarInfo(path)
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
        for path, data in sorted(files.items()):
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def manifest(lines: list[str]) -> bytes:
    """A bz2 manifest, as CompilerGym's downloads are."""
    return bz2.compress(("\n".join(lines) + "\n").encode())


@pytest.fixture(scope="module")
def bitcodes() -> dict[str, bytes]:
    """Bitcode of the bundled programs, as the server compiles them."""
    out = {}
    with forkgym.make("llvm-v0") as env:
        for name in ("crc32", "small"):
            env.reset(benchmark=f"benchmark://forkgym-v0/{name}")
            out[name] = env.bitcode
    return out


def ir_sha1(env, benchmark) -> str:
    """The IR hash of ``benchmark`` as ``env`` resets to it."""
    env.reset(benchmark=benchmark)
    return env.ir_sha1
