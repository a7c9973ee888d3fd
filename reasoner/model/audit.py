"""A model and a data table → ``ModelAudit``: twins, flips, flip rates, group metrics, weights.

    load (``load.load_model``) → base applicants (the data, or ``profiles.synthetic_profiles``
    of it) → twins (``twins.make_twins``) → the model's scores and decisions → flips and flip
    rates (``metrics``) → group metrics of the model's decisions on the data (``metrics``) →
    optionally Kamiran–Calders weights (``reweigh``)

Nothing is written here; ``outputs.write_model_outputs`` writes the directory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from reasoner.errors import EvidenceError, UsageError, closest
from reasoner.evidence import file_sha256, read_table
from reasoner.model.load import Model, load_model
from reasoner.model.metrics import flip_rates, flips, group_metrics
from reasoner.model.profiles import synthetic_profiles
from reasoner.model.reweigh import reweighing_weights
from reasoner.model.twins import NOT_A_GROUP, default_groups, make_twins

__all__ = ["DEFAULT_REFERENCES", "ModelAudit", "audit_model", "read_outcome"]

DEFAULT_REFERENCES = {
    "derived_race": "White",
    "derived_ethnicity": "Not Hispanic or Latino",
    "derived_sex": "Male",
    "applicant_sex": "1",
}
APPROVED_ACTIONS, DENIED_ACTIONS = ("1", "2"), ("3",)


@dataclass(frozen=True, slots=True)
class ModelAudit:
    model: Model
    data: Path
    data_sha256: str
    protected: tuple[str, ...]
    groups: dict[str, tuple[str, ...]]
    references: dict[str, str]
    twins: pd.DataFrame  # application_id, lei, attribute, group, score, decision (one row per twin)
    flips: pd.DataFrame  # application_id, lei, attribute, denied_group, approved_group, scores, score_shift
    flip_rates: (
        pd.DataFrame
    )  # scope ('model' or 'lender'), lei, attribute, group_a, group_b, twins, flips, rate, CI, shifts
    metrics: (
        pd.DataFrame
    )  # scope, lei, attribute, group, reference, metric, value, ci_low, ci_high, rows, reference_rows
    weights: pd.DataFrame | None  # application_id, group, outcome, weight (with --reweigh)
    followed: dict[str, tuple[str, ...]]
    options: dict[str, object] = field(default_factory=dict)
    synthetic: bool = False


def _read_data(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise UsageError(f"--data {path}: no such file")
    frame = read_table(path)
    if frame.empty:
        raise EvidenceError(f"{path}: the table has no rows")
    for name in frame.columns:  # categoricals (as the HMDA sample is stored) become plain values
        if isinstance(frame[name].dtype, pd.CategoricalDtype):
            frame[name] = frame[name].astype(object).where(frame[name].notna(), None)
    return frame


def read_outcome(frame: pd.DataFrame, column: str, source: str) -> np.ndarray:
    """The outcome column as 1 (favourable), 0 or NaN (unknown).

    ``action_taken`` is read with HMDA's codes (1, 2 approved; 3 denied; others unknown);
    otherwise 1/0, true/false, 'approved'/'denied' (empty or NA: unknown).
    """
    if column not in frame.columns:
        raise UsageError(f"--outcome: the data {source} has no column '{column}'")
    values = frame[column].astype(object).to_numpy()
    out = np.full(len(values), np.nan)
    for position, value in enumerate(values.tolist()):
        text = "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value).strip().lower()
        if column == "action_taken":
            out[position] = 1.0 if text in APPROVED_ACTIONS else 0.0 if text in DENIED_ACTIONS else np.nan
        elif text in ("1", "1.0", "true", "approved", "yes"):
            out[position] = 1.0
        elif text in ("0", "0.0", "false", "denied", "no"):
            out[position] = 0.0
        elif text not in ("", "na", "nan", "none"):
            raise EvidenceError(
                f"{source}: column '{column}': expected 1/0, true/false or approved/denied as the outcome, "
                f"got {value!r} (row {position + 1})"
            )
    return out


def audit_model(
    model_spec: str,
    data: Path,
    protected: Sequence[str],
    *,
    outcome: str | None = None,
    synthetic: int | None = None,
    seed: int = 0,
    reweigh: bool = False,
    trust_pickle: bool = False,
    lender: str | None = None,
    references: dict[str, str] | None = None,
    favourable: object = 1,
    threshold: float = 0.5,
    min_group: int = 20,
    replicates: int = 2000,
    identities: bool = False,
    proxies: Sequence[str] = (),
) -> ModelAudit:
    """Audit the model ``model_spec`` on the table ``data`` for the ``protected`` columns."""
    if not protected:
        raise UsageError("--protected: name at least one protected column, e.g. derived_race,derived_sex")
    model = load_model(model_spec, trust_pickle=trust_pickle, favourable=favourable, threshold=threshold)
    frame = _read_data(data)
    missing = [name for name in protected if name not in frame.columns]
    if missing:
        close = closest(missing[0], [str(c) for c in frame.columns])
        hint = f"; did you mean '{close}'?" if close else ""
        raise UsageError(f"--protected: the data {data} has no column {', '.join(map(repr, missing))}{hint}")
    if reweigh and outcome is None:
        raise UsageError("--reweigh needs --outcome COLUMN: the weights balance the outcome across groups")
    groups = {name: default_groups(frame, name) for name in protected}
    chosen = dict(DEFAULT_REFERENCES)
    chosen.update(references or {})
    refs = {}
    for name in protected:
        ref = chosen.get(name)
        if ref is None or ref not in groups[name]:
            counts = frame[name].astype(str).value_counts()
            ref = next((str(value) for value in counts.index if str(value) in groups[name]), None)
        if ref is None:
            raise UsageError(
                f"--protected {name}: the column has no group to compare "
                f"(only {sorted(map(str, frame[name].unique()))[:5]})"
            )
        refs[name] = ref

    ids = _ids(frame)
    leis = _leis(frame, lender)
    base = synthetic_profiles(frame, synthetic, seed, identities=identities) if synthetic else frame
    base_ids = _ids(base) if synthetic else ids
    base_leis = _leis(base, lender) if not synthetic or lender else np.full(len(base), "", dtype=object)
    twins = make_twins(base, groups, proxies, reference=frame)
    predicted = model.predict(twins.frame)
    found_flips = flips(twins.base, twins.attribute, twins.group, predicted.decisions, predicted.scores)
    found_flips.insert(0, "application_id", base_ids[found_flips["base"].to_numpy()])
    found_flips.insert(1, "lei", base_leis[found_flips["base"].to_numpy()])
    found_flips = found_flips.drop(columns="base")
    rates = flip_rates(twins.base, twins.attribute, twins.group, predicted.decisions, predicted.scores)
    rates.insert(0, "scope", "model")
    lender_rates = flip_rates(
        twins.base, twins.attribute, twins.group, predicted.decisions, predicted.scores, by=base_leis
    )
    lender_rates.insert(0, "scope", "lender")
    all_rates = pd.concat([rates, lender_rates[lender_rates["lei"] != ""]], ignore_index=True)

    on_data = model.predict(frame)
    outcomes = read_outcome(frame, outcome, data.name) if outcome else None
    group_frame = _group_frame(frame, protected)
    metrics = [
        group_metrics(
            group_frame, on_data.decisions, outcomes, refs, min_group=min_group, replicates=replicates, seed=seed
        )
    ]
    metrics[0].insert(0, "scope", "model")
    for lei in sorted(set(leis.tolist()) - {""}):
        mask = leis == lei
        part = group_metrics(
            group_frame[mask].reset_index(drop=True),
            on_data.decisions[mask],
            outcomes[mask] if outcomes is not None else None,
            refs,
            min_group=min_group,
            replicates=replicates,
            seed=seed,
            lei=lei,
        )
        part.insert(0, "scope", "lender")
        metrics.append(part)
    all_metrics = pd.concat(metrics, ignore_index=True)

    twin_table = pd.DataFrame(
        {
            "application_id": base_ids[twins.base],
            "lei": base_leis[twins.base],
            "attribute": twins.attribute.astype(str),
            "group": twins.group.astype(str),
            "score": predicted.scores,
            "decision": np.where(predicted.decisions, "approved", "denied"),
        }
    )
    weights = None
    if reweigh and outcomes is not None:
        known = group_frame.notna().all(axis=1).to_numpy()
        joined = pd.Series(
            [
                " × ".join(map(str, values)) if ok else None
                for values, ok in zip(group_frame.itertuples(index=False), known, strict=True)
            ],
            dtype=object,
        )
        weights = pd.DataFrame(
            {
                "application_id": ids,
                "group": joined.to_numpy(dtype=object),
                "outcome": outcomes,
                "weight": reweighing_weights(joined, pd.Series(outcomes)),
            }
        )
    options: dict[str, object] = {
        "protected": list(protected),
        "proxies": list(proxies),
        "outcome": outcome,
        "synthetic": synthetic,
        "seed": seed,
        "reweigh": reweigh,
        "lender": lender,
        "favourable": str(favourable),
        "threshold": threshold,
        "min_group": min_group,
        "bootstrap_replicates": replicates,
    }
    return ModelAudit(
        model=model,
        data=data,
        data_sha256=file_sha256(data) if data.is_file() else "",
        protected=tuple(protected),
        groups=groups,
        references=refs,
        twins=twin_table,
        flips=found_flips.reset_index(drop=True),
        flip_rates=all_rates,
        metrics=all_metrics,
        weights=weights,
        followed=twins.followed,
        options=options,
        synthetic=bool(synthetic),
    )


def _ids(frame: pd.DataFrame) -> np.ndarray:
    for name in ("application_id", "uli"):
        if name in frame.columns:
            return frame[name].astype(str).to_numpy(dtype=object)
    return np.array([str(index + 1) for index in range(len(frame))], dtype=object)


def _leis(frame: pd.DataFrame, lender: str | None) -> np.ndarray:
    if lender:
        return np.full(len(frame), lender, dtype=object)
    if "lei" in frame.columns:
        return frame["lei"].astype(str).to_numpy(dtype=object)
    return np.full(len(frame), "", dtype=object)


def _group_frame(frame: pd.DataFrame, protected: Sequence[str]) -> pd.DataFrame:
    """The protected columns as text, null where the value is no group."""
    out = pd.DataFrame(index=frame.index)
    for name in protected:
        text = frame[name].astype(str)
        out[name] = text.where(~text.isin(NOT_A_GROUP) & frame[name].notna(), None).astype(object)
    return out.reset_index(drop=True)
