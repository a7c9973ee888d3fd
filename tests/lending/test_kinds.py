"""One table of evidence kinds (``evidence.kinds``) drives the explanation records, `reason explain` and the report."""

from __future__ import annotations

import importlib

from reasoner.lending.evidence.kinds import EVIDENCE_KINDS, LENDER_PAGE, STATISTIC_TABLES, VIOLATION_TABLES
from reasoner.lending.evidence.tables import PartitionTables


def test_every_kind_is_a_table_of_the_audit_and_renders_in_every_output_meant_to_show_it() -> None:
    explain = importlib.import_module("reasoner.lending.outputs.explain_finding")
    report = importlib.import_module("reasoner.lending.outputs.report")
    fields = set(PartitionTables.__dataclass_fields__)
    for kind in EVIDENCE_KINDS:
        assert kind.table in fields, kind.table
        assert kind.table in explain.STATISTICS, f"reason explain cannot word {kind.table} rows"
        if kind.page is not None:
            assert kind.title, kind.table
    page = [kind.table for kind in LENDER_PAGE]
    assert list(report._PAGE_TABLES) == sorted(report._PAGE_TABLES, key=page.index) == page  # noqa: SLF001
    assert set(report._PAGE_FIGURES) == set(page)  # noqa: SLF001
    assert page == ["denial_odds", "matched_pairs", "redlining", "pricing"]


def test_violations_name_the_tables_that_bear_on_them() -> None:
    assert VIOLATION_TABLES["disparate treatment"] == ("denial_odds", "matched_pairs")
    assert VIOLATION_TABLES["redlining"] == ("redlining",)
    assert {table for tables in VIOLATION_TABLES.values() for table in tables} == set(STATISTIC_TABLES)
