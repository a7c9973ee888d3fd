"""Errors raised by reasoner, one class per stage.

    ReasonerError                 exit code 2 unless said otherwise
    ├── UsageError                bad command-line options or arguments
    ├── RuleError                 rule files: syntax, names, types, safety (positioned)
    ├── EvidenceError             facts and evidence files (file, column, row)
    └── LimitError                a documented limit was reached

A ``RuleError`` carries one or more ``Diagnostic`` s; the command line prints
them and never a traceback (unless ``--debug``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from reasoner.syntax import Span

__all__ = [
    "Diagnostic",
    "EvidenceError",
    "LimitError",
    "ReasonerError",
    "RuleError",
    "UsageError",
    "printable",
    "render_span",
]

# C0 and C1 controls, DEL, line and paragraph separators and the bidirectional overrides (which
# reorder what a terminal shows): never written raw to a terminal or a one-line message.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
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


class ReasonerError(Exception):
    """Base of every error reasoner reports to its user."""

    exit_code = 2

    def render(self) -> str:
        return f"error: {printable(str(self))}"


class UsageError(ReasonerError):
    """The command line is wrong."""


class EvidenceError(ReasonerError):
    """A facts table or evidence file is wrong; the message names file, column, row.

    Rendered as every other error, ``error: FILE: column 'c': expected ..., got ... (row N)``.
    """

    def render(self) -> str:
        message = printable(str(self))
        return message if message.startswith("error: ") else f"error: {message}"


class LimitError(ReasonerError):
    """A documented limit was reached; the message says what to do."""


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One positioned message about a rule file."""

    span: Span
    message: str
    severity: str = "error"
    notes: tuple[str, ...] = ()

    def render(self) -> str:
        head = f"{printable(self.span.file)}:{self.span.line}:{self.span.column}: {self.severity}: {printable(self.message)}"
        lines = [head, render_span(self.span)]
        lines.extend(f"note: {printable(note)}" for note in self.notes)
        return "\n".join(line for line in lines if line)


def render_span(span: Span) -> str:
    """The source line of ``span`` with a caret under the spanned text."""
    text = span.line_text.rstrip("\n").expandtabs(1) if span.line_text else ""
    if not text:
        return ""
    number = str(span.line)
    width = 1
    if span.end_line == span.line and span.end_column > span.column:
        width = span.end_column - span.column
    width = max(1, min(width, len(text) - span.column + 1))
    width = max(1, len(printable(text[span.column - 1 : span.column - 1 + width])))
    indent = len(printable(text[: span.column - 1]))  # the caret stays under the text once escaped
    gutter = " " * (len(number) + 5)
    caret = "^" + "~" * (width - 1)
    return f"    {number} | {printable(text)}\n{gutter}| {' ' * indent}{caret}"


class RuleError(ReasonerError):
    """One or more positioned diagnostics about rule files."""

    def __init__(self, diagnostics: list[Diagnostic] | tuple[Diagnostic, ...]) -> None:
        self.diagnostics = tuple(diagnostics)
        super().__init__(self.diagnostics[0].message if self.diagnostics else "invalid rules")

    def render(self) -> str:
        return "\n".join(diagnostic.render() for diagnostic in self.diagnostics)
