"""``LlvmEnv``: LLVM phase ordering, the ``llvm`` backend's env.

A thin subclass of :class:`forkgym.envs.CompilerEnv`: the spaces come from
the backend's description like any backend's; this adds what is LLVM's own:
the ``Commandline`` action space's runnable ``opt -passes=...`` form,
``LexedIrTuple``'s named tuple (:class:`LexedToken`), the inst2vec lookups
(``Inst2vecEmbeddingIndices``, ``Inst2vec``), and the IR helpers (``ir``, ``ir_sha1``, ``bitcode``,
``write_ir``, ``write_bitcode``, ``make_benchmark``).
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy as np
from gymnasium import spaces

from forkgym.benchmarks import DEFAULT_BENCHMARK, Benchmark, make_benchmark, make_benchmark_from_command_line
from forkgym.datasets import inst2vec
from forkgym.description import ActionRow, BackendDescription
from forkgym.envs import CompilerEnv
from forkgym.errors import InvalidAction
from forkgym.spaces import ActionSpace, NumberArray, ObservationSpaceSpec, RewardSpaceSpec, TextList
from forkgym.spaces import Sequence as SequenceSpace

class LexedToken(NamedTuple):
    """One token of the ``LexedIrTuple`` observation (CompilerGym's fields):
    LLVM's IR lexer's token kind as a number (``ID``) and by name
    (``kind``, e.g. ``"kw_define"``), the kind of value it carries
    (``category``: marker, keyword, uintval, strval, type, apfloat, apsint),
    and that value as text (``""`` for keywords)."""

    ID: int
    kind: str
    category: str
    value: str


# What to_string() passes to opt besides the actions; from_string() skips it.
_OPT_OPTIONS = "-preserve-bc-uselistorder=false"


class LlvmActionSpace(ActionSpace):
    """CompilerGym's ``Commandline`` space: ``Discrete(124)`` over the LLVM flags.

    Indices and names match CompilerGym. Flags with no LLVM 19 equivalent stay
    in the space (so indices still line up) and are no-ops; their reason is
    in :attr:`unavailable`. Each action runs its pass-pipeline text, so an
    episode replays with the server's ``opt -passes=...`` (:meth:`to_string`).
    """

    def __init__(
        self, actions: Sequence[ActionRow], name: str = "Commandline", seed: Any = None, *, opt: str = "opt"
    ) -> None:
        super().__init__(actions, name, seed=seed)  # its own command line form below
        # The server's own opt by absolute path (its hello says which): another
        # LLVM's `opt` on PATH may misread LLVM 19 bitcode.
        self.opt = opt
        self.pipelines: list[str] = [a.replay for a in actions]
        self._by_pipeline: dict[str, int] = {}
        for i, pipeline in enumerate(self.pipelines):
            if pipeline and i not in self.unavailable:
                self._by_pipeline.setdefault(pipeline, i)
        self._max_pieces = max((len(_split_pipeline(p)) for p in self._by_pipeline), default=1)

    def to_string(self, actions: Iterable[int]) -> str:
        """A runnable command line of the server's ``opt`` replaying ``actions``
        (unavailable ones are no-ops), e.g.
        ``/usr/lib/llvm-19/bin/opt -passes='mem2reg,gvn' input.bc -o output.bc``."""
        pipelines = [self.pipelines[self.check(a)] for a in actions]
        passes = ",".join(p for p in pipelines if p)
        # Without use-list order, as IrSha1 hashes it: the output's sha1sum is
        # the episode's IrSha1.
        opt = f"{shlex.quote(self.opt)} {_OPT_OPTIONS}"
        if not passes:
            return f"{opt} input.bc -o output.bc"
        return f"{shlex.quote(self.opt)} -passes='{passes}' {_OPT_OPTIONS} input.bc -o output.bc"

    def to_flags(self, actions: Iterable[int]) -> str:
        """CompilerGym's form: ``opt -mem2reg -gvn input.bc -o output.bc`` (with the server's opt)."""
        flags = " ".join(self.flags[self.check(a)] for a in actions)
        opt = shlex.quote(self.opt)
        return f"{opt} {flags} input.bc -o output.bc" if flags else f"{opt} input.bc -o output.bc"

    def from_string(self, commandline: str) -> list[int]:
        """Actions from either :meth:`to_string`'s ``-passes=`` form or CompilerGym's flag form."""
        words = shlex.split(commandline)
        if words and os.path.basename(words[0]).startswith("opt"):
            words = words[1:]
        actions: list[int] = []
        for i, word in enumerate(words):
            if word.startswith("-passes=") or word.startswith("--passes="):
                actions.extend(self._parse_pipeline(word.split("=", 1)[1]))
            elif word == "-o" or (i > 0 and words[i - 1] == "-o") or word == _OPT_OPTIONS:
                continue
            elif word.startswith("-"):
                actions.append(self.index(word))
            # positional words are the input and output files
        return actions

    def _parse_pipeline(self, text: str) -> list[int]:
        pieces = _split_pipeline(text)
        actions: list[int] = []
        i = 0
        while i < len(pieces):
            for width in range(min(self._max_pieces, len(pieces) - i), 0, -1):
                index = self._by_pipeline.get(",".join(pieces[i : i + width]))
                if index is not None:
                    actions.append(index)
                    i += width
                    break
            else:
                raise InvalidAction(f"'{pieces[i]}' in -passes= is not the pipeline of any action")
        return actions


def _split_pipeline(text: str) -> list[str]:
    """Splits pass-pipeline text at top-level commas (nesting by () and <>)."""
    pieces, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "(<":
            depth += 1
        elif ch in ")>":
            depth -= 1
        elif ch == "," and depth == 0:
            pieces.append(text[start:i])
            start = i + 1
    if text[start:]:
        pieces.append(text[start:])
    return [p.strip() for p in pieces if p.strip()]


# ------------------------------------------- CompilerGym's derived views --


def _sha1_view(source: ObservationSpaceSpec) -> dict[str, ObservationSpaceSpec]:
    # A hex digest: a tighter space than the description's text of length 40.
    space = spaces.Text(min_length=40, max_length=40, charset="0123456789abcdef")
    return {"IrSha1": ObservationSpaceSpec("IrSha1", space, source.id, deterministic=source.deterministic,
                                           platform_dependent=source.platform_dependent, default_value="",
                                           description=source.description)}


def _inst2vec_views(source: ObservationSpaceSpec) -> dict[str, ObservationSpaceSpec]:
    """The worker's statements as a list, and looked up in the inst2vec
    vocabulary (data the client obtains on first use: forkgym.datasets.inst2vec)."""
    parse = source.translate  # the JSON list the worker sends

    def indices(value: Any) -> list[int]:
        return inst2vec.vocabulary().encode(parse(value))

    def embeddings(value: Any) -> np.ndarray:
        vocabulary = inst2vec.vocabulary()
        return vocabulary.embed(vocabulary.encode(parse(value)))

    def prepare() -> None:
        inst2vec.vocabulary()

    common = {"deterministic": source.deterministic, "platform_dependent": source.platform_dependent}
    return {
        "Inst2vecPreprocessedText": ObservationSpaceSpec(
            "Inst2vecPreprocessedText", TextList(), source.id, translate=parse, default_value=[],
            description=source.description, **common),
        "Inst2vecEmbeddingIndices": ObservationSpaceSpec(
            "Inst2vecEmbeddingIndices", SequenceSpace("Inst2vecEmbeddingIndices", dtype=int), source.id,
            translate=indices, default_value=[], prepare=prepare,
            description="each Inst2vecPreprocessedText statement's index in the inst2vec vocabulary (!UNK's "
                        "for a statement it lacks), looked up in the client", **common),
        "Inst2vec": ObservationSpaceSpec(
            "Inst2vec", NumberArray(np.float32, -np.inf, np.inf, columns=inst2vec.DIMENSIONS), source.id,
            translate=embeddings, default_value=np.zeros((0, inst2vec.DIMENSIONS), dtype=np.float32),
            prepare=prepare, description="float32[N, 200]: each statement's inst2vec embedding, looked up in the "
                                         "client", **common),
    }


# Described observation -> the views CompilerGym computed from it in Python.
DERIVED_OBSERVATIONS = {
    "IrSha1": _sha1_view,
    "Inst2vecPreprocessedText": _inst2vec_views,
}

# (cost observation, its -Oz baseline) by reward family, for validation's size summary.
_COSTS = {
    "IrInstructionCount": ("IrInstructionCount", "IrInstructionCountOz"),
    "ObjectTextSize": ("ObjectTextSizeBytes", "ObjectTextSizeOz"),
}


class LlvmEnv(CompilerEnv):
    """LLVM phase ordering: choose the next optimisation pass for a module.

    Arguments as :class:`CompilerEnv`'s; the default benchmark is
    ``benchmark://forkgym-v0/crc32``.
    """

    backend = "llvm"
    state_hash_observation = "BitcodeSha1"
    record_types = MappingProxyType({"LexedIrTuple": LexedToken})
    default_benchmark = DEFAULT_BENCHMARK

    @classmethod
    def make_action_space(cls, description: BackendDescription) -> ActionSpace:
        return LlvmActionSpace(description.actions, description.action_space_name,
                               opt=description.property("optPath") or "opt")

    @classmethod
    def derived_observations(
        cls, description: BackendDescription, observations: dict[str, ObservationSpaceSpec]
    ) -> dict[str, ObservationSpaceSpec]:
        derived: dict[str, ObservationSpaceSpec] = {}
        for name, views in DERIVED_OBSERVATIONS.items():
            if name in observations:
                derived.update(views(observations[name]))
        return derived

    @classmethod
    def validation_observations(cls, reward: RewardSpaceSpec | None) -> tuple[str | None, str | None, str | None]:
        for prefix, (cost, baseline) in _COSTS.items():
            if reward is not None and reward.name.startswith(prefix):
                return "IrSha1", cost, baseline
        return ("IrSha1", *_COSTS["IrInstructionCount"])

    def make_benchmark(self, sources: Any = None, /, **keywords: Any) -> Benchmark:
        """See :func:`forkgym.make_benchmark` (sources are compiled by this env's server;
        the keywords of a run configuration make it runnable)."""
        return make_benchmark(sources, server=self._server, **keywords)

    def make_benchmark_from_command_line(self, command_line: Any, cwd: Any = None, **run: Any) -> Benchmark:
        """See :func:`forkgym.make_benchmark_from_command_line` (compiled by this env's server)."""
        return make_benchmark_from_command_line(command_line, cwd=cwd, server=self._server, **run)

    @property
    def ir(self) -> str:
        """The module's textual IR."""
        return self.observation["Ir"]

    @property
    def ir_sha1(self) -> str:
        """SHA-1 of the module's bitcode (as ``opt -o out.bc`` writes it)."""
        return self.observation["IrSha1"]

    @property
    def bitcode(self) -> bytes:
        return self.observation["Bitcode"].tobytes()

    def write_ir(self, path: str | Path) -> Path:
        """Writes textual IR to ``path`` and returns it."""
        path = Path(path)
        path.write_text(self.ir)
        return path

    def write_bitcode(self, path: str | Path) -> Path:
        """Writes bitcode to ``path`` and returns it."""
        path = Path(path)
        path.write_bytes(self.bitcode)
        return path

    def render(self) -> str | None:
        """``"ansi"`` returns the IR; ``"human"`` prints it."""
        if self.render_mode is None:
            return None
        ir = self.ir
        if self.render_mode == "human":
            print(ir)
            return None
        return ir
