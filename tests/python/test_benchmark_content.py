"""Benchmarks are their content: the episode records the content hash it ran
(state, reproducer), validate() refuses a state whose benchmark has changed
since, and make_benchmark() captures its input when called."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import forkgym
from forkgym import CompilerEnvState, CompilerEnvStateReader, CompilerEnvStateWriter, make_benchmark

from conftest import flag


def _program(name: str) -> str:
    return f"int {name}(void) {{ return 7; }}\nint main(void) {{ return {name}(); }}\n"


def test_the_state_records_the_benchmarks_content_hash_through_csv(env, shared_tmp_path) -> None:
    source = shared_tmp_path / "prog.c"
    source.write_text(_program("recorded"))
    env.reset(benchmark=str(source))
    env.step(env.action_space.index("-mem2reg"))
    state = env.state
    assert len(env.benchmark_hash) == 64 and state.benchmark_hash == env.benchmark_hash
    buffer = io.StringIO()
    CompilerEnvStateWriter(buffer).write_state(state)
    assert buffer.getvalue().splitlines()[0] == "benchmark,reward,walltime,commandline,benchmark_hash"
    (read,) = CompilerEnvStateReader(io.StringIO(buffer.getvalue()))
    assert read.benchmark_hash == state.benchmark_hash and read == state
    # CompilerGym's four-column files still read (no hash to check).
    old = "benchmark,reward,walltime,commandline\n" + ",".join(
        [state.benchmark, "", "0.1", state.commandline]) + "\n"
    (legacy,) = CompilerEnvStateReader(io.StringIO(old))
    assert legacy.benchmark_hash == "" and env.validate(legacy).okay()


def test_validate_refuses_a_state_whose_benchmark_changed_since(env, shared_tmp_path) -> None:
    source = shared_tmp_path / "prog.c"
    source.write_text(_program("before_edit"))
    env.reset(benchmark=str(source))
    env.multistep([env.action_space.index("-mem2reg"), env.action_space.index("-instcombine")])
    state = env.state
    assert env.validate(state).okay()
    source.write_text(_program("after_edit"))
    result = env.validate(state)
    assert not result.okay() and result.benchmark_changed
    assert "changed" in result.error_details and state.benchmark_hash[:12] in result.error_details


def test_a_crash_reproducer_names_the_benchmark_content(env) -> None:
    env.reset()
    _, _, _, truncated, info = env.step(flag(env, "-forkgym-test-segfault"))
    assert truncated
    assert info["reproducer"].benchmark_hash == env.benchmark_hash != ""


def test_make_benchmark_captures_a_source_when_called(env, shared_tmp_path) -> None:
    source = shared_tmp_path / "prog.c"
    source.write_text(_program("captured"))
    benchmark = make_benchmark(source)
    source.write_text(_program("edited_later"))
    env.reset(benchmark=benchmark)
    assert "@captured" in env.ir
    source.unlink()
    env.reset(benchmark=benchmark)
    assert "@captured" in env.ir and env.benchmark == benchmark


def test_make_benchmark_uris_are_their_content(env, shared_tmp_path) -> None:
    first, second = shared_tmp_path / "a.c", shared_tmp_path / "b.c"
    first.write_text(_program("content_one"))
    second.write_text(_program("content_two"))
    one, two = make_benchmark(first), make_benchmark(second)
    assert one.uri != two.uri
    assert one.uri.startswith("benchmark://user-v0/")
    assert make_benchmark(first).uri == one.uri
    # A benchmark is kept as the module the server made of it, so the
    # episode's initial bitcode is that same content again.
    env.reset(benchmark=one)
    assert "@content_one" in env.ir
    assert make_benchmark(env.bitcode).uri == one.uri
    env.step(env.action_space.index("-mem2reg"))
    assert make_benchmark(env.bitcode).uri not in (one.uri, two.uri)


def test_make_benchmark_of_several_sources_links_them_and_keeps_nothing_but_the_result(env, data_dir) -> None:
    benchmark = make_benchmark([data_dir / "multi" / "main.c", data_dir / "multi" / "helper.c"])
    env.reset(benchmark=benchmark)
    assert "helper_scale" in env.ir
    cache = forkgym.benchmark_cache_dir()
    # Modules, and the run configurations make_benchmark() keeps beside them (run-<digest>.json).
    kept = [p.name for p in cache.iterdir()
            if not p.name.endswith((".bc", ".ll")) and not (p.name.startswith("run-") and p.name.endswith(".json"))]
    assert kept == []


def test_make_benchmark_of_several_sources_reads_them_where_only_this_user_can(env, data_dir, tmp_path) -> None:
    # pytest's tmp_path sits under an owner-only directory, as a clone in
    # /root does: a root server's sandbox user cannot reach the sources, so
    # make_benchmark() must hand the server what it captured, not links.
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    sources = [private / "main.c", private / "helper.c"]
    for source in sources:
        source.write_text((data_dir / "multi" / source.name).read_text())
    benchmark = make_benchmark(sources)
    env.reset(benchmark=benchmark)
    assert "helper_scale" in env.ir


def test_make_benchmark_of_bytes_leaves_no_temporary_file_when_the_client_is_killed(shared_tmp_path) -> None:
    cache, tmp = shared_tmp_path / "cache", shared_tmp_path / "tmp"
    tmp.mkdir()
    script = textwrap.dedent(
        """
        import sys
        import forkgym
        with forkgym.make("llvm-ic-v0") as env:
            env.reset()
            benchmark = forkgym.make_benchmark(env.bitcode)
            env.reset(benchmark=benchmark)
            print(benchmark.uri, flush=True)
            sys.stdin.read()  # until killed
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True, env={**os.environ, "FORKGYM_CACHE_DIR": str(cache), "TMPDIR": str(tmp)})
    uri = child.stdout.readline().strip()
    assert uri.startswith("benchmark://user-v0/"), uri
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert os.listdir(tmp) == [], "a killed client left temporary files behind"
    # Its benchmark stays in the per-user cache under its content's name:
    # states naming it still replay.
    digest = uri.rsplit("/", 1)[1]
    assert sorted(p.name for p in (cache / "benchmarks").iterdir()) == [digest + ".bc"]
