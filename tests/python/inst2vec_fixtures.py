"""Synthetic inst2vec data for tests: wheels laid out as CompilerGym 0.2.5's
(the two pickles under ``compiler_gym-0.2.5.data/purelib/compiler_gym/
third_party/inst2vec/``), with their own SHA-256, so every path of
forkgym.datasets.inst2vec runs without the real data or the network.

Row ``i`` of a synthetic table is ``i + j / 1000`` in column ``j``: a lookup's
result says which statement it found.
"""

from __future__ import annotations

import hashlib
import io
import pickle
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

MEMBERS = "compiler_gym-0.2.5.data/purelib/compiler_gym/third_party/inst2vec/"
WHEEL = "compiler_gym-0.2.5-py3-none-any.whl"
METADATA = "Metadata-Version: 2.1\nName: compiler_gym\nVersion: 0.2.5\n"
WHEEL_INFO = "Wheel-Version: 1.0\nGenerator: forkgym-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"


def table(rows: int) -> np.ndarray:
    return (np.arange(rows, dtype=np.float32)[:, None] + np.arange(200, dtype=np.float32)[None, :] / 1000)


def vocabulary(statements: Sequence[str]) -> dict[str, int]:
    """``statements`` numbered in order, then ``!UNK`` last (as the real one has it)."""
    numbered = {s: i for i, s in enumerate(dict.fromkeys(statements))}
    numbered["!UNK"] = len(numbered)
    return numbered


def make_wheel(directory: Path, dictionary: object, embeddings: object, *, raw_dictionary: bytes | None = None,
               name: str = WHEEL) -> tuple[Path, str]:
    """A wheel in ``directory`` holding the two pickles; its path and SHA-256."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as wheel:
        wheel.writestr(MEMBERS + "dictionary.pickle",
                       raw_dictionary if raw_dictionary is not None else pickle.dumps(dictionary))
        wheel.writestr(MEMBERS + "embeddings.pickle", pickle.dumps(embeddings))
        wheel.writestr("compiler_gym-0.2.5.dist-info/METADATA", METADATA)
        wheel.writestr("compiler_gym-0.2.5.dist-info/WHEEL", WHEEL_INFO)
        wheel.writestr("compiler_gym-0.2.5.dist-info/RECORD", "")
    data = buffer.getvalue()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def synthetic_wheel(directory: Path, statements: Sequence[str]) -> tuple[Path, str]:
    numbered = vocabulary(statements)
    return make_wheel(directory, numbered, table(len(numbered)))
