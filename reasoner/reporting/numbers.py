"""Numbers as the reports print them, so every output states a figure the same way."""

from __future__ import annotations

import math

__all__ = ["number"]


def number(value: object, digits: int = 3) -> str:
    """A table cell: ``–`` for a missing value, integers with thousands separators, floats with
    ``digits`` decimals (scientific below ``10**-digits``), anything else as its text."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        if math.isinf(value):
            return "∞" if value > 0 else "-∞"
        if value != 0 and (abs(value) < 10**-digits):
            return f"{value:.1e}"
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
