"""Dataset objects and the Datasets collection: CompilerGym's datasets API over
the catalogue (:mod:`forkgym.datasets.catalogue`) and the site-data directory.

A catalogue dataset goes through these states, each visible on disk in
``<site>/datasets/<name>/`` (:mod:`forkgym.datasets.paths`):

1. known: its catalogue row (name, metadata, documented size);
2. listed: its manifest is here (fetched on first listing, or written from
   the row's fixed list), so ``size``, ``benchmark_uris()`` and
   ``random_benchmark()`` read it lazily (O(1) random access), without the
   archive;
3. installed: ``install()`` downloads and extracts the archive and its extra
   files, runs the row's layout step, writes ``dataset.ini`` (how the server
   resolves its URIs) and then the ``.installed`` marker
   (:func:`forkgym.datasets.fetch.install`); ``uninstall()`` removes the
   marker first, then everything but the manifest.

The Python side never turns a ``benchmark://`` URI into a file for the server:
:func:`ensure_installed` installs a dataset on first use, then the URI itself
is handed over and the server resolves it. (It does read a benchmark's
sources from disk, to show them.)

Any thread may use a Datasets object; installs of one dataset are serialised
across threads and processes by the dataset's lock.
"""

from __future__ import annotations

import difflib
import importlib
import os
import warnings
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forkgym.datasets import catalogue, fetch, paths
from forkgym.datasets.benchmark import Benchmark, BenchmarkSource, BenchmarkUri
from forkgym.datasets.catalogue import BUNDLED, CACHE, GENERATOR, PREBUILT, SOURCE, Entry, Remote
from forkgym.datasets.manifest import Manifest
from forkgym.errors import BenchmarkNotFound, DatasetError, DownloadFailed

if TYPE_CHECKING:
    from forkgym.run_config import RunConfig

# Every generator seed is below this (CompilerGym's range: 0 ... 2**32 - 2).
GENERATOR_SEEDS = 2**32 - 1
SOURCE_SUFFIXES = (".c", ".cc", ".cpp", ".cxx", ".cl")
_LANGUAGES = {".c": "c", ".cc": "c++", ".cpp": "c++", ".cxx": "c++", ".cl": "opencl", ".bc": "bitcode",
              ".ll": "bitcode"}


def _install_hint(name: str) -> str:
    return (f"install it with `python -m forkgym datasets install {name}`, or reset an env to one of its "
            f"benchmarks from Python (forkgym installs a catalogue dataset on first use)")


def read_ini(path: Path) -> dict[str, str]:
    """``dataset.ini``'s ``key = value`` lines (``#`` comments, blank lines skipped)."""
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, equals, value = line.partition("=")
        if not equals:
            raise DatasetError(f"{path}:{number}: '{line}' is not a 'key = value' line; reinstall the dataset")
        values[key.strip()] = value.strip()
    return values


def _relative_path(uri: BenchmarkUri) -> str:
    """The URI's path inside its dataset (no leading '/'), refused if it climbs out."""
    path = uri.path.lstrip("/")
    parts = path.split("/")
    if not path or any(part in ("", ".", "..") for part in parts) or "\0" in path:
        raise BenchmarkNotFound(f"'{uri}' does not name a benchmark of {uri.dataset_name}: give "
                                f"{uri.dataset_name}/<name> with no empty, '.' or '..' components")
    return path


class Dataset:
    """A dataset: a catalogue row, and what is on disk for it.

    Properties follow CompilerGym: ``name`` (with its scheme), ``description``,
    ``license``, ``references`` (a dict), ``version``, ``deprecated`` (a bool;
    the message is ``deprecation_message``), ``validatable``, ``sort_order``,
    ``size`` (0: unbounded), ``installed``; ``install()``, ``uninstall()``;
    iteration yields its :class:`Benchmark` objects.
    """

    def __init__(self, entry: Entry) -> None:
        self.entry = entry

    # ------------------------------------------------------- metadata --

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def kind(self) -> str:
        return self.entry.kind

    @property
    def protocol(self) -> str:
        return self.entry.scheme

    @property
    def description(self) -> str:
        return self.entry.description

    @property
    def license(self) -> str:
        return self.entry.license

    @property
    def references(self) -> dict[str, str]:
        return dict(self.entry.references)

    @property
    def version(self) -> int:
        return self.entry.version

    @property
    def deprecated(self) -> bool:
        return bool(self.entry.deprecated)

    @property
    def deprecation_message(self) -> str:
        return self.entry.deprecated

    @property
    def validatable(self) -> str:
        return self.entry.validatable

    @property
    def sort_order(self) -> int:
        return self.entry.sort_order

    @property
    def documented_size(self) -> int:
        """The catalogue's count (CompilerGym's, Linux): shown before the manifest is here."""
        return self.entry.size

    @property
    def site_data_path(self) -> Path:
        """``<site>/datasets/<name>``: where this dataset is installed."""
        return paths.dataset_dir(self.entry.bare_name)

    @property
    def site_data_size_in_bytes(self) -> int:
        """Disk use of :attr:`site_data_path` (0 when nothing is there)."""
        return _disk_use(self.site_data_path)

    # --------------------------------------------------------- install --

    @property
    def installed(self) -> bool:
        return True

    def install(self, progress: bool | None = None) -> None:
        """Makes every benchmark of the dataset loadable (nothing to do here)."""

    def uninstall(self) -> None:
        """Removes what :meth:`install` put on disk (nothing here)."""

    # --------------------------------------------------------- listing --

    @property
    def size(self) -> int:
        """How many benchmarks (0: unbounded, a generator)."""
        return self.entry.size

    def manifest_size(self) -> int | None:
        """The size if it is known without fetching anything, else None."""
        return self.size

    def __len__(self) -> int:
        return self.size

    def benchmark_uris(self) -> Iterator[str]:
        raise NotImplementedError

    def benchmarks(self) -> Iterator[Benchmark]:
        for uri in self.benchmark_uris():
            yield Benchmark(uri)

    def __iter__(self) -> Iterator[Benchmark]:
        return self.benchmarks()

    def benchmark(self, uri: str) -> Benchmark:
        """The benchmark ``uri`` of this dataset (``<name>/<path>``, or just ``<path>``)."""
        return Benchmark(self._own_uri(uri))

    def __getitem__(self, uri: str) -> Benchmark:
        return self.benchmark(uri)

    def random_benchmark(self, random_state: Any = None) -> Benchmark:
        """A benchmark drawn uniformly with ``random_state`` (a ``numpy.random.Generator``;
        a fresh one if None)."""
        raise NotImplementedError

    def sources(self, uri: BenchmarkUri) -> list[BenchmarkSource]:
        """The source files of benchmark ``uri`` (none for bitcode or generated programs)."""
        return []

    def _own_uri(self, uri: str) -> BenchmarkUri:
        text = str(uri)
        if "://" not in text and not text.startswith(self.entry.bare_name + "/"):
            text = f"{self.name}/{text.lstrip('/')}"
        parsed = BenchmarkUri(text)
        if parsed.dataset_name != self.name:
            raise BenchmarkNotFound(f"'{uri}' is not a benchmark of {self.name}")
        return parsed

    # ----------------------------------------------------------- order --

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Dataset):
            return self.name == other.name
        if isinstance(other, str):
            return self.name == other or self.entry.bare_name == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.name)

    def __lt__(self, other: Dataset) -> bool:
        return (self.sort_order, self.name) < (other.sort_order, other.name)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    def __str__(self) -> str:
        return self.name


def _rng(random_state: Any) -> Any:
    if random_state is not None:
        return random_state
    import numpy as np

    return np.random.default_rng()


class ManifestDataset(Dataset):
    """A dataset listed by its manifest (``manifest.txt`` + ``manifest.idx``) and
    installed into its directory: the catalogue's prebuilt and source datasets."""

    _manifest: Manifest | None = None

    @property
    def installed(self) -> bool:
        return fetch.is_installed(self.site_data_path)

    def _ini(self) -> dict[str, str]:
        entry = self.entry
        values = {"uri": entry.name, "kind": entry.kind, "root": entry.root, "suffix": entry.suffix,
                  "language": entry.language}
        if entry.flags:
            values["flags"] = entry.flags
        if entry.transform:
            values["transform"] = entry.transform
        if entry.runnable:
            values["runnable"] = "true"
        if entry.runnable_prefix:
            values["runnable_prefix"] = entry.runnable_prefix
        return values

    def _archives(self) -> list[fetch.Archive]:
        entry = self.entry
        archives = []
        if entry.tarball is not None:
            archives.append(fetch.Archive(entry.tarball.urls, entry.tarball.sha256,
                                          strip_prefix=entry.root.removeprefix("contents/")))
        for extra in entry.extras:
            archives.append(fetch.Archive(extra.remote.urls, extra.remote.sha256, into=extra.into,
                                          name=fetch.file_name(extra.remote.urls[0])))
        return archives

    def install(self, progress: bool | None = None) -> None:
        """Downloads, checks and extracts the dataset (once, whoever else asks at
        the same time); a no-op when it is installed."""
        if self.installed:
            return
        entry = self.entry
        if entry.deprecated:
            warnings.warn(f"{entry.name} is deprecated: {entry.deprecated}", DeprecationWarning, stacklevel=2)
        if entry.tarball is None and not entry.installer:
            raise DatasetError(f"{entry.name} has nothing to install from: its catalogue row has neither a "
                               f"tarball nor an installer")

        def finish(directory: Path) -> None:
            if not Manifest.exists(directory):
                self._fetch_manifest_into(directory, locked=True)
            step = _LAYOUT_STEPS.get(entry.layout) if entry.layout else None
            if step is not None:
                step(entry, directory)
            if entry.installer:
                module, _, function = entry.installer.partition(":")
                getattr(importlib.import_module(module), function)(entry, directory)
            root = directory / entry.root
            if not root.is_dir():
                raise DatasetError(f"installing {entry.name}: {root} is missing after extraction; the catalogue "
                                   f"row's strip_prefix does not match the archive")

        try:
            fetch.install(self.site_data_path, self._archives(), ini=self._ini(), finish=finish, progress=progress)
        except DownloadFailed as e:
            missing = [r for r in self.remotes() if not fetch.cached_path(r.sha256).is_file()]
            if len(missing) > 1:
                listed = "; ".join(f"{fetch.file_name(r.urls[0])} (SHA-256 {r.sha256}, from {r.urls[0]})"
                                   for r in missing)
                raise DownloadFailed(f"{e.message}. Installing {entry.name} without a network takes all of these "
                                     f"files, each placed the same way: {listed}", e.outcome) from None
            raise
        self._manifest = None

    def remotes(self) -> list[Remote]:
        """Every file installing this dataset downloads (archive, manifest, extras)."""
        entry = self.entry
        return [r for r in (entry.tarball, entry.manifest, *(x.remote for x in entry.extras)) if r is not None]

    def uninstall(self) -> None:
        """Removes the installed files (the manifest stays, so the dataset still lists)."""
        fetch.uninstall(self.site_data_path)

    # --- listing ---

    def _fetch_manifest_into(self, directory: Path, locked: bool) -> None:
        entry = self.entry
        if entry.manifest is not None:
            source = fetch.download(entry.manifest.urls, entry.manifest.sha256,
                                    name=fetch.file_name(entry.manifest.urls[0]))
            build = lambda: Manifest.build(directory, source)  # noqa: E731
        elif entry.fixed:
            build = lambda: Manifest.write(directory, entry.fixed)  # noqa: E731
        else:
            return
        if locked:
            build()
            return
        with fetch.dataset_lock(directory):
            if not Manifest.exists(directory):
                build()

    def manifest(self) -> Manifest:
        """The manifest, fetched now if it is not here yet (a dataset built on this
        machine, with no manifest to download, is installed instead)."""
        if self._manifest is not None:
            return self._manifest
        directory = self.site_data_path
        if not Manifest.exists(directory):
            if self.entry.manifest is not None or self.entry.fixed:
                self._fetch_manifest_into(directory, locked=False)
            else:
                self.install()
        if not Manifest.exists(directory):
            raise DatasetError(f"{self.name} has no manifest in {directory}: {_install_hint(self.entry.bare_name)}")
        self._manifest = Manifest(directory)
        return self._manifest

    @property
    def size(self) -> int:
        return len(self.manifest())

    def manifest_size(self) -> int | None:
        return len(Manifest(self.site_data_path)) if Manifest.exists(self.site_data_path) else None

    def benchmark_uris(self) -> Iterator[str]:
        prefix = self.name + "/"
        for path in self.manifest():
            yield prefix + path

    def random_benchmark(self, random_state: Any = None) -> Benchmark:
        return Benchmark(f"{self.name}/{self.manifest().random(_rng(random_state))}")

    def benchmark(self, uri: str) -> Benchmark:
        parsed = self._own_uri(uri)
        path = _relative_path(parsed)
        if self.installed:
            root = self._root()
            if not (root / (path + self._suffix())).is_file():
                raise BenchmarkNotFound(f"Benchmark not found: {parsed} ({self.name} has no '{path}'; "
                                        f"see `python -m forkgym datasets show {self.entry.bare_name}`)")
        return Benchmark(parsed)

    # --- files ---

    def _installed_ini(self) -> dict[str, str]:
        directory = self.site_data_path
        if not fetch.is_installed(directory):
            raise BenchmarkNotFound(f"{self.name} is not installed: {_install_hint(self.entry.bare_name)}")
        return read_ini(directory / fetch.INI)

    def _root(self) -> Path:
        return self.site_data_path / self._installed_ini().get("root", self.entry.root)

    def _suffix(self) -> str:
        return self._installed_ini().get("suffix", self.entry.suffix)

    def sources(self, uri: BenchmarkUri) -> list[BenchmarkSource]:
        ini = self._installed_ini()
        if ini.get("kind") != SOURCE:
            return []
        path = _relative_path(uri)
        root = self.site_data_path / ini.get("root", self.entry.root)
        source = root / (path + ini.get("suffix", self.entry.suffix))
        if self.entry.layout:
            reader = _LAYOUT_SOURCES.get(self.entry.layout)
            if reader is not None:
                return reader(root, path)
        try:
            return [BenchmarkSource(source.name, source.read_bytes())]
        except FileNotFoundError:
            raise BenchmarkNotFound(f"Benchmark not found: {uri} (no {source})") from None


class UserDataset(ManifestDataset):
    """A directory of yours registered as ``benchmark://<name>`` (:func:`from_directory`):
    its ``dataset.ini`` names the directory (``root``, absolute); its sources
    or bitcode stay where they are."""

    @classmethod
    def from_ini(cls, directory: Path) -> UserDataset:
        ini = read_ini(directory / fetch.INI)
        name = ini.get("uri") or f"benchmark://{directory.name}"
        root = ini.get("root", "")
        entry = Entry(name, ini.get("kind", PREBUILT), f"Your dataset: {root}", "Yours", 0,
                      strip_prefix=None, suffix=ini.get("suffix", ".bc"), language=ini.get("language", "bitcode"),
                      flags=ini.get("flags", ""), transform=ini.get("transform", ""),
                      runnable=ini.get("runnable") == "true", sort_order=0)
        dataset = cls(entry)
        dataset._user_root = root
        return dataset

    _user_root = ""

    def install(self, progress: bool | None = None) -> None:
        if not self.installed:
            raise DatasetError(f"{self.name} is a dataset of yours whose registration is incomplete: register it "
                               f"again with forkgym.datasets.from_directory('{self.entry.bare_name}', <directory>)")

    def uninstall(self) -> None:
        """Forgets the registration; the directory it names is left as it is."""
        directory = self.site_data_path
        fetch.uninstall(directory, keep=())
        with fetch.dataset_lock(directory):
            if directory.is_dir() and not any(directory.iterdir()):
                directory.rmdir()

    @property
    def size(self) -> int:
        return len(self.manifest())

    def manifest(self) -> Manifest:
        if not Manifest.exists(self.site_data_path):
            raise DatasetError(f"{self.name} has no manifest: register it again with "
                               f"forkgym.datasets.from_directory('{self.entry.bare_name}', <directory>)")
        return super().manifest()


class BundledDataset(Dataset):
    """``benchmark://forkgym-v0``: the programs shipped inside the package."""

    @staticmethod
    def directory() -> Path:
        return Path(__file__).resolve().parents[1] / "benchmarks"

    def _files(self) -> list[Path]:
        directory = self.directory()
        if not directory.is_dir():
            return []
        return sorted(p for p in directory.iterdir() if p.suffix in SOURCE_SUFFIXES and p.is_file())

    @property
    def size(self) -> int:
        return len(self._files())

    def benchmark_uris(self) -> Iterator[str]:
        for path in self._files():
            yield f"{self.name}/{path.stem}"

    def random_benchmark(self, random_state: Any = None) -> Benchmark:
        files = self._files()
        if not files:
            raise BenchmarkNotFound(f"{self.name}: no bundled programs in {self.directory()} (reinstall forkgym)")
        return Benchmark(f"{self.name}/{files[int(_rng(random_state).integers(len(files)))].stem}")

    def sources(self, uri: BenchmarkUri) -> list[BenchmarkSource]:
        name = _relative_path(uri)
        for path in self._files():
            if path.stem == name:
                return [BenchmarkSource(path.name, path.read_bytes())]
        known = ", ".join(self.benchmark_uris())
        raise BenchmarkNotFound(f"no benchmark '{name}' in {self.entry.bare_name}; it has {known}")


class CacheDataset(Dataset):
    """``benchmark://user-v0``: what make_benchmark() captured, by content digest."""

    def _digests(self) -> list[str]:
        from forkgym.benchmarks import IR_SUFFIXES, benchmark_cache_dir

        directory = benchmark_cache_dir()
        return sorted({p.stem for p in directory.iterdir()
                       if p.suffix in IR_SUFFIXES and not p.name.startswith(".") and p.is_file()})

    @property
    def size(self) -> int:
        return len(self._digests())

    def benchmark_uris(self) -> Iterator[str]:
        for digest in self._digests():
            yield f"{self.name}/{digest}"

    def random_benchmark(self, random_state: Any = None) -> Benchmark:
        digests = self._digests()
        if not digests:
            raise BenchmarkNotFound(f"{self.name} is empty: make_benchmark() has captured nothing for this user")
        return Benchmark(f"{self.name}/{digests[int(_rng(random_state).integers(len(digests)))]}")


class GeneratorDataset(Dataset):
    """``generator://<name>/<seed>``: programs the server generates on demand."""

    @property
    def size(self) -> int:
        return 0

    def benchmark_uris(self) -> Iterator[str]:
        for seed in range(GENERATOR_SEEDS):
            yield f"{self.name}/{seed}"

    def random_benchmark(self, random_state: Any = None) -> Benchmark:
        return Benchmark(f"{self.name}/{int(_rng(random_state).integers(GENERATOR_SEEDS))}")

    def benchmark(self, uri: str) -> Benchmark:
        parsed = self._own_uri(uri)
        seed = parsed.path.lstrip("/")
        if not seed.isdigit() or int(seed) >= GENERATOR_SEEDS:
            raise BenchmarkNotFound(f"'{uri}': a {self.name} benchmark is {self.name}/<seed>, "
                                    f"a seed from 0 to {GENERATOR_SEEDS - 1}")
        return Benchmark(parsed)


_CLASSES: dict[str, type[Dataset]] = {PREBUILT: ManifestDataset, SOURCE: ManifestDataset, GENERATOR: GeneratorDataset,
                                      BUNDLED: BundledDataset, CACHE: CacheDataset}


def dataset_of(entry: Entry) -> Dataset:
    """The Dataset object of a catalogue row."""
    return _CLASSES[entry.kind](entry)


# ------------------------------------------------------ layout steps --
# Named steps a catalogue row's `layout` runs after extraction, and how the
# same layout's sources are read back.


def _chstone_layout(entry: Entry, directory: Path) -> None:
    """CHStone keeps <name>/<main>.c (main not always <name>.c): give each program
    a <root>/<name>.c that includes it, so <root>/<name>.c exists and the module
    is cached as <root>/<name>.bc, where CompilerGym kept it."""
    root = directory / entry.root
    for name in catalogue.CHSTONE_PROGRAMS:
        main = f"{name}/{catalogue.CHSTONE_MAIN_FILES.get(name, name + '.c')}"
        if not (root / main).is_file():
            raise DatasetError(f"installing {entry.name}: the archive has no {main} under {entry.root}; "
                               f"the catalogue's CHStone layout does not match it")
        fetch.atomic_write(root / f"{name}.c", f'/* {entry.name}/{name}: forkgym\'s entry point */\n'
                                                f'#include "{main}"\n')


def _chstone_sources(root: Path, name: str) -> list[BenchmarkSource]:
    program = root / name
    if name not in catalogue.CHSTONE_PROGRAMS or not program.is_dir():
        raise BenchmarkNotFound(f"Benchmark not found: no CHStone program '{name}'; there are "
                                f"{', '.join(catalogue.CHSTONE_PROGRAMS)}")
    return [BenchmarkSource(f"{name}/{p.name}", p.read_bytes())
            for p in sorted(program.iterdir()) if p.suffix in (".c", ".h") and p.is_file()]


_LAYOUT_STEPS = {"chstone": _chstone_layout}
_LAYOUT_SOURCES = {"chstone": _chstone_sources}


# -------------------------------------------------------- collection --


def _user_datasets() -> dict[str, Dataset]:
    """Datasets in the site-data directory that no catalogue row names (yours)."""
    found: dict[str, Dataset] = {}
    directory = paths.datasets_dir()
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return found
    for item in entries:
        if item.name.startswith(".") or not item.is_dir(follow_symlinks=False):
            continue
        if catalogue.find(f"benchmark://{item.name}") is not None or not (Path(item.path) / fetch.INI).is_file():
            continue
        try:
            dataset = UserDataset.from_ini(Path(item.path))
        except (OSError, DatasetError):
            continue  # unreadable: `datasets` lists it as broken, lookups name it
        found[dataset.name] = dataset
    return found


class Datasets:
    """Every dataset (CompilerGym's ``env.datasets``): the catalogue and yours.

    Iterates in ``(sort_order, name)`` order without the deprecated ones, which
    ``[name]`` still finds. ``[name]`` takes the name with or without its
    scheme (``"cbench-v1"``), or any URI of the dataset. ``del`` hides a dataset
    from this collection (its files stay). Listing reads manifests lazily;
    nothing here installs a dataset except ``Dataset.install()`` and resetting
    an env to one of its benchmarks.
    """

    def __init__(self, datasets: Iterable[Dataset] | None = None) -> None:
        self._cache: dict[str, Dataset] = {}
        self._added: dict[str, Dataset] = {}
        self._removed: set[str] = set()
        self._catalogue = datasets is None
        for dataset in datasets or ():
            self._added[dataset.name] = dataset

    def _all(self) -> dict[str, Dataset]:
        everything: dict[str, Dataset] = {}
        if self._catalogue:
            for entry in catalogue.entries():
                dataset = self._cache.get(entry.name)
                if dataset is None or dataset.entry is not entry:
                    dataset = self._cache[entry.name] = dataset_of(entry)
                everything[entry.name] = dataset
            for name, dataset in _user_datasets().items():  # read afresh: a registration may change
                everything.setdefault(name, dataset)
        everything.update(self._added)
        for name in self._removed:
            everything.pop(name, None)
        return everything

    @staticmethod
    def _key(name: str | Dataset) -> str:
        if isinstance(name, Dataset):
            return name.name
        return BenchmarkUri(str(name)).dataset_name

    def dataset(self, name: str | Dataset) -> Dataset:
        """The dataset ``name`` (``benchmark://cbench-v1``, ``cbench-v1``, or a URI of it).
        Raises BenchmarkNotFound (a LookupError) naming the closest names."""
        key = self._key(name)
        dataset = self._find(key)
        if dataset is None and isinstance(name, str) and "://" not in name:
            # A bare name of another scheme's dataset ("csmith-v0").
            bare = key.partition("://")[2]
            for scheme in ("generator",):
                dataset = self._find(f"{scheme}://{bare}")
                if dataset is not None:
                    break
        if dataset is None:
            raise BenchmarkNotFound(unknown_dataset_message(str(name), key, self._all()))
        return dataset

    def _find(self, key: str) -> Dataset | None:
        """One dataset by key, without listing the site-data directory."""
        if key in self._removed:
            return None
        if key in self._added:
            return self._added[key]
        if not self._catalogue:
            return None
        entry = catalogue.find(key)
        if entry is not None:
            dataset = self._cache.get(key)
            if dataset is None or dataset.entry is not entry:
                dataset = self._cache[key] = dataset_of(entry)
            return dataset
        scheme, _, bare = key.partition("://")
        if scheme != "benchmark" or not bare or bare.startswith(".") or "/" in bare:
            return None
        directory = paths.dataset_dir(bare)
        if not (directory / fetch.INI).is_file():
            return None
        try:
            return UserDataset.from_ini(directory)
        except (OSError, DatasetError) as e:
            raise BenchmarkNotFound(f"{key}: its registration in {directory} cannot be read ({e}); register "
                                    f"it again with forkgym.datasets.from_directory()") from None

    def __getitem__(self, name: str | Dataset) -> Dataset:
        return self.dataset(name)

    def __setitem__(self, name: str, dataset: Dataset) -> None:
        self.add(dataset)

    def add(self, dataset: Dataset) -> None:
        """Adds (or replaces) a dataset of this collection; visible unless deprecated."""
        self._removed.discard(dataset.name)
        self._added[dataset.name] = dataset

    def __delitem__(self, name: str | Dataset) -> None:
        key = self._key(name)
        self.dataset(key)  # raises if unknown
        self._removed.add(key)
        self._added.pop(key, None)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, (str, Dataset)):
            return False
        try:
            self.dataset(name)
        except (LookupError, ValueError):
            return False
        return True

    def datasets(self, with_deprecated: bool = False) -> Iterator[Dataset]:
        """The datasets in ``(sort_order, name)`` order (deprecated ones only if asked)."""
        visible = [d for d in self._all().values()
                   if (with_deprecated or not d.deprecated) and d.entry.listed]
        return iter(sorted(visible))

    def __iter__(self) -> Iterator[Dataset]:
        return self.datasets()

    def __len__(self) -> int:
        return sum(1 for _ in self.datasets())

    @property
    def size(self) -> int:
        """How many datasets are listed."""
        return len(self)

    def benchmark_uris(self, with_deprecated: bool = False) -> Iterator[str]:
        """Every benchmark URI, round-robin over the datasets in order: the first of
        each, then the second of each...; a dataset drops out when exhausted.
        Infinite while a generator is listed."""
        iterators = [d.benchmark_uris() for d in self.datasets(with_deprecated)]
        while iterators:
            for iterator in list(iterators):
                try:
                    yield next(iterator)
                except StopIteration:
                    iterators.remove(iterator)

    def benchmarks(self, with_deprecated: bool = False) -> Iterator[Benchmark]:
        for uri in self.benchmark_uris(with_deprecated):
            yield Benchmark(uri)

    def benchmark(self, uri: str) -> Benchmark:
        """The benchmark ``uri`` (its dataset must exist; ``file://`` URIs pass through)."""
        parsed = BenchmarkUri(str(uri))
        if parsed.scheme == "file":
            return Benchmark(parsed)
        return self.dataset(parsed.dataset_name).benchmark(str(parsed))

    def benchmark_from_parsed_uri(self, uri: BenchmarkUri) -> Benchmark:
        return self.benchmark(str(uri))

    def random_benchmark(self, random_state: Any = None, weighted: bool = False,
                         weights: Mapping[str, float] | None = None) -> Benchmark:
        """A random benchmark: a listed dataset drawn uniformly, or with ``weighted``
        (implied by ``weights``) with probability proportional to
        ``weights.get(name, size)`` (so unbounded generators, size 0, only with a
        weight given), then a benchmark of it. The candidates are in a fixed
        order, so the same generator state gives the same benchmark in any process."""
        rng = _rng(random_state)
        candidates = list(self.datasets())
        if not candidates:
            raise BenchmarkNotFound("there are no datasets to draw from")
        if weighted or weights:
            given = dict(weights or {})

            def weight(d: Dataset) -> float:
                for key in (d.name, d.entry.bare_name):
                    if key in given:
                        return float(given[key])
                return float(d.size)

            scored = [(d, w) for d in candidates if (w := weight(d)) > 0]
            if not scored:
                raise BenchmarkNotFound("random_benchmark: every dataset has weight 0 (an unbounded generator "
                                        "counts 0 unless weights= gives it one)")
            total = sum(w for _, w in scored)
            dataset = scored[int(rng.choice(len(scored), p=[w / total for _, w in scored]))][0]
        else:
            dataset = candidates[int(rng.integers(len(candidates)))]
        return dataset.random_benchmark(rng)

    def __repr__(self) -> str:
        return f"Datasets({[d.name for d in self.datasets()]})"


def unknown_dataset_message(asked: str, key: str, known: Mapping[str, Dataset]) -> str:
    visible = sorted(d for d in known.values() if not d.deprecated and d.entry.listed)
    names = [d.name for d in visible]
    close = difflib.get_close_matches(key, names, n=3, cutoff=0.6)
    close += [n for n in known if n.lower() == key.lower() and n not in close]
    listed = ", ".join(d.entry.bare_name for d in visible)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    return (f"unknown dataset '{key}' (from '{asked}'): {hint}the datasets are {listed}; "
            f"`python -m forkgym datasets` lists them, and forkgym.datasets.from_directory() adds yours")


# ------------------------------------------------------ module helpers --

_default: Datasets | None = None


def default_datasets() -> Datasets:
    """A process-wide Datasets (what reset-time installs and the command line use)."""
    global _default
    if _default is None:
        _default = Datasets()
    return _default


def ensure_installed(uri: str, progress: bool | None = None) -> None:
    """Before a ``benchmark://`` URI goes to the server: its dataset must exist,
    and a catalogue dataset is installed now if it is not (the download is
    shown on a terminal). Raises BenchmarkNotFound for an unknown dataset (with
    the closest names) and DatasetError subclasses for a failed install."""
    parsed = BenchmarkUri(uri)
    dataset = default_datasets().dataset(parsed.dataset_name)
    if dataset.installed:
        return
    try:
        dataset.install(progress=progress)
    except DatasetError as e:
        raise type(e)(f"{parsed} needs {dataset.name}, which is not installed, and installing it failed: "
                      f"{e.message}", e.outcome) from None


def dataset_run_config(uri: str) -> RunConfig | None:
    """The run configuration a catalogue dataset gives benchmark ``uri`` from its
    installed data (cbench-v1's programs on their runtime data, ``?dataset=N``
    picking the input), or None. Datasets whose programs check themselves
    (gcc-c-torture-v0) get theirs from the server instead."""
    parsed = BenchmarkUri(uri)
    if parsed.scheme != "benchmark":
        return None
    entry = catalogue.find(parsed.dataset_name)
    if entry is None or entry.run_configs != "cbench":
        return None
    from forkgym.datasets import cbench_runs

    index = cbench_runs.dataset_index(parsed.params, str(parsed))
    return cbench_runs.run_config(default_datasets().dataset(parsed.dataset_name).site_data_path,
                                  parsed.path.lstrip("/"), index, str(parsed))


def sources_of(uri: str) -> list[BenchmarkSource]:
    """The source files benchmark ``uri`` is made from, read from disk (see
    :attr:`Benchmark.sources`)."""
    parsed = BenchmarkUri(uri)
    if parsed.scheme == "file":
        return _file_sources(Path(parsed.path))
    if parsed.scheme != "benchmark":
        return []
    return default_datasets().dataset(parsed.dataset_name).sources(parsed)


def _file_sources(path: Path) -> list[BenchmarkSource]:
    if path.is_dir():
        return [BenchmarkSource(p.name, p.read_bytes()) for p in sorted(path.iterdir())
                if p.suffix in SOURCE_SUFFIXES + (".h", ".hpp") and p.is_file()]
    if path.suffix in SOURCE_SUFFIXES:
        try:
            return [BenchmarkSource(path.name, path.read_bytes())]
        except FileNotFoundError:
            raise BenchmarkNotFound(f"{path}: no such file") from None
    return []


def _disk_use(path: Path) -> int:
    total = 0
    stack = [str(path)]
    while stack:
        try:
            entries = os.scandir(stack.pop())
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        with entries:
            for item in entries:
                try:
                    if item.is_dir(follow_symlinks=False):
                        stack.append(item.path)
                    else:
                        total += item.stat(follow_symlinks=False).st_blocks * 512
                except OSError:
                    continue
    return total


# ------------------------------------------------------- user datasets --


def from_directory(name: str, directory: str | os.PathLike[str], *, suffix: str | None = None,
                   flags: str = "-w") -> Dataset:
    """Registers ``directory`` (sources or bitcode, in place) as ``benchmark://<name>``.

    Every file with the dataset's suffix under ``directory`` (subdirectories
    too; hidden ones skipped) is a benchmark, ``benchmark://<name>/<path without
    suffix>``. The suffix is the one kind of program file found (``.c``,
    ``.cc``/``.cpp``/``.cxx``, ``.cl``, ``.bc``, ``.ll``), or ``suffix``; sources are
    compiled on demand by the server with ``flags`` after the base command, and
    the module is cached beside each source (``a.c`` -> ``a.c.bc``). Registering a
    name again replaces its registration. Returns the dataset; writes
    ``<site>/datasets/<name>/`` (dataset.ini with the absolute directory, the
    manifest, the marker) and nothing in ``directory``.
    """
    bare = paths.dataset_name(name)
    if "://" in name and not name.startswith("benchmark://"):
        raise ValueError(f"'{name}': a dataset of yours is a benchmark:// dataset; give '{bare}'")
    full = f"benchmark://{bare}"
    row = catalogue.find(full)
    if row is not None:
        raise ValueError(f"'{bare}' is a catalogue dataset ({row.description}); choose another name for yours")
    root = Path(directory).expanduser().resolve()
    if not root.is_dir():
        raise BenchmarkNotFound(f"from_directory('{bare}', '{directory}'): {root} is not a directory")
    target = paths.dataset_dir(bare)
    # <source>.bc beside a source is the server's compiled module of it
    # (passes/module_cache.h), not a program of its own.
    files = [p for p in _program_files(root) if not (p.suffix == ".bc" and p.with_suffix("").is_file()
                                                     and p.with_suffix("").suffix in SOURCE_SUFFIXES)]
    found = sorted({p.suffix for p in files})
    if suffix is None:
        if len(found) != 1:
            raise ValueError(
                f"from_directory('{bare}', '{root}'): " + (
                    f"found no program files ({', '.join(_LANGUAGES)})" if not found else
                    f"found programs of several kinds ({', '.join(found)}); pass suffix= to choose one, or "
                    f"register each kind as its own dataset"))
        suffix = found[0]
    if suffix not in _LANGUAGES:
        raise ValueError(f"suffix '{suffix}' is not one forkgym loads; use one of {', '.join(_LANGUAGES)}")
    language = _LANGUAGES[suffix]
    kind = PREBUILT if language == "bitcode" else SOURCE
    members = sorted(str(p.relative_to(root))[: -len(suffix)] for p in files if p.suffix == suffix)
    if not members:
        raise ValueError(f"from_directory('{bare}', '{root}'): no '{suffix}' files in it")
    if kind == SOURCE:
        # The server keeps a source's compiled module beside it as
        # <source>.bc, but never over a file it did not write: a file of
        # yours by that name stays, and that source is compiled anew by each
        # new server instead.
        kept = [root / (m + suffix + MODULE_CACHE_SUFFIX) for m in members]
        kept = [p for p in kept if p.exists() and not _server_module(p)]
        if kept:
            warnings.warn(f"from_directory('{bare}', '{root}'): {kept[0]} (and {len(kept) - 1} more) sit where the "
                          f"server would cache the compiled module of a source; they are left alone, and those "
                          f"sources are compiled again by each new server", stacklevel=2)
    for member in members:
        if "\n" in member:
            raise ValueError(f"from_directory('{bare}', '{root}'): file name {member!r} holds a newline")
    ini = {"uri": full, "kind": kind, "root": str(root), "suffix": suffix, "language": language}
    if kind == SOURCE and flags:
        ini["flags"] = flags
    # Not under one lock: both take the dataset's lock themselves (a second
    # file lock on it from this process would wait for the first forever).
    fetch.uninstall(target, keep=())
    fetch.install(target, [], ini=ini, finish=lambda d: Manifest.write(d, members))
    return UserDataset.from_ini(target)


# passes/module_cache.h: the module compiled from <source> is <source>.bc,
# carrying its key in this extended attribute.
MODULE_CACHE_SUFFIX = ".bc"
_MODULE_CACHE_ATTRIBUTE = "user.forkgym.key"


def _server_module(path: Path) -> bool:
    """Whether ``path`` is a module the server cached (it carries the server's key)."""
    try:
        os.getxattr(path, _MODULE_CACHE_ATTRIBUTE)
        return True
    except OSError:
        return False


def _program_files(root: Path) -> list[Path]:
    files = []
    for directory, subdirectories, names in os.walk(root):
        subdirectories[:] = sorted(s for s in subdirectories if not s.startswith("."))
        for file_name in names:
            path = Path(directory) / file_name
            if not file_name.startswith(".") and path.suffix in _LANGUAGES and path.is_file():
                files.append(path)
    return files
