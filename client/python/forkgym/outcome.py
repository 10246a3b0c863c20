"""The outcome taxonomy, mirrored from ``base/outcome.h``.

The enum is generated at import time from the C++ ``FORKGYM_OUTCOMES``
X-macro (exported by the extension), so adding a row in C++ is the only change
needed and the values can never drift apart.
"""

from __future__ import annotations

import enum

from forkgym import _forkgym

_ROWS = _forkgym.outcomes()


def _member_name(camel: str) -> str:
    """``OutOfMemory`` -> ``OUT_OF_MEMORY``: Python's spelling of enum members."""
    out = []
    for i, ch in enumerate(camel):
        if ch.isupper() and i:
            out.append("_")
        out.append(ch.upper())
    return "".join(out)


Outcome = enum.IntEnum(  # type: ignore[misc]
    "Outcome",
    [(_member_name(name), value) for name, value, _, _, _ in _ROWS],
    module=__name__,
)
Outcome.__doc__ = "How a request to a worker or the zygote ended (values match base/outcome.h)."

_TEXT = {value: text for _, value, text, _, _ in _ROWS}
_DOC = {value: doc for _, value, _, doc, _ in _ROWS}
_ENDS = {value: ends for _, value, _, _, ends in _ROWS}


def outcome_name(outcome: int) -> str:
    """The stable snake_case name used in logs and reproducers (e.g. ``"crashed"``)."""
    return _TEXT.get(int(outcome), "unknown")


def outcome_doc(outcome: int) -> str:
    """One sentence saying what the outcome means."""
    return _DOC.get(int(outcome), "unknown outcome")


def ends_episode(outcome: int) -> bool:
    """True when the worker is gone after this outcome and the episode is over."""
    return _ENDS.get(int(outcome), True)


def from_value(value: int) -> Outcome:
    """The enum member for a wire value (unknown values read as INVALID_REQUEST, as in C++)."""
    try:
        return Outcome(value)
    except ValueError:
        return Outcome.INVALID_REQUEST
