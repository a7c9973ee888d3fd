"""Lender-level evaluation of an audit against the truth of a synthetic register, with baselines.

``evaluate(out, truth)`` reads the audit output directory ``out`` (``lenders.parquet`` and
``manifest.json``) and the truth CSV that ``reason synth`` wrote (columns lei, discriminates,
kind), and scores four methods on the same lenders and the same facts:

``audit``
    predicted: ``flagged`` of ``lenders.parquet``; score: ``risk_score`` (0–100).
``four-fifths rule``
    the adverse impact ratio: the approval rate of minority applicants divided by that of
    White non-Hispanic applicants (groups of ``tables.add_group_columns``: minority is any race
    other than White, or Hispanic), over every application with a decision (approved or
    denied) and a group, whatever its exclusion (the ratio needs no financials). Predicted:
    ratio < 0.8; score: 1 - ratio. Not computed with fewer than ``MIN_GROUP`` decisions in
    either group or no White non-Hispanic applicant approved.
``logistic regression``
    ``statistics.lender_denial_odds``: per lender, denial on the minority indicator and
    ``DENIAL_COVARIATES`` (income, dti, cltv, loan_amount; logarithms of income and loan
    amount) over the usable applications. Predicted: minority coefficient > 0 with two-sided
    p < 0.05; score: its z statistic (coefficient / standard error). Not computed for every
    reason that function gives (too few applications, separation, partially exempt DTI/CLTV …).
``analyst baseline``
    ``baseline.analyst_baseline``: per lender, a logistic regression of denial and a least-squares
    regression of rate spread among originations (HC3 standard errors) for each of five
    comparisons (minority, Black, Hispanic, Asian, female), with log income, CLTV, DTI categories,
    loan type and purpose as controls; Holm-adjusted over the lender's tests. Predicted: the
    smallest adjusted p-value < 0.05 (for an estimate to the compared group's disadvantage);
    score: -log10 of it. Not computed for a lender none of whose tests has ``MIN_GROUP`` rows of
    each group (or, for denial, a denial).

A lender a method cannot score is not flagged by it and gets a score below every score the
method did compute (such lenders tie); the notes say how many and why.

Metrics, with positive = ``discriminates`` of the truth, by scikit-learn:

- precision, recall, F1: ``precision_recall_fscore_support`` (binary); NaN when undefined
  (precision when nothing is flagged, recall when no lender discriminates).
- ROC AUC: ``roc_auc_score`` of the score (tied scores count one half); NaN when the truth has
  one class only.
- best F1: the largest F1 over every cut of the method's score (flag the lenders scoring at or
  above it; ``precision_recall_curve``), which the method itself cannot know: it says how good
  the ranking is at its best cut, ``best_cut`` (in the score's units).
- false flags on fair lenders: flagged fair lenders / fair lenders (``confusion_matrix``).
- recall by kind: ``recall_score`` among the discriminating lenders of each truth ``kind``.

NaN is printed '–' (``null`` in JSON) with a note. Truth lenders with no applications
(``applications == 0``) are left out: no method can see them. Every other truth lender must be
in ``lenders.parquet`` and the reverse. The facts are the manifest's input of kind 'facts'; a
relative path is resolved against the current directory, then against the parent of ``out``,
and the file must have the sha256 the manifest records (a facts directory, for which the
manifest records none, is read unverified).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import (
    confusion_matrix,
    precision_recall_curve,
    precision_recall_fscore_support,
    recall_score,
    roc_auc_score,
)

from reasoner.errors import EvidenceError, UsageError
from reasoner.evidence import file_sha256
from reasoner.lending.evidence.statistics import DENIAL_COVARIATES, MIN_GROUP, lender_denial_odds
from reasoner.lending.evidence.tables import WHITE, add_group_columns
from reasoner.lending.registers.files import read_hmda
from reasoner.lending.registers.hmda import INPUT_COLUMNS, clean_hmda
from reasoner.lending.synthetic.baseline import analyst_baseline
from reasoner.lending.synthetic.synth import KINDS

__all__ = ["Evaluation", "MethodScores", "evaluate", "render_evaluation"]

GROUP_COLUMN = "minority"
COMPARED = "Minority"
FOUR_FIFTHS = 0.8
SIGNIFICANCE = 0.05
MAJORITY_MINORITY_PERCENT = 50.0  # only add_group_columns' tract column depends on it; unused here
TRUTH_COLUMNS = ("lei", "discriminates", "kind")
LENDER_COLUMNS = ("lei", "flagged", "risk_score")
MISSING = "–"


@dataclass(frozen=True, slots=True)
class MethodScores:
    """One method's lender-level metrics (NaN where undefined, see the module docstring)."""

    method: str
    flagged: int
    not_computed: int
    precision: float
    recall: float
    f1: float
    auc: float
    best_f1: float
    best_cut: float
    false_flags: int
    false_flag_rate: float
    recall_by_kind: tuple[tuple[str, float], ...]


@dataclass(frozen=True, slots=True)
class Evaluation:
    """Metrics of the audit and both baselines on the lenders of ``truth``."""

    out: Path
    truth: Path
    facts: Path
    lenders: int
    discriminating: int
    kinds: tuple[tuple[str, int], ...]  # discriminating lenders per kind
    methods: tuple[MethodScores, ...]
    notes: tuple[str, ...]

    @property
    def fair(self) -> int:
        return self.lenders - self.discriminating


@dataclass(frozen=True, slots=True)
class _Prediction:
    """Per truth lender: flagged, score (NaN when not computed) and why it was not computed."""

    method: str
    flagged: np.ndarray
    score: np.ndarray
    reason: np.ndarray


def evaluate(out: Path, truth: Path) -> Evaluation:
    """Score the audit in ``out`` and the two baselines against ``truth`` (module docstring)."""
    manifest = _read_manifest(out)
    answers, notes = _read_truth(truth)
    lenders_path = out / "lenders.parquet"
    lenders = _read_lenders(lenders_path)
    _same_lenders(answers["lei"], lenders["lei"], truth, lenders_path)
    facts, facts_note = _facts(out, manifest)
    cleaned = clean_hmda(read_hmda(facts, INPUT_COLUMNS), facts.name)
    frame = add_group_columns(cleaned.frame, MAJORITY_MINORITY_PERCENT)
    leis = pd.Index(answers["lei"])
    predictions = (_audit(lenders, leis), _four_fifths(frame, leis), _logistic(frame, leis), _analyst(frame, leis))
    positive = answers["discriminates"].to_numpy(dtype=bool)
    kind = answers["kind"].to_numpy(dtype=object)
    kinds = _kinds(kind[positive])
    methods = tuple(_method_scores(prediction, positive, kind, kinds) for prediction in predictions)
    notes += facts_note + tuple(_not_computed_note(prediction) for prediction in predictions if _skipped(prediction))
    notes += _undefined_notes(methods, positive)
    counts = tuple((name, int(np.count_nonzero(kind[positive] == name))) for name in kinds)
    return Evaluation(out, truth, facts, len(answers), int(positive.sum()), counts, methods, notes)


# --- inputs -----------------------------------------------------------------------------------


def _read_manifest(out: Path) -> dict[str, Any]:
    for name in ("manifest.json", "lenders.parquet"):
        if not (out / name).is_file():
            raise UsageError(f"{out}: not an audit output directory (no {name})")
    path = out / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise EvidenceError(f"{path}: cannot read: {error}") from None
    if not isinstance(manifest, dict):
        raise EvidenceError(f"{path}: expected a JSON object")
    return manifest


def _read_truth(path: Path) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """Truth rows sorted by LEI, without lenders that have no applications (and a note if any)."""
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    try:
        truth = pd.read_csv(path, dtype={"lei": "str", "kind": "str"})
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise EvidenceError(f"{path}: cannot read as CSV: {error}") from None
    _require(truth, TRUTH_COLUMNS, path, "a truth file of 'reason synth' has lei, discriminates, kind")
    if not pd.api.types.is_bool_dtype(truth["discriminates"]):
        raise EvidenceError(f"{path}: column 'discriminates': expected True or False on every row")
    _unique_leis(truth["lei"], path)
    notes: tuple[str, ...] = ()
    if "applications" in truth.columns:
        empty = truth["applications"].eq(0).to_numpy(dtype=bool)
        if empty.any():
            notes = (f"{_lenders(int(empty.sum()))} of the truth without applications left out",)
        truth = truth[~empty]
    return truth.sort_values("lei", ignore_index=True), notes


def _read_lenders(path: Path) -> pd.DataFrame:
    try:
        lenders = pd.read_parquet(path)
    except Exception as error:  # pyarrow raises its own types for corrupt files
        raise EvidenceError(f"{path}: cannot read: {error}") from None
    _require(lenders, LENDER_COLUMNS, path, "is it the lenders table of an audit?")
    _unique_leis(lenders["lei"], path)
    return lenders


def _require(frame: pd.DataFrame, names: Sequence[str], path: Path, hint: str) -> None:
    for name in names:
        if name not in frame.columns:
            raise EvidenceError(f"{path}: no column '{name}' ({hint})")


def _unique_leis(leis: pd.Series, path: Path) -> None:
    if leis.isna().any():
        raise EvidenceError(f"{path}: column 'lei': empty value on data row {int(np.flatnonzero(leis.isna())[0]) + 1}")
    repeated = leis[leis.duplicated()]
    if len(repeated):
        raise EvidenceError(f"{path}: column 'lei': '{repeated.iloc[0]}' appears more than once")


def _lenders(count: int) -> str:
    return f"{count} lender" if count == 1 else f"{count} lenders"


def _same_lenders(truth: pd.Series, audited: pd.Series, truth_path: Path, lenders_path: Path) -> None:
    problems = []
    for ours, theirs, here, there in (
        (truth, audited, truth_path, lenders_path),
        (audited, truth, lenders_path, truth_path),
    ):
        absent = sorted(set(ours) - set(theirs))
        if absent:
            problems.append(f"{_lenders(len(absent))} of {here} not in {there} (e.g. {absent[0]})")
    if problems:
        raise EvidenceError("; ".join(problems) + ": was the audit run on the register of this truth file?")


def _facts(out: Path, manifest: dict[str, Any]) -> tuple[Path, tuple[str, ...]]:
    """The facts the audit read, checked against the manifest's sha256, and a note if unverified."""
    manifest_path = out / "manifest.json"
    inputs = manifest.get("inputs")
    entries = (
        [entry for entry in inputs if isinstance(entry, dict) and entry.get("kind") == "facts"]
        if isinstance(inputs, list)
        else []
    )
    if len(entries) != 1 or not isinstance(entries[0].get("path"), str):
        raise EvidenceError(f"{manifest_path}: expected one input of kind 'facts' with its path")
    given = Path(entries[0]["path"])
    candidates = [given] if given.is_absolute() else [Path.cwd() / given, out.absolute().parent / given]
    found = next((candidate for candidate in candidates if candidate.exists()), None)
    if found is None:
        looked = " or ".join(str(candidate) for candidate in candidates)
        raise UsageError(f"{manifest_path}: the facts the audit read, '{given}', are not found (looked for {looked})")
    if found.is_dir():
        return found, (f"{found} is a directory: not checked against the manifest (it records no sha256 for one)",)
    expected = entries[0].get("sha256")
    actual = file_sha256(found)
    if actual != expected:
        raise EvidenceError(
            f"{found}: sha256 {actual} differs from {expected} recorded in {manifest_path}: "
            "the facts changed since the audit; run the audit again"
        )
    return found, ()


# --- methods ----------------------------------------------------------------------------------


def _audit(lenders: pd.DataFrame, leis: pd.Index) -> _Prediction:
    aligned = lenders.set_index("lei").reindex(leis)
    score = aligned["risk_score"].to_numpy(dtype=np.float64, na_value=np.nan)
    reason = np.where(np.isnan(score), "no risk score", "")
    return _Prediction("audit", aligned["flagged"].to_numpy(dtype=bool), score, reason)


def _four_fifths(frame: pd.DataFrame, leis: pd.Index) -> _Prediction:
    decided = frame[frame["decision"].isin(("approved", "denied")) & frame[GROUP_COLUMN].isin((COMPARED, WHITE))]
    approved = decided["decision"].eq("approved")
    by_group = approved.groupby([decided["lei"], decided[GROUP_COLUMN]]).agg(["size", "sum"]).unstack(GROUP_COLUMN)
    columns = pd.MultiIndex.from_product([("size", "sum"), (COMPARED, WHITE)])
    counts = by_group.reindex(index=leis, columns=columns).fillna(0)
    decisions, approvals = counts["size"], counts["sum"]
    rates = approvals / decisions.where(decisions > 0)
    reason = np.select(
        [decisions[COMPARED] < MIN_GROUP, decisions[WHITE] < MIN_GROUP, approvals[WHITE] == 0],
        [
            f"fewer than {MIN_GROUP} minority decisions",
            f"fewer than {MIN_GROUP} {WHITE} decisions",
            f"no {WHITE} applicant approved",
        ],
        "",
    )
    ratio = (rates[COMPARED] / rates[WHITE]).where(reason == "").to_numpy(dtype=np.float64, na_value=np.nan)
    return _Prediction("four-fifths rule", ratio < FOUR_FIFTHS, 1 - ratio, reason)


def _logistic(frame: pd.DataFrame, leis: pd.Index) -> _Prediction:
    odds = lender_denial_odds(frame, GROUP_COLUMN, WHITE, COMPARED, DENIAL_COVARIATES).set_index("lei").reindex(leis)
    estimate = odds["log_odds_ratio"].to_numpy(dtype=np.float64, na_value=np.nan)
    z = estimate / odds["standard_error"].to_numpy(dtype=np.float64, na_value=np.nan)
    flagged = (estimate > 0) & (odds["p_value"].to_numpy(dtype=np.float64, na_value=np.nan) < SIGNIFICANCE)
    reason = odds["reason"].fillna("no usable application").to_numpy(dtype=object)
    return _Prediction("logistic regression", flagged, z, reason)


def _analyst(frame: pd.DataFrame, leis: pd.Index) -> _Prediction:
    baseline = analyst_baseline(frame).set_index("lei").reindex(leis)
    adjusted = baseline["p_adjusted"].to_numpy(dtype=np.float64, na_value=np.nan)
    with np.errstate(divide="ignore"):
        score = -np.log10(np.maximum(adjusted, np.finfo(np.float64).tiny))
    reason = baseline["reason"].fillna("no usable application").to_numpy(dtype=object)
    return _Prediction("analyst baseline", adjusted < SIGNIFICANCE, score, reason)


# --- metrics ----------------------------------------------------------------------------------


def _method_scores(
    prediction: _Prediction, positive: np.ndarray, kind: np.ndarray, kinds: Sequence[str]
) -> MethodScores:
    flagged = prediction.flagged
    precision, recall, f1, _ = precision_recall_fscore_support(
        positive, flagged, average="binary", zero_division=np.nan
    )
    fair_cleared, fair_flagged = confusion_matrix(positive, flagged, labels=[False, True])[0]
    by_kind = tuple(
        (name, float(recall_score(positive[mask], flagged[mask], zero_division=np.nan)))
        for name, mask in ((name, positive & (kind == name)) for name in kinds)
    )
    return MethodScores(
        method=prediction.method,
        flagged=int(flagged.sum()),
        not_computed=_skipped(prediction),
        precision=float(precision),
        recall=float(recall),
        f1=float(f1),
        auc=_auc(positive, _ranked_score(prediction.score)),
        **_best_cut(positive, _ranked_score(prediction.score)),
        false_flags=int(fair_flagged),
        false_flag_rate=float(fair_flagged / (fair_flagged + fair_cleared))
        if fair_flagged + fair_cleared
        else math.nan,
        recall_by_kind=by_kind,
    )


def _ranked_score(score: np.ndarray) -> np.ndarray:
    """Scores with a lender not computed placed below every computed one."""
    computed = np.isfinite(score)
    lowest = float(score[computed].min()) - 1.0 if computed.any() else 0.0
    return np.where(computed, score, lowest)


def _best_cut(positive: np.ndarray, score: np.ndarray) -> dict[str, float]:
    """The largest F1 over the cuts of ``score`` and the cut that gives it (the highest such)."""
    if not positive.any():
        return {"best_f1": math.nan, "best_cut": math.nan}
    precision, recall, cuts = precision_recall_curve(positive, score)
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)[:-1]
    best = int(np.flatnonzero(f1 == f1.max())[-1])
    return {"best_f1": float(f1[best]), "best_cut": float(cuts[best])}


def _auc(positive: np.ndarray, score: np.ndarray) -> float:
    if np.unique(positive).size < 2:
        return math.nan
    return float(roc_auc_score(positive, score))


def _skipped(prediction: _Prediction) -> int:
    return int(np.count_nonzero(~np.isfinite(prediction.score)))


def _kinds(kinds: np.ndarray) -> tuple[str, ...]:
    """Kinds of the discriminating lenders: those of ``synth.KINDS`` in its order, then others."""
    order = {name: index for index, name in enumerate(KINDS)}
    return tuple(sorted({str(name) for name in kinds}, key=lambda name: (order.get(name, len(order)), name)))


def _not_computed_note(prediction: _Prediction) -> str:
    reasons = pd.Series(prediction.reason[~np.isfinite(prediction.score)], dtype="str").value_counts()
    listed = ", ".join(
        f"{reason} {count}" for reason, count in sorted(reasons.items(), key=lambda item: (-item[1], item[0]))
    )
    return (
        f"{prediction.method}: {_skipped(prediction)} of {prediction.score.size} lenders not computed ({listed}); "
        "counted as not flagged and scored below every computed lender"
    )


def _undefined_notes(methods: Sequence[MethodScores], positive: np.ndarray) -> tuple[str, ...]:
    notes = []
    if np.unique(positive).size < 2:
        every = "discriminating" if positive.any() else "fair"
        notes.append(f"AUC {MISSING}: every lender of the truth is {every}; ROC AUC is undefined")
    if not positive.any():
        notes.append(f"recall {MISSING}: no lender of the truth discriminates")
    notes.extend(
        f"precision {MISSING} for {method.method}: it flagged no lender" for method in methods if not method.flagged
    )
    return tuple(notes)


# --- rendering --------------------------------------------------------------------------------


def render_evaluation(result: Evaluation, *, as_json: bool = False) -> str:
    """An aligned text report, or one JSON object (keys in a fixed order, NaN as null)."""
    if as_json:
        return json.dumps(_record(result), indent=2, ensure_ascii=False, allow_nan=False)
    kinds = ", ".join(f"{count} {name}" for name, count in result.kinds)
    lines = [
        f"evaluation of {result.out} against {result.truth} (facts {result.facts})",
        f"{result.lenders} lenders: {result.discriminating} discriminating"
        + (f" ({kinds})" if kinds else "")
        + f", {result.fair} fair",
        "",
        *_table(
            ("method", "flagged", "precision", "recall", "F1", "AUC", "best F1", "false flags on fair lenders"),
            [
                (
                    method.method,
                    str(method.flagged),
                    _number(method.precision),
                    _number(method.recall),
                    _number(method.f1),
                    _number(method.auc),
                    _number(method.best_f1),
                    f"{_number(method.false_flag_rate)} ({method.false_flags}/{result.fair})",
                )
                for method in result.methods
            ],
        ),
    ]
    if result.kinds:
        header = ("recall by kind", *(f"{name} ({count})" for name, count in result.kinds))
        rows = [(method.method, *(_number(recall) for _, recall in method.recall_by_kind)) for method in result.methods]
        lines += ["", *_table(header, rows)]
    if result.notes:
        lines += ["", "notes:", *(f"- {note}" for note in result.notes)]
    return "\n".join(lines)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows under ``header``, the first column left-aligned and the others right-aligned."""
    widths = [max(len(row[column]) for row in (header, *rows)) for column in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        first, *rest = cells
        return "  ".join(
            [first.ljust(widths[0]), *(cell.rjust(width) for cell, width in zip(rest, widths[1:], strict=True))]
        )

    return [line(header), *(line(row) for row in rows)]


def _number(value: float) -> str:
    return MISSING if math.isnan(value) else f"{value:.2f}"


def _record(result: Evaluation) -> dict[str, Any]:
    return {
        "out": str(result.out),
        "truth": str(result.truth),
        "facts": str(result.facts),
        "lenders": result.lenders,
        "discriminating": result.discriminating,
        "fair": result.fair,
        "kinds": dict(result.kinds),
        "methods": [
            {
                "method": method.method,
                "flagged": method.flagged,
                "not_computed": method.not_computed,
                "precision": _json_number(method.precision),
                "recall": _json_number(method.recall),
                "f1": _json_number(method.f1),
                "auc": _json_number(method.auc),
                "best_f1": _json_number(method.best_f1),
                "best_cut": _json_number(method.best_cut),
                "false_flags": method.false_flags,
                "false_flag_rate": _json_number(method.false_flag_rate),
                "recall_by_kind": {name: _json_number(recall) for name, recall in method.recall_by_kind},
            }
            for method in result.methods
        ],
        "notes": list(result.notes),
    }


def _json_number(value: float) -> float | None:
    return None if math.isnan(value) else value
