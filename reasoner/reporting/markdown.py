"""Markdown for reports: values escaped so they show as they are, code spans, tables."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from reasoner.errors import UNPRINTABLE_CHARACTERS, printable
from reasoner.reporting.numbers import number

__all__ = ["escape_markdown", "markdown_code", "markdown_table"]


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(escape_markdown(number(cell)) for cell in row) + " |")
    return lines


_MARKDOWN_SPECIAL = re.compile(r"[\\`\[\]|]")

_HTML_SPECIAL = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_HTML_CHARACTERS = re.compile(r"[&<>]")
# Every character that escape_markdown changes (``printable``'s controls too): a text without one is
# its own escape, found by one search instead of three substitutions (a report's table cells are
# mostly figures: 177,000 cells at 1,000,000 applications).
_ANY_SPECIAL = re.compile(f"{UNPRINTABLE_CHARACTERS}|[&<>\\\\`\\[\\]|]")


def escape_markdown(text: object) -> str:
    """A value the report did not write (a LEI, an id, a group, a comparison, an action from
    audit.toml) as Markdown text that shows it as it is, on one line: control characters escaped
    (``\\n``), HTML (``<``, ``>``, ``&``) as entities, and the characters of links, code and table
    cells (``\\ ` [ ] |``) backslash-escaped; ``*`` and ``_`` are left (they only emphasise)."""
    value = str(text)
    if _ANY_SPECIAL.search(value) is None:
        return value
    value = _HTML_CHARACTERS.sub(lambda match: _HTML_SPECIAL[match.group()], printable(value))
    return _MARKDOWN_SPECIAL.sub(lambda match: "\\" + match.group(), value)


def markdown_code(text: object) -> str:
    """A value as a Markdown code span (file and column names): fenced by more backticks than it holds."""
    value = printable(str(text))
    longest = max((len(run) for run in re.findall("`+", value)), default=0)
    fence = "`" * (longest + 1)
    padded = f" {value} " if longest or value.startswith("`") or value.endswith("`") else value
    return f"{fence}{padded}{fence}"
