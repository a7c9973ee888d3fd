"""Honest verdicts: untested and underpowered lenders, effect sizes, actions per violation kind,
denial reasons (``verdicts``, ``effects``, ``denial_reasons``, ``score``, ``config``)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from support import REPOSITORY

from reasoner.errors import RuleError
from reasoner.lending.audit.run import Audit, audit
from reasoner.lending.audit.verdicts import lender_evidence
from reasoner.lending.config import Comparison, load_config
from reasoner.lending.evidence.denial_reasons import contradicted_reasons, reason_mix
from reasoner.lending.evidence.effects import EFFECT_COLUMNS, effect_sizes, with_effects
from reasoner.lending.outputs.verdict_section import denial_reason_tables
from reasoner.lending.outputs.write import write_outputs

RULES = REPOSITORY / "rules"
BLACK = "Black or African American"
WHITE = {"derived_race": "White", "derived_ethnicity": "Not Hispanic or Latino"}
MINORITY = {"derived_race": BLACK, "derived_ethnicity": "Not Hispanic or Latino"}


# --- effects ------------------------------------------------------------------------------------


def test_marginal_effect_and_excess_denials_by_hand() -> None:
    # p1 = 0.3 at odds ratio 2: at the reference odds 0.3/(0.3 + 2 * 0.7) = 0.17647 would be denied.
    effect, excess = effect_sizes(np.array([100.0]), np.array([0.3]), np.array([2.0]))
    assert effect[0] == pytest.approx(0.3 - 0.3 / 1.7)
    assert excess[0] == pytest.approx(100 * (0.3 - 0.3 / 1.7))
    none, zero = effect_sizes(np.array([50.0]), np.array([0.4]), np.array([1.0]))
    assert none[0] == pytest.approx(0.0) and zero[0] == pytest.approx(0.0)
    below, _ = effect_sizes(np.array([50.0]), np.array([0.4]), np.array([0.5]))
    assert below[0] < 0


def test_effect_intervals_follow_the_odds_ratio_interval_and_untested_rows_get_nan() -> None:
    table = pd.DataFrame(
        {
            "lei": ["A", "B"],
            "compared_applications": [200, 10],
            "compared_denial_rate": [0.35, 0.5],
            "odds_ratio": [2.5, np.nan],
            "ci_low": [1.4, np.nan],
            "ci_high": [4.4, np.nan],
            "reason": ["", "fewer than 5 reference applications"],
        }
    )
    before = table.copy()
    out = with_effects(table)
    pd.testing.assert_frame_equal(table, before)  # the input is not changed
    assert list(out.columns) == [*table.columns, *EFFECT_COLUMNS] and out.index.equals(table.index)
    row = out.iloc[0]
    assert row["marginal_effect_ci_low"] < row["marginal_effect"] < row["marginal_effect_ci_high"]
    assert row["excess_denials_ci_low"] < row["excess_denials"] < row["excess_denials_ci_high"]
    assert row["excess_denials"] == pytest.approx(200 * row["marginal_effect"])
    assert out.iloc[1][["marginal_effect", "excess_denials"]].isna().all()
    assert list(out.columns[: len(table.columns)]) == list(table.columns)


# --- verdict status and the comparison that drives the finding ------------------------------------


def _odds(rows: list[tuple[str, str, str, float, float, float]]) -> pd.DataFrame:
    """denial_odds rows: lei, comparison, reason, p_adjusted, min detectable OR, odds ratio."""
    columns = ["lei", "comparison", "reason", "p_adjusted", "min_detectable_odds_ratio", "odds_ratio"]
    frame = pd.DataFrame(rows, columns=columns)
    for name in ("marginal_effect", "marginal_effect_ci_low", "marginal_effect_ci_high", "excess_denials",
                 "excess_denials_ci_low", "excess_denials_ci_high"):
        frame[name] = frame["odds_ratio"] - 1
    return frame


def test_status_not_tested_underpowered_cleared_flagged() -> None:
    odds = _odds(
        [
            ("CLEAR", "minority", "", 0.5, 1.6, 1.1),
            ("CLEAR", "black", "", 0.7, 2.4, 1.2),
            ("NONE", "minority", "no reference applications", math.nan, math.nan, math.nan),
            ("SMALL", "minority", "", 0.2, 3.5, 2.0),
            ("SMALL", "black", "fewer than 5 compared applications", math.nan, 9.0, math.nan),
        ]
    )
    evidence = lender_evidence(odds, ["minority", "black"])
    assert evidence.status("CLEAR", False, 2.0) == "CLEARED"
    assert evidence.status("NONE", False, 2.0) == "NOT_TESTED"
    assert evidence.status("ABSENT", False, 2.0) == "NOT_TESTED"
    assert evidence.status("SMALL", False, 2.0) == "UNDERPOWERED"
    assert evidence.status("SMALL", False, 4.0) == "CLEARED"  # the threshold is the setting's
    assert evidence.status("NONE", True, 2.0) == "FLAGGED"
    assert evidence.columns("CLEAR", [])["min_detectable_odds_ratio"] == 1.6
    assert evidence.columns("NONE", [])["effect_comparison"] == ""
    assert math.isnan(float(evidence.columns("NONE", [])["marginal_effect"]))  # type: ignore[arg-type]


def test_the_driving_comparison_follows_the_violation_kind() -> None:
    odds = _odds(
        [
            ("L", "minority", "", 0.2, 1.6, 1.4),
            ("L", "black", "", 0.001, 1.9, 2.6),
            ("L", "neighbourhood", "", 0.0001, 2.0, 3.1),
            ("L", "asian", "", 0.00001, 2.0, 0.3),
        ]
    )
    evidence = lender_evidence(odds, ["minority", "black", "asian", "neighbourhood"])
    assert evidence.columns("L", ["disparate treatment"])["effect_comparison"] == "black"  # elevated odds first
    assert evidence.columns("L", ["redlining"])["effect_comparison"] == "neighbourhood"
    assert evidence.columns("L", ["disparate treatment", "redlining"])["effect_comparison"] == "black"
    assert evidence.columns("L", [])["odds_ratio"] == 2.6


# --- actions per violation kind -----------------------------------------------------------------


def _config_with(tmp_path: Path, old: str, new: str) -> Path:
    text = (RULES / "audit.toml").read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "audit.toml"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return path


def test_actions_combine_the_tier_and_each_violation_kind() -> None:
    config = load_config(RULES / "audit.toml")
    redlining = config.action("TIER_2_HIGH_RISK", ["redlining"])
    assert redlining.startswith("Prioritise for examination; redlining: ")
    assert "marketing" in redlining and "matched pairs" not in redlining
    treatment = config.action("TIER_2_HIGH_RISK", ["disparate treatment"])
    assert "matched pairs" in treatment
    assert "rate-sheet" in config.action("TIER_3_ELEVATED_RISK", ["pricing disparity"])
    assert "collect more data" in config.action("NOT_TESTED")
    assert config.action("TIER_5_LOW_RISK") == "No action"


def test_a_misspelled_kind_action_is_an_error_with_its_line(tmp_path: Path) -> None:
    path = _config_with(tmp_path, "\nRedlining = ", "\nRedlinning = ")
    with pytest.raises(RuleError) as error:
        load_config(path)
    line = next(n for n, text in enumerate(path.read_text().splitlines(), 1) if text.startswith("Redlinning"))
    span = error.value.diagnostics[0].span
    assert (span.line, span.column) == (line, 1)
    assert "Redlinning" in error.value.render() and "did you mean 'Redlining'" in error.value.render()


def test_underpowered_odds_ratio_must_be_above_one(tmp_path: Path) -> None:
    path = _config_with(tmp_path, "underpowered_odds_ratio = 2", "underpowered_odds_ratio = 1")
    with pytest.raises(RuleError, match="above 1"):
        load_config(path)
    three = _config_with(tmp_path, "underpowered_odds_ratio = 2", "underpowered_odds_ratio = 3")
    assert load_config(three).underpowered_odds_ratio == 3


# --- the audit: lenders that cannot be tested are not low risk --------------------------------------


def _row(lei: str, group: dict[str, str], action: int, tract: float, **extra: object) -> dict[str, object]:
    return {
        "lei": lei,
        "action_taken": action,
        "derived_sex": "Male",
        "loan_type": 1,
        "loan_purpose": 1,
        "lien_status": 1,
        "loan_amount": 205000,
        "income": 90,
        "debt_to_income_ratio": "30%-<36%",
        "combined_loan_to_value_ratio": 70,
        "derived_msa_md": "10000",
        "tract_minority_population_percent": tract,
        "denial_reason_1": extra.pop("reason", "10" if action != 3 else "9"),
        **group,
        **extra,
    }


def _register() -> pd.DataFrame:
    rows: list[dict[str, object]] = []
    rng = np.random.default_rng(7)
    for lei in ("PEER1", "PEER2"):  # fair, large: half their applications from majority-minority tracts
        for index in range(800):
            group = MINORITY if index % 2 else WHITE
            action = 3 if rng.random() < 0.2 else 1
            # PEER1 tells denied minority applicants their DTI is too high, at a DTI of 33%: contradicted
            reason = "1" if lei == "PEER1" and group is MINORITY and action == 3 else "10" if action != 3 else "9"
            tract = 80.0 if index % 4 < 2 else 10.0
            rows.append(_row(lei, group, action, tract, income=60 + index % 50, reason=reason))
    # every application denied, none from majority-minority tracts: no comparison, a redlining share gap
    rows += [_row("DENYALL", WHITE if i % 2 else MINORITY, 3, 10.0, income=60 + i) for i in range(120)]
    rows += [_row("NOREF", MINORITY, 3 if i % 3 == 0 else 1, 80.0, income=60 + i) for i in range(60)]  # no reference
    rows += [  # tested, but far too small to detect a doubling of the odds
        _row("SMALL", MINORITY if i % 2 else WHITE, 3 if i % 4 == 0 or i % 7 == 0 else 1, 80.0 if i % 3 else 10.0,
             income=60 + i)
        for i in range(24)
    ]
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> Audit:
    folder = tmp_path_factory.mktemp("verdicts")
    facts = folder / "facts.csv"
    _register().to_csv(facts, index=False)
    return audit([RULES], facts, workers=1)


@pytest.mark.slow
def test_untested_and_underpowered_lenders_are_not_low_risk(audited: Audit) -> None:
    lenders = audited.findings.lenders.set_index("lei")
    noref = lenders.loc["NOREF"]
    assert (noref["verdict_status"], noref["risk_tier"], noref["confidence"]) == (
        "NOT_TESTED", "NOT_TESTED", "INSUFFICIENT_EVIDENCE"
    )
    assert "collect more data" in noref["recommended_action"] and noref["recommended_action"] != "No action"
    small = lenders.loc["SMALL"]
    assert small["verdict_status"] == "UNDERPOWERED" and small["risk_tier"] == "UNDERPOWERED"
    assert small["confidence"] == "LOW_CONFIDENCE" and small["min_detectable_odds_ratio"] > 2
    for lei in ("PEER1", "PEER2"):
        assert lenders.loc[lei, "verdict_status"] == "CLEARED" and lenders.loc[lei, "risk_tier"] == "TIER_5_LOW_RISK"
        assert lenders.loc[lei, "min_detectable_odds_ratio"] < 2
        assert np.isfinite(lenders.loc[lei, "excess_denials"]) and lenders.loc[lei, "effect_comparison"] != ""
    assert not (lenders["risk_tier"].eq("TIER_5_LOW_RISK") & lenders["verdict_status"].ne("CLEARED")).any()


def test_a_lender_denying_everyone_flagged_on_other_evidence_has_a_confidence(audited: Audit) -> None:
    denyall = audited.findings.lenders.set_index("lei").loc["DENYALL"]
    assert denyall["flagged"] and list(denyall["violations"]) == ["redlining"]
    assert denyall["verdict_status"] == "FLAGGED"
    assert denyall["confidence"] != "INSUFFICIENT_EVIDENCE"
    assert "marketing" in denyall["recommended_action"] and "matched pairs" not in denyall["recommended_action"]
    assert denyall["effect_comparison"] == "" and math.isnan(denyall["min_detectable_odds_ratio"])


def test_reports_and_explain_say_not_tested_and_underpowered(audited: Audit, tmp_path: Path) -> None:
    from reasoner.lending.outputs.explain_finding import explain_finding

    out = write_outputs(audited, tmp_path / "out", timings=False)
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "### Lenders not tested or underpowered" in report
    assert "| NOREF | NOT_TESTED | 0 |" in report or "| NOREF | NOT_TESTED |" in report
    assert "## Denial reasons (Regulation B)" in report
    section = report[report.index("## Denial reasons"):report.index("## Data quality")]
    assert "| PEER1 | minority |" in section and "| PEER1 | black |" in section  # contradicted and reason mix
    assert "PEER2" not in section
    cleaned = dataclasses.replace(audited.cleaned, absent_columns=("denial_reason_1",))
    absent = dataclasses.replace(audited, cleaned=cleaned)
    intro, tables = denial_reason_tables(absent)
    assert "has no denial reasons" in intro and tables == []
    html = (out / "report.html").read_text(encoding="utf-8")
    assert '<span class="badge ts">UNDERPOWERED</span>' in html or "UNDERPOWERED" in html
    text = explain_finding(out, "SMALL")
    assert "verdict UNDERPOWERED" in text and "could not have detected a doubling" in text
    assert "Tier UNDERPOWERED" in text
    text = explain_finding(out, "NOREF")
    assert "nothing was tested" in text
    text = explain_finding(out, "PEER1")
    assert "Denial effect (" in text and "denials beyond those the reference group's odds predict" in text


# --- denial reasons -------------------------------------------------------------------------------


def _denials() -> pd.DataFrame:
    """One lender: 20 Black and 20 White denials. DTI cited by 12 Black (10 with DTI 33 < 36: contradicted) and
    by 4 White (DTI 45: consistent); collateral by 2 White at CLTV 70 (contradicted)."""
    rows = []
    for index in range(20):
        rows.append({"race_ethnicity": BLACK, "denial_reason_1": 1.0 if index < 12 else 3.0,
                     "dti": 33.0 if index < 10 else 45.0, "cltv": 90.0})
        rows.append({"race_ethnicity": "White non-Hispanic", "denial_reason_1": 1.0 if index < 4 else 3.0,
                     "denial_reason_2": 4.0 if index in (5, 6) else np.nan, "dti": 45.0,
                     "cltv": 70.0 if index in (5, 6) else 90.0})
    frame = pd.DataFrame(rows)
    frame["lei"] = "L"
    frame["excluded"] = ""
    frame["decision"] = "denied"
    return frame


def test_reason_mix_counts_every_reason_column_and_tests_the_excess() -> None:
    comparison = Comparison("black", "race_ethnicity", "White non-Hispanic", (BLACK,))
    mix = reason_mix(_denials(), [comparison]).set_index("reason")
    assert (mix.loc[1, "compared_citing"], mix.loc[1, "reference_citing"]) == (12, 4)
    assert mix.loc[4, "reference_citing"] == 2  # from denial_reason_2
    assert mix.loc[1, "p_value"] < 0.05 < mix.loc[3, "p_value"]
    # the one-sided Fisher test, by scipy's own function
    from scipy.stats import fisher_exact

    expected = fisher_exact([[12, 8], [4, 16]], alternative="greater").pvalue
    assert mix.loc[1, "p_value"] == pytest.approx(expected)
    assert (mix["p_adjusted"] >= mix["p_value"]).all()


def test_contradicted_reasons_per_group() -> None:
    comparison = Comparison("black", "race_ethnicity", "White non-Hispanic", (BLACK,))
    table = contradicted_reasons(_denials(), [comparison])
    row = table.iloc[0]
    assert (row["compared_contradicted"], row["reference_contradicted"]) == (10, 2)
    assert row["p_value"] < 0.05
    no_reasons = contradicted_reasons(_denials().drop(columns=["denial_reason_1", "denial_reason_2"]), [comparison])
    assert no_reasons.empty and list(no_reasons.columns)[-1] == "p_adjusted"


def test_both_denial_reason_tables_at_once_per_lender_sorted_as_text() -> None:
    """``denial_reason_tables`` (the audit's call) gives what the two functions give alone; lenders
    sorted as text, a denial without a lender left out; every p-value is scipy's Fisher test of its
    own row (the p-values are computed for all rows at once)."""
    from scipy.stats import fisher_exact

    from reasoner.lending.evidence.denial_reasons import denial_reason_tables

    parts = []
    for lei, shift in (("b", 0), ("A", 3), (None, 1), ("a", 5)):
        part = _denials()
        part["lei"] = pd.Series([lei] * len(part), dtype="str")
        part["denial_reason_1"] = np.where(np.arange(len(part)) % 7 < shift, 9.0, part["denial_reason_1"])
        parts.append(part)
    frame = pd.concat(parts, ignore_index=True)
    frame["sex"] = np.where(np.arange(len(frame)) % 3 == 0, "Female", "Male")
    comparisons = [
        Comparison("black", "race_ethnicity", "White non-Hispanic", (BLACK,)),
        Comparison("sex", "sex", "Male", ("Female",)),
    ]
    mix, contradicted = denial_reason_tables(frame, comparisons)
    pd.testing.assert_frame_equal(mix, reason_mix(frame, comparisons), check_exact=True)
    pd.testing.assert_frame_equal(contradicted, contradicted_reasons(frame, comparisons), check_exact=True)
    assert contradicted["lei"].tolist() == ["A", "A", "a", "a", "b", "b"]
    assert mix["lei"].drop_duplicates().tolist() == ["A", "a", "b"] and len(mix) == 3 * 2 * 9
    assert mix[["lei", "comparison"]].drop_duplicates().values.tolist() == [
        [lei, name] for lei in ("A", "a", "b") for name in ("black", "sex")
    ]
    for table, noun in ((mix, "citing"), (contradicted, "contradicted")):
        for row in table.itertuples():
            x1, x0 = getattr(row, f"compared_{noun}"), getattr(row, f"reference_{noun}")
            n1, n0 = row.compared_denials, row.reference_denials
            expected = fisher_exact([[x1, n1 - x1], [x0, n0 - x0]], alternative="greater").pvalue
            assert row.p_value == pytest.approx(expected, rel=1e-9)
