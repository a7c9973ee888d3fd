"""The fair-lending audit: rule library + HMDA facts → findings, reports and a manifest.

    read and clean (``hmda.read_clean``: only the columns the audit uses, piece by piece)
    → the register-wide pass (similarity scaling, redlining against MSA peers, lenders)
    → partitions of whole lenders, each on its own (``partition.audit_partition``: similar
      pairs and statistics, the engine with the tables bound in memory, scoring)
    → gathered findings, citations renumbered as rows of the whole register's tables
    → outputs (``outputs.write_outputs``)

Partitions hold whole lenders, consecutive in LEI order, at most ``partition_rows`` rows each
(a lender larger than that is a partition by itself; by default as many as the largest lender's,
and at least ``PARTITION_ROWS``, and with several worker processes smaller towards the end so that
they finish together, the largest dispatched first), so memory follows the largest lender and
partitions run in worker processes (``workers``) or on a Dask cluster (``cluster``). Every rule is
about one lender, so the gathered findings are those of one network for the whole register, byte
for byte, whatever the partitions, workers or cluster (tests check it).

``audit(...)`` returns an ``Audit`` holding what the outputs need; nothing is written until
``outputs.write_outputs``, which writes to a temporary directory and moves it into place.
"""

from __future__ import annotations

import ctypes
import dataclasses
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from reasoner import limits
from reasoner.errors import EvidenceError, UsageError
from reasoner.evidence import file_sha256, read_table
from reasoner.lending.audit.explanations import Explanations, Numbering, Rendered, Spilled, numberings, spill
from reasoner.lending.audit.partition import (
    CITED_TABLES,
    REPORT_TABLES,
    EngineSummary,
    PartitionResult,
    PartitionTask,
    audit_partition,
)
from reasoner.lending.audit.progress import Progress, StageTiming
from reasoner.lending.audit.score import Findings
from reasoner.lending.config import (
    GROUP_COLUMNS,
    AuditConfig,
    ColumnMap,
    check_config_columns,
    check_config_predicates,
    check_covariate_types,
    check_proxy_columns,
    find_config,
    load_column_map,
    load_config,
)
from reasoner.lending.evidence.redlining import RedliningCells, redlining_columns
from reasoner.lending.evidence.similar import PairCounts, Scaling, fit_scaling
from reasoner.lending.evidence.tables import PAIR_COLUMNS, register_redlining_cells, similarity_spec
from reasoner.lending.proxies.register import ProxyColumns, ProxyReport, with_proxies
from reasoner.lending.registers.compact import CompactFrame, compact
from reasoner.lending.registers.files import column_names, parquet_rows
from reasoner.lending.registers.hmda import CLEAN_COLUMNS, read_clean, release_arrow_memory
from reasoner.lending.registers.values import describe_rows
from reasoner.parse import parse_program, rule_files
from reasoner.syntax import PredicateDeclaration

__all__ = ["PARTITION_ROWS", "Audit", "AuditTables", "Register", "audit", "builtin_rules", "default_workers"]

# The least number of rows per partition by default (whole lenders; a larger lender is one partition). By default a
# partition may hold as many rows as the largest lender, which sets the peak memory anyway: a partition costs ~0.2 CPU s
# of its own (the engine's tables and frames, per-call set-up of the statistics). At 1,000,000 rows (2 workers,
# largest lender 15,544 rows) partitions of at most 20,000, 40,000 and 60,000 rows took 37.0/35.8, 33.5/33.6 and
# 31.6/32.3 s, the largest worker peaking at 475, 590 and 645 MB (benchmarks/HISTORY.md).
PARTITION_ROWS = 40_000
# The least rows of a partition cut smaller towards the end of the register (``_partitions``, several worker processes,
# default limit): below it a partition's own ~0.2 CPU s outweighs the idle core it saves.
TAIL_ROWS = 10_000
PARTITION_STAGES = (
    "similarity and statistics",
    "engine: parse",
    "engine: evidence",
    "engine: ground",
    "engine: encode",
    "engine: solve",
    "scoring",
    "explanations",
)


@dataclass(frozen=True, slots=True)
class Register:
    """What was read: rows, usable rows, exclusions by reason, the id column, absent columns."""

    rows_read: int
    usable: int
    exclusions: dict[str, int]
    id_column: str
    absent_columns: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()  # format, transmittal sheet, group treatment (``CleanedHMDA.provenance_notes``)
    warnings: tuple[str, ...] = ()  # what the command line says on stderr too (``CleanedHMDA.warnings``)


@dataclass(frozen=True, slots=True)
class AuditTables:
    """The per-lender tables of every lender (``tables.PartitionTables`` gathered over partitions).

    The pair table itself is not kept (it is the largest and no output lists it): ``pair_rows``
    is its number of rows and ``pair_counts`` what the search did per comparison.
    """

    lenders: pd.DataFrame
    denial_odds: pd.DataFrame
    matched_pairs: pd.DataFrame
    pricing: pd.DataFrame
    redlining: pd.DataFrame
    outliers: pd.DataFrame
    interactions: pd.DataFrame
    pair_rows: int
    pair_counts: dict[str, PairCounts] = field(default_factory=dict)
    pairs_given: bool = False
    reason_mix: pd.DataFrame = field(default_factory=pd.DataFrame)  # denial reasons by group (report only)
    contradicted_reasons: pd.DataFrame = field(default_factory=pd.DataFrame)


@dataclass(frozen=True, slots=True)
class Audit:
    rules: tuple[Path, ...]  # every rule file, in the order read
    config: AuditConfig
    facts: Path
    facts_sha256: str
    cleaned: Register
    tables: AuditTables
    engine: EngineSummary
    findings: Findings  # without proofs: they are rendered in ``explanations``
    explanations: Explanations
    options: dict[str, object]
    seconds: dict[str, float] = field(default_factory=dict)
    pairs_source: Path | None = None
    pairs_sha256: str = ""
    stages: tuple[StageTiming, ...] = ()
    model_evidence: dict[str, pd.DataFrame] | None = None  # the model tables when --model-evidence was given
    model_source: dict[str, str] | None = None  # its directory, model and digests
    peak_memory: dict[str, int] = field(default_factory=dict)  # resident bytes: 'main', 'largest worker'


def builtin_rules() -> Path:
    """The rule library shipped with the package (``rules/`` of the source tree)."""
    package = Path(__file__).resolve().parents[2]  # reasoner/
    for candidate in (package / "rules", package.parent / "rules"):
        if (candidate / "audit.toml").is_file():
            return candidate
    raise UsageError("the rule library (rules/audit.toml) is missing from the installation")


def default_workers() -> int:
    """Every core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def audit(
    rules: Sequence[Path],
    facts: Path,
    *,
    pairs: Path | None = None,
    workers: int | None = None,
    time_limit: float | None = None,
    progress: Progress | None = None,
    partition_rows: int | None = None,
    cluster: str | None = None,
    model_evidence: Path | None = None,
) -> Audit:
    """Run the audit of ``facts`` under the rule files ``rules`` (directories or files).

    ``model_evidence``: the output directory of ``reason audit-model``, whose tables
    (``reasoner.model.evidence``) the model rules bind; without it they are bound empty.

    ``workers``: processes for the partitions (None: every core); ``cluster``: the address of
    a Dask scheduler that runs the partitions instead (``tcp://host:8786``); ``partition_rows``:
    the most rows of a partition of whole lenders (a larger lender is one partition; None: as many
    as the largest lender's, at least ``PARTITION_ROWS``, and with several worker processes smaller
    towards the end, dispatched largest first: ``_partitions``). The results do not depend on them.
    """
    progress = progress or Progress(False)
    workers = default_workers() if workers is None else workers
    if workers < 1:
        raise UsageError("--workers must be at least 1")
    if partition_rows is not None and partition_rows < 1:
        raise UsageError("--partition-rows must be at least 1")
    seconds: dict[str, float] = {}
    stages: list[StageTiming] = []
    started = clock = time.perf_counter()

    def lap(stage: str, count: int = 0, unit: str = "") -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[stage] = round(now - clock, 3)
        stages.append(StageTiming(stage, now - clock, count, unit))
        clock = now

    config_path = find_config(list(rules))
    if config_path is None:
        raise UsageError("no audit.toml beside the rule files: the audit needs its settings (see rules/audit.toml)")
    config = load_config(config_path)
    files = tuple(rule_files(list(rules)))
    check_config_predicates(config, _declared(files))  # a misspelt finding: its line in audit.toml, not the query's
    model_tables, model_source = _model_tables(model_evidence)  # before the work: a wrong directory fails fast
    _check_labels(facts, pairs, [*CITED_TABLES, "pairs", *model_tables])
    column_map = load_column_map(config_path)
    proxy_columns = _proxy_columns(config, column_map)
    all_rows = column_map is not None and "race" not in {field for field, _, _ in column_map.columns}
    proxied = proxy_columns.any() and (all_rows or config.proxies.race_not_available)
    if column_map is None:  # [columns] checks its own mapped columns
        check_proxy_columns(config, column_names(facts))
    early = cluster is None and workers > 1 and "lei" in config.blocks and pairs is None  # several partitions may run
    declared_rows = parquet_rows(facts) if progress.enabled or early else None  # None: not a parquet register
    if early and (declared_rows or 0) > (partition_rows or PARTITION_ROWS):
        _start_workers_early()
    with progress.bar(f"reading {facts.name}", declared_rows if progress.enabled else None, "rows") as bar:
        extra_numeric, extra_text = _extra_columns(config, facts)
        extra_text = tuple(dict.fromkeys((*extra_text, *proxy_columns.names())))
        cleaned = read_clean(
            facts,
            facts.name,
            bar.update,
            column_map=column_map,
            extra_numeric=extra_numeric,
            extra_text=extra_text,
            groups_estimated=proxied,
            compact=True,  # the main process holds every row until the partitions are out: an eighth of the bytes
        )
    held = cleaned.held
    assert held is not None  # read compact
    exclusions, notes = dict(cleaned.exclusions), cleaned.provenance_notes()
    proxy_report: ProxyReport | None = None
    if proxied:
        frame, proxy_report = with_proxies(held.restore(), proxy_columns, all_rows=all_rows)
        held = compact(frame)
        del frame
        excluded = _excluded(held)
        exclusions = {reason: int((excluded == reason).sum()) for reason in exclusions}
        # the estimates place them now: drop the note that they are compared by sex only
        notes = (*(note for note in notes if "compared by sex only" not in note), *proxy_report.notes())
        if not (excluded == "").any():
            listed = ", ".join(f"{reason} {rows}" for reason, rows in exclusions.items() if rows)
            raise EvidenceError(f"{facts.name}: no usable rows: {len(held)} read; excluded: {listed}")
    elif proxy_columns.any():  # mapped, not used: no output carries a name
        held = held.drop(list(proxy_columns.names()))
    check_config_columns(config, [*held.columns, *GROUP_COLUMNS])  # a misspelt covariate: its line in audit.toml
    covariates = held.restore(
        [name for name in held.columns if name in _covariates(config)], rows=_covariate_rows(held, config)
    )
    check_covariate_types(config, covariates)
    config = config.with_levels(covariates)
    del covariates
    release_arrow_memory()  # the columns restored for the checks
    facts_sha256 = file_sha256(facts) if facts.is_file() else ""
    register = Register(
        cleaned.rows_read,
        int((_excluded(held) == "").sum()),
        exclusions,
        cleaned.id_column,
        cleaned.absent_columns,
        notes,
        cleaned.warnings(),
    )
    lap("read", cleaned.rows_read, "rows")

    given_pairs = _read_pairs(pairs) if pairs is not None else None
    pairs_sha256 = file_sha256(pairs) if pairs is not None else ""
    # One partition when the blocks may cross lenders, or pairs were given (they may).
    whole = given_pairs is not None or "lei" not in config.blocks
    lei = held.dictionary("lei")  # codes in LEI order (not 28 bytes a row of text); restored when not held so
    lei = held.column("lei") if lei is None else lei
    local = cluster is None and workers > 1  # worker processes of this machine: the default plan ends them together
    parts = _partitions(lei, partition_rows, whole, workers if local else 1)
    # the order they are dispatched in: an explicit --partition-rows bounds memory, so its plan goes in LEI order
    # (largest first would put its largest lenders, each above the limit, in flight together)
    order = _largest_first(parts) if local and partition_rows is None else list(range(len(parts)))
    leis_of = [np.asarray(lei.iloc[rows].dropna().unique(), dtype=object) for rows in parts]
    # Model rows of lenders in the register, sorted by lei: each partition's rows are one block of them.
    present = np.asarray(lei.dropna().unique(), dtype=object)
    lenders_total = int(lei.nunique())
    del lei
    scaling = _scaling(held, config)
    release_arrow_memory()
    # its text columns are turned to text (astype("str")) or factorized in sorted order: as held, a column at a time
    redlining_frame = held.restore(redlining_columns(held.restore(rows=np.arange(0))), text_as_held=True)
    redlining_base = register_redlining_cells(redlining_frame, config)
    del redlining_frame
    release_arrow_memory()
    elsewhere = cluster is not None or (workers > 1 and len(parts) > 1)  # this process waits while they run
    # In worker processes, each partition's redlining rows are made here while the first partitions run
    # (``_RedliningWriter``); otherwise the whole table now.
    later = cluster is None and elsewhere
    redlining = None if later else redlining_base.signals()
    cells = redlining_base if later else None  # the whole table made: its cells go now, not after the partitions
    del redlining_base
    lap("register-wide statistics", len(held), "rows")

    model_tables = {
        name: table[table["lei"].isin(present)].reset_index(drop=True) for name, table in model_tables.items()
    }
    explanations = Explanations()
    no_rows = held.restore(rows=np.arange(0))  # a task's frame until its rows are restored where it runs
    tasks = (
        _Shipped(
            PartitionTask(
                index=index,
                rules=files,
                config=config,
                frame=no_rows,
                scaling=scaling,
                redlining=(
                    _RedliningFile(explanations.directory, index)
                    if redlining is None
                    else redlining[redlining["lei"].isin(leis_of[index])]
                ),
                pairs=given_pairs,
                facts_label=facts.name,
                facts_sha256=facts_sha256,
                pairs_label=pairs.name if pairs else "",
                pairs_sha256=pairs_sha256,
                time_limit=None if time_limit is None else max(0.1, time_limit - (time.perf_counter() - started)),
                model={name: table[table["lei"].isin(leis_of[index])] for name, table in model_tables.items()},
            ),
            held.take(parts[index]),  # restored as the cleaned frame's rows, its dtypes and values, where it runs
        )
        for index in order
    )
    finished: list[int] = []
    taken: dict[int, PartitionResult] = {}
    writer = None if cells is None else _RedliningWriter(cells, leis_of, explanations.directory, 2 * workers, order)
    try:
        with progress.bar(f"auditing {lenders_total:,} lenders in {len(parts):,} partitions", len(held), "rows") as bar:
            # Each result goes to disk as it comes, its records until they are written (the main process
            # keeps no proofs); a worker process writes its own. When the partitions run elsewhere, the rest
            # is read back as it comes, while the others run, not all at once after the last (in this process
            # it waits on disk: the next partition's work needs the memory).
            for spilled in _execute(tasks, workers if len(parts) > 1 else 1, cluster, explanations.directory):
                explanations.adopt(spilled)
                finished.append(spilled.index)
                if elsewhere:
                    taken[spilled.index] = explanations.take(spilled.index)
                bar.update(spilled.applications)
                bar.set_postfix_str(f"{len(finished)}/{len(parts)} partitions", refresh=False)
        if writer is not None:
            writer.finish()
    except BaseException as error:  # a failed partition, a limit, an interrupt: the spilled files go now, not at exit
        failed = writer.stop() if writer is not None else None
        explanations.close()
        if failed is not None and failed is not error and isinstance(error, Exception):
            raise failed from None  # the redlining rows' error, not a worker's that waited for them
        raise
    del cells
    del held, cleaned
    release_arrow_memory()  # the register's columns, now that every partition has its rows
    done: list[PartitionResult] = [
        taken.pop(index) if index in taken else explanations.take(index) for index in sorted(finished)
    ]
    lap("partitions (similarity, statistics, grounding, solving, scoring)", register.rows_read, "rows")
    for name in PARTITION_STAGES:
        spent = sum(result.seconds.get(name, 0.0) for result in done)
        seconds[f"in partitions: {name}"] = round(spent, 3)
        stages.append(StageTiming(f"  {name} (summed over partitions)", spent, register.rows_read, "rows"))

    findings = _gather_findings(done)
    explanations.number(_numberings(done, config, facts.name))
    tables = _gather_tables(done, config, pairs_given=given_pairs is not None)
    engine = EngineSummary.combine([result.engine for result in done])
    lap("gathering", len(done), "partitions")
    options: dict[str, object] = {"workers": workers, "time_limit": time_limit, "pairs": str(pairs) if pairs else None}
    if cluster:
        options["cluster"] = cluster
    if model_evidence is not None:
        options["model_evidence"] = str(model_evidence)
    if proxy_report is not None:
        counts = proxy_report.counts
        options["proxies"] = {
            "method": proxy_report.method,
            "estimated": proxy_report.proxied,
            "surname_unmatched": counts.surname_unmatched,
            "first_name_unmatched": counts.first_name_unmatched,
            "geography_unmatched": counts.geography_unmatched,
            "no_source": counts.no_source,
            "pair_threshold": config.proxies.pair_threshold,
        }
    return Audit(
        files,
        config,
        facts,
        facts_sha256,
        register,
        tables,
        engine,
        findings,
        explanations,
        options,
        seconds,
        pairs,
        pairs_sha256,
        tuple(stages),
        model_tables if model_evidence is not None else None,
        model_source,
        {"main": limits.peak_memory(), "largest worker": max(result.peak_memory for result in done)},
    )


def _declared(files: Sequence[Path]) -> set[str]:
    """The predicates the rule files declare (parsed only: the partitions check the program)."""
    program = parse_program(list(files), limits=limits.current())
    return {statement.name for statement in program.statements if isinstance(statement, PredicateDeclaration)}


def _extra_columns(config: AuditConfig, facts: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Columns of the register that ``audit.toml`` names as covariates or similarity columns but
    that are no HMDA field (a bank's credit score, its AUS result): (numeric, text) to keep."""
    present = set(column_names(facts))
    known = set(CLEAN_COLUMNS) | set(GROUP_COLUMNS)
    numeric = (
        *config.denial_model.numeric,
        *(name for name, _ in config.denial_model.bands),
        *config.pricing_model.numeric,
        *(name for name, _ in config.pricing_model.bands),
        *config.similarity_columns,
    )
    text = (*config.denial_model.categorical, *config.pricing_model.categorical)
    wanted_numeric = tuple(dict.fromkeys(name for name in numeric if name in present and name not in known))
    wanted_text = tuple(
        dict.fromkeys(name for name in text if name in present and name not in known and name not in wanted_numeric)
    )
    return wanted_numeric, wanted_text


def _proxy_columns(config: AuditConfig, column_map: ColumnMap | None) -> ProxyColumns:
    """The register's surname, first-name and ZIP columns: from ``[columns]``, else ``[proxies]``."""
    settings = config.proxies

    def mapped(field: str, fallback: str) -> str:
        return (column_map.proxy_column(field) if column_map is not None else "") or fallback

    return ProxyColumns(
        surname=mapped("surname", settings.surname),
        first_name=mapped("first_name", settings.first_name),
        zip=mapped("zip", settings.zip),
        address=mapped("address", settings.address),
    )


def _model_tables(path: Path | None) -> tuple[dict[str, pd.DataFrame], dict[str, str] | None]:
    from reasoner.model.evidence import empty_model_evidence, read_model_evidence

    if path is None:
        return empty_model_evidence(), None
    return read_model_evidence(path)


def _read_pairs(path: Path) -> pd.DataFrame:
    """A precomputed pair table, with the columns the rules and statistics need."""
    table = read_table(path)
    missing = [name for name in PAIR_COLUMNS if name not in ("spread_gap", "no_stronger") and name not in table.columns]
    if missing:
        raise EvidenceError(
            f"error: {path}: the pair table has no column {', '.join(repr(name) for name in missing)}; "
            f"expected columns {', '.join(PAIR_COLUMNS[:-2])} (comparison name, compared and reference "
            "application ids, distance, rank, lender); it has: " + ", ".join(map(str, table.columns))
        )
    table = table.copy()
    for name, expected in (("rank", "a whole number from 1"), ("distance", "a number of at least 0")):
        values = pd.to_numeric(table[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            bad = ~np.isfinite(values) | (values < (1 if name == "rank" else 0))
            if name == "rank":
                bad |= values != np.round(values)
        if bad.any():
            rows = np.flatnonzero(bad) + 1
            first = table[name].iloc[int(rows[0]) - 1]
            raise EvidenceError(
                f"error: {path}: column '{name}': expected {expected}, got {first!r} ({describe_rows(rows)})"
            )
        table[name] = values.astype(np.int64) if name == "rank" else values
    return table


def _check_labels(facts: Path, pairs: Path | None, tables: Sequence[str]) -> None:
    """Explanations cite computed tables by name ("pairs row 3"): an input may not be named like one."""
    for given in (facts, pairs):
        if given is not None and given.name in tables:
            raise UsageError(
                f"{given}: an input may not be named '{given.name}': the explanations cite the computed table "
                f"of that name by row; rename it (for example {given.name}.parquet)"
            )


def _partitions(lei: pd.Series, target: int | None, whole: bool, workers: int = 1) -> list[np.ndarray]:
    """Row positions of each partition: whole lenders, consecutive in LEI order, at most ``target``
    rows (a larger lender is a partition by itself; None: the largest lender's rows, at least
    ``PARTITION_ROWS``, and with several ``workers`` smaller towards the end: ``_tapered``).

    ``lei``: text, or a categorical whose categories are sorted (``CompactFrame.dictionary``).

    Rows without a LEI (no lender to audit; they count in the similarity search's figures)
    join the first partition. Positions are in input order within a partition.
    """
    if whole or len(lei) <= (target or PARTITION_ROWS):
        return [np.arange(len(lei))]
    codes, leis = pd.factorize(lei, sort=True)
    if not len(leis):
        return [np.arange(len(lei))]
    sizes = np.bincount(codes[codes >= 0], minlength=len(leis))
    limit = max(PARTITION_ROWS, int(sizes.max())) if target is None else target
    groups = _packed(sizes, limit, workers if target is None else 1)
    partition_of = np.empty(len(leis), dtype=np.int64)
    for number, members in enumerate(groups):
        partition_of[members] = number
    which = np.where(codes >= 0, partition_of[np.maximum(codes, 0)], 0)
    # numpy's stable sort of 16-bit integers is a radix sort: 0.5 s instead of 1.6 at 12,000,000 rows
    order = np.argsort(which.astype(np.int16) if len(groups) <= np.iinfo(np.int16).max else which, kind="stable")
    bounds = np.cumsum(np.bincount(which, minlength=len(groups)))[:-1]
    return list(np.split(order, bounds))


def _packed(sizes: np.ndarray, limit: int, workers: int) -> list[list[int]]:
    """The lenders (their rows ``sizes``, in LEI order) packed into groups of consecutive lenders:
    a group is closed when the next lender would take it past its limit, ``limit`` rows or, with
    several ``workers``, ``_tapered``'s smaller one."""
    groups: list[list[int]] = []
    current: list[int] = []
    filled = 0
    left = int(sizes.sum())  # the rows not in a closed group
    cap = _tapered(left, limit, workers)
    for code, size in enumerate(sizes.tolist()):
        if current and filled + size > cap:  # the next lender would take it past the limit
            groups.append(current)
            left -= filled
            current, filled = [], 0
            cap = _tapered(left, limit, workers)
        current.append(code)
        filled += size
    if current:
        groups.append(current)
    return groups


def _tapered(left: int, limit: int, workers: int) -> int:
    """The most rows of the next partition when ``left`` rows remain: with several ``workers`` a
    worker's share of them (guided self-scheduling), so the last partitions are small and the
    workers end about together instead of one idling while the other audits a partition of
    ``limit`` rows; never more than ``limit`` (memory), never less than ``TAIL_ROWS``."""
    if workers <= 1:
        return limit
    return min(limit, max(TAIL_ROWS, -(-left // workers)))


def _largest_first(parts: list[np.ndarray]) -> list[int]:
    """The partitions' indices, the most rows first (ties in index order): a large lender late in
    LEI order does not start last and hold one worker while the other has finished."""
    return sorted(range(len(parts)), key=lambda index: -len(parts[index]))


def _scaling(held: CompactFrame, config: AuditConfig) -> Scaling | None:
    """The similarity scaling of the whole register (the same for every comparison)."""
    if not config.comparisons:
        return None
    spec = similarity_spec(config, config.comparisons[0])
    needed = ("application_id", "excluded", "decision", *spec.blocks, *spec.columns)  # what fit_scaling reads
    names = [name for name in dict.fromkeys(needed) if name in held.columns]
    return fit_scaling(held.restore(names, text_as_held=True), spec)  # text compared or only checked: as held


REDLINING_WAIT_SECONDS = 0.02


@dataclass(frozen=True, slots=True)
class _RedliningFile:
    """A partition's redlining rows, which ``_RedliningWriter`` writes into the run's spill directory
    while the partitions run: called in the worker once its statistics are made, it waits for them.
    (A worker outlives no run: it ends with the main process, ``_die_with``.)"""

    directory: Path
    index: int

    def __call__(self) -> pd.DataFrame:
        path = _redlining_path(self.directory, self.index)
        while not path.exists():
            if (self.directory / REDLINING_FAILED).exists():
                raise UsageError("the redlining table was not made")  # the main process reports why
            time.sleep(REDLINING_WAIT_SECONDS)
        with path.open("rb") as handle:
            rows: pd.DataFrame = pickle.load(handle)  # written by this run, in its own directory
        path.unlink()
        return rows


REDLINING_FAILED = "redlining.failed"
REDLINING_GROUP = 64  # partitions at most whose redlining rows are made by one call


def _redlining_path(directory: Path, index: int) -> Path:
    return directory / f"redlining-{index:08d}.pkl"


class _RedliningWriter:
    """Each partition's redlining rows (``RedliningCells.signals``) written to ``directory`` in the order
    the partitions are dispatched (``order`` of their indices; None: theirs), by a thread of the main
    process while the worker processes run: the first ``first`` partitions' together (they are
    running), then groups twice as large each time up to ``REDLINING_GROUP`` (a call's fixed cost, a
    few tens of milliseconds, is paid a dozen times at 12,000,000 rows, not once per partition; a
    group takes at most about a second there, which is what ``stop`` may wait). Each file appears
    whole (written under another name, then renamed); an error is kept for ``finish``/``stop`` and
    marked in ``directory``, so that a worker waiting for its rows stops waiting."""

    def __init__(
        self,
        cells: RedliningCells,
        leis_of: list[np.ndarray],
        directory: Path,
        first: int,
        order: Sequence[int] | None = None,
    ) -> None:
        self._cells, self._leis_of, self._directory, self._first = cells, leis_of, directory, max(1, first)
        self._order = list(range(len(leis_of)) if order is None else order)
        self._stopping = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="reasoner-redlining", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            start, size = 0, self._first
            while start < len(self._order) and not self._stopping.is_set():
                group = self._order[start : start + size]
                table = self._cells.signals(np.concatenate([self._leis_of[index] for index in group]))
                for index in group:
                    if self._stopping.is_set():
                        return
                    rows = table[table["lei"].isin(self._leis_of[index])]
                    path = _redlining_path(self._directory, index)
                    staging = path.with_suffix(".partial")
                    with staging.open("wb") as handle:
                        pickle.dump(rows, handle, protocol=pickle.HIGHEST_PROTOCOL)
                    os.replace(staging, path)
                start, size = start + len(group), min(2 * size, REDLINING_GROUP)
        except BaseException as error:  # noqa: BLE001 - kept for the main thread, which raises it
            if not self._stopping.is_set():
                self.error = error
                with suppress(OSError):
                    (self._directory / REDLINING_FAILED).touch()

    def finish(self) -> None:
        """Wait for the thread (every partition has had its rows by now); raise its error."""
        self._thread.join()
        if self.error is not None:
            raise self.error

    def stop(self) -> BaseException | None:
        """Stop after the group being made (the run failed or was interrupted); its error, if any."""
        self._stopping.set()
        self._thread.join()
        return self.error


def _excluded(held: CompactFrame) -> pd.Series:
    """The ``excluded`` column (a reason, or "" for a usable row) as held: its codes and a few
    categories when held as a dictionary, not a text value per row (12 million at a national year)."""
    column = held.dictionary("excluded")
    return held.column("excluded") if column is None else column


def _covariate_rows(held: CompactFrame, config: AuditConfig) -> np.ndarray | None:
    """Rows that hold every value of each categorical covariate (the first row of each), when
    every one is held as a dictionary; else None (every row). ``check_covariate_types`` and
    ``AuditConfig.with_levels`` read a covariate's dtype and its set of values, not its rows: a
    few rows give the same checks and levels as a million (2.8 of the 4.6 CPU s of reading 1,000,000)."""
    firsts = [np.arange(min(len(held), 1))]  # a row for the numeric covariates' dtypes
    for name in dict.fromkeys((*config.categorical_covariates, *config.pricing_categorical_covariates)):
        if name not in held.columns:
            continue
        column = held.dictionary(name)
        if column is None:
            return None
        firsts.append(_first_rows(column.cat.codes.to_numpy()))
    return np.unique(np.concatenate(firsts))


def _first_rows(codes: np.ndarray) -> np.ndarray:
    """The first row of each distinct value of ``codes`` (small integers from -1), in the order of the values:
    ``np.unique(codes, return_index=True)[1]``, found in the shortest prefix of the rows (doubling from 65,536)
    that holds every value, instead of a stable sort of every row (0.26 s a column at 12,000,000 rows)."""
    distinct = int(np.count_nonzero(np.bincount(codes.astype(np.int64) + 1)))
    end = 1 << 16
    while True:
        values, first = np.unique(codes[:end], return_index=True)
        if len(values) == distinct or end >= len(codes):
            return first
        end *= 2


def _covariates(config: AuditConfig) -> set[str]:
    """The columns ``check_covariate_types`` and ``AuditConfig.with_levels`` read."""
    return {
        *config.covariates,
        *config.pricing_covariates,
        *(name for name, _ in config.bands),
        *(name for name, _ in config.pricing_bands),
        *config.categorical_covariates,
        *config.pricing_categorical_covariates,
    }


@dataclass(frozen=True, slots=True)
class _Shipped:
    """A partition's task without its rows, and its rows held compact (``CompactFrame.take``), as it
    is sent to a worker process, which restores the rows: about a fifth of the bytes of the restored
    frame to pickle, send and unpickle, and the main process, which sends every partition, restores
    none (at 1,000,000 rows it spent 1.7 CPU s restoring and pickling them while the workers ran)."""

    task: PartitionTask  # its frame has the columns and dtypes, no rows
    rows: CompactFrame

    def restored(self) -> PartitionTask:
        return dataclasses.replace(self.task, frame=self.rows.restore())


def _execute(tasks: Iterator[_Shipped], workers: int, cluster: str | None, directory: Path) -> Iterator[Spilled]:
    """The tasks' results spilled into ``directory`` (``explanations.spill``) as they finish:
    audited here, in worker processes (each spills its own), or on a Dask cluster."""
    if cluster:
        from reasoner.lending.audit.cluster import run_on_cluster

        restored = (shipped.restored() for shipped in tasks)
        yield from (_spill(result, directory) for result in run_on_cluster(restored, cluster))
        return
    if workers <= 1:
        from threadpoolctl import threadpool_limits

        # One BLAS thread, as in the worker processes: the statistics' many small matrices gain nothing
        # from threads (a hundred 32×32 pseudo-inverses took 27 times longer with two threads on two busy cores).
        with threadpool_limits(1, user_api="blas"):
            for shipped in tasks:
                yield _spill(audit_partition(shipped.restored()), directory)
        return
    # A bounded number of partitions in flight: the parent never holds every partition's frame twice.
    run_limits = limits.current()
    setup = (run_limits.memory_limit, run_limits.max_groundings, os.getpid())
    pool = ProcessPoolExecutor(workers, _worker_context(), initializer=_one_thread_each, initargs=setup)
    try:
        pending: set[Future[Spilled]] = set()
        for task in tasks:
            pending.add(pool.submit(_audit_and_spill, task, directory))
            if len(pending) >= 2 * workers:
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                yield from (future.result() for future in finished)
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            yield from (future.result() for future in finished)
    except BaseException:  # an error, Ctrl-C, SIGTERM or the consumer gone: stop the workers now
        processes = list(getattr(pool, "_processes", None) or {})  # the pool keeps them by pid
        pool.shutdown(wait=False, cancel_futures=True)
        _stop(processes)
        raise
    pool.shutdown(wait=True)


def _worker_context() -> multiprocessing.context.BaseContext:
    """Fresh worker processes (forkserver), not forks of this one: a fork would share the register's
    cleaned columns, and its resident memory (which --memory-limit watches) would count them."""
    forkserver = "forkserver" in multiprocessing.get_all_start_methods()  # not on Windows: spawn
    if forkserver:
        multiprocessing.set_forkserver_preload(["reasoner.lending.audit.partition"])
    return multiprocessing.get_context("forkserver" if forkserver else "spawn")


def _start_workers_early() -> None:
    """Start the fork server now: it imports what a worker needs (1.4 s) while this process reads
    the register, instead of holding up the first partition."""
    if _worker_context().get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()


def _stop(pids: list[int]) -> None:
    """Kill the worker processes ``pids`` (they hold nothing the run needs) and reap them."""
    for pid in pids:
        with suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    for pid in pids:
        with suppress(OSError):  # not our child (forkserver): the forkserver reaps it
            os.waitpid(pid, 0)


def _audit_and_spill(shipped: _Shipped, directory: Path) -> Spilled:
    """``audit_partition`` in a worker process, of the rows it restores, its result written to
    ``directory`` by the worker: the main process gets its number and its flagged lenders' records,
    not the result's bytes. A library call that the memory watchdog's signal interrupted (DuckDB's
    'Query interrupted', a write cut short), while restoring, auditing or spilling, is reported as
    the limit it is."""
    try:
        return _spill(audit_partition(shipped.restored()), directory)
    except Exception:
        limits.raise_if_memory_limit_reached()
        raise


def _spill(result: PartitionResult, directory: Path) -> Spilled:
    rest = dataclasses.replace(result, explanations=Rendered({}, b""))
    return spill(directory, result.index, result.applications, result.explanations, rest)


def _one_thread_each(memory_limit: int | None, max_groundings: int, parent: int) -> None:
    """Worker processes use one BLAS/OpenMP and one DuckDB thread each (the processes already fill
    the cores), and the run's limits: ``--memory-limit`` applies to each process. They die with
    the run (``_die_with``)."""
    from threadpoolctl import threadpool_limits

    _die_with(parent)
    limits.configure(max_groundings=max_groundings, memory_limit=memory_limit)

    from reasoner import ground

    threadpool_limits(1)
    ground.DUCKDB_THREADS = 1


PARENT_POLL_SECONDS = 0.25


def _die_with(parent: int) -> None:
    """End this worker when the run's main process ``parent`` ends, however it ends (kill -9
    included): on Linux the kernel kills it when its parent (the forkserver) dies
    (``PR_SET_PDEATHSIG``), and everywhere a thread checks every 0.25 s that ``parent`` is alive.
    (The forkserver holds on while its workers live, so the check is what ends them.)"""
    if sys.platform.startswith("linux"):
        with suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)

    def watch() -> None:
        while True:
            time.sleep(PARENT_POLL_SECONDS)
            if not _running(parent):
                os._exit(1)

    threading.Thread(target=watch, name="reasoner-parent-watch", daemon=True).start()


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def run_process_context() -> multiprocessing.context.BaseContext:
    """The context of the run's worker processes (``_worker_context``: its fork server), for another
    process of the run (``outputs.write`` writes the explanation file in one)."""
    return _worker_context()


def die_with_run(parent: int) -> None:
    """End this process when the run's main process ``parent`` ends (``_die_with``)."""
    _die_with(parent)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, as another user
        return True
    if sys.platform.startswith("linux"):  # a zombie (killed, not yet reaped) is not running
        with suppress(OSError, IndexError):
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


# --- gathering ----------------------------------------------------------------------------------


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Frames one after the other; empty ones add nothing (and do not change column types)."""
    filled = [frame for frame in frames if len(frame)]
    if not filled:
        return frames[0].reset_index(drop=True)
    return pd.concat(filled, ignore_index=True) if len(filled) > 1 else filled[0].reset_index(drop=True)


def _gather_tables(results: list[PartitionResult], config: AuditConfig, *, pairs_given: bool) -> AuditTables:
    tables = {name: _concat([result.tables[name] for result in results]) for name in (*CITED_TABLES, *REPORT_TABLES)}
    counts: dict[str, PairCounts] = {}
    for comparison in config.comparisons:
        parts = [result.pair_counts[comparison.name] for result in results if comparison.name in result.pair_counts]
        if parts:
            counts[comparison.name] = _sum_counts(parts)
    rows = sum(sum(result.pair_rows.values()) for result in results)
    return AuditTables(**tables, pair_rows=rows, pair_counts=counts, pairs_given=pairs_given)


def _sum_counts(parts: list[PairCounts]) -> PairCounts:
    first = parts[0]
    by_column = tuple(
        (name, sum(dict(part.missing_by_column)[name] for part in parts)) for name, _ in first.missing_by_column
    )
    totals = {
        item.name: sum(getattr(part, item.name) for part in parts)
        for item in dataclasses.fields(PairCounts)
        if item.name != "missing_by_column"
    }
    return PairCounts(missing_by_column=by_column, **totals)


def _gather_findings(results: list[PartitionResult]) -> Findings:
    """Every partition's findings, in the order of one network's."""
    lenders = _concat([result.findings.lenders for result in results])
    order = np.lexsort((lenders["lei"].to_numpy(), -lenders["risk_score"].to_numpy()))
    lenders = lenders.iloc[order].reset_index(drop=True)
    applications = _concat([result.findings.applications for result in results])
    applications = applications.sort_values(["lei", "application_id", "finding"], kind="stable").reset_index(drop=True)
    return Findings(lenders, applications, {})


def _numberings(results: list[PartitionResult], config: AuditConfig, facts_label: str) -> dict[int, Numbering]:
    """How each partition's citations become rows of the whole register's tables.

    One partition's rows are the whole register's (a given pair table, say, is cited as it is).
    """
    if len(results) == 1:
        result = results[0]
        return {result.index: Numbering(facts_label, result.rows, dict.fromkeys(result.tables, 0), ((0, 0),))}
    sizes = [{name: len(table) for name, table in result.tables.items()} for result in results]
    parts = [(result.rows, size, result.pair_rows) for result, size in zip(results, sizes, strict=True)]
    found = numberings(parts, [comparison.name for comparison in config.comparisons], facts_label)
    return {result.index: numbering for result, numbering in zip(results, found, strict=True)}
