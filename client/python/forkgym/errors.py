"""Typed exceptions. Every message says what went wrong and what to do.

All derive from :class:`ForkgymError`, which carries the :class:`Outcome`
(and, for crashes, the signal and a reproducer). The extension raises them
through :func:`from_outcome`, registered as its error factory, so C++ and
Python agree on one mapping.

Note that a crash or timeout *during step* never raises: the episode is
truncated instead (see ``LlvmEnv.step``). These exceptions are for calls that
cannot return a transition: reset, fork, lazy observations, validation.
"""

from __future__ import annotations

from typing import Any

from forkgym import _forkgym
from forkgym.outcome import Outcome, from_value, outcome_name


class ForkgymError(Exception):
    """Base class of every forkgym error."""

    def __init__(self, message: str, outcome: Outcome | int = Outcome.SERVER_ERROR, signal: int = 0,
                 reproducer: Any = None, stack: Any = ()) -> None:
        super().__init__(message)
        self.message = message
        self.outcome = from_value(int(outcome))
        self.signal = signal
        self.reproducer = reproducer
        # A crashed worker's stack as its crash reporter recorded it:
        # (module, offset, exact) per frame, innermost first; () if none.
        self.stack = tuple(tuple(frame) for frame in stack)
        self._stack_signature: str | None = None

    @property
    def stack_signature(self) -> str:
        """The crash's symbolised signature (forkgym.crash_stack.signature), "" without a stack."""
        if self._stack_signature is None:
            from forkgym.crash_stack import signature
            self._stack_signature = signature(self.stack) if self.stack else ""
        return self._stack_signature

    def __reduce__(self):  # keep exceptions picklable (multiprocessing, pytest-xdist)
        return (type(self), (self.message, int(self.outcome), self.signal, None, self.stack))


class BenchmarkNotFound(ForkgymError, LookupError):
    """The benchmark URI names nothing forkgym can load."""


class BenchmarkInitError(ForkgymError):
    """The benchmark exists but could not be compiled, parsed or measured."""


class InvalidRequest(ForkgymError, ValueError):
    """A request named something unknown (an observation or reward space...)."""


class InvalidAction(InvalidRequest):
    """An action index outside the action table, or a flag forkgym does not know."""


class SessionCrashed(ForkgymError):
    """The worker running the episode died (crash, OOM, sandbox violation, invalid IR)."""


class Timeout(ForkgymError, TimeoutError):
    """The worker exceeded its wall-clock or CPU limit and was killed."""


class ServerUnavailable(ForkgymError, ConnectionError):
    """The forkgym-server zygote could not be started or reached."""


class ProtocolMismatch(ForkgymError):
    """Client and server come from different forkgym builds."""


class SessionNotStarted(ForkgymError):
    """No episode is running: call ``reset()`` first (or again after a crash, or in
    a process ``fork()``ed from the one that started the episode)."""


class CompilerFailed(ForkgymError):
    """An external compiler (gcc) crashed or ran past its time on the new state;
    the step or setting was undone and the episode goes on."""


class BackendUnavailable(ForkgymError):
    """The server has this backend but could not start it (gcc-v0 without gcc);
    it serves its other backends. The message says what is missing."""


class ResourceExhausted(ForkgymError, OSError):
    """This process ran out of something the request needs (file descriptors); the
    episode is unaffected."""


class DatasetError(ForkgymError):
    """A dataset could not be downloaded, verified, extracted or installed. Raised
    in this process, before any server sees the dataset; the message names the
    file and what to do."""

    def __init__(self, message: str, outcome: Outcome | int = Outcome.BENCHMARK_ERROR, signal: int = 0,
                 reproducer: Any = None, stack: Any = ()) -> None:
        super().__init__(message, outcome, signal, reproducer, stack)


class DownloadFailed(DatasetError, OSError):
    """A file could not be fetched (no network, HTTP error, retries used up); the
    message says where to place it by hand."""


class ChecksumMismatch(DatasetError, ValueError):
    """A downloaded or placed file's SHA-256 is not the catalogue's: nothing of it was used."""


class UnsafeArchive(DatasetError, ValueError):
    """An archive holds a member that would land outside its dataset's directory
    (``..``, an absolute path, a link out of the tree) or a device or FIFO: nothing
    of it was extracted."""


_ADVICE = {
    Outcome.INVALID_REQUEST: "see env.action_space.names, env.observation.spaces and env.reward.spaces for valid names",
    Outcome.BENCHMARK_ERROR: "check the benchmark compiles with clang-19, or pass a .bc/.ll file",
    Outcome.CRASHED: "the episode is over; call reset() to start a new one (the reproducer replays the crash)",
    Outcome.TIMED_OUT: "the episode is over; raise step_timeout= in make() or call reset()",
    Outcome.OUT_OF_MEMORY: "the episode is over; raise the memory limit (address_space_mb=) or call reset()",
    Outcome.SANDBOX_VIOLATION: "the episode is over; call reset() (this is a forkgym bug worth reporting)",
    Outcome.VERIFIER_FAILED: "the episode is over; call reset() (the reproducer shows the pass that broke the IR)",
    Outcome.SETUP_FAILED: "the worker's sandbox could not be set up; see the message, then call reset()",
    Outcome.SERVER_ERROR: "the next reset() starts a new server; set FORKGYM_SERVER if the binary cannot be found",
    Outcome.PROTOCOL_MISMATCH: "a peer broke the protocol (the episode, if any, was ended; call reset()); if this "
                               "repeats, reinstall forkgym so the extension and forkgym-server come from one build",
    Outcome.SESSION_CLOSED: "call reset() to start an episode",
    Outcome.INTERRUPTED: "the episode is over; call reset() to start a new one",
    Outcome.RESOURCE_EXHAUSTED: "raise the limit (ulimit -n)",
    Outcome.LIMIT_REACHED: "the episode goes on; close what you no longer need, or raise the server's limit",
    Outcome.COMPILER_FAILED: "the episode is where it was before this request; choose other options, or raise "
                             "the compiler's time limit (gcc-v0: env.timeout)",
    Outcome.BACKEND_UNAVAILABLE: "the server's other backends are served; once the compiler is there, a new "
                                 "server (a new process, or forkgym.Server()) serves this one",
}

_NOT_FOUND_HINTS = ("no such file", "not found", "unknown scheme", "unknown dataset", "cannot read", "cannot list",
                    "no benchmark '", "benchmark cache", "not installed")


def exception_type(outcome: Outcome | int, message: str = "") -> type[ForkgymError]:
    """The exception class for an outcome."""
    outcome = from_value(int(outcome))
    if outcome == Outcome.BENCHMARK_ERROR:
        lowered = message.lower()
        return BenchmarkNotFound if any(h in lowered for h in _NOT_FOUND_HINTS) else BenchmarkInitError
    return {
        Outcome.INVALID_REQUEST: InvalidRequest,
        Outcome.CRASHED: SessionCrashed,
        Outcome.OUT_OF_MEMORY: SessionCrashed,
        Outcome.SANDBOX_VIOLATION: SessionCrashed,
        Outcome.VERIFIER_FAILED: SessionCrashed,
        Outcome.SETUP_FAILED: SessionCrashed,
        Outcome.TIMED_OUT: Timeout,
        Outcome.SERVER_ERROR: ServerUnavailable,
        Outcome.PROTOCOL_MISMATCH: ProtocolMismatch,
        Outcome.SESSION_CLOSED: SessionNotStarted,
        Outcome.INTERRUPTED: SessionCrashed,
        Outcome.RESOURCE_EXHAUSTED: ResourceExhausted,
        Outcome.COMPILER_FAILED: CompilerFailed,
        Outcome.BACKEND_UNAVAILABLE: BackendUnavailable,
    }.get(outcome, ForkgymError)


def from_outcome(outcome: int, message: str, signal: int = 0, reproducer: Any = None,
                 stack: Any = ()) -> ForkgymError:
    """Builds the typed exception for a failed request, with advice appended."""
    kind = exception_type(outcome, message)
    advice = _ADVICE.get(from_value(outcome))
    text = f"{message} [{outcome_name(outcome)}]"
    # A message that already says what to install needs no generic advice
    # (which would point elsewhere, e.g. at the benchmark's source).
    if advice and advice not in message and "apt-get install" not in message:
        text += f"; {advice}"
    return kind(text, outcome, signal, reproducer, stack)


_forkgym.set_error_factory(from_outcome)
