"""Bad inputs through the Python API: each a clear, typed error naming the
problem; nothing crashes and the env (and the zygote) carry on."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

import forkgym

DATA = Path(__file__).resolve().parents[1] / "data"
CLANG = "/usr/lib/llvm-19/bin/clang"


def _still_works(env: forkgym.LlvmEnv) -> None:
    env.reset(benchmark=f"file://{DATA / 'crc32.c'}")
    assert env.step(env.action_space.index("-mem2reg"))[3] is False


@pytest.fixture(scope="module")
def bitcode(tmp_path_factory) -> bytes:
    out = tmp_path_factory.mktemp("bc") / "crc32.bc"
    subprocess.run([CLANG, "-c", "-emit-llvm", "-O0", str(DATA / "crc32.c"), "-o", str(out)], check=True)
    return out.read_bytes()


@pytest.mark.parametrize("keep", [4, 37, 0.5, -7])
def test_truncated_bitcode_names_the_file(env, shared_tmp_path, bitcode, keep) -> None:
    size = int(len(bitcode) * keep) if isinstance(keep, float) else keep if keep > 0 else len(bitcode) + keep
    path = shared_tmp_path / f"truncated_{size}.bc"
    path.write_bytes(bitcode[:size])
    with pytest.raises(forkgym.BenchmarkInitError, match=str(path)):
        env.reset(benchmark=f"file://{path}")
    _still_works(env)


def test_malformed_bitcode(env) -> None:
    with pytest.raises(forkgym.BenchmarkInitError, match="malformed.bc"):
        env.reset(benchmark=f"file://{DATA / 'malformed.bc'}")
    _still_works(env)


def test_ir_failing_the_verifier_gives_the_verifiers_message(env) -> None:
    with pytest.raises(forkgym.BenchmarkInitError, match="(?s)verifier_failure.ll.*dominate"):
        env.reset(benchmark=f"file://{DATA / 'verifier_failure.ll'}")
    _still_works(env)


def test_dot_dot_paths_are_refused(env) -> None:
    with pytest.raises(forkgym.InvalidRequest, match=r"'\.\.'"):
        env.reset(benchmark=f"file://{DATA}/../data/crc32.c")
    _still_works(env)


def test_a_dataset_that_cannot_be_installed_or_does_not_exist_says_so(env) -> None:
    # conftest's mirror holds nothing: as on a machine with no network.
    with pytest.raises(forkgym.errors.DownloadFailed, match="(?s)needs benchmark://cbench-v1.*cBench-v1-linux.tar.bz2.*FORKGYM_DATASET_MIRROR"):
        env.reset(benchmark="benchmark://cbench-v1/qsort")
    _still_works(env)
    with pytest.raises(forkgym.BenchmarkNotFound, match="unknown dataset.*did you mean benchmark://cbench-v1"):
        env.reset(benchmark="benchmark://cbench-v2/qsort")
    _still_works(env)


def _install_by_hand(site: Path, name: str, ini: str, files: dict[str, str]) -> Path:
    """<site>/datasets/<name>/ laid out as an install leaves it."""
    directory = site / "datasets" / name
    directory.mkdir(parents=True)
    for relative, text in files.items():
        (directory / relative).parent.mkdir(parents=True, exist_ok=True)
        (directory / relative).write_text(text)
    (directory / "dataset.ini").write_text(ini)
    (directory / ".installed").touch()
    for path in (directory, *directory.rglob("*")):
        path.chmod(0o755 if path.is_dir() else 0o644)  # a root server's loader reads as nobody
    return directory


def test_a_dataset_the_server_cannot_serve_from_says_which_line_or_file(shared_tmp_path, monkeypatch) -> None:
    # A site-data directory of this test's own, which the private server
    # below inherits from the environment (the run's stays as it was).
    monkeypatch.setenv("FORKGYM_SITE_DATA", str(shared_tmp_path))
    bad = _install_by_hand(shared_tmp_path, "fgtest-pybad-v0",
                           "kind = prebuilt\nroot = contents\nsuffix = .bc\nlanguage = c\n", {})
    _install_by_hand(shared_tmp_path, "fgtest-pysrc-v0",
                     "kind = source\nroot = contents\nsuffix = .c\nlanguage = c\nflags = -w\n",
                     {"contents/broken.c": "int f(void) {\n  return nope;\n}\n"})
    server = forkgym.Server()
    try:
        with forkgym.make("llvm-ic-v0", server=server) as env:
            with pytest.raises(forkgym.BenchmarkInitError, match=f"{bad}/dataset.ini:4: .*language is bitcode"):
                env.reset(benchmark="benchmark://fgtest-pybad-v0/x")
            _still_works(env)
            with pytest.raises(forkgym.BenchmarkInitError,
                               match="(?s)dataset fgtest-pysrc-v0.*broken.c:2:.*undeclared identifier"):
                env.reset(benchmark="benchmark://fgtest-pysrc-v0/broken")
            _still_works(env)
            with pytest.raises(forkgym.BenchmarkNotFound, match="no benchmark 'missing' in the dataset fgtest-pysrc-v0"):
                env.reset(benchmark="benchmark://fgtest-pysrc-v0/missing")
            _still_works(env)
    finally:
        server.close()


def test_paths_outside_the_benchmark_roots_are_refused(tmp_path) -> None:
    outside = tmp_path / "outside.c"
    outside.write_text("int main(void) { return 0; }\n")
    server = forkgym.Server(forkgym.ServerOptions(benchmark_roots=(str(DATA),)))
    with forkgym.make("llvm-ic-v0", server=server) as env:
        env.reset()  # the bundled default benchmark stays allowed
        env.reset(benchmark=f"file://{DATA / 'crc32.c'}")
        with pytest.raises(forkgym.InvalidRequest, match="--benchmark-root") as error:
            env.reset(benchmark=f"file://{outside}")
        assert str(outside) in str(error.value) and str(DATA) in str(error.value)
        _still_works(env)


def test_invalid_actions_and_names_lose_nothing(env) -> None:
    env.reset()
    env.step(env.action_space.index("-mem2reg"))
    for bad in (-1, 10**6, "not-an-action"):
        with pytest.raises((forkgym.InvalidRequest, ValueError, TypeError, IndexError)):
            env.step(bad)
    with pytest.raises((forkgym.InvalidRequest, LookupError), match="NoSuchSpace"):
        env.step(0, observation_spaces=["NoSuchSpace"])
    with pytest.raises((forkgym.InvalidRequest, LookupError), match="NoSuchReward"):
        env.step(0, reward_spaces=["NoSuchReward"])
    assert env.in_episode
    assert len(env.actions) == 1
    assert env.step(env.action_space.index("-instcombine"))[3] is False
