"""Downloads a user can trust, and installs that leave a dataset whole or absent.

A dataset is installed from archives (tarballs, or single compressed files)
named by URL and SHA-256. One install, in order (:func:`install`):

1. Take the dataset's lock (:func:`dataset_lock`: a thread lock and an
   inter-process file lock, ``<site>/datasets/.<name>.lock``). If the
   ``.installed`` marker is there, stop: it is installed.
2. Remove what a killed install left (``<dataset>/.tmp-*``): holding the lock,
   nobody else is writing them.
3. :func:`download` each archive into ``<cache>/downloads/<sha256>``: fetched
   into a temporary file beside it, hashed as it arrives, renamed into place
   only when the SHA-256 is the catalogue's. Cached files are hashed again
   before use, so a file placed by hand is checked like a download.
4. :func:`extract` each into a fresh ``<dataset>/.tmp-*`` directory, after
   checking every member (nothing is written if one would land outside the
   dataset's directory), then rename it into place.
5. Write ``dataset.ini``, then the ``.installed`` marker, each to a temporary
   file renamed into place.

A process killed at any step leaves no marker, so the dataset reads as not
installed, and the next install (step 2) starts clean. Any process may call
every function here; they block while another process or thread holds the
same lock.

The network is reached through the standard library's ``urllib`` (which
honours ``http_proxy``/``https_proxy``/``no_proxy``); the retry policy below is
ours because it must also know about mirrors, checksums and truncated bodies.
"""

from __future__ import annotations

import bz2
import contextlib
import ctypes
import dataclasses
import gzip
import hashlib
import http.client
import logging
import lzma
import os
import re
import shutil
import socket
import sys
import tarfile
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import filelock

from forkgym.datasets import paths
from forkgym.errors import ChecksumMismatch, DatasetError, DownloadFailed, UnsafeArchive

MIRROR_VARIABLE = "FORKGYM_DATASET_MIRROR"
MARKER = ".installed"
INI = "dataset.ini"
_TMP_PREFIX = ".tmp-"
# Retries are said on stderr (logging's last-resort handler shows warnings),
# so a user waiting on a flaky or absent network knows why.
_log = logging.getLogger("forkgym.datasets")
try:
    _LIBC: ctypes.CDLL | None = ctypes.CDLL(None, use_errno=True)
except OSError:
    _LIBC = None
_CHUNK = 1 << 20

# HTTP statuses worth retrying: the server is busy or broken for now. Any
# other error status (404, 403, 410...) means this URL will not serve the file.
_RETRY_STATUSES = frozenset({408, 429}) | frozenset(range(500, 600))
# A Retry-After longer than this is not waited for in full (the user is waiting).
_MAX_RETRY_AFTER = 120.0

# For tests that kill an install at a chosen point (tests/python/test_dataset_fetch.py):
# called with (step, detail) at each step boundary; None otherwise.
_step_hook: Callable[[str, str], None] | None = None


def _step(step: str, detail: str = "") -> None:
    if _step_hook is not None:
        _step_hook(step, detail)


# ---------------------------------------------------------------------------
# Locks


_THREAD_LOCKS: dict[str, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()
_HELD = threading.local()  # the lock files this thread holds, with their depth


@contextlib.contextmanager
def _locked(lock_file: Path) -> Iterator[None]:
    """Holds ``lock_file`` against other processes and other threads of this one
    (a file lock alone would let two threads sharing a lock object in).
    Re-entrant within a thread: a second file lock on the same file from the
    same process would wait for itself forever."""
    key = str(lock_file)
    held: dict[str, int] = _HELD.__dict__.setdefault("depth", {})
    if held.get(key):
        held[key] += 1
        try:
            yield
        finally:
            held[key] -= 1
        return
    with _THREAD_LOCKS_GUARD:
        thread_lock = _THREAD_LOCKS.setdefault(key, threading.Lock())
    paths.make_dir(lock_file.parent)
    with thread_lock, filelock.FileLock(key):
        held[key] = 1
        try:
            yield
        finally:
            held[key] = 0


def dataset_lock(dataset_dir: Path) -> contextlib.AbstractContextManager[None]:
    """The lock every change to ``dataset_dir`` (install, uninstall, manifest) holds.
    The lock file sits beside the directory, so removing the directory keeps it."""
    dataset_dir = Path(dataset_dir)
    return _locked(dataset_dir.parent / f".{dataset_dir.name}.lock")


# ---------------------------------------------------------------------------
# Downloads


def file_name(url: str) -> str:
    """The file name a URL ends with (``.../jotaibench.bz2?raw=true`` gives
    ``jotaibench.bz2``): what a mirror serves the file as."""
    name = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1])
    return name or "download"


def mirrored(urls: Sequence[str], mirror: str | None = None) -> list[str]:
    """``urls`` with everything but the file name replaced by the mirror
    (``$FORKGYM_DATASET_MIRROR`` unless given): a base URL, or a local directory.
    Without a mirror, ``urls`` unchanged."""
    mirror = os.environ.get(MIRROR_VARIABLE, "") if mirror is None else mirror
    if not mirror:
        return list(urls)
    if "://" in mirror:
        base = mirror.rstrip("/") + "/"
    else:
        base = Path(mirror).absolute().as_uri() + "/"
    out: list[str] = []
    for url in urls:
        candidate = base + urllib.parse.quote(file_name(url))
        if candidate not in out:
            out.append(candidate)
    return out


def cached_path(sha256: str) -> Path:
    """Where the verified file with this SHA-256 is kept (and may be placed by hand)."""
    return paths.downloads_dir() / _checked_sha256(sha256)


def _checked_sha256(sha256: str) -> str:
    if not isinstance(sha256, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", sha256):
        raise ValueError(f"'{sha256}' is not a SHA-256: give the 64 hex digits of the file's checksum")
    return sha256.lower()


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class _Transient(Exception):
    """This try failed in a way a later one may not (busy server, lost connection)."""

    def __init__(self, reason: str, retry_after: float = 0.0) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class _Refused(Exception):
    """This URL will not serve the file (404, a missing local file...)."""


def _retry_after(error: urllib.error.HTTPError) -> float:
    value = error.headers.get("Retry-After", "") if error.headers else ""
    try:
        return min(max(float(value), 0.0), _MAX_RETRY_AFTER)
    except ValueError:
        return 0.0  # an HTTP date, or garbage: back off by our own schedule


def _progress_bar(total: int | None, description: str, progress: bool | None):
    """A progress bar on a terminal (stderr), nothing otherwise."""
    show = sys.stderr.isatty() if progress is None else progress
    if not show:
        return contextlib.nullcontext(None)
    from tqdm import tqdm  # only when shown: the import costs a little

    return tqdm(total=total, desc=description, unit="B", unit_scale=True, unit_divisor=1024, leave=False)


def _fetch_once(url: str, sha256: str, target: Path, name: str, timeout: float, progress: bool | None) -> None:
    """One try: fetch ``url`` into a temporary file beside ``target`` and rename it
    into place if its SHA-256 is ``sha256``. The temporary file never outlives the try."""
    request = urllib.request.Request(url, headers={"User-Agent": "forkgym", "Accept-Encoding": "identity"})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        e.close()
        if e.code in _RETRY_STATUSES:
            raise _Transient(f"HTTP {e.code} {e.reason}", _retry_after(e)) from None
        raise _Refused(f"HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        if url.startswith("file:"):
            raise _Refused(f"no such file ({e.reason})") from None
        raise _Transient(f"cannot connect ({e.reason})") from None
    except (OSError, http.client.HTTPException) as e:  # timeouts, resets, a garbled status line
        raise _Transient(f"{type(e).__name__}: {e}") from None

    with _replacing(target, prefix=f"{sha256}.part-") as fd:
        digest = hashlib.sha256()
        received = 0
        length_header = response.headers.get("Content-Length") if response.headers else None
        expected = int(length_header) if length_header and length_header.isdigit() else None
        try:
            with response, os.fdopen(fd, "wb") as out, _progress_bar(expected, name, progress) as bar:
                while True:
                    try:
                        chunk = response.read(_CHUNK)
                    except (OSError, http.client.HTTPException) as e:  # reset, timeout, IncompleteRead
                        raise _Transient(f"the connection broke after {received} bytes "
                                         f"({type(e).__name__}: {e})") from None
                    if not chunk:
                        break
                    digest.update(chunk)
                    out.write(chunk)
                    received += len(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
                # http.client returns a short body without complaint when the
                # peer closes early; the announced length tells.
                if expected is not None and received != expected:
                    raise _Transient(f"truncated: received {received} of {expected} bytes")
                out.flush()
                os.fsync(out.fileno())
        except OSError as e:  # reading was handled above: this is the disk
            raise DatasetError(f"could not write the download {name} to {target.parent}: {e.strerror or e}. Free "
                               f"space there, or set FORKGYM_CACHE to a directory with room") from None
        actual = digest.hexdigest()
        if actual != sha256:
            raise ChecksumMismatch(
                f"{name} from {url} has SHA-256 {actual}, not the expected {sha256} ({received} bytes): it was "
                f"discarded and nothing of it was used. The server or a proxy served a different or damaged "
                f"file; if {MIRROR_VARIABLE} is set, check the mirror's copy, otherwise try again later or "
                f"report the URL")


def _placement_help(name: str, urls: Sequence[str], sha256: str) -> str:
    return (f"To install it without this download, fetch {name} (from {urls[0]}) on a machine that can, check "
            f"that its SHA-256 is {sha256}, and either copy it to {cached_path(sha256)} (exactly that name), or "
            f"put it in a directory (or behind a web server) and set {MIRROR_VARIABLE} to that directory (or "
            f"base URL)")


def download(urls: str | Sequence[str], sha256: str, *, name: str | None = None, max_retries: int = 4,
             backoff: float = 1.0, timeout: float = 60.0, progress: bool | None = None,
             mirror: str | None = None) -> Path:
    """The path of the verified file with this SHA-256, fetched from ``urls`` if
    it is not in the cache already.

    - The file is ``<cache>/downloads/<sha256>``. A file already there (an earlier
      download, or one placed by hand) is hashed before it is returned; a wrong
      one is removed and fetched again.
    - ``urls`` are tried in order; ``$FORKGYM_DATASET_MIRROR`` (or ``mirror``)
      replaces all but their file name (the checksum still applies).
    - HTTP 408/429/5xx, lost connections, timeouts and truncated bodies are
      retried up to ``max_retries`` times, waiting ``backoff * 2**n`` seconds
      (or the server's Retry-After, up to 2 minutes) between rounds. Any other
      HTTP error drops that URL; a checksum mismatch raises at once.
    - One process downloads a file at a time; the others wait and then find it.
    - ``progress``: a progress bar on stderr (default: when it is a terminal).

    Raises :class:`~forkgym.ChecksumMismatch` (wrong bytes) or
    :class:`~forkgym.DownloadFailed` (nothing fetched), whose message names the
    file, its URL and SHA-256, and how to place it by hand.
    """
    sha256 = _checked_sha256(sha256)
    urls = [urls] if isinstance(urls, str) else list(urls)
    if not urls:
        raise ValueError("download() needs at least one URL")
    name = name or file_name(urls[0])
    sources = mirrored(urls, mirror)
    target = cached_path(sha256)
    with _locked(target.parent / f"{sha256}.lock"):
        # Holding the lock, any partial file of this hash is a killed download's.
        for stale in target.parent.glob(f"{sha256}.part-*"):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
        if target.exists():
            if target.is_file() and _sha256_of(target) == sha256:
                return target
            # A damaged cache file, or a wrong file placed by hand: fetch it again.
            if target.is_dir():
                raise DatasetError(f"{target} is a directory, where the download {name} is kept: remove it")
            target.unlink()

        live = list(sources)
        failures: dict[str, str] = {}
        for attempt in range(max(max_retries, 0) + 1):
            wait = 0.0
            for url in list(live):
                try:
                    _fetch_once(url, sha256, target, name, timeout, progress)
                    _step("downloaded", name)
                    return target
                except _Refused as e:
                    failures[url] = str(e)
                    live.remove(url)
                except _Transient as e:
                    failures[url] = str(e)
                    wait = max(wait, e.retry_after)
            if not live or attempt == max(max_retries, 0):
                break
            delay = max(wait, backoff * (2 ** attempt))
            _log.warning("downloading %s failed (%s); try %d of %d in %.3g s", name,
                         "; ".join(failures[url] for url in live), attempt + 2, max(max_retries, 0) + 1, delay)
            time.sleep(delay)
        tries = "; ".join(f"{url}: {why}" for url, why in failures.items())
        rounds = "" if not live else f" after {max(max_retries, 0) + 1} tries"
        raise DownloadFailed(f"could not download {name} (SHA-256 {sha256}){rounds}: {tries}. "
                             f"{_placement_help(name, urls, sha256)}")


# ---------------------------------------------------------------------------
# Archives

# Compressed single files, by their first bytes (tarballs are recognised by
# tarfile itself, compressed or not).
_DECOMPRESSORS: tuple[tuple[bytes, Callable], ...] = (
    (b"BZh", bz2.open),
    (b"\x1f\x8b", gzip.open),
    (b"\xfd7zXZ\x00", lzma.open),
)
_COMPRESSION_SUFFIXES = (".bz2", ".gz", ".xz")


def open_decompressed(path: Path):
    """``path`` opened for reading in binary, decompressed if it is bz2, gzip or xz."""
    with open(path, "rb") as f:
        magic = f.read(6)
    for prefix, opener in _DECOMPRESSORS:
        if magic.startswith(prefix):
            return opener(path, "rb")
    return open(path, "rb")


def _member_path(raw: str, archive: str, what: str = "member") -> str:
    """A member's path, normalised (no ``.`` or empty components), refused if it
    is absolute or climbs out with ``..``."""
    if raw.startswith("/") or "\0" in raw:
        raise UnsafeArchive(f"{archive}: {what} '{raw}' is an absolute path, which would be written outside "
                            f"the dataset's directory: nothing was extracted. The archive is not a dataset "
                            f"archive forkgym can install; check where it came from")
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchive(f"{archive}: {what} '{raw}' climbs out with '..', which could write outside the "
                            f"dataset's directory: nothing was extracted. The archive is not a dataset archive "
                            f"forkgym can install; check where it came from")
    return "/".join(parts)


def _resolve(parts: list[str], links: Mapping[str, str], depth: int = 0) -> list[str] | None:
    """Resolves a relative path inside the extraction root the way the kernel
    will once every symbolic link of the archive exists; None if it leaves
    the root (or loops)."""
    out: list[str] = []
    for part in parts:
        if part in ("", "."):
            continue
        if part == "..":
            if not out:
                return None
            out.pop()
            continue
        out.append(part)
        target = links.get("/".join(out))
        if target is not None:
            if depth > 40 or target.startswith("/"):
                return None
            resolved = _resolve(out[:-1] + target.split("/"), links, depth + 1)
            if resolved is None:
                return None
            out = resolved
    return out


@dataclasses.dataclass
class _Plan:
    """What the checking pass learnt: the kind of every member kept, and every link."""
    kinds: dict[str, str] = dataclasses.field(default_factory=dict)  # path -> "d", "f", "l" (symlink), "h"
    symlinks: dict[str, str] = dataclasses.field(default_factory=dict)  # path -> target as written
    hardlinks: dict[str, str] = dataclasses.field(default_factory=dict)  # path -> member it links to
    count: int = 0


def _selected(path: str, prefix: str) -> bool:
    return not prefix or path == prefix or path.startswith(prefix + "/")


def _check_tar(archive: Path, label: str, prefix: str) -> _Plan:
    """The checking pass: reads every header (no data is written), refusing the
    whole archive on the first member that could land outside the root."""
    plan = _Plan()
    with tarfile.open(archive, "r|*") as tar:
        while (member := tar.next()) is not None:
            tar.members = []  # tarfile keeps every header it read; we keep our own, smaller, record
            path = _member_path(member.name, label)
            if not path or not _selected(path, prefix):
                continue
            if member.ischr() or member.isblk() or member.isfifo():
                kind = "character device" if member.ischr() else "block device" if member.isblk() else "FIFO"
                raise UnsafeArchive(f"{label}: member '{member.name}' is a {kind}; a dataset holds only files, "
                                    f"directories and links: nothing was extracted. Check where the archive "
                                    f"came from")
            if member.issym():
                kind = "l"
                if member.linkname.startswith("/"):
                    raise UnsafeArchive(f"{label}: symbolic link '{member.name}' points to the absolute path "
                                        f"'{member.linkname}', outside the dataset's directory: nothing was "
                                        f"extracted. Check where the archive came from")
                plan.symlinks[path] = member.linkname
            elif member.islnk():
                kind = "h"
                target = _member_path(member.linkname, label, f"hard link target of '{member.name}'")
                if plan.kinds.get(target) not in ("f", "h"):
                    raise UnsafeArchive(f"{label}: hard link '{member.name}' points to '{member.linkname}', which "
                                        f"is not a file extracted before it from this archive: nothing was "
                                        f"extracted. Check where the archive came from")
                plan.hardlinks[path] = target
            elif member.isdir():
                kind = "d"
            elif member.isreg():
                kind = "f"
            else:
                raise UnsafeArchive(f"{label}: member '{member.name}' has tar type {member.type!r}, which forkgym "
                                    f"does not extract: nothing was extracted")
            previous = plan.kinds.get(path)
            if previous is not None and not (previous == kind == "d"):
                raise UnsafeArchive(f"{label}: '{member.name}' appears twice in the archive; forkgym does not "
                                    f"guess which one is meant: nothing was extracted")
            plan.kinds[path] = kind
            plan.count += 1
    if prefix and not plan.count:
        raise DatasetError(f"{label} has no '{prefix}' directory: the catalogue entry's strip_prefix does not "
                           f"match the archive; fix the catalogue entry")
    # No member may be written through a symbolic link of the archive (a link
    # that is harmless where it points can move a later member elsewhere) ...
    for path in plan.kinds:
        parts = path.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if parent in plan.symlinks:
                raise UnsafeArchive(f"{label}: member '{path}' would be written through the symbolic link "
                                    f"'{parent}', which could place it outside the dataset's directory: nothing "
                                    f"was extracted")
            if plan.kinds.get(parent, "d") != "d":
                raise UnsafeArchive(f"{label}: member '{path}' lies under '{parent}', which the archive makes a "
                                    f"file: nothing was extracted")
    # ... and every symbolic link must resolve inside the root once all exist.
    for path, target in plan.symlinks.items():
        if _resolve(path.split("/")[:-1] + target.split("/"), plan.symlinks) is None:
            raise UnsafeArchive(f"{label}: symbolic link '{path}' -> '{target}' points outside the dataset's "
                                f"directory (or into a loop of links): nothing was extracted. Check where the archive came from")
    return plan


def _extract_tar(archive: Path, label: str, prefix: str, plan: _Plan, root: Path, progress: bool | None) -> None:
    """The writing pass, into the fresh directory ``root``. Each member is checked
    again against the plan (the archive is read a second time)."""
    show = sys.stderr.isatty() if progress is None else progress
    bar = None
    if show:
        from tqdm import tqdm
        bar = tqdm(total=plan.count, desc=f"extracting {label}", unit=" files", leave=False)
    made: set[Path] = {root}  # directories known to exist (a mkdir per file costs as much as the write)

    def make_dirs(directory: Path) -> None:
        if directory in made:
            return
        make_dirs(directory.parent)
        try:
            os.mkdir(directory, 0o777)
        except FileExistsError:
            pass
        else:
            _share(directory, 0o755)
        made.add(directory)

    try:
        with tarfile.open(archive, "r|*") as tar:
            while (member := tar.next()) is not None:
                tar.members = []
                path = _member_path(member.name, label)
                if not path or not _selected(path, prefix):
                    continue
                kind = plan.kinds.get(path)
                destination = root / path
                if member.isdir() and kind == "d":
                    make_dirs(destination)
                elif member.isreg() and kind == "f":
                    make_dirs(destination.parent)
                    executable = bool(member.mode & 0o111)
                    fd = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                                 0o777 if executable else 0o666)
                    _share(fd, 0o755 if executable else 0o644)
                    source = tar.extractfile(member)
                    with os.fdopen(fd, "wb") as out, source:
                        shutil.copyfileobj(source, out, _CHUNK)
                elif member.issym() and kind == "l" and plan.symlinks.get(path) == member.linkname:
                    make_dirs(destination.parent)
                    os.symlink(member.linkname, destination)
                elif member.islnk() and kind == "h" and plan.hardlinks.get(path) == _member_path(
                        member.linkname, label):
                    make_dirs(destination.parent)
                    os.link(root / plan.hardlinks[path], destination, follow_symlinks=False)
                else:
                    raise UnsafeArchive(f"{label} changed while it was being extracted ('{member.name}'): nothing "
                                        f"was installed; try again")
                if bar is not None:
                    bar.update(1)
                _step("member", path)
    finally:
        if bar is not None:
            bar.close()


def _share(target: Path | int, mode: int) -> None:
    """For root, makes what it installs readable by all whatever its umask: its
    server reads datasets as an unprivileged sandbox user. Anyone else's files
    keep their umask's modes (their server runs as them)."""
    if paths.AS_ROOT:
        if isinstance(target, int):
            os.fchmod(target, mode)
        else:
            os.chmod(target, mode)


def _is_tar(path: Path) -> bool:
    try:
        with tarfile.open(path, "r|*") as tar:
            return tar.next() is not None
    except (tarfile.TarError, EOFError, OSError, lzma.LZMAError, zlib.error):
        return False


def _exchange(a: Path, b: Path) -> bool:
    """Swaps two existing paths in one step (renameat2 RENAME_EXCHANGE); False
    where the C library or the file system cannot."""
    renameat2 = getattr(_LIBC, "renameat2", None) if _LIBC is not None else None
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def extract(archive: Path, dataset_dir: Path, strip_prefix: str = "", *, into: str | None = None,
            name: str | None = None, progress: bool | None = None) -> Path:
    """Extracts ``archive`` into ``dataset_dir`` atomically and returns where it landed.

    - A tarball (plain, gzip, bzip2 or xz, recognised by content, whatever its
      name) becomes the directory ``<dataset_dir>/<into>`` (default ``contents``).
      With ``strip_prefix`` only the members under that directory of the
      archive are extracted, at their own paths, and the result is
      ``<dataset_dir>/<into>/<strip_prefix>`` (CompilerGym's layout: a
      dataset's root is ``contents/<strip_prefix>``).
    - Any other file (bz2, gzip, xz or not compressed) is decompressed to the file
      ``<dataset_dir>/<into>`` (default: ``name``, the file's name without its
      compression suffix).

    Every member is checked before anything is written: a path that is absolute
    or climbs with ``..``, a symbolic or hard link leading outside the tree, a
    member written through a symbolic link, a device or a FIFO refuses the
    whole archive (:class:`~forkgym.UnsafeArchive`). The result is built in a
    fresh ``<dataset_dir>/.tmp-*`` directory and renamed into place, replacing
    what was there, so ``<dataset_dir>/<into>`` is always either the old one or
    the complete new one. Callers hold :func:`dataset_lock`.
    """
    archive = Path(archive)
    dataset_dir = Path(dataset_dir)
    label = name or archive.name
    paths.make_dir(dataset_dir)
    prefix = _member_path(strip_prefix, label, "strip_prefix") if strip_prefix else ""
    tar = _is_tar(archive)
    if into is None:
        if tar:
            into = "contents"
        elif name:
            into = name[: -len(name.rsplit(".", 1)[-1]) - 1] if name.endswith(_COMPRESSION_SUFFIXES) else name
        else:
            raise ValueError(f"{archive} is not a tarball: extract() needs name= (or into=) to name the file")
    if "/" in into or into in ("", ".", "..") or into.startswith(_TMP_PREFIX) or into in (MARKER, INI):
        raise ValueError(f"into='{into}' must be one plain name inside the dataset's directory")
    final = dataset_dir / into

    try:
        plan = _check_tar(archive, label, prefix) if tar else None
    except (tarfile.TarError, EOFError, OSError, lzma.LZMAError, zlib.error) as e:  # only reads: damage
        raise DatasetError(f"{label} is a damaged archive ({type(e).__name__}: {e}): nothing was extracted; remove "
                           f"{archive} and install again") from None
    staging = Path(tempfile.mkdtemp(dir=dataset_dir, prefix=_TMP_PREFIX))
    try:
        if plan is not None:
            built = staging / "tree"
            built.mkdir()
            _share(built, 0o755)
            _extract_tar(archive, label, prefix, plan, built, progress)
        else:
            built = staging / "file"
            with open_decompressed(archive) as source, open(built, "xb") as out:
                while True:
                    try:
                        chunk = source.read(_CHUNK)
                    except (EOFError, OSError, lzma.LZMAError, zlib.error) as e:
                        raise DatasetError(f"{label} is not a valid compressed file ({e}): nothing was installed; "
                                           f"remove {archive} and install again") from None
                    if not chunk:
                        break
                    out.write(chunk)
            _share(built, 0o644)
        _step("switching", into)
        if final.exists() or final.is_symlink():
            # One step where the kernel allows it; otherwise the old one moves
            # aside first (a kill between the two renames leaves neither, and
            # the next install starts clean), never a mix of both.
            if not _exchange(built, final):
                os.rename(final, staging / "old")
                os.rename(built, final)
        else:
            os.rename(built, final)
        _step("switched", into)
    except OSError as e:
        raise DatasetError(f"could not extract {label} into {dataset_dir}: {e.strerror or e} ({e.filename or ''}). "
                           f"Nothing was installed; free space there, or set FORKGYM_SITE_DATA to a directory with "
                           f"room") from None
    except (tarfile.TarError, EOFError, lzma.LZMAError, zlib.error) as e:
        raise DatasetError(f"{label} is a damaged archive ({type(e).__name__}: {e}): nothing was installed; remove "
                           f"{archive} and install again") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final / prefix if prefix else final


# ---------------------------------------------------------------------------
# Install


@dataclasses.dataclass(frozen=True)
class Archive:
    """One file a dataset is installed from: fetched from ``urls`` and checked
    against ``sha256``, or read from the local ``path`` (a file a system package
    installed), then extracted as :func:`extract` says."""

    urls: tuple[str, ...] = ()
    sha256: str = ""
    strip_prefix: str = ""
    into: str | None = None
    name: str | None = None  # default: the first URL's file name, or path's
    path: Path | None = None

    def file_name(self) -> str:
        if self.name:
            return self.name
        if self.urls:
            return file_name(self.urls[0])
        return Path(self.path).name if self.path else "archive"


def is_installed(dataset_dir: Path) -> bool:
    """Whether the dataset's ``.installed`` marker is there (nothing else counts)."""
    return (Path(dataset_dir) / MARKER).is_file()


@contextlib.contextmanager
def _replacing(target: Path, prefix: str) -> Iterator[int]:
    """A descriptor on a temporary file beside ``target`` (the caller closes
    it) that replaces ``target``, readable as dataset files are, when the block
    ends, and is removed when the block raises: readers see the old file or
    the whole new one, never a part."""
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=prefix)
    try:
        yield fd
        os.chmod(temporary, 0o644 if paths.AS_ROOT else 0o600)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def atomic_write(path: Path, data: str | bytes) -> None:
    """Writes ``path`` so that it is either the old file or the complete new one."""
    path = Path(path)
    payload = data.encode() if isinstance(data, str) else data
    with _replacing(path, prefix=_TMP_PREFIX) as fd, os.fdopen(fd, "wb") as out:
        out.write(payload)
        out.flush()
        os.fsync(out.fileno())


def format_ini(values: Mapping[str, str]) -> str:
    """``key = value`` lines, as ``dataset.ini`` holds them."""
    lines = []
    for key, value in values.items():
        key, value = str(key), str(value)
        if not re.fullmatch(r"[a-z_]+", key) or "\n" in value or "\r" in value:
            raise ValueError(f"dataset.ini entry {key!r} = {value!r}: keys are lowercase words, values one line")
        lines.append(f"{key} = {value}")
    return "\n".join(lines) + "\n"


def remove_leftovers(dataset_dir: Path) -> None:
    """Removes what a killed install or extraction left in ``dataset_dir``. Call
    holding :func:`dataset_lock`."""
    for leftover in Path(dataset_dir).glob(_TMP_PREFIX + "*"):
        _remove(leftover)


def install(dataset_dir: Path, archives: Sequence[Archive], *, ini: Mapping[str, str] | None = None,
            finish: Callable[[Path], None] | None = None, progress: bool | None = None,
            max_retries: int = 4, backoff: float = 1.0) -> Path:
    """Installs a dataset into ``dataset_dir`` from ``archives`` (see the module's
    steps) unless its marker says it is installed, and returns ``dataset_dir``.

    ``finish(dataset_dir)``, if given, runs after the archives are in place and
    before ``dataset.ini`` (``ini``) and the marker are written: the place for
    work that makes the dataset whole (writing a manifest, say). Several
    processes installing the same dataset at once download and extract it once;
    the others wait and find it installed."""
    dataset_dir = Path(dataset_dir)
    if is_installed(dataset_dir):
        return dataset_dir
    with dataset_lock(dataset_dir):
        if is_installed(dataset_dir):
            return dataset_dir
        paths.make_dir(dataset_dir)
        remove_leftovers(dataset_dir)
        for archive in archives:
            if archive.path is not None:
                source = Path(archive.path)
                if not source.is_file():
                    raise DatasetError(f"{source} is missing: it is the file {dataset_dir.name} is installed "
                                       f"from; install the package that provides it")
            else:
                source = download(archive.urls, archive.sha256, name=archive.file_name(), progress=progress,
                                  max_retries=max_retries, backoff=backoff)
            extract(source, dataset_dir, archive.strip_prefix, into=archive.into, name=archive.file_name(),
                    progress=progress)
        if finish is not None:
            finish(dataset_dir)
        if ini is not None:
            atomic_write(dataset_dir / INI, format_ini(ini))
        _step("marking", dataset_dir.name)
        atomic_write(dataset_dir / MARKER, "".join(f"{a.file_name()} {a.sha256 or a.path}\n" for a in archives))
    return dataset_dir


def uninstall(dataset_dir: Path, keep: Sequence[str] = ("manifest.txt", "manifest.idx")) -> None:
    """Removes an installed dataset: the marker first (so it reads as not installed
    from then on), then everything else but ``keep`` (the manifest, which lists
    the dataset without installing it). Files of a user dataset registered in
    place (an absolute ``root``) are outside the directory and left alone."""
    dataset_dir = Path(dataset_dir)
    if not dataset_dir.exists():
        return
    with dataset_lock(dataset_dir):
        with contextlib.suppress(FileNotFoundError):
            (dataset_dir / MARKER).unlink()
        for entry in dataset_dir.iterdir():
            if entry.name not in keep:
                _remove(entry)
