"""Evidence the rules weigh: similar applicants, per-lender statistics (denial odds, matched pairs,
pricing, redlining, interactions), their power and effect sizes, denial reasons, and the tables
bound to the rules.

The names below are imported on first use (``reasoner.lazy``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reasoner.lazy import lazy_names

if TYPE_CHECKING:
    from reasoner.lending.evidence.denial_reasons import contradicted_reasons, reason_mix
    from reasoner.lending.evidence.effects import effect_sizes
    from reasoner.lending.evidence.interaction import interaction_tests
    from reasoner.lending.evidence.kinds import EVIDENCE_KINDS, STATISTIC_TABLES, EvidenceKind, evidence_kind
    from reasoner.lending.evidence.power import min_detectable_odds_ratio
    from reasoner.lending.evidence.redlining import redlining_signals
    from reasoner.lending.evidence.similar import SimilaritySpec, similar_pairs
    from reasoner.lending.evidence.statistics import (
        Covariates,
        holm_adjusted,
        lender_denial_odds,
        matched_pair_test,
        pricing_disparity,
    )
    from reasoner.lending.evidence.tables import PartitionTables, audit_tables

__all__ = [
    "EVIDENCE_KINDS",
    "STATISTIC_TABLES",
    "Covariates",
    "EvidenceKind",
    "PartitionTables",
    "SimilaritySpec",
    "audit_tables",
    "contradicted_reasons",
    "effect_sizes",
    "evidence_kind",
    "holm_adjusted",
    "interaction_tests",
    "lender_denial_odds",
    "matched_pair_test",
    "min_detectable_odds_ratio",
    "pricing_disparity",
    "reason_mix",
    "redlining_signals",
    "similar_pairs",
]

__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "contradicted_reasons": "denial_reasons",
        "reason_mix": "denial_reasons",
        "effect_sizes": "effects",
        "interaction_tests": "interaction",
        "EVIDENCE_KINDS": "kinds",
        "STATISTIC_TABLES": "kinds",
        "EvidenceKind": "kinds",
        "evidence_kind": "kinds",
        "min_detectable_odds_ratio": "power",
        "redlining_signals": "redlining",
        "SimilaritySpec": "similar",
        "similar_pairs": "similar",
        "Covariates": "statistics",
        "holm_adjusted": "statistics",
        "lender_denial_odds": "statistics",
        "matched_pair_test": "statistics",
        "pricing_disparity": "statistics",
        "PartitionTables": "tables",
        "audit_tables": "tables",
    },
)
