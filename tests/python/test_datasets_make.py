"""Benchmarks made in memory and from compiler command lines, through the server:
Benchmark.from_file_contents() keeps its name, make_benchmark_from_command_line()
honours -D/-U/-include and refuses what it cannot honour."""

from __future__ import annotations

import pytest

import forkgym
from datasets_fixtures import SOURCE_TEXT, bitcodes, ir_sha1  # noqa: F401 (fixtures)
from forkgym.datasets import Benchmark


# ------------------------------------------------------- in-memory content --


def test_a_benchmark_made_from_bytes_keeps_its_name_and_loads(env, bitcodes) -> None:
    made = Benchmark.from_file_contents("benchmark://my-programs/crc", bitcodes["crc32"])
    env.reset(benchmark=made)
    assert env.benchmark == "benchmark://my-programs/crc" and env.benchmark is made
    direct = ir_sha1(env, "benchmark://forkgym-v0/crc32")
    assert ir_sha1(env, made) == direct


# ------------------------------------------------------------ command lines --


def test_a_command_line_gives_its_sources_with_its_definitions(env, shared_tmp_path) -> None:
    source = shared_tmp_path / "scaled.c"
    source.write_text("#ifndef SCALE\n#error SCALE must be defined\n#endif\n" + SOURCE_TEXT)
    seven = forkgym.make_benchmark_from_command_line(
        f"gcc -c {source.name} -O2 -g -Wall -DSCALE=7 -D OFFSET=3 -o scaled.o -lm", cwd=shared_tmp_path)
    nine = env.make_benchmark_from_command_line(["clang", str(source), "-DSCALE=9", "-DOFFSET", "-c"])
    assert seven.uri.startswith("benchmark://user-v0/") and seven != nine
    env.reset(benchmark=seven)
    assert "mul nsw i32 %" in env.ir and ", 7" in env.ir and "add nsw i32 %" in env.ir and ", 3" in env.ir
    env.reset(benchmark=nine)
    assert ", 9" in env.ir
    with pytest.raises(forkgym.BenchmarkInitError, match="SCALE must be defined"):
        forkgym.make_benchmark_from_command_line(f"cc -c {source}")


def test_a_command_line_of_several_sources_links_them(env, data_dir) -> None:
    linked = forkgym.make_benchmark_from_command_line(
        ["cc", "-UNDEBUG", "main.c", "helper.c", "-o", "prog"], cwd=data_dir / "multi")
    env.reset(benchmark=linked)
    assert "define dso_local i32 @helper_scale" in env.ir and "define dso_local i32 @main" in env.ir


def test_a_command_line_refuses_what_it_cannot_honour(shared_tmp_path) -> None:
    source = shared_tmp_path / "p.c"
    source.write_text("int p;\n")
    with pytest.raises(forkgym.InvalidRequest, match="cannot honour -Iinclude -fwrapv"):
        forkgym.make_benchmark_from_command_line(f"cc -c {source} -I include -fwrapv")
    with pytest.raises(forkgym.BenchmarkNotFound, match="no such file"):
        forkgym.make_benchmark_from_command_line(f"cc -c {shared_tmp_path / 'missing.c'}")
    with pytest.raises(forkgym.BenchmarkNotFound, match="no C/C.. source"):
        forkgym.make_benchmark_from_command_line("cc -c -O2 lib.a")
    with pytest.raises(forkgym.InvalidRequest, match="-D needs a value"):
        forkgym.make_benchmark_from_command_line(f"cc {source} -D")


def test_the_cache_variable_moves_the_benchmark_cache_for_client_and_server(shared_tmp_path, monkeypatch,
                                                                            bitcodes) -> None:
    monkeypatch.delenv("FORKGYM_CACHE_DIR")
    monkeypatch.setenv("FORKGYM_CACHE", str(shared_tmp_path))
    made = forkgym.make_benchmark(bitcodes["small"])
    assert (shared_tmp_path / "benchmarks" / (made.uri.rsplit("/", 1)[1] + ".bc")).is_file()
    server = forkgym.Server()  # started now: it inherits FORKGYM_CACHE
    try:
        with forkgym.make("llvm-v0", server=server) as env:
            env.reset(benchmark=str(made.uri))
            assert env.benchmark == made
    finally:
        server.close()
