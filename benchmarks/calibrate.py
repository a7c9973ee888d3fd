"""Calibrate the rule library's weights on synthetic registers with known truth, and measure them on others.

    python benchmarks/calibrate.py                               # train on seeds 11-13, evaluate on 21-23
    python benchmarks/calibrate.py --train 11,12,13 --held-out 21,22,23 --applications 50000 --lenders 100

1. ``reason synth`` writes a register and its truth (``*.truth.csv``: which lenders discriminate and
   how) for every seed, under benchmarks/data/calibrate/ (not committed; reused when present).
2. Training: each training register is audited with the shipped rules; its lender tables (the
   statistics the rules bind) are the evidence, its truth the true lender atoms — ``Flagged`` of
   every discriminating lender, ``DisparateTreatment``/``Redlining``/``PricingDisparity`` by its
   kind, ``Cleared`` of every tested fair lender (the hard rules of 90-verdict.mln hold in it).
   ``reason learn``'s ``learn_weights`` then learns the weights of the lender-level formulas
   (diagonal Newton, Gaussian prior sigma 10 around the shipped weights) over the training
   registers together; formulas about applications keep their weights (no truth about them).
   The learned rule files are written to benchmarks/data/calibrate/learned/ with audit.toml.
3. Evaluation: every held-out register (seeds never used in training) is audited with the shipped
   and with the learned rules, and ``reason evaluate`` scores both against its truth, beside the
   analyst's baseline (per-lender regressions, Holm-adjusted; see reasoner/lending/synthetic/evaluate.py).

Prints one table: per held-out seed and method, precision, recall, F1, ROC AUC (of the risk score,
or the baseline's own score), false flags on fair lenders; then the mean over the held-out seeds.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from reasoner.check import QueryPattern
from reasoner.evidence import MemoryTable
from reasoner.learn import describe_learning, learn_weights, write_learned
from reasoner.lending.audit.run import audit
from reasoner.lending.synthetic.evaluate import evaluate
from reasoner.model.evidence import MODEL_TABLES

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RULES = ROOT / "rules"
DATA = HERE / "data" / "calibrate"
LENDER_QUERIES = (
    "Flagged", "Cleared", "DisparateTreatment", "Redlining", "PricingDisparity", "IntersectionalDisparity",
)
KIND_ATOM = {"disparate_treatment": "DisparateTreatment", "redlining": "Redlining", "pricing": "PricingDisparity"}
EMPTY = {  # tables about applications: bound empty, so only the lender-level formulas are grounded
    "applications": ("application_id", "lei", "excluded", "decision", "action_taken"),
    "pairs": ("b", "a", "comparison", "distance", "no_stronger", "spread_gap"),
}
METHODS = ("audit", "analyst baseline")


def _register(seed: int, applications: int, lenders: int) -> tuple[Path, Path]:
    data = DATA / f"synth-{seed}-{applications}.parquet"
    if not data.exists():
        data.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "reasoner", "synth", str(data), "--applications", str(applications),
             "--lenders", str(lenders), "--seed", str(seed)],
            check=True, cwd=ROOT, capture_output=True,
        )
    return data, data.with_name(data.name.replace(".parquet", ".truth.csv"))


def _training_tables(registers: list[tuple[Path, Path]], workers: int) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """The lender tables of every training register (audited with the shipped rules), stacked, and
    the truth file's lines."""
    stacked: dict[str, list[pd.DataFrame]] = {}
    truth_lines: list[str] = []
    for data, truth_path in registers:
        result = audit([RULES], data, workers=workers)
        tables = result.tables
        for name in ("lenders", "denial_odds", "matched_pairs", "pricing", "redlining", "outliers", "interactions"):
            stacked.setdefault(name, []).append(getattr(tables, name))
        truth = pd.read_csv(truth_path, dtype={"lei": str})
        tested = set(tables.lenders.loc[tables.lenders["tested"] == 1, "lei"].astype(str))
        for row in truth.itertuples():
            if row.discriminates:
                truth_lines += [f'Flagged("{row.lei}")', f'{KIND_ATOM[str(row.kind)]}("{row.lei}")']
            elif row.lei in tested:
                truth_lines.append(f'Cleared("{row.lei}")')
    frames = {name: pd.concat(parts, ignore_index=True) for name, parts in stacked.items()}
    leis = frames["lenders"]["lei"].astype(str)
    if leis.duplicated().any():
        raise SystemExit("two training registers share a lender id: choose other seeds")
    for name, columns in {**EMPTY, **MODEL_TABLES}.items():
        frames[name] = pd.DataFrame({column: pd.Series([], dtype=object) for column in columns})
    return frames, truth_lines


def _learn(train: list[int], registers: list[tuple[Path, Path]], workers: int) -> tuple[Path, str]:
    frames, truth_lines = _training_tables(registers, workers)
    truth = DATA / "training-truth.db"
    truth.write_text("\n".join(truth_lines) + "\n", encoding="utf-8")
    tables: dict[str, Path | MemoryTable] = {name: MemoryTable.of(frame, name) for name, frame in frames.items()}
    rule_files = sorted(RULES.glob("*.mln"))
    learning = learn_weights(
        rule_files, [], truth, tables=tables, queries=[QueryPattern(name) for name in LENDER_QUERIES]
    )
    learned = DATA / "learned"
    shutil.rmtree(learned, ignore_errors=True)
    write_learned(learning, learned, evidence=[Path(f"synth seeds {','.join(map(str, train))}")], truth=truth)
    shutil.copy(RULES / "audit.toml", learned / "audit.toml")
    return learned, describe_learning(learning)


def _evaluate(rules: Path, data: Path, truth: Path, label: str, workers: int) -> dict[str, dict[str, float]]:
    out = DATA / f"out-{label}-{data.stem}"
    subprocess.run(
        [sys.executable, "-m", "reasoner", str(rules), str(data), "-o", str(out), "--force", "--quiet",
         "--no-timings", "--workers", str(workers)],
        check=True, cwd=ROOT, capture_output=True,
    )
    found = evaluate(out, truth)
    return {
        method.method: {
            "precision": method.precision, "recall": method.recall, "f1": method.f1, "auc": method.auc,
            "false_flags": method.false_flags, "fair": found.lenders - found.discriminating,
        }
        for method in found.methods if method.method in METHODS
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", default="11,12,13", help="training seeds")
    parser.add_argument("--held-out", default="21,22,23", help="evaluation seeds (never used in training)")
    parser.add_argument("--applications", type=int, default=50_000)
    parser.add_argument("--lenders", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    train = [int(seed) for seed in args.train.split(",")]
    held_out = [int(seed) for seed in args.held_out.split(",")]
    if set(train) & set(held_out):
        raise SystemExit("a held-out seed is also a training seed")
    started = time.perf_counter()
    training = [_register(seed, args.applications, args.lenders) for seed in train]
    learned, summary = _learn(train, training, args.workers)
    print(summary)
    rows = []
    for seed in held_out:
        data, truth = _register(seed, args.applications, args.lenders)
        shipped = _evaluate(RULES, data, truth, "shipped", args.workers)
        mine = _evaluate(learned, data, truth, "learned", args.workers)
        rows.append((seed, "shipped weights", shipped["audit"]))
        rows.append((seed, "learned weights", mine["audit"]))
        rows.append((seed, "analyst baseline", shipped["analyst baseline"]))
    table = pd.DataFrame([{"seed": seed, "method": method, **values} for seed, method, values in rows])
    print(f"\ntraining seeds {train}, held-out seeds {held_out}, {args.applications:,} applications and "
          f"{args.lenders} lenders each; load average {os.getloadavg()[0]:.1f}; {time.perf_counter() - started:.0f} s")
    print("| seed | method | precision | recall | F1 | ROC AUC | false flags / fair |")
    print("|---|---|---|---|---|---|---|")
    for row in table.itertuples():
        print(f"| {row.seed} | {row.method} | {row.precision:.3f} | {row.recall:.3f} | {row.f1:.3f} | {row.auc:.3f} | "
              f"{row.false_flags:.0f} / {row.fair:.0f} |")
    means = table.groupby("method", sort=False)[["precision", "recall", "f1", "auc", "false_flags"]].mean()
    for method, values in means.iterrows():
        print(f"| mean | {method} | {values['precision']:.3f} | {values['recall']:.3f} | {values['f1']:.3f} | "
              f"{values['auc']:.3f} | {values['false_flags']:.1f} |")


if __name__ == "__main__":
    main()
