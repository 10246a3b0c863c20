"""Finding and owning the forkgym-server zygote.

By default every env in a process shares one private zygote (LLVM and the
parsed benchmarks are loaded once). It is spawned on first use and lives
while any env holds its connection. If it dies, the next ``reset()`` asks
:meth:`Server.connection` again and gets a new one transparently.

Threads: a :class:`Server` and its connection may be shared by any number
of threads (the native connection serialises its control requests).

One zygote for several processes (the env runners of a node): with
``ServerOptions(shared_socket=PATH)`` the first process to need it starts a
detached ``forkgym-server --socket PATH --exit-when-idle N`` (under a lock,
so concurrent starters start one), the others connect to it; it survives
any one of them (a restarted process connects again) and exits by itself
once no process has been connected for ``idle_exit_seconds``.

``os.fork()``: a child process never uses its parent's connection (the
native layer closes the child's copy of the socket without a word on it,
and leaves the parent's private zygote alone). The child's first request
opens its own: a new private zygote, or a new connection to the socket.
"""

from __future__ import annotations

import os
import subprocess
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from forkgym import _forkgym
from forkgym.errors import InvalidRequest, ServerUnavailable

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
    # Share one zygote among processes: connect to this socket, starting a
    # detached server on it when none listens (see the module's docstring).
    shared_socket: str | None = None
    # A shared server exits after this long without any connected process:
    # long enough to span a process's restart, short enough to clean up.
    idle_exit_seconds: int = 30


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
        if o.socket_path and o.shared_socket:
            raise InvalidRequest("ServerOptions: give socket_path (a server someone else runs) or shared_socket "
                                 "(one this node's processes share, started on demand), not both")
        if o.socket_path:
            return _forkgym.Connection.connect(o.socket_path)
        if o.shared_socket:
            return connect_or_start(o)
        return _forkgym.Connection.spawn(
            server_path=o.server_path or server_binary(),
            preload=list(o.preload),
            cache_mb=o.cache_mb,
            log_level=o.log_level,
            extra_args=_root_args(o) + list(o.extra_args),
        )

    def close(self) -> None:
        """Drops this handle's reference; the zygote exits when no env uses it."""
        with self._lock:
            self._replace(None)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _root_args(o: ServerOptions) -> list[str]:
    roots: list[str] = []
    for root in o.benchmark_roots:  # the server adds its bundled programs' directory
        roots += ["--benchmark-root", str(root)]
    return roots


# Attempts at connecting to a shared socket: a server exiting idle just as a
# process connects closes that connection, and the next attempt starts anew.
_SHARED_ATTEMPTS = 3


def connect_or_start(options: ServerOptions) -> _forkgym.Connection:
    """A connection to ``options.shared_socket``'s server, started (detached)
    if none listens there. Several processes calling this at once start one
    server: the start is serialised by a lock file beside the socket."""
    from filelock import FileLock

    path = options.shared_socket
    assert path
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise InvalidRequest(f"shared_socket '{path}': its directory does not exist; "
                             "create it (mode 0700) or choose another path")
    last: Exception | None = None
    for _ in range(_SHARED_ATTEMPTS):
        try:
            return _forkgym.Connection.connect(path)
        except ServerUnavailable as error:
            last = error
        # The start may take a preload's time; a starter killed meanwhile
        # releases the lock with its descriptor.
        with FileLock(path + ".lock"):
            try:
                return _forkgym.Connection.connect(path)
            except ServerUnavailable:
                _start_detached(options)
    raise ServerUnavailable(f"no forkgym server stayed up on shared socket '{path}' after {_SHARED_ATTEMPTS} "
                            f"starts (its log: {path}.log): {last}")


def _start_detached(options: ServerOptions) -> None:
    """Starts ``forkgym-server`` on ``options.shared_socket`` in a session of
    its own, child of no client process (so killing the process that started
    it, or its process group, leaves it to the others), and returns once it
    accepts connections. Its log goes to ``<socket>.log``."""
    path = options.shared_socket
    assert path
    read_end, write_end = os.pipe()
    args = [
        options.server_path or server_binary(),
        "--socket", path,
        "--exit-when-idle", str(int(options.idle_exit_seconds)),
        "--ready-fd", str(write_end),
        "--log-level", options.log_level,
        *(arg for uri in options.preload for arg in ("--preload", uri)),
        *(["--cache-mb", str(options.cache_mb)] if options.cache_mb else []),
        *_root_args(options),
        *options.extra_args,
    ]
    try:
        with open(path + ".log", "wb") as log:
            # setsid --fork: the server's parent exits at once, so it is
            # reparented away from this process and leads its own session.
            starter = subprocess.run(["setsid", "--fork", *args], stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=log, pass_fds=(write_end,), cwd="/", check=False)
        os.close(write_end)
        write_end = -1
        if starter.returncode != 0:
            raise ServerUnavailable(f"could not start forkgym-server for shared socket '{path}' "
                                    f"(setsid exited {starter.returncode}); see {path}.log")
        # One byte once it listens; end of file if it exited first.
        ready = os.read(read_end, 1)
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)
    if ready != b"1":
        with open(path + ".log", errors="replace") as log:
            tail = log.read()[-2000:].strip()
        raise ServerUnavailable(f"forkgym-server for shared socket '{path}' exited before it was ready: "
                                f"{tail or 'no output'}")


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
