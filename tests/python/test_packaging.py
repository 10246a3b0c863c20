"""Packaging: what the package needs from the system is declared, checked at
import with a message saying what is missing and how to install it, and a
missing generator tool is a clear benchmark error, not a server failure."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import forkgym

TIMEOUT_S = 300  # only turns a hang into a failure


def _run_python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=TIMEOUT_S, env=env)


def _path_without(tmp_path: Path, *missing: str) -> str:
    """A PATH of one directory linking every program of this PATH's first
    directories but ``missing`` (the server finds the rest as before)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for directory in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(directory):
            continue
        for name in os.listdir(directory):
            target = bin_dir / name
            if name in missing or target.exists():
                continue
            target.symlink_to(os.path.join(directory, name))
    return str(bin_dir)


def test_a_missing_csmith_is_a_benchmark_error_that_says_how_to_install_it(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": _path_without(tmp_path, "csmith")}
    code = (
        "import forkgym\n"
        "env = forkgym.make('llvm-v0')\n"
        "env.reset()\n"
        "pid = env.server_pid\n"
        "try:\n"
        "    env.reset(benchmark='generator://csmith-v0/1')\n"
        "except forkgym.ForkgymError as error:\n"
        "    print(type(error).__name__)\n"
        "    print(error)\n"
        "env.reset()\n"  # the episode before goes on: same zygote, nothing restarted
        "print('same server', env.server_pid == pid)\n"
    )
    completed = _run_python(code, env)
    assert completed.returncode == 0, completed.stderr[-2000:]
    out = completed.stdout
    # The benchmark cannot be had here (BenchmarkNotFound, as for a dataset
    # not installed), and the message says what to install, nothing else.
    assert out.startswith("BenchmarkNotFound\n"), out
    assert "csmith" in out and "apt-get install csmith libcsmith-dev) [benchmark_error]\n" in out, out
    assert "FORKGYM_SERVER" not in out and "new server" not in out and "clang-19" not in out, out
    assert "same server True" in out


# ------------------------------------------------- the check at import --

def test_every_library_the_binaries_load_is_declared() -> None:
    # The table in forkgym.system (and the README) lists every shared library
    # the extension and the server need beyond the C and C++ runtimes.
    from forkgym import system

    runtime = ("libc.so", "libm.so", "libstdc++", "libgcc_s", "ld-linux", "libpthread", "libdl")
    needed = set()
    for binary in system._binaries():
        out = subprocess.run(["readelf", "-d", str(binary)], capture_output=True, text=True, timeout=TIMEOUT_S,
                             check=True).stdout
        needed |= {line.split("[")[1].rstrip("]") for line in out.splitlines() if "(NEEDED)" in line}
    assert {name for name in needed if not name.startswith(runtime)} == {r.name for r in system.LIBRARIES}


def test_import_is_quiet_when_everything_is_installed() -> None:
    completed = _run_python("import forkgym", {**os.environ, "PYTHONWARNINGS": "error"})
    assert completed.returncode == 0 and completed.stderr == "", completed.stderr[-2000:]


def test_a_missing_tool_is_a_warning_at_import_naming_it_and_the_install_command(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": _path_without(tmp_path, "csmith", "gcc")}
    completed = _run_python("import forkgym", env)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "SystemDependencyWarning" in completed.stderr
    assert "csmith (Debian package csmith): generator://csmith-v0" in completed.stderr
    assert "gcc (Debian package gcc): the gcc-v0 environment" in completed.stderr
    assert "apt-get install csmith gcc" in completed.stderr
    quiet = _run_python("import forkgym", {**env, "FORKGYM_NO_SYSTEM_CHECK": "1"})
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr


def test_a_missing_library_fails_the_import_naming_it_and_the_install_command() -> None:
    from forkgym import system

    gone = {"libkj-0.9.2.so", "libcpuinfo.so.0"}
    with pytest.raises(ImportError) as raised:
        system.check_at_import(seems_found=lambda soname: soname not in gone, loader_misses=lambda: gone)
    message = str(raised.value)
    assert "libkj-0.9.2.so (Debian package libcapnp-0.9.2)" in message
    assert "libcpuinfo.so.0 (Debian package libcpuinfo0)" in message
    assert "apt-get install libcapnp-0.9.2 libcpuinfo0" in message
    # The loader has the last word: a library the cache lookup missed but the
    # loader finds (a path the lookup does not know) never blocks the import.
    system.check_at_import(seems_found=lambda soname: soname not in gone, loader_misses=set)
    # And where the loader cannot be asked, the lookup decides.
    with pytest.raises(ImportError, match="libcpuinfo0"):
        system.check_at_import(seems_found=lambda soname: soname not in gone, loader_misses=lambda: None)


def test_forkgym_system_lists_every_requirement() -> None:
    completed = subprocess.run([sys.executable, "-m", "forkgym", "system"], capture_output=True, text=True,
                               timeout=TIMEOUT_S)
    assert completed.returncode == 0, completed.stdout
    assert completed.stderr == "", completed.stderr  # no runpy warning: the command is the CLI's
    for name in ("libcapnp-0.9.2.so", "csmith", "clang-19", "llvm-stress"):
        assert name in completed.stdout


def test_the_readme_declares_every_requirement() -> None:
    from forkgym import system

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("## System requirements"):]
    section = section[: section.index("\n## ", 1)]
    for requirement in (*system.LIBRARIES, *system.TOOLS):
        assert requirement.package in section, requirement



# ------------------------------------------ pip install from a fresh clone --

# A full build of the extension and the server: 87 s on an idle 2-core
# machine, much longer under load (35 min measured with four other builds).
def test_pip_install_from_a_fresh_clone_builds_a_working_package(tmp_path: Path) -> None:
    # The README's "Install from a clone": the committed sources alone (no
    # build tree, no generated file) build the extension and the product
    # server, and the installed package runs an episode with its own server.
    repo = Path(__file__).resolve().parents[2]
    clone, site = tmp_path / "clone", tmp_path / "site"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{repo}", str(clone)], check=True,
                   timeout=TIMEOUT_S)
    env = {k: v for k, v in os.environ.items() if k != "FORKGYM_SERVER"}
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-build-isolation", "--no-deps", "--target", str(site),
         str(clone)],
        capture_output=True, text=True, timeout=3600, env={**env, "CMAKE_BUILD_PARALLEL_LEVEL": "2"})
    assert installed.returncode == 0, installed.stderr[-3000:]
    code = (
        "import forkgym, os\n"
        "print(forkgym.__file__)\n"
        "print(forkgym.server_binary())\n"
        "env = forkgym.make('llvm-autophase-ic-v0')\n"
        "observation, _ = env.reset()\n"
        "_, reward, *_ = env.step(env.action_space.index('-mem2reg'))\n"
        "print(observation.shape, reward > 0)\n"
    )
    ran = _run_python(code, {**env, "PYTHONPATH": str(site)})
    assert ran.returncode == 0, ran.stderr[-3000:]
    module, server, result = ran.stdout.splitlines()
    assert module.startswith(str(site)) and server.startswith(str(site)), ran.stdout
    assert result == "(56,) True"
