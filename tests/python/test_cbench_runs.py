"""cbench-v1's run configurations (forkgym.datasets.cbench_runs): a cBench
program installed with its runtime data builds, runs on the input ?dataset=N
picks, and validates; served here on loopback by a stand-in for the real
dataset (same layout: bitcode under cBench-v1/, runtime_data/ in its own
archive), since tests do not download."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import forkgym
from conftest import flag
from datasets_fixtures import loopback, manifest, site, tarball  # noqa: F401 (fixtures)
from forkgym.datasets import Datasets, catalogue
from forkgym.datasets.catalogue import Extra
from forkgym.datasets.cbench_runs import CBENCH_RUNS

# A stand-in for cBench's qsort: sorts the numbers of the file it is given,
# prints them and writes them to sorted_output.dat, as the real one does.
QSORT = r"""
#include <stdio.h>
#include <stdlib.h>
static int compare(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }
int main(int argc, char **argv) {
  int values[64], n = 0;
  FILE *in = fopen(argv[1], "r");
  FILE *loops = fopen("_finfo_dataset", "r");
  if (!in || !loops) { perror("open"); return 2; }
  while (n < 64 && fscanf(in, "%d", &values[n]) == 1) n++;
  qsort(values, n, sizeof values[0], compare);
  FILE *out = fopen("sorted_output.dat", "w");
  for (int i = 0; i < n; i++) { printf("%d\n", values[i]); fprintf(out, "%d\n", values[i]); }
  fclose(out);
  return 0;
}
"""
INPUTS = {1: b"5 3 9 1\n", 2: b"42 -7 13\n"}


@pytest.fixture
def cbench(site, loopback, tmp_path):  # noqa: F811 (fixtures)
    """cbench-v1 replaced, for the test, by one program and two inputs served on loopback."""
    source = tmp_path / "qsort.c"
    source.write_text(QSORT)
    bitcode = subprocess.run(["clang-19", "-c", "-emit-llvm", "-O0", "-Xclang", "-disable-O0-optnone", "-w",
                              "-o", "-", str(source)], check=True, capture_output=True).stdout
    real = catalogue.find("benchmark://cbench-v1")
    data = tarball({f"runtime_data/automotive_qsort_data/{i}.dat": text for i, text in INPUTS.items()})
    row = catalogue.Entry(real.name, real.kind, real.description, real.license, 1,
                          tarball=loopback.serve("cbench-test.tar.bz2", tarball({"cBench-v1/qsort.bc": bitcode})),
                          manifest=loopback.serve("cbench-test-manifest.bz2", manifest(["qsort"])),
                          strip_prefix="cBench-v1", run_configs=real.run_configs,
                          extras=(Extra(loopback.serve("cbench-test-runtime-data.tar.bz2", data), into="runtime-data"),))
    server = forkgym.Server()
    try:
        with catalogue.extended([row]), forkgym.make("llvm-v0", server=server) as env:
            yield env
    finally:
        server.close()


def _stdout(env) -> str:
    (run,) = env.unwrapped._native.run("current", [], 1, 0).runs
    return bytes(run.stdout).decode()


def test_a_cbench_program_runs_on_its_runtime_data_and_validates(cbench) -> None:
    cbench.reset(benchmark="benchmark://cbench-v1/qsort")
    assert Datasets()["cbench-v1"].installed
    assert cbench.observation["IsRunnable"]
    assert _stdout(cbench) == "1\n3\n5\n9\n"  # input 1, by default (?dataset=0)
    cbench.multistep([flag(cbench, f) for f in ("-mem2reg", "-instcombine", "-simplifycfg")])
    result = cbench.validate()
    assert result.okay() and result.benchmark_semantics_validated, result


def test_dataset_n_picks_the_input_and_a_missing_one_says_which_there_are(cbench) -> None:
    cbench.reset(benchmark="benchmark://cbench-v1/qsort?dataset=1")
    assert _stdout(cbench) == "-7\n13\n42\n"  # input 2
    assert cbench.validate().benchmark_semantics_validated
    # qsort has 20 inputs; this stand-in's runtime data has 2.
    with pytest.raises(forkgym.BenchmarkNotFound, match="needs its runtime data file .*/3.dat"):
        cbench.reset(benchmark="benchmark://cbench-v1/qsort?dataset=2")


def test_every_validated_cbench_program_has_a_run_and_the_unvalidated_ones_none() -> None:
    programs = ("adpcm bitcount blowfish bzip2 crc32 dijkstra ghostscript gsm ispell jpeg-c jpeg-d lame patricia "
                "qsort rijndael sha stringsearch stringsearch2 susan tiff2bw tiff2rgba tiffdither tiffmedian").split()
    unvalidated = {"adpcm", "ghostscript", "ispell", "lame", "rijndael"}
    assert set(CBENCH_RUNS) == set(programs) - unvalidated


def test_a_dataset_n_out_of_range_and_a_missing_file_are_clear_errors(tmp_path: Path) -> None:
    from forkgym.datasets import cbench_runs

    (tmp_path / "runtime-data" / "runtime_data").mkdir(parents=True)
    with pytest.raises(forkgym.BenchmarkNotFound, match="needs its runtime data file .*1.dat.*reinstall"):
        cbench_runs.run_config(tmp_path, "qsort", 0, "benchmark://cbench-v1/qsort")
    with pytest.raises(forkgym.BenchmarkNotFound, match="invalid dataset 1; stringsearch2 has .dataset=0 only"):
        cbench_runs.run_config(tmp_path, "stringsearch2", 1, "benchmark://cbench-v1/stringsearch2?dataset=1")
    with pytest.raises(forkgym.BenchmarkNotFound, match="invalid dataset 'x'"):
        cbench_runs.dataset_index({"dataset": ["x"]}, "benchmark://cbench-v1/qsort?dataset=x")
    assert cbench_runs.run_config(tmp_path, "ghostscript", 0, "benchmark://cbench-v1/ghostscript") is None


def test_every_observation_space_works_on_an_installed_dataset_program(cbench, tmp_path: Path) -> None:
    """Every space the env offers, those that build and run the program
    included, on a program of an installed catalogue dataset (CompilerGym's
    kind of benchmark), at reset and after a step. The inst2vec lookups read
    a synthetic vocabulary installed into this test's site directory."""
    from forkgym.datasets import inst2vec
    from inst2vec_fixtures import synthetic_wheel

    wheel, sha256 = synthetic_wheel(tmp_path, ["ret i32 <%ID>", "br label <%ID>"])
    inst2vec.install(wheel, sha256=sha256)
    cbench.observation.file_directory = tmp_path
    cbench.reset(benchmark="benchmark://cbench-v1/qsort")
    rows = {row.name: row for row in cbench.description.observations}
    # The description says when this machine cannot offer a space (no
    # hardware instruction counter in a virtual machine without a PMU);
    # test_validate_semantics checks that error.
    names = [n for n in cbench.observation.spaces
             if "on this server: unavailable" not in cbench.observation.spaces[n].description]
    assert any(rows[cbench.observation.spaces[n].native].needs_run_config for n in names), "no runnable space offered"
    for actions in ([], [flag(cbench, "-mem2reg")]):
        values, _, _, truncated, info = cbench.multistep(actions, observation_spaces=names)
        assert not truncated, info
        for name, value in zip(names, values):
            assert value in cbench.observation.spaces[name].space, (actions, name, value)
