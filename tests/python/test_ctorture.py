"""benchmark://gcc-c-torture-v0: built from GCC's source tarball, its programs
judged by GCC's own test-suite directives and by clang 19, installed whole or
not at all; and the real dataset the set-up installed from gcc-12-source.

The installer tests build a small tarball with GCC's layout (and things that
must not be extracted) and install from it into a scratch site directory."""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import forkgym
from conftest import SETUP_SITE_DATA
from forkgym.datasets import Benchmark, Datasets, catalogue, ctorture, fetch
from forkgym.datasets.dataset import read_ini
from forkgym.datasets.gcc_testsuite import Host, judge
from forkgym.datasets.manifest import Manifest
from forkgym.errors import DatasetError

ROW = catalogue.find("benchmark://gcc-c-torture-v0")
ROOT, FLAGS = ROW.root, ROW.flags
TOP = "gcc-12.9.0/gcc/testsuite/gcc.c-torture"

# The fake tarball: path under the archive's top -> content.
PROGRAMS = {
    f"{TOP}/execute/ok-1.c": "int main(void) { return 0; }\n",
    # Calls abort() undeclared, as many torture tests do: GCC 12 accepts it,
    # and so does clang 19 with the row's flags.
    f"{TOP}/execute/implicit-1.c": "int main(void) { if (0) abort(); return 0; }\n",
    f"{TOP}/execute/uses-header.c": '#include "local.h"\nint main(void) { return LOCAL; }\n',
    f"{TOP}/execute/local.h": "#define LOCAL 0\n",
    # A nested function: GCC's extension, which clang rejects.
    f"{TOP}/execute/nested-1.c": "int main(void) { int f(void) { return 0; } return f(); }\n",
    f"{TOP}/execute/wrapv-1.c": '/* { dg-options "-fwrapv" } */\nint main(void) { return 0; }\n',
    f"{TOP}/compile/fine.c": "int f(int x) { return x * 2; }\n",
    f"{TOP}/compile/tuned.c": '/* { dg-options "-O2 -fno-tree-sra --param max-cse-insns=4" } */\n'
                              "int g(int x) { return x + 1; }\n",
    f"{TOP}/compile/mips-only.c": "/* { dg-do compile { target mips*-*-* } } */\nint h;\n",
    f"{TOP}/compile/syntax.c": "int broken( {\n",
    # Not the dataset's: subdirectories, other test suites, the driver.
    f"{TOP}/execute/builtins/strlen.c": "int main(void) { return 0; }\n",
    f"{TOP}/execute/execute.exp": "load_lib gcc-dg.exp\n",
    "gcc-12.9.0/gcc/testsuite/gcc.dg/other.c": "int other;\n",
    "gcc-12.9.0/gcc/cfgexpand.c": "int gcc_itself;\n",
}
LISTED = ["execute/implicit-1", "execute/ok-1", "execute/uses-header", "compile/fine", "compile/tuned"]
LEFT_OUT = {"execute/nested-1": "clang 19 rejects it: line 1: error: function definition is not allowed here",
            "execute/wrapv-1": "needs -fwrapv, which changes what the program means (dg-options)",
            "compile/mips-only": "is for other targets (dg-do compile {target mips*-*-*})",
            "compile/syntax": "clang 19 rejects it: line 1: error: expected parameter declarator"}
# An installed dataset's directory holds these and nothing else.
INSTALLED = [".installed", "contents", "dataset.ini", "excluded.txt", "manifest.idx", "manifest.txt"]


@pytest.fixture
def scratch() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="fgtest-ctorture-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def source(scratch: Path) -> Path:
    """A GCC source tarball in miniature, with a symbolic link where a program
    would be (never followed, never extracted)."""
    tarball = scratch / "gcc-12.9.0-dfsg.tar.xz"
    with tarfile.open(tarball, "w:xz") as tar:
        for name, text in PROGRAMS.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo(f"{TOP}/execute/link-1.c")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tar.addfile(link)
    return tarball


@pytest.fixture
def site(scratch: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FORKGYM_SITE_DATA", str(scratch / "site"))
    return scratch / "site"


def install(source: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The product's install (the catalogue row's, as on first use), from ``source``."""
    monkeypatch.setattr(ctorture, "SOURCE_PATTERN", str(source))
    dataset = Datasets()["gcc-c-torture-v0"]
    dataset.install()
    return dataset.site_data_path


def test_installs_the_programs_clang_compiles_and_says_why_each_other_is_left_out(
        site: Path, source: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    directory = install(source, monkeypatch)

    assert directory == site / "datasets" / "gcc-c-torture-v0"
    assert fetch.is_installed(directory)
    assert list(Manifest(directory)) == LISTED
    assert Datasets()["gcc-c-torture-v0"].size == len(LISTED)
    assert read_ini(directory / "dataset.ini") == {
        "uri": "benchmark://gcc-c-torture-v0", "kind": "source", "root": "contents/gcc.c-torture", "suffix": ".c",
        "language": "c", "flags": FLAGS, "runnable": "true", "runnable_prefix": "execute/"}
    assert "-Wno-error=implicit-function-declaration" in FLAGS.split()

    excluded = (directory / ctorture.EXCLUDED).read_text().splitlines()
    header = [line for line in excluded if line.startswith("#")]
    assert "# Found 9: execute 5, compile 4." in header
    assert "# Listed 5: execute 3, compile 2." in header
    assert any(line.startswith("# Left out 4: 2 that GCC's test suite says") and "2 that clang 19" in line
               for line in header), header
    assert dict(line.split("\t") for line in excluded if not line.startswith("#")) == LEFT_OUT
    assert ("gcc-c-torture-v0: 5 programs (execute 3, compile 2); 4 left out, 2 by GCC's test suite's directives "
            "and 2 that clang 19 rejects") in capsys.readouterr().err

    # Only the two directories' own files, as regular files; every file a
    # program may include stays, the manifest alone leaves programs out.
    root = directory / ROOT
    on_disk = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    assert on_disk == ["compile", "compile/fine.c", "compile/mips-only.c", "compile/syntax.c", "compile/tuned.c",
                       "execute", "execute/implicit-1.c", "execute/local.h", "execute/nested-1.c", "execute/ok-1.c",
                       "execute/uses-header.c", "execute/wrapv-1.c"]
    assert sorted(p.name for p in directory.iterdir()) == INSTALLED
    assert Benchmark("benchmark://gcc-c-torture-v0/execute/ok-1").sources[0].contents == \
        PROGRAMS[f"{TOP}/execute/ok-1.c"].encode()


def test_a_dataset_built_again_replaces_the_old_tree(scratch: Path, source: Path) -> None:
    directory = scratch / "gcc-c-torture-v0"
    ctorture.build(directory, ROOT, FLAGS, source=source, progress=False)
    (directory / ROOT / "execute" / "stale.c").write_text("int stale;\n")
    ctorture.build(directory, ROOT, FLAGS, source=source, progress=False)
    assert not (directory / ROOT / "execute" / "stale.c").exists()
    assert list(Manifest(directory)) == LISTED
    assert sorted(p.name for p in directory.iterdir()) == ["contents", "excluded.txt", "manifest.idx", "manifest.txt"]


@pytest.mark.skipif(os.geteuid() != 0, reason="root's installs are shared with its server's sandbox user")
def test_roots_install_is_readable_by_its_servers_sandbox_user_whatever_the_umask(scratch: Path,
                                                                                   source: Path) -> None:
    directory = scratch / "gcc-c-torture-v0"
    old = os.umask(0o077)
    try:
        ctorture.build(directory, ROOT, FLAGS, source=source, progress=False)
    finally:
        os.umask(old)
    for path in [directory / ROOT, *(directory / ROOT).rglob("*")]:
        mode = path.stat().st_mode & 0o777
        assert mode == (0o755 if path.is_dir() else 0o644), (path, oct(mode))
    for name in ("contents", "excluded.txt", "manifest.txt", "manifest.idx"):
        assert (directory / name).stat().st_mode & 0o004, name


# A process that installs as on first use and, at the named step, says so on
# stdout and waits to be killed.
_KILLED_INSTALL = textwrap.dedent("""
    import signal, sys
    from forkgym.datasets import Datasets, ctorture, fetch

    ctorture.SOURCE_PATTERN, step = sys.argv[1], sys.argv[2]

    def hook(at, detail):
        if at == step:
            print("at", at, flush=True)
            while True:
                signal.pause()

    ctorture._step_hook = fetch._step_hook = hook
    Datasets()["gcc-c-torture-v0"].install()
""")


@pytest.mark.parametrize("step", ["extracted", "compiled", "placed", "marking"])
def test_a_kill_mid_install_leaves_no_dataset_and_the_next_install_completes(
        site: Path, source: Path, monkeypatch: pytest.MonkeyPatch, step: str) -> None:
    child = subprocess.Popen([sys.executable, "-c", _KILLED_INSTALL, str(source), step], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
    try:
        assert child.stdout.readline() == f"at {step}\n"
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL

    dataset = Datasets()["gcc-c-torture-v0"]
    assert not dataset.installed
    directory = install(source, monkeypatch)
    assert dataset.installed
    assert list(Manifest(directory)) == LISTED
    assert sorted(p.name for p in directory.iterdir()) == INSTALLED
    assert sorted(p.name for p in (directory / ROOT).iterdir()) == ["compile", "execute"]


def test_a_missing_or_damaged_source_says_what_to_install(scratch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ctorture, "SOURCE_PATTERN", str(scratch / "nowhere" / "gcc-12*.tar.*"))
    with pytest.raises(DatasetError, match="apt-get install gcc-12-source"):
        ctorture.find_source()
    damaged = scratch / "gcc-12.9.0.tar.xz"
    damaged.write_bytes(b"\xfd7zXZ\x00 not really")
    with pytest.raises(DatasetError, match="--reinstall gcc-12-source"):
        ctorture.build(scratch / "ds", ROOT, FLAGS, source=damaged, progress=False)
    assert not (scratch / "ds").exists() or not list((scratch / "ds").iterdir())


# ------------------------------------------------- the test suite's rules --

X86_64 = Host("x86_64-pc-linux-gnu")


@pytest.mark.parametrize("directive, why", [
    ('{ dg-options "-O2 -fno-inline -g" }', None),
    ('{ dg-options "-msse" { target { i?86-*-* x86_64-*-* } } }', "needs the machine option -msse (dg-options)"),
    ('{ dg-options "-mno-eabi" { target powerpc-*-eabi* } }', None),
    ('{ dg-options "-mtune=i686" { target { { i?86-*-* x86_64-*-* } && ia32 } } }', None),
    ('{ dg-additional-options "-fwrapv" }', "needs -fwrapv, which changes what the program means "
                                            "(dg-additional-options)"),
    ('{ dg-options "-fgnu89-inline" }', "needs -fgnu89-inline, which changes what the program means (dg-options)"),
    ('{ dg-options "-fsomething-new" }', "needs -fsomething-new, which forkgym does not know (dg-options)"),
    ('{ dg-skip-if "too many arguments" { bpf-*-* } }', None),
    ('{ dg-skip-if "requires alloca" { ! alloca } { "-O0" } { "" } }', None),
    ('{ dg-skip-if "" { *-*-* } { "-flto" } { "" } }', None),
    ('{ dg-skip-if "requires higher optimization" { *-*-* } "-O1" "" }',
     "is skipped here by the test suite (dg-skip-if: requires higher optimization)"),
    ('{ dg-skip-if "no O0" { { i?86-*-* x86_64-*-* } && { ! ia32 } } { "-O0" } { "" } }',
     "is skipped here by the test suite (dg-skip-if: no O0)"),
    ('{ dg-require-effective-target int128 }', None),
    ('{ dg-require-effective-target nonpic }', "needs the effective target nonpic, which this host lacks"),
    ('{ dg-require-effective-target warp_drive }',
     "depends on the effective target 'warp_drive', which forkgym does not know (line 1)"),
    ('{ dg-do compile { target mips*-*-* } }', "is for other targets (dg-do compile {target mips*-*-*})"),
    ('{ dg-do run }', None),
    ('{ dg-error "flexible array" }', "is expected to be rejected by the compiler (dg-error)"),
    ('{ dg-error "too large" "" { target { ! size32plus } } }', None),
    ('{ dg-final { scan-assembler "foo" } }', None),
    ('{ dg-frobnicate 1 }', "depends on the directive dg-frobnicate, which forkgym does not know (line 1)"),
])
def test_gcc_test_suite_directives_decide_which_programs_stand_on_64_bit_linux(directive: str,
                                                                                why: str | None) -> None:
    assert judge(f"/* {directive} */\nint x;\n", X86_64, "compile") == why


def test_an_execute_program_the_suite_only_compiles_is_no_execute_test() -> None:
    assert judge("/* { dg-do compile } */\n", X86_64, "execute") == \
        "is only compiled by the test suite (dg-do compile), so it is no execute test"
    assert judge("/* { dg-do compile } */\n", X86_64, "compile") is None


# ------------------------------------------------------ the real dataset --


@pytest.fixture
def setup_site(monkeypatch: pytest.MonkeyPatch) -> None:
    """The site data the set-up installed into, for this process and the
    servers it spawns (this run's own replaces it: conftest.py)."""
    if SETUP_SITE_DATA is None:
        monkeypatch.delenv("FORKGYM_SITE_DATA")
    else:
        monkeypatch.setenv("FORKGYM_SITE_DATA", SETUP_SITE_DATA)


def test_the_set_up_installed_gcc_12s_torture_programs_and_they_reset_and_step(setup_site: None) -> None:
    dataset = Datasets()["gcc-c-torture-v0"]
    assert dataset.installed, f"{dataset.site_data_path} is not installed: `bash scripts/setup` installs it"
    manifest = Manifest(dataset.site_data_path)
    paths = list(manifest)
    execute = sum(1 for p in paths if p.startswith("execute/"))
    compile_ = sum(1 for p in paths if p.startswith("compile/"))
    # GCC 12.2 has 1,592 + 1,903; clang 19 and the suite's directives leave out ~190.
    assert 1450 <= execute <= 1592 and 1700 <= compile_ <= 1903, (execute, compile_)
    assert execute + compile_ == len(paths) == dataset.size
    assert (f"# Listed {len(paths)}: execute {execute}, compile {compile_}."
            in (dataset.site_data_path / ctorture.EXCLUDED).read_text())

    server = forkgym.Server()  # spawned with the set-up's site data
    try:
        with forkgym.make("llvm-ic-v0", server=server) as env:
            for path in ("execute/20000112-1", "execute/arith-rand", "execute/pr58574", "compile/20000105-1"):
                assert path in manifest
                uri = f"benchmark://gcc-c-torture-v0/{path}"
                env.reset(benchmark=uri)
                assert env.benchmark == uri
                start = env.observation["IrInstructionCount"]
                env.step(env.action_space.index("-mem2reg"))
                assert 0 < env.observation["IrInstructionCount"] < start, path
    finally:
        server.close()
