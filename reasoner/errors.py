"""Errors raised by reasoner, one class per stage.

    ReasonerError                 exit code 2 unless said otherwise
    ├── ArgumentError             a bad argument of the Python API (also a ValueError)
    ├── UsageError                bad command-line options or arguments (the command line only)
    ├── RuleFileError             a rule file is missing or unreadable (also an OSError)
    ├── RuleError                 rule files: syntax, names, types, safety (positioned; also a ValueError)
    ├── EvidenceError             facts and evidence files (file, column, row)
    └── LimitError                a documented limit was reached (also a RuntimeError)

A ``RuleError`` carries one or more ``Diagnostic`` s; the command line prints
them and never a traceback (unless ``--debug``). A message that names an argument
of the API (``max_groundings``) holds it as an ``Option``: the library words it as the
argument, the command line as its flag (``--max-groundings N``).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from reasoner.syntax import Span

__all__ = [
    "ArgumentError",
    "Diagnostic",
    "EvidenceError",
    "LimitError",
    "Option",
    "ReasonerError",
    "RuleError",
    "RuleFileError",
    "UNPRINTABLE_CHARACTERS",
    "UsageError",
    "printable",
    "render_span",
]

# C0 and C1 controls, DEL, line and paragraph separators and the bidirectional overrides (which
# reorder what a terminal shows): never written raw to a terminal or a one-line message.
UNPRINTABLE_CHARACTERS = "[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]"
_UNPRINTABLE = re.compile(UNPRINTABLE_CHARACTERS)
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: str, keep: str = "") -> str:
    """``text`` with every control character shown escaped as ``repr`` does (``\\x1b``, ``\\n``,
    ``\\u202e``), but those in ``keep``: data values cannot move the cursor, retitle the
    terminal or forge a second line of a message."""

    def escape(match: re.Match[str]) -> str:
        char = match.group()
        if char in keep:
            return char
        code = ord(char)
        return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")

    return _UNPRINTABLE.sub(escape, text)


@dataclass(frozen=True, slots=True)
class Option:
    """An argument of the API named in a message: ``name`` is its keyword (``max_groundings``),
    ``metavar`` the value a command line shows after its flag (``N``)."""

    name: str
    metavar: str = ""

    def __str__(self) -> str:
        return self.name


class ReasonerError(Exception):
    """Base of every error reasoner reports to its user.

    The message is given in parts, strings and ``Option`` s; ``str(error)`` words the options
    as the API's arguments, ``worded`` as the caller likes (the command line: as flags).
    """

    exit_code = 2

    def __init__(self, *parts: str | Option) -> None:
        super().__init__("".join(str(part) for part in parts))
        self.parts = parts

    @property
    def options(self) -> tuple[Option, ...]:
        """The arguments of the API the message names."""
        return tuple(part for part in getattr(self, "parts", ()) if isinstance(part, Option))

    def worded(self, spell: Callable[[Option], str]) -> str:
        """The message with each option spelled by ``spell``."""
        parts = getattr(self, "parts", ())
        if not self.options:
            return str(self)
        return "".join(spell(part) if isinstance(part, Option) else part for part in parts)

    def render(self) -> str:
        return f"error: {printable(str(self))}"


class ArgumentError(ReasonerError, ValueError):
    """An argument of the Python API is wrong (an unknown predicate, a malformed atom)."""


class RuleFileError(ReasonerError, OSError):
    """A rule file or directory is missing, unreadable or not UTF-8 text."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class UsageError(ReasonerError):
    """The command line is wrong (raised by the command line, never by the engine)."""


class EvidenceError(ReasonerError):
    """A facts table or evidence file is wrong; the message names file, column, row.

    Rendered as every other error, ``error: FILE: column 'c': expected ..., got ... (row N)``.
    """

    def render(self) -> str:
        message = printable(str(self))
        return message if message.startswith("error: ") else f"error: {message}"


class LimitError(ReasonerError, RuntimeError):
    """A documented limit was reached; the message says what to do."""


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One positioned message about a rule file."""

    span: Span
    message: str
    severity: str = "error"
    notes: tuple[str, ...] = ()

    def render(self) -> str:
        span = self.span
        head = f"{printable(span.file)}:{span.line}:{span.column}: {self.severity}: {printable(self.message)}"
        lines = [head, render_span(self.span)]
        lines.extend(f"note: {printable(note)}" for note in self.notes)
        return "\n".join(line for line in lines if line)


NEIGHBOURHOOD = 80  # characters of a long line shown around the spanned column
_LONG_LINE = 2 * NEIGHBOURHOOD  # lines longer than this are shown only near the column


def render_span(span: Span) -> str:
    """The source line of ``span`` with a caret under the spanned text; of a line longer than
    ``2 * NEIGHBOURHOOD`` characters only the ``NEIGHBOURHOOD`` around the column, between '...'."""
    text = span.line_text.rstrip("\n").expandtabs(1) if span.line_text else ""
    if not text:
        return ""
    number = str(span.line)
    width = 1
    if span.end_line == span.line and span.end_column > span.column:
        width = span.end_column - span.column
    column = min(span.column, len(text) + 1)
    if len(text) > _LONG_LINE:
        start = max(0, min(column - 1 - NEIGHBOURHOOD // 2, len(text) - NEIGHBOURHOOD))
        end = start + NEIGHBOURHOOD
        head = "..." if start else ""
        text = head + text[start:end] + ("..." if end < len(text) else "")
        column = column - start + len(head)
        width = min(width, NEIGHBOURHOOD)
    width = max(1, min(width, len(text) - column + 1))
    width = max(1, len(printable(text[column - 1 : column - 1 + width])))
    indent = len(printable(text[: column - 1]))  # the caret stays under the text once escaped
    gutter = " " * (len(number) + 5)
    caret = "^" + "~" * (width - 1)
    return f"    {number} | {printable(text)}\n{gutter}| {' ' * indent}{caret}"


class RuleError(ReasonerError, ValueError):
    """One or more positioned diagnostics about rule files."""

    def __init__(self, diagnostics: list[Diagnostic] | tuple[Diagnostic, ...]) -> None:
        self.diagnostics = tuple(diagnostics)
        super().__init__(self.diagnostics[0].message if self.diagnostics else "invalid rules")

    def render(self) -> str:
        return "\n".join(diagnostic.render() for diagnostic in self.diagnostics)


def closest(name: str, candidates: Iterable[str], *, cutoff: float = 0.6) -> str | None:
    """The candidate most like ``name`` (a misspelling's intended word), if one is close enough."""
    found = suggestions(name, candidates, cutoff=cutoff)
    return found[0] if found else None


def suggestions(name: str, candidates: Iterable[str], *, n: int = 1, cutoff: float = 0.6) -> list[str]:
    """Up to ``n`` candidates close enough to ``name``, the closest first."""
    return difflib.get_close_matches(name, list(candidates), n=n, cutoff=cutoff)


def did_you_mean(
    name: str, candidates: Iterable[str], *, otherwise: str | None = None, cutoff: float = 0.6
) -> tuple[str, ...]:
    """The note of a diagnostic about an unknown ``name``: "did you mean 'x'?" naming the closest
    candidate, else ``otherwise`` (e.g. the list of known names), else no note."""
    found = closest(name, candidates, cutoff=cutoff)
    if found is not None:
        return (f"did you mean '{found}'?",)
    return (otherwise,) if otherwise else ()
