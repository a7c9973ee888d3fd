"""Benchmark of the lending audit: synthetic HMDA data → `reason rules/ facts.parquet -o OUT`.

    python benchmarks/audit.py                 # 100,000 applications, 200 lenders
    python benchmarks/audit.py --sizes 20000,100000 --workers 1

Each size runs in a fresh process (so peak RSS is the audit's own) and prints one row per
size: rows, seconds per stage, rows per second end to end, peak RSS. Data is generated with
`reason synth` under benchmarks/data/ (not committed) and reused when present.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
STAGES = ("read", "similarity and statistics", "reasoning", "scoring", "writing")


def _one(size: int, workers: int) -> dict[str, float]:
    """Run one audit in this process; its stage timings and peak RSS."""
    from reasoner.lending.audit import audit
    from reasoner.lending.outputs import write_outputs

    data = HERE / "data" / f"hmda-{size}.parquet"
    if not data.exists():
        from reasoner.lending.synth import write_synth

        write_synth(data, size, max(10, size // 500), 1)
    started = time.perf_counter()
    result = audit([ROOT / "rules"], data, workers=workers)
    clock = time.perf_counter()
    write_outputs(result, HERE / "data" / f"out-{size}", force=True)
    figures = dict(result.seconds)
    figures["writing"] = time.perf_counter() - clock
    figures["total"] = time.perf_counter() - started
    figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures["flagged"] = int(result.findings.lenders["flagged"].sum())
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="100000")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.one:
        print(json.dumps(_one(options.one, options.workers)))
        return
    header = ["rows", *STAGES, "total s", "rows/s", "peak RSS MB", "flagged"]
    print(" | ".join(header))
    print("|".join("---" for _ in header))
    for size in (int(text) for text in options.sizes.split(",")):
        done = subprocess.run(
            [sys.executable, __file__, "--one", str(size), "--workers", str(options.workers)],
            capture_output=True, text=True, check=True,
        )
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        cells = [f"{size:,}", *(f"{figures.get(stage, 0):.1f}" for stage in STAGES)]
        cells += [f"{figures['total']:.1f}", f"{size / figures['total']:,.0f}", f"{figures['peak_rss_mb']:,.0f}", str(figures["flagged"])]
        print(" | ".join(cells))


if __name__ == "__main__":
    main()
