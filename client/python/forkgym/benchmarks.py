"""Benchmarks: URIs the server understands, plus a small bundled dataset.

The server loads benchmarks by URI (``file:///abs/path.{c,cc,cpp,bc,ll}``, a
directory of sources, ``generator://csmith-v0/<seed>``,
``generator://llvm-stress-v0/<seed>``). This module adds:

* ``benchmark://forkgym-v0/<name>``: small C programs shipped inside the
  package (``crc32``, ``small``), so an env works with no benchmark given and
  no download. The default benchmark is ``benchmark://forkgym-v0/crc32`` —
  a cBench-style CRC-32, about 140 IR instructions at -O0.
* :func:`make_benchmark`: a :class:`Benchmark` captured from a path, a list
  of sources, or in-memory bitcode *when it is called*: sources are compiled
  then (by the server), and the module is kept under its content's name in
  this user's benchmark cache (:func:`benchmark_cache_dir`), as
  ``benchmark://user-v0/<content digest>`` (CompilerGym's spelling). Editing
  or deleting the inputs afterwards changes nothing; different content gets a
  different URI; a state naming it replays for as long as the cache keeps it.

Why a content-addressed cache rather than a temporary file or a memfd: a
state or reproducer must still name a loadable benchmark after the process
that made it has exited (or been killed), which a memfd or an unlinked file
cannot be; and a file named by its content is written once, atomically
(O_TMPFILE, then linked under its name), so a client killed at any moment
leaves either nothing or the finished file — never a temporary one in /tmp.
(Where the kernel refuses that link, a private partial file in the cache is
renamed instead, and removed by a later call if its writer was killed.) The cache holds one file per distinct content made; delete the
directory to empty it.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from forkgym.datasets.benchmark import Benchmark
from forkgym.errors import BenchmarkNotFound

BUNDLED_DATASET = "forkgym-v0"
USER_DATASET = "user-v0"  # what make_benchmark() made, by content digest
DEFAULT_BENCHMARK = f"benchmark://{BUNDLED_DATASET}/crc32"
SOURCE_SUFFIXES = (".c", ".cc", ".cpp", ".cxx")
IR_SUFFIXES = (".bc", ".ll")
_BUNDLED_DIR = Path(__file__).resolve().parent / "benchmarks"


def bundled_benchmarks() -> list[str]:
    """URIs of the benchmarks shipped inside the package."""
    return sorted(
        f"benchmark://{BUNDLED_DATASET}/{p.stem}" for p in _BUNDLED_DIR.iterdir() if p.suffix in SOURCE_SUFFIXES
    )


def canonical_uri(benchmark: str | Benchmark | os.PathLike[str]) -> str:
    """The user-facing URI: bare ``dataset/name`` becomes ``benchmark://dataset/name``
    and a plain existing path becomes ``file://``."""
    if isinstance(benchmark, Benchmark):
        return str(benchmark.uri)
    text = os.fspath(benchmark)
    if "://" in text:
        return text
    if os.path.exists(text):
        return "file://" + os.path.abspath(text)
    return "benchmark://" + text


def server_uri(benchmark: str | Benchmark, progress: bool | None = None) -> str:
    """The URI to hand the server for ``benchmark``, after what must happen first:

    * ``benchmark://<dataset>/...``: the dataset must exist, and a catalogue
      dataset is installed now if it is not (a download, shown on a terminal);
      the URI itself goes to the server, which resolves it
      (:func:`forkgym.datasets.ensure_installed`);
    * a Benchmark holding its program (``Benchmark.from_file_contents``): kept in
      the benchmark cache by content, handed over as ``benchmark://user-v0/<digest>``;
    * ``file://``: the file must exist; ``generator://``: as it is.

    Raises BenchmarkNotFound early, with advice, instead of a round trip that
    would fail; a failed install raises a DatasetError naming the file and the fix.
    """
    if isinstance(benchmark, Benchmark) and benchmark.content is not None:
        return str(_store(benchmark.content, benchmark.content_suffix).uri)
    uri = str(benchmark.uri if isinstance(benchmark, Benchmark) else benchmark)
    scheme, _, rest = uri.partition("://")
    if scheme == "benchmark":
        from forkgym.datasets.dataset import ensure_installed

        ensure_installed(uri, progress=progress)
        return uri
    if scheme == "file":
        path = rest if rest.startswith("/") else "/" + rest
        if not os.path.exists(path):
            raise BenchmarkNotFound(f"{path}: no such file; file:// URIs need an absolute path that exists")
        return "file://" + path
    if scheme == "generator":
        # Each backend has its own generators: the server resolves them and
        # names its own when one is unknown.
        return uri
    raise BenchmarkNotFound(f"unknown scheme in '{uri}'; use benchmark://, file:// or generator://")


# A server started as root loads benchmarks as its unprivileged sandbox user
# (nobody; README, "Threat model"), which must be able to read what
# make_benchmark() hands it: root's cache is readable by all, and outside
# /root (whose home is private). Anyone else's server runs as them.
_AS_ROOT = os.geteuid() == 0
_FILE_MODE = 0o644 if _AS_ROOT else 0o600
_DIR_MODE = 0o755 if _AS_ROOT else 0o700


def benchmark_cache_dir() -> Path:
    """Where :func:`make_benchmark` keeps what it made: ``$FORKGYM_CACHE_DIR/benchmarks``,
    else ``<cache>/benchmarks`` of the dataset cache (:func:`forkgym.datasets.paths.cache_dir`:
    ``$FORKGYM_CACHE``, else ``$XDG_CACHE_HOME/forkgym``, else ``~/.cache/forkgym``;
    for root ``/var/cache/forkgym``, readable by the server's sandbox user).
    Created private to this user."""
    from forkgym.datasets.paths import cache_dir

    root = os.environ.get("FORKGYM_CACHE_DIR")
    directory = (Path(root) if root else cache_dir()) / "benchmarks"
    directory.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
    return directory


def _store(content: bytes, suffix: str) -> Benchmark:
    """Keeps ``content`` in the cache under its digest and returns its Benchmark.

    The file appears under its name only once complete. Written to an
    anonymous file (O_TMPFILE) linked in when done, a process killed meanwhile
    leaves nothing; where the file system or the kernel refuses that, to a
    ``.partial-<pid>-*`` file renamed when done, which a later call removes if
    its process is gone."""
    digest = hashlib.sha256(content).hexdigest()[:32]
    directory = benchmark_cache_dir()
    final = directory / (digest + suffix)
    if final.exists():
        return Benchmark(f"benchmark://{USER_DATASET}/{digest}")
    _remove_stale(directory)
    try:
        fd = os.open(directory, os.O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, _FILE_MODE)
    except OSError:
        fd = -1
    if fd >= 0:
        try:
            _write_all(fd, content)
            os.link(f"/proc/self/fd/{fd}", final, follow_symlinks=True)
            return Benchmark(f"benchmark://{USER_DATASET}/{digest}")
        except FileExistsError:
            return Benchmark(f"benchmark://{USER_DATASET}/{digest}")  # the same content, made meanwhile
        except OSError:
            pass  # e.g. EXDEV: linking a /proc/self/fd entry is refused here
        finally:
            os.close(fd)
    partial = directory / f".partial-{os.getpid()}-{secrets.token_hex(8)}"
    fd = os.open(partial, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, _FILE_MODE)
    try:
        _write_all(fd, content)
    finally:
        os.close(fd)
    os.replace(partial, final)
    return Benchmark(f"benchmark://{USER_DATASET}/{digest}")


def _write_all(fd: int, content: bytes) -> None:
    view = memoryview(content)
    while view:
        view = view[os.write(fd, view):]
    os.fsync(fd)


def _remove_stale(directory: Path) -> None:
    """What make_benchmark calls of processes that are gone left unfinished."""
    for entry in [*directory.glob(".partial-*"), *directory.glob("sources-*")]:
        pid = entry.name.lstrip(".").split("-")[1]
        try:
            os.kill(int(pid), 0)
            continue
        except PermissionError:
            continue
        except (ValueError, ProcessLookupError):
            pass
        if entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def _compile(uri: str, server: Any) -> bytes:
    """The module the server makes of ``uri`` (sources compiled now), as bitcode."""
    from forkgym import _forkgym
    from forkgym.errors import from_outcome
    from forkgym.server import shared_server

    server = server if server is not None else shared_server(None)
    native = _forkgym.Env(server.connection(), 300.0, 300.0, 0, 0)
    try:
        native.reset(uri)
        result = native.step([], ["Bitcode"], [])
        if not result.ok:
            raise from_outcome(result.outcome, result.message, result.signal)
        return bytes(result.observations[0])
    finally:
        native.close()


def make_benchmark(
    inputs: str | os.PathLike[str] | bytes | Iterable[str | os.PathLike[str]], *, server: Any = None
) -> Benchmark:
    """A Benchmark captured now from source or IR files, a directory, or bitcode bytes.

    * ``bytes`` of bitcode, or one ``.bc``/``.ll`` file: its bytes, as they are now;
    * one ``.c/.cc/.cpp/.cxx`` file, a directory of sources, or several source
      paths (linked into one module): compiled now by the server (``server``,
      else the default one), with the headers they include as they are now.

    The result is ``benchmark://user-v0/<digest of the module>``, kept in
    :func:`benchmark_cache_dir`: the same content always gets the same URI,
    different content a different one, and changing or deleting the inputs
    afterwards changes nothing.
    """
    if isinstance(inputs, (bytes, bytearray, memoryview)):
        content = bytes(inputs)
        if not content:
            raise BenchmarkNotFound("make_benchmark(bytes): the bitcode is empty")
        return _store(content, ".bc")
    if isinstance(inputs, (str, os.PathLike)):
        path = Path(inputs).resolve()
        if not path.exists():
            raise BenchmarkNotFound(f"{path}: no such file")
        if path.is_file() and path.suffix not in SOURCE_SUFFIXES + IR_SUFFIXES:
            raise BenchmarkNotFound(f"{path}: unknown file type; give .c, .cc, .cpp, .cxx, .bc or .ll")
        if path.is_file() and path.suffix in IR_SUFFIXES:
            return _store(path.read_bytes(), path.suffix)
        return _store(_compile("file://" + str(path) + ("/" if path.is_dir() else ""), server), ".bc")
    paths = [Path(p).resolve() for p in inputs]
    if len(paths) == 1:
        return make_benchmark(paths[0], server=server)
    for p in paths:
        if not p.is_file() or p.suffix not in SOURCE_SUFFIXES:
            raise BenchmarkNotFound(f"{p}: linking several inputs needs existing C/C++ source files")
    # The server compiles a directory of sources: copies, made here for the
    # call and removed after it (or by a later call, if this process dies).
    # Copies, not links: they capture the sources now, and a server started
    # as root reads them as its sandbox user, who may not reach the originals
    # (a home or clone under /root).
    cache = benchmark_cache_dir()
    _remove_stale(cache)
    directory = cache / f"sources-{os.getpid()}-{hashlib.sha256(repr(paths).encode()).hexdigest()[:12]}"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(mode=_DIR_MODE)
    try:
        for i, p in enumerate(paths):
            copy = directory / f"{i:03d}_{p.name}"
            shutil.copyfile(p, copy)
            copy.chmod(_FILE_MODE)
        return _store(_compile("file://" + str(directory) + "/", server), ".bc")
    finally:
        shutil.rmtree(directory, ignore_errors=True)
