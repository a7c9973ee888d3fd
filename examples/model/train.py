"""Train three small approval models on the bundled HMDA sample, for ``reason audit-model``.

    python examples/model/train.py OUT [--data examples/hmda/sample.parquet] [--weights OUT_AUDIT/weights.parquet]

Writes to OUT:

- ``applications.parquet``: the model development table, one row per usable decided
  application of the sample: ``application_id``, ``lei``, the HMDA protected fields as
  published (``derived_race``, ``derived_ethnicity``, ``derived_sex``, ``applicant_race-1`` …,
  ``applicant_sex``, ``applicant_age``), numeric financials (``income`` in dollars,
  ``loan_amount``, ``debt_to_income_ratio``, ``combined_loan_to_value_ratio``, cleaned as the
  lending audit cleans them), ``tract_minority_population_percent`` and the outcome
  ``approved`` (1 approved, 0 denied).
- ``fair.skops``: logistic regression on the financials only.
- ``proxy.skops``: the same plus ``tract_minority_population_percent``, a proxy of race
  (neighbourhood composition): no twin flips (the tract is held fixed), but its decisions
  differ more by race than the fair model's.
- ``race.skops`` and ``race.onnx``: financials plus ``derived_race`` one-hot encoded: uses the
  protected attribute itself, so its twins flip.
- with ``--weights``: ``proxy-reweighed.skops``, the proxy model retrained with the
  Kamiran–Calders weights written by ``reason audit-model ... --reweigh``.

Every model is a scikit-learn ``Pipeline`` of built-in transformers, so skops loads it without
trusting any code. Training is deterministic (lbfgs, no randomness): the same data gives the
same models.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import skops.io as sio
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from reasoner.lending.registers.files import read_hmda
from reasoner.lending.registers.hmda import clean_hmda

FINANCIALS = ["income", "loan_amount", "debt_to_income_ratio", "combined_loan_to_value_ratio"]
PROXY = "tract_minority_population_percent"
PROTECTED_FIELDS = [
    "derived_race", "derived_ethnicity", "derived_sex",
    "applicant_race-1", "applicant_race-2", "applicant_race-3", "applicant_race-4", "applicant_race-5",
    "applicant_ethnicity-1", "applicant_ethnicity-2", "applicant_ethnicity-3", "applicant_ethnicity-4",
    "applicant_ethnicity-5",
    "applicant_sex", "applicant_age", "applicant_age_above_62",
]  # fmt: skip
RACES = ["White", "Black or African American", "Asian", "American Indian or Alaska Native"]
SAMPLE = Path(__file__).resolve().parents[1] / "hmda" / "sample.parquet"


def development_table(path: Path) -> pd.DataFrame:
    """The sample's usable decided applications: protected fields, financials, proxy, outcome."""
    raw = read_hmda(path)
    cleaned = clean_hmda(raw, path.name).frame
    usable = (cleaned["excluded"] == "").to_numpy() & np.isfinite(cleaned["tract_minority_pct"].to_numpy(dtype=float))
    table = pd.DataFrame(
        {
            "application_id": cleaned["application_id"].astype(str),
            "lei": cleaned["lei"].astype(str),
            **{name: raw[name].astype(str).to_numpy() for name in PROTECTED_FIELDS if name in raw.columns},
            "income": cleaned["income"],
            "loan_amount": cleaned["loan_amount"],
            "debt_to_income_ratio": cleaned["dti"],
            "combined_loan_to_value_ratio": cleaned["cltv"],
            PROXY: cleaned["tract_minority_pct"],
            "approved": (cleaned["decision"] == "approved").astype(np.int64),
        }
    )
    return table[usable].reset_index(drop=True)


def _pipeline(numeric: list[str], categorical: list[str]) -> Pipeline:
    steps = [("numeric", StandardScaler(), numeric)]
    if categorical:
        steps.append(("categorical", OneHotEncoder(handle_unknown="ignore"), categorical))
    return Pipeline([("columns", ColumnTransformer(steps)), ("model", LogisticRegression(max_iter=1000))])


def train(
    table: pd.DataFrame, numeric: list[str], categorical: tuple[str, ...] = (), weights: np.ndarray | None = None
) -> Pipeline:
    features = table[numeric + list(categorical)].copy()
    model = _pipeline(numeric, list(categorical))
    model.fit(features, table["approved"], model__sample_weight=weights)
    return model


def _before_after(table: pd.DataFrame, before: Pipeline, after: Pipeline) -> str:
    """Disparate impact and statistical parity difference by race, before and after reweighing."""
    from reasoner.model.metrics import group_metrics

    groups = pd.DataFrame({"derived_race": table["derived_race"].where(table["derived_race"].isin(RACES), None)})
    found = {}
    for label, model in (("before", before), ("after", after)):
        decisions = model.predict(table[FINANCIALS + [PROXY]]) == 1
        metrics = group_metrics(groups, decisions, None, {"derived_race": "White"}, replicates=200, seed=0)
        found[label] = metrics.set_index(["group", "metric"])["value"]
    lines = ["proxy model, by derived_race against White: before and after Kamiran-Calders reweighing"]
    lines.append(f"{'group':<34} {'metric':<31} {'before':>8} {'after':>8}")
    for group, metric in found["before"].index:
        if metric in ("disparate_impact", "statistical_parity_difference"):
            before_value, after_value = found["before"][(group, metric)], found["after"][(group, metric)]
            lines.append(f"{group:<34} {metric:<31} {before_value:>8.3f} {after_value:>8.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--data", type=Path, default=SAMPLE)
    parser.add_argument(
        "--weights",
        type=Path,
        help="weights.parquet of 'reason audit-model --reweigh': retrain the proxy model with them",
    )
    parser.add_argument("--no-onnx", action="store_true", help="do not write race.onnx (needs skl2onnx)")
    options = parser.parse_args(argv)
    options.out.mkdir(parents=True, exist_ok=True)
    table = development_table(options.data)
    table.to_parquet(options.out / "applications.parquet", index=False)
    models = {
        "fair": train(table, FINANCIALS),
        "proxy": train(table, FINANCIALS + [PROXY]),
        "race": train(table, FINANCIALS, ("derived_race",)),
    }
    if options.weights is not None:
        weights = pd.read_parquet(options.weights).set_index("application_id")["weight"]
        aligned = weights.reindex(table["application_id"]).fillna(1.0).to_numpy()
        models["proxy-reweighed"] = train(table, FINANCIALS + [PROXY], weights=aligned)
    for name, model in models.items():
        sio.dump(model, options.out / f"{name}.skops")
    if "proxy-reweighed" in models:
        print(_before_after(table, models["proxy"], models["proxy-reweighed"]))
    if not options.no_onnx:
        from skl2onnx import to_onnx
        from skl2onnx.common.data_types import FloatTensorType, StringTensorType

        inputs = [(name, FloatTensorType([None, 1])) for name in FINANCIALS] + [
            ("derived_race", StringTensorType([None, 1]))
        ]
        onnx = to_onnx(models["race"], initial_types=inputs, options={"zipmap": False}, target_opset=17)
        (options.out / "race.onnx").write_bytes(onnx.SerializeToString())
    print(f"wrote {', '.join(sorted(p.name for p in options.out.iterdir()))} to {options.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
