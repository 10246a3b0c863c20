"""Datasets through the server: an env resets to a catalogue benchmark and the
dataset is installed on first use, then the server resolves the URI; user
datasets end to end.

Each test that installs a dataset starts its own server after pointing the
site-data directory at a private one, so the server resolves what this test
installed (a private server inherits the client's environment).
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest

import forkgym
from datasets_fixtures import (SOURCE_TEXT, Loopback, bitcodes, ir_sha1, loopback,  # noqa: F401 (fixtures)
                               manifest, site, tarball)
from forkgym.datasets import Benchmark, Datasets, catalogue, from_directory
from forkgym.datasets.catalogue import PREBUILT, SOURCE, Entry



@pytest.fixture
def private_server(site) -> forkgym.Server:
    server = forkgym.Server()
    try:
        yield server
    finally:
        server.close()


# ------------------------------------------------- install on first use --


def test_reset_installs_a_catalogue_dataset_on_first_use(private_server, loopback, bitcodes) -> None:
    archive = tarball({"fgtest-first-v0/crc32.bc": bitcodes["crc32"], "fgtest-first-v0/sub/small.bc": bitcodes["small"]})
    row = Entry("benchmark://fgtest-first-v0", PREBUILT, "a test dataset", "MIT", 2,
                tarball=loopback.serve("fgtest-first.tar.bz2", archive),
                manifest=loopback.serve("fgtest-first-manifest.bz2", manifest(["crc32", "sub/small"])))
    with catalogue.extended([row]), forkgym.make("llvm-ic-v0", server=private_server) as env:
        direct = ir_sha1(env, "benchmark://forkgym-v0/small")
        assert not Datasets()["fgtest-first-v0"].installed
        env.reset(benchmark="benchmark://fgtest-first-v0/sub/small")
        assert env.ir_sha1 == direct and env.benchmark == "benchmark://fgtest-first-v0/sub/small"
        assert Datasets()["fgtest-first-v0"].installed and loopback.hits["/fgtest-first.tar.bz2"] == 1
        assert env.state.benchmark == "benchmark://fgtest-first-v0/sub/small"
        env.reset(benchmark="fgtest-first-v0/crc32")  # installed: nothing fetched again
        assert loopback.hits["/fgtest-first.tar.bz2"] == 1
        with pytest.raises(forkgym.BenchmarkNotFound):
            env.reset(benchmark="benchmark://fgtest-first-v0/missing")
    with catalogue.extended([row]), forkgym.make("llvm-v0", server=private_server,
                                                 benchmark="benchmark://fgtest-first-v0/crc32") as env:
        env.reset()
        assert env.benchmark == "benchmark://fgtest-first-v0/crc32"


def test_a_source_dataset_is_compiled_by_the_server_with_its_flags(private_server, loopback) -> None:
    archive = tarball({"src/prog.c": SOURCE_TEXT.encode()})
    row = Entry("benchmark://fgtest-compiled-v0", SOURCE, "a test dataset", "MIT", 1,
                tarball=loopback.serve("fgtest-compiled.tar.gz", archive), strip_prefix="src",
                manifest=loopback.serve("fgtest-compiled-manifest.bz2", manifest(["prog"])), suffix=".c", language="c",
                flags="-ferror-limit=1 -w -DSCALE=5 -DOFFSET=2")
    with catalogue.extended([row]), forkgym.make("llvm-v0", server=private_server) as env:
        env.reset(benchmark="benchmark://fgtest-compiled-v0/prog")
        assert ", 5" in env.ir and ", 2" in env.ir
        root = Datasets()["fgtest-compiled-v0"].site_data_path / "contents" / "src"
        assert (root / "prog.c.bc").is_file()  # the module is cached beside its source


# ----------------------------------------------------------- user datasets --


def test_a_directory_of_sources_is_a_dataset_the_server_serves(private_server, shared_tmp_path, data_dir) -> None:
    (shared_tmp_path / "scaled.c").write_text(SOURCE_TEXT)
    (shared_tmp_path / "nested").mkdir()
    shutil.copy(data_dir / "small.c", shared_tmp_path / "nested" / "small.c")
    mine = from_directory("fgtest-yours-v0", shared_tmp_path, flags="-w -DSCALE=11 -DOFFSET=4")
    assert mine.size == 2
    with forkgym.make("llvm-ic-v0", server=private_server) as env:
        env.reset(benchmark="benchmark://fgtest-yours-v0/scaled")
        assert ", 11" in env.ir and ", 4" in env.ir  # compiled with the dataset's flags
        env.reset(benchmark=mine.random_benchmark())
        env.reset(benchmark="fgtest-yours-v0/nested/small")
        assert env.observation["IrInstructionCount"] > 0
    # The modules the server cached beside the sources are not programs of
    # their own: registering again finds the same two.
    assert (shared_tmp_path / "scaled.c.bc").is_file()
    assert from_directory("fgtest-yours-v0", shared_tmp_path, flags="-w -DSCALE=11 -DOFFSET=4").size == 2


def test_a_directory_of_bitcode_is_a_dataset_the_server_serves(private_server, shared_tmp_path, bitcodes) -> None:
    (shared_tmp_path / "crc32.bc").write_bytes(bitcodes["crc32"])
    from_directory("fgtest-bitcode-v0", shared_tmp_path)
    with forkgym.make("llvm-ic-v0", server=private_server) as env:
        assert ir_sha1(env, "benchmark://fgtest-bitcode-v0/crc32") == ir_sha1(env, "benchmark://forkgym-v0/crc32")


def test_the_readmes_user_dataset_example_runs(shared_tmp_path, data_dir, capsys) -> None:
    # The README's example, with a real directory; the default server, so the
    # run's own site data (conftest), where the registration is undone after.
    from test_readme import _block_after

    shutil.copy(data_dir / "small.c", shared_tmp_path / "small.c")
    code = _block_after("### Your own datasets").replace("/abs/dir/of/sources", str(shared_tmp_path))
    try:
        exec(compile(code, "README.md", "exec"), {})
        assert "benchmark://mine-v0/small" in capsys.readouterr().out
    finally:
        forkgym.datasets.Datasets()["mine-v0"].uninstall()


def test_chstone_and_poj104_compile_as_their_rows_say(private_server, loopback) -> None:
    """CHStone's normalised entry points (bf.c, sha_driver.c... included from
    <root>/<name>.c, their headers beside them) and POJ-104's rewritten C++
    (`main()` made `int main()`, the header and defines prepended), each from
    an archive built here, under its catalogue row with another name."""
    prefix = "patmos_HLS-test/benchmarks/CHStone"
    files = {}
    for name in catalogue.CHSTONE_PROGRAMS:
        main = catalogue.CHSTONE_MAIN_FILES.get(name, name + ".c")
        files[f"{prefix}/{name}/{main}"] = f'#include "{name}_data.h"\nint {name}_main(void) {{ return DATA; }}\n'.encode()
        files[f"{prefix}/{name}/{name}_data.h"] = f"#define DATA {1000 + len(main)}\n".encode()
    chstone = replace(catalogue.find("benchmark://chstone-v0"), name="benchmark://fgtest-chstone-v0",
                      strip_prefix=prefix, tarball=loopback.serve("fgtest-chstone-e2e.tar.gz", tarball(files, "w:gz")))
    poj = replace(
        catalogue.find("benchmark://poj104-v1"), name="benchmark://fgtest-poj104-v1",
        tarball=loopback.serve("fgtest-poj104-e2e.tar.gz", tarball(
            {"ProgramData/7/1.txt": b"main()\n{\n  int n = MAX_LENGTH / 8;\n  cout << n;\n  return 0;\n}\n"},
            "w:gz")),
        manifest=loopback.serve("fgtest-poj104-e2e-manifest.bz2", manifest(["7/1"])))
    with catalogue.extended([chstone, poj]), forkgym.make("llvm-v0", server=private_server) as env:
        env.reset(benchmark="benchmark://fgtest-chstone-v0/blowfish")  # blowfish/bf.c
        assert "@blowfish_main" in env.ir and "ret i32 1004" in env.ir
        env.reset(benchmark="benchmark://fgtest-chstone-v0/sha")  # sha/sha_driver.c
        assert "@sha_main" in env.ir and "ret i32 1012" in env.ir
        env.reset(benchmark="benchmark://fgtest-poj104-v1/7/1")
        assert "@main" in env.ir and "128" in env.ir  # MAX_LENGTH / 8


def test_clgen_kernels_compile_and_load_with_their_headers(private_server, loopback) -> None:
    """clgen's OpenCL kernels, compiled for its nvptx64 target with the libclc
    headers and opencl.h installed beside the contents ({dataset} in the flags)."""
    from forkgym.datasets.catalogue import Extra

    clgen = replace(
        catalogue.find("benchmark://clgen-v0"), name="benchmark://fgtest-clgen-v0", strip_prefix="kernels",
        tarball=loopback.serve("fgtest-clgen-e2e.tar.bz2", tarball(
            {"kernels/k1.cl": b"kernel void A(global int* a) { a[get_id()] = WIDTH; }\n"})),
        manifest=loopback.serve("fgtest-clgen-e2e-manifest.bz2", manifest(["k1"])),
        extras=(Extra(loopback.serve("libclc-e2e.tar.bz2", tarball({"clc/clc.h": b"#define WIDTH 37\n"})),
                      into="libclc"),
                Extra(loopback.serve("opencl-e2e.h", b"#include <clc/clc.h>\nint get_id(void);\n"),
                      into="opencl.h")))
    with catalogue.extended([clgen]), forkgym.make("llvm-ic-v0", server=private_server) as env:
        env.reset(benchmark="benchmark://fgtest-clgen-v0/k1")
        assert "nvptx64" in env.ir and "i32 37" in env.ir
        _, reward, _, truncated, _ = env.step(env.action_space.names.index("-mem2reg"))
        assert not truncated


def test_an_edited_header_of_a_source_dataset_is_the_new_program(site, shared_tmp_path) -> None:
    """The module cached beside a dataset's source stands for the source and the
    headers it included from the dataset's directory: after one of those
    headers is edited, the program is the new one — at the next reset of the
    running server and in a server started later (which finds the cached
    module on disk)."""
    header = shared_tmp_path / "k.h"
    header.write_text("#define K 5\n")
    (shared_tmp_path / "uses.c").write_text('#include "k.h"\nint k(void) { return K * 1000 + 7; }\n')
    from_directory("fgtest-headers-v0", shared_tmp_path)
    uri = "benchmark://fgtest-headers-v0/uses"
    with forkgym.Server() as server, forkgym.make("llvm-ic-v0", server=server) as env:
        env.reset(benchmark=uri)
        assert "ret i32 5007" in env.ir
        header.write_text("#define K 6\n")
        env.reset(benchmark=uri)
        assert "ret i32 6007" in env.ir
    assert (shared_tmp_path / "uses.c.bc").is_file()
    header.write_text("#define K 8\n")
    with forkgym.Server() as server, forkgym.make("llvm-ic-v0", server=server) as env:
        env.reset(benchmark=uri)
        assert "ret i32 8007" in env.ir
