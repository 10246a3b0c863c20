"""Benchmarks: what an env hands the server, and benchmarks made from your files.

The server resolves every URI itself (``file:///abs/path.{c,cc,cpp,bc,ll}``, a
directory of sources, ``generator://csmith-v0/<seed>``,
``generator://llvm-stress-v0/<seed>``, ``benchmark://forkgym-v0/<name>`` — the
programs bundled with forkgym, ``crc32`` the default — ``benchmark://user-v0/...``
and ``benchmark://<dataset>/...`` of an installed dataset). This module adds:

* :func:`server_uri`: what must happen before a URI goes to the server — a
  catalogue dataset is installed on first use (:mod:`forkgym.datasets`), a
  benchmark held in memory is kept in the cache below.
* :func:`make_benchmark`: a :class:`Benchmark` captured from a path, a list
  of sources, or in-memory bitcode *when it is called*: sources are compiled
  then (by the server), and the module is kept under its content's name in
  this user's benchmark cache (:func:`benchmark_cache_dir`), as
  ``benchmark://user-v0/<content digest>`` (CompilerGym's spelling). Editing
  or deleting the inputs afterwards changes nothing; different content gets a
  different URI; a state naming it replays for as long as the cache keeps it.
  :func:`make_benchmark_from_command_line` does the same for a compiler
  command line.

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
import shlex
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from forkgym.datasets.benchmark import Benchmark, _without_param
from forkgym.errors import BenchmarkNotFound, InvalidRequest
from forkgym.run_config import RUN_KEYWORDS, make_run_config

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


def session_benchmark(benchmark: str | Benchmark, progress: bool | None = None) -> tuple[str, Any]:
    """What a new session is started with: the URI for the server (as
    :func:`server_uri`, without the ``?run=`` naming a run configuration) and
    the benchmark's :class:`forkgym.RunConfig` (the one set on a Benchmark, or
    the one ``?run=<digest>`` names, from the benchmark cache), or None: then
    the server attaches its dataset's, if it has one."""
    if not isinstance(benchmark, Benchmark):
        benchmark = Benchmark(str(benchmark))
    config = benchmark.run_config
    plain = _without_param(benchmark.uri, "run")
    if plain is not benchmark.uri:
        benchmark = Benchmark(str(plain), content=benchmark.content)
    uri = server_uri(benchmark, progress)
    if config is None and benchmark.content is None:
        from forkgym.datasets.dataset import dataset_run_config

        config = dataset_run_config(uri)  # installed now, if it was not
    return uri, config


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
    """Keeps ``content`` in the cache under its digest and returns its Benchmark
    (see :func:`store_file`)."""
    digest = hashlib.sha256(content).hexdigest()[:32]
    store_file(content, benchmark_cache_dir() / (digest + suffix))
    return Benchmark(f"benchmark://{USER_DATASET}/{digest}")


def store_file(content: bytes, final: Path) -> None:
    """Writes ``content`` as ``final`` in the cache, unless it is there already.

    The file appears under its name only once complete. Written to an
    anonymous file (O_TMPFILE) linked in when done, a process killed meanwhile
    leaves nothing; where the file system or the kernel refuses that, to a
    ``.partial-<pid>-*`` file renamed when done, which a later call removes if
    its process is gone."""
    directory = final.parent
    if final.exists():
        return
    _remove_stale(directory)
    try:
        fd = os.open(directory, os.O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, _FILE_MODE)
    except OSError:
        fd = -1
    if fd >= 0:
        try:
            _write_all(fd, content)
            os.link(f"/proc/self/fd/{fd}", final, follow_symlinks=True)
            return
        except FileExistsError:
            return  # the same content, made meanwhile
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
    sources: str | os.PathLike[str] | bytes | Iterable[str | os.PathLike[str]] | None = None,
    /,
    *,
    server: Any = None,
    inputs: Any = None,
    **run: Any,
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

    The keywords of a run configuration (:func:`forkgym.make_run_config`) make it
    runnable: ``build_cmd``, ``run_cmd``, ``args``, ``stdin``, ``inputs`` (files
    for the run directory, read now), ``input_sets``, ``outputs``,
    ``pre_run_cmd``, ``post_run_cmd``, ``build_outfile``, ``build_timeout``,
    ``run_timeout``; e.g. ``make_benchmark("prog.c", run_cmd=["./a.out", "data.txt"],
    inputs=["data.txt"], outputs=["result.txt"])``. Its URI then ends in
    ``?run=<digest of the configuration>``, kept in the same cache. (Called
    with no positional argument, ``inputs=`` names the sources, as in
    CompilerGym's ``make_benchmark(inputs=...)``.)
    """
    if sources is None:
        if inputs is None:
            raise TypeError("make_benchmark() needs the program: a path, several paths, or bitcode bytes")
        sources, inputs = inputs, None
    unknown = sorted(set(run) - set(RUN_KEYWORDS))
    if unknown:
        raise TypeError(f"make_benchmark(): unknown keyword(s) {', '.join(unknown)}; a run configuration's are "
                        f"{', '.join(RUN_KEYWORDS)}")
    if inputs is not None:
        run["inputs"] = inputs
    # The configuration is read (and checked) before anything is compiled.
    config = make_run_config(**run) if any(v is not None for v in run.values()) else None
    benchmark = _make_benchmark(sources, server)
    if config is not None:
        # Benchmark(run_config=) keeps it in the cache, for states naming it.
        benchmark = Benchmark(str(benchmark.uri.with_params(run=config.digest)), run_config=config)
    return benchmark


def _make_benchmark(inputs: Any, server: Any) -> Benchmark:
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
        return _make_benchmark(paths[0], server)
    for p in paths:
        if not p.is_file() or p.suffix not in SOURCE_SUFFIXES:
            raise BenchmarkNotFound(f"{p}: linking several inputs needs existing C/C++ source files")
    # The server compiles a directory of sources: copies, made here for the
    # call and removed after it (or by a later call, if this process dies).
    # Copies, not links: they capture the sources now, and a server started
    # as root reads them as its sandbox user, who may not reach the originals
    # (a home or clone under /root).
    return _compile_copies(paths, "", server)


def _compile_copies(paths: list[Path], prologue: str, server: Any) -> Benchmark:
    """Compiles copies of ``paths``, each opening with ``prologue`` (preprocessor
    lines), linked into one module, and keeps it in the cache."""
    # The server compiles a directory of sources: copies, made here for the
    # call and removed after it (or by a later call, if this process dies).
    # Copies, not links: they capture the sources now, and a server started
    # as root reads them as its sandbox user, who may not reach the originals
    # (a home or clone under /root).
    cache = benchmark_cache_dir()
    _remove_stale(cache)
    key = hashlib.sha256(repr((paths, prologue)).encode()).hexdigest()[:12]
    directory = cache / f"sources-{os.getpid()}-{key}"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(mode=_DIR_MODE)
    try:
        for i, p in enumerate(paths):
            copy = directory / f"{i:03d}_{p.name}"
            if prologue:
                # #line keeps the source's own name in __FILE__ and diagnostics.
                copy.write_bytes(prologue.encode() + f'#line 1 "{p}"\n'.encode() + p.read_bytes())
            else:
                shutil.copyfile(p, copy)
            copy.chmod(_FILE_MODE)
        return _store(_compile("file://" + str(directory) + "/", server), ".bc")
    finally:
        shutil.rmtree(directory, ignore_errors=True)


# make_benchmark_from_command_line(): what each compiler option means here.
# The server compiles every benchmark with its own base command (unoptimised
# IR for the passes to work on), so optimisation, debug, warning, output and
# link options do not change the module and are dropped; preprocessor
# definitions become lines before each source. Anything else would change
# the module in a way the server's command cannot express, so it is refused
# by name rather than dropped silently.
_DROPPED_WITH_VALUE = ("-o", "-MF", "-MT", "-MQ", "-L", "-l", "-Xlinker")
_DROPPED_PREFIXES = ("-O", "-g", "-W", "-w", "-l", "-L", "-M", "-pipe", "-v", "-fcolor-diagnostics",
                     "-fno-color-diagnostics", "-fdiagnostics-")
_DROPPED_FLAGS = ("-c", "-pthread", "-shared", "-static", "-rdynamic", "-s")
_LINK_INPUTS = (".o", ".a", ".so", ".lo")


def _command_line_parts(argv: list[str], cwd: Path) -> tuple[list[Path], list[str], list[str]]:
    """(sources, preprocessor lines, refused options) of a compiler command line."""
    sources: list[Path] = []
    lines: list[str] = []
    refused: list[str] = []
    i = 1  # argv[0] is the compiler, replaced by the server's
    while i < len(argv):
        arg = argv[i]
        value = argv[i + 1] if i + 1 < len(argv) else None

        def joined(flag: str) -> str | None:
            """The value of ``-Dx`` / ``-D x`` forms (and consumes a separate one)."""
            nonlocal i
            if arg == flag:
                if value is None:
                    raise InvalidRequest(f"make_benchmark_from_command_line: {flag} needs a value")
                i += 1
                return value
            return arg[len(flag):] if arg.startswith(flag) else None

        if (define := joined("-D")) is not None:
            name, equals, body = define.partition("=")
            lines.append(f"#define {name} {body if equals else '1'}")
        elif (undefine := joined("-U")) is not None:
            lines.append(f"#undef {undefine}")
        elif arg == "-include":
            included = joined("-include")
            lines.append(f'#include "{(cwd / included).resolve()}"')
        elif (directory := joined("-I")) is not None:
            refused.append(f"-I{directory}")  # the copies are compiled elsewhere, without it
        elif arg in _DROPPED_WITH_VALUE:
            i += 1
        elif arg in _DROPPED_FLAGS or (arg.startswith(_DROPPED_PREFIXES) and not arg.startswith("-Wp,")):
            pass
        elif arg.startswith("-"):
            refused.append(arg)
        else:
            path = (cwd / arg).resolve()
            if path.suffix in _LINK_INPUTS:
                pass  # linked later, not part of this module
            elif path.suffix not in SOURCE_SUFFIXES:
                raise BenchmarkNotFound(f"make_benchmark_from_command_line: '{arg}' is neither an option nor a "
                                        f"C/C++ source ({', '.join(SOURCE_SUFFIXES)})")
            elif not path.is_file():
                raise BenchmarkNotFound(f"make_benchmark_from_command_line: {path}: no such file")
            else:
                sources.append(path)
        i += 1
    return sources, lines, refused


def make_benchmark_from_command_line(
    command_line: str | Sequence[str], *, cwd: str | os.PathLike[str] | None = None, server: Any = None, **run: Any
) -> Benchmark:
    """A Benchmark of what a compiler command line compiles, captured now:
    ``clang -c foo.c bar.c -O2 -DNDEBUG -o foo`` gives the module of ``foo.c`` and
    ``bar.c`` (linked) with ``NDEBUG`` defined, as :func:`make_benchmark` keeps it
    (``benchmark://user-v0/<digest>``).

    The compiler named is replaced by the server's clang and its base command
    (unoptimised IR), as CompilerGym's did. ``-D``/``-U``/``-include`` are
    honoured; output, optimisation, debug, warning, dependency and link
    options, and link inputs (``.o``/``.a``/``.so``), do not change the module
    and are dropped. Any other option (``-I``, ``-std=``, ``-f...``) is refused by
    name: the server compiles a copy of each source with its own options, so
    it could not honour it. A run configuration's keywords are
    :func:`make_benchmark`'s. Relative paths are relative to ``cwd`` (default:
    the current directory); a source's ``#include "..."`` of a file beside it
    is not found in the copy, as with :func:`make_benchmark` of several sources.
    """
    argv = shlex.split(command_line) if isinstance(command_line, str) else [os.fspath(a) for a in command_line]
    if not argv:
        raise InvalidRequest("make_benchmark_from_command_line: the command line is empty")
    sources, lines, refused = _command_line_parts(argv, Path(cwd or os.getcwd()))
    if refused:
        raise InvalidRequest(f"make_benchmark_from_command_line: cannot honour {' '.join(refused)}: the server "
                             f"compiles each source with its own base command, plus -D/-U/-include; drop them, or "
                             f"build the module yourself (clang -emit-llvm -c ... -o x.bc) and give "
                             f"make_benchmark() the .bc")
    if not sources:
        raise BenchmarkNotFound(f"make_benchmark_from_command_line: no C/C++ source in {' '.join(argv)!r}")
    if not lines:
        return make_benchmark(sources if len(sources) > 1 else sources[0], server=server, **run)
    benchmark = _compile_copies(sources, "".join(line + "\n" for line in lines), server)
    if any(v is not None for v in run.values()):
        config = make_run_config(**run)
        benchmark = Benchmark(str(benchmark.uri.with_params(run=config.digest)), run_config=config)
    return benchmark
