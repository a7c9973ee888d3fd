"""Numbers as the reports print them, so every output states a figure the same way."""

from __future__ import annotations

import math

__all__ = ["number"]


def number(value: object, digits: int = 3, *, trim: bool = False) -> str:
    """A figure as every output prints it: ``–`` for a missing value, integers with thousands
    separators, floats with ``digits`` decimals (scientific below ``10**-digits``), anything else
    as its text. ``trim`` drops trailing zeros (prose: ``reason explain``); tables keep them, so
    a column's decimals line up."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        if math.isinf(value):
            return "∞" if value > 0 else "-∞"
        if value != 0 and (abs(value) < 10**-digits):
            return f"{value:.1e}"
        text = f"{value:,.{digits}f}"
        return text.rstrip("0").rstrip(".") if trim and "." in text else text
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
