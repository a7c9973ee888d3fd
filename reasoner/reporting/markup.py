"""HTML for reports: escaping, the report's inline Markdown, tables and figures."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence

from reasoner.reporting.numbers import number

__all__ = ["Html", "and_list", "escape_html", "figure", "html_cell", "html_table", "inline_html"]


class Html(str):
    """Markup that is already escaped."""


def escape_html(value: object) -> str:
    return html.escape(str(value), quote=True)


def inline_html(text: str) -> str:
    """Markdown inline syntax of the report's own sentences (`code`, **strong**) → HTML, data escaped."""
    escaped = escape_html(text)
    escaped = re.sub(r"`([^`]*)`", r"<code>\1</code>", escaped)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", escaped)


def and_list(items: Sequence[str]) -> str:
    return ", ".join(items[:-1]) + " and " + items[-1] if len(items) > 1 else "".join(items)


def html_cell(value: object) -> str:
    return value if isinstance(value, Html) else escape_html(number(value))


def html_table(headers: Sequence[str], rows: Iterable[Sequence[object]], numeric: set[int] | None = None) -> str:
    rows = [list(row) for row in rows]
    if numeric is None:  # columns whose values are all numbers
        numeric = {
            i
            for i in range(len(headers))
            if rows and all(isinstance(row[i], (int, float)) and not isinstance(row[i], bool) for row in rows)
        }

    def cls(i: int) -> str:
        return ' class="num"' if i in numeric else ""

    head = "".join(f"<th{cls(i)}>{escape_html(h)}</th>" for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(f"<td{cls(i)}>{html_cell(v)}</td>" for i, v in enumerate(row)) + "</tr>" for row in rows
    )
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{caption}</figcaption></figure>" if svg else ""
