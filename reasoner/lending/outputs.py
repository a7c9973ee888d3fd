"""``Audit`` → the output directory, written whole or not at all.

Files: ``lenders.parquet``, ``applications.parquet``, ``explanations.jsonl``, ``report.md``,
``report.html`` and ``manifest.json``. They are written to a temporary directory beside the
target and moved into place at the end; an existing non-empty target is replaced only with
``force``. Every file is byte-identical for the same inputs and options, whatever the number of
workers, except the manifest's ``run`` section (workers and timings; ``timings=False`` omits it).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from reasoner import __version__
from reasoner.errors import UsageError
from reasoner.evidence import file_sha256
from reasoner.explain import decimal_json
from reasoner.lending.audit import Audit
from reasoner.lending.explanations import flagged_in_order, json_safe

__all__ = [
    "OUTPUT_FILES",
    "check_output",
    "explanation_lines",
    "explanation_records",
    "manifest",
    "staged",
    "write_outputs",
    "write_parquet",
]

OUTPUT_FILES = ("lenders.parquet", "applications.parquet", "explanations.jsonl", "report.md", "report.html")
HOW_OPTIONS = ("workers", "cluster")  # how the audit ran, not what it computed: in the manifest's run section


def write_outputs(
    audit: Audit, out: Path, *, force: bool = False, timings: bool = True, progress: Callable[[int], None] | None = None
) -> Path:
    """Write every output file; return ``out``. ``progress`` is called with the number of
    explanation records written, chunk after chunk."""
    from reasoner.lending.report import render_html, render_markdown

    out = Path(out)
    check_output(out, force)
    with staged(out) as staging:
        write_parquet(audit.findings.lenders, staging / "lenders.parquet")
        write_parquet(audit.findings.applications, staging / "applications.parquet")
        with (staging / "explanations.jsonl").open("w", encoding="utf-8", newline="") as handle:
            for chunk in explanation_lines(audit):
                handle.write(chunk)
                if progress is not None:
                    progress(chunk.count("\n"))
        (staging / "report.md").write_text(render_markdown(audit), encoding="utf-8")
        (staging / "report.html").write_text(render_html(audit), encoding="utf-8")
        record = manifest(audit, {name: file_sha256(staging / name) for name in OUTPUT_FILES}, timings=timings)
        (staging / "manifest.json").write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return out


@contextmanager
def staged(out: Path) -> Iterator[Path]:
    """A temporary directory beside ``out`` that replaces ``out`` (whole, by renames) when the
    block ends, or is removed when it raises: a reader sees the previous output or the new one,
    never a half-written one."""
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        yield staging
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            os.replace(out, old / "previous")
            os.replace(staging, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def check_output(out: Path, force: bool) -> None:
    """A ``UsageError`` when ``out`` exists and is not an empty directory, unless ``force``."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise UsageError(f"{out}: exists and is not empty; choose another -o or pass --force to replace it")


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """``frame`` as zstd parquet without pandas metadata (stable bytes across pandas versions)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata(None)  # no pandas metadata: stable bytes across pandas versions
    pq.write_table(table, path, compression="zstd")


def explanation_lines(audit: Audit) -> Iterator[str]:
    """explanations.jsonl in chunks of whole lines: one record per finding, flagged lenders first
    (by risk, as lenders.parquet), then applications (as applications.parquet); see
    ``reasoner.lending.explanations``."""
    return audit.explanations.lines(flagged_in_order(audit.findings.lenders))


def explanation_records(audit: Audit) -> list[dict[str, Any]]:
    """explanations.jsonl as records (for small audits and tests: holds every record at once)."""
    return [json.loads(line) for chunk in explanation_lines(audit) for line in chunk.split("\n") if line]


def _limits() -> dict[str, int | None]:
    from reasoner.limits import current

    limits = current()
    return {"max_groundings": limits.max_groundings, "memory_limit": limits.memory_limit}


def manifest(audit: Audit, outputs: dict[str, str], *, timings: bool = True) -> dict[str, Any]:
    cleaned = audit.cleaned
    engine = audit.engine
    usable = cleaned.usable
    pair_counts = {name: json_safe(asdict(counts)) for name, counts in audit.tables.pair_counts.items()}
    record: dict[str, Any] = {
        "tool": "reasoner",
        "version": __version__,
        "inputs": [{"path": str(audit.facts), "sha256": audit.facts_sha256, "kind": "facts"}]
        + ([{"path": str(audit.pairs_source), "sha256": audit.pairs_sha256, "kind": "pairs"}] if audit.pairs_source else [])
        + ([{**audit.model_source, "kind": "model evidence"}] if audit.model_source else []),
        "rules": [  # sorted: the results do not depend on the order the files were given in
            {"path": str(path), "sha256": file_sha256(path)} for path in sorted((*audit.rules, audit.config.path), key=str)
        ],
        "options": json_safe({name: value for name, value in audit.options.items() if name not in HOW_OPTIONS})
        | _limits(),
        "application_id": cleaned.id_column,
        "rows": {
            "read": cleaned.rows_read,
            "usable": usable,
            "excluded": dict(cleaned.exclusions),
            "absent_columns": list(cleaned.absent_columns),
        },
        "pairs": {"given": audit.tables.pairs_given, "rows": audit.tables.pair_rows, "by_comparison": pair_counts},
        "engine": {
            "solver": "RC2 (python-sat), exact MaxSAT per connected component",
            "status": engine.status,
            "cost": decimal_json(engine.cost),
            "lower_bound": decimal_json(engine.lower_bound),  # equals cost when optimal
            "proven_optimal": engine.status == "optimal",
            "unfinished_components": engine.unfinished_components,
            "ground_formulas": engine.ground_formulas,
            "components": engine.components,
        },
        "findings": {
            "lenders": len(audit.findings.lenders),
            "flagged_lenders": int(audit.findings.lenders["flagged"].sum()),
            "flagged_applications": len(audit.findings.applications),
        },
        "outputs": {name: {"sha256": digest} for name, digest in outputs.items()},
        "outputs_digest": hashlib.sha256("".join(f"{n}:{d}\n" for n, d in sorted(outputs.items())).encode()).hexdigest(),
    }
    if timings:  # how the run went, not what it computed: left out for byte-stable manifests
        record["run"] = {name: audit.options[name] for name in HOW_OPTIONS if name in audit.options}
        record["run"]["timings"] = dict(audit.seconds)
        record["run"]["peak_memory_mb"] = {name: round(size / 2**20) for name, size in audit.peak_memory.items()}
    return record
