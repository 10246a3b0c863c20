"""Benchmarks: URIs the server understands, plus a small bundled dataset.

The server loads benchmarks by URI (``file:///abs/path.{c,cc,cpp,bc,ll}``, a
directory of sources, ``generator://csmith-v0/<seed>``,
``generator://llvm-stress-v0/<seed>``). This module adds:

* ``benchmark://forkgym-v0/<name>``: small C programs shipped inside the
  package (``crc32``, ``small``), so an env works with no benchmark given and
  no download. The default benchmark is ``benchmark://forkgym-v0/crc32`` —
  a cBench-style CRC-32, about 140 IR instructions at -O0.
* :func:`make_benchmark`: a :class:`Benchmark` from a path, a list of
  sources, or in-memory bitcode (written to a temporary file the Benchmark
  owns and deletes when it is garbage collected or closed).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from collections.abc import Iterable, Iterator
from pathlib import Path

from forkgym.errors import BenchmarkNotFound

BUNDLED_DATASET = "forkgym-v0"
DEFAULT_BENCHMARK = f"benchmark://{BUNDLED_DATASET}/crc32"
SOURCE_SUFFIXES = (".c", ".cc", ".cpp", ".cxx")
IR_SUFFIXES = (".bc", ".ll")
_BUNDLED_DIR = Path(__file__).resolve().parent / "benchmarks"
_GENERATORS = ("csmith-v0", "llvm-stress-v0")


class Benchmark:
    """A benchmark URI, optionally owning the temporary files behind it.

    Compares equal to its URI string, so ``env.benchmark == "benchmark://..."``
    works as it did in CompilerGym.
    """

    def __init__(self, uri: str, *, owned_path: str | None = None) -> None:
        self.uri = uri
        self._owned = owned_path
        self._finalizer = weakref.finalize(self, _remove, owned_path) if owned_path else None

    def close(self) -> None:
        """Deletes the temporary file or directory this benchmark owns, if any."""
        if self._finalizer is not None:
            self._finalizer()

    def __str__(self) -> str:
        return self.uri

    def __repr__(self) -> str:
        return f"Benchmark({self.uri!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Benchmark):
            return self.uri == other.uri
        if isinstance(other, str):
            return self.uri == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.uri)


def _remove(path: str) -> None:
    if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def bundled_benchmarks() -> list[str]:
    """URIs of the benchmarks shipped inside the package."""
    return sorted(
        f"benchmark://{BUNDLED_DATASET}/{p.stem}" for p in _BUNDLED_DIR.iterdir() if p.suffix in SOURCE_SUFFIXES
    )


def canonical_uri(benchmark: str | Benchmark | os.PathLike[str]) -> str:
    """The user-facing URI: bare ``dataset/name`` becomes ``benchmark://dataset/name``
    and a plain existing path becomes ``file://``."""
    if isinstance(benchmark, Benchmark):
        return benchmark.uri
    text = os.fspath(benchmark)
    if "://" in text:
        return text
    if os.path.exists(text):
        return "file://" + os.path.abspath(text)
    return "benchmark://" + text


def server_uri(uri: str) -> str:
    """What the server loads for a user-facing URI; raises BenchmarkNotFound early
    with advice instead of a round trip that would fail."""
    scheme, _, rest = uri.partition("://")
    if scheme == "benchmark":
        dataset, _, name = rest.partition("/")
        if dataset == BUNDLED_DATASET:
            for suffix in SOURCE_SUFFIXES:
                path = _BUNDLED_DIR / (name + suffix)
                if path.is_file():
                    return "file://" + str(path)
            raise BenchmarkNotFound(
                f"no benchmark '{name}' in {BUNDLED_DATASET}; it has {', '.join(bundled_benchmarks())}"
            )
        raise BenchmarkNotFound(
            f"dataset '{dataset}' is not available: forkgym does not download CompilerGym's datasets. "
            f"Use file:///abs/path.{{c,bc,ll}} (CompilerGym's LLVM 10 bitcode loads fine), "
            f"generator://csmith-v0/<seed>, or {DEFAULT_BENCHMARK}"
        )
    if scheme == "file":
        path = rest if rest.startswith("/") else "/" + rest
        if not os.path.exists(path):
            raise BenchmarkNotFound(f"{path}: no such file; file:// URIs need an absolute path that exists")
        return "file://" + path
    if scheme == "generator":
        generator = rest.partition("/")[0]
        if generator not in _GENERATORS:
            raise BenchmarkNotFound(f"unknown generator '{generator}'; use one of {', '.join(_GENERATORS)}")
        return uri
    raise BenchmarkNotFound(f"unknown scheme in '{uri}'; use benchmark://, file:// or generator://")


def make_benchmark(inputs: str | os.PathLike[str] | bytes | Iterable[str | os.PathLike[str]]) -> Benchmark:
    """A Benchmark from source or IR files, a directory, or in-memory bitcode.

    * one ``.c/.cc/.cpp/.bc/.ll`` path, or a directory of sources: loaded by URI
      (the server compiles sources with clang-19 -O0 in a child process);
    * several source paths: linked into one module (via a temporary directory
      of symlinks that the Benchmark owns);
    * ``bytes`` of bitcode: written to a temporary ``.bc`` file that the
      Benchmark owns and deletes when closed or garbage collected. Keep the
      Benchmark referenced (the env does) while episodes may reload it.
    """
    if isinstance(inputs, (bytes, bytearray, memoryview)):
        fd, path = tempfile.mkstemp(prefix="forkgym-", suffix=".bc")
        with os.fdopen(fd, "wb") as out:
            out.write(bytes(inputs))
        return Benchmark("file://" + path, owned_path=path)
    if isinstance(inputs, (str, os.PathLike)):
        path = Path(inputs).resolve()
        if not path.exists():
            raise BenchmarkNotFound(f"{path}: no such file")
        if path.is_file() and path.suffix not in SOURCE_SUFFIXES + IR_SUFFIXES:
            raise BenchmarkNotFound(f"{path}: unknown file type; give .c, .cc, .cpp, .bc or .ll")
        return Benchmark("file://" + str(path) + ("/" if path.is_dir() else ""))
    paths = [Path(p).resolve() for p in inputs]
    if len(paths) == 1:
        return make_benchmark(paths[0])
    for p in paths:
        if not p.is_file() or p.suffix not in SOURCE_SUFFIXES:
            raise BenchmarkNotFound(f"{p}: linking several inputs needs existing C/C++ source files")
    directory = tempfile.mkdtemp(prefix="forkgym-sources-")
    for i, p in enumerate(paths):
        os.symlink(p, os.path.join(directory, f"{i:03d}_{p.name}"))
    return Benchmark("file://" + directory + "/", owned_path=directory)


class Datasets:
    """A small stand-in for CompilerGym's ``env.datasets``: what can be loaded here."""

    def benchmark_uris(self) -> Iterator[str]:
        """The bundled benchmarks (generators are infinite and not listed)."""
        return iter(bundled_benchmarks())

    def benchmark(self, uri: str) -> Benchmark:
        """Checks ``uri`` names a loadable benchmark and returns it."""
        canonical = canonical_uri(uri)
        server_uri(canonical)
        return Benchmark(canonical)

    def random_benchmark(self, random_state=None) -> Benchmark:
        """A csmith program with a random seed (an infinite dataset, as in CompilerGym)."""
        import numpy as np

        rng = random_state if random_state is not None else np.random.default_rng()
        return Benchmark(f"generator://csmith-v0/{int(rng.integers(0, 2**31))}")

    def __iter__(self) -> Iterator[str]:
        return iter([BUNDLED_DATASET, *_GENERATORS])
