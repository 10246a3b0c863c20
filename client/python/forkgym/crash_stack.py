"""A crashed worker's stack, symbolised into a signature that names the crash.

The worker's crash reporter records the crashing stack as (module, offset)
pairs: the module's path in the worker (the server's executable, which LLVM
is linked into, or a shared library such as libc) and a file virtual address
in it. This module turns them into function names with ``llvm-symbolizer``
(the server's LLVM's, found beside ``opt``) and into a signature that two
crashes at the same place share whatever the addresses:

- frames in the C library and the C++ runtime (the signal trampoline,
  ``abort``, ``raise``) are dropped: they say how the worker died, not where;
- unnamed frames (an address no symbol covers) become ``?`` so the depth
  between named frames still counts; the server keeps its symbol table, so
  LLVM's internal functions (anonymous namespaces, static functions) are named;
- the signature is the innermost frames up to :data:`SIGNATURE_NAMED_FRAMES`
  named ones, joined by ``" < "`` (innermost first), with each name's
  parameter list dropped.

Symbolisation runs in the client, never in the worker; results are cached per
(module, offset) for the process, so a fuzzer that sees one crash a thousand
times symbolises it once. A worker may write any path: only absolute paths of
existing regular ELF files are handed to the symboliser.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

SIGNATURE_NAMED_FRAMES = 3
# Libraries whose frames say how the worker died rather than where.
_RUNTIME_LIBRARIES = re.compile(r"/(libc|libstdc\+\+|libgcc_s|libpthread|ld-linux[^/]*)\.so[^/]*$")
_SYMBOLIZER_NAMES = ("llvm-symbolizer-19", "llvm-symbolizer")


@dataclass(frozen=True)
class Frame:
    """One symbolised frame: the module, the offset and the function ("" if unnamed)."""

    module: str
    offset: int
    function: str

    def __str__(self) -> str:
        return f"{self.function or '??'} ({os.path.basename(self.module)}+{self.offset:#x})"


_cache: dict[tuple[str, int], str] = {}
_lock = threading.Lock()


def symbolizer() -> str | None:
    """The llvm-symbolizer used (FORKGYM_SYMBOLIZER, else LLVM 19's), or None."""
    configured = os.environ.get("FORKGYM_SYMBOLIZER")
    if configured:
        return configured
    for name in _SYMBOLIZER_NAMES:
        found = shutil.which(name) or (f"/usr/lib/llvm-19/bin/{name}" if os.access(f"/usr/lib/llvm-19/bin/{name}",
                                                                                 os.X_OK) else None)
        if found:
            return found
    return None


def _symbolisable(module: str) -> bool:
    if not os.path.isabs(module) or os.path.normpath(module) != module or not os.path.isfile(module):
        return False
    try:
        with open(module, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


def _lookup_offsets(module: str, offsets: Sequence[int]) -> list[str]:
    tool = symbolizer()
    if tool is None or not _symbolisable(module):
        return [""] * len(offsets)
    try:
        run = subprocess.run([tool, f"--obj={module}", "--output-style=JSON", "--no-inlines",
                              *(hex(o) for o in offsets)], capture_output=True, text=True, timeout=120, check=False)
        answers = json.loads(run.stdout) if run.returncode == 0 else []
    except (OSError, subprocess.TimeoutExpired, json.JSONDecodeError):
        answers = []
    names = []
    for answer in answers[: len(offsets)]:
        symbols = answer.get("Symbol") or [{}]
        names.append(str(symbols[0].get("FunctionName", "")))
    return names + [""] * (len(offsets) - len(names))


def symbolize(stack: Iterable[tuple[str, int, bool]]) -> list[Frame]:
    """Frames with function names for a raw stack ((module, offset, exact) per
    frame, innermost first, as ``info["stack"]`` and ``ForkgymError.stack`` hold it)."""
    raw = [(str(m), int(o), bool(e)) for m, o, e in stack]
    # A return address is the instruction after the call: look up the call
    # itself, or a call to a function that never returns names its neighbour.
    keys = [(m, o if e or o == 0 else o - 1) for m, o, e in raw]
    with _lock:
        missing: dict[str, list[int]] = {}
        for module, offset in keys:
            if (module, offset) not in _cache:
                missing.setdefault(module, []).append(offset)
    for module, offsets in missing.items():
        offsets = sorted(set(offsets))
        names = _lookup_offsets(module, offsets)
        with _lock:
            for offset, name in zip(offsets, names):
                _cache[(module, offset)] = name
    with _lock:
        return [Frame(m, o, _cache.get(k, "")) for (m, o, _), k in zip(raw, keys)]


def _short(function: str) -> str:
    """A function's name without its parameter list (templates kept)."""
    depth = 0
    for i in range(len(function) - 1, -1, -1):
        c = function[i]
        if c == ")":
            depth += 1
        elif c == "(":
            depth -= 1
            if depth == 0:
                return function[:i].strip()
    return function.strip()


def signature(stack: Iterable[tuple[str, int, bool]] | Sequence[Frame],
              named_frames: int = SIGNATURE_NAMED_FRAMES) -> str:
    """The crash's stable signature ("" when no frame could be named): see the module docstring."""
    stack = list(stack)
    frames = stack if stack and isinstance(stack[0], Frame) else symbolize(stack)  # type: ignore[arg-type]
    parts: list[str] = []
    named = 0
    for frame in frames:
        if _RUNTIME_LIBRARIES.search(frame.module):
            continue
        if not frame.function:
            parts.append("?")
            continue
        parts.append(_short(frame.function))
        named += 1
        if named == named_frames:
            break
    if not named:
        return ""
    while parts and parts[-1] == "?":
        parts.pop()
    return " < ".join(parts)
