"""What a lender's verdict rests on: whether it could be tested, with what power, and the effect.

From the lender's rows of ``denial_odds`` (with ``power`` and ``effects`` columns):

``verdict_status``
    ``FLAGGED`` when the MAP world flags the lender (on any evidence: denials, pricing,
    redlining shares, a model); otherwise ``NOT_TESTED`` when no comparison could be computed
    (no reference or no compared applicant, every application denied or approved, too few
    applications...), ``UNDERPOWERED`` when no computed comparison could have detected the
    configured odds ratio (``[scoring] underpowered_odds_ratio``, 2: its
    ``min_detectable_odds_ratio`` is above it), else ``CLEARED``.
``min_detectable_odds_ratio``
    the smallest over the lender's computed comparisons: the lender's best power.
``effect_comparison`` and its ``odds_ratio``, ``marginal_effect`` and ``excess_denials`` with CIs
    the comparison that drives the finding: for a lender flagged for redlining and not for a
    disparity in its applicants' own treatment, the ``neighbourhood`` comparison; otherwise the
    others (every computed comparison when those have none); among them, those with an odds
    ratio above 1 first, then the smallest Holm-adjusted p-value, then the larger odds ratio,
    then the first in ``audit.toml``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from reasoner.lending.config import NOT_TESTED, UNDERPOWERED
from reasoner.lending.evidence.effects import EFFECT_COLUMNS

__all__ = ["CLEARED", "FLAGGED", "REDLINING_COMPARISON", "VERDICT_COLUMNS", "LenderEvidence", "lender_evidence"]

FLAGGED, CLEARED = "FLAGGED", "CLEARED"
REDLINING_COMPARISON = "neighbourhood"  # the comparison 40-redlining.mln weighs (audit.toml)
REDLINING = "redlining"
TREATMENT = ("disparate treatment", "intersectional disparity")
DIGITS = 6  # decimals of the lender's effect columns
VERDICT_COLUMNS = ("min_detectable_odds_ratio", "effect_comparison", "odds_ratio", *EFFECT_COLUMNS)


class LenderEvidence:
    """The lenders' rows of ``denial_odds``, grouped once."""

    def __init__(self, denial_odds: pd.DataFrame, comparisons: Sequence[str]) -> None:
        order = {name: index for index, name in enumerate(comparisons)}
        columns = ["comparison", "reason", "p_adjusted", "min_detectable_odds_ratio", "odds_ratio", *EFFECT_COLUMNS]
        self._rows: dict[str, list[dict[str, object]]] = {}
        # one conversion of the whole table, grouped by lender in its row order (a frame per lender cost more)
        for lei, record in zip(denial_odds["lei"].astype(str), denial_odds[columns].to_dict("records"), strict=True):
            self._rows.setdefault(lei, []).append(record)
        for records in self._rows.values():
            records.sort(key=lambda row: order.get(str(row["comparison"]), len(order)))

    def status(self, lei: str, flagged: bool, threshold: float) -> str:
        if flagged:
            return FLAGGED
        computed = [row for row in self._rows.get(lei, []) if row["reason"] == ""]
        if not computed:
            return NOT_TESTED
        power = [float(row["min_detectable_odds_ratio"]) for row in computed]  # type: ignore[arg-type]
        return CLEARED if any(value <= threshold for value in power if not math.isnan(value)) else UNDERPOWERED

    def columns(self, lei: str, violations: Sequence[str]) -> dict[str, object]:
        """The ``VERDICT_COLUMNS`` of one lender (NaN and '' when nothing was computed)."""
        computed = [row for row in self._rows.get(lei, []) if row["reason"] == ""]
        power = [float(row["min_detectable_odds_ratio"]) for row in computed]  # type: ignore[arg-type]
        best = min((p for p in power if not math.isnan(p)), default=math.nan)
        found: dict[str, object] = {"min_detectable_odds_ratio": best}
        driving = _driving(computed, violations)
        found["effect_comparison"] = str(driving["comparison"]) if driving else ""
        for name in ("odds_ratio", *EFFECT_COLUMNS):
            found[name] = float(driving[name]) if driving else math.nan  # type: ignore[arg-type]
        # Rounded: a fit's last bits depend on the order of its sums (row ids), and lenders.parquet is
        # byte-identical whatever the input's row order.
        return {name: round(value, DIGITS) if isinstance(value, float) else value for name, value in found.items()}


def _driving(computed: list[dict[str, object]], violations: Sequence[str]) -> dict[str, object] | None:
    redlining_only = REDLINING in violations and not any(label in violations for label in TREATMENT)
    own = [row for row in computed if (row["comparison"] == REDLINING_COMPARISON) == redlining_only]
    candidates = own or computed
    if not candidates:
        return None

    def key(row: dict[str, object]) -> tuple[int, float, float]:
        p = float(row["p_adjusted"])  # type: ignore[arg-type]
        ratio = float(row["odds_ratio"])  # type: ignore[arg-type]
        return (0 if ratio > 1 else 1, 2.0 if math.isnan(p) else p, -ratio if math.isfinite(ratio) else 0.0)

    return min(candidates, key=key)  # min keeps the first of equal keys: audit.toml order


def lender_evidence(denial_odds: pd.DataFrame, comparisons: Sequence[str]) -> LenderEvidence:
    return LenderEvidence(denial_odds, comparisons)
