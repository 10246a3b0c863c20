"""The inst2vec vocabulary and embedding table: data, obtained on first use.

``Inst2vecEmbeddingIndices`` and ``Inst2vec`` are the worker's
``Inst2vecPreprocessedText`` statements looked up here, in the client (numpy):
the vocabulary maps a statement to its row of the 200-dimensional embedding
table, and a statement it does not hold to the ``!UNK`` row.

The data is the inst2vec authors' (Ben-Nun et al., NeurIPS 2018), as
CompilerGym 0.2.5 published it in its wheel on the Python package index
(``compiler_gym/third_party/inst2vec/dictionary.pickle`` and
``embeddings.pickle``). One install, in order (:func:`install`), under the
lock of ``<site>/inst2vec`` (``forkgym.datasets.fetch.dataset_lock``):

1. The wheel: the file ``$FORKGYM_INST2VEC_WHEEL`` names (placed by the
   user), else ``<cache>/downloads/<sha256>`` (an earlier fetch, or placed by
   hand), else fetched with ``python -m pip download compiler_gym==0.2.5
   --no-deps --only-binary=:all:`` as pip is configured on the machine (its
   index, proxy, certificates). Its SHA-256 must be :data:`WHEEL_SHA256`
   before anything in it is read; a fetched wheel is then kept in the cache.
2. The two pickles are read from it with an unpickler that builds only a
   ``dict`` of ``str`` to ``int`` and a numpy array (nothing else can run).
3. They are written once as plain files: ``vocabulary.json`` (the
   statements, in index order) and ``embeddings.npy`` (float32[N, 200]), each
   atomically, then the ``.installed`` marker holding both files' SHA-256,
   which every load checks.

``$FORKGYM_INST2VEC_DATA`` may name a directory holding a converted pair of
your own (``vocabulary.json`` and ``embeddings.npy``), used as it is.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import threading
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from forkgym.datasets import fetch, paths
from forkgym.errors import ChecksumMismatch, DatasetError, DownloadFailed

REQUIREMENT = "compiler_gym==0.2.5"
WHEEL_NAME = "compiler_gym-0.2.5-py3-none-manylinux2014_x86_64.whl"
WHEEL_SHA256 = "49a335c925ccc493c2e1b801867986982f0c7dd500041775fa6b3247b1d54ccf"
# Where in the wheel (under its .data/purelib/ directory) the two pickles are.
_MEMBER_DIRECTORY = "compiler_gym/third_party/inst2vec/"
_VOCABULARY_MEMBER = "dictionary.pickle"
_EMBEDDINGS_MEMBER = "embeddings.pickle"
# A bound on what is read out of a wheel (the real pickles are 3.9 and 6.9 MB).
_MAX_MEMBER_BYTES = 64 << 20

WHEEL_VARIABLE = "FORKGYM_INST2VEC_WHEEL"
DATA_VARIABLE = "FORKGYM_INST2VEC_DATA"
UNKNOWN = "!UNK"
DIMENSIONS = 200
VOCABULARY_FILE = "vocabulary.json"
EMBEDDINGS_FILE = "embeddings.npy"


def data_dir() -> Path:
    """``<site>/inst2vec``: where the converted vocabulary and table are kept."""
    return paths.site_data_dir() / "inst2vec"


def _placement_help(sha256: str) -> str:
    return (f"To install it without pip reaching the package index, run `python -m pip download {REQUIREMENT} "
            f"--no-deps --only-binary=:all: -d DIR` on a machine that can, check that the wheel's SHA-256 is "
            f"{sha256}, and either set {WHEEL_VARIABLE} to its path or copy it to {fetch.cached_path(sha256)} "
            f"(exactly that name); or set {DATA_VARIABLE} to a directory holding {VOCABULARY_FILE} and "
            f"{EMBEDDINGS_FILE} converted elsewhere")


# ---------------------------------------------------------------- the wheel --


def _checked_wheel(path: Path, sha256: str, where: str) -> Path:
    if not path.is_file():
        raise DatasetError(f"the inst2vec wheel {path} ({where}) is not a file. {_placement_help(sha256)}")
    actual = fetch._sha256_of(path)
    if actual != sha256:
        raise ChecksumMismatch(f"the inst2vec wheel {path} ({where}) has SHA-256 {actual}, not the expected "
                               f"{sha256}: nothing of it was read. {_placement_help(sha256)}")
    return path


def _pip_download(sha256: str) -> Path:
    """Fetches the wheel with pip (as configured on this machine) into the
    download cache, checked; DownloadFailed saying what pip said otherwise."""
    target = fetch.cached_path(sha256)
    paths.make_dir(target.parent)
    with tempfile.TemporaryDirectory(prefix="forkgym-inst2vec-") as scratch:
        command = [sys.executable, "-m", "pip", "download", REQUIREMENT, "--no-deps", "--only-binary=:all:",
                   "--disable-pip-version-check", "--no-input", "-d", scratch]
        try:
            ran = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=900)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise DownloadFailed(f"could not fetch the inst2vec data ({REQUIREMENT}'s wheel) with pip: {e}. "
                                 f"{_placement_help(sha256)}") from None
        wheels = sorted(Path(scratch).glob("*.whl"))
        if ran.returncode != 0 or len(wheels) != 1:
            said = " ".join((ran.stderr or ran.stdout).strip().splitlines()[-3:]) or f"exit status {ran.returncode}"
            raise DownloadFailed(f"could not fetch the inst2vec data: `{' '.join(command[1:-2])}` failed ({said}). "
                                 f"{_placement_help(sha256)}")
        _checked_wheel(wheels[0], sha256, "fetched by pip")
        # Into the cache beside its final name, then renamed: whole or absent.
        with fetch._replacing(target, prefix=f"{sha256}.part-") as fd, os.fdopen(fd, "wb") as out, \
                open(wheels[0], "rb") as source:
            shutil.copyfileobj(source, out)
            out.flush()
            os.fsync(out.fileno())
    return target


def _wheel(wheel: str | os.PathLike[str] | None, sha256: str) -> Path:
    """The checked wheel: the one given, ``$FORKGYM_INST2VEC_WHEEL``, the cached one, or pip's."""
    given = wheel if wheel is not None else os.environ.get(WHEEL_VARIABLE) or None
    if given is not None:
        return _checked_wheel(Path(given), sha256,
                              "given to install()" if wheel is not None else f"named by ${WHEEL_VARIABLE}")
    cached = fetch.cached_path(sha256)
    if cached.is_file():
        if fetch._sha256_of(cached) == sha256:
            return cached
        cached.unlink()  # damaged, or a wrong file placed by hand: fetched again
    return _pip_download(sha256)


# ------------------------------------------------------------ the pickles --

# The one callable the embeddings pickle needs, whatever numpy calls its module
# (numpy.core before 2.0, numpy._core after): the function ndarray pickles with.
_RECONSTRUCT = np.zeros(1).__reduce__()[0]
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


class _DataUnpickler(pickle.Unpickler):
    """Builds builtin containers and numpy arrays only: any other global a
    pickle names (a function to call, a class to build) is refused."""

    def find_class(self, module: str, name: str) -> object:
        allowed = _ALLOWED_GLOBALS.get((module, name))
        if allowed is None:
            raise pickle.UnpicklingError(f"refused to load {module}.{name}: the inst2vec data holds only a dict "
                                         f"and a numpy array")
        return allowed


def _unpickle(data: bytes, what: str, wheel: Path) -> object:
    try:
        return _DataUnpickler(io.BytesIO(data)).load()
    except Exception as e:  # noqa: BLE001 - any failure of a damaged pickle is one error
        raise DatasetError(f"{what} in {wheel} cannot be read: {e}. The wheel passed its checksum, so its "
                           f"format is not the one expected; report it") from None


def _read_member(archive: zipfile.ZipFile, name: str, wheel: Path) -> bytes:
    found = [info for info in archive.infolist() if info.filename.endswith(_MEMBER_DIRECTORY + name)]
    if len(found) != 1:
        raise DatasetError(f"{wheel} holds {len(found)} files named {_MEMBER_DIRECTORY}{name}, not one: it is not "
                           f"the wheel the inst2vec data comes from")
    if found[0].file_size > _MAX_MEMBER_BYTES:
        raise DatasetError(f"{found[0].filename} in {wheel} is {found[0].file_size} bytes, more than the "
                           f"{_MAX_MEMBER_BYTES} an inst2vec table can be")
    return archive.read(found[0])


def convert(vocabulary: object, embeddings: object, source: str) -> tuple[list[str], np.ndarray]:
    """Checks a vocabulary (statement -> index, indices 0..N-1 each once, with
    ``!UNK``) and its table (N rows of 200 numbers) and returns the statements
    in index order and the table as float32."""
    if not isinstance(vocabulary, dict) or not all(
            isinstance(k, str) and type(v) is int for k, v in vocabulary.items()):
        raise DatasetError(f"the inst2vec vocabulary from {source} is not a dict of statements to indices")
    statements: list[str | None] = [None] * len(vocabulary)
    for statement, index in vocabulary.items():
        if not 0 <= index < len(statements) or statements[index] is not None:
            raise DatasetError(f"the inst2vec vocabulary from {source} does not number its {len(statements)} "
                               f"statements 0..{len(statements) - 1} once each (index {index})")
        statements[index] = statement
    if UNKNOWN not in vocabulary:
        raise DatasetError(f"the inst2vec vocabulary from {source} has no {UNKNOWN} statement")
    if not isinstance(embeddings, np.ndarray) or embeddings.ndim != 2 or embeddings.shape[1] != DIMENSIONS \
            or embeddings.shape[0] != len(statements) or not np.issubdtype(embeddings.dtype, np.floating):
        shape = getattr(embeddings, "shape", type(embeddings).__name__)
        raise DatasetError(f"the inst2vec embeddings from {source} are {shape}, not float[{len(statements)}, "
                           f"{DIMENSIONS}] (one row per statement of the vocabulary)")
    return [s for s in statements if s is not None], np.ascontiguousarray(embeddings, dtype=np.float32)


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def install(wheel: str | os.PathLike[str] | None = None, *, sha256: str = WHEEL_SHA256,
            directory: str | os.PathLike[str] | None = None) -> Path:
    """Installs the vocabulary and table into ``directory`` (default
    :func:`data_dir`) unless they are there, and returns the directory. See
    the module's steps; ``wheel`` is a wheel file to install from (checked
    against ``sha256``, as every wheel is). Several processes installing at
    once convert once; the others wait and find it installed."""
    target = Path(directory) if directory is not None else data_dir()
    if fetch.is_installed(target):
        return target
    with fetch.dataset_lock(target):
        if fetch.is_installed(target):
            return target
        paths.make_dir(target)
        fetch.remove_leftovers(target)
        source = _wheel(wheel, fetch._checked_sha256(sha256))
        try:
            with zipfile.ZipFile(source) as archive:
                vocabulary_pickle = _read_member(archive, _VOCABULARY_MEMBER, source)
                embeddings_pickle = _read_member(archive, _EMBEDDINGS_MEMBER, source)
        except (zipfile.BadZipFile, OSError) as e:
            raise DatasetError(f"{source} cannot be read as a wheel (a zip file): {e}") from None
        statements, table = convert(_unpickle(vocabulary_pickle, _VOCABULARY_MEMBER, source),
                                    _unpickle(embeddings_pickle, _EMBEDDINGS_MEMBER, source), str(source))
        vocabulary_json = json.dumps(statements, ensure_ascii=True).encode()
        embeddings_npy = _npy_bytes(table)
        fetch.atomic_write(target / VOCABULARY_FILE, vocabulary_json)
        fetch.atomic_write(target / EMBEDDINGS_FILE, embeddings_npy)
        fetch.atomic_write(target / fetch.MARKER, f"{VOCABULARY_FILE} {_sha256(vocabulary_json)}\n"
                                                  f"{EMBEDDINGS_FILE} {_sha256(embeddings_npy)}\n"
                                                  f"source {source.name} {sha256}\n")
    return target


# ------------------------------------------------------------- the lookup --


@dataclasses.dataclass(frozen=True)
class Vocabulary:
    """The statements (index order), their indices, and the float32[N, 200] table."""

    statements: tuple[str, ...]
    index: dict[str, int]
    embeddings: np.ndarray
    unknown: int

    def encode(self, statements: Iterable[str]) -> list[int]:
        """Each statement's index; ``!UNK``'s for a statement the vocabulary lacks."""
        get, unknown = self.index.get, self.unknown
        return [get(s, unknown) for s in statements]

    def embed(self, indices: Sequence[int]) -> np.ndarray:
        """The rows of ``indices``: float32[len(indices), 200] (a copy)."""
        return self.embeddings[np.asarray(indices, dtype=np.intp).reshape(-1)]


def _load(directory: Path, checked: bool) -> Vocabulary:
    """Reads a converted pair; ``checked``: against the SHA-256 its marker holds."""
    remedy = (f"remove {directory} and ask again (it is converted anew from the wheel)" if checked
              else f"fix the files ${DATA_VARIABLE} points to, or unset it")
    try:
        vocabulary_json = (directory / VOCABULARY_FILE).read_bytes()
        embeddings_npy = (directory / EMBEDDINGS_FILE).read_bytes()
        if checked:
            recorded = dict(line.split(" ", 1) for line in (directory / fetch.MARKER).read_text().splitlines()
                            if line.count(" ") >= 1)
            for name, data in ((VOCABULARY_FILE, vocabulary_json), (EMBEDDINGS_FILE, embeddings_npy)):
                if recorded.get(name) != _sha256(data):
                    raise DatasetError(f"the inst2vec data in {directory} is damaged: {name}'s SHA-256 is not "
                                       f"the one recorded when it was written. To repair it, {remedy}")
        statements = json.loads(vocabulary_json)
        embeddings = np.load(io.BytesIO(embeddings_npy), allow_pickle=False)
    except DatasetError:
        raise
    except (OSError, ValueError) as e:
        raise DatasetError(f"the inst2vec data in {directory} cannot be read ({e}). To repair it, {remedy}") from None
    if not isinstance(statements, list) or not all(isinstance(s, str) for s in statements):
        raise DatasetError(f"{directory / VOCABULARY_FILE} is not a JSON list of statements. To repair it, {remedy}")
    index = {s: i for i, s in enumerate(statements)}
    if len(index) != len(statements):
        raise DatasetError(f"{directory / VOCABULARY_FILE} lists a statement twice. To repair it, {remedy}")
    statements, embeddings = convert(index, embeddings, str(directory))
    return Vocabulary(tuple(statements), index, embeddings, index[UNKNOWN])


_LOADED: dict[Path, Vocabulary] = {}
_LOADING = threading.Lock()


def _after_fork_in_child() -> None:
    global _LOADING
    _LOADING = threading.Lock()  # a parent's thread may have held it at fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


def vocabulary() -> Vocabulary:
    """The vocabulary and table: ``$FORKGYM_INST2VEC_DATA``'s if set, else the
    installed ones, installed first if they are not (see the module). Read once
    per process (per directory). Raises DatasetError (DownloadFailed,
    ChecksumMismatch) saying what failed and what to do."""
    own = os.environ.get(DATA_VARIABLE)
    directory = Path(own).absolute() if own else data_dir()
    with _LOADING:
        loaded = _LOADED.get(directory)
        if loaded is None:
            if not own:
                install()
            loaded = _LOADED[directory] = _load(directory, checked=not own)
        return loaded

