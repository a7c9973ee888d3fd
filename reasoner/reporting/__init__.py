"""What every report shares: numbers, Markdown, HTML and SVG charts.

Used by the lending audit's report, ``reason explain``, the model audit's report and
``reason evaluate`` through these public names; nothing here knows about lending.
"""

from reasoner.reporting.charts import (
    BLUE,
    GREY,
    INK,
    MUTED,
    RED,
    Point,
    clip,
    estimate_label,
    finite,
    forest,
    nice_step,
    px,
    svg,
    svg_line,
    svg_rect,
    svg_text,
    tick_label,
)
from reasoner.reporting.markdown import escape_markdown, markdown_code, markdown_table
from reasoner.reporting.markup import Html, and_list, escape_html, figure, html_cell, html_table, inline_html
from reasoner.reporting.numbers import number

__all__ = [
    "BLUE",
    "GREY",
    "INK",
    "MUTED",
    "RED",
    "Html",
    "Point",
    "and_list",
    "clip",
    "escape_html",
    "escape_markdown",
    "estimate_label",
    "figure",
    "finite",
    "forest",
    "html_cell",
    "html_table",
    "inline_html",
    "markdown_code",
    "markdown_table",
    "nice_step",
    "number",
    "px",
    "svg",
    "svg_line",
    "svg_rect",
    "svg_text",
    "tick_label",
]
