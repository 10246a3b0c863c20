"""env.validate() on runnable benchmarks: the unoptimised program is the gold
standard, the state's program is built and run on every input set and
compared (exit status, stdout/stderr, output files, optionally an ASan
build), and a difference the unoptimised program shows by itself is reported
as the benchmark's nondeterminism or undefined behaviour, never as a
miscompile."""

from __future__ import annotations

import io
import json
import random
import subprocess
import sys

import pytest

import forkgym
from forkgym import CompilerEnvStateWriter, ForkgymError, InvalidRequest
from forkgym.semantics import SemanticsFailure

from conftest import flag

RUN_DATA = "run"


@pytest.fixture
def llvm():
    with forkgym.make("llvm-v0") as env:
        yield env


def _files_benchmark(env, data_dir):
    return env.make_benchmark(data_dir / RUN_DATA / "files_and_stdin.c", run_cmd=["./a.out"], input_sets=[
        {"name": "small", "args": ["2"], "stdin": "1 2 3\n", "inputs": {"input.txt": b"10 20\n"}},
        {"name": "large", "args": ["-3"], "stdin": "", "inputs": {"input.txt": b"1000 2000 3000\n"}},
    ], outputs=["result.txt"], run_timeout=30)


def test_a_runnable_benchmark_validates_its_semantics_on_every_input_set(llvm, data_dir) -> None:
    llvm.reset(benchmark=_files_benchmark(llvm, data_dir))
    llvm.multistep([flag(llvm, "-mem2reg"), flag(llvm, "-instcombine"), flag(llvm, "-simplifycfg")])
    result = llvm.validate()
    assert result.okay(), result
    assert result.benchmark_semantics_validated and not result.benchmark_semantics_validation_failed
    assert result.semantics_failures == [] and result.semantics_not_validated is None
    assert "semantics validated" in str(result)


def _two_sets_benchmark(env, data_dir):
    return env.make_benchmark(data_dir / RUN_DATA / "two_sets.c", run_cmd=["./a.out"], input_sets=[
        {"name": "small", "args": ["5"], "stdin": "1 2\n", "inputs": {"numbers.txt": b"10\n"}},
        {"name": "edge", "args": ["2147483647"], "stdin": "3\n", "inputs": {"numbers.txt": b"20 30\n"}},
    ], outputs=["result.txt", "final.txt"], pre_run_cmd=["./a.out", "prepare"], post_run_cmd=["./a.out", "post"],
        run_timeout=30)


def test_two_input_sets_with_pre_and_post_run_commands_and_output_files_end_to_end(llvm, data_dir) -> None:
    """Every part of a run configuration in one real run: the pre-run command
    writes what the program reads, each input set has its own arguments,
    stdin and input file, the post-run command derives a second declared
    output file. The optimised program differs on the second set only, in
    one output file only, and the result says which set and which check."""
    llvm.reset(benchmark=_two_sets_benchmark(llvm, data_dir))
    unoptimised = llvm.validate(semantics=True)
    assert unoptimised.okay() and unoptimised.benchmark_semantics_validated, unoptimised
    llvm.multistep([flag(llvm, "-mem2reg"), flag(llvm, "-instcombine")])
    result = llvm.validate()
    assert not result.okay() and result.benchmark_semantics_validation_failed, result
    assert not result.benchmark_nondeterministic
    (failure,) = result.semantics_failures
    assert failure.kind == SemanticsFailure.OUTPUT_FILE_DIFFERS and failure.input_set == 1
    # The file holds what the pre-run command, stdin, the input file and the
    # argument made: (20 + 30 + 3) x 3 = 159, then the overflow test's answer.
    assert "output file result.txt differs, line 2: expected wraps, got no wrap" in failure.message
    assert "output_file_differs on input set 1" in str(result)


def test_instructions_retired_says_whether_this_machine_counts(llvm, data_dir) -> None:
    llvm.reset(benchmark=_two_sets_benchmark(llvm, data_dir))
    description = llvm.observation.spaces["InstructionsRetired"].description
    assert "on this server: " in description
    if "on this server: available" in description:
        counts = llvm.observation["InstructionsRetired"]
        assert len(counts) >= 1 and all(count > 0 for count in counts)
        return
    # This machine has no counter (e.g. a virtual machine without a PMU):
    # describe and the observation both say so, and why.
    assert "on this server: unavailable: perf_event_open: " in description
    with pytest.raises(InvalidRequest, match="InstructionsRetired is unavailable on this machine: perf_event_open: "):
        llvm.observation["InstructionsRetired"]
    assert len(llvm.observation["Runtime"]) >= 1


def test_a_fork_carries_the_run_configuration(llvm, data_dir) -> None:
    llvm.reset(benchmark=_files_benchmark(llvm, data_dir))
    fork = llvm.fork()
    try:
        fork.step(flag(fork, "-sroa"))
        result = fork.validate()
        assert result.benchmark_semantics_validated, result
        assert fork.state.benchmark == llvm.state.benchmark and "?run=" in fork.state.benchmark
    finally:
        fork.close()


def test_a_state_replays_with_its_run_configuration_from_the_command_line(llvm, data_dir, tmp_path) -> None:
    llvm.reset(benchmark=_files_benchmark(llvm, data_dir))
    llvm.step(flag(llvm, "-mem2reg"))
    states = tmp_path / "states.csv"
    buffer = io.StringIO()
    CompilerEnvStateWriter(buffer).write_state(llvm.state)
    states.write_text(buffer.getvalue())
    cli = subprocess.run([sys.executable, "-m", "forkgym", "validate", "--env", "llvm-v0", "--semantics",
                          "--jobs", "1", str(states)], capture_output=True, text=True, timeout=600)
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert "semantics validated" in cli.stdout and "semantics: 1 validated, 0 failed" in cli.stdout


def test_a_nondeterministic_benchmark_is_reported_as_such_never_as_a_miscompile(llvm, data_dir) -> None:
    llvm.reset(benchmark=llvm.make_benchmark(data_dir / RUN_DATA / "clock.c", run_timeout=30))
    llvm.step(flag(llvm, "-mem2reg"))
    result = llvm.validate()
    assert result.benchmark_nondeterministic
    assert not result.benchmark_semantics_validation_failed and not result.benchmark_semantics_validated
    assert result.semantics_failures == []
    assert "two runs of the unoptimised program differ on input set 0" in result.semantics_not_validated
    assert result.okay()  # the replay itself checks out: nothing was concluded about the semantics
    required = llvm.validate(semantics=True)
    assert not required.okay() and "nondeterministic" in str(required)
    # Compared modulo what varies, it validates.
    assert llvm.validate(output_filter=r"^\d+\.\d+$").benchmark_semantics_validated


def test_undefined_behaviour_asan_sees_in_the_unoptimised_program_is_not_a_miscompile(llvm, data_dir) -> None:
    llvm.reset(benchmark=llvm.make_benchmark(data_dir / RUN_DATA / "heap_overflow.c", run_timeout=30))
    llvm.step(flag(llvm, "-mem2reg"))
    result = llvm.validate(sanitizers=["asan"])
    assert not result.benchmark_semantics_validation_failed, result
    assert "undefined behaviour in the benchmark, not a miscompile" in result.semantics_not_validated
    assert "AddressSanitizer" in result.semantics_not_validated


def test_an_asan_build_of_a_csmith_program_runs_and_validates_clean(llvm) -> None:
    """The ASan build really runs: its runtime reserves ~20 TB of shadow
    address space, which the worker's memory limit must not refuse."""
    llvm.reset(benchmark="generator://csmith-v0/1")
    llvm.multistep([flag(llvm, "-mem2reg"), flag(llvm, "-instcombine"), flag(llvm, "-simplifycfg")])
    result = llvm.validate(semantics=True, sanitizers=["asan"])
    assert result.okay() and result.benchmark_semantics_validated, result
    assert result.sanitizer_reports == [] and result.semantics_not_validated is None


def test_an_out_of_bounds_write_is_a_sanitizer_report_that_names_its_kind(llvm, data_dir) -> None:
    llvm.reset(benchmark=llvm.make_benchmark(data_dir / RUN_DATA / "heap_overflow.c", run_timeout=30))
    llvm.step(flag(llvm, "-mem2reg"))
    result = llvm.validate(sanitizers=["asan"])
    # Every build of the program overflows: the state's ASan build and the
    # unoptimised program's both report it.
    assert [(r.kind, r.sanitizer_kind, r.input_set) for r in result.sanitizer_reports] == [
        (SemanticsFailure.SANITIZER_REPORT, "heap-buffer-overflow", 0)] * 2
    assert "AddressSanitizer: heap-buffer-overflow" in result.sanitizer_reports[0].message
    assert "AddressSanitizer: heap-buffer-overflow" in result.semantics_not_validated
    assert "heap-buffer-overflow" in str(result)


def test_runtime_observations_and_the_runtime_reward_report_a_crashing_program_alike(llvm, shared_tmp_path) -> None:
    source = shared_tmp_path / "crashes.c"
    source.write_text("int main(void) { volatile int *p = 0; *p = 1; return 0; }\n")
    llvm.reset(benchmark=llvm.make_benchmark(source, run_timeout=30))
    with pytest.raises(ForkgymError) as observed:
        llvm.observation["Runtime"]
    with pytest.raises(ForkgymError) as rewarded:
        llvm.reward["Runtime"]
    assert "Runtime: the program killed by signal 11" in str(observed.value)
    assert "the Runtime reward: the program killed by signal 11" in str(rewarded.value)
    for error in (observed.value, rewarded.value):
        assert "(outcome crashed); the episode goes on" in str(error)
    assert llvm.in_episode


def test_a_benchmark_without_a_run_configuration_is_not_validated_semantically(llvm) -> None:
    llvm.reset(benchmark="benchmark://forkgym-v0/crc32")
    llvm.step(flag(llvm, "-mem2reg"))
    result = llvm.validate()
    assert result.okay() and not result.benchmark_semantics_validated
    assert "not runnable" in result.semantics_not_validated
    required = llvm.validate(semantics=True)
    assert not required.okay() and "not runnable" in str(required)
    skipped = llvm.validate(semantics=False)
    assert skipped.okay() and "not asked" in skipped.semantics_not_validated


def test_validation_options_the_runner_cannot_honour_are_refused(llvm) -> None:
    llvm.reset(benchmark="benchmark://forkgym-v0/crc32")
    with pytest.raises(InvalidRequest, match="UBSan checks C semantics the IR no longer carries"):
        llvm.validate(sanitizers=["ubsan"])
    with pytest.raises(InvalidRequest, match="gold_runs must be at least 1"):
        llvm.validate(gold_runs=0)
    with pytest.raises(InvalidRequest, match="drop semantics=False"):
        llvm.validate(semantics=False, sanitizers=["asan"])


def test_an_llvm_19_miscompile_is_found_by_validate_alone(llvm, data_dir) -> None:
    """The hunt's finding (tests/data/miscompile/attributor_loop.{c,json}): after
    -attributor the program never ends; validate() says so, and the
    unoptimised program by itself validates."""
    finding = json.loads((data_dir / "miscompile" / "attributor_loop.json").read_text())
    # A short run timeout: the unoptimised program ends at once.
    benchmark = llvm.make_benchmark(data_dir / "miscompile" / finding["program"], run_timeout=10)
    llvm.reset(benchmark=benchmark)
    assert llvm.validate(semantics=True).benchmark_semantics_validated
    llvm.multistep([flag(llvm, name) for name in finding["passes"]])
    result = llvm.validate()
    assert not result.okay()
    assert result.benchmark_semantics_validation_failed and not result.benchmark_nondeterministic
    assert result.semantics_failure == SemanticsFailure.TIMED_OUT == SemanticsFailure(finding["symptom"])
    (failure,) = result.semantics_failures
    assert "the optimised program timed out after 5 s" in failure.message
    assert "the unoptimised one exited with status 0" in failure.message
    assert "timed_out on input set 0" in str(result)


def test_a_hanging_candidate_is_stopped_at_a_limit_derived_from_the_gold_run(llvm, data_dir) -> None:
    """With the configuration's default run timeout (300 s), the candidate
    that never ends is stopped at max(5 s, 10 x the unoptimised program's
    wall time), and the result says which limit it used."""
    finding = json.loads((data_dir / "miscompile" / "attributor_loop.json").read_text())
    benchmark = llvm.make_benchmark(data_dir / "miscompile" / finding["program"], run_cmd=["./a.out"])
    assert benchmark.run_config.run_timeout == 300
    llvm.reset(benchmark=benchmark)
    llvm.multistep([flag(llvm, name) for name in finding["passes"]])
    result = llvm.validate()
    assert result.semantics_failure == SemanticsFailure.TIMED_OUT, result
    # The unoptimised program ends at once: the floor applies.
    assert result.semantics_run_timeout == 5
    (failure,) = result.semantics_failures
    assert "the optimised program timed out after 5 s" in failure.message
    assert "max(5 s, 10 x the unoptimised program's" in failure.message and "at most 300 s" in failure.message


# Fixed seeds: the same programs and sequences every run. These programs
# finish at once (some seeds' run for minutes: 3, 11, 29), and the 20
# sequences below were checked outside forkgym (scripts/hunt_miscompiles'
# build and run) to change no program's behaviour.
CSMITH_SEEDS = (1, 22, 4444, 7, 13)
SEQUENCES_PER_PROGRAM = 4


def test_csmith_programs_validate_over_random_sequences_with_no_false_alarm(llvm) -> None:
    rng = random.Random(11)
    usable = [i for i in range(len(llvm.action_space.flags))
              if i not in llvm.action_space.unavailable and not llvm.action_space.flags[i].startswith("-forkgym-test")]
    validated = 0
    for seed in CSMITH_SEEDS:
        for _ in range(SEQUENCES_PER_PROGRAM):
            llvm.reset(benchmark=f"generator://csmith-v0/{seed}")
            actions = [rng.choice(usable) for _ in range(rng.randint(5, 25))]
            _, _, _, truncated, info = llvm.multistep(actions)
            assert not truncated, info
            result = llvm.validate(semantics=True)
            # csmith's programs print a checksum of their globals and are
            # deterministic: every sequence must validate, none may be
            # reported as nondeterministic or as a miscompile.
            assert result.okay() and result.benchmark_semantics_validated, (seed, llvm.commandline(), str(result))
            validated += 1
    assert validated == len(CSMITH_SEEDS) * SEQUENCES_PER_PROGRAM
