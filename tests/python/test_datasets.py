"""The datasets API (CompilerGym's shape), the catalogue table, installs from a
loopback server, user datasets and the `python -m forkgym datasets` command
line — everything on the Python side, without a server. (Resetting envs to
dataset benchmarks through the server: test_datasets_server.py.)"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import textwrap
import tracemalloc
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import forkgym
from datasets_fixtures import Loopback, loopback, manifest, site, tarball  # noqa: F401 (fixtures)
from forkgym.__main__ import main as cli
from forkgym.datasets import Benchmark, BenchmarkUri, Datasets, catalogue, ensure_installed, fetch, from_directory
from forkgym.datasets.catalogue import PREBUILT, SOURCE, Entry, Extra
from forkgym.datasets.manifest import Manifest
from forkgym.errors import DownloadFailed

# CompilerGym's listing order (reference §8), with forkgym's own datasets in
# their (sort order, name) places.
LISTED = [
    "benchmark://cbench-v1", "benchmark://anghabench-v1", "benchmark://blas-v0", "benchmark://chstone-v0",
    "benchmark://clgen-v0", "benchmark://forkgym-v0", "benchmark://gcc-c-torture-v0", "benchmark://github-v0",
    "benchmark://jotaibench-v0", "benchmark://linux-v0", "benchmark://mibench-v1", "benchmark://npb-v0",
    "benchmark://opencv-v0", "benchmark://poj104-v1", "benchmark://tensorflow-v0", "generator://csmith-v0",
    "generator://llvm-stress-v0",
]
DEPRECATED = ["benchmark://anghabench-v0", "benchmark://cBench-v0", "benchmark://cBench-v1",
              "benchmark://mibench-v0", "benchmark://poj104-v0"]


def prebuilt_row(loopback: Loopback, name: str, files: dict[str, bytes], **fields) -> Entry:
    """A test-only prebuilt dataset ``benchmark://<name>`` served by ``loopback``:
    ``files`` (paths without suffix -> contents) under the archive's ``<name>/``."""
    archive = tarball({f"{name}/{path}.bc": data for path, data in files.items()})
    return Entry(f"benchmark://{name}", PREBUILT, "a test dataset", "MIT", len(files),
                 tarball=loopback.serve(f"{name}.tar.bz2", archive),
                 manifest=loopback.serve(f"{name}-manifest.bz2", manifest(sorted(files))), **fields)


# ------------------------------------------------------------- catalogue --


def test_catalogue_has_every_compilergym_dataset_once_with_checksums() -> None:
    names = [row.name for row in catalogue.CATALOGUE]
    assert len(names) == len(set(names))
    assert set(names) == set(LISTED) | set(DEPRECATED) | {"benchmark://user-v0"}
    for row in catalogue.CATALOGUE:
        for remote in [row.tarball, row.manifest, *(extra.remote for extra in row.extras)]:
            if remote is not None:
                assert re.fullmatch(r"[0-9a-f]{64}", remote.sha256), row.name
                assert all(url.startswith("https://") for url in remote.urls), row.name
        downloadable = row.tarball is not None
        assert downloadable == (row.kind in (PREBUILT, SOURCE) and not row.installer), row.name
        assert row.manifest is not None or row.fixed or row.installer or not downloadable, row.name
        assert bool(row.deprecated) == (row.name in DEPRECATED)
    cbench = catalogue.find("benchmark://cbench-v1")
    assert (cbench.sort_order, cbench.validatable, cbench.root) == (-1, "Partially", "contents/cBench-v1")
    assert cbench.tarball == catalogue.find("benchmark://cBench-v1").tarball  # one tar, two names
    assert len(catalogue.find("benchmark://poj104-v1").tarball.urls) == 2  # CompilerGym's fallback URL too
    assert catalogue.find("benchmark://chstone-v0").fixed == catalogue.CHSTONE_PROGRAMS
    assert catalogue.find("benchmark://poj104-v1").transform == "poj104"
    assert "{dataset}/libclc" in catalogue.find("benchmark://clgen-v0").flags
    assert catalogue.find("benchmark://anghabench-v1").size == 1_041_333
    assert sum(catalogue.find(n).size for n in LISTED if "forkgym" not in n and "torture" not in n) == 1_177_462


def test_iteration_is_in_sort_order_then_name_without_the_deprecated(site) -> None:
    datasets = Datasets()
    assert [d.name for d in datasets] == LISTED
    assert len(datasets) == datasets.size == len(LISTED)
    with_deprecated = [d.name for d in datasets.datasets(with_deprecated=True)]
    assert set(with_deprecated) == set(LISTED) | set(DEPRECATED)
    assert with_deprecated[-3:] == ["benchmark://cBench-v1", "benchmark://mibench-v0", "benchmark://poj104-v0"]


def test_deprecated_aliases_resolve_but_are_hidden() -> None:
    datasets = Datasets()
    for name in DEPRECATED:
        assert name in datasets and name.split("://")[1] in datasets
        dataset = datasets[name]
        assert dataset.deprecated and dataset.deprecation_message and dataset.name == name
    assert "cbench-v1" in datasets["cBench-v1"].deprecation_message
    assert "benchmark://cbench-v1" in datasets and datasets["cbench-v1"] != datasets["cBench-v1"]  # case-sensitive


def test_lookup_takes_a_name_with_or_without_scheme_or_any_uri_of_the_dataset() -> None:
    datasets = Datasets()
    cbench = datasets["benchmark://cbench-v1"]
    assert datasets["cbench-v1"] is cbench and datasets["cbench-v1/qsort"] is cbench
    assert datasets["benchmark://cbench-v1/qsort?dataset=2"] is cbench
    assert datasets["csmith-v0"].name == "generator://csmith-v0"
    assert (cbench.description, cbench.license, cbench.version) == ("Runnable C benchmarks", "BSD 3-Clause", 1)
    assert cbench.references["Homepage"] == "https://ctuning.org/wiki/index.php/CTools:CBench"
    assert not cbench.installed and datasets["forkgym-v0"].installed and datasets["csmith-v0"].installed
    assert datasets.benchmark("cbench-v1/qsort") == "benchmark://cbench-v1/qsort"
    assert datasets.benchmark("generator://csmith-v0/7") == "generator://csmith-v0/7"
    with pytest.raises(LookupError, match="seed"):
        datasets.benchmark("generator://csmith-v0/not-a-seed")


def test_an_unknown_dataset_names_the_closest_ones() -> None:
    datasets = Datasets()
    with pytest.raises(forkgym.BenchmarkNotFound) as error:
        datasets["cbench-v2"]
    message = str(error.value)
    assert "unknown dataset 'benchmark://cbench-v2'" in message and "did you mean benchmark://cbench-v1" in message
    assert "python -m forkgym datasets" in message and "from_directory" in message
    assert "cbench-v2" not in datasets and 42 not in datasets


def test_del_hides_a_dataset_from_that_collection_only(site) -> None:
    datasets, other = Datasets(), Datasets()
    del datasets["blas-v0"]
    assert "blas-v0" not in datasets and "benchmark://blas-v0" not in [d.name for d in datasets]
    assert len(datasets) == len(LISTED) - 1
    assert "blas-v0" in other and len(other) == len(LISTED)
    with pytest.raises(LookupError):
        del datasets["blas-v0"]
    datasets.add(other["blas-v0"])
    assert [d.name for d in datasets] == LISTED


# ------------------------------------------------------------- benchmarks --


def test_benchmarks_compare_and_hash_by_uri() -> None:
    a, b = Benchmark("benchmark://cbench-v1/qsort"), Benchmark("cbench-v1/qsort")
    assert a == b == "benchmark://cbench-v1/qsort" and hash(a) == hash(b) and len({a, b}) == 1
    assert a != Benchmark("benchmark://cbench-v1/crc32") and a != 3
    uri = BenchmarkUri("benchmark://cbench-v1/qsort?dataset=3&x=1#frag")
    assert (uri.scheme, uri.dataset, uri.path, uri.fragment) == ("benchmark", "cbench-v1", "/qsort", "frag")
    assert uri.params == {"dataset": ["3"], "x": ["1"]} and uri.dataset_name == "benchmark://cbench-v1"
    assert isinstance(a.uri, str) and a.uri.startswith("benchmark://")
    assert BenchmarkUri("file:///abs/x.c").path == "/abs/x.c"


def test_benchmarks_from_files_hold_their_content_and_its_hash(tmp_path: Path) -> None:
    data = b"BC\xc0\xde" + bytes(range(64))
    path = tmp_path / "x.bc"
    path.write_bytes(data)
    made = Benchmark.from_file("benchmark://mine/x", path)
    path.write_bytes(b"changed")
    assert made.content == data and made.content_hash == hashlib.sha256(data).hexdigest()
    assert made.content_suffix == ".bc" and made == Benchmark.from_file_contents("benchmark://mine/x", b"other")
    assert Benchmark.from_file_contents("benchmark://mine/t", b"define i32 @f() {\n  ret i32 0\n}\n").content_suffix == ".ll"
    assert Benchmark("benchmark://cbench-v1/qsort").content_hash is None
    with pytest.raises(forkgym.BenchmarkNotFound, match="empty"):
        Benchmark.from_file_contents("benchmark://mine/y", b"")
    with pytest.raises(forkgym.BenchmarkNotFound, match="cannot read"):
        Benchmark.from_file("benchmark://mine/z", tmp_path / "missing.bc")


def test_bundled_sources_and_generators_list_without_a_download() -> None:
    datasets = Datasets()
    bundled = datasets["forkgym-v0"]
    assert list(bundled.benchmark_uris()) == ["benchmark://forkgym-v0/crc32", "benchmark://forkgym-v0/small"]
    source = Benchmark("benchmark://forkgym-v0/crc32").sources
    assert [s.filename for s in source] == ["crc32.c"] and b"crc" in source[0].contents
    generator = datasets["generator://llvm-stress-v0"]
    assert generator.size == 0 and next(iter(generator.benchmark_uris())) == "generator://llvm-stress-v0/0"
    seed = int(generator.random_benchmark(np.random.default_rng(3)).uri.rsplit("/", 1)[1])
    assert 0 <= seed < 2**32 - 1


# ------------------------------------------------ listing from manifests --


def test_listing_fetches_the_manifest_and_not_the_archive(site, loopback) -> None:
    row = prebuilt_row(loopback, "fgtest-listing-v0", {"b": b"2", "a": b"1", "sub/c": b"3"})
    with catalogue.extended([row]):
        dataset = Datasets()["fgtest-listing-v0"]
        assert dataset.manifest_size() is None  # not fetched yet: the CLI shows the documented size
        assert dataset.size == 3 and len(dataset) == 3
        assert list(dataset.benchmark_uris()) == [f"benchmark://fgtest-listing-v0/{p}" for p in ("a", "b", "sub/c")]
        assert dataset.random_benchmark(np.random.default_rng(0)).uri.startswith("benchmark://fgtest-listing-v0/")
        assert not dataset.installed
        assert Datasets()["fgtest-listing-v0"].manifest_size() == 3
    assert loopback.hits["/fgtest-listing-v0-manifest.bz2"] == 1 and loopback.hits["/fgtest-listing-v0.tar.bz2"] == 0


def _listed_dataset(directory_name: str, lines: list[str]) -> Entry:
    """A row whose manifest is already on disk (written here, nothing to fetch)."""
    Manifest.write(forkgym.datasets.paths.dataset_dir(directory_name), lines)
    return Entry(f"benchmark://{directory_name}", PREBUILT, "a test dataset", "MIT", len(lines))


def test_benchmarks_of_all_datasets_come_round_robin(site) -> None:
    rows = [_listed_dataset("fgtest-rr-a", ["a0", "a1", "a2"]), _listed_dataset("fgtest-rr-b", ["b0"]),
            _listed_dataset("fgtest-rr-c", ["c0", "c1"])]
    datasets = Datasets([forkgym.datasets.dataset.dataset_of(row) for row in rows])
    assert [u.rsplit("/", 1)[1] for u in datasets.benchmark_uris()] == ["a0", "b0", "c0", "a1", "c1", "a2"]
    assert [b.uri.rsplit("/", 1)[1] for b in datasets["fgtest-rr-a"]] == ["a0", "a1", "a2"]
    assert isinstance(next(datasets.benchmarks()), Benchmark)


def _all_catalogue_manifests_on_disk() -> None:
    """Manifests for every listed catalogue dataset, so the whole catalogue lists
    and draws offline (sizes differ, so weighting shows)."""
    for i, row in enumerate(r for r in catalogue.entries() if r.kind in (PREBUILT, SOURCE)):
        Manifest.write(forkgym.datasets.paths.dataset_dir(row.bare_name), [f"p{j}" for j in range(1 + 10 * i)])


_DRAWS = """
import numpy as np
from forkgym.datasets import Datasets
rng = np.random.default_rng(1234)
datasets = Datasets()
print([str(datasets.random_benchmark(rng)) for _ in range(40)])
print([str(datasets.random_benchmark(rng, weighted=True)) for _ in range(40)])
"""


def test_random_benchmark_is_the_same_for_a_seed_in_any_process(site) -> None:
    _all_catalogue_manifests_on_disk()
    runs = [subprocess.run([sys.executable, "-c", _DRAWS], capture_output=True, text=True, check=True,
                           env={**os.environ, "PYTHONHASHSEED": str(seed)}).stdout for seed in (1, 2, 3)]
    assert runs[0] == runs[1] == runs[2]
    uniform, weighted = (eval(line) for line in runs[0].splitlines())  # noqa: S307 (our own output)
    assert len({u.split("/")[2] for u in uniform}) > 8  # many datasets, generators included
    assert not any(u.startswith("generator://") for u in weighted)  # size 0: never drawn when weighted


def test_weighted_draws_follow_sizes_and_given_weights(site) -> None:
    rows = [_listed_dataset("fgtest-small", ["s"]), _listed_dataset("fgtest-big", [f"b{i}" for i in range(99)])]
    datasets = Datasets([forkgym.datasets.dataset.dataset_of(row) for row in rows])
    rng = np.random.default_rng(5)
    draws = [datasets.random_benchmark(rng, weighted=True).uri.split("/")[2] for _ in range(2000)]
    assert 1900 < draws.count("fgtest-big") < 2000  # p = 0.99; a fixed seed, so a fixed count
    only_small = {datasets.random_benchmark(rng, weights={"fgtest-big": 0}).uri for _ in range(50)}
    assert only_small == {"benchmark://fgtest-small/s"}
    uniform = [datasets.random_benchmark(rng).uri.split("/")[2] for _ in range(2000)]
    assert 900 < uniform.count("fgtest-small") < 1100
    with pytest.raises(LookupError, match="weight 0"):
        datasets.random_benchmark(rng, weights={"fgtest-big": 0, "benchmark://fgtest-small": 0})


def test_a_million_entry_manifest_is_counted_and_drawn_from_without_materialising_it(site, loopback) -> None:
    count = 1_041_333  # anghabench-v1's size
    lines = [f"dir{i % 997}/function_{i}" for i in range(count)]
    remote = loopback.serve("fgtest-million-manifest.bz2", manifest(lines))
    row = Entry("benchmark://fgtest-million-v0", SOURCE, "a test dataset", "MIT", count, manifest=remote,
                tarball=loopback.serve("fgtest-million.tar.bz2", b"never fetched"), suffix=".c", language="c")
    del lines
    with catalogue.extended([row]):
        Datasets()["fgtest-million-v0"].manifest()  # fetched and indexed once
        tracemalloc.start()
        try:
            dataset = Datasets()["fgtest-million-v0"]
            assert dataset.size == count
            rng = np.random.default_rng(0)
            drawn = [dataset.random_benchmark(rng) for _ in range(1000)]
            first = next(iter(dataset.benchmark_uris()))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert first == "benchmark://fgtest-million-v0/dir0/function_0"
    assert len({b.uri for b in drawn}) > 990
    # The list itself would be ~90 MB of Python strings; this is a thousand
    # URIs and the reader's buffer (the index and the text are mapped, not read).
    assert peak < 16 << 20, peak
    assert loopback.hits["/fgtest-million.tar.bz2"] == 0


# ---------------------------------------------------------------- install --


def _ini(dataset) -> dict[str, str]:
    return forkgym.datasets.dataset.read_ini(dataset.site_data_path / "dataset.ini")


def test_install_writes_the_dataset_directory_the_server_reads(site, loopback) -> None:
    row = prebuilt_row(loopback, "fgtest-install-v0", {"a": b"BC\xc0\xdeA", "sub/b": b"BC\xc0\xdeB"})
    with catalogue.extended([row]):
        dataset = Datasets()["fgtest-install-v0"]
        dataset.install()
        directory = dataset.site_data_path
        assert directory == site / "site" / "datasets" / "fgtest-install-v0"
        assert dataset.installed and (directory / ".installed").is_file()
        assert _ini(dataset) == {"uri": "benchmark://fgtest-install-v0", "kind": "prebuilt",
                                 "root": "contents/fgtest-install-v0", "suffix": ".bc", "language": "bitcode"}
        assert (directory / "contents/fgtest-install-v0/sub/b.bc").read_bytes() == b"BC\xc0\xdeB"
        assert list(Manifest(directory)) == ["a", "sub/b"]
        assert dataset.benchmark("sub/b") == "benchmark://fgtest-install-v0/sub/b"
        with pytest.raises(LookupError, match="Benchmark not found"):
            dataset.benchmark("nope")
        assert dataset.site_data_size_in_bytes > 0
        dataset.install()  # installed: nothing fetched again
        assert loopback.hits["/fgtest-install-v0.tar.bz2"] == 1

        dataset.uninstall()
        assert not dataset.installed and not (directory / "contents").exists()
        assert dataset.size == 2  # the manifest stays: it still lists


def test_source_rows_say_how_to_compile_them(site, loopback) -> None:
    archive = tarball({"src/p/one.txt": b"main(){}\n"})
    row = Entry("benchmark://fgtest-source-v1", SOURCE, "a test dataset", "MIT", 1,
                tarball=loopback.serve("fgtest-source.tar.gz", archive), strip_prefix="src",
                manifest=loopback.serve("fgtest-source-manifest.bz2", manifest(["p/one"])), suffix=".txt",
                language="c++", flags="-xc++ -ferror-limit=1 -w -std=c++11", transform="poj104", runnable=True)
    with catalogue.extended([row]):
        ensure_installed("benchmark://fgtest-source-v1/p/one")
        dataset = Datasets()["fgtest-source-v1"]
        assert _ini(dataset) == {"uri": "benchmark://fgtest-source-v1", "kind": "source", "root": "contents/src",
                                 "suffix": ".txt", "language": "c++", "flags": "-xc++ -ferror-limit=1 -w -std=c++11",
                                 "transform": "poj104", "runnable": "true"}
        assert [(s.filename, s.contents) for s in Benchmark("fgtest-source-v1/p/one").sources] == [
            ("one.txt", b"main(){}\n")]


def test_chstone_is_normalised_so_every_program_is_root_slash_name_dot_c(site, loopback) -> None:
    prefix = "patmos_HLS-test/benchmarks/CHStone"
    files = {}
    for name in catalogue.CHSTONE_PROGRAMS:
        main = catalogue.CHSTONE_MAIN_FILES.get(name, name + ".c")
        files[f"{prefix}/{name}/{main}"] = f"int {name}_main(void) {{ return 0; }}\n".encode()
        files[f"{prefix}/{name}/{name}.h"] = b"/* header */\n"
    real = catalogue.find("benchmark://chstone-v0")
    row = replace(real, name="benchmark://fgtest-chstone-v0", strip_prefix=prefix,
                  tarball=loopback.serve("fgtest-chstone.tar.gz", tarball(files, "w:gz")))
    with catalogue.extended([row]):
        dataset = Datasets()["fgtest-chstone-v0"]
        assert dataset.size == 12  # the fixed list, before anything is downloaded
        assert loopback.hits["/fgtest-chstone.tar.gz"] == 0
        dataset.install()
        root = dataset.site_data_path / "contents" / prefix
        assert _ini(dataset)["root"] == f"contents/{prefix}"
        for name in catalogue.CHSTONE_PROGRAMS:
            assert f'#include "{name}/' in (root / f"{name}.c").read_text()
        assert '#include "blowfish/bf.c"' in (root / "blowfish.c").read_text()
        assert [uri.rsplit("/", 1)[1] for uri in dataset.benchmark_uris()] == list(catalogue.CHSTONE_PROGRAMS)
        sources = Benchmark("fgtest-chstone-v0/sha").sources
        assert sorted(s.filename for s in sources) == ["sha/sha.h", "sha/sha_driver.c"]


def test_extra_files_land_beside_the_contents(site, loopback) -> None:
    libclc = tarball({"clc/clc.h": b"/* libclc */\n"})
    opencl = b"/* opencl.h */\n"
    real = catalogue.find("benchmark://clgen-v0")
    row = replace(real, name="benchmark://fgtest-clgen-v0", strip_prefix="kernels",
                  tarball=loopback.serve("fgtest-clgen.tar.bz2", tarball({"kernels/k1.cl": b"kernel void A() {}\n"})),
                  manifest=loopback.serve("fgtest-clgen-manifest.bz2", manifest(["k1"])),
                  extras=(Extra(loopback.serve("libclc-test.tar.bz2", libclc), into="libclc"),
                          Extra(loopback.serve("opencl.h", opencl), into="opencl.h")))
    with catalogue.extended([row]):
        dataset = Datasets()["fgtest-clgen-v0"]
        dataset.install()
        directory = dataset.site_data_path
        assert (directory / "libclc/clc/clc.h").read_bytes() == b"/* libclc */\n"
        assert (directory / "opencl.h").read_bytes() == opencl
        assert _ini(dataset)["flags"] == real.flags and _ini(dataset)["language"] == "opencl"


def test_a_deprecated_dataset_warns_when_installed(site, loopback) -> None:
    row = prebuilt_row(loopback, "fgtest-old-v0", {"a": b"x"}, deprecated="Please use fgtest-new-v1")
    with catalogue.extended([row]):
        datasets = Datasets()
        assert "fgtest-old-v0" in datasets and "benchmark://fgtest-old-v0" not in [d.name for d in datasets]
        with pytest.warns(DeprecationWarning, match="fgtest-new-v1"):
            datasets["fgtest-old-v0"].install()


def test_not_installed_and_no_network_says_how_to_place_the_file_by_hand(site, monkeypatch) -> None:
    empty = site / "empty-mirror"
    empty.mkdir()
    monkeypatch.setenv("FORKGYM_DATASET_MIRROR", str(empty))  # a mirror that has nothing: no network
    with pytest.raises(DownloadFailed) as error:
        ensure_installed("benchmark://cbench-v1/qsort")
    message = str(error.value)
    tar = catalogue.find("benchmark://cbench-v1").tarball
    assert "benchmark://cbench-v1/qsort needs benchmark://cbench-v1" in message
    assert "llvm_bitcodes-10.0.0-cBench-v1-linux.tar.bz2" in message and tar.urls[0] in message
    assert tar.sha256 in message and "FORKGYM_DATASET_MIRROR" in message
    for needed in ("llvm_bitcodes-10.0.0-cbench-v1-manifest.bz2", "cBench-v0-runtime-data.tar.bz2"):
        assert needed in message  # every file the install takes, named at once
    assert not Datasets()["cbench-v1"].installed
    with pytest.raises(forkgym.BenchmarkNotFound, match="did you mean benchmark://cbench-v1"):
        ensure_installed("benchmark://cbench-v2/qsort")


# ----------------------------------------------------------- user datasets --


def test_a_directory_of_sources_registers_in_place(site, tmp_path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / ".hidden").mkdir()
    for path in ("a.c", "sub/b.c", ".hidden/c.c"):
        (tmp_path / path).write_text("int f(void) { return 1; }\n")
    (tmp_path / "util.h").write_text("#define X 1\n")
    before = sorted(p.name for p in tmp_path.rglob("*"))
    dataset = from_directory("fgtest-mine-v0", tmp_path, flags="-w -DFOO=1")
    assert dataset.name == "benchmark://fgtest-mine-v0" and dataset.installed and dataset.size == 2
    assert _ini(dataset) == {"uri": "benchmark://fgtest-mine-v0", "kind": "source", "root": str(tmp_path.resolve()),
                             "suffix": ".c", "language": "c", "flags": "-w -DFOO=1"}
    assert list(dataset.benchmark_uris()) == ["benchmark://fgtest-mine-v0/a", "benchmark://fgtest-mine-v0/sub/b"]
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing written in the directory
    datasets = Datasets()
    assert "benchmark://fgtest-mine-v0" in [d.name for d in datasets]
    assert datasets["fgtest-mine-v0"].benchmark("sub/b") == "benchmark://fgtest-mine-v0/sub/b"
    assert Benchmark("fgtest-mine-v0/a").sources[0].contents == b"int f(void) { return 1; }\n"
    ensure_installed("benchmark://fgtest-mine-v0/a")  # registered: nothing to do

    (tmp_path / "d.c").write_text("int g(void) { return 2; }\n")
    assert from_directory("fgtest-mine-v0", tmp_path).size == 3  # registering again replaces it

    datasets["fgtest-mine-v0"].uninstall()
    assert "fgtest-mine-v0" not in Datasets() and (tmp_path / "a.c").is_file()


def test_a_directory_of_bitcode_is_a_prebuilt_dataset(site, tmp_path) -> None:
    (tmp_path / "x.bc").write_bytes(b"BC\xc0\xde")
    (tmp_path / "notes.txt").write_text("not a benchmark")
    dataset = from_directory("benchmark://fgtest-bits-v0", tmp_path)
    assert _ini(dataset)["kind"] == "prebuilt" and _ini(dataset)["suffix"] == ".bc" and "flags" not in _ini(dataset)
    assert list(dataset.benchmark_uris()) == ["benchmark://fgtest-bits-v0/x"] and Benchmark(
        "fgtest-bits-v0/x").sources == []


def test_user_datasets_refuse_what_would_go_wrong(site, tmp_path) -> None:
    with pytest.raises(ValueError, match="catalogue dataset"):
        from_directory("cbench-v1", tmp_path)
    with pytest.raises(ValueError, match="found no program files"):
        from_directory("fgtest-empty-v0", tmp_path)
    with pytest.raises(ValueError, match="dataset name"):
        from_directory("../escape", tmp_path)
    with pytest.raises(LookupError, match="not a directory"):
        from_directory("fgtest-nodir-v0", tmp_path / "missing")
    (tmp_path / "a.c").write_text("int a;\n")
    (tmp_path / "b.ll").write_text("; text IR\n")
    with pytest.raises(ValueError, match=r"several kinds \(\.c, \.ll\); pass suffix="):
        from_directory("fgtest-mixed-v0", tmp_path)
    assert from_directory("fgtest-mixed-v0", tmp_path, suffix=".ll").size == 1
    # A bitcode file of yours beside a source is a program of another kind ...
    (tmp_path / "a.bc").write_bytes(b"BC\xc0\xde")
    assert from_directory("fgtest-clash-v0", tmp_path, suffix=".c").size == 1
    # ... and one named as the server names the module it compiles from a
    # source is left alone (the server does not cache over it), with a warning.
    (tmp_path / "a.c.bc").write_bytes(b"BC\xc0\xde")
    with pytest.warns(UserWarning, match="a.c.bc .*left alone"):
        assert from_directory("fgtest-clash-v1", tmp_path, suffix=".c").size == 1
    assert (tmp_path / "a.c.bc").read_bytes() == b"BC\xc0\xde"


# ------------------------------------------------------------ command line --


def test_the_command_line_lists_installs_shows_and_uninstalls(site, loopback, capsys) -> None:
    row = replace(prebuilt_row(loopback, "fgtest-cli-v0", {"a": b"BC\xc0\xde"}), license="Test License 1.0")
    with catalogue.extended([row]):
        assert cli(["datasets"]) == 0
        out = capsys.readouterr().out
        assert re.search(r"benchmark://fgtest-cli-v0\s+~1\s+no\s+-\s+Test License 1.0", out), out
        assert out.index("benchmark://cbench-v1") < out.index("benchmark://anghabench-v1")
        assert "cBench-v1" not in out

        assert cli(["datasets", "install", "fgtest-cli-v0"]) == 0
        assert "installed 1 benchmarks" in capsys.readouterr().out
        assert cli(["datasets", "list", "--json"]) == 0
        listed = {d["name"]: d for d in json.loads(capsys.readouterr().out)}
        assert listed["benchmark://fgtest-cli-v0"]["installed"] and listed["benchmark://fgtest-cli-v0"]["size"] == 1
        assert listed["benchmark://fgtest-cli-v0"]["disk_bytes"] > 0
        assert listed["benchmark://cbench-v1"]["license"] == "BSD 3-Clause"
        assert cli(["datasets", "--all", "--json"]) == 0
        assert "benchmark://cBench-v1" in {d["name"] for d in json.loads(capsys.readouterr().out)}

        assert cli(["datasets", "show", "fgtest-cli-v0/a"]) == 1
        assert "has no sources here" in capsys.readouterr().err
        assert cli(["datasets", "show", "benchmark://forkgym-v0/small"]) == 0
        assert capsys.readouterr().out == (Path(forkgym.datasets.BundledDataset.directory()) / "small.c").read_text()

        assert cli(["datasets", "uninstall", "fgtest-cli-v0"]) == 0
        assert not Datasets()["fgtest-cli-v0"].installed
        assert cli(["datasets", "install", "cbench-v2"]) == 1
        assert "did you mean benchmark://cbench-v1" in capsys.readouterr().err


def test_the_command_line_registers_a_directory(site, tmp_path, capsys) -> None:
    (tmp_path / "p.c").write_text("int main(void) { return 0; }\n")
    assert cli(["datasets", "add", "fgtest-added-v0", str(tmp_path)]) == 0
    assert "1 benchmarks" in capsys.readouterr().out and "fgtest-added-v0" in Datasets()
    assert cli(["datasets", "show", "fgtest-added-v0/p"]) == 0
    assert capsys.readouterr().out == "int main(void) { return 0; }\n"


def test_the_command_line_keeps_validate_and_runs_as_a_module(site) -> None:
    listed = subprocess.run([sys.executable, "-m", "forkgym", "datasets", "list", "--json"], capture_output=True,
                            text=True, check=True)
    assert [d["name"] for d in json.loads(listed.stdout)] == LISTED
    validate = subprocess.run([sys.executable, "-m", "forkgym", "validate", "--help"], capture_output=True, text=True)
    assert validate.returncode == 0 and "state CSV files" in validate.stdout
    usage = subprocess.run([sys.executable, "-m", "forkgym"], capture_output=True, text=True)
    assert usage.returncode == 2 and "datasets" in usage.stdout
