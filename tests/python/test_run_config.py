"""Run configurations from Python: make_benchmark()'s keywords and a
Benchmark's set_run_config() read every input when called, name the
configuration by its content (``?run=<digest>``), refuse what the runner could
not honour with a message saying why, and an episode's state records the
configuration so a replay runs the same program the same way."""

from __future__ import annotations

import io
import pickle

import pytest

import forkgym
from forkgym import (
    Benchmark,
    BenchmarkNotFound,
    CompilerEnvStateReader,
    CompilerEnvStateWriter,
    InvalidRequest,
    RunConfig,
    make_benchmark,
    make_run_config,
)


PROGRAM = "#include <stdio.h>\nint main(void) { puts(\"hi\"); return 0; }\n"


@pytest.fixture
def program(shared_tmp_path):
    source = shared_tmp_path / "prog.c"
    source.write_text(PROGRAM)
    return source


def test_make_benchmark_keywords_make_a_run_config_read_when_called(program, shared_tmp_path) -> None:
    data = shared_tmp_path / "data.txt"
    data.write_bytes(b"first")
    benchmark = make_benchmark(program, build_cmd=["$CC", "$IN", "-lm"], run_cmd=["./a.out", "data.txt"],
                               inputs=[data], outputs=["result.txt"], stdin="typed", run_timeout=5)
    data.write_bytes(b"changed afterwards")
    config = benchmark.run_config
    assert isinstance(config, RunConfig)
    assert config.build_cmd == ("$CC", "$IN", "-lm")
    assert config.run_cmd == ("./a.out", "data.txt")
    assert config.run_timeout == 5 and config.build_timeout == 60 and config.build_outfile == "a.out"
    (only,) = config.input_sets
    assert only.stdin == b"typed"
    assert [(f.name, f.content) for f in only.files] == [("data.txt", b"first")]
    assert config.outputs == ("result.txt",)
    # The URI names the program and the configuration, both by content.
    plain = make_benchmark(program)
    assert benchmark.uri == f"{plain.uri}?run={config.digest}"
    assert plain.run_config is None
    again = make_benchmark(program, build_cmd=["$CC", "$IN", "-lm"], run_cmd=["./a.out", "data.txt"],
                           inputs={"data.txt": b"first"}, outputs=["result.txt"], stdin=b"typed", run_timeout=5)
    assert again.uri == benchmark.uri
    other = make_benchmark(program, run_cmd=["./a.out", "data.txt"], inputs={"data.txt": b"second"})
    assert other.uri != benchmark.uri


def test_a_uri_naming_a_run_config_finds_it_in_the_cache(program) -> None:
    benchmark = make_benchmark(program, run_cmd=["./a.out", "x"])
    assert Benchmark(str(benchmark.uri)).run_config == benchmark.run_config
    missing = Benchmark(str(make_benchmark(program).uri) + "?run=" + "0" * 32)
    with pytest.raises(BenchmarkNotFound, match="not in this user's benchmark cache"):
        missing.run_config
    with pytest.raises(BenchmarkNotFound, match="not a run configuration's digest"):
        Benchmark("benchmark://user-v0/x?run=../../etc").run_config


def test_the_json_form_round_trips_and_names_the_digest() -> None:
    config = make_run_config(run_cmd=["./a.out", "-n", "3"], input_sets=[
        {"name": "small", "args": ["1"], "stdin": b"\x00\x01", "inputs": {"in.bin": b"\xff"}},
        {"name": "large", "args": ["100"]},
    ], outputs=["out.txt"], pre_run_cmd=["./a.out", "--prepare"])
    assert RunConfig.from_json(config.to_json()) == config
    assert RunConfig.from_json(config.to_json()).digest == config.digest
    assert [s.name for s in config.input_sets] == ["small", "large"]
    assert config.pre_run_cmd[0].argv == ("./a.out", "--prepare")
    with pytest.raises(InvalidRequest, match="not a forkgym run configuration"):
        RunConfig.from_json("{}")


def test_a_benchmark_object_takes_a_run_config(program) -> None:
    benchmark = make_benchmark(program)
    uri = str(benchmark.uri)
    benchmark.set_run_config(run_cmd=["./a.out", "7"])
    assert benchmark.run_config.run_cmd == ("./a.out", "7")
    assert str(benchmark.uri) == uri  # its name, equality and hash stay its program's
    assert benchmark.state_uri == f"{uri}?run={benchmark.run_config.digest}"
    assert Benchmark(benchmark.state_uri).run_config == benchmark.run_config
    benchmark.dynamic_config = make_run_config(run_cmd=["./a.out", "8"])  # CompilerGym's name
    assert benchmark.run_config.run_cmd == ("./a.out", "8")
    benchmark.set_run_config(None)
    assert benchmark.run_config is None and benchmark.state_uri == uri
    with pytest.raises(InvalidRequest, match="forkgym.RunConfig"):
        benchmark.set_run_config({"run_cmd": ["./a.out"]})
    with pytest.raises(TypeError, match="unknown keyword.*run_command"):
        benchmark.set_run_config(run_command=["./a.out"])


@pytest.mark.parametrize("keywords, message", [
    ({"run_cmd": "./a.out -v"}, "must be a list of arguments"),
    ({"run_cmd": []}, "run_cmd is empty"),
    ({"build_cmd": ["$CC", "other.o"]}, "never names \\$IN"),
    ({"outputs": ["../escape.txt"]}, "not a plain file name"),
    ({"outputs": ["dir/result.txt"]}, "not a plain file name"),
    ({"inputs": {"a/b": b""}}, "not a plain file name"),
    ({"inputs": [("x", b"1"), ("x", b"2")]}, "appear more than once"),
    ({"run_timeout": 0}, "positive whole number"),
    ({"build_timeout": 1.5}, "positive whole number"),
    ({"stdin": 3}, "stdin must be bytes or str"),
    ({"input_sets": []}, "non-empty list"),
    ({"input_sets": [{"argv": ["1"]}]}, "unknown key\\(s\\) argv"),
    ({"input_sets": [{"args": ["1"]}], "stdin": b"x"}, "inside each of input_sets"),
])
def test_a_run_config_the_runner_could_not_honour_is_refused_saying_why(program, keywords, message) -> None:
    with pytest.raises(InvalidRequest, match=message):
        make_benchmark(program, **keywords)


def test_input_files_that_cannot_be_read_are_named(program, shared_tmp_path) -> None:
    with pytest.raises(BenchmarkNotFound, match="cannot read .*missing.txt"):
        make_benchmark(program, inputs=[shared_tmp_path / "missing.txt"])
    with pytest.raises(InvalidRequest, match="is a directory"):
        make_benchmark(program, inputs=[shared_tmp_path])
    with pytest.raises(TypeError, match="unknown keyword.*outfiles"):
        make_benchmark(program, outfiles=["x"])


def test_compilergym_spelling_of_make_benchmark_inputs_still_names_the_sources(program) -> None:
    assert make_benchmark(inputs=program) == make_benchmark(program)


def test_input_sets_share_the_common_inputs() -> None:
    config = make_run_config(inputs={"common.txt": b"c"}, input_sets=[{"args": ["1"], "inputs": {"a": b"a"}},
                                                                       {"args": ["2"]}])
    assert [[f.name for f in s.files] for s in config.input_sets] == [["common.txt", "a"], ["common.txt"]]
    with pytest.raises(InvalidRequest, match="both give common.txt"):
        make_run_config(inputs={"common.txt": b"c"}, input_sets=[{"inputs": {"common.txt": b"d"}}])


def test_the_episodes_state_records_its_run_config_and_replays_with_it(program) -> None:
    benchmark = make_benchmark(program, run_cmd=["./a.out", "state"])
    with forkgym.make("llvm-v0", benchmark=benchmark) as env:
        env.reset()
        env.step(env.action_space.index("-mem2reg"))
        state = env.state
        assert state.benchmark == str(benchmark.uri)
        buffer = io.StringIO()
        CompilerEnvStateWriter(buffer).write_state(state)
        (read,) = CompilerEnvStateReader(io.StringIO(buffer.getvalue()))
        assert Benchmark(read.benchmark).run_config == benchmark.run_config
        assert env.validate().okay()
        fork = env.fork()
        try:
            assert fork.state.benchmark == state.benchmark
        finally:
            fork.close()
        copy = pickle.loads(pickle.dumps(env))
        try:
            assert copy.state.benchmark == state.benchmark
        finally:
            copy.close()
