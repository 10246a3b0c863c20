"""make_benchmark, the bundled dataset, the outcome enum and the error types."""

from __future__ import annotations

import gc
import os
import subprocess
import sys

import pytest

import forkgym
from forkgym import Outcome, make_benchmark
from forkgym.errors import from_outcome


def test_default_benchmark_is_bundled_crc32(env) -> None:
    env.reset()
    assert env.benchmark == forkgym.DEFAULT_BENCHMARK == "benchmark://forkgym-v0/crc32"
    assert "benchmark://forkgym-v0/small" in list(env.datasets["forkgym-v0"].benchmark_uris())


def test_make_benchmark_from_a_source_file(env, data_dir) -> None:
    env.reset(benchmark=f"file://{data_dir}/small.c")
    direct = env.ir_sha1
    benchmark = env.make_benchmark(data_dir / "small.c")
    env.reset(benchmark=benchmark)
    assert env.benchmark == benchmark and benchmark.uri.startswith("benchmark://user-v0/")
    assert env.ir_sha1 == direct


def test_make_benchmark_from_several_sources_links_them(env, data_dir) -> None:
    benchmark = make_benchmark([data_dir / "multi" / "main.c", data_dir / "multi" / "helper.c"])
    env.reset(benchmark=benchmark)
    assert "helper_scale" in env.ir
    # The directory of links the server compiled is gone with the call.
    assert not list(forkgym.benchmark_cache_dir().glob("sources-*"))


def test_make_benchmark_from_bitcode_bytes_keeps_it_under_its_content_digest(env) -> None:
    env.reset()
    bitcode = env.bitcode
    benchmark = make_benchmark(bitcode)
    digest = benchmark.uri.rsplit("/", 1)[1]
    path = forkgym.benchmark_cache_dir() / (digest + ".bc")
    assert path.read_bytes() == bitcode
    env.reset(benchmark=benchmark)
    assert len(env.ir_sha1) == 40
    # It outlives the Benchmark object: a state naming it still replays.
    del benchmark
    gc.collect()
    assert path.exists()
    env.reset(benchmark=f"benchmark://user-v0/{digest}")


def test_generator_benchmark(env) -> None:
    env.reset(benchmark="generator://csmith-v0/3")
    assert env.observation["IrInstructionCount"] > 0


def test_outcome_enum_mirrors_the_cpp_values() -> None:
    assert Outcome.OK == 0 and Outcome.CRASHED == 3 and Outcome.TIMED_OUT == 4
    assert Outcome.SESSION_CLOSED == 11


@pytest.mark.parametrize(
    ("outcome", "message", "kind"),
    [
        (Outcome.BENCHMARK_ERROR, "cannot read /x.bc: No such file or directory", forkgym.BenchmarkNotFound),
        (Outcome.BENCHMARK_ERROR, "clang failed compiling /x.c", forkgym.BenchmarkInitError),
        (Outcome.CRASHED, "SIGSEGV", forkgym.SessionCrashed),
        (Outcome.TIMED_OUT, "too slow", forkgym.Timeout),
        (Outcome.SERVER_ERROR, "gone", forkgym.ServerUnavailable),
        (Outcome.INVALID_REQUEST, "bad", forkgym.InvalidRequest),
    ],
)
def test_outcomes_map_to_typed_errors_with_advice(outcome, message, kind) -> None:
    error = from_outcome(outcome, message)
    assert isinstance(error, kind) and isinstance(error, forkgym.ForkgymError)
    assert error.outcome == outcome and ";" in str(error)


def test_unstartable_server_raises_server_unavailable() -> None:
    server = forkgym.Server(forkgym.ServerOptions(server_path="/nonexistent/forkgym-server"))
    with pytest.raises(forkgym.ServerUnavailable, match="FORKGYM_SERVER"):
        forkgym.LlvmEnv(server=server)


_GENERATOR_SHA1_SNIPPET = """
import forkgym
env = forkgym.make("llvm-v0", benchmark="generator://csmith-v0/3")
env.reset()
print(env.ir_sha1)
env.close()
"""


@pytest.mark.parametrize("directory_kind", ["unreadable", "holding_a_csmith_h"])
def test_a_generated_program_does_not_depend_on_the_servers_working_directory(env, tmp_path, directory_kind) -> None:
    # csmith's programs #include "csmith.h": clang looks for a quoted include
    # in the working directory first. A server started from a directory its
    # loaders may not read (a 0700 home) failed every csmith benchmark, and
    # one started beside a file of that name would have served another program.
    env.reset(benchmark="generator://csmith-v0/3")
    expected = env.ir_sha1
    cwd = tmp_path / directory_kind
    cwd.mkdir()
    if directory_kind == "unreadable":
        cwd.chmod(0o000)
    else:
        (cwd / "csmith.h").write_text("#error not the csmith header\n")
    try:
        run = subprocess.run([sys.executable, "-c", _GENERATOR_SHA1_SNIPPET], cwd=cwd, capture_output=True, text=True,
                             timeout=120)
    finally:
        cwd.chmod(0o700)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == expected
