"""Benchmark of the lending audit at scale: synthetic HMDA data → `reason rules/ facts.parquet -o OUT`.

    python benchmarks/audit.py                          # 100,000 and 1,000,000 applications, 1 and all workers
    python benchmarks/audit.py --sizes 12000000 --workers 2
    python benchmarks/audit.py --sizes 100000 --workers 1,2

Data is generated with `reason synth --simple` under benchmarks/data/ (not committed) and reused when
present: N applications from min(5,000, N / 500) lenders. Each run is a fresh process (so peak
RSS is the audit's own) and prints one row: rows, workers, seconds per stage, rows per second end
to end, peak RSS of the main process and of the largest worker process (each worker reports its
own with every partition), the floor ratios, and the megabytes of the explanations and of every
output file. "scoring" includes rendering the explanations (in the partitions) and gathering the
findings; "writing" every output file.

The floor is what any audit of the data must at least do, measured in the same benchmark run on
the same file: a plain pyarrow scan of the columns the audit reads plus, per lender, a KD-tree
5-nearest-neighbour search of its applications on the four similarity columns. "ground ×" and
"solve ×" are the audit's grounding (evidence, grounding and encoding, summed over partitions)
and solving seconds divided by the floor's; the issue asks for at most 3 each. "total ×" is the
whole audit's seconds divided by the floor's.

The machine's load average is printed with the table: other processes share the cores.
Runs of the same code on this kind of shared machine differ by 10-20% now and then (a 1,000,000-row
audit took 42.2 s and, minutes later, 35.0 s): `--repeat N` runs each audit and floor N times and
prints the run of median total time (and the floor's median), with the range of the totals in a
last column.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
STAGES = ("read", "register", "similarity+statistics", "grounding", "solving", "scoring", "writing")


def _data(size: int) -> Path:
    data = HERE / "data" / f"hmda-{size}.parquet"
    if not data.exists():
        data.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "reasoner", "synth", str(data), "--applications", str(size),
             "--lenders", str(_lenders(size)), "--seed", "1", "--simple"],  # the register the figures were measured on
            check=True, cwd=ROOT, capture_output=True,
        )
    return data


def _lenders(size: int) -> int:
    return max(10, min(5_000, size // 500))


def _one(size: int, workers: int) -> dict[str, float]:
    """Run one audit in this process; its stage timings and peak RSS."""
    from reasoner.lending.audit.run import audit
    from reasoner.lending.outputs.write import write_outputs

    data = _data(size)
    started = time.perf_counter()
    result = audit([ROOT / "rules"], data, workers=workers)
    clock = time.perf_counter()
    out = HERE / "data" / f"out-{size}-{workers}"
    write_outputs(result, out, force=True)
    result.explanations.close()
    seconds = result.seconds

    def summed(*names: str) -> float:
        return sum(seconds.get(f"in partitions: {name}", 0.0) for name in names)

    partitions = seconds["partitions (similarity, statistics, grounding, solving, scoring)"]
    work = summed("similarity and statistics", "engine: parse", "engine: evidence", "engine: ground", "engine: encode",
                  "engine: solve", "scoring", "explanations") or 1.0
    share = partitions / work  # wall seconds per summed partition second (1 with one worker)
    figures = {
        "read": seconds["read"],
        "register": seconds["register-wide statistics"],
        "similarity+statistics": summed("similarity and statistics") * share,
        "grounding": summed("engine: parse", "engine: evidence", "engine: ground", "engine: encode") * share,
        "solving": summed("engine: solve") * share,
        "scoring": summed("scoring", "explanations") * share + seconds["gathering"],
        "grounding_summed": summed("engine: evidence", "engine: ground", "engine: encode"),
        "solving_summed": summed("engine: solve"),
        "writing": time.perf_counter() - clock,
        "total": time.perf_counter() - started,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "worker_rss_mb": result.peak_memory.get("largest worker", 0) / 2**20 if workers > 1 else 0,
        "flagged": int(result.findings.lenders["flagged"].sum()),
        "explanations_mb": sum(path.stat().st_size for path in out.glob("explanations*")) / 1e6,
        "outputs_mb": sum(path.stat().st_size for path in out.iterdir()) / 1e6,
    }
    return figures


def _floor(size: int) -> dict[str, float]:
    """A plain pyarrow scan of the audit's columns and a per-lender 5-NN search (module docstring)."""
    import numpy as np
    import pyarrow.dataset as ds
    from sklearn.neighbors import KDTree

    from reasoner.lending.registers.fields import normalize_name
    from reasoner.lending.registers.hmda import INPUT_COLUMNS

    data = _data(size)
    started = time.perf_counter()
    dataset = ds.dataset(data, format="parquet")
    wanted = {normalize_name(name) for name in INPUT_COLUMNS}
    table = dataset.to_table(columns=[name for name in dataset.schema.names if normalize_name(name) in wanted])
    scanned = time.perf_counter()
    names = ("income", "debt_to_income_ratio", "combined_loan_to_value_ratio", "loan_amount")
    values = np.column_stack([_numbers(table[name]) for name in names])
    values = np.nan_to_num(values)
    values = (values - values.mean(axis=0)) / (values.std(axis=0) + 1e-9)
    lei = table["lei"].to_numpy(zero_copy_only=False)
    order = np.argsort(lei, kind="stable")
    bounds = np.flatnonzero(lei[order][1:] != lei[order][:-1]) + 1
    for rows in np.split(order, bounds):
        points = values[rows]
        KDTree(points).query(points, k=min(5, len(points)))
    return {"scan": scanned - started, "search": time.perf_counter() - scanned, "floor": time.perf_counter() - started}


def _numbers(column):  # type: ignore[no-untyped-def]
    """A published column as floats: the first number in each value (NaN for 'NA', 'Exempt')."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        found = pc.extract_regex(column, r"(?P<n>[0-9]+(?:\.[0-9]+)?)").field("n")
        column = pc.if_else(pc.fill_null(pc.equal(found, ""), True), pa.scalar(None, pa.string()), found)
    return np.asarray(pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--workers", default=f"1,{len(os.sched_getaffinity(0))}", help="comma-separated worker counts")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each audit and floor; the median is printed")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--floor", type=int, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.one:
        print(json.dumps(_one(options.one, int(options.workers))))
        return
    if options.floor:
        print(json.dumps(_floor(options.floor)))
        return
    header = ["rows", "workers", *STAGES, "total s", "rows/s", "peak RSS MB (main / worker)", "floor s"]
    header += ["total ×", "ground ×", "solve ×", "explanations MB", "outputs MB", "load avg"]
    if options.repeat < 1:
        parser.error("--repeat must be at least 1")
    if options.repeat > 1:
        header.append(f"total range s ({options.repeat} runs)")
    print(f"machine: {os.cpu_count()} cores, {_memory_gib():.0f} GiB; python {sys.version.split()[0]}")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for size in (int(text) for text in options.sizes.split(",")):
        _data(size)
        floor = _median_run([_child("--floor", size) for _ in range(options.repeat)], "floor")
        for workers in sorted({int(text) for text in options.workers.split(",")}):
            load = os.getloadavg()[0]
            runs = []
            for _ in range(options.repeat):
                runs.append(_child("--one", size, "--workers", workers))
                load = max(load, os.getloadavg()[0])
            figures = _median_run(runs, "total")
            cells = [f"{size:,}", str(workers), *(f"{figures[stage]:.1f}" for stage in STAGES)]
            cells += [
                f"{figures['total']:.1f}",
                f"{size / figures['total']:,.0f}",
                f"{figures['peak_rss_mb']:,.0f} / {figures['worker_rss_mb']:,.0f}",
                f"{floor['floor']:.1f}",
                f"{figures['total'] / floor['floor']:.1f}",
                f"{figures['grounding_summed'] / floor['floor']:.1f}",
                f"{figures['solving_summed'] / floor['floor']:.1f}",
                f"{figures['explanations_mb']:,.1f}",
                f"{figures['outputs_mb']:,.1f}",
                f"{load:.1f}",
            ]
            if options.repeat > 1:
                totals = [run["total"] for run in runs]
                cells.append(f"{min(totals):.1f}–{max(totals):.1f}")
            print("| " + " | ".join(cells) + " |", flush=True)


def _median_run(runs: list[dict[str, float]], key: str) -> dict[str, float]:
    """The run whose ``key`` is the median of ``runs``' (the lower of the two middle ones for an
    even count): one run's figures, so that its stages add up to its total."""
    ordered = sorted(runs, key=lambda run: run[key])
    return ordered[(len(ordered) - 1) // 2]


def _child(*arguments: object) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, *map(str, arguments)], capture_output=True, text=True, check=True, cwd=ROOT
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _memory_gib() -> float:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30


if __name__ == "__main__":
    main()
