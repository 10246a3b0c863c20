"""Benchmark URIs and Benchmark objects, with CompilerGym's API.

A :class:`Benchmark` is named by its URI and compares equal to it (to another
Benchmark, or to the URI string), as in CompilerGym. Most benchmarks are only
a name: the server resolves it when an episode starts (``benchmark://`` of an
installed dataset, ``file://``, ``generator://``). A benchmark made with
:meth:`Benchmark.from_file` or :meth:`Benchmark.from_file_contents` also holds
its program's bytes, which an env hands the server through make_benchmark()'s
content-addressed cache when it resets to it.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode


class BenchmarkUri(str):
    """A benchmark URI: ``scheme://dataset/path?query#fragment``.

    A ``str`` (so code that prints, compares or slices URIs keeps working) with
    CompilerGym's parts: ``scheme``, ``dataset``, ``path`` (with its leading
    ``/``), ``params`` (the query as a dict of lists) and ``fragment``. With no
    scheme, ``benchmark://`` is assumed (``cbench-v1/qsort``).
    """

    scheme: str
    dataset: str
    path: str
    params: dict[str, list[str]]
    fragment: str

    def __new__(cls, text: str) -> BenchmarkUri:
        if isinstance(text, BenchmarkUri):
            return text
        text = str(text).strip()
        if "://" not in text:
            text = "benchmark://" + text
        self = super().__new__(cls, text)
        scheme, _, rest = text.partition("://")
        rest, _, fragment = rest.partition("#")
        rest, _, query = rest.partition("?")
        dataset, slash, path = rest.partition("/")
        self.scheme = scheme
        self.dataset = dataset
        self.path = slash + path
        self.params = parse_qs(query, keep_blank_values=True)
        self.fragment = fragment
        return self

    @classmethod
    def from_string(cls, text: str) -> BenchmarkUri:
        return cls(text)

    @classmethod
    def canonicalize(cls, text: str) -> str:
        return str(cls(text))

    @property
    def dataset_name(self) -> str:
        """``scheme://dataset``: the key a Datasets collection looks it up by."""
        return f"{self.scheme}://{self.dataset}"

    def with_params(self, **params: str) -> BenchmarkUri:
        """This URI with ``params`` added to its query."""
        query = {**self.params, **{k: [v] for k, v in params.items()}}
        base = f"{self.scheme}://{self.dataset}{self.path}"
        return BenchmarkUri(base + ("?" + urlencode(query, doseq=True) if query else "")
                            + ("#" + self.fragment if self.fragment else ""))

    def __reduce__(self) -> tuple[Any, ...]:
        return (BenchmarkUri, (str(self),))


def _without_param(uri: BenchmarkUri, key: str) -> BenchmarkUri:
    """``uri`` without its query parameter ``key``."""
    if key not in uri.params:
        return uri
    params = {k: v for k, v in uri.params.items() if k != key}
    base = f"{uri.scheme}://{uri.dataset}{uri.path}"
    return BenchmarkUri(base + ("?" + urlencode(params, doseq=True) if params else "")
                        + ("#" + uri.fragment if uri.fragment else ""))


@dataclass(frozen=True)
class BenchmarkSource:
    """A source file a benchmark was made from: its name and contents."""

    filename: str
    contents: bytes


ValidationCallback = Callable[[Any], Iterable[Any]]

# What in-memory content is, by its first bytes: bitcode (raw, or in its
# wrapper) is loaded as .bc; anything else is handed over as text IR (.ll),
# which the server parses or refuses with the parser's message.
_BITCODE_MAGIC = (b"BC\xc0\xde", b"\xde\xc0\x17\x0b")


class Benchmark:
    """A benchmark: a URI, and for in-memory benchmarks the program's bytes.

    Compares equal to its URI string, so ``env.benchmark == "benchmark://..."``
    works as it did in CompilerGym; hashes as its URI.
    """

    def __init__(self, uri: str, *, content: bytes | None = None, sources: Iterable[BenchmarkSource] | None = None,
                 run_config: Any = None, dynamic_config: Any = None) -> None:
        self.uri = BenchmarkUri(uri)
        self._content = bytes(content) if content is not None else None
        self._sources = list(sources) if sources is not None else None
        self._validation_callbacks: list[ValidationCallback] = []
        self._run_config: Any = None
        self._run_config_set = False  # set_run_config() was called (None then means "none")
        config = run_config if run_config is not None else dynamic_config
        if config is not None:
            self.set_run_config(config)

    # -------------------------------------------------------- content --

    @classmethod
    def from_file(cls, uri: str, path: str | os.PathLike[str]) -> Benchmark:
        """A benchmark named ``uri`` holding the program in ``path`` (bitcode or
        text IR), read now: changing the file later changes nothing."""
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as e:
            from forkgym.errors import BenchmarkNotFound

            raise BenchmarkNotFound(f"Benchmark.from_file({uri!r}, {str(path)!r}): cannot read it: "
                                    f"{e.strerror or e}") from None
        return cls.from_file_contents(uri, data)

    @classmethod
    def from_file_contents(cls, uri: str, data: bytes) -> Benchmark:
        """A benchmark named ``uri`` holding ``data`` (bitcode or text IR)."""
        if not data:
            from forkgym.errors import BenchmarkNotFound

            raise BenchmarkNotFound(f"Benchmark.from_file_contents({uri!r}): the program is empty; "
                                    "give LLVM bitcode or text IR")
        return cls(uri, content=data)

    @property
    def content(self) -> bytes | None:
        """The program's bytes, for a benchmark made from them; None for one the
        server resolves by name."""
        return self._content

    @property
    def content_suffix(self) -> str:
        """``.bc`` for bitcode content, ``.ll`` for anything else (text IR)."""
        return ".bc" if self._content is not None and self._content[:4] in _BITCODE_MAGIC else ".ll"

    @property
    def content_hash(self) -> str | None:
        """SHA-256 (hex) of the program's bytes, for a benchmark made from them
        (None otherwise; an episode's ``env.benchmark_hash`` is the server's hash
        of what it loaded, for any benchmark)."""
        return hashlib.sha256(self._content).hexdigest() if self._content is not None else None

    @property
    def sources(self) -> list[BenchmarkSource]:
        """The source files this benchmark is made from: the program's sources
        for source datasets, bundled programs and source files; none for bitcode
        and generated programs. Read from disk when first asked (the dataset must
        be installed)."""
        if self._sources is None:
            from forkgym.datasets.dataset import sources_of

            self._sources = list(sources_of(self.uri))
        return self._sources

    def write_sources_to_directory(self, directory: str | os.PathLike[str]) -> int:
        """Writes :attr:`sources` under ``directory`` (created if needed); returns how many."""
        directory = Path(directory)
        count = 0
        for source in self.sources:
            target = directory / source.filename
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.contents)
            count += 1
        return count

    # ---------------------------------------------------------- running --

    def set_run_config(self, config: Any = None, **keywords: Any) -> None:
        """How this benchmark's program is built and run: a
        :class:`forkgym.RunConfig`, or :func:`forkgym.make_benchmark`'s keywords
        (``build_cmd``, ``run_cmd``, ``args``, ``stdin``, ``inputs``, ``input_sets``,
        ``outputs``, ``pre_run_cmd``, ``post_run_cmd``, timeouts), input files
        read now. ``set_run_config(None)`` removes it (a dataset's own, if it has
        one, applies again).

        An episode on this benchmark carries it (forks too), and its state names it
        as ``?run=<digest>`` in the benchmark URI, kept in the benchmark cache, so
        the state replays with it. The URI of this object, its equality and hash
        stay those of its program."""
        from forkgym import run_config as rc

        if config is not None and keywords:
            raise TypeError("set_run_config() takes a RunConfig or keywords, not both")
        if keywords:
            unknown = sorted(set(keywords) - set(rc.RUN_KEYWORDS))
            if unknown:
                raise TypeError(f"set_run_config(): unknown keyword(s) {', '.join(unknown)}; "
                                f"the keywords are {', '.join(rc.RUN_KEYWORDS)}")
            config = rc.make_run_config(**keywords)
        elif config is not None and not isinstance(config, rc.RunConfig):
            from forkgym.errors import InvalidRequest

            raise InvalidRequest(f"a run configuration is a forkgym.RunConfig (forkgym.make_run_config(...)), not "
                                 f"{type(config).__name__}")
        if config is not None:
            rc.store(config)
        self._run_config = config
        self._run_config_set = True

    @property
    def run_config(self) -> Any:
        """This benchmark's :class:`forkgym.RunConfig`: the one set on it, else the one
        its URI names (``?run=<digest>``), else None (the server then attaches its
        dataset's, if the dataset has one)."""
        if self._run_config is None and not self._run_config_set:
            digest = self.uri.params.get("run")
            if digest:
                from forkgym import run_config as rc

                self._run_config = rc.load(digest[-1], str(self.uri))
        return self._run_config

    @run_config.setter
    def run_config(self, config: Any) -> None:
        self.set_run_config(config)

    # CompilerGym's name for it (a BenchmarkDynamicConfig there).
    dynamic_config = run_config

    @property
    def state_uri(self) -> str:
        """The URI an episode's state records: this benchmark's, with ``?run=<digest>``
        naming its run configuration when it has one set."""
        base = _without_param(self.uri, "run")
        config = self.run_config
        return str(base.with_params(run=config.digest) if config is not None else base)

    # ----------------------------------------------------- validation --

    def add_validation_callback(self, callback: ValidationCallback) -> None:
        """Adds ``callback(env) -> iterable of errors``, run by :meth:`validate`."""
        self._validation_callbacks.append(callback)

    def validation_callbacks(self) -> list[ValidationCallback]:
        return list(self._validation_callbacks)

    def is_validatable(self) -> bool:
        return bool(self._validation_callbacks)

    def ivalidate(self, env: Any) -> Iterable[Any]:
        for callback in self._validation_callbacks:
            yield from callback(env)

    def validate(self, env: Any) -> list[Any]:
        """Every error the validation callbacks report for ``env``'s episode."""
        return list(self.ivalidate(env))

    # ----------------------------------------------------------- names --

    def close(self) -> None:
        """Nothing to release (kept for CompilerGym code that calls it): what
        make_benchmark() made stays in the benchmark cache, where states naming it
        find it."""

    def __str__(self) -> str:
        return str(self.uri)

    def __repr__(self) -> str:
        return f"Benchmark({str(self.uri)!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Benchmark):
            return str(self.uri) == str(other.uri)
        if isinstance(other, str):
            return str(self.uri) == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(str(self.uri))

    def __lt__(self, other: object) -> bool:
        return str(self) < str(other)
