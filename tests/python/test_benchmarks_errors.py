"""make_benchmark, the bundled dataset, the outcome enum and the error types."""

from __future__ import annotations

import gc
import os

import pytest

import forkgym
from forkgym import Outcome, make_benchmark
from forkgym.errors import from_outcome


def test_default_benchmark_is_bundled_crc32(env) -> None:
    env.reset()
    assert env.benchmark == forkgym.DEFAULT_BENCHMARK == "benchmark://forkgym-v0/crc32"
    assert "benchmark://forkgym-v0/small" in list(env.datasets.benchmark_uris())


def test_make_benchmark_from_a_source_file(env, data_dir) -> None:
    benchmark = env.make_benchmark(data_dir / "small.c")
    env.reset(benchmark=benchmark)
    assert env.benchmark == f"file://{data_dir}/small.c"


def test_make_benchmark_from_several_sources_links_them(env, data_dir) -> None:
    benchmark = make_benchmark([data_dir / "multi" / "main.c", data_dir / "multi" / "helper.c"])
    env.reset(benchmark=benchmark)
    assert "helper_scale" in env.ir
    directory = benchmark.uri[len("file://"):]
    benchmark.close()
    assert not os.path.exists(directory)


def test_make_benchmark_from_bitcode_bytes_owns_and_removes_its_file(env) -> None:
    env.reset()
    bitcode = env.bitcode
    benchmark = make_benchmark(bitcode)
    path = benchmark.uri[len("file://"):]
    assert os.path.exists(path)
    env.reset(benchmark=benchmark)
    assert len(env.ir_sha1) == 40
    env.reset(benchmark=forkgym.DEFAULT_BENCHMARK)
    del benchmark
    gc.collect()
    assert not os.path.exists(path)


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
