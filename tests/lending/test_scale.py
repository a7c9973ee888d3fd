"""The audit in partitions of whole lenders, in worker processes and on a Dask cluster.

Whatever the partitions, the workers or the cluster, the outputs are the bytes of the audit
run as one partition (the session's ``sample_audit``, one partition of the 5,000-row sample).
"""

from __future__ import annotations

import importlib.util
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from support import REPOSITORY, run_reason

from reasoner.lending.audit import run
from reasoner.lending.audit.progress import Progress, StageTiming, timing_table
from reasoner.lending.audit.run import _largest_first, audit

pytestmark = pytest.mark.slow  # end-to-end audits: outside the inner loop, pytest -m "not slow"

RULES = REPOSITORY / "rules"


def _same_outputs(out: Path, again: Path) -> None:
    names = sorted(path.name for path in out.iterdir())
    assert sorted(path.name for path in again.iterdir()) == names
    for name in names:
        assert (again / name).read_bytes() == (out / name).read_bytes(), name


@pytest.mark.slow
@pytest.mark.parametrize(("rows", "workers"), [(400, "1"), (1500, "2")])
def test_partitions_and_workers_give_the_bytes_of_one_network(
    sample_audit: tuple[Path, Path], tmp_path: Path, rows: int, workers: str
) -> None:
    folder, out = sample_audit
    again = tmp_path / "again"
    done = run_reason(
        [RULES, "sample.parquet", "-o", again, "--no-timings", "--workers", workers, "--partition-rows", rows],
        cwd=folder,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # not a terminal: no progress
    _same_outputs(out, again)


@pytest.mark.slow
def test_a_dask_cluster_gives_the_bytes_of_a_local_run(sample_audit: tuple[Path, Path], tmp_path: Path) -> None:
    distributed = pytest.importorskip("distributed")
    folder, out = sample_audit
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=50
    ) as cluster:
        again = tmp_path / "cluster"
        done = run_reason(
            [RULES, "sample.parquet", "-o", again, "--no-timings", "--partition-rows", 1500]
            + ["--cluster", cluster.scheduler_address],
            cwd=folder,
            timeout=300,
        )
    assert done.returncode == 0, done.stderr
    _same_outputs(out, again)


def test_tapered_partitions_dispatched_largest_first_give_the_explanations_of_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two workers, the default plan made small (partitions of the sample's 5,000 rows, smaller towards the
    end, dispatched out of index order): the findings and explanations of one partition."""
    from reasoner.lending.outputs.write import explanation_records

    sample = REPOSITORY / "examples" / "hmda" / "sample.parquet"
    one = audit([RULES], sample, workers=1, partition_rows=100_000)
    monkeypatch.setattr(run, "PARTITION_ROWS", 1_000)
    monkeypatch.setattr(run, "TAIL_ROWS", 200)
    dispatched: list[list[int]] = []

    def recorded(parts: list[np.ndarray]) -> list[int]:
        dispatched.append(_largest_first(parts))
        return dispatched[-1]

    monkeypatch.setattr(run, "_largest_first", recorded)
    two = audit([RULES], sample, workers=2)
    assert len(dispatched[0]) > 5 and dispatched[0] != sorted(dispatched[0])
    pd.testing.assert_frame_equal(two.findings.lenders, one.findings.lenders, check_exact=True)
    pd.testing.assert_frame_equal(two.findings.applications, one.findings.applications, check_exact=True)
    for name in ("lenders", "denial_odds", "matched_pairs", "pricing", "redlining", "outliers", "interactions"):
        pd.testing.assert_frame_equal(getattr(two.tables, name), getattr(one.tables, name), check_exact=True)
    assert (two.tables.pair_rows, two.tables.pair_counts) == (one.tables.pair_rows, one.tables.pair_counts)
    assert explanation_records(two) == explanation_records(one)


def test_progress_reports_every_stage_with_counts_when_enabled(tmp_path: Path) -> None:
    stream = io.StringIO()
    sample = REPOSITORY / "examples" / "hmda" / "sample.parquet"
    result = audit([RULES], sample, workers=1, progress=Progress(True, stream))
    text = stream.getvalue()
    assert "reading sample.parquet: 100%" in text and "5.00k/5.00k" in text
    assert "auditing 12 lenders in 1 partitions" in text and "rows/s" in text
    stages = [stage.stage for stage in result.stages]
    assert stages[0] == "read"
    assert any("ground" in stage for stage in stages) and any("solve" in stage for stage in stages)
    table = timing_table(result.stages)
    assert table.splitlines()[0].split() == ["stage", "seconds", "count", "per", "second"]
    assert "5,000 rows" in table


def test_a_disabled_progress_prints_nothing() -> None:
    stream = io.StringIO()
    progress = Progress(False, stream)
    with progress.bar("reading", 10, "rows") as bar:
        bar.update(10)
    progress.note("hello")
    assert stream.getvalue() == ""


def test_timing_table_rates() -> None:
    table = timing_table([StageTiming("read", 2.0, 1000, "rows"), StageTiming("gathering", 0.0)])
    lines = table.splitlines()
    assert lines[1].split() == ["read", "2.0", "1,000", "rows", "500"]
    assert lines[2].split() == ["gathering", "0.0"]


@pytest.mark.slow
def test_a_dataset_directory_of_several_files_is_one_register(sample_audit: tuple[Path, Path], tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    folder, out = sample_audit
    table = pq.read_table(folder / "sample.parquet")
    dataset = tmp_path / "years"
    dataset.mkdir()
    pq.write_table(table.slice(0, 2000), dataset / "part-0.parquet")
    pq.write_table(table.slice(2000), dataset / "part-1.parquet")
    again = tmp_path / "out"
    done = run_reason([RULES, dataset, "-o", again, "--no-timings", "--partition-rows", 1500], timeout=300)
    assert done.returncode == 0, done.stderr
    for name in ("lenders.parquet", "applications.parquet"):
        assert (again / name).read_bytes() == (out / name).read_bytes(), name


def test_bad_scale_options_are_usage_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    from reasoner.errors import UsageError
    from reasoner.lending.audit import cluster

    sample = REPOSITORY / "examples" / "hmda" / "sample.parquet"
    with pytest.raises(UsageError, match="--partition-rows must be at least 1"):
        audit([RULES], sample, partition_rows=0)
    monkeypatch.setattr(cluster, "CONNECT_SECONDS", 1)
    with pytest.raises(UsageError, match=r"--cluster tcp://127\.0\.0\.1:1: cannot reach the Dask scheduler"):
        audit([RULES], sample, workers=1, partition_rows=2_000, cluster="tcp://127.0.0.1:1")


def test_peak_memory_of_main_and_workers_is_recorded_in_the_run_section(tmp_path: Path) -> None:
    import json

    from reasoner.lending.outputs.write import write_outputs

    sample = REPOSITORY / "examples" / "hmda" / "sample.parquet"
    result = audit([RULES], sample, workers=2, partition_rows=1500)
    assert set(result.peak_memory) == {"main", "largest worker"}
    assert all(size > 50 * 2**20 for size in result.peak_memory.values())  # a Python process with pandas
    written: list[int] = []
    write_outputs(result, tmp_path / "out", progress=written.append)
    from reasoner.lending.outputs.explain_finding import explanations_jsonl

    lines = "".join(explanations_jsonl(tmp_path / "out")).count("\n")
    assert sum(written) == lines == int(result.findings.lenders["flagged"].sum()) + len(result.findings.applications)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text(encoding="utf-8"))
    assert set(manifest["run"]["peak_memory_mb"]) == {"main", "largest worker"}


@pytest.mark.slow
def test_a_dataset_directory_gives_the_same_explanations_whatever_the_partitions(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    table = pq.read_table(REPOSITORY / "examples" / "hmda" / "sample.parquet")
    dataset = tmp_path / "years"
    dataset.mkdir()
    pq.write_table(table.slice(0, 2500), dataset / "part-0.parquet")
    pq.write_table(table.slice(2500), dataset / "part-1.parquet")
    outputs = []
    for rows in (400, 100_000):
        result = audit([RULES], dataset, workers=1, partition_rows=rows)
        from reasoner.lending.outputs.write import explanation_records

        outputs.append(explanation_records(result))
    assert outputs[0] == outputs[1]
    text = str(outputs[0])
    assert "years row " in text and "'applications row" not in text  # the directory's rows, never a partition's


def test_the_audit_benchmark_prints_the_run_of_median_total() -> None:
    """`benchmarks/audit.py --repeat N` prints one run's figures (its stages add up to its total): the
    run of median total, the lower middle one for an even count."""
    spec = importlib.util.spec_from_file_location("audit_benchmark", REPOSITORY / "benchmarks" / "audit.py")
    assert spec is not None and spec.loader is not None
    benchmark = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(benchmark)
    runs = [{"total": 42.2, "read": 4.2}, {"total": 35.0, "read": 3.1}, {"total": 35.7, "read": 3.0}]
    assert benchmark._median_run(runs, "total") == {"total": 35.7, "read": 3.0}
    assert benchmark._median_run(runs[:2], "total") == {"total": 35.0, "read": 3.1}
    assert benchmark._median_run(runs[:1], "total") == runs[0]
