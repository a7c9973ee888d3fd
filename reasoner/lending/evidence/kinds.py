"""The kinds of statistical evidence a finding rests on, declared once.

Each per-lender statistics table of the audit (``PartitionTables``) is one evidence kind: what
its rows are about, which lender violations it bears on, whether and where the report's lender
pages show it and under which heading. The audit's explanation records, ``reason explain``,
``report.md`` and ``report.html`` take the list of tables, their order and these facts from here;
each output keeps only the rendering of a row, found by the kind's table name (a test checks that
every output renders every kind it is meant to).

This module imports nothing heavy: ``reason explain`` reads it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["EVIDENCE_KINDS", "LENDER_PAGE", "STATISTIC_TABLES", "VIOLATION_TABLES", "EvidenceKind", "evidence_kind"]


@dataclass(frozen=True, slots=True)
class EvidenceKind:
    """One statistics table of the audit, as the outputs present it."""

    table: str  # the audit table (and the citation label "denial_odds row 3")
    unit: str  # what one of its rows is about, in the plural: "comparisons", "markets"
    violations: tuple[str, ...]  # the lender violations (audit.toml [findings] lender_kinds) it bears on
    title: str = ""  # its heading on the report's HTML lender page
    page: int | None = None  # its place on the report's lender pages; None: not shown there


# In the order of the explanation records' "statistics" and of `reason explain`.
EVIDENCE_KINDS: tuple[EvidenceKind, ...] = (
    EvidenceKind(
        "denial_odds",
        "comparisons",
        ("disparate treatment",),
        "Approval controlled for financials: adjusted denial odds",
        page=0,
    ),
    EvidenceKind("matched_pairs", "comparisons", ("disparate treatment",), "Matched-pair outcomes", page=1),
    EvidenceKind(
        "pricing", "comparisons", ("pricing disparity",), "Pricing: rate spread among originated loans", page=3
    ),
    EvidenceKind("redlining", "markets", ("redlining",), "Minority tracts against peers of similar volume", page=2),
    # Interaction tests are cited by the intersectional rule's proofs; the lender pages do not list them.
    EvidenceKind("interactions", "interactions", ("intersectional disparity",)),
)

STATISTIC_TABLES: tuple[str, ...] = tuple(kind.table for kind in EVIDENCE_KINDS)
# The kinds on a lender page, in page order.
LENDER_PAGE: tuple[EvidenceKind, ...] = tuple(
    sorted((kind for kind in EVIDENCE_KINDS if kind.page is not None), key=lambda kind: kind.page or 0)
)
# The statistics that bear on each lender violation; a label not listed gets every table.
VIOLATION_TABLES: dict[str, tuple[str, ...]] = {
    label: tuple(other.table for other in EVIDENCE_KINDS if label in other.violations)
    for kind in EVIDENCE_KINDS
    for label in kind.violations
}


def evidence_kind(table: str) -> EvidenceKind | None:
    """The kind of the audit table ``table``; None for a table that is not a statistic."""
    return next((kind for kind in EVIDENCE_KINDS if kind.table == table), None)
