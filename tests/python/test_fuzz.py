"""forkgym fuzz re-finds a known LLVM 19 crash: -scalarizer dereferences a null
pointer on llvm-stress programs. With a fixed seed and a bounded number of
executions the fuzzer finds it, puts every repeat in one bucket signed by
LLVM's functions, saves a self-contained artifact, reduces the sequence to
the one pass, and the reproducer's opt command fails the same way. A second
run on the same state directory resumes it."""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys

import forkgym
from forkgym.__main__ import main
from forkgym.cli import fuzz

# Found by hand (seeds 1-4 of this budget: three found the crash, at
# executions 22-43): with this seed, the 60 first executions on llvm-stress
# programs 0-4 (sequences of at most 20 passes) crash in -scalarizer twice.
SEED = 2
EXECS = 60


def _fuzz(state_dir, *extra: str) -> int:
    return main(["fuzz", "--state-dir", str(state_dir), "--dataset", "generator://llvm-stress-v0",
                 "--generator-seeds", "5", "--seed", str(SEED), "--max-length", "20", "--no-reduce-ir",
                 "--semantics-rate", "0", "--determinism-rate", "0", "--no-progress", "--json", *extra])


def test_fuzz_refinds_the_scalarizer_crash_buckets_its_repeats_and_reduces_it(shared_tmp_path, capsys):
    state_dir = shared_tmp_path / "fz"
    assert _fuzz(state_dir, "--execs", str(EXECS)) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["execs"] == EXECS
    scalarizer = [b for b in summary["buckets"] if "ScalarizerPass" in b["signature"]]
    assert len(scalarizer) == 1, summary["buckets"]  # every repeat in one bucket
    bucket = scalarizer[0]
    assert bucket["kind"] == "crash" and bucket["signature"].startswith("SIGSEGV "), bucket
    assert bucket["count"] >= 2, bucket
    # Reduced to the pass itself, and opt-19 crashes the same way on the saved bitcode.
    assert "-scalarizer" in bucket["reduced_passes"] and len(bucket["reduced_passes"]) <= 3, bucket
    assert bucket["opt_reproduces"] is True
    directory = state_dir / bucket["directory"]
    for name in ("input.bc", "pipeline.txt", "outcome.json", "log.txt", "reproduce.sh"):
        assert (directory / name).is_file(), name
    outcome = json.loads((directory / "outcome.json").read_text())
    assert outcome["benchmark"].startswith("generator://llvm-stress-v0/")
    assert "/llvm-19/" in outcome["opt_command"] and "scalarizer" in outcome["opt_command"]
    assert "19." in outcome["llvm_version"]
    assert any("ScalarizerPass" in frame for frame in outcome["frames"])
    reduced = directory / "reduced"
    assert (reduced / "pipeline.txt").read_text().split() == bucket["reduced_passes"]
    run = subprocess.run(["sh", str(reduced / "reproduce.sh")], capture_output=True, check=False)
    assert run.returncode == -11, run  # reproduce.sh execs opt, which dies by SIGSEGV
    report = (state_dir / "report.md").read_text()
    assert "ScalarizerPass" in report and f"{EXECS:,} executions" in report

    # Resumed: the same directory goes on from where it stopped, its buckets kept.
    assert _fuzz(state_dir, "--execs", "5") == 0
    again = json.loads(capsys.readouterr().out)
    assert again["execs"] == EXECS + 5
    assert [b["bucket"] for b in again["buckets"]][: len(summary["buckets"])] == \
        [b["bucket"] for b in summary["buckets"]]
    assert len(list((state_dir / "buckets").iterdir())) == len(again["buckets"])


def test_resuming_with_another_server_build_warns_that_signatures_may_differ(shared_tmp_path, capsys):
    state_dir = shared_tmp_path / "fz"
    assert _fuzz(state_dir, "--execs", "1", "--no-reduce") == 0
    meta = json.loads((state_dir / "fuzz.json").read_text())
    assert meta["server"] == fuzz.server_identity() and len(meta["server"]["sha256"]) == 64
    capsys.readouterr()
    assert _fuzz(state_dir, "--execs", "2", "--no-reduce") == 0  # the same server: nothing to say
    assert "signed differently" not in capsys.readouterr().err
    meta["server"] = {"path": "/opt/old/forkgym-server", "sha256": "0" * 64}
    (state_dir / "fuzz.json").write_text(json.dumps(meta))
    assert _fuzz(state_dir, "--execs", "3", "--no-reduce") == 0
    err = capsys.readouterr().err
    assert "another forkgym-server (/opt/old/forkgym-server, sha256 000000000000)" in err, err
    assert "start a new --state-dir" in err
    # The buckets' server is kept: every resume with another build says so.
    assert json.loads((state_dir / "fuzz.json").read_text())["server"]["path"] == "/opt/old/forkgym-server"


def test_fuzz_flags_nondeterminism_across_processes(shared_tmp_path):
    # The sampled cross-process check on a sequence known to differ
    # (test_cross_process.py): -sroa -newgvn on csmith program 2.
    arguments = argparse.Namespace(semantics_rate=0, determinism_rate=1.0, seed=0)
    state = fuzz.FuzzState(shared_tmp_path / "fz", {})
    fuzzer = fuzz.Fuzzer(state, fuzz.Benchmarks(["generator://csmith-v0/2"], [], 1),
                         argparse.Namespace(**vars(arguments), execs=0, time=0), lambda text: None)
    try:
        with forkgym.make("llvm-v0") as env:
            actions = [env.action_space.index("-sroa"), env.action_space.index("-newgvn")]
            env.reset(benchmark="generator://csmith-v0/2")
            env.multistep(actions)
            failure = fuzzer._sampled_checks(env, random.Random(0), "generator://csmith-v0/2", actions)
            assert failure is not None and failure.kind == "nondeterminism", failure
            assert failure.signature == "state hash differs across processes after -newgvn" and failure.step == 1
            deterministic = [env.action_space.index("-sroa"), env.action_space.index("-gvn")]
            env.reset(benchmark="generator://csmith-v0/2")
            env.multistep(deterministic)
            assert fuzzer._sampled_checks(env, random.Random(0), "generator://csmith-v0/2", deterministic) is None
    finally:
        fuzzer.crossers.close()


def test_a_required_plot_without_matplotlib_names_the_extra(shared_tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails as if not installed
    status = main(["fuzz", "--state-dir", str(shared_tmp_path / "fz"), "--execs", "1", "--plot", "--no-progress"])
    assert status == 1
    assert "forkgym[plots]" in capsys.readouterr().err


def test_the_report_without_matplotlib_says_how_to_get_the_plot(shared_tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    state = fuzz.FuzzState(shared_tmp_path / "fz", {"seed": 0})
    path, png, note = fuzz.write_report(state, None)
    assert png is None and "forkgym[plots]" in note and "forkgym[plots]" in path.read_text()


def test_the_report_has_a_plot_of_buckets_over_time_when_matplotlib_is_there(shared_tmp_path):
    state = fuzz.FuzzState(shared_tmp_path / "fz", {"seed": 0})
    state.execs, state.elapsed = 10, 2.0
    state.timeline()
    path, png, note = fuzz.write_report(state, True)
    assert note is None and png.read_bytes().startswith(b"\x89PNG") and "buckets.png" in path.read_text()


def test_fuzz_on_a_c_torture_program_validates_semantics_of_its_successful_runs(shared_tmp_path):
    # In its own process, whose server has the set-up's site data (where
    # gcc-c-torture-v0 is installed; conftest.py gives this run its own).
    from conftest import SETUP_SITE_DATA

    environment = dict(os.environ)
    if SETUP_SITE_DATA is None:
        environment.pop("FORKGYM_SITE_DATA", None)
    else:
        environment["FORKGYM_SITE_DATA"] = SETUP_SITE_DATA
    state_dir = shared_tmp_path / "fz"
    run = subprocess.run([sys.executable, "-m", "forkgym", "fuzz", "--state-dir", str(state_dir), "--benchmark",
                          "benchmark://gcc-c-torture-v0/execute/arith-rand", "--execs", "6", "--seed", "0",
                          "--max-length", "6", "--semantics-rate", "1", "--determinism-rate", "0", "--no-progress",
                          "--json"], capture_output=True, text=True, env=environment, timeout=900, check=False)
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout)
    assert summary["execs"] == 6
    counts = summary["counts"]
    # Every run that succeeded was validated by running the program, and none
    # behaved differently from the unoptimised one.
    assert counts.get("semantics_checked", 0) == counts.get("ok", 0) > 0, counts
    assert "miscompile" not in counts, summary["buckets"]
    # The report's outcome table counts each execution once; the sampled
    # checks are a line of their own.
    report = (state_dir / "report.md").read_text()
    table = report[report.index("| outcome | executions |"):].split("\n\n")[0].splitlines()[2:]
    assert sum(int(row.split("|")[2].replace(",", "")) for row in table) == 6, report
    assert f"semantic validation {counts['semantics_checked']}" in report, report


def test_fuzz_with_two_jobs_counts_every_execution_once(shared_tmp_path, capsys):
    state_dir = shared_tmp_path / "fz"
    assert _fuzz(state_dir, "--execs", "20", "--jobs", "2", "--no-reduce") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["execs"] == 20
    assert sum(summary["counts"].values()) == 20, summary["counts"]
    failures = 20 - summary["counts"].get("ok", 0) - summary["counts"].get("benchmark_error", 0)
    assert sum(b["count"] for b in summary["buckets"]) == failures
    timeline = (state_dir / "timeline.csv").read_text().splitlines()
    assert timeline[0] == "elapsed_s,execs,buckets" and timeline[-1].split(",")[1] == "20"


def test_a_new_miscompile_bucket_is_reduced_to_the_pass_that_miscompiles(shared_tmp_path, data_dir):
    # Its passes are reduced with the check that found it (the program run
    # against the unoptimised one), not left as fuzzing found them; its IR is
    # not (llvm-reduce tests the pipeline, not the behaviour), and opt cannot
    # show it, which the artifact says.
    arguments = argparse.Namespace(semantics_rate=1.0, determinism_rate=0, seed=0, execs=0, time=0, reduce=True,
                                   reduce_ir=True, ir_timeout=60.0)
    state = fuzz.FuzzState(shared_tmp_path / "fz", {})
    fuzzer = fuzz.Fuzzer(state, fuzz.Benchmarks(["benchmark://forkgym-v0/crc32"], [], 1), arguments, lambda text: None)
    with forkgym.make("llvm-v0") as env:
        uri = str(env.make_benchmark(data_dir / "miscompile" / "attributor_loop.c", run_timeout=2).uri)
        found = [env.action_space.index(f) for f in ("-dce", "-attributor", "-instcombine", "-simplifycfg")]
        env.reset(benchmark=uri)
        env.multistep(found)
        failure = fuzzer._sampled_checks(env, random.Random(0), uri, found)
        assert failure is not None and failure.bucket == "miscompile: timed_out", failure
        fuzzer._record(env, 0, uri, found, failure)
    [bucket] = state.buckets.values()
    assert bucket.reduced_passes == ["-attributor"]
    assert bucket.opt_reproduces is None and any("IR not reduced" in note for note in bucket.notes), bucket.notes
    outcome = json.loads((state.directory / bucket.directory / "reduced" / "outcome.json").read_text())
    assert outcome["bucket"] == "miscompile: timed_out" and outcome["actions"] == ["-attributor"]


def test_fuzz_classifies_a_miscompile_found_by_semantic_validation(shared_tmp_path, data_dir):
    # LLVM 19's -attributor turns this program (from C torture's 961017-2)
    # into an endless loop (tests/data/miscompile/attributor_loop.json).
    arguments = argparse.Namespace(semantics_rate=1.0, determinism_rate=0, seed=0, execs=0, time=0)
    fuzzer = fuzz.Fuzzer(fuzz.FuzzState(shared_tmp_path / "fz", {}), fuzz.Benchmarks(["benchmark://forkgym-v0/crc32"],
                         [], 1), arguments, lambda text: None)
    with forkgym.make("llvm-v0") as env:
        benchmark = env.make_benchmark(data_dir / "miscompile" / "attributor_loop.c", run_timeout=10)
        uri = str(benchmark.uri)
        assert "run=" in uri  # a benchmark with a run configuration is runnable
        env.reset(benchmark=benchmark)
        actions = [env.action_space.index("-attributor")]
        env.multistep(actions)
        failure = fuzzer._sampled_checks(env, random.Random(0), uri, actions)
        assert failure is not None and failure.kind == "miscompile" and failure.signature == "timed_out", failure
        assert failure.bucket == "miscompile: timed_out"
        env.reset(benchmark=benchmark)
        harmless = [env.action_space.index("-mem2reg")]
        env.multistep(harmless)
        assert fuzzer._sampled_checks(env, random.Random(0), uri, harmless) is None
