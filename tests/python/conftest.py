"""Shared fixtures: envs on the bundled benchmark, closed after each test.

Every env in the test process shares one private zygote (forkgym's default),
so the suite pays LLVM's start-up once. That zygote is the test build of the
server, forkgym-test-server (built next to forkgym-server by scripts/setup):
it adds the test-only fault-injection actions the crash and recovery tests
use. The installed package's own server is the product build, which has
neither (test_product_build.py checks that).
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data"
TEST_SERVER = Path(os.environ.get("FORKGYM_TEST_SERVER", REPO / "build" / "forkserver" / "forkgym-test-server"))

if not os.access(TEST_SERVER, os.X_OK):
    pytest.exit(f"{TEST_SERVER} not found: run `bash scripts/setup` (it builds forkgym-test-server), "
                "or set FORKGYM_TEST_SERVER to its path", returncode=4)
# Before forkgym spawns anything: every default server in this run (and in
# the processes the tests start) is the test build.
os.environ["FORKGYM_SERVER"] = str(TEST_SERVER)
# make_benchmark()'s cache: one for this run, not the user's.
_CACHE = tempfile.mkdtemp(prefix="fgtest-cache-")
os.chmod(_CACHE, 0o755)  # a root server loads what it holds as its sandbox user (nobody)
os.environ["FORKGYM_CACHE_DIR"] = _CACHE
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)
# Datasets: site data and downloads of this run, not the user's; and a mirror
# that holds nothing, so a test that reached for a real catalogue file fails
# at once with the hand-placement message instead of touching the internet
# (the dataset tests use their own loopback server and directories).
# (What the set-up installed, gcc-c-torture-v0, is under the site data as it
# was: SETUP_SITE_DATA, None for the default rule; test_ctorture.py reads it.)
SETUP_SITE_DATA = os.environ.get("FORKGYM_SITE_DATA")
_DATASETS = tempfile.mkdtemp(prefix="fgtest-site-")
os.chmod(_DATASETS, 0o755)
for _variable, _name in (("FORKGYM_SITE_DATA", "site"), ("FORKGYM_CACHE", "cache"),
                         ("FORKGYM_DATASET_MIRROR", "no-mirror")):
    os.makedirs(os.path.join(_DATASETS, _name), mode=0o755)
    os.environ[_variable] = os.path.join(_DATASETS, _name)
atexit.register(shutil.rmtree, _DATASETS, ignore_errors=True)
# The inst2vec data likewise: its wheel is "here", a file that does not exist,
# so nothing in the run reaches for pip and the package index (the session
# fixture inst2vec_data installs synthetic data instead; the inst2vec tests
# that fetch aim pip at their own loopback index).
os.environ["FORKGYM_INST2VEC_WHEEL"] = os.path.join(_DATASETS, "no-inst2vec-wheel.whl")

import forkgym  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def inst2vec_data(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The inst2vec data the Inst2vecEmbeddingIndices and Inst2vec lookups
    need, installed into this run's site directory before any test, so every
    test that asks for every space has it: the real wheel's if
    FORKGYM_TEST_INST2VEC_WHEEL names it, else a synthetic wheel's that knows
    a few statements every program has (inst2vec_fixtures.py). The inst2vec
    tests that need it absent use site directories of their own."""
    from forkgym.datasets import inst2vec
    from inst2vec_fixtures import synthetic_wheel

    real = os.environ.get("FORKGYM_TEST_INST2VEC_WHEEL")
    if real:
        inst2vec.install(real)
        return
    wheel, sha256 = synthetic_wheel(tmp_path_factory.mktemp("inst2vec"), [
        "br label <%ID>", "ret i32 <%ID>", "<%ID> = load i32, i32* <%ID>, align 4",
        "store i32 <%ID>, i32* <%ID>, align 4", "<%ID> = add nsw i32 <%ID>, <%ID>"])
    inst2vec.install(wheel, sha256=sha256)


@pytest.fixture
def env() -> Iterator[forkgym.LlvmEnv]:
    with forkgym.make("llvm-ic-v0") as e:
        yield e


@pytest.fixture
def ctrl_c_raises() -> Iterator[None]:
    """Ctrl-C raises KeyboardInterrupt, as in any Python at a terminal. A
    Python started with SIGINT ignored (a background job of a script, nohup,
    some CI runners) keeps it ignored and installs no handler: there a test
    that sends SIGINT would wait out the step's CPU limit instead."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.fixture
def data_dir() -> Path:
    return DATA


@pytest.fixture
def shared_tmp_path() -> Iterator[Path]:
    """A temporary directory the server's sandbox user can read: a server
    started as root (as in these tests, run as root) loads benchmarks as
    nobody, and pytest's tmp_path sits under an owner-only directory."""
    path = Path(tempfile.mkdtemp(prefix="fgtest-py-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def flag(env: forkgym.LlvmEnv, name: str) -> int:
    """Index of an action flag (including the test-only ones past the space)."""
    return env.action_space.index(name)


# A mix of every kind of benchmark: bundled C sources, both generators, a
# bitcode file and a directory of sources. Each resets to a different program.
MIXED_BENCHMARKS = (
    "benchmark://forkgym-v0/crc32",
    "benchmark://forkgym-v0/small",
    "generator://csmith-v0/7",
    "generator://llvm-stress-v0/3",
)


@pytest.fixture(scope="session")
def mixed_benchmarks() -> Iterator[dict[str, int]]:
    """URI -> initial instruction count, measured once on a private zygote.
    Includes a bitcode file (crc32 after -mem2reg) and a directory of sources."""
    # Not under tmp_path_factory's owner-only directory: see shared_tmp_path.
    directory = Path(tempfile.mkdtemp(prefix="fgtest-mixed-"))
    directory.chmod(0o755)
    bitcode = directory / "crc32-mem2reg.bc"
    server = forkgym.Server()
    counts: dict[str, int] = {}
    with forkgym.make("llvm-v0", server=server) as env:
        env.reset(benchmark=MIXED_BENCHMARKS[0])
        env.step(env.action_space.index("-mem2reg"))
        env.write_bitcode(bitcode)
        for uri in (*MIXED_BENCHMARKS, f"file://{bitcode}", f"file://{DATA / 'multi'}/"):
            count, _ = env.reset(benchmark=uri, observation_space="IrInstructionCount")
            counts[uri] = int(count)
    server.close()
    assert len(set(counts.values())) == len(counts), f"benchmarks must differ in size to tell them apart: {counts}"
    yield counts
    shutil.rmtree(directory, ignore_errors=True)
