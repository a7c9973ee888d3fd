"""A model audit's output directory → the tables ``rules/70-model.mln`` binds in the lending audit.

==================  ==============================================================================
table               one row per
==================  ==============================================================================
model_flips         flipped pair of twins in which one twin is of the reference group: ``lei``,
                    ``application_id``, ``attribute`` (the protected column), ``via``
                    ('attribute', or 'proxies' when the proxies followed the twin),
                    ``denied_group``, ``approved_group``, ``score_shift``
model_flip_rates    lender × attribute × via: ``twins``, ``flips``, ``flip_rate``, ``ci_low``,
                    ``ci_high`` (any two twins differing; exact 95% interval)
model_metrics       lender × attribute × group × metric: ``value``, ``ci_low``, ``ci_high``
==================  ==============================================================================

Only rows attributed to a lender are kept (``--lender`` of ``reason audit-model``, or the data's
``lei`` column). Without model evidence the tables are empty and the rules that bind them add
nothing: the audit's results are the same as without the rule file.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from reasoner.errors import EvidenceError, UsageError
from reasoner.evidence import file_sha256, read_table
from reasoner.model.twins import PROXY_SUFFIX

__all__ = ["MODEL_TABLES", "ModelEvidence", "empty_model_evidence", "read_model_evidence"]

MODEL_TABLES = {
    "model_flips": ("lei", "application_id", "attribute", "via", "denied_group", "approved_group", "score_shift"),
    "model_flip_rates": ("lei", "attribute", "via", "twins", "flips", "flip_rate", "ci_low", "ci_high"),
    "model_metrics": ("lei", "attribute", "group", "reference", "metric", "value", "ci_low", "ci_high"),
}
REQUIRED_FILES = ("manifest.json", "flips.parquet", "flip_rates.parquet", "metrics.parquet")

ModelEvidence = dict[str, pd.DataFrame]


def empty_model_evidence() -> ModelEvidence:
    """The model tables with their columns and no rows."""
    return {
        name: pd.DataFrame({column: pd.Series(dtype=_dtype(column)) for column in columns})
        for name, columns in MODEL_TABLES.items()
    }


def _dtype(column: str) -> str:
    return (
        "float64"
        if column in ("score_shift", "flip_rate", "ci_low", "ci_high", "value")
        else "int64"
        if column in ("twins", "flips")
        else "str"
    )


def read_model_evidence(path: Path) -> tuple[ModelEvidence, dict[str, str]]:
    """The tables of a ``reason audit-model`` output directory, and its model's name and digest."""
    path = Path(path)
    if not path.is_dir():
        raise UsageError(
            f"--model-evidence {path}: not a directory (expected the -o directory of 'reason audit-model')"
        )
    missing = [name for name in REQUIRED_FILES if not (path / name).is_file()]
    if missing:
        raise UsageError(f"--model-evidence {path}: not a model audit output: {', '.join(missing)} missing")
    try:
        manifest = json.loads((path / "manifest.json").read_text(encoding="utf-8"))
        references = dict(manifest["references"])
        model = manifest["model"]
    except (ValueError, KeyError, TypeError) as error:
        raise EvidenceError(f"{path / 'manifest.json'}: not a model audit manifest ({error})") from None
    flips = read_table(path / "flips.parquet")
    rates = read_table(path / "flip_rates.parquet")
    metrics = read_table(path / "metrics.parquet")
    for name, frame, columns in (
        (
            "flips.parquet",
            flips,
            ("lei", "application_id", "attribute", "denied_group", "approved_group", "score_shift"),
        ),
        (
            "flip_rates.parquet",
            rates,
            ("scope", "lei", "attribute", "group_a", "twins", "flips", "flip_rate", "ci_low", "ci_high"),
        ),
        (
            "metrics.parquet",
            metrics,
            ("scope", "lei", "attribute", "group", "reference", "metric", "value", "ci_low", "ci_high"),
        ),
    ):
        absent = [column for column in columns if column not in frame.columns]
        if absent:
            raise EvidenceError(
                f"{path / name}: no column {', '.join(map(repr, absent))}; was it written by 'reason audit-model'?"
            )

    base, via = _split(flips["attribute"])
    reference = base.map(lambda name: references.get(name, "")).to_numpy()
    versus = (flips["approved_group"].to_numpy() == reference) | (flips["denied_group"].to_numpy() == reference)
    model_flips = pd.DataFrame(
        {
            "lei": flips["lei"].astype(str),
            "application_id": flips["application_id"].astype(str),
            "attribute": base,
            "via": via,
            "denied_group": flips["denied_group"].astype(str),
            "approved_group": flips["approved_group"].astype(str),
            "score_shift": flips["score_shift"].astype(np.float64),
        }
    )[versus & (flips["lei"].astype(str) != "").to_numpy()]
    rates = rates[(rates["scope"] == "lender") & (rates["group_a"] == "*")]
    base, via = _split(rates["attribute"])
    model_rates = pd.DataFrame({"lei": rates["lei"].astype(str), "attribute": base, "via": via})
    for column in ("twins", "flips"):
        model_rates[column] = rates[column].astype(np.int64).to_numpy()
    for column in ("flip_rate", "ci_low", "ci_high"):
        model_rates[column] = rates[column].astype(np.float64).to_numpy()
    metrics = metrics[metrics["scope"] == "lender"]
    model_metrics = metrics[list(MODEL_TABLES["model_metrics"])].copy()
    tables = {"model_flips": model_flips, "model_flip_rates": model_rates, "model_metrics": model_metrics}
    tables = {
        name: frame.sort_values(list(frame.columns[:4]), kind="stable").reset_index(drop=True)
        for name, frame in tables.items()
    }
    return tables, {
        "path": str(path),
        "model": str(model.get("path", "")),
        "model_sha256": str(model.get("sha256", "")),
        "sha256": file_sha256(path / "manifest.json"),
    }


def _split(attribute: pd.Series) -> tuple[pd.Series, np.ndarray]:
    text = attribute.astype(str)
    proxied = text.str.endswith(PROXY_SUFFIX)
    base = text.where(~proxied, text.str.slice(0, -len(PROXY_SUFFIX)))
    return base.reset_index(drop=True).set_axis(attribute.index), np.where(proxied, "proxies", "attribute")
