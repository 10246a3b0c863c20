"""Finding and owning the forkgym-server zygote.

By default every env in a process shares one private zygote (LLVM and the
parsed benchmarks are loaded once). It is spawned on first use and lives
while any env holds its connection. If it dies, the next ``reset()`` asks
:meth:`Server.connection` again and gets a new one transparently.

Threads: a :class:`Server` and its connection may be shared by any number
of threads (the native connection serialises its control requests).

``os.fork()``: a child process never uses its parent's connection (the
native layer closes the child's copy of the socket without a word on it,
and leaves the parent's private zygote alone). The child's first request
opens its own: a new private zygote, or a new connection to the socket.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from forkgym import _forkgym

T = TypeVar("T")

def server_binary() -> str:
    """The forkgym-server this package should run.

    In order: ``$FORKGYM_SERVER``; the binary installed inside the package
    (``forkgym/bin/forkgym-server``, put there by ``pip install .``); the
    path the C++ client was built with (a development build).
    """
    from_env = os.environ.get("FORKGYM_SERVER")
    if from_env:
        return from_env
    bundled = Path(__file__).resolve().parent / "bin" / "forkgym-server"
    if bundled.is_file() and os.access(bundled, os.X_OK):
        return str(bundled)
    return _forkgym.default_server_path()


def default_socket_path() -> str:
    """Where ``forkgym-server`` listens when started without ``--socket``:
    ``$XDG_RUNTIME_DIR/forkgym/forkgym.sock``, else ``/tmp/forkgym-<uid>/forkgym.sock``,
    in a directory only this user may use (the client refuses it otherwise)."""
    return _forkgym.default_socket_path()


@dataclass(frozen=True)
class ServerOptions:
    """How to reach a zygote: spawn a private one (default) or connect to a socket.

    A socket server must run as this user or root; the client refuses any
    other (and a socket in the default directory unless that directory is
    private). See :func:`default_socket_path`.
    """

    socket_path: str | None = None  # connect to a running `forkgym-server --socket PATH`
    server_path: str | None = None  # binary to spawn; None = server_binary()
    preload: tuple[str, ...] = ()
    # Confine file:// benchmarks to these directories (forkgym-server
    # --benchmark-root); the server's bundled benchmarks stay allowed.
    benchmark_roots: tuple[str, ...] = ()
    cache_mb: int = 0
    log_level: str = "warn"
    extra_args: tuple[str, ...] = field(default_factory=tuple)


class Server:
    """A zygote connection that renews itself when the zygote dies."""

    def __init__(self, options: ServerOptions | None = None) -> None:
        self.options = options or ServerOptions()
        self._connection: _forkgym.Connection | None = None
        # What was derived from the current connection (the spaces of its
        # backends), dropped with it: a renewed zygote is asked again.
        self._derived: dict[Any, Any] = {}
        self._lock = threading.Lock()
        _servers.add(self)

    def __reduce__(self):
        # A Server is a handle on this process's zygote; another process
        # (pickle, multiprocessing 'spawn') gets its own from the options:
        # the process-wide one if this was the process-wide one.
        with _shared_lock:
            shared = _shared.get(self.options) is self
        return (_unpickle_server, (self.options, shared))

    def connection(self) -> _forkgym.Connection:
        """A live connection, spawning (or reconnecting) if the last one died."""
        with self._lock:
            if self._connection is None or not self._connection.alive:
                self._replace(self._open())
            return self._connection

    def renew(self, dead: _forkgym.Connection) -> _forkgym.Connection:
        """Replaces ``dead`` (if it is still the current one) with a new connection."""
        with self._lock:
            if self._connection is dead or self._connection is None or not self._connection.alive:
                self._replace(self._open())
            return self._connection

    def per_connection(self, key: Any, make: Callable[[_forkgym.Connection], T]) -> T:
        """``make(connection)``, once per connection: later calls with ``key``
        return the same value until the connection is replaced."""
        connection = self.connection()
        with self._lock:
            if self._connection is connection and key in self._derived:
                return self._derived[key]
        value = make(connection)  # may be a round trip: not under the lock
        with self._lock:
            if self._connection is connection:
                value = self._derived.setdefault(key, value)
        return value

    def _replace(self, connection: _forkgym.Connection | None) -> None:
        self._connection = connection
        self._derived = {}

    def _open(self) -> _forkgym.Connection:
        o = self.options
        if o.socket_path:
            return _forkgym.Connection.connect(o.socket_path)
        roots: list[str] = []
        for root in o.benchmark_roots:  # the server adds its bundled programs' directory
            roots += ["--benchmark-root", str(root)]
        return _forkgym.Connection.spawn(
            server_path=o.server_path or server_binary(),
            preload=list(o.preload),
            cache_mb=o.cache_mb,
            log_level=o.log_level,
            extra_args=roots + list(o.extra_args),
        )

    def close(self) -> None:
        """Drops this handle's reference; the zygote exits when no env uses it."""
        with self._lock:
            self._replace(None)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


_shared: dict[ServerOptions, Server] = {}
_shared_lock = threading.Lock()
_servers: weakref.WeakSet[Server] = weakref.WeakSet()


def shared_server(options: ServerOptions | None = None) -> Server:
    """The process-wide :class:`Server` for these options (one zygote per process by default)."""
    options = options or ServerOptions()
    with _shared_lock:
        server = _shared.get(options)
        if server is None:
            server = _shared[options] = Server(options)
        return server


def _unpickle_server(options: ServerOptions, shared: bool) -> Server:
    return shared_server(options) if shared else Server(options)


def _drop_shared() -> None:
    # Closing connections before interpreter teardown lets each private
    # zygote exit cleanly (and keeps nanobind's leak checker quiet).
    with _shared_lock:
        for server in _shared.values():
            server.close()
        _shared.clear()


def _after_fork_in_child() -> None:
    # Another thread of the parent may have held these locks at fork(): that
    # thread does not exist here, so they would never be released. (The
    # connections themselves were already forgotten by the native layer.)
    global _shared_lock
    _shared_lock = threading.Lock()
    for server in list(_servers):
        server._lock = threading.Lock()


import atexit  # noqa: E402

atexit.register(_drop_shared)
os.register_at_fork(after_in_child=_after_fork_in_child)
