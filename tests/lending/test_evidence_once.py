"""One piece of evidence counted once: a comparator pair, a cluster outlier and the statistical
evidence of a lender weigh the same whatever the number of overlapping comparisons they appear
in (rules/10-matched-pair.mln, rules/60-intersectional.mln, reasoner/lending/interaction.py)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from support import REPOSITORY

from reasoner import explain
from reasoner.check import QueryPattern
from reasoner.evidence import MemoryTable
from reasoner.lending.evidence.interaction import interaction_tests
from reasoner.lending.evidence.statistics import Prepared
from reasoner.lending.evidence.tables import add_group_columns
from reasoner.lending.outputs.explain_finding import explain_finding
from reasoner.lending.outputs.explanation_file import write_records
from reasoner.model.evidence import empty_model_evidence
from reasoner.pipeline import run

RULES = REPOSITORY / "rules"
LEI = "LENDER0000000000000A"
NESTED = ("hispanic", "minority", "minority_tract")


def _tables(comparisons: tuple[str, ...], *, interaction_p: float = 0.5) -> dict[str, MemoryTable]:
    """A lender whose denial odds and matched pairs show a disparity in every comparison of
    ``NESTED``; the denied applicant B with one approved neighbour A and a cluster of approved
    neighbours, in each of ``comparisons``."""
    applications = pd.DataFrame(
        {
            "application_id": ["A", "B"],
            "lei": [LEI, LEI],
            "excluded": ["", ""],
            "decision": ["approved", "denied"],
            "action_taken": [1, 3],
        }
    )
    statistic = pd.DataFrame(
        {
            "lei": LEI,
            "comparison": list(NESTED),
            "odds_ratio": 3.0,
            "adjusted_ratio": 3.0,
            "adjusted_gap": 0.0,
            "p_value": 1e-4,
            "p_adjusted": 1e-4,
            "llr": 6.0,
            "strongest": [1, 0, 0],  # graded evidence (30-statistical.mln): the strongest comparison counts
            "evidence_weight": [6.0, 0.0, 0.0],
        }
    )
    pairs = pd.DataFrame(
        {
            "comparison": list(comparisons), "b": "B", "a": "A", "distance": 0.2, "rank": 1, "lei": LEI,
            "spread_gap": np.nan, "no_stronger": 1,
        }
    )
    outliers = pd.DataFrame({"application_id": "B", "comparison": list(comparisons), "decision": "denied", "lei": LEI})
    interactions = pd.DataFrame(
        {"lei": LEI, "interaction": ["race_sex", "race_tract"], "odds_ratio": 3.0, "p_adjusted": interaction_p}
    )
    frames = {
        "applications": applications,
        "lenders": pd.DataFrame({"lei": [LEI], "tested": [1]}),
        "pairs": pairs,
        "denial_odds": statistic,
        "matched_pairs": statistic,
        "pricing": statistic,
        "redlining": pd.DataFrame(
            {"lei": [LEI], "market": ["1"], "market_kind": ["msa"], "band": [50], "measure": ["applications"],
             "share_ratio": [1.0], "p_value": [1.0], "p_adjusted": [1.0]}
        ),
        "outliers": outliers,
        "interactions": interactions,
    }
    frames.update(empty_model_evidence())  # no model audit: its rules have no evidence
    return {name: MemoryTable.of(frame, name) for name, frame in frames.items()}


def _proof(comparisons: tuple[str, ...], atom: str = 'Disparate("B")', **options: float):
    names = (
        "Flagged", "Cleared", "DisparateTreatment", "Redlining", "PricingDisparity", "IntersectionalDisparity",
        "Disparate", "Overcharged",
    )
    queries = [QueryPattern(name) for name in names]
    tables = _tables(comparisons, **options)
    result = run(sorted(RULES.glob("*.mln")), tables=tables, queries=queries, explain_atoms=[atom])
    return explain(result, atom)


def test_a_pair_in_three_nested_comparisons_weighs_what_one_comparison_does() -> None:
    once = _proof(("hispanic",))
    nested = _proof(NESTED)
    weights = [sum((item.effect for item in proof.supporting), Decimal(0)) for proof in (once, nested)]
    assert weights == [Decimal("3.5"), Decimal("3.5")]  # one comparator (2.0) and one cluster (1.5)
    assert once.value and nested.value
    assert once.margin == nested.margin == Decimal("0.5")  # against the presumption of -3.0
    assert len(nested.supporting) == 2  # one ground formula for the pair, one for the cluster
    cited = {citation.atom for formula in nested.supporting for citation in formula.atoms if citation.value}
    for comparison in NESTED:  # every comparison in which the pair appears is cited
        assert f"MatchedDenial(B,A,{comparison})" in cited
        assert f"ClusterOutlier(B,{comparison})" in cited


def test_intersectional_needs_the_interaction_itself() -> None:
    plain = _proof(NESTED, "IntersectionalDisparity(\"" + LEI + "\")")
    assert not plain.value  # the race effect alone (denial odds in every comparison) is not intersectional
    interaction = _proof(NESTED, "IntersectionalDisparity(\"" + LEI + "\")", interaction_p=1e-6)
    assert interaction.value
    # both interactions reach every level, yet each level counts once for the lender
    assert sum((item.effect for item in interaction.supporting), Decimal(0)) == Decimal("5.00")


def _register(interaction: float, seed: int = 3, size: int = 4000) -> pd.DataFrame:
    """One lender's decisions: denial depends on DTI, on being a minority applicant (log-odds 0.7)
    and, for minority women only, on ``interaction`` more."""
    rng = np.random.default_rng(seed)
    minority = rng.random(size) < 0.4
    female = rng.random(size) < 0.5
    dti = rng.normal(35, 8, size)
    logit = -2.0 + 0.05 * (dti - 35) + 0.7 * minority + interaction * (minority & female)
    denied = rng.random(size) < 1 / (1 + np.exp(-logit))
    frame = pd.DataFrame(
        {
            "lei": LEI,
            "excluded": "",
            "decision": np.where(denied, "denied", "approved"),
            "race": np.where(minority, "Black or African American", "White"),
            "ethnicity": "Not Hispanic or Latino",
            "sex": np.where(female, "Female", "Male"),
            "tract_minority_pct": rng.uniform(0, 100, size),
            "income": rng.lognormal(11, 0.4, size),
            "dti": dti,
            "cltv": rng.normal(80, 10, size),
            "loan_amount": rng.lognormal(12, 0.4, size),
        }
    )
    return add_group_columns(frame, 50.0)


def test_interaction_test_separates_the_race_effect_from_the_interaction() -> None:
    plain = interaction_tests(_register(0.0)).set_index("interaction")
    assert plain.at["race_sex", "p_value"] > 0.01  # a plain race effect is no interaction
    # minority women are denied more than White men (the race effect) all the same
    assert plain.at["race_sex", "both_denial_rate"] > 1.5 * plain.at["race_sex", "neither_denial_rate"]
    planted = interaction_tests(_register(1.2)).set_index("interaction")
    assert planted.at["race_sex", "p_adjusted"] < 1e-5
    assert planted.at["race_sex", "ci_low"] < np.exp(1.2) < planted.at["race_sex", "ci_high"]
    assert planted.at["race_tract", "p_value"] > 0.01  # the tract was drawn independently
    assert (planted["reason"] == "").all()


def test_interaction_not_tested_for_a_small_cell() -> None:
    frame = _register(0.0, size=200)
    frame.loc[(frame["minority"] == "Minority") & (frame["sex"] == "Female"), "sex"] = "Male"
    groups = ["race_ethnicity", "minority", "minority_sex", "minority_tract"]
    frame = add_group_columns(frame.drop(columns=groups), 50.0)
    table = interaction_tests(frame).set_index("interaction")
    assert table.at["race_sex", "reason"] == "fewer than 5 applications in a cell"
    assert np.isnan(table.at["race_sex", "p_value"])


@pytest.mark.slow  # audits the sample (a session fixture)
def test_explain_lists_each_comparator_once_with_its_comparisons(sample_audit: tuple[Path, Path]) -> None:
    _, out = sample_audit
    applications = pd.read_parquet(out / "applications.parquet")
    disparate = applications[applications["finding"] == "disparate treatment"]
    nested = next(
        row for row in disparate.itertuples()
        if any(len({c["comparison"] for c in row.comparators if c["application_id"] == a["application_id"]}) > 1
               for a in row.comparators)
    )
    text = explain_finding(out, str(nested.application_id))
    cited = [line for line in text.splitlines() if "MatchedPair(" in line and "is true" in line]
    assert len(cited) == len(set(cited)) > 0  # each comparator once
    assert "counted once" in text
    assert "in comparison minority:" in text
    # the violation score is the weights of distinct pairs and of the cluster, never per comparison
    assert nested.violation_score == pytest.approx(2.0 * len(cited) + 1.5 * ("Outlier(" in text))


def test_explain_states_the_interaction_of_an_intersectional_violation(tmp_path: Path) -> None:
    row = {
        "lei": LEI, "interaction": "race_sex", "applications": 800, "neither_applications": 300,
        "minority_only_applications": 200, "second_only_applications": 200, "both_applications": 100,
        "neither_denial_rate": 0.1, "minority_only_denial_rate": 0.2, "second_only_denial_rate": 0.1,
        "both_denial_rate": 0.5, "odds_ratio": 3.2, "ci_low": 2.0, "ci_high": 5.1, "p_value": 1e-7,
        "reason": "", "p_adjusted": 2e-7,
    }
    formula = {
        "rule": "1.25 InteractionLevel(l, v) => IntersectionalDisparity(l)", "location": "60-intersectional.mln:30",
        "weight": "1.25", "substitution": {"l": LEI, "v": "P00001"}, "satisfied": True, "effect": 1.25,
        "atoms": [
            {"atom": f"InteractionLevel({LEI},P00001)", "value": True, "source": "derived by 60-intersectional.mln:28"}
        ],
    }
    proof = {"atom": f"IntersectionalDisparity({LEI})", "value": True, "supporting": [formula], "opposing": []}
    record = {
        "finding": "lender", "lei": LEI, "risk_tier": "TIER_3_ELEVATED_RISK", "risk_score": 62.25,
        "confidence": "LOW_CONFIDENCE", "margin": 0.5, "violations": ["intersectional disparity"],
        "proof": {"atom": f"Flagged({LEI})", "value": True, "supporting": [], "opposing": []},
        "violation_proofs": {"intersectional disparity": proof},
        "statistics": {"interactions": [row]},
    }
    write_records([record], tmp_path)
    text = explain_finding(tmp_path, LEI)
    assert "race_sex: the odds of denying minority women are 3.2 times what the race effect and" in text
    assert "adjusted over the lender's interactions (Holm)" in text
    assert "minority women 50.0% of 100" in text


def test_interaction_tests_do_not_depend_on_the_row_order() -> None:
    frame = _register(0.6, size=1500)
    frame.insert(0, "application_id", [f"A{number}" for number in range(len(frame))])
    shuffled = frame.sample(frac=1.0, random_state=7).reset_index(drop=True)
    pd.testing.assert_frame_equal(interaction_tests(frame), interaction_tests(shuffled))


def test_interaction_tests_reuse_a_prepared_frame_and_refuse_another() -> None:
    """With ``statistics.Prepared`` (the rows in id order, covariates and lenders of the denial
    fits): the table it gives alone, to the bit, for two lenders; another frame is refused."""
    frame = pd.concat([_register(0.6, size=1500), _register(0.0, seed=4, size=900).assign(lei="LENDER2")])
    frame.insert(0, "application_id", [f"A{number}" for number in np.random.default_rng(2).permutation(len(frame))])
    frame = frame.reset_index(drop=True)
    prepared = Prepared(frame)
    shared = interaction_tests(frame, prepared=prepared)
    alone = interaction_tests(frame)
    pd.testing.assert_frame_equal(shared, alone)
    assert shared["odds_ratio"].to_numpy().tobytes() == alone["odds_ratio"].to_numpy().tobytes()
    assert shared["lei"].tolist() == sorted([LEI, "LENDER2"] * 2)
    with pytest.raises(ValueError, match="another frame"):
        interaction_tests(frame.copy(), prepared=prepared)
