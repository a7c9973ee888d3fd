"""One partition of the audit: a few whole lenders → their tables, MAP world and findings.

    PartitionTask (cleaned rows of some lenders + what the whole register decides for them)
        ──audit_partition──▶ PartitionResult (statistics, findings and proofs of those lenders)

Every rule of the library is about one lender (its applications, its pairs, its statistics),
similar pairs never cross lenders (``lei`` is a block column) and the network's components
never do either, so a partition of whole lenders is grounded, solved and scored on its own
and gives the same atoms, values and margins as the network of the whole register. What
depends on other lenders is decided once for the whole register and handed in: the
similarity scaling (fitted on every usable row) and the redlining table (a lender against its
MSA peers).

The partition renders its findings' explanations itself (``explanations.render``), with
evidence citations ("pairs row 17") numbered within the partition's tables; ``PartitionResult``
carries the rendered lines, not the proofs, and the sizes of its tables, from which the audit
renumbers the citations as rows of the whole register's tables once every partition is back.

The function is at module level and its input and output pickle, so a partition runs in this
process, a worker process or a cluster worker alike.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd

from reasoner.check import CheckedProgram, QueryPattern
from reasoner.evidence import MemoryTable
from reasoner.lending.audit.explanations import Rendered, render
from reasoner.lending.audit.score import Findings, score
from reasoner.lending.config import AuditConfig
from reasoner.lending.evidence.similar import PairCounts, Scaling
from reasoner.lending.evidence.tables import PartitionTables, audit_tables
from reasoner.limits import current, peak_memory
from reasoner.pipeline import check, run

__all__ = ["CITED_TABLES", "REPORT_TABLES", "EngineSummary", "PartitionResult", "PartitionTask", "audit_partition"]

# sorted by lei first
CITED_TABLES = ("lenders", "denial_odds", "matched_pairs", "pricing", "redlining", "outliers", "interactions")
REPORT_TABLES = ("reason_mix", "contradicted_reasons")  # per lender, for the report only (not bound, never cited)


@dataclass(frozen=True, slots=True)
class EngineSummary:
    """What the engine did for some lenders: status, cost, size of the ground network."""

    status: str  # optimal | feasible | unsatisfiable
    cost: Decimal
    ground_formulas: int
    components: int
    lower_bound: Decimal  # equals cost when optimal
    unfinished_components: int = 0  # components the time limit stopped before proving them optimal

    @staticmethod
    def combine(parts: list[EngineSummary]) -> EngineSummary:
        statuses = {part.status for part in parts}
        status = next((name for name in ("unsatisfiable", "feasible") if name in statuses), "optimal")
        return EngineSummary(
            status,
            sum((part.cost for part in parts), Decimal(0)),
            sum(part.ground_formulas for part in parts),
            sum(part.components for part in parts),
            sum((part.lower_bound for part in parts), Decimal(0)),
            sum(part.unfinished_components for part in parts),
        )


@dataclass(frozen=True, slots=True)
class PartitionTask:
    """Whole lenders to audit, and what the whole register decides for them.

    ``frame``: the cleaned rows of these lenders in input order (``hmda.CLEAN_COLUMNS``);
    ``scaling``: the similarity scaling of the whole register; ``redlining``: the rows of the
    whole register's redlining table about these lenders, or a function that gives them (called once
    the statistics are made: the audit makes them while the partitions run); ``pairs``: the rows of a
    given pair table (None: search).
    """

    index: int
    rules: tuple[Path, ...]
    config: AuditConfig
    frame: pd.DataFrame
    scaling: Scaling | None
    redlining: pd.DataFrame | Callable[[], pd.DataFrame]
    pairs: pd.DataFrame | None
    facts_label: str
    facts_sha256: str
    pairs_label: str = ""
    pairs_sha256: str = ""
    time_limit: float | None = None
    model: dict[str, pd.DataFrame] = field(default_factory=dict)  # rows of the model tables about these lenders


@dataclass(frozen=True, slots=True)
class PartitionResult:
    """Findings of a partition's lenders, with citations numbered within the partition.

    ``tables`` the per-lender tables (``CITED_TABLES`` and the model tables), ``pair_rows`` the
    partition's pairs per comparison, ``rows`` the input row of each of its applications,
    ``findings`` its lenders and application findings (without proofs: those are rendered in
    ``explanations``, citing the partition's own rows).
    """

    index: int
    lenders: int
    applications: int
    tables: dict[str, pd.DataFrame]
    pair_counts: dict[str, PairCounts]
    pair_rows: dict[str, int]
    rows: np.ndarray
    findings: Findings
    explanations: Rendered
    engine: EngineSummary
    seconds: dict[str, float] = field(default_factory=dict)
    peak_memory: int = 0  # peak resident bytes of the process that audited it, so far


def audit_partition(task: PartitionTask) -> PartitionResult:
    """Tables, MAP world and findings of the task's lenders (module docstring)."""
    seconds: dict[str, float] = {}
    clock = time.perf_counter()
    config = task.config
    rows = task.frame["row"].to_numpy(dtype=np.int64)
    frame = task.frame.reset_index(drop=True)
    redlining = task.redlining
    given = redlining if isinstance(redlining, pd.DataFrame) else _NONE
    tables = audit_tables(frame, config, task.pairs, scaling=task.scaling, redlining=given)
    seconds["similarity and statistics"] = time.perf_counter() - clock
    if not isinstance(redlining, pd.DataFrame):  # its rows are taken last: only the engine binds them
        tables = dataclasses.replace(tables, redlining=redlining().reset_index(drop=True))
    inputs = {"applications": (task.facts_label, task.facts_sha256), "pairs": (task.pairs_label, task.pairs_sha256)}
    # An input's rows are cited as its rows, under its digest (a directory has none). The tables computed here
    # get no digest: nothing reports a source's digest in the audit, and hashing the pair table's hundred
    # thousand rows cost 5% of a partition's engine time.
    memory: dict[str, Path | MemoryTable] = {}
    for name, table in tables.named().items():
        label, digest = inputs.get(name, ("", ""))
        memory[name] = MemoryTable(table, label or name, digest)
    memory.update({name: MemoryTable(table.reset_index(drop=True), name, "") for name, table in task.model.items()})
    queries = [
        config.lender_verdict,
        "Cleared",
        *(name for name, _ in config.lender_kinds),
        *(name for name, _ in config.application_findings),
    ]
    patterns = [QueryPattern(name) for name in queries]
    result = run(
        list(task.rules),
        tables=memory,
        queries=patterns,
        limits=current(),
        program=_checked(task.rules, tuple(queries), _stamps(task.rules)),
        margins=[config.lender_verdict, *(name for name, _ in config.application_findings)],
        workers=1,
        time_limit=task.time_limit,
    )
    for stage, spent in result.seconds.items():
        seconds[f"engine: {stage}"] = spent
    clock = time.perf_counter()
    findings = score(result, tables, config)
    seconds["scoring"] = time.perf_counter() - clock
    clock = time.perf_counter()
    explanations = render(findings, tables, config, task.facts_label)
    findings = Findings(findings.lenders, findings.applications, {})  # the proofs travel rendered
    seconds["explanations"] = time.perf_counter() - clock
    solution = result.solution
    engine = EngineSummary(
        solution.status,
        result.cost(solution.cost),
        int(sum(len(block.substitutions) for block in result.network.blocks)),
        int(str(solution.stats.get("components", 0))),
        result.cost(solution.lower_bound),
        int(str(solution.stats.get("unfinished_components", 0))),
    )
    return PartitionResult(
        index=task.index,
        lenders=len(tables.lenders),
        applications=len(frame),
        tables={name: getattr(tables, name) for name in (*CITED_TABLES, *REPORT_TABLES)} | dict(task.model),
        pair_counts=tables.pair_counts,
        pair_rows=_pair_rows(tables),
        rows=rows,
        findings=findings,
        explanations=explanations,
        engine=engine,
        seconds=seconds,
        peak_memory=peak_memory(),
    )


_NONE = pd.DataFrame()  # the redlining rows until they are given


@functools.lru_cache(maxsize=4)
def _checked(rules: tuple[Path, ...], queries: tuple[str, ...], stamps: tuple[tuple[int, int], ...]) -> CheckedProgram:
    """The rules parsed and checked once per process, not once per partition (``stamps``:
    size and modification time of each file, so a long-lived cluster worker sees edits)."""
    return check(list(rules), queries=[QueryPattern(name) for name in queries], limits=current())


def _stamps(rules: tuple[Path, ...]) -> tuple[tuple[int, int], ...]:
    return tuple((path.stat().st_size, path.stat().st_mtime_ns) for path in rules)


def _pair_rows(tables: PartitionTables) -> dict[str, int]:
    counts = tables.pairs["comparison"].value_counts(sort=False)
    return {str(name): int(count) for name, count in counts.items()}
