"""Where datasets live: the site-data and cache directories, one rule for Python and C++.

- site data: ``$FORKGYM_SITE_DATA``; else ``$XDG_DATA_HOME/forkgym``; else, for
  root, ``/var/lib/forkgym``; else ``~/.local/share/forkgym``. Installed
  datasets are ``<site>/datasets/<name>/`` (dataset.ini, manifest.txt,
  manifest.idx, the contents, and the ``.installed`` marker written last).
- cache: ``$FORKGYM_CACHE``; else ``$XDG_CACHE_HOME/forkgym``; else, for root,
  ``/var/cache/forkgym``; else ``~/.cache/forkgym``. Verified downloads are
  ``<cache>/downloads/<sha256>``.

Root gets system directories (not /root's) because a server started as root
reads datasets as its unprivileged sandbox user, which cannot enter /root; the
directories forkgym creates there are readable by all, while a user's own are
private to them (their server runs as them).

Nothing here creates a directory: :func:`make_dir` does, with those modes.
"""

from __future__ import annotations

import os
from pathlib import Path

AS_ROOT = os.geteuid() == 0
DIR_MODE = 0o755 if AS_ROOT else 0o700


def _choose(own_variable: str, xdg_variable: str, root_default: str, home_default: str) -> Path:
    own = os.environ.get(own_variable)
    if own:
        return Path(own).absolute()
    xdg = os.environ.get(xdg_variable)
    if xdg:
        return Path(xdg).absolute() / "forkgym"
    if AS_ROOT:
        return Path(root_default)
    return Path(os.path.expanduser(home_default))


def site_data_dir() -> Path:
    """The site-data directory (datasets are installed under it); see the module's rule."""
    return _choose("FORKGYM_SITE_DATA", "XDG_DATA_HOME", "/var/lib/forkgym", "~/.local/share/forkgym")


def cache_dir() -> Path:
    """The cache directory (downloads, made benchmarks); see the module's rule."""
    return _choose("FORKGYM_CACHE", "XDG_CACHE_HOME", "/var/cache/forkgym", "~/.cache/forkgym")


def datasets_dir() -> Path:
    """``<site>/datasets``: one directory per dataset."""
    return site_data_dir() / "datasets"


def downloads_dir() -> Path:
    """``<cache>/downloads``: verified downloads, each named by its SHA-256."""
    return cache_dir() / "downloads"


def dataset_name(name: str) -> str:
    """The directory name of a dataset: ``benchmark://cbench-v1`` and ``cbench-v1``
    both give ``cbench-v1``. Refuses names that are not one plain path component."""
    bare = name.split("://", 1)[1] if "://" in name else name
    bare = bare.rstrip("/")
    if not bare or bare in (".", "..") or "/" in bare or "\0" in bare or bare.startswith("."):
        raise ValueError(f"'{name}' is not a dataset name: use letters, digits, '-', '_' and '.' "
                         f"with no '/' and no leading '.', e.g. 'benchmark://cbench-v1' or 'cbench-v1'")
    return bare


def dataset_dir(name: str) -> Path:
    """``<site>/datasets/<name>`` for a dataset name with or without its scheme."""
    return datasets_dir() / dataset_name(name)


def make_dir(path: Path) -> Path:
    """Creates ``path`` and its missing parents (private to this user, or readable
    by all for root, whatever the umask) and returns it."""
    missing = []
    for directory in (path, *path.parents):
        if directory.is_dir():
            break
        missing.append(directory)
    try:
        for directory in reversed(missing):
            try:
                directory.mkdir(mode=DIR_MODE)
            except FileExistsError:
                continue  # made meanwhile by another process
            if AS_ROOT:  # whatever root's umask: the server's sandbox user must get in
                directory.chmod(DIR_MODE)
        if not path.is_dir():
            raise NotADirectoryError(20, "not a directory", str(path))
    except OSError as e:
        from forkgym.errors import DatasetError

        raise DatasetError(f"cannot create the directory {path}: {e.strerror or e}. Set FORKGYM_SITE_DATA (datasets) "
                           f"or FORKGYM_CACHE (downloads) to a directory you can write") from None
    return path
