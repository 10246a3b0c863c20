"""forkgym reduce: ddmin of the pass sequence keeping the failure's bucket,
then llvm-reduce of the IR with an interestingness test that runs the
pipeline in a forkgym worker; the minimal reproducer fails the same way
under opt-19."""

from __future__ import annotations

import json
import subprocess

from forkgym.__main__ import main

BENCHMARK = "generator://llvm-stress-v0/3"
PASSES = "-licm -reassociate -scalarizer -dce"


def test_reduce_keeps_the_crash_and_shrinks_passes_and_ir(shared_tmp_path, capsys):
    output = shared_tmp_path / "reduced"
    status = main(["reduce", "--benchmark", BENCHMARK, "--passes", PASSES, "-o", str(output),
                   "--kind", "crash", "--signature", "ScalarizerPass"])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    outcome = json.loads((output / "outcome.json").read_text())
    assert outcome["actions"] == ["-scalarizer"], outcome
    assert outcome["original_actions"] == PASSES.split()
    assert outcome["kind"] == "crash" and "ScalarizerPass" in outcome["signature"]
    assert outcome["opt_reproduces"] is True and outcome["opt_exit_status"] == -11
    # The IR was reduced: a text module smaller than the program llvm-stress made.
    assert outcome["input"] == "input.ll"
    reduced_ir = (output / "input.ll").read_text()
    original = subprocess.run(["llvm-dis-19", "-o", "-", "-"], input=_bitcode(), capture_output=True,
                              check=True).stdout.decode()
    assert len(reduced_ir) < len(original) // 2, (len(reduced_ir), len(original))
    run = subprocess.run(["sh", str(output / "reproduce.sh")], capture_output=True, check=False)
    assert run.returncode == -11, run  # reproduce.sh execs opt, which dies by SIGSEGV


def _bitcode() -> bytes:
    import forkgym

    with forkgym.make("llvm-v0") as env:
        env.reset(benchmark=BENCHMARK)
        return env.bitcode


def test_reduce_of_an_artifact_directory_writes_beside_it(shared_tmp_path, capsys):
    first = shared_tmp_path / "first"
    assert main(["reduce", "--benchmark", BENCHMARK, "--passes", "-gvn -scalarizer", "-o", str(first),
                 "--no-ir"]) == 0
    capsys.readouterr()
    assert main(["reduce", str(first), "--no-ir"]) == 0
    outcome = json.loads((first / "reduced" / "outcome.json").read_text())
    assert outcome["actions"] == ["-scalarizer"] and outcome["benchmark"] == BENCHMARK
    assert outcome["opt_reproduces"] is True


def test_reduce_refuses_a_sequence_that_does_not_fail(shared_tmp_path, capsys):
    status = main(["reduce", "--benchmark", BENCHMARK, "--passes", "-sroa -gvn", "-o", str(shared_tmp_path / "x")])
    assert status == 1
    assert "does not fail" in capsys.readouterr().err


def test_reduce_refuses_another_kind_than_asked(shared_tmp_path, capsys):
    status = main(["reduce", "--benchmark", BENCHMARK, "--passes=-scalarizer", "--kind", "verifier",
                   "-o", str(shared_tmp_path / "x")])
    assert status == 1
    assert "not as a verifier" in capsys.readouterr().err


def test_reduce_keeps_a_nondeterminism_by_replaying_each_candidate_in_other_processes(shared_tmp_path, capsys):
    # -newgvn's result differs across heap layouts on csmith program 2
    # (test_cross_process.py): each candidate sequence is replayed in two
    # other server processes and kept only if they still disagree after the
    # same pass.
    output = shared_tmp_path / "nd"
    status = main(["reduce", "--benchmark", "generator://csmith-v0/2", "--passes",
                   "-dce -sroa -early-cse -newgvn -instcombine", "--kind", "nondeterminism", "-o", str(output)])
    assert status == 0, capsys.readouterr().err
    outcome = json.loads((output / "outcome.json").read_text())
    assert outcome["bucket"] == "nondeterminism: state hash differs across processes after -newgvn"
    assert outcome["actions"] == ["-newgvn"]
    assert outcome["opt_reproduces"] is None and any("IR not reduced" in n for n in outcome["notes"]), outcome
