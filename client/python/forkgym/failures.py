"""What went wrong in an episode, as a kind and a signature that buckets it.

``fuzz``, ``reduce`` and ``determinism`` share this taxonomy. A
:class:`Failure` is one of

- ``crash``: the worker died by a signal; signed by the signal and the
  symbolised stack (:mod:`forkgym.crash_stack`), e.g.
  ``SIGSEGV llvm::ScalarizerPass::run < ...``;
- ``fatal_error``: the compiler's fatal-error handler ran
  (``report_fatal_error``; an assertion in an LLVM built with them is a
  ``crash`` by SIGABRT); signed by its message;
- ``verifier``: a pass left IR the verifier rejects; signed by the message;
- ``timeout``, ``out_of_memory``, ``sandbox_violation``: signed by the kind
  (and the pass that was running: the last action);
- ``miscompile``: the optimised program behaves differently from the
  unoptimised one (semantic validation on a runnable benchmark); signed by
  the failed check's kind;
- ``nondeterminism``: the state hash (use-list order included) differs
  across server processes; signed by the pass where it first differs.

A message signature drops what changes from one program to the next
(numbers, quoted names, ``%``/``@`` values) and keeps the first line.
"""

from __future__ import annotations

import re
import signal as signals
from dataclasses import asdict, dataclass, field
from typing import Any

from forkgym.outcome import Outcome, from_value

KINDS = ("crash", "fatal_error", "verifier", "timeout", "out_of_memory", "sandbox_violation", "miscompile",
         "nondeterminism")

_FATAL_PREFIX = "the compiler reported a fatal error: "


@dataclass
class Failure:
    kind: str
    signature: str
    message: str = ""
    signal: int = 0
    step: int | None = None  # index in the actions of the one that failed (None: not known, or after the last)
    stack: list[tuple[str, int, bool]] = field(default_factory=list)

    @property
    def bucket(self) -> str:
        """The key two occurrences of one bug share."""
        return f"{self.kind}: {self.signature}" if self.signature else self.kind

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["stack"] = [list(frame) for frame in self.stack]
        data["bucket"] = self.bucket
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Failure:
        return cls(kind=data["kind"], signature=data["signature"], message=data.get("message", ""),
                   signal=int(data.get("signal", 0)), step=data.get("step"),
                   stack=[tuple(frame) for frame in data.get("stack", [])])  # type: ignore[misc]


def message_signature(message: str) -> str:
    """A message without what differs between programs: see the module docstring."""
    text = message.strip().splitlines()[0] if message.strip() else ""
    text = re.sub(r"\s*\[[a-z_]+\](;.*)?$", "", text)  # the outcome and advice from_outcome() appends
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", text)
    text = re.sub(r"[%@][-\w.$]+", "%v", text)
    text = re.sub(r"0x[0-9a-fA-F]+|\b\d+\b", "N", text)
    return re.sub(r"\s+", " ", text)[:200]


def signal_name(number: int) -> str:
    try:
        return signals.Signals(number).name
    except ValueError:
        return f"signal {number}"


def from_step_info(info: dict[str, Any], actions: list[int], action_names: list[str]) -> Failure | None:
    """The failure a truncated step's ``info`` reports (None if the outcome is not one).

    ``actions`` are those the step was given; ``info["reproducer"].actions``
    (the episode's, up to and including the one that failed) says which one
    failed."""
    outcome = from_value(int(info["outcome"]))
    message = str(info.get("error_details", ""))
    reproducer = info.get("reproducer")
    done = list(reproducer.actions) if reproducer is not None else []
    step = len(done) - 1 if done else None
    passname = action_names[done[-1]] if done and done[-1] < len(action_names) else "?"
    stack = [tuple(frame) for frame in info.get("stack", [])]
    if outcome == Outcome.CRASHED and int(info.get("signal", 0)):
        number = int(info["signal"])
        where = info.get("stack_signature") or f"in {passname}"
        return Failure("crash", f"{signal_name(number)} {where}", message, number, step, stack)  # type: ignore[arg-type]
    if outcome == Outcome.CRASHED and message.startswith(_FATAL_PREFIX):
        return Failure("fatal_error", message_signature(message[len(_FATAL_PREFIX):]), message, 0, step,
                       stack)  # type: ignore[arg-type]
    if outcome == Outcome.CRASHED:
        return Failure("crash", f"in {passname}: {message_signature(message)}", message, 0, step, stack)  # type: ignore[arg-type]
    if outcome == Outcome.VERIFIER_FAILED:
        return Failure("verifier", message_signature(message), message, 0, step)
    kind = {Outcome.TIMED_OUT: "timeout", Outcome.OUT_OF_MEMORY: "out_of_memory",
            Outcome.SANDBOX_VIOLATION: "sandbox_violation"}.get(outcome)
    if kind is None:
        return None
    return Failure(kind, f"in {passname}", message, int(info.get("signal", 0)), step)
