"""cBench's run configurations: how each runnable cbench-v1 program is built,
run on its runtime data, and checked (CompilerGym's validators, as data).

Lifecycle: a session on ``benchmark://cbench-v1/<name>[?dataset=N]`` that
brings no run configuration of its own gets the one :func:`run_config` builds
here (forkgym.benchmarks.session_benchmark), once the dataset's runtime data is
installed (it comes with ``cbench-v1``'s install: the ``runtime-data`` extra).
The server then builds and runs the program like any other runnable benchmark.

CompilerGym's semantics, kept:

- ``?dataset=N`` picks the input: validator N of the program, i.e. input file
  ``N+1`` of its cDatasets directory (bitcount: N=0 runs ``1125000``, N=1
  ``512``; stringsearch2 has input 1 only). The default is 0; an N the program
  does not have is an error that says which it has.
- The build links the module with the program's extra libraries (``-lm``).
- The run gets the input files and ``_finfo_dataset`` (``1``, cBench's loop
  count) in its directory; stdout and stderr are compared, and the files the
  program writes (``output.txt``, ...) are compared as declared outputs.

What differs: the runner confines a program to its own directory, so the
input files are copied in by content under their plain names and the
arguments name them there (``$D/office_data/1.txt`` → ``1.txt``), where
CompilerGym passed absolute paths. sha's stdout is compared (CompilerGym
ignored it; it is the file's digest, deterministic). The five programs
CompilerGym does not validate (adpcm, ghostscript, ispell, lame, rijndael)
get no configuration, as there.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from forkgym.errors import BenchmarkNotFound
from forkgym.run_config import RunConfig, make_run_config

# Where the runtime data lands in the dataset's directory: the extra's
# ``into`` directory, holding the archive's top-level ``runtime_data/``.
RUNTIME_DATA = Path("runtime-data") / "runtime_data"
_INPUTS = 20
_FINFO = ("_finfo_dataset", b"1\n")
_DATA = "$D/"


@dataclass(frozen=True)
class CbenchRun:
    """One program's validator: arguments after the binary (``$D/`` = the
    runtime data, ``{i}`` = the input number), the files it writes that are
    compared, extra link options, and how many inputs it has."""

    arguments: str
    outputs: tuple[str, ...] = ()
    link: tuple[str, ...] = ()
    inputs: int = _INPUTS


# ../shared/reference/datasets.md §7, "Validators".
CBENCH_RUNS: dict[str, CbenchRun] = {
    "bitcount": CbenchRun("{bitcount}", inputs=2),
    "blowfish": CbenchRun("d $D/office_data/{i}.benc output.txt 1234567890abcdeffedcba0987654321", ("output.txt",)),
    "bzip2": CbenchRun("-d -k -f -c $D/bzip2_data/{i}.bz2"),
    "crc32": CbenchRun("$D/telecom_data/{i}.pcm"),
    "dijkstra": CbenchRun("$D/network_dijkstra_data/{i}.dat"),
    "gsm": CbenchRun("-fps -c $D/telecom_gsm_data/{i}.au"),
    "jpeg-c": CbenchRun("-dct int -progressive -outfile output.jpeg $D/consumer_jpeg_data/{i}.ppm", ("output.jpeg",)),
    "jpeg-d": CbenchRun("-dct int -outfile output.ppm $D/consumer_jpeg_data/{i}.jpg", ("output.ppm",)),
    "patricia": CbenchRun("$D/network_patricia_data/{i}.udp"),
    "qsort": CbenchRun("$D/automotive_qsort_data/{i}.dat", ("sorted_output.dat",), ("-lm",)),
    "sha": CbenchRun("$D/office_data/{i}.txt"),
    "stringsearch": CbenchRun("$D/office_data/{i}.txt $D/office_data/{i}.s.txt output.txt", ("output.txt",), ("-lm",)),
    "stringsearch2": CbenchRun("$D/office_data/{i}.txt $D/office_data/{i}.s.txt output.txt", ("output.txt",), inputs=1),
    "susan": CbenchRun("$D/automotive_susan_data/{i}.pgm output_large.corners.pgm -c",
                       ("output_large.corners.pgm",), ("-lm",)),
    "tiff2bw": CbenchRun("$D/consumer_tiff_data/{i}.tif output.tif", ("output.tif",), ("-lm",)),
    "tiff2rgba": CbenchRun("$D/consumer_tiff_data/{i}.tif output.tif", ("output.tif",), ("-lm",)),
    "tiffdither": CbenchRun("$D/consumer_tiff_data/{i}.bw.tif out.tif", ("out.tif",), ("-lm",)),
    "tiffmedian": CbenchRun("$D/consumer_tiff_data/{i}.nocomp.tif output.tif", ("output.tif",), ("-lm",)),
}
_BITCOUNT_ARGUMENTS = ("1125000", "512")


def dataset_index(params: dict[str, list[str]], uri: str) -> int:
    """CompilerGym's ``?dataset=N``: the last value given, default 0."""
    values = params.get("dataset") or ["0"]
    try:
        index = int(values[-1])
    except ValueError:
        index = -1
    if index < 0:
        raise BenchmarkNotFound(f"{uri}: invalid dataset '{values[-1]}'; ?dataset=N takes a number from 0")
    return index


def run_config(dataset_dir: Path, name: str, index: int, uri: str) -> RunConfig | None:
    """The run configuration of cbench-v1 program ``name`` on input ``index``
    (``?dataset=index``), with its files read from ``dataset_dir``'s runtime
    data; None for a program CompilerGym does not run, or when the runtime
    data is not installed (the program is then not runnable here)."""
    run = CBENCH_RUNS.get(name)
    data = dataset_dir / RUNTIME_DATA
    if run is None or not data.is_dir():
        return None
    if index >= run.inputs:
        raise BenchmarkNotFound(f"{uri}: invalid dataset {index}; {name} has ?dataset=0"
                                + (f" to {run.inputs - 1}" if run.inputs > 1 else " only"))
    return _cached(str(data), name, index)


@functools.lru_cache(maxsize=64)
def _cached(data: str, name: str, index: int) -> RunConfig:
    # Runtime data is installed once and never edited in place (a reinstall
    # replaces the directory), so each input is read once per process.
    run = CBENCH_RUNS[name]
    text = run.arguments.format(i=index + 1, bitcount=_BITCOUNT_ARGUMENTS[min(index, 1)])
    arguments: list[str] = []
    inputs: dict[str, bytes] = dict([_FINFO])
    for word in text.split():
        if word.startswith(_DATA):
            path = Path(data) / word[len(_DATA):]
            try:
                inputs[path.name] = path.read_bytes()
            except OSError as error:
                raise BenchmarkNotFound(f"cbench-v1/{name} needs its runtime data file {path}: {error.strerror}; "
                                        "reinstall the dataset: python -m forkgym datasets uninstall cbench-v1, "
                                        "then install") from None
            arguments.append(path.name)
        else:
            arguments.append(word)
    return make_run_config(build_cmd=["$CC", "$IN", *run.link], run_cmd=["./a.out", *arguments], inputs=inputs,
                           outputs=list(run.outputs))
