"""What the report says about power, effect sizes and denial reasons (the content; ``report``
renders it as Markdown and HTML with its own table helpers).

- ``untested_table``: lenders not flagged whose tests could not tell (``NOT_TESTED``,
  ``UNDERPOWERED``), with their usable applications, the smallest odds ratio their best
  comparison could detect, and the strongest comparison's odds ratio and excess denials:
  weak-but-real evidence is visible there even though no test reached significance.
- ``effect_sentence``: a lender page's effect of the comparison that drives its finding.
- ``denial_reason_tables``: Regulation B denial reasons (``denial_reasons``): contradicted
  reasons and reason-mix differences whose Holm-adjusted p-value is below ``REASON_ALPHA``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from reasoner.lending.audit.run import Audit
from reasoner.lending.config import STATUS_TIERS
from reasoner.lending.evidence.denial_reasons import CLTV_LIMIT, DTI_LIMIT

__all__ = ["REASON_ALPHA", "SectionTable", "denial_reason_tables", "effect_sentence", "untested_table"]

REASON_ALPHA = 0.05  # Holm-adjusted p below which a denial-reason difference is reported


@dataclass(frozen=True, slots=True)
class SectionTable:
    caption: str  # Markdown inline syntax
    headers: tuple[str, ...]
    rows: list[tuple[object, ...]]


UNTESTED_HEADERS = (
    "LEI",
    "status",
    "usable applications",
    "smallest detectable odds ratio",
    "strongest comparison",
    "odds ratio",
    "excess denials (95% CI)",
)


def _interval(value: object, low: object, high: object) -> str:
    if not _finite(value):
        return "–"
    return f"{float(value):.1f} ({float(low):.1f} to {float(high):.1f})"  # type: ignore[arg-type]


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def untested_table(lenders: pd.DataFrame) -> SectionTable | None:
    """The lenders whose verdict is ``NOT_TESTED`` or ``UNDERPOWERED``; None when there are none."""
    chosen = lenders[lenders["verdict_status"].isin(STATUS_TIERS)]
    if chosen.empty:
        return None
    rows: list[tuple[object, ...]] = [
        (
            r.lei,
            r.verdict_status,
            int(r.usable_applications),
            r.min_detectable_odds_ratio,
            r.effect_comparison or "–",
            r.odds_ratio,
            _interval(r.excess_denials, r.excess_denials_ci_low, r.excess_denials_ci_high),
        )
        for r in chosen.sort_values(["verdict_status", "lei"], kind="stable").itertuples(index=False)
    ]
    not_tested = int((chosen["verdict_status"] == "NOT_TESTED").sum())
    caption = (
        f"{len(chosen):,} lenders are not flagged but their tests could not tell: {not_tested:,} not tested (no "
        "comparison could be computed: no reference or compared applicants, or every application decided the same "
        f"way) and {len(chosen) - not_tested:,} underpowered (no comparison could have detected a doubling of the "
        "denial odds: two-sided test at alpha 0.05 with 80% power). Not being flagged is no evidence of compliance "
        "for them. The strongest comparison's odds ratio and excess denials show evidence too weak to test."
    )
    return SectionTable(caption, UNTESTED_HEADERS, rows)


def effect_sentence(r: Any) -> str:
    """The effect of the comparison that drives a lender's finding, and its power (Markdown inline)."""
    parts = []
    if _finite(r.marginal_effect):
        parts.append(
            f"Denial effect ({r.effect_comparison}): odds ratio {r.odds_ratio:.2f}; group membership changes the "
            "denial "
            f"probability by {100 * r.marginal_effect:+.1f} points (95% CI {100 * r.marginal_effect_ci_low:+.1f} to "
            f"{100 * r.marginal_effect_ci_high:+.1f}), "
            f"{_interval(r.excess_denials, r.excess_denials_ci_low, r.excess_denials_ci_high)} excess denials."
        )
    if _finite(r.min_detectable_odds_ratio):
        parts.append(f"Smallest detectable odds ratio: {r.min_detectable_odds_ratio:.2f}.")
    return " ".join(parts)


CONTRADICTED_HEADERS = (
    "LEI",
    "comparison",
    "compared: denials",
    "contradicted",
    "reference: denials",
    "contradicted",
    "p",
    "p (Holm)",
)
MIX_HEADERS = (
    "LEI",
    "comparison",
    "reason",
    "compared: denials",
    "citing it",
    "reference: denials",
    "citing it",
    "p",
    "p (Holm)",
)


def denial_reason_tables(audit: Audit) -> tuple[str, list[SectionTable]]:
    """The denial-reason section's introduction and its tables (only what is significant)."""
    mix = audit.tables.reason_mix
    contradicted = audit.tables.contradicted_reasons
    intro = (
        "Regulation B (12 CFR 1002.9) requires the specific principal reasons for a denial, and they must be "
        "accurate (CFPB Circular 2023-03). Among each lender's usable denied applications, per comparison: the "
        "reasons cited (all of `denial_reason_1` … `_4` the input has) by each group, and the denials whose reasons "
        f"contradict the reported file (debt-to-income cited with a DTI below {DTI_LIMIT:g}%, collateral cited "
        f"with a combined LTV below {CLTV_LIMIT:g}%). One-sided Fisher exact tests that the compared group's "
        f"denials cite a reason, or are contradicted, more often; listed when the p-value adjusted by Holm's method "
        f"over the lender's tests is below {REASON_ALPHA:g}."
    )
    if "denial_reason_1" in audit.cleaned.absent_columns:
        return intro + " The input has no denial reasons (`denial_reason_1` is absent): nothing to compare.", []
    if mix.empty and contradicted.empty:
        return intro + " No lender has denials in both groups of a comparison.", []
    tables = []
    found = contradicted[contradicted["p_adjusted"] < REASON_ALPHA]
    tables.append(
        SectionTable(
            f"Contradicted reasons: {len(found):,} of {len(contradicted):,} lender × comparison cells with an "
            "excess for the compared group:",
            CONTRADICTED_HEADERS,
            [
                (
                    r.lei,
                    r.comparison,
                    int(r.compared_denials),
                    int(r.compared_contradicted),
                    int(r.reference_denials),
                    int(r.reference_contradicted),
                    r.p_value,
                    r.p_adjusted,
                )
                for r in found.itertuples(index=False)
            ],
        )
    )
    found = mix[mix["p_adjusted"] < REASON_ALPHA]
    tables.append(
        SectionTable(
            f"Reason mix: {len(found):,} of {len(mix):,} lender × comparison × reason cells where the compared "
            "group's denials cite the reason more often:",
            MIX_HEADERS,
            [
                (
                    r.lei,
                    r.comparison,
                    r.reason_name,
                    int(r.compared_denials),
                    int(r.compared_citing),
                    int(r.reference_denials),
                    int(r.reference_citing),
                    r.p_value,
                    r.p_adjusted,
                )
                for r in found.itertuples(index=False)
            ],
        )
    )
    return intro, tables
