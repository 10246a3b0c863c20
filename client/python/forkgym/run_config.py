"""Run configurations: how a benchmark's program is built and run.

CompilerGym's ``BenchmarkDynamicConfig`` as data (the server's
``passes/run_config.h`` has the semantics and limits):

* ``build_cmd``: the link command, ``$CC`` the server's clang used as the
  linker and ``$IN`` the object file of the episode's module (default
  ``["$CC", "$IN"]``); it writes ``build_outfile`` (default ``a.out``) within
  ``build_timeout`` seconds (default 60).
* ``run_cmd``: the program's argument list (default ``["./a.out"]``), run in
  a private directory holding the input files, for ``run_timeout`` seconds
  (default 300).
* input sets (CompilerGym's ``?dataset=N``, a cBench validator's input
  number): each adds its own arguments, standard input and files. Without
  ``input_sets`` there is one set, made of ``args``, ``stdin`` and ``inputs``.
* ``outputs``: files the program writes in its directory, compared by
  :meth:`forkgym.CompilerEnv.validate`.
* ``pre_run_cmd`` / ``post_run_cmd``: commands run in the run directory
  before / after the program. They may execute only what the program may
  (the freshly built binary): there is no shell.

Contents, not paths: :func:`make_run_config` reads every input file when it
is called, so nothing on disk matters afterwards, and a configuration is a
value: it hashes to a ``digest`` by its content, and an episode's state
records it as ``?run=<digest>`` in the benchmark URI (the configuration kept
in the benchmark cache under that digest; see :func:`store`, :func:`load`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from forkgym.errors import BenchmarkNotFound, InvalidRequest

DEFAULT_BUILD_CMD = ("$CC", "$IN")
DEFAULT_BUILD_OUTFILE = "a.out"
DEFAULT_BUILD_TIMEOUT = 60
DEFAULT_RUN_CMD = ("./a.out",)
DEFAULT_RUN_TIMEOUT = 300
DEFAULT_COMMAND_TIMEOUT = 30
# The URI query key naming a state's run configuration by digest.
URI_KEY = "run"
_FORMAT = "forkgym-run-config-1"


def _plain_name(name: str, what: str) -> str:
    """A file name the runner writes or reads in the run directory: no '/', not '.'/'..'."""
    if not isinstance(name, str) or not name or "/" in name or name in (".", "..") or "\0" in name:
        raise InvalidRequest(f"{what} {name!r} is not a plain file name: the runner's files live in one "
                             "directory, so give names without '/' (e.g. 'input.txt')")
    return name


def _argv(value: Any, what: str) -> tuple[str, ...]:
    """An argument list from a list of strings (a single string is refused:
    commands run without a shell, so there is nothing to split it)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise InvalidRequest(f"{what} must be a list of arguments, e.g. ['./a.out', '-v'], not {value!r}: "
                             "commands run without a shell, so a string is not split")
    argv = tuple(os.fspath(a) if isinstance(a, os.PathLike) else a for a in value)
    for a in argv:
        if not isinstance(a, str):
            raise InvalidRequest(f"{what}: every argument must be a string, got {a!r}")
    return argv


def _timeout(value: Any, what: str) -> int:
    try:
        seconds = int(value)
    except (TypeError, ValueError):
        raise InvalidRequest(f"{what} must be a whole number of seconds, got {value!r}") from None
    if seconds <= 0 or seconds != value:
        raise InvalidRequest(f"{what} must be a positive whole number of seconds, got {value!r}")
    return seconds


def _bytes(value: Any, what: str) -> bytes:
    if value is None:
        return b""
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise InvalidRequest(f"{what} must be bytes or str, got {type(value).__name__}")


@dataclass(frozen=True)
class RunFile:
    """A file written into the run directory before the program runs."""

    name: str
    content: bytes

    def __repr__(self) -> str:
        return f"RunFile({self.name!r}, <{len(self.content)} bytes>)"


def read_files(inputs: Any, what: str = "inputs") -> tuple[RunFile, ...]:
    """Files read *now*, from: paths (named by their base name), ``(name, path or
    bytes)`` pairs, a ``{name: path or bytes}`` mapping, or :class:`RunFile`\\ s."""
    if inputs is None:
        return ()
    if isinstance(inputs, (str, os.PathLike, bytes)):
        inputs = [inputs]
    items = list(inputs.items()) if isinstance(inputs, Mapping) else list(inputs)
    files: list[RunFile] = []
    for item in items:
        if isinstance(item, RunFile):
            files.append(RunFile(_plain_name(item.name, what[:-1] if what.endswith("s") else what), item.content))
            continue
        if isinstance(item, tuple) and len(item) == 2:
            name, source = item
        elif isinstance(item, (str, os.PathLike)):
            name, source = Path(item).name, Path(item)
        else:
            raise InvalidRequest(f"{what}: give paths, (name, path or bytes) pairs or a {{name: path or bytes}} "
                                 f"mapping, not {item!r}")
        name = _plain_name(os.fspath(name), f"{what[:-1] if what.endswith('s') else what} name")
        if isinstance(source, (bytes, bytearray, memoryview)):
            content = bytes(source)
        else:
            path = Path(source)
            if path.is_dir():
                raise InvalidRequest(f"{what}: {path} is a directory; give its files one by one (the run "
                                     "directory is flat)")
            try:
                content = path.read_bytes()
            except OSError as e:
                raise BenchmarkNotFound(f"{what}: cannot read {path}: {e.strerror or e}") from None
        files.append(RunFile(name, content))
    names = [f.name for f in files]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidRequest(f"{what}: the name{'s' if len(duplicates) > 1 else ''} {', '.join(duplicates)} "
                             "appear more than once; the run directory holds one file per name")
    return tuple(files)


@dataclass(frozen=True)
class InputSet:
    """One set of inputs: arguments appended to ``run_cmd``, standard input, files."""

    name: str = ""
    args: tuple[str, ...] = ()
    stdin: bytes = b""
    files: tuple[RunFile, ...] = ()

    @classmethod
    def make(cls, value: Any, index: int) -> InputSet:
        """From an InputSet or a mapping with keys ``name``, ``args``, ``stdin``, ``inputs``."""
        if isinstance(value, InputSet):
            return value
        if not isinstance(value, Mapping):
            raise InvalidRequest(f"input_sets[{index}] must be a dict (keys name, args, stdin, inputs) or an "
                                 f"InputSet, not {value!r}")
        unknown = sorted(set(value) - {"name", "args", "stdin", "inputs"})
        if unknown:
            raise InvalidRequest(f"input_sets[{index}]: unknown key(s) {', '.join(unknown)}; an input set has "
                                 "name, args, stdin and inputs")
        return cls(
            name=str(value.get("name", "")),
            args=_argv(value.get("args", ()), f"input_sets[{index}]['args']"),
            stdin=_bytes(value.get("stdin"), f"input_sets[{index}]['stdin']"),
            files=read_files(value.get("inputs"), f"input_sets[{index}]['inputs']"),
        )


@dataclass(frozen=True)
class RunCommand:
    """A command run in the run directory before or after the program (no shell)."""

    argv: tuple[str, ...]
    timeout: int = DEFAULT_COMMAND_TIMEOUT


def _commands(value: Any, what: str) -> tuple[RunCommand, ...]:
    """One command (a list of strings) or several (a list of lists / RunCommands)."""
    if value is None:
        return ()
    if isinstance(value, RunCommand):
        return (value,)
    items = list(value)
    if items and all(isinstance(a, str) for a in items):
        items = [items]
    return tuple(c if isinstance(c, RunCommand) else RunCommand(_argv(c, what)) for c in items)


@dataclass(frozen=True)
class RunConfig:
    """How a benchmark's program is built and run (see the module's docstring)."""

    build_cmd: tuple[str, ...] = DEFAULT_BUILD_CMD
    build_outfile: str = DEFAULT_BUILD_OUTFILE
    build_timeout: int = DEFAULT_BUILD_TIMEOUT
    run_cmd: tuple[str, ...] = DEFAULT_RUN_CMD
    run_timeout: int = DEFAULT_RUN_TIMEOUT
    input_sets: tuple[InputSet, ...] = (InputSet(),)
    outputs: tuple[str, ...] = ()
    pre_run_cmd: tuple[RunCommand, ...] = ()
    post_run_cmd: tuple[RunCommand, ...] = ()
    _digest: str = field(default="", init=False, repr=False, compare=False)

    # ------------------------------------------------------ identity --

    def to_json(self) -> str:
        """Canonical JSON (file contents in base64): equal configurations, equal text."""
        def files(fs: tuple[RunFile, ...]) -> list[list[str]]:
            return [[f.name, base64.b64encode(f.content).decode()] for f in fs]

        def commands(cs: tuple[RunCommand, ...]) -> list[dict[str, Any]]:
            return [{"argv": list(c.argv), "timeout": c.timeout} for c in cs]

        data = {
            "format": _FORMAT,
            "build_cmd": list(self.build_cmd),
            "build_outfile": self.build_outfile,
            "build_timeout": self.build_timeout,
            "run_cmd": list(self.run_cmd),
            "run_timeout": self.run_timeout,
            "input_sets": [{"name": s.name, "args": list(s.args), "stdin": base64.b64encode(s.stdin).decode(),
                            "files": files(s.files)} for s in self.input_sets],
            "outputs": list(self.outputs),
            "pre_run_cmd": commands(self.pre_run_cmd),
            "post_run_cmd": commands(self.post_run_cmd),
        }
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> RunConfig:
        try:
            data = json.loads(text)
            if data.get("format") != _FORMAT:
                raise ValueError(f"format {data.get('format')!r}, expected {_FORMAT!r}")

            def files(fs: list[list[str]]) -> tuple[RunFile, ...]:
                return tuple(RunFile(n, base64.b64decode(c)) for n, c in fs)

            def commands(cs: list[dict[str, Any]]) -> tuple[RunCommand, ...]:
                return tuple(RunCommand(tuple(c["argv"]), int(c["timeout"])) for c in cs)

            return cls(
                build_cmd=tuple(data["build_cmd"]), build_outfile=data["build_outfile"],
                build_timeout=int(data["build_timeout"]), run_cmd=tuple(data["run_cmd"]),
                run_timeout=int(data["run_timeout"]),
                input_sets=tuple(InputSet(s["name"], tuple(s["args"]), base64.b64decode(s["stdin"]),
                                          files(s["files"])) for s in data["input_sets"]),
                outputs=tuple(data["outputs"]), pre_run_cmd=commands(data["pre_run_cmd"]),
                post_run_cmd=commands(data["post_run_cmd"]),
            )
        except (ValueError, KeyError, TypeError) as e:
            raise InvalidRequest(f"not a forkgym run configuration: {e}") from None

    @property
    def digest(self) -> str:
        """The first 32 hex digits of the SHA-256 of :meth:`to_json`: its name in URIs and the cache."""
        if not self._digest:
            object.__setattr__(self, "_digest", hashlib.sha256(self.to_json().encode()).hexdigest()[:32])
        return self._digest

    def __repr__(self) -> str:
        sets = len(self.input_sets)
        return (f"RunConfig(build_cmd={list(self.build_cmd)}, run_cmd={list(self.run_cmd)}, "
                f"{sets} input set{'s' if sets != 1 else ''}, outputs={list(self.outputs)}, digest={self.digest})")

    # ----------------------------------------------------- the wire --

    def to_native(self) -> Any:
        """The extension's ``RunConfig`` (protocol.capnp's), as ``NewSession`` carries it."""
        from forkgym import _forkgym

        native = _forkgym.RunConfig()
        native.build_command = list(self.build_cmd)
        native.build_outfile = self.build_outfile
        native.build_timeout_seconds = self.build_timeout
        native.run_command = list(self.run_cmd)
        native.run_timeout_seconds = self.run_timeout
        native.input_sets = [_native_input_set(s) for s in self.input_sets]
        native.output_files = list(self.outputs)
        native.pre_run_commands = [_native_command(c) for c in self.pre_run_cmd]
        native.post_run_commands = [_native_command(c) for c in self.post_run_cmd]
        native.origin = "client"
        return native


def _native_file(f: RunFile) -> Any:
    from forkgym import _forkgym

    native = _forkgym.RunFile()
    native.name = f.name
    native.content = f.content
    return native


def _native_input_set(s: InputSet) -> Any:
    from forkgym import _forkgym

    native = _forkgym.RunInputSet()
    native.name = s.name
    native.arguments = list(s.args)
    native.stdin = s.stdin
    native.files = [_native_file(f) for f in s.files]
    return native


def _native_command(c: RunCommand) -> Any:
    from forkgym import _forkgym

    native = _forkgym.RunCommand()
    native.argv = list(c.argv)
    native.timeout_seconds = c.timeout
    return native


# The keywords make_benchmark() and Benchmark.set_run_config() take.
RUN_KEYWORDS = ("build_cmd", "build_outfile", "build_timeout", "run_cmd", "run_timeout", "args", "stdin", "inputs",
                "input_sets", "outputs", "pre_run_cmd", "post_run_cmd")


def make_run_config(
    *,
    build_cmd: Sequence[str] | None = None,
    build_outfile: str | None = None,
    build_timeout: int | None = None,
    run_cmd: Sequence[str] | None = None,
    run_timeout: int | None = None,
    args: Sequence[str] | None = None,
    stdin: bytes | str | None = None,
    inputs: Any = None,
    input_sets: Sequence[Mapping[str, Any] | InputSet] | None = None,
    outputs: Sequence[str] | None = None,
    pre_run_cmd: Any = None,
    post_run_cmd: Any = None,
) -> RunConfig:
    """A :class:`RunConfig` from keywords, every input file read now.

    ``args``, ``stdin`` and ``inputs`` make the single input set; with
    ``input_sets`` (a list of ``{"name", "args", "stdin", "inputs"}``) the
    top-level ``inputs`` are given to every set, and ``args``/``stdin`` must
    not be given (say them per set).
    """
    common = read_files(inputs, "inputs")
    if input_sets is None:
        sets: tuple[InputSet, ...] = (InputSet(args=_argv(args or (), "args"), stdin=_bytes(stdin, "stdin"),
                                               files=common),)
    else:
        if args is not None or stdin is not None:
            raise InvalidRequest("give args and stdin inside each of input_sets (each set has its own), or drop "
                                 "input_sets for a single set")
        if isinstance(input_sets, (str, bytes, Mapping)) or not list(input_sets):
            raise InvalidRequest("input_sets must be a non-empty list of dicts (keys name, args, stdin, inputs)")
        sets = tuple(InputSet.make(s, i) for i, s in enumerate(input_sets))
        if common:
            merged = []
            for i, s in enumerate(sets):
                clash = sorted({f.name for f in s.files} & {f.name for f in common})
                if clash:
                    raise InvalidRequest(f"input_sets[{i}] and inputs both give {', '.join(clash)}")
                merged.append(replace(s, files=common + s.files))
            sets = tuple(merged)
    build = _argv(build_cmd, "build_cmd") if build_cmd is not None else DEFAULT_BUILD_CMD
    if build and "$IN" not in build:
        raise InvalidRequest(f"build_cmd {list(build)} never names $IN, the object file of the episode's module: "
                             "the program built would not be the episode's (e.g. ['$CC', '$IN', '-lm'])")
    run = _argv(run_cmd, "run_cmd") if run_cmd is not None else DEFAULT_RUN_CMD
    if not run:
        raise InvalidRequest("run_cmd is empty: give the program's argument list, e.g. ['./a.out']")
    return RunConfig(
        build_cmd=build,
        build_outfile=_plain_name(build_outfile, "build_outfile") if build_outfile is not None
        else DEFAULT_BUILD_OUTFILE,
        build_timeout=_timeout(build_timeout, "build_timeout") if build_timeout is not None else DEFAULT_BUILD_TIMEOUT,
        run_cmd=run,
        run_timeout=_timeout(run_timeout, "run_timeout") if run_timeout is not None else DEFAULT_RUN_TIMEOUT,
        input_sets=sets,
        outputs=tuple(_plain_name(o, "output") for o in (outputs or ())),
        pre_run_cmd=_commands(pre_run_cmd, "pre_run_cmd"),
        post_run_cmd=_commands(post_run_cmd, "post_run_cmd"),
    )


def split_run_keywords(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Removes and returns the run keywords of ``kwargs`` that are set."""
    return {k: kwargs.pop(k) for k in RUN_KEYWORDS if k in kwargs and kwargs[k] is not None}


# ------------------------------------------------------------ the cache --


def _path(digest: str) -> Path:
    from forkgym.benchmarks import benchmark_cache_dir

    return benchmark_cache_dir() / f"run-{digest}.json"


def store(config: RunConfig) -> str:
    """Keeps ``config`` in the benchmark cache under its digest (written once,
    atomically) and returns the digest; a state naming it replays for as long
    as the cache keeps it."""
    from forkgym.benchmarks import store_file

    store_file(config.to_json().encode(), _path(config.digest))
    return config.digest


def load(digest: str, uri: str = "") -> RunConfig:
    """The configuration named ``digest`` (a URI's ``?run=``), from the benchmark cache."""
    if not digest or any(c not in "0123456789abcdef" for c in digest):
        raise BenchmarkNotFound(f"{uri or 'a benchmark URI'}: ?{URI_KEY}={digest!r} is not a run configuration's "
                                "digest (hex digits)")
    path = _path(digest)
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        raise BenchmarkNotFound(f"{uri or 'a benchmark URI'} names run configuration {digest}, which is not in "
                                f"this user's benchmark cache ({path.parent}): it was made by make_benchmark() or "
                                "Benchmark.set_run_config() elsewhere; make it again here") from None
    config = RunConfig.from_json(text)
    if config.digest != digest:
        raise BenchmarkNotFound(f"{path}: its content does not match its name {digest}; delete the file and "
                                "make the run configuration again")
    return config
