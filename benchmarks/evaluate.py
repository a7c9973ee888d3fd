"""The audit against the analyst's baseline on confounded synthetic registers.

    python benchmarks/evaluate.py                                   # seeds 1, 2 (tuning) and 101, 102 (held out)
    python benchmarks/evaluate.py --seeds 1 --applications 60000 --workers 2

For each seed: `reason synth` writes a register with the default confounds (benchmarks/data/,
not committed, reused when present), `reason audit` audits it with the installed rule library,
and `reason evaluate --json` scores the audit and the baselines against the truth. One row per
register: the audit's precision, recall, F1 and ROC AUC, its false flags on fair lenders, and
the analyst baseline's (per-lender logistic regression of denial and OLS of rate spread with
controls, `reasoner.lending.synthetic.baseline`) F1 at p < 0.05 (Holm), F1 at its best cut (which an
analyst does not know) and AUC, with its own false flags.

Seeds 1 and 2 are for tuning the audit; 101 and 102 are held out: look at them only to report,
never to choose a weight or a test. Each step is a fresh process; the audit's seconds are
printed with the machine's load average (other processes share the cores).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
TUNING_SEEDS = (1, 2)
HELD_OUT_SEEDS = (101, 102)


def _reason(*arguments: object) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "reasoner", *(str(argument) for argument in arguments)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise SystemExit(f"reason {' '.join(map(str, arguments))} failed:\n{done.stderr}")
    return done.stdout


def _register(applications: int, lenders: int, seed: int) -> Path:
    data = HERE / "data" / f"confounded-{applications}-{lenders}-{seed}.parquet"
    if not data.exists():
        data.parent.mkdir(parents=True, exist_ok=True)
        _reason("synth", data, "--applications", applications, "--lenders", lenders, "--seed", seed)
    return data


def _one(applications: int, lenders: int, seed: int, workers: int) -> dict[str, object]:
    data = _register(applications, lenders, seed)
    out = data.with_suffix(".out")
    started = time.perf_counter()
    _reason("audit", data, "-o", out, "--force", "--quiet", "--workers", workers)
    seconds = time.perf_counter() - started
    record = json.loads(_reason("evaluate", out, data.with_name(f"{data.stem}.truth.csv"), "--json"))
    methods = {method["method"]: method for method in record["methods"]}
    return {
        "seed": seed,
        "record": record,
        "audit": methods["audit"],
        "analyst": methods["analyst baseline"],
        "seconds": seconds,
    }


def _number(value: object) -> str:
    return "–" if value is None else f"{value:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default=",".join(map(str, TUNING_SEEDS + HELD_OUT_SEEDS)))
    parser.add_argument("--applications", type=int, default=80_000)
    parser.add_argument("--lenders", type=int, default=200)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    options = parser.parse_args()
    print(
        "| register | audit P / R / **F1** / **AUC** | audit false flags | analyst F1 (p < 0.05) | "
        "analyst F1 (best cut) | analyst AUC | analyst false flags | audit s |"
    )
    print("|---|--:|--:|--:|--:|--:|--:|--:|")
    for seed in (int(text) for text in options.seeds.split(",")):
        row = _one(options.applications, options.lenders, seed, options.workers)
        audit, analyst, record = row["audit"], row["analyst"], row["record"]
        assert isinstance(audit, dict) and isinstance(analyst, dict) and isinstance(record, dict)
        label = "held out" if seed in HELD_OUT_SEEDS else "tuning" if seed in TUNING_SEEDS else "other"
        fair = record["fair"]
        print(
            f"| {options.applications:,} applications, {record['lenders']} lenders, seed {seed} ({label}) "
            f"| {_number(audit['precision'])} / {_number(audit['recall'])} / **{_number(audit['f1'])}** / "
            f"**{_number(audit['auc'])}** | {audit['false_flags']}/{fair} | {_number(analyst['f1'])} "
            f"| {_number(analyst['best_f1'])} | {_number(analyst['auc'])} | {analyst['false_flags']}/{fair} "
            f"| {row['seconds']:.0f} |",
            flush=True,
        )
    print(f"\nload average {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores, workers {options.workers}")


if __name__ == "__main__":
    main()
