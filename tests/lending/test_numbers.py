"""One number formatter for the report's tables and `reason explain`'s prose (``reasoner.reporting.number``)."""

from __future__ import annotations

import importlib
import math

import pytest

from reasoner.reporting import number


@pytest.mark.parametrize(
    ("value", "digits", "table", "prose"),
    [
        (1.5, 3, "1.500", "1.5"),
        (2.0, 2, "2.00", "2"),
        (1234567.125, 3, "1,234,567.125", "1,234,567.125"),
        (0.0004, 3, "4.0e-04", "4.0e-04"),
        (0.0, 3, "0.000", "0"),
        (math.inf, 3, "∞", "∞"),
        (-math.inf, 3, "-∞", "-∞"),
        (math.nan, 3, "–", "–"),
        (None, 3, "–", "–"),
        (12345, 3, "12,345", "12,345"),
        ("TIER_1_CRITICAL", 3, "TIER_1_CRITICAL", "TIER_1_CRITICAL"),
    ],
)
def test_tables_keep_their_decimals_and_prose_trims_them(value: object, digits: int, table: str, prose: str) -> None:
    assert number(value, digits) == table
    assert number(value, digits, trim=True) == prose


def test_explain_prints_json_figures_through_the_same_formatter() -> None:
    explain_finding = importlib.import_module("reasoner.lending.outputs.explain_finding")  # not the function
    figures: list[object] = [1.5, 7.59, 0.0004, 12345, None, math.nan, "inf", "hard", "-inf"]
    printed = [explain_finding._number(value) for value in figures]  # noqa: SLF001
    assert printed == ["1.5", "7.59", "4.0e-04", "12,345", "–", "–", "∞", "∞", "-∞"]
    assert explain_finding._number("not a number") == "not a number"  # noqa: SLF001
    assert explain_finding._number(True) == "True"  # noqa: SLF001
