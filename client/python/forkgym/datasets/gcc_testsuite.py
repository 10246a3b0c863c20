"""What GCC's test suite says about one of its programs, judged for this host.

GCC's tests carry their conditions as DejaGnu directives in comments,
``/* { dg-options "-fwrapv" } */``, ``/* { dg-skip-if "" { avr-*-* } } */``,
``/* { dg-require-effective-target int128 } */``... (GCC Internals, "Directives
used within DejaGnu tests"; ``gcc/testsuite/lib/target-supports*.exp``). The
gcc-c-torture-v0 dataset (:mod:`forkgym.datasets.ctorture`) compiles every
program with one set of flags and no per-program options, so a program is
left out when its directives say that, on this host, it

1. needs an option of its own that a machine or the program's meaning
   depends on (``-msse``, ``-fwrapv``, ``-std=gnu89``, ``-fgnu89-inline``...):
   compiled without it, the program would not be the test GCC runs, and an
   execute test could abort for a reason no pass sequence caused;
2. is for other targets (``dg-do compile { target mips*-*-* }``), is skipped
   or expected to fail here (``dg-skip-if``/``dg-xfail-if`` whose targets and
   options match), needs an effective target this host lacks, or is expected
   to be rejected (``dg-error``);
3. uses a directive or condition this module does not know: it is left out
   rather than guessed about.

Options that only steer GCC's own optimisers, code generation or warnings
(``-O2``, ``-fno-tree-sra``, ``--param ...``, ``-g``, ``-Wno-psabi``) are
GCC's business, not the program's: forkgym's pass sequence replaces them, and
those programs stay. The facts about the host (target triplet, effective
targets) are a table for 64-bit Linux; :func:`judge` returns ``None`` to keep a
program or the reason it is left out.

Any process may call anything here; nothing here runs a program or touches a file.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

# --------------------------------------------------------------- the host --

# Effective-target keywords on 64-bit Linux (x86_64 or aarch64, glibc, ELF,
# binutils 2.40), as target-supports.exp answers them for GCC 12 there. Whether
# clang accepts a construct (nested functions for "trampolines", decimal
# floats for "dfp") is not decided here: the install compiles every program.
EFFECTIVE_TARGETS: dict[str, bool] = {
    **dict.fromkeys((
        "alloca", "c99_runtime", "dfp", "double64", "double64plus", "exceptions", "fgraphite", "fileio", "fopenmp",
        "fpic", "indirect_calls", "indirect_jumps", "int128", "int32", "int32plus", "label_values", "longlong64",
        "lp64", "lra", "mmap", "named_sections", "non_strict_prototype", "nonlocal_goto", "pie", "pthread",
        "ptr32plus", "R_flag_in_section", "return_address", "scheduling", "signal", "size20plus", "size32plus",
        "stdint_types", "trampolines", "untyped_assembly", "unwrapped",
        # Says the test is slow to run under GCC's harness, not that it needs
        # anything: the install's compile time limit decides.
        "run_expensive_tests",
    ), True),
    **dict.fromkeys((
        "arm_arch_v5t_thumb_ok", "freestanding", "ia32", "ilp32", "int16", "llp64", "newlib_nano_io",
        # Debian's compilers make position-independent code by default.
        "nonpic",
        "short_enums",
        # A board-supplied stack limit; Linux has none to state.
        "stack_size",
        "vxworks_kernel",
    ), False),
}

# dg-require-<what> "..." directives: whether this host has <what>.
REQUIREMENTS: dict[str, bool] = {
    "dg-require-alias": True, "dg-require-weak": True, "dg-require-visibility": True,
    "dg-require-stack-size": True,  # 8 MiB by default: more than any test asks
    "dg-require-stack-check": True, "dg-require-profiling": True, "dg-require-named-sections": True,
    "dg-require-ifunc": True, "dg-require-dll": False,
}

# dg-add-options <feature>: what each adds on this host (target-supports.exp's
# add_options_for_<feature>). "stack_size" adds -DSTACK_SIZE only for boards
# with a stack limit; "ieee" adds -mieee only on alpha, sh and rx.
ADDED_OPTIONS: dict[str, tuple[str, ...]] = {"stack_size": (), "ieee": ()}

# Directives about diagnostics, dumps, the harness's time limit or output
# filtering: they say nothing about whether the program is a valid test here.
IGNORED = frozenset({
    "dg-warning", "dg-bogus", "dg-message", "dg-note", "dg-final", "dg-prune-output", "dg-timeout-factor",
    "dg-timeout", "dg-excess-errors", "dg-output", "dg-shouldfail", "dg-lto-do", "dg-lto-options",
})

# One compiler option, first match wins: None keeps the program; otherwise
# the reason it is left out ({option} is the option).
_MACHINE = "needs the machine option {option}"
_MEANING = "needs {option}, which changes what the program means"
OPTION_RULES: tuple[tuple[str, str | None], ...] = (
    (r"-m.+|-G\d*", _MACHINE),
    (r"-Wl,.*|-Xlinker|-l.+|-D.*|-U.*|-I.*|-include|-std=.*|-ansi|-Ofast|-ffast-math|-fgnu89-inline"
     r"|-fwrapv(-pointer)?|-ftrapv|-fno-strict-overflow|-fno-strict-aliasing|-f(no-)?exceptions"
     r"|-f(no-)?non-call-exceptions|-f(no-)?common|-fpack-struct.*|-f(no-)?short-.*|-f(un)?signed-.*"
     r"|-finput-charset=.*|-fexec-charset=.*|-f(no-)?builtin.*|-f(no-)?openmp.*|-ffp-contract=.*|-ffloat-store"
     r"|-f(no-)?cx-.*|-f(no-)?rounding-math|-f(no-)?signaling-nans|-f(no-)?finite-math-only"
     r"|-f(no-)?math-errno|-funsafe-math-optimizations|-f(no-)?instrument-functions.*|-fsanitize.*"
     r"|-fpermissive|-fplan9-extensions|-fms-extensions|-fdollars-in-identifiers|-fsso-struct=.*", _MEANING),
    (r"-O[0-3sgz]?|-g.*|-W.*|-w|-S|-c|-fdump-.*|-fsave-optimization-record|--param(=.*)?|-f(no-)?(tree-|ipa-"
     r"|sched|schedule-insns|selective-scheduling|ira-|lra-|inline|early-inlining|indirect-inlining|unroll-"
     r"|unswitch-loops|peel-loops|split-|tracer|modulo-sched|move-loop-invariants|guess-branch-probability"
     r"|dce|dse|if-conversion|code-hoisting|vect-cost-model|live-range-shrinkage|function-sections"
     r"|data-sections|fat-lto-objects|lto|loop-|graphite|optimize-|printf-return-value|expensive-optimizations"
     r"|omit-frame-pointer|conserve-stack|stack-check|stack-protector|PIC|pic|PIE|pie|plt|visibility="
     r"|profile-|gcse|cse-|rerun-|reorder-|align-|peephole|caller-saves|crossjumping|thread-jumps|ssa-"
     r"|var-tracking|compare-elim|combine-|delete-|isolate-|ivopts|prefetch-|predictive-|reg-|rename-"
     r"|shrink-wrap|sel-sched|web|partial-inlining|devirtualize|strict-volatile-bitfields|jump-tables"
     r"|keep-|merge-|semantic-interposition|store-merging|zero-initialized-in-bss).*", None),
)
_OPTION_PATTERNS = tuple((re.compile(pattern), verdict) for pattern, verdict in OPTION_RULES)


class UnknownCondition(Exception):
    """A directive, keyword or selector this module has no answer for."""


@dataclass(frozen=True)
class Host:
    """What a directive's conditions are evaluated against."""

    triplet: str  # GCC-style target triplet, e.g. x86_64-pc-linux-gnu
    # The options a program is compiled with, as dg-skip-if's option lists
    # see them: the IR is clang's -O1 output with every LLVM pass off, so the
    # program is both GCC's -O0 and -O1 case, then the dataset's flags.
    flags: tuple[str, ...] = ("-O0", "-O1")

    def effective(self, keyword: str) -> bool:
        if keyword not in EFFECTIVE_TARGETS:
            raise UnknownCondition(f"the effective target '{keyword}'")
        return EFFECTIVE_TARGETS[keyword]

    def holds(self, items: Sequence[str]) -> bool:
        """Whether a selector (a Tcl list: triplet globs, effective-target
        keywords, or an expression with !, && and ||) is true here."""
        items = [item for item in items if item.strip()]
        if len(items) >= 2 and items[0] in ("any-opts", "no-opts"):
            matched = self.options_match(items[1:])
            return matched if items[0] == "any-opts" else not matched
        if len(items) == 2 and items[0] == "!":
            return not self._operand(items[1])
        if len(items) == 3 and items[1] in ("&&", "||"):
            left, right = self._operand(items[0]), self._operand(items[2])
            return (left and right) if items[1] == "&&" else (left or right)
        if len(items) == 1:
            return self._operand(items[0])
        return any(self._word(item) for item in items)

    def _operand(self, item: str) -> bool:
        inner = tcl_list(item)
        if len(inner) == 1 and inner[0] == item.strip():
            return self._word(inner[0])
        return self.holds(inner)

    def _word(self, word: str) -> bool:
        if "-" in word or "*" in word:
            return fnmatch.fnmatchcase(self.triplet, word)
        return self.effective(word)

    def options_match(self, globs: Iterable[str]) -> bool:
        """Whether any glob (dg-skip-if's option lists) matches one of our flags."""
        return any(glob == "*" or any(fnmatch.fnmatchcase(flag, glob) for flag in self.flags)
                   for glob in globs if glob)


# ------------------------------------------------------------ directives --

_DIRECTIVE = re.compile(r"\{\s+(dg-[-a-z]+)(\s.*)?\s\}")


@dataclass(frozen=True)
class Directive:
    name: str
    args: tuple[str, ...]
    line: int


def tcl_list(text: str) -> list[str]:
    """The elements of a Tcl list: words, "quoted" and {braced} elements (the
    braces' text kept verbatim, for nested lists)."""
    items: list[str] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            return items
        if text[i] == "{":
            depth, j = 1, i + 1
            while j < n and depth:
                if text[j] == "\\":
                    j += 1
                elif text[j] == "{":
                    depth += 1
                elif text[j] == "}":
                    depth -= 1
                j += 1
            items.append(text[i + 1:j - 1] if depth == 0 else text[i + 1:])
        elif text[i] == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            items.append(text[i + 1:j])
            j += 1
        else:
            j = i
            while j < n and not text[j].isspace():
                j += 1
            items.append(text[i:j])
        i = j


def directives(text: str) -> Iterator[Directive]:
    """The dg- directives of a test's source, in order (one per line at most,
    as DejaGnu's dg-get-options reads them)."""
    for number, line in enumerate(text.splitlines(), 1):
        match = _DIRECTIVE.search(line)
        if match is None:
            continue
        # The directive runs to the last "}" of the line (its own closing brace).
        body = line[match.start() + 1:line.rindex("}")]
        words = tcl_list(body)
        yield Directive(words[0], tuple(words[1:]), number)


def _options(words: Iterable[str]) -> Iterator[str]:
    """Compiler options from a dg-options list; ``--param name=value`` is one."""
    skip = False
    for word in words:
        if skip:
            skip = False
            continue
        if word == "--param":
            skip = True
        yield word


def option_verdict(option: str) -> str | None:
    """None for an option that only steers GCC itself; else why a program needing it is left out."""
    for pattern, verdict in _OPTION_PATTERNS:
        if pattern.fullmatch(option):
            return verdict.format(option=option) if verdict else None
    return f"needs {option}, which forkgym does not know"


def _target_applies(host: Host, selector: str) -> tuple[str, bool]:
    """('target'|'xfail', whether it holds) for a ``{ target ... }``/``{ xfail ... }`` argument."""
    words = tcl_list(selector)
    if not words or words[0] not in ("target", "xfail"):
        raise UnknownCondition(f"the selector '{selector.strip()}'")
    return words[0], host.holds(words[1:])


def _judge_one(d: Directive, host: Host, directory: str) -> str | None:
    name, args = d.name, d.args
    if name in IGNORED:
        return None
    if name == "dg-do":
        what = args[0] if args else ""
        if len(args) > 1:
            kind, holds = _target_applies(host, args[1])
            if kind == "target" and not holds:
                return f"is for other targets (dg-do {what} {{{args[1].strip()}}})"
            if kind == "xfail" and holds:
                return f"is expected to fail here (dg-do {what} {{{args[1].strip()}}})"
        if directory == "execute" and what != "run":
            return f"is only compiled by the test suite (dg-do {what}), so it is no execute test"
        return None
    if name in ("dg-options", "dg-additional-options"):
        if len(args) > 1:
            _, holds = _target_applies(host, args[1])
            if not holds:
                return None
        for option in _options(tcl_list(args[0]) if args else []):
            if (why := option_verdict(option)) is not None:
                return f"{why} ({name})"
        return None
    if name == "dg-add-options":
        for feature in args[:1]:
            if feature not in ADDED_OPTIONS:
                raise UnknownCondition(f"dg-add-options {feature}")
            for option in ADDED_OPTIONS[feature]:
                if (why := option_verdict(option)) is not None:
                    return f"{why} (dg-add-options {feature})"
        return None
    if name == "dg-require-effective-target":
        if len(args) > 1:
            _, holds = _target_applies(host, args[1])
            if not holds:
                return None
        if args and not host.effective(args[0]):
            return f"needs the effective target {args[0]}, which this host lacks"
        return None
    if name in ("dg-skip-if", "dg-xfail-if", "dg-xfail-run-if"):
        # "message" { targets } [{ include options } [{ exclude options }]]
        targets = tcl_list(args[1]) if len(args) > 1 else []
        include = tcl_list(args[2]) if len(args) > 2 else ["*"]
        exclude = tcl_list(args[3]) if len(args) > 3 else []
        if host.holds(targets) and host.options_match(include) and not host.options_match(exclude):
            verb = "skipped" if name == "dg-skip-if" else "expected to fail"
            message = f": {args[0]}" if args and args[0] else ""
            return f"is {verb} here by the test suite ({name}{message})"
        return None
    if name == "dg-error":
        # regexp [comment [{ target|xfail selector } [line]]]
        if len(args) > 2 and args[2].strip() and args[2].strip() != ".":
            kind, holds = _target_applies(host, args[2])
            if kind == "target" and not holds:
                return None
        return "is expected to be rejected by the compiler (dg-error)"
    if name in REQUIREMENTS:
        return None if REQUIREMENTS[name] else f"needs what this host lacks ({name})"
    raise UnknownCondition(f"the directive {name}")


def judge(text: str, host: Host, directory: str) -> str | None:
    """None when the test suite's directives let ``text`` (a test's source, of
    ``directory``: ``execute`` or ``compile``) stand on this host with the
    dataset's flags; otherwise why it is left out."""
    for d in directives(text):
        try:
            why = _judge_one(d, host, directory)
        except UnknownCondition as e:
            why = f"depends on {e}, which forkgym does not know (line {d.line})"
        if why is not None:
            return why
    return None
