"""The fair-lending audit: rule library + HMDA facts → findings, reports and a manifest.

    read (``files.read_hmda``) → clean (``hmda.clean_hmda``) → tables (similar pairs and
    statistics, ``tables.audit_tables``) → the engine (``pipeline.run`` with the tables bound
    in memory) → findings (``score.score``) → outputs (``outputs.write_outputs``)

``audit(...)`` returns an ``Audit`` holding every stage's result; nothing is written until
``outputs.write_outputs``, which writes to a temporary directory and moves it into place.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from reasoner.check import QueryPattern
from reasoner.errors import EvidenceError, UsageError
from reasoner.evidence import MemoryTable, file_sha256, read_table
from reasoner.lending.config import AuditConfig, find_config, load_config
from reasoner.lending.files import read_hmda
from reasoner.lending.hmda import INPUT_COLUMNS, CleanedHMDA, clean_hmda
from reasoner.lending.score import Findings, score
from reasoner.lending.tables import PAIR_COLUMNS, AuditTables, audit_tables
from reasoner.parse import rule_files
from reasoner.pipeline import Run, run

__all__ = ["Audit", "audit", "builtin_rules"]


@dataclass(frozen=True, slots=True)
class Audit:
    rules: tuple[Path, ...]  # every rule file, in the order read
    config: AuditConfig
    facts: Path
    facts_sha256: str
    cleaned: CleanedHMDA
    tables: AuditTables
    run: Run
    findings: Findings
    options: dict[str, object]
    seconds: dict[str, float] = field(default_factory=dict)
    pairs_source: Path | None = None
    pairs_sha256: str = ""
    model_evidence: dict[str, pd.DataFrame] | None = None  # the model tables when --model-evidence was given
    model_source: dict[str, str] | None = None  # its directory, model and digests


def builtin_rules() -> Path:
    """The rule library shipped with the package (``rules/`` of the source tree)."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "rules", package.parent / "rules"):
        if (candidate / "audit.toml").is_file():
            return candidate
    raise UsageError("the rule library (rules/audit.toml) is missing from the installation")


def audit(
    rules: Sequence[Path],
    facts: Path,
    *,
    pairs: Path | None = None,
    workers: int = 1,
    time_limit: float | None = None,
    progress: Callable[[str], None] = lambda message: None,
    model_evidence: Path | None = None,
) -> Audit:
    """Run the audit of ``facts`` under the rule files ``rules`` (directories or files).

    ``model_evidence``: the output directory of ``reason audit-model``, whose tables
    (``reasoner.model.evidence``) the model rules bind; without it they are bound empty.
    """
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[stage] = round(now - clock, 3)
        clock = now

    config_path = find_config(list(rules))
    if config_path is None:
        raise UsageError("no audit.toml beside the rule files: the audit needs its settings (see rules/audit.toml)")
    config = load_config(config_path)
    model_tables, model_source = _model_tables(model_evidence)  # before the work: a wrong directory fails fast
    progress(f"reading {facts}")
    raw = read_hmda(facts, INPUT_COLUMNS)
    cleaned = clean_hmda(raw, facts.name)
    del raw
    facts_sha256 = file_sha256(facts) if facts.is_file() else ""
    lap("read")
    progress(f"{cleaned.rows_read:,} rows read; finding similar applicants and computing statistics")
    given_pairs = _read_pairs(pairs) if pairs is not None else None
    tables = audit_tables(cleaned, config, given_pairs)
    lap("similarity and statistics")
    progress(f"{len(tables.pairs):,} similar pairs; grounding and solving the rules")
    pairs_sha256 = file_sha256(pairs) if pairs is not None else ""
    # Input tables are cited by file name and identified by the file's digest; computed ones by content.
    inputs = {"applications": (facts.name, facts_sha256), "pairs": (pairs.name if pairs else "", pairs_sha256)}
    memory = {
        name: MemoryTable(frame, *inputs[name]) if inputs.get(name, ("", ""))[1] else MemoryTable.of(frame, name)
        for name, frame in tables.named().items()
    }
    memory.update({name: MemoryTable.of(frame, name) for name, frame in model_tables.items()})
    queries = [config.lender_verdict, "Cleared", *(name for name, _ in config.lender_kinds), *(name for name, _ in config.application_findings)]
    result = run(
        list(rules),
        (),
        memory,
        [QueryPattern(name) for name in queries],
        margins=[config.lender_verdict, *(name for name, _ in config.application_findings)],
        workers=workers,
        time_limit=time_limit,
    )
    for stage, spent in result.seconds.items():
        seconds[f"engine: {stage}"] = round(spent, 3)
    lap("reasoning")
    progress("scoring and explaining the findings")
    findings = score(result, tables, config)
    lap("scoring")
    files = tuple(rule_files(list(rules)))
    options = {"workers": workers, "time_limit": time_limit, "pairs": str(pairs) if pairs else None}
    if model_evidence is not None:
        options["model_evidence"] = str(model_evidence)
    return Audit(
        files, config, facts, facts_sha256, cleaned, tables, result, findings, options, seconds, pairs, pairs_sha256,
        model_tables if model_evidence is not None else None, model_source,
    )


def _model_tables(path: Path | None) -> tuple[dict[str, pd.DataFrame], dict[str, str] | None]:
    from reasoner.model.evidence import empty_model_evidence, read_model_evidence

    if path is None:
        return empty_model_evidence(), None
    return read_model_evidence(path)


def _read_pairs(path: Path) -> pd.DataFrame:
    """A precomputed pair table, with the columns the rules and statistics need."""
    table = read_table(path)
    missing = [name for name in PAIR_COLUMNS if name != "spread_gap" and name not in table.columns]
    if missing:
        raise EvidenceError(
            f"error: {path}: the pair table has no column {', '.join(repr(name) for name in missing)}; "
            f"expected columns {', '.join(PAIR_COLUMNS[:-1])} (comparison name, compared and reference "
            "application ids, distance, rank, lender); it has: " + ", ".join(map(str, table.columns))
        )
    return table
