"""A dataset's manifest: its benchmark paths, read lazily, O(1) random access.

On disk (``<site>/datasets/<name>/``), shared with the server:
- ``manifest.txt``: one URI path per line (no suffix), in the dataset's order,
  each line ending in ``\\n``;
- ``manifest.idx``: the byte offset of every line start in ``manifest.txt``
  as little-endian uint64, then one final entry, the file's size. Line ``i``
  is ``txt[idx[i] : idx[i+1] - 1]``.

Both are memory-mapped, so anghabench's 1,041,333 paths are counted, indexed
and drawn at random without reading the list into memory. They are written
to temporary files and renamed, ``manifest.idx`` last (after removing the old
one), so a reader sees either no manifest or a complete pair; the index's
last entry must equal the text's size, which catches a pair from two builds.
Build under :func:`forkgym.datasets.fetch.dataset_lock`.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from forkgym.datasets import paths
from forkgym.datasets.fetch import open_decompressed
from forkgym.errors import DatasetError

TEXT = "manifest.txt"
INDEX = "manifest.idx"
_CHUNK = 4 << 20
_STRIP = b" \t\r"


class Manifest:
    """The manifest in ``directory`` (``manifest.txt`` + ``manifest.idx``).

    ``len(m)``, ``m[i]`` (negative ``i`` too), ``path in m``, iteration and
    ``m.random(rng)`` never materialise the list. Opened when first used;
    safe to share between threads (reads only) and to pickle (reopens).
    """

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        self._text: mmap.mmap | bytes | None = None
        self._index: np.ndarray | None = None

    # -- building ----------------------------------------------------------

    @staticmethod
    def exists(directory: Path | str) -> bool:
        """Whether ``directory`` holds a manifest (both files)."""
        directory = Path(directory)
        return (directory / INDEX).is_file() and (directory / TEXT).is_file()

    @classmethod
    def build(cls, directory: Path | str, source: Path | str) -> Manifest:
        """Writes the manifest of ``directory`` from ``source``, a text file with
        one path per line, bz2-, gzip- or xz-compressed or not (a downloaded
        manifest). Trailing white space and blank lines are dropped."""
        source = Path(source)
        with open_decompressed(source) as stream:
            try:
                return cls._write(Path(directory), _chunks(stream), str(source))
            except (EOFError, OSError) as e:
                raise DatasetError(f"{source} is not a readable manifest ({e}): remove it and try again") from None

    @classmethod
    def write(cls, directory: Path | str, lines: Iterable[str]) -> Manifest:
        """Writes the manifest of ``directory`` from ``lines`` (paths, without
        newlines), e.g. a generated list."""
        def chunks() -> Iterator[bytes]:
            batch: list[str] = []
            for line in lines:
                if "\n" in line or "\0" in line:
                    raise ValueError(f"manifest line {line!r} holds a newline or a NUL byte")
                batch.append(line)
                if len(batch) >= 65536:
                    yield ("\n".join(batch) + "\n").encode()
                    batch = []
            if batch:
                yield ("\n".join(batch) + "\n").encode()

        return cls._write(Path(directory), chunks(), "the given lines")

    @classmethod
    def _write(cls, directory: Path, chunks: Iterable[bytes], origin: str) -> Manifest:
        paths.make_dir(directory)
        text_fd, text_tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-manifest-")
        index_fd, index_tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-manifest-")
        try:
            with os.fdopen(text_fd, "wb") as text, os.fdopen(index_fd, "wb") as index:
                offset = 0
                carry = b""
                for chunk in chunks:
                    lines = (carry + chunk).split(b"\n")
                    carry = lines.pop()
                    offset = _append(lines, text, index, offset, origin)
                offset = _append([carry], text, index, offset, origin)
                index.write(np.array([offset], dtype="<u8").tobytes())
                for f in (text, index):
                    f.flush()
                    os.fsync(f.fileno())
            mode = 0o644 if paths.AS_ROOT else 0o600
            os.chmod(text_tmp, mode)
            os.chmod(index_tmp, mode)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(directory / INDEX)
            os.replace(text_tmp, directory / TEXT)
            os.replace(index_tmp, directory / INDEX)
        except BaseException:
            for temporary in (text_tmp, index_tmp):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(temporary)
            raise
        return cls(directory)

    # -- reading -----------------------------------------------------------

    def _open(self) -> None:
        text_path, index_path = self.directory / TEXT, self.directory / INDEX
        try:
            size = text_path.stat().st_size
            index = np.memmap(index_path, dtype="<u8", mode="r") if index_path.stat().st_size else None
        except FileNotFoundError:
            raise DatasetError(f"{self.directory} has no manifest ({TEXT} and {INDEX}): list or install the "
                               f"dataset again to fetch it") from None
        except ValueError as e:
            index = None
            reason = str(e)
        else:
            reason = ""
        if index is None or index.size < 1 or int(index[0]) != 0 or int(index[-1]) != size:
            raise DatasetError(f"the manifest in {self.directory} is damaged ({INDEX} does not index {TEXT}"
                               f"{': ' + reason if reason else ''}): delete both files and list or install "
                               f"the dataset again")
        if size:
            with open(text_path, "rb") as f:
                text: mmap.mmap | bytes = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        else:
            text = b""
        self._index, self._text = index, text

    def _ensure(self) -> tuple[mmap.mmap | bytes, np.ndarray]:
        if self._index is None:
            self._open()
        return self._text, self._index  # type: ignore[return-value]

    def __len__(self) -> int:
        return int(self._ensure()[1].size) - 1

    def __getitem__(self, i: int) -> str:
        text, index = self._ensure()
        n = index.size - 1
        i = int(i)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"manifest index {i} out of range: {self.directory} lists {n} benchmarks")
        return text[int(index[i]):int(index[i + 1]) - 1].decode()

    def __iter__(self) -> Iterator[str]:
        self._ensure()
        with open(self.directory / TEXT, "rb", buffering=_CHUNK) as f:
            for line in f:
                yield line[:-1].decode()

    def __contains__(self, path: object) -> bool:
        if not isinstance(path, str) or "\n" in path or not path:
            return False
        text, _ = self._ensure()
        needle = path.encode()
        if text[: len(needle) + 1] == needle + b"\n":
            return True
        return text.find(b"\n" + needle + b"\n") >= 0

    def random(self, rng: Any) -> str:
        """A path drawn uniformly: ``rng`` is a ``numpy.random.Generator`` (or
        anything with ``integers(n)``, or ``random.Random``)."""
        n = len(self)
        if n == 0:
            raise IndexError(f"the manifest in {self.directory} is empty: there is nothing to draw")
        i = rng.integers(n) if hasattr(rng, "integers") else rng.randrange(n)
        return self[int(i)]

    def close(self) -> None:
        if isinstance(self._text, mmap.mmap):
            self._text.close()
        self._text, self._index = None, None

    def __getstate__(self) -> dict:
        return {"directory": self.directory}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["directory"])

    def __repr__(self) -> str:
        return f"Manifest({str(self.directory)!r})"


def _chunks(stream) -> Iterator[bytes]:
    while chunk := stream.read(_CHUNK):
        yield chunk


def _append(lines: list[bytes], text, index, offset: int, origin: str) -> int:
    """Appends ``lines`` (stripped, blanks dropped) to the text and their start
    offsets to the index; returns the offset after them."""
    lines = [stripped for line in lines if (stripped := line.rstrip(_STRIP))]
    if not lines:
        return offset
    payload = b"\n".join(lines) + b"\n"
    try:
        payload.decode()
    except UnicodeDecodeError as e:
        raise DatasetError(f"{origin} is not UTF-8 text ({e}): it is not a manifest") from None
    if b"\0" in payload:
        raise DatasetError(f"{origin} holds a NUL byte: it is not a manifest")
    lengths = np.fromiter((len(line) + 1 for line in lines), dtype=np.uint64, count=len(lines))
    starts = np.empty(len(lines), dtype="<u8")
    starts[0] = offset
    np.cumsum(lengths[:-1], out=starts[1:])
    starts[1:] += np.uint64(offset)
    text.write(payload)
    index.write(starts.tobytes())
    return offset + len(payload)
