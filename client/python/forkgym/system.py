"""What forkgym needs from the system, as data, and the check made at import.

The wheel holds the extension ``forkgym._forkgym`` and ``forkgym-server``,
both linked against Debian 12's shared libraries (Cap'n Proto, spdlog, fmt,
cpuinfo; LLVM 19, libseccomp, libelf and libnettle are linked into the
server), and the server runs tools (clang, llvm-stress,
csmith, gcc) for some benchmarks and backends. None of this can come from
PyPI, so ``import forkgym`` checks it:

- a missing library would stop the extension or the server from loading:
  the import raises ``ImportError`` naming each missing library, its
  Debian package and the ``apt-get install`` command;
- a missing tool only disables what needs it: the import warns once
  (:class:`SystemDependencyWarning`), naming what it disables and the command.

``FORKGYM_NO_SYSTEM_CHECK=1`` skips both. ``forkgym system`` prints
every row with whether it was found.

The check must cost nothing measurable at import: a library is looked up in
the dynamic loader's cache file (``/etc/ld.so.cache``, which holds every
soname ``ldconfig`` indexed) and on ``LD_LIBRARY_PATH``; only if one seems
missing is the loader itself asked (``ldd`` on the binaries), so a wrong
guess never blocks an import.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# The wheel is built against Debian 12's llvm-19 packages, whose tools live here.
LLVM_BIN = "/usr/lib/llvm-19/bin"
LOADER_CACHE = Path("/etc/ld.so.cache")
PACKAGE_DIR = Path(__file__).resolve().parent


class SystemDependencyWarning(UserWarning):
    """A system tool forkgym runs for some benchmarks or backends is missing."""


@dataclass(frozen=True)
class Requirement:
    """One thing the package needs from the system and the Debian package that provides it."""

    name: str  # a library's soname, a program's name, or a directory
    package: str  # the Debian 12 package to install
    needed_for: str
    kind: str  # "library" (loaded by the extension or server), "program" (on PATH), "path" (absolute)


# LLVM, libseccomp, libelf and libnettle are linked into the server
# (cmake/static_libraries.cmake): nothing to install for them.
LIBRARIES = (
    Requirement("libcapnp-0.9.2.so", "libcapnp-0.9.2", "the extension and the server (messages)", "library"),
    Requirement("libkj-0.9.2.so", "libcapnp-0.9.2", "the extension and the server (messages)", "library"),
    Requirement("libspdlog.so.1.10", "libspdlog1.10", "the server (logging)", "library"),
    Requirement("libfmt.so.9", "libfmt9", "the server (logging)", "library"),
    Requirement("libcpuinfo.so.0", "libcpuinfo0", "the server (the CpuInfo observation)", "library"),
)

TOOLS = (
    Requirement(f"{LLVM_BIN}/clang", "clang-19", "C benchmarks (cBench, c-torture, csmith, your sources)", "path"),
    Requirement("clang-19", "clang-19", "runnable benchmarks (linking and running programs)", "program"),
    Requirement(f"{LLVM_BIN}/llvm-stress", "llvm-19", "generator://llvm-stress-v0 benchmarks", "path"),
    Requirement(f"{LLVM_BIN}/opt", "llvm-19", "replaying a state's command line by hand (opt -passes=...)", "path"),
    Requirement("csmith", "csmith", "generator://csmith-v0 benchmarks", "program"),
    Requirement("/usr/include/csmith", "libcsmith-dev", "generator://csmith-v0 benchmarks (csmith.h)", "path"),
    Requirement("gcc", "gcc", "the gcc-v0 environment", "program"),
)


def _loader_cache() -> bytes:
    try:
        return LOADER_CACHE.read_bytes()
    except OSError:
        return b""


def library_seems_found(soname: str, cache: bytes | None = None) -> bool:
    """Whether the dynamic loader will likely find ``soname`` (its cache, LD_LIBRARY_PATH)."""
    if (soname.encode() + b"\0") in (_loader_cache() if cache is None else cache):
        return True
    directories = [d for d in os.environ.get("LD_LIBRARY_PATH", "").split(":") if d]
    return any(os.path.exists(os.path.join(d, soname)) for d in directories)


def tool_found(requirement: Requirement) -> bool:
    if requirement.kind == "program":
        return shutil.which(requirement.name) is not None
    return os.path.exists(requirement.name)


def _binaries() -> list[Path]:
    return [*PACKAGE_DIR.glob("_forkgym*.so"), PACKAGE_DIR / "bin" / "forkgym-server"]


def libraries_the_loader_misses(binaries: Iterable[Path]) -> set[str] | None:
    """The sonames the dynamic loader reports ``not found`` for any of
    ``binaries`` (None if it could not be asked)."""
    missing: set[str] = set()
    for binary in binaries:
        if not binary.exists():
            continue
        try:
            out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, timeout=60).stdout
        except (OSError, subprocess.SubprocessError):
            return None
        missing.update(line.split()[0] for line in out.splitlines() if "not found" in line)
    return missing


def install_command(requirements: Iterable[Requirement]) -> str:
    packages = list(dict.fromkeys(r.package for r in requirements))
    sudo = "" if os.geteuid() == 0 else "sudo "
    return f"{sudo}apt-get install {' '.join(packages)}"


def missing_libraries_message(missing: list[Requirement]) -> str:
    lines = "\n".join(f"  {r.name} (Debian package {r.package}): needed by {r.needed_for}" for r in missing)
    return (f"forkgym cannot load: these system libraries are missing:\n{lines}\n"
            f"Install them with: {install_command(missing)}\n"
            "(forkgym's binaries are built for Debian 12 with LLVM 19: see 'System requirements' in the README; "
            "FORKGYM_NO_SYSTEM_CHECK=1 skips this check)")


def missing_tools_message(missing: list[Requirement]) -> str:
    lines = "\n".join(f"  {r.name} (Debian package {r.package}): {r.needed_for}" for r in missing)
    return (f"forkgym: these tools are not installed, so what needs them will fail:\n{lines}\n"
            f"Install them with: {install_command(missing)}  (FORKGYM_NO_SYSTEM_CHECK=1 silences this)")


def check_at_import(seems_found: Callable[[str], bool] | None = None,
                    loader_misses: Callable[[], set[str] | None] | None = None) -> None:
    """Raises ImportError for missing libraries (confirmed by the loader),
    warns once for missing tools. The arguments replace the lookups (tests)."""
    if os.environ.get("FORKGYM_NO_SYSTEM_CHECK") == "1":
        return
    if seems_found is None:
        cache = _loader_cache()
        seems_found = lambda soname: library_seems_found(soname, cache)  # noqa: E731
    suspects = [r for r in LIBRARIES if not seems_found(r.name)]
    if suspects:
        confirmed = (loader_misses or (lambda: libraries_the_loader_misses(_binaries())))()
        missing = [r for r in suspects if confirmed is None or r.name in confirmed]
        if missing:
            raise ImportError(missing_libraries_message(missing))
    tools = [r for r in TOOLS if not tool_found(r)]
    if tools:
        warnings.warn(missing_tools_message(tools), SystemDependencyWarning, stacklevel=3)


def configure(parser: Any) -> None:
    """``forkgym system`` takes no arguments (forkgym.cli)."""


def run(arguments: Any = None) -> int:
    """``forkgym system``: every requirement, found or missing (exit status 1 if any is missing)."""
    cache = _loader_cache()
    missing = []
    for requirement in (*LIBRARIES, *TOOLS):
        found = library_seems_found(requirement.name, cache) if requirement.kind == "library" \
            else tool_found(requirement)
        missing += [] if found else [requirement]
        print(f"{'ok     ' if found else 'MISSING'} {requirement.name:32} {requirement.package:16} "
              f"{requirement.needed_for}")
    if missing:
        print(f"\nto install what is missing: {install_command(missing)}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(run())
