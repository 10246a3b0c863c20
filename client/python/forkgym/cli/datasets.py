"""``forkgym datasets``: CompilerGym's datasets and yours.

    forkgym datasets [list] [--all] [--json]   the datasets: size, installed, disk use, license
    forkgym datasets install NAME...           download and install catalogue datasets
    forkgym datasets uninstall NAME...         remove installed datasets (yours: the registration)
    forkgym datasets add NAME DIRECTORY        register a directory of sources or bitcode as NAME
    forkgym datasets show URI [--ir]           print a benchmark's sources (--ir: its LLVM IR)
    forkgym datasets inst2vec [--wheel PATH]   install the inst2vec vocabulary and embeddings now
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def configure(datasets: argparse.ArgumentParser) -> None:
    actions = datasets.add_subparsers(dest="action", metavar="ACTION")
    listing = actions.add_parser("list", help="list the datasets (the default)")
    for p in (datasets, listing):
        p.add_argument("--all", action="store_true", help="also list deprecated and hidden datasets")
        p.add_argument("--json", action="store_true", help="one JSON object per dataset, in a list")
    install = actions.add_parser("install", help="download and install datasets")
    install.add_argument("names", nargs="+", metavar="NAME", help="dataset names (cbench-v1 or benchmark://cbench-v1)")
    uninstall = actions.add_parser("uninstall", help="remove installed datasets (the manifest stays)")
    uninstall.add_argument("names", nargs="+", metavar="NAME")
    add = actions.add_parser("add", help="register a directory of sources or bitcode as a dataset of yours")
    add.add_argument("name", help="the new dataset's name, e.g. mine-v0 (benchmark://mine-v0)")
    add.add_argument("directory", help="the directory; its files stay where they are")
    add.add_argument("--suffix", help="which files are benchmarks (default: the one kind found)")
    add.add_argument("--flags", default="-w", help="clang flags for sources (default: -w)")
    show = actions.add_parser("show", help="print a benchmark's sources")
    show.add_argument("uri", help="e.g. benchmark://cbench-v1/qsort or chstone-v0/aes")
    show.add_argument("--ir", action="store_true", help="print the LLVM IR the server loads instead")
    inst2vec = actions.add_parser("inst2vec", help="install the inst2vec data (Inst2vecEmbeddingIndices, Inst2vec) "
                                                   "now rather than on first use")
    inst2vec.add_argument("--wheel", help="compiler_gym 0.2.5's wheel, fetched elsewhere (default: "
                                          "$FORKGYM_INST2VEC_WHEEL, the download cache, else pip)")


def run(arguments: argparse.Namespace) -> int:
    return _DATASET_ACTIONS[arguments.action](arguments)


def _size_text(dataset: Any) -> str:
    if dataset.kind == "generator":
        return "unbounded"
    known = dataset.manifest_size()
    return f"{known:,}" if known is not None else f"~{dataset.documented_size:,}"


def _bytes_text(count: int) -> str:
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{count} B"


def _list(arguments: argparse.Namespace) -> int:
    from forkgym.datasets import Datasets

    collection = Datasets()
    rows = list(collection.datasets(with_deprecated=arguments.all))
    if arguments.all:
        rows += sorted(d for d in collection._all().values() if not d.entry.listed)
    if arguments.json:
        print(json.dumps([{
            "name": d.name, "kind": d.kind, "description": d.description, "license": d.license,
            "size": d.manifest_size() if d.kind != "generator" else 0, "documented_size": d.documented_size,
            "installed": d.installed, "disk_bytes": d.site_data_size_in_bytes, "deprecated": d.deprecation_message,
            "version": d.version, "sort_order": d.sort_order, "validatable": d.validatable,
            "references": d.references,
        } for d in rows], indent=2))
        return 0
    table = [("NAME", "SIZE", "INSTALLED", "DISK", "LICENSE")]
    for d in rows:
        installed = "yes" if d.installed else "no"
        used = d.site_data_size_in_bytes if d.kind not in ("generator", "bundled", "cache") else 0
        disk = _bytes_text(used) if used else "-"
        table.append((d.name + (" (deprecated)" if d.deprecated else ""), _size_text(d), installed, disk, d.license))
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    for row in table:
        print("  ".join(cell.ljust(widths[i]) if i < 4 else cell for i, cell in enumerate(row)).rstrip())
    print("\n~N: the documented size; the manifest is fetched on first listing or install. "
          "Install: python -m forkgym datasets install NAME")
    return 0


def _install(arguments: argparse.Namespace) -> int:
    from forkgym.datasets import Datasets

    collection = Datasets()
    for name in arguments.names:
        dataset = collection[name]
        if dataset.installed:
            print(f"{dataset.name}: installed ({dataset.site_data_path})")
            continue
        dataset.install()
        print(f"{dataset.name}: installed {dataset.size:,} benchmarks in {dataset.site_data_path}")
    return 0


def _uninstall(arguments: argparse.Namespace) -> int:
    from forkgym.datasets import Datasets

    collection = Datasets()
    for name in arguments.names:
        dataset = collection[name]
        if dataset.kind in ("generator", "bundled", "cache"):
            print(f"{dataset.name}: nothing to uninstall ({dataset.kind})", file=sys.stderr)
            continue
        dataset.uninstall()
        print(f"{dataset.name}: uninstalled")
    return 0


def _add(arguments: argparse.Namespace) -> int:
    from forkgym.datasets import from_directory

    dataset = from_directory(arguments.name, arguments.directory, suffix=arguments.suffix, flags=arguments.flags)
    print(f"{dataset.name}: {dataset.size:,} benchmarks in {arguments.directory}, e.g. "
          f"{next(iter(dataset.benchmark_uris()))}")
    return 0


def _show(arguments: argparse.Namespace) -> int:
    from forkgym.benchmarks import canonical_uri
    from forkgym.datasets import Benchmark

    uri = canonical_uri(arguments.uri)
    if arguments.ir:
        import forkgym

        with forkgym.make("llvm-v0") as env:
            env.reset(benchmark=uri)
            sys.stdout.write(env.ir)
        return 0
    sources = Benchmark(uri).sources
    if not sources:
        print(f"{uri} has no sources here (bitcode, or a generated program): "
              f"`python -m forkgym datasets show --ir {uri}` prints its IR", file=sys.stderr)
        return 1
    for source in sources:
        if len(sources) > 1:
            print(f"// ==> {source.filename} <==", flush=True)
        sys.stdout.buffer.write(source.contents)
        if not source.contents.endswith(b"\n"):
            sys.stdout.buffer.write(b"\n")
        sys.stdout.flush()
    return 0


def _inst2vec(arguments: argparse.Namespace) -> int:
    from forkgym.datasets import inst2vec

    print(f"inst2vec: installed ({inst2vec.install(arguments.wheel)})")
    return 0


_DATASET_ACTIONS = {None: _list, "list": _list, "install": _install, "uninstall": _uninstall, "add": _add,
                    "show": _show, "inst2vec": _inst2vec}
