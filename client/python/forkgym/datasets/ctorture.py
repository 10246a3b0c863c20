"""``benchmark://gcc-c-torture-v0``: GCC's C torture tests, built on this machine
from Debian's ``gcc-12-source`` package — no download, so it installs where
only package registries are reachable.

The package holds GCC's source tarball (``/usr/src/gcc-12/gcc-12.*.tar.xz``).
Its test suite's ``gcc.c-torture/execute/*.c`` are self-checking programs
(they ``abort()`` on a wrong result: runnable) and ``gcc.c-torture/compile/*.c``
compile-only ones. URIs are ``benchmark://gcc-c-torture-v0/execute/20000112-1``
and ``.../compile/<name>``; the server compiles ``<root>/<path>.c`` on demand
with the catalogue row's flags.

One install (:func:`install`, the catalogue row's installer, called inside
:func:`forkgym.datasets.fetch.install`, which holds the dataset's lock, has
removed what a killed install left, and writes ``dataset.ini`` and the
``.installed`` marker after it), in order:

1. Stream the tarball once, extracting only the regular files directly in
   those two directories (the programs, and the headers some include) into a
   fresh ``<dataset>/.tmp-*`` directory; the rest of GCC is never unpacked.
2. Leave out the programs GCC's own test suite says need options of their
   own or another target (:mod:`forkgym.datasets.gcc_testsuite`).
3. Compile the others with the server's command (``clang -c -emit-llvm -O1
   -Xclang -disable-llvm-passes -Xclang -disable-llvm-optzns`` and the row's
   flags), in parallel over the available cores, each within the server's
   load time limit; leave out those clang rejects.
4. Rename the tree into place as ``<dataset>/<root>`` (replacing one a killed
   install left), write ``excluded.txt`` (the counts, then each program left
   out and why), then the manifest (``execute/<name>`` and ``compile/<name>``,
   sorted). Every file a program includes stays on disk; only the manifest
   leaves programs out.

A kill at any step leaves no marker, so the dataset reads as not installed
and the next install starts over. Any process may call :func:`install`.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import glob
import lzma
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from forkgym.datasets import fetch, gcc_testsuite, paths
from forkgym.datasets.manifest import Manifest
from forkgym.errors import DatasetError

NAME = "gcc-c-torture-v0"
PACKAGE = "gcc-12-source"
# The tarball the package installs (it also holds gm2-*.tar.xz, Modula-2's).
SOURCE_PATTERN = "/usr/src/gcc-12/gcc-12*.tar.*"
DIRECTORIES = ("execute", "compile")
EXCLUDED = "excluded.txt"

# The server's base command for source datasets (before the row's flags).
BASE_COMMAND = ("-c", "-emit-llvm", "-O1", "-Xclang", "-disable-llvm-passes", "-Xclang", "-disable-llvm-optzns")
# The server's limit on one benchmark load (forkserver/loader.h): a program
# that takes longer here would not load there either.
COMPILE_TIMEOUT = 120.0
# The clang the server runs (FORKGYM_LLVM_BIN_DIR), then the packaged name.
CLANG_CANDIDATES = ("/usr/lib/llvm-19/bin/clang", "clang-19")

# A member of GCC's tarball that is one of the dataset's files: a plain name
# (no "..", no leading dot) directly in one of the two directories.
_MEMBER = re.compile(r"(?P<top>[^/]+)/gcc/testsuite/gcc\.c-torture/(?P<dir>execute|compile)/"
                     r"(?P<file>[A-Za-z0-9_+-][A-Za-z0-9_.+-]*\.[ch])")

# For tests that kill an install at a chosen point: called with (step,
# detail) at each step boundary ("extracted", "judged", "compiled",
# "placed"); None otherwise.
_step_hook: Callable[[str, str], None] | None = None


def _step(step: str, detail: str = "") -> None:
    if _step_hook is not None:
        _step_hook(step, detail)


@dataclasses.dataclass
class Report:
    """What an install found and kept."""

    source: str
    found: dict[str, int]  # per directory
    listed: dict[str, int]
    left_out: list[tuple[str, str, str]]  # (path, "suite" | "clang", why)
    command: str

    def by(self, kind: str) -> int:
        return sum(1 for _, k, _ in self.left_out if k == kind)


def find_source() -> Path:
    """GCC's source tarball from the ``gcc-12-source`` package, or a
    :class:`~forkgym.DatasetError` saying how to get it."""
    found = sorted(glob.glob(SOURCE_PATTERN))
    if not found:
        raise DatasetError(f"benchmark://{NAME} is built from GCC's test suite in Debian's {PACKAGE} package, "
                           f"and {SOURCE_PATTERN} is missing: install the package (as root: apt-get install "
                           f"{PACKAGE}), then install the dataset again (python -m forkgym datasets install {NAME})")
    return Path(found[-1])


def find_clang() -> str:
    """The clang the server compiles with."""
    for candidate in CLANG_CANDIDATES:
        path = candidate if os.path.isabs(candidate) else shutil.which(candidate)
        if path and os.access(path, os.X_OK):
            return path
    raise DatasetError(f"benchmark://{NAME} is checked with clang 19 at install, and none of "
                       f"{', '.join(CLANG_CANDIDATES)} is there: install clang-19 (apt-get install clang-19)")


def install(entry: Any, directory: Path) -> None:
    """The catalogue row's installer: fills ``directory`` (contents under the
    row's root, ``excluded.txt``, the manifest) from the package's tarball,
    checking programs with the row's flags."""
    report = build(Path(directory), entry.root, entry.flags, progress=None)
    listed = sum(report.listed.values())
    print(f"{NAME}: {listed:,} programs (" + ", ".join(f"{d} {report.listed[d]:,}" for d in DIRECTORIES)
          + f"); {len(report.left_out)} left out, {report.by('suite')} by GCC's test suite's directives and "
          f"{report.by('clang')} that clang 19 rejects: {Path(directory) / EXCLUDED} says which and why",
          file=sys.stderr)


def build(directory: Path, root: str, flags: str, *, source: Path | None = None, clang: str | None = None,
          jobs: int | None = None, timeout: float = COMPILE_TIMEOUT, progress: bool | None = None) -> Report:
    """Steps 1-4 of the module's install into ``directory`` (held under its
    dataset lock by the caller), with benchmarks at ``directory/root``;
    ``flags`` (``{dataset}`` = ``directory``) follow the base command, as in
    ``dataset.ini``. Returns what was found and kept."""
    directory = Path(directory)
    source = Path(source) if source is not None else find_source()
    clang = clang or find_clang()
    final = directory / root
    if not final.resolve().is_relative_to(directory.resolve()) or final.resolve() == directory.resolve():
        raise ValueError(f"root '{root}' must name a directory inside {directory}")
    args = [*BASE_COMMAND, *flags.replace("{dataset}", str(directory)).split()]
    paths.make_dir(directory)
    # fetch.install removes .tmp-* leftovers of a killed install before calling us.
    staging = Path(tempfile.mkdtemp(dir=directory, prefix=".tmp-"))
    try:
        tree = staging / "tree"
        top, programs = _extract(source, tree)
        _step("extracted", str(len(programs)))
        if not programs:
            raise DatasetError(f"{source} holds no gcc.c-torture/execute or compile programs: it is not GCC's "
                               f"source tarball; reinstall {PACKAGE}")
        host = gcc_testsuite.Host(_triplet(clang), gcc_testsuite.Host.flags + tuple(args[len(BASE_COMMAND):]))
        left_out: list[tuple[str, str, str]] = []
        to_compile: list[str] = []
        for path in programs:
            text = (tree / f"{path}.c").read_text(encoding="latin-1")
            why = gcc_testsuite.judge(text, host, path.split("/", 1)[0])
            if why is None:
                to_compile.append(path)
            else:
                left_out.append((path, "suite", why))
        _step("judged", str(len(to_compile)))
        for path, why in _check(clang, args, tree, to_compile, jobs, timeout, progress):
            left_out.append((path, "clang", why))
        _step("compiled", str(len(left_out)))
        left = {path for path, _, _ in left_out}
        listed = [path for path in programs if path not in left]
        report = Report(
            source=f"{source} ({top})",
            found={d: sum(1 for p in programs if p.startswith(d + "/")) for d in DIRECTORIES},
            listed={d: sum(1 for p in listed if p.startswith(d + "/")) for d in DIRECTORIES},
            left_out=sorted(left_out, key=lambda item: _order(item[0])),
            command=" ".join([clang, *args, "<program>.c"]))

        paths.make_dir(final.parent)
        if final.exists() or final.is_symlink():
            os.rename(final, staging / "old")
        os.rename(tree, final)
        _step("placed", str(final))
        fetch.atomic_write(directory / EXCLUDED, _excluded_text(report))
        Manifest.write(directory, listed)
        return report
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _order(path: str) -> tuple[int, str]:
    directory, name = path.split("/", 1)
    return DIRECTORIES.index(directory), name


def _extract(source: Path, tree: Path) -> tuple[str, list[str]]:
    """Streams ``source`` once, writing the dataset's files under ``tree``;
    returns the tarball's top directory and the programs (``execute/<name>``),
    in manifest order."""
    # Root's installs are read by its server's sandbox user: fetch._share makes
    # them readable by all whatever the umask (anyone else's keep their umask).
    for made in (tree, *(tree / d for d in DIRECTORIES)):
        made.mkdir()
        fetch._share(made, 0o755)
    top = ""
    programs = []
    try:
        with tarfile.open(source, "r|*") as tar:
            for member in tar:
                match = _MEMBER.fullmatch(member.name)
                if match is None or not member.isreg():
                    continue
                top = match["top"]
                target = tree / match["dir"] / match["file"]
                with tar.extractfile(member) as data, open(target, "wb") as out:  # type: ignore[union-attr]
                    fetch._share(out.fileno(), 0o644)
                    shutil.copyfileobj(data, out)
                if target.suffix == ".c":
                    programs.append(f"{match['dir']}/{target.stem}")
    except (tarfile.TarError, EOFError, OSError, lzma.LZMAError, zlib.error) as e:
        raise DatasetError(f"{source} could not be read ({e}): it is damaged or not GCC's source tarball; "
                           f"reinstall the package (apt-get install --reinstall {PACKAGE})") from None
    return top, sorted(set(programs), key=_order)


def _triplet(clang: str) -> str:
    """The target triplet clang compiles for (what the suite's selectors match)."""
    try:
        out = subprocess.run([clang, "-print-target-triple"], capture_output=True, text=True, timeout=60, check=True)
    except (OSError, subprocess.SubprocessError) as e:
        raise DatasetError(f"{clang} -print-target-triple failed ({e}): check that clang 19 works") from None
    return out.stdout.strip()


def _compile(clang: str, args: Sequence[str], file: Path, timeout: float) -> str | None:
    """None when clang compiles ``file`` with ``args``; else why not."""
    try:
        result = subprocess.run([clang, *args, "-o", os.devnull, str(file)], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=timeout,
                                env={**os.environ, "SOURCE_DATE_EPOCH": "0"})
    except subprocess.TimeoutExpired:
        return f"clang 19 takes more than {timeout:g} s (the server's load limit)"
    if result.returncode == 0:
        return None
    if result.returncode < 0:
        return f"clang 19 crashes (signal {-result.returncode})"
    lines = result.stderr.decode(errors="replace").splitlines()
    error = next((line for line in lines if "error:" in line), lines[-1] if lines else "")
    # "<dir>/<name>.c:12:3: error: ..." -> "line 12: error: ..."
    error = re.sub(r"^.*?:(\d+):\d+: ", r"line \1: ", error.replace(str(file.parent) + "/", "")).strip()
    return f"clang 19 rejects it: {error or f'exit status {result.returncode}'}"


def _check(clang: str, args: Sequence[str], tree: Path, programs: Sequence[str], jobs: int | None, timeout: float,
           progress: bool | None) -> list[tuple[str, str]]:
    """The programs clang rejects, with why: one compile each, ``jobs`` at a time
    (default: the cores this process may use)."""
    jobs = jobs or len(os.sched_getaffinity(0))
    bar = _progress(len(programs), progress)
    rejected = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(_compile, clang, args, tree / f"{path}.c", timeout): path for path in programs}
        try:
            for future in concurrent.futures.as_completed(futures):
                why = future.result()
                if why is not None:
                    rejected.append((futures[future], why))
                if bar is not None:
                    bar.update(1)
        except BaseException:
            for future in futures:
                future.cancel()
            raise
        finally:
            if bar is not None:
                bar.close()
    return rejected


def _progress(total: int, progress: bool | None):
    if progress is None:
        progress = sys.stderr.isatty()
    if not progress:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=f"{NAME}: compiling with clang 19", unit=" programs", file=sys.stderr)


def _excluded_text(report: Report) -> str:
    found, listed = report.found, report.listed
    lines = [
        f"# Programs of GCC's gcc.c-torture left out of {NAME}'s manifest.txt, and why.",
        f"# Source: {report.source}, Debian package {PACKAGE}.",
        f"# Found {sum(found.values())}: " + ", ".join(f"{d} {found[d]}" for d in DIRECTORIES) + ".",
        f"# Listed {sum(listed.values())}: " + ", ".join(f"{d} {listed[d]}" for d in DIRECTORIES) + ".",
        f"# Left out {len(report.left_out)}: {report.by('suite')} that GCC's test suite says need options of "
        f"their own or another target (their dg- directives), {report.by('clang')} that clang 19 does not "
        f"compile with the server's command:",
        f"#   {report.command}",
        "# One line each: <path><TAB><why>.",
    ]
    lines += [f"{path}\t{why}" for path, _, why in report.left_out]
    return "\n".join(lines) + "\n"
