"""``reason evaluate``: metrics by hand on a five-lender audit, input errors, and end to end.

The hand-made facts hold the covariates constant, so the per-lender logistic regression is the
2x2 table: log odds ratio log((d_m / a_m) / (d_w / a_w)), standard error
sqrt(1/a_m + 1/d_m + 1/a_w + 1/d_w) (a approvals, d denials; m minority, w White non-Hispanic).

=====  ===================  ============  ============  ==================  =====================
lender truth                minority a/d  White a/d     audit flag (score)  four-fifths ratio
=====  ===================  ============  ============  ==================  =====================
L1     disparate_treatment  2/8           9/1           no (50)             0.2/0.9 = 0.22: flag
L2     fair                 9/1           9/1           yes (70)            1
L3     redlining            8/2           9/1           yes (90)            0.8/0.9 = 0.89
L4     fair                 5/5           10/0          no (10)             0.5: flag
L5     fair                 3/0           9/1           no (0)              not computed (< 5)
=====  ===================  ============  ============  ==================  =====================

The regression flags L1 only (z = log 36 / sqrt(1.736) = 2.72, p = 0.007; L3 z = 0.62) and
cannot fit L4 (no White denial: separation) nor L5 (too few minority applicants).

The analyst baseline runs two tests per lender here (minority and Black: the same rows; no
pricing, no Hispanic, Asian or female applicants), so Holm doubles the p-value: L1 2 x 0.007
(its light penalty moves p a little), L2 an estimate of 0 (p 1), L3 1, L4 fitted despite the
separation (penalised), p 0.2 x 2 = 0.39 (Fisher's exact test: 0.03 one-sided); L5 not computed.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

import pandas as pd
import pytest
from support import REPOSITORY

from reasoner.errors import EvidenceError, UsageError
from reasoner.lending.synthetic.evaluate import Evaluation, evaluate, render_evaluation

pytestmark = pytest.mark.slow  # end-to-end audits: outside the inner loop, pytest -m "not slow"

RULES = REPOSITORY / "rules"
BLACK = "Black or African American"
# lei: (minority approved, minority denied, White approved, White denied)
DECISIONS = {"L1": (2, 8, 9, 1), "L2": (9, 1, 9, 1), "L3": (8, 2, 9, 1), "L4": (5, 5, 10, 0), "L5": (3, 0, 9, 1)}
TRUTH = {"L1": "disparate_treatment", "L2": "fair", "L3": "redlining", "L4": "fair", "L5": "fair"}
AUDIT = {"L1": (False, 50.0), "L2": (True, 70.0), "L3": (True, 90.0), "L4": (False, 10.0), "L5": (False, 0.0)}


def facts_rows() -> list[dict[str, object]]:
    fixed = {
        "derived_sex": "Male",
        "loan_type": 1,
        "loan_purpose": 1,
        "lien_status": 1,
        "loan_amount": 205000,
        "income": 90,
        "debt_to_income_ratio": "36",
        "combined_loan_to_value_ratio": 80,
    }
    minority = {"derived_race": BLACK, "derived_ethnicity": "Not Hispanic or Latino"}
    white = {"derived_race": "White", "derived_ethnicity": "Not Hispanic or Latino"}
    rows: list[dict[str, object]] = []
    for lei, counts in DECISIONS.items():
        for group, (approved, denied) in ((minority, counts[:2]), (white, counts[2:])):
            actions = [1] * approved + [3] * denied
            rows += [{"lei": lei, "action_taken": action, **group, **fixed} for action in actions]
    rows.append({"lei": "L1", "action_taken": 4, **minority, **fixed})  # withdrawn: no decision
    return rows


def write_truth(path: Path, kinds: dict[str, str]) -> Path:
    frame = pd.DataFrame(
        {"lei": list(kinds), "discriminates": [kind != "fair" for kind in kinds.values()], "kind": list(kinds.values())}
    )
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def audited(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """OUT and TRUTH; the manifest names the facts relative to OUT's parent, not the cwd."""
    facts = tmp_path / "facts.csv"
    pd.DataFrame(facts_rows()).to_csv(facts, index=False)
    out = tmp_path / "out"
    out.mkdir()
    pd.DataFrame(
        {
            "lei": list(AUDIT),
            "flagged": [flagged for flagged, _ in AUDIT.values()],
            "risk_score": [score for _, score in AUDIT.values()],
        }
    ).to_parquet(out / "lenders.parquet")
    digest = hashlib.sha256(facts.read_bytes()).hexdigest()
    manifest = {"inputs": [{"path": "facts.csv", "sha256": digest, "kind": "facts"}]}
    (out / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    return out, write_truth(tmp_path / "truth.csv", TRUTH)


def by_method(result: Evaluation) -> dict[str, tuple[object, ...]]:
    return {
        method.method: (
            method.flagged,
            method.not_computed,
            method.precision,
            method.recall,
            method.f1,
            method.auc,
            method.false_flags,
            method.false_flag_rate,
            dict(method.recall_by_kind),
        )
        for method in result.methods
    }


def test_metrics_by_hand(audited: tuple[Path, Path]) -> None:
    result = evaluate(*audited)
    assert result.facts == audited[0].parent / "facts.csv"
    assert (result.lenders, result.discriminating, result.fair) == (5, 2, 3)
    assert result.kinds == (("disparate_treatment", 1), ("redlining", 1))
    kinds = {"disparate_treatment": 1.0, "redlining": 0.0}
    assert by_method(result) == {
        # AUC: positives (90, 50) against negatives (70, 10, 0): 5 of 6 pairs ranked right
        "audit": (
            2,
            0,
            0.5,
            0.5,
            0.5,
            pytest.approx(5 / 6),
            1,
            pytest.approx(1 / 3),
            {"disparate_treatment": 0.0, "redlining": 1.0},
        ),
        # scores 1 - ratio: positives (0.78, 0.11) against (0, 0.5, lowest)
        "four-fifths rule": (2, 1, 0.5, 0.5, 0.5, pytest.approx(5 / 6), 1, pytest.approx(1 / 3), kinds),
        # z: positives (2.72, 0.62) against (0, lowest, lowest)
        "logistic regression": (1, 2, 1.0, 0.5, pytest.approx(2 / 3), 1.0, 0, 0.0, kinds),
        # -log10 p: positives (1.9, 0) against (0, 0.41, lowest): L3 ties L2, counted one half
        "analyst baseline": (1, 1, 1.0, 0.5, pytest.approx(2 / 3), pytest.approx(4.5 / 6), 0, 0.0, kinds),
    }
    best = {method.method: (method.best_f1, method.best_cut) for method in result.methods}
    assert best["audit"] == (pytest.approx(0.8), 50.0)  # flag 90, 70, 50: precision 2/3, recall 1
    assert best["logistic regression"][0] == 1.0  # its z ranks L1 and L3 above every fair lender
    assert best["analyst baseline"] == (pytest.approx(2 / 3), pytest.approx(-math.log10(0.012691), rel=1e-3))
    assert any(
        "four-fifths rule: 1 of 5 lenders not computed (fewer than 5 minority decisions 1)" in note
        for note in result.notes
    )
    assert any("logistic regression: 2 of 5" in note and "separation" in note for note in result.notes)


def test_render_text_and_json(audited: tuple[Path, Path]) -> None:
    result = evaluate(*audited)
    text = render_evaluation(result)
    assert "5 lenders: 2 discriminating (1 disparate_treatment, 1 redlining), 3 fair" in text
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("method"))
    audit_row = next(line for line in lines if line.startswith("audit "))
    assert header.split("  ")[-1].strip() == "false flags on fair lenders"
    assert audit_row.split()[1:] == ["2", "0.50", "0.50", "0.50", "0.83", "0.80", "0.33", "(1/3)"]
    assert len(audit_row) == len(header)
    record = json.loads(render_evaluation(result, as_json=True))
    assert list(record) == ["out", "truth", "facts", "lenders", "discriminating", "fair", "kinds", "methods", "notes"]
    assert [method["method"] for method in record["methods"]] == [
        "audit", "four-fifths rule", "logistic regression", "analyst baseline"
    ]  # fmt: skip
    assert record["methods"][0]["best_f1"] == pytest.approx(0.8) and record["methods"][0]["best_cut"] == 50.0
    assert record["methods"][2]["recall_by_kind"] == {"disparate_treatment": 1.0, "redlining": 0.0}


def test_one_class_leaves_auc_and_recall_undefined(audited: tuple[Path, Path]) -> None:
    out, truth = audited
    result = evaluate(out, write_truth(truth, dict.fromkeys(TRUTH, "fair")))
    for method in result.methods:
        assert math.isnan(method.auc) and math.isnan(method.recall) and method.recall_by_kind == ()
    text = render_evaluation(result)
    assert "AUC –: every lender of the truth is fair" in text
    assert "recall by kind" not in text
    assert json.loads(render_evaluation(result, as_json=True))["methods"][0]["auc"] is None


def test_lenders_must_match(audited: tuple[Path, Path]) -> None:
    out, truth = audited
    kinds = {lei: kind for lei, kind in TRUTH.items() if lei != "L4"} | {"L9": "fair", "L8": "pricing"}
    with pytest.raises(
        EvidenceError,
        match=r"2 lenders of .*truth.csv not in .*lenders.parquet \(e.g. L8\); "
        r"1 lender of .*lenders.parquet not in .*truth.csv \(e.g. L4\)",
    ):
        evaluate(out, write_truth(truth, kinds))


def test_truth_lenders_without_applications_are_left_out(audited: tuple[Path, Path]) -> None:
    out, truth = audited
    frame = pd.read_csv(truth).assign(applications=30)
    frame.loc[len(frame)] = ["L0", True, "pricing", 0]
    frame.to_csv(truth, index=False)
    result = evaluate(out, truth)
    assert result.lenders == 5 and "1 lender of the truth without applications left out" in result.notes


def test_facts_must_be_those_of_the_audit(audited: tuple[Path, Path]) -> None:
    out, truth = audited
    facts = out.parent / "facts.csv"
    facts.write_text(facts.read_text() + facts.read_text().splitlines()[1] + "\n")
    with pytest.raises(EvidenceError, match=r"facts.csv: sha256 \w+ differs from \w+ recorded in .*manifest.json"):
        evaluate(out, truth)
    facts.unlink()
    with pytest.raises(UsageError, match=r"the facts the audit read, 'facts.csv', are not found"):
        evaluate(out, truth)


def test_facts_directory_is_read_unverified(audited: tuple[Path, Path]) -> None:
    out, truth = audited
    expected = by_method(evaluate(out, truth))
    dataset = out.parent / "facts"
    dataset.mkdir()
    pd.DataFrame(facts_rows()).astype(str).to_parquet(dataset / "part-0.parquet")
    manifest = {"inputs": [{"path": str(dataset), "sha256": "", "kind": "facts"}]}
    (out / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    result = evaluate(out, truth)
    assert by_method(result) == expected
    assert f"{dataset} is a directory: not checked against the manifest" in result.notes[0]


@pytest.mark.parametrize(
    ("missing", "error", "message"),
    [("manifest.json", UsageError, "not an audit output directory"), ("truth", UsageError, "no such file")],
)
def test_missing_inputs(audited: tuple[Path, Path], missing: str, error: type[Exception], message: str) -> None:
    out, truth = audited
    (truth if missing == "truth" else out / missing).unlink()
    with pytest.raises(error, match=message):
        evaluate(out, truth)


def test_truth_needs_its_columns(audited: tuple[Path, Path]) -> None:
    out, truth = audited
    pd.read_csv(truth).drop(columns="kind").to_csv(truth, index=False)
    with pytest.raises(EvidenceError, match="truth.csv: no column 'kind'"):
        evaluate(out, truth)


def test_end_to_end(sample_audit: tuple[Path, Path], reason: Callable[..., CompletedProcess[str]]) -> None:
    folder, out = sample_audit
    evaluated = reason(["evaluate", out, folder / "sample.truth.csv"], cwd=RULES.parent)
    assert evaluated.returncode == 0, evaluated.stderr
    rows = [line.split("  ")[0] for line in evaluated.stdout.splitlines()]
    assert rows.count("audit") == rows.count("four-fifths rule") == rows.count("logistic regression") == 2
    assert "12 lenders: 3 discriminating" in evaluated.stdout
    audit_row = next(line for line in evaluated.stdout.splitlines() if line.startswith("audit "))
    assert audit_row.split()[1:5] == ["3", "1.00", "1.00", "1.00"]  # flagged, precision, recall, F1
