"""Per-lender statistics: closed forms and scipy on hand-built tables, planted effects on synthetic data.

The oracles share no code with the module: the closed-form 2x2 odds ratio, a logistic
likelihood maximised by ``scipy.optimize``, ``np.linalg.lstsq`` for least squares,
``scipy.stats.binomtest``, ``fisher_exact`` and ``ttest_ind``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, special, stats
from support import two_group_register

from reasoner.errors import UsageError
from reasoner.lending import clean_hmda, synthesize
from reasoner.lending.evidence.similar import SimilaritySpec, similar_pairs
from reasoner.lending.evidence.statistics import (
    Covariates,
    PairTexts,
    Prepared,
    _equals,
    _rank,
    _running_max,
    cluster_outliers,
    covariate_matrix,
    denial_probabilities,
    holm_adjusted,
    lender_denial_odds,
    matched_pair_test,
    pair_rows,
    pricing_disparity,
    stable_order,
)

BLACK = "Black or African American"
DEFAULTS: dict[str, object] = {
    "lei": "L1",
    "msa": "M1",
    "race": "White",
    "decision": "approved",
    "action_taken": 1,
    "excluded": "",
    "income": 100_000.0,
    "dti": 30.0,
    "cltv": 80.0,
    "loan_amount": 200_000.0,
    "rate_spread": 0.5,
    "tract_minority_pct": 20.0,
}


def frame_of(columns: Mapping[str, object]) -> pd.DataFrame:
    """A cleaned-looking frame: ``columns`` (sequences of one length, or scalars) over the defaults;
    columns not in the defaults are numbers."""
    count = next(len(value) for value in columns.values() if isinstance(value, list | np.ndarray))
    data = {**DEFAULTS, **columns}
    frame = pd.DataFrame(
        {name: np.broadcast_to(np.asarray(value, dtype=object), count) for name, value in data.items()}
    )
    frame["application_id"] = [f"{number:06d}" for number in range(count)]
    for name in data:
        if name == "action_taken":
            frame[name] = frame[name].astype(np.int64)
        elif isinstance(DEFAULTS.get(name, 0.0), float):
            frame[name] = frame[name].astype(np.float64)
        else:
            frame[name] = frame[name].astype("str")
    return frame


def table_frame(lei: str, counts: dict[tuple[str, str], int]) -> dict[str, list[object]]:
    """Rows of one lender from counts per (race, decision)."""
    rows: dict[str, list[object]] = {"lei": [], "race": [], "decision": []}
    for (race, decision), number in counts.items():
        rows["lei"] += [lei] * number
        rows["race"] += [race] * number
        rows["decision"] += [decision] * number
    return rows


def concat(*parts: dict[str, list[object]]) -> dict[str, list[object]]:
    return {name: [value for part in parts for value in part[name]] for name in parts[0]}


# --- (a) adjusted denial odds ---------------------------------------------------------------


def test_odds_ratio_without_covariates_is_the_closed_form() -> None:
    counts = {("White", "denied"): 10, ("White", "approved"): 30, (BLACK, "denied"): 10, (BLACK, "approved"): 10}
    frame = frame_of(table_frame("L1", counts))
    result = lender_denial_odds(frame, "race", "White", BLACK, covariates=())
    row = result.iloc[0]
    odds_ratio = (10 / 10) / (10 / 30)
    error = np.sqrt(1 / 10 + 1 / 10 + 1 / 10 + 1 / 30)
    assert row["reason"] == ""
    assert (row["reference_applications"], row["compared_applications"], row["model_applications"]) == (40, 20, 60)
    assert (row["reference_denial_rate"], row["compared_denial_rate"]) == (0.25, 0.5)
    assert row["odds_ratio"] == pytest.approx(odds_ratio, rel=1e-9)
    assert row["standard_error"] == pytest.approx(error, rel=1e-7)
    assert row["ci_low"] == pytest.approx(np.exp(np.log(odds_ratio) - 1.959963984540054 * error), rel=1e-7)
    assert row["ci_high"] == pytest.approx(np.exp(np.log(odds_ratio) + 1.959963984540054 * error), rel=1e-7)
    assert row["p_value"] == pytest.approx(2 * stats.norm.sf(np.log(odds_ratio) / error), rel=1e-7)


def logistic_oracle(design: np.ndarray, outcome: np.ndarray) -> tuple[float, float]:
    """The group coefficient (column 1) and its standard error, by scipy and a matrix inverse."""

    def loss(beta: np.ndarray) -> tuple[float, np.ndarray]:
        eta = design @ beta
        return float(np.sum(np.logaddexp(0, eta) - outcome * eta)), design.T @ (special.expit(eta) - outcome)

    found = optimize.minimize(loss, np.zeros(design.shape[1]), jac=True, method="BFGS", options={"gtol": 1e-10})
    fitted = special.expit(design @ found.x)
    information = design.T @ (design * (fitted * (1 - fitted))[:, None])
    return float(found.x[1]), float(np.sqrt(np.linalg.inv(information)[1, 1]))


def test_adjusted_odds_ratio_matches_a_maximum_likelihood_oracle() -> None:
    rng = np.random.default_rng(3)
    size = 600
    black = rng.random(size) < 0.35
    income = np.exp(rng.normal(np.log(90_000) - 0.3 * black, 0.5))
    dti = rng.normal(35 + 4 * black, 8)
    cltv = rng.normal(80, 10, size)
    loan_amount = income * np.exp(rng.normal(1.0, 0.3, size))
    logit = -2 + 0.8 * black + 0.08 * (dti - 35) + 0.04 * (cltv - 80) - 0.7 * np.log(income / 90_000)
    denied = rng.random(size) < special.expit(logit)
    frame = frame_of(
        {
            "lei": np.where(rng.random(size) < 0.5, "L1", "L2"),
            "race": np.where(black, BLACK, "White"),
            "decision": np.where(denied, "denied", "approved"),
            "income": income,
            "dti": dti,
            "cltv": cltv,
            "loan_amount": loan_amount,
        }
    )
    result = lender_denial_odds(frame, "race", "White", [BLACK])
    assert result["lei"].tolist() == ["L1", "L2"] and (result["reason"] == "").all()
    for lei, row in zip(result["lei"], result.itertuples(), strict=True):
        part = frame[frame["lei"] == lei]
        design = np.column_stack(
            [
                np.ones(len(part)),
                (part["race"] == BLACK).to_numpy(float),
                np.log(part["income"]),
                part["dti"],
                part["cltv"],
                np.log(part["loan_amount"]),
            ]
        )
        estimate, error = logistic_oracle(design, (part["decision"] == "denied").to_numpy(float))
        assert row.log_odds_ratio == pytest.approx(estimate, abs=1e-5)
        assert row.standard_error == pytest.approx(error, rel=1e-5)
        assert row.p_value == pytest.approx(2 * stats.norm.sf(abs(estimate / error)), rel=1e-4, abs=1e-12)


def test_degenerate_lenders_get_a_reason_not_an_exception() -> None:
    rng = np.random.default_rng(0)
    separated_dti = rng.uniform(20, 60, 80)
    parts: list[dict[str, list[object]]] = [
        table_frame("A", {("White", "approved"): 30, ("White", "denied"): 10, (BLACK, "approved"): 20}),
        table_frame("B", {("White", "approved"): 30, ("White", "denied"): 10, (BLACK, "denied"): 3}),
        table_frame("C", {("White", "approved"): 30, ("White", "denied"): 10}),
        table_frame("D", {("White", "approved"): 10, (BLACK, "denied"): 6, (BLACK, "approved"): 6}),
        {
            "lei": ["E"] * 80,
            "race": [BLACK if index % 2 else "White" for index in range(80)],
            "decision": ["denied" if value > 40 else "approved" for value in separated_dti],
        },
        table_frame("F", {(BLACK, "approved"): 5, (BLACK, "denied"): 5, ("Asian", "denied"): 9}),
    ]
    rows = concat(*parts)
    dti = np.full(len(rows["lei"]), 30.0)
    dti[np.array(rows["lei"]) == "E"] = separated_dti
    frame = frame_of({**rows, "dti": dti})
    result = lender_denial_odds(frame, "race", "White", (BLACK, "Asian"))
    reasons = dict(zip(zip(result["lei"], result["group"], strict=True), result["reason"], strict=True))
    assert reasons == {
        ("A", BLACK): "separation: no compared applicant denied",
        ("A", "Asian"): "no compared applications",
        ("B", BLACK): "fewer than 5 compared applications",
        ("B", "Asian"): "no compared applications",
        ("C", BLACK): "no compared applications",
        ("C", "Asian"): "no compared applications",
        ("D", BLACK): "separation: no reference applicant denied",
        ("D", "Asian"): "no compared applications",
        ("E", BLACK): "separation: coefficients diverge",
        ("E", "Asian"): "no compared applications",
        ("F", BLACK): "no reference applications",
        ("F", "Asian"): "no reference applications",
    }
    assert result["odds_ratio"].isna().all() and result["p_value"].isna().all()
    assert result.loc[result["lei"] == "A", "compared_denial_rate"].iloc[0] == 0.0


def test_group_collinear_with_a_covariate_is_reported() -> None:
    counts = {("White", "denied"): 10, ("White", "approved"): 30, (BLACK, "denied"): 10, (BLACK, "approved"): 10}
    rows = table_frame("L1", counts)
    frame = frame_of({**rows, "flag": [float(race == BLACK) * 3 + 1 for race in rows["race"]]})
    result = lender_denial_odds(frame, "race", "White", BLACK, covariates=("dti", "flag"))
    assert result["reason"].tolist() == ["group collinear with the covariates"]
    pricing = pricing_disparity(frame, "race", "White", BLACK, covariates=("flag",))
    assert pricing["reason"].tolist() == ["group collinear with the covariates"]


def test_bad_arguments_are_usage_errors() -> None:
    frame = frame_of(table_frame("L1", {("White", "approved"): 3}))
    with pytest.raises(UsageError, match="reference group 'White' is also a compared group"):
        lender_denial_odds(frame, "race", "White", ("White",))
    with pytest.raises(UsageError, match="no column 'incme' \\(did you mean 'income'\\?\\)"):
        lender_denial_odds(frame, "race", "White", BLACK, covariates=("incme",))


# --- (b) matched pairs ----------------------------------------------------------------------


def pair_case() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Lender L1: 4 reference-favoured, 1 compared-favoured, 2 both approved, 1 both denied
    (rank 1), and a rank-2 reference-favoured pair; lender L2: one reference-favoured pair, a
    pair whose compared applicant has no decision, and a pair across lenders (dropped)."""
    outcomes = [("approved", "denied")] * 4 + [("denied", "approved")] + [("approved", "approved")] * 2
    outcomes += [("denied", "denied")]
    decisions = [decision for pair in outcomes for decision in pair]
    decisions += ["approved", "denied", "approved", "denied", "other"]  # rows 16 … 20
    frame = frame_of({"decision": decisions, "lei": ["L1"] * 18 + ["L2"] * 3})
    ids = frame["application_id"].tolist()
    a = ids[0:16:2] + [ids[16], ids[18], ids[18], ids[16]]
    b = ids[1:16:2] + [ids[1], ids[19], ids[20], ids[19]]
    rank = [1] * 8 + [2, 1, 1, 1]
    return pd.DataFrame({"a": a, "b": b, "distance": 0.0, "rank": rank}), frame


def test_matched_pair_counts_and_exact_mcnemar_p_value() -> None:
    pairs, frame = pair_case()
    result = matched_pair_test(pairs, frame)
    first = result.iloc[0]
    assert result["lei"].tolist() == ["L1", "L2"]
    assert (first["pairs"], first["both_approved"], first["both_denied"]) == (8, 2, 1)
    assert (first["reference_favoured"], first["compared_favoured"], first["discordant"]) == (4, 1, 5)
    assert first["discordant_ratio"] == 4.0
    assert first["p_value"] == pytest.approx(stats.binomtest(4, 5, 0.5).pvalue, rel=1e-12)
    second = result.iloc[1]
    assert (second["pairs"], second["reference_favoured"], second["p_value"]) == (1, 1, 1.0)
    with_rank_two = matched_pair_test(pairs, frame, max_rank=2)
    assert with_rank_two.iloc[0]["reference_favoured"] == 5
    rows = pair_rows(pairs, frame)  # looked up once, as audit_tables does for both pair tests
    pd.testing.assert_frame_equal(matched_pair_test(pairs, frame, rows=rows), result)
    pd.testing.assert_frame_equal(matched_pair_test(pairs, frame, max_rank=2, rows=rows), with_rank_two)
    pd.testing.assert_frame_equal(
        cluster_outliers(frame, pairs, min_neighbours=1, rows=rows), cluster_outliers(frame, pairs, min_neighbours=1)
    )
    texts = PairTexts.of(frame)  # made once for every comparison's tests, as audit_tables does
    pd.testing.assert_frame_equal(matched_pair_test(pairs, texts, rows=rows), result)
    pd.testing.assert_frame_equal(matched_pair_test(pairs, texts, max_rank=2, rows=rows), with_rank_two)
    pd.testing.assert_frame_equal(
        cluster_outliers(texts, pairs, min_neighbours=1, rows=rows), cluster_outliers(frame, pairs, min_neighbours=1)
    )


def test_matched_pairs_lenders_in_text_order() -> None:
    """The lenders of the pairs sorted as pandas sorts texts (code points: upper case, digits and
    accents where they fall), from the lender codes of every row, whichever lenders have pairs."""
    leis = ["Lé", "LZ", "La", "L1", "", "Lz"]
    frame = frame_of({"decision": ["approved", "denied"] * 6, "lei": [lei for lei in leis for _ in range(2)]})
    ids = frame["application_id"].tolist()
    pairs = pd.DataFrame({"a": ids[0::2], "b": ids[1::2], "rank": 1}).iloc[[0, 1, 2, 3, 4]]
    result = matched_pair_test(pairs, frame)
    expected = pd.Series(leis[:5], dtype="str").sort_values(kind="stable").tolist()
    assert result["lei"].tolist() == expected
    assert str(result["lei"].dtype) == "str"
    assert result["reference_favoured"].tolist() == [1] * 5
    rows = pair_rows(pairs, frame)
    pd.testing.assert_frame_equal(matched_pair_test(pairs, PairTexts.of(frame), rows=rows), result)


@pytest.mark.parametrize("favoured, against", [(15, 4), (4, 15), (7, 7), (30, 12), (1, 0)])
def test_mcnemar_p_value_matches_scipy_binomtest(favoured: int, against: int) -> None:
    decisions = ["approved", "denied"] * favoured + ["denied", "approved"] * against + ["approved"] * 6
    frame = frame_of({"decision": decisions})
    ids = frame["application_id"].tolist()
    pairs = pd.DataFrame({"a": ids[0::2], "b": ids[1::2], "rank": 1})
    row = matched_pair_test(pairs, frame).iloc[0]
    assert (row["reference_favoured"], row["compared_favoured"], row["both_approved"]) == (favoured, against, 3)
    assert row["p_value"] == pytest.approx(stats.binomtest(favoured, favoured + against, 0.5).pvalue, rel=1e-10)


def test_denial_probabilities_match_an_unpenalised_fit_per_lender() -> None:
    """Oracle: the logistic likelihood of each lender maximised by scipy.optimize on the raw
    (unstandardised) covariates; rows without a covariate or a decision get NaN."""
    rng = np.random.default_rng(5)
    size = 400
    lei = np.where(np.arange(size) < 250, "L1", "L2")
    dti = rng.normal(35, 8, size)
    income = np.exp(rng.normal(np.log(90_000), 0.4, size))
    logit = -1.5 + 0.08 * (dti - 35) - 0.9 * np.log(income / 90_000) + np.where(lei == "L2", 0.7, 0.0)
    denied = rng.random(size) < special.expit(logit)
    decision = np.where(denied, "denied", "approved").astype(object)
    decision[7] = "withdrawn"
    dti[11] = np.nan
    frame = frame_of({"lei": lei, "decision": decision, "dti": dti, "income": income})
    probability = denial_probabilities(frame, ("dti", "income"))
    assert np.isnan(probability[11]) and np.isfinite(probability[7])  # a withdrawal is scored, not fitted
    for name in ("L1", "L2"):
        fit = (lei == name) & np.isfinite(dti) & (decision != "withdrawn")
        design = np.column_stack([np.ones(fit.sum()), dti[fit], np.log(income[fit])])
        outcome = denied[fit].astype(float)

        def loss(beta: np.ndarray, design: np.ndarray = design, outcome: np.ndarray = outcome) -> float:
            eta = design @ beta
            return float(np.sum(np.logaddexp(0.0, eta) - outcome * eta))

        beta = optimize.minimize(loss, np.zeros(3), method="BFGS", options={"gtol": 1e-10}).x
        rows = (lei == name) & np.isfinite(dti)
        expected = special.expit(np.column_stack([np.ones(rows.sum()), dti[rows], np.log(income[rows])]) @ beta)
        assert probability[rows] == pytest.approx(expected, abs=1e-5)


def test_adjusted_pair_test_removes_the_bias_of_inexact_matching() -> None:
    """No disparity, but every reference applicant is matched with a compared applicant whose DTI
    is 6 points higher: McNemar's test finds the matching bias, the adjusted test does not; a
    real disparity (1.0 log-odds against the compared group) is found by both."""
    rng = np.random.default_rng(11)
    pairs_count = 3000

    def case(effect: float) -> pd.Series:
        reference_dti = rng.normal(34, 8, pairs_count)
        compared_dti = reference_dti + 6.0
        dti = np.column_stack([reference_dti, compared_dti]).ravel()
        compared = np.tile([False, True], pairs_count)
        denied = rng.random(dti.size) < special.expit(-1.8 + 0.09 * (dti - 34) + effect * compared)
        frame = frame_of({"dti": dti, "decision": np.where(denied, "denied", "approved")})
        ids = frame["application_id"].tolist()
        pairs = pd.DataFrame({"a": ids[0::2], "b": ids[1::2], "rank": 1})
        probability = denial_probabilities(frame, ("dti",))
        return matched_pair_test(pairs, frame, denial_probability=probability).iloc[0]

    fair = case(0.0)
    assert fair["mcnemar_p_value"] < 1e-4 and fair["discordant_ratio"] > 1.4
    assert fair["p_value"] > 0.01 and fair["adjusted_ratio"] == pytest.approx(1.0, abs=0.15)
    assert fair["expected_reference_favoured"] == pytest.approx(fair["reference_favoured"], rel=0.1)
    biased = case(1.0)
    assert biased["p_value"] < 1e-6 and biased["adjusted_ratio"] > 2.0


def test_adjusted_pair_test_with_even_odds_is_mcnemar_and_matches_scipy_poisson_binomial() -> None:
    decisions = ["approved", "denied"] * 9 + ["denied", "approved"] * 3
    frame = frame_of({"decision": decisions})
    ids = frame["application_id"].tolist()
    pairs = pd.DataFrame({"a": ids[0::2], "b": ids[1::2], "rank": 1})
    even = matched_pair_test(pairs, frame, denial_probability=np.full(len(frame), 0.3)).iloc[0]
    assert even["p_value"] == pytest.approx(stats.binomtest(9, 12, 0.5).pvalue, rel=1e-10)
    assert even["p_value"] == pytest.approx(even["mcnemar_p_value"], rel=1e-10)
    probability = np.linspace(0.05, 0.6, len(frame))
    row = matched_pair_test(pairs, frame, denial_probability=probability).iloc[0]
    d_a, d_b = probability[0::2], probability[1::2]
    q = d_b * (1 - d_a) / (d_b * (1 - d_a) + d_a * (1 - d_b))
    distribution = stats.poisson_binom(q)
    assert row["expected_reference_favoured"] == pytest.approx(q.sum(), rel=1e-12)
    assert row["p_value"] == pytest.approx(min(1.0, 2 * min(distribution.cdf(9), distribution.sf(8))), rel=1e-10)


def test_holm_adjustment_by_hand_and_against_its_definition() -> None:
    p = np.array([0.01, 0.04, 0.03, np.nan, 0.005, 0.5, 0.2])
    family = np.array(["a", "a", "a", "a", "b", "b", "c"])
    # a: m = 3, ascending .01 .03 .04 -> 3(.01) = .03, 2(.03) = .06, max(.06, 1(.04)) = .06
    expected = np.array([0.03, 0.06, 0.06, np.nan, 0.01, 0.5, 0.2])
    np.testing.assert_allclose(holm_adjusted(p, family), expected, rtol=1e-12)
    rng = np.random.default_rng(3)
    p = np.where(rng.random(200) < 0.1, np.nan, rng.random(200) ** 3)
    family = rng.choice(np.array(["x", "y", "z", "w"]), 200)
    adjusted = holm_adjusted(p, family)
    for name in np.unique(family):
        rows = np.flatnonzero((family == name) & np.isfinite(p))
        ordered = rows[np.argsort(p[rows], kind="stable")]
        m = ordered.size
        for i, row in enumerate(ordered):
            definition = max(min(1.0, (m - j) * p[ordered[j]]) for j in range(i + 1))
            assert adjusted[row] == pytest.approx(definition, rel=1e-12)
    assert np.isnan(adjusted[~np.isfinite(p)]).all()


def test_no_discordant_pairs_and_unknown_ids() -> None:
    frame = frame_of({"decision": ["approved"] * 4})
    pairs = pd.DataFrame({"a": ["000000", "000002"], "b": ["000001", "000003"], "rank": 1})
    row = matched_pair_test(pairs, frame).iloc[0]
    assert row["reason"] == "no discordant pairs" and np.isnan(row["p_value"])
    with pytest.raises(UsageError, match="application id 'nope' is not in the frame"):
        matched_pair_test(pd.DataFrame({"a": ["nope"], "b": ["000001"], "rank": [1]}), frame)


# --- (d) pricing ----------------------------------------------------------------------------


def test_pricing_gap_without_covariates_is_a_welch_like_robust_test() -> None:
    rng = np.random.default_rng(4)
    spread = np.r_[rng.normal(0.4, 0.2, 30), rng.normal(0.6, 0.2, 12)]
    race = ["White"] * 30 + [BLACK] * 12
    frame = frame_of({"race": race + [BLACK, BLACK], "rate_spread": np.r_[spread, np.nan, 5.0]})
    frame.loc[43, "action_taken"] = 2  # approved, not originated
    row = pricing_disparity(frame, "race", "White", BLACK, covariates=()).iloc[0]
    assert (row["reference_loans"], row["compared_loans"]) == (30, 12)
    assert row["raw_gap"] == pytest.approx(spread[30:].mean() - spread[:30].mean())
    assert row["adjusted_gap"] == pytest.approx(row["raw_gap"], rel=1e-10)
    # HC3 without covariates: each group's variance around its own mean, over n_g - 1 (leverage 1 / n_g).
    n = 42
    compared, reference = spread[30:], spread[:30]
    robust = np.sqrt(compared.var(ddof=1) / 11 + reference.var(ddof=1) / 29)
    assert row["standard_error"] == pytest.approx(robust, rel=1e-8)
    assert row["p_value"] == pytest.approx(2 * stats.t.sf(abs(row["raw_gap"]) / robust, n - 2), rel=1e-8)
    critical = stats.t.ppf(0.975, n - 2)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(
        (row["raw_gap"] - critical * robust, row["raw_gap"] + critical * robust)
    )


def test_pricing_gap_with_covariates_matches_least_squares() -> None:
    rng = np.random.default_rng(5)
    size = 300
    black = rng.random(size) < 0.4
    cltv, dti = rng.normal(80, 10, size), rng.normal(35, 8, size)
    loan_amount = np.exp(rng.normal(12, 0.5, size))
    spread = 0.3 + 0.25 * black + 0.01 * (cltv - 80) + 0.01 * (dti - 35) + rng.normal(0, 0.2, size)
    frame = frame_of(
        {
            "race": np.where(black, BLACK, "White"),
            "cltv": cltv,
            "dti": dti,
            "loan_amount": loan_amount,
            "rate_spread": spread,
        }
    )
    row = pricing_disparity(frame, "race", "White", BLACK).iloc[0]
    design = np.column_stack([np.ones(size), black.astype(float), cltv, dti, np.log(loan_amount)])
    beta, _, _, _ = np.linalg.lstsq(design, spread, rcond=None)
    bread = np.linalg.inv(design.T @ design)
    residual = spread - design @ beta
    leverage = np.einsum("ij,jk,ik->i", design, bread, design)
    sandwich = bread @ (design.T * (residual / (1 - leverage)) ** 2) @ design @ bread  # HC3
    variance = sandwich[1, 1]
    assert row["adjusted_gap"] == pytest.approx(beta[1], rel=1e-9)
    assert row["standard_error"] == pytest.approx(np.sqrt(variance), rel=1e-8)
    assert row["p_value"] == pytest.approx(2 * stats.t.sf(abs(beta[1]) / np.sqrt(variance), size - 5), rel=1e-6)


def test_pricing_small_groups_get_a_reason() -> None:
    frame = frame_of({"race": ["White"] * 10 + [BLACK] * 3, "lei": ["L1"] * 13})
    row = pricing_disparity(frame, "race", "White", BLACK).iloc[0]
    assert row["reason"] == "fewer than 5 compared loans" and np.isnan(row["adjusted_gap"])
    assert row["raw_gap"] == 0.0


# --- (e) outliers among neighbours ----------------------------------------------------------


def test_cluster_outliers_by_neighbour_share() -> None:
    # b0 denied, 4 of 5 neighbours approved: outlier; b1 denied, 4 of 4 approved: too few;
    # b2 approved, 5 of 5 denied: outlier; b3 denied, 3 of 5 approved: not an outlier.
    neighbour_decisions = [
        ["approved"] * 4 + ["denied"],
        ["approved"] * 4,
        ["denied"] * 5,
        ["approved"] * 3 + ["denied"] * 2,
    ]
    own = ["denied", "denied", "approved", "denied"]
    decisions = own + [decision for group in neighbour_decisions for decision in group]
    frame = frame_of({"decision": decisions, "lei": ["L2", "L1", "L1", "L1"] + ["L1"] * 19})
    ids = frame["application_id"].tolist()
    sizes = [len(group) for group in neighbour_decisions]
    pairs = pd.DataFrame(
        {
            "a": ids[4:],
            "b": [ids[index] for index, size in enumerate(sizes) for _ in range(size)],
            "rank": [rank for size in sizes for rank in range(1, size + 1)],
        }
    )
    result = cluster_outliers(frame, pairs)
    assert result.values.tolist() == [[ids[2], "L1", "approved", 5, 0.0], [ids[0], "L2", "denied", 5, 0.8]]


def test_cluster_outliers_count_every_applicants_neighbours_as_a_grouping_does() -> None:
    """The compared applicants found by marking their rows (branch tables11, in place of ``np.unique``):
    neighbours and approval shares as pandas groups the decided pairs by compared applicant, over
    random pairs (applicants without pairs, undecided neighbours, ids not in row order)."""
    rng = np.random.default_rng(11)
    count = 400
    decisions = rng.choice(["approved", "denied", "withdrawn"], count, p=[0.6, 0.3, 0.1])
    frame = frame_of({"decision": list(decisions), "lei": list(rng.choice(["L1", "L2", "L3"], count))})
    frame = frame.iloc[rng.permutation(count)].reset_index(drop=True)
    ids = frame["application_id"].to_numpy()
    compared = rng.choice(count, 60, replace=False)
    b = np.repeat(compared, rng.integers(1, 12, compared.size))
    pairs = pd.DataFrame({"a": ids[rng.integers(0, count, b.size)], "b": ids[b], "rank": 1})
    result = cluster_outliers(frame, pairs, min_neighbours=1, share=0.0).set_index("application_id")
    decision = frame.set_index("application_id")["decision"]
    neighbour = decision[pairs["a"]].to_numpy()
    known = np.isin(neighbour, ["approved", "denied"])
    grouped = pairs[known].assign(approved=neighbour[known] == "approved").groupby("b")["approved"]
    expected = pd.DataFrame({"neighbours": grouped.size(), "share": grouped.mean()})
    expected = expected[np.isin(decision[expected.index].to_numpy(), ["approved", "denied"])]
    assert len(result) == len(expected) > 30
    assert result["neighbours"].to_dict() == expected["neighbours"].to_dict()
    np.testing.assert_allclose(
        result.loc[expected.index, "neighbour_approval_share"].to_numpy(), expected["share"].to_numpy(), rtol=1e-15
    )


@pytest.mark.parametrize("high", [1, 7, 65_535, 65_536, 2**40])
def test_stable_order_is_numpys_stable_argsort(high: int) -> None:
    """``stable_order`` sorts keys that fit in 16 bits as such (numpy's radix sort): the order of
    ``np.argsort(kind="stable")`` of the 64-bit keys, with ties, at the 16-bit limit and beyond it."""
    rng = np.random.default_rng(high % 1000)
    for keys in (rng.integers(0, high + 1, 5_000), np.array([high, 0, high, 0]), np.zeros(0, np.int64)):
        assert stable_order(keys).tolist() == np.argsort(keys, kind="stable").tolist()
    negative = np.array([3, -1, 2, -1, 3])
    assert stable_order(negative).tolist() == np.argsort(negative, kind="stable").tolist()


# --- synthetic register: planted effects ----------------------------------------------------


@pytest.fixture(scope="module")
def synthetic() -> tuple[pd.DataFrame, pd.DataFrame]:
    raw, truth = synthesize(20_000, 40, 1, simple=True)  # planted effects without confounds
    frame = clean_hmda(raw, "synth").frame.copy()
    hispanic = frame["ethnicity"].eq("Hispanic or Latino").fillna(False)
    minority = frame["race"].isin([BLACK, "Asian", "American Indian or Alaska Native"]) | hispanic
    white = frame["race"].eq("White").fillna(False) & ~minority
    group = pd.Series(None, index=frame.index, dtype="str")
    group[white] = "White"
    group[minority] = "minority"
    frame["group"] = group
    return frame, truth.drop(columns="applications").set_index("lei")


def with_truth(result: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    return result.join(truth, on="lei")


def test_disparate_treatment_lenders_have_larger_adjusted_odds_ratios(
    synthetic: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    frame, truth = synthetic
    result = with_truth(lender_denial_odds(frame, "group", "White", "minority"), truth)
    assert result["lei"].is_monotonic_increasing
    planted = result.loc[result["kind"] == "disparate_treatment", "log_odds_ratio"]
    fair = result.loc[(result["kind"] == "fair") & (result["reason"] == ""), "log_odds_ratio"]
    assert planted.notna().all() and len(fair) >= 20
    assert planted.mean() > fair.mean() + 0.5
    assert stats.mannwhitneyu(planted, fair, alternative="greater").pvalue < 0.05
    covered = result.loc[result["kind"] == "fair"].eval("ci_low < 1 < ci_high").mean()
    assert covered >= 0.85


def test_fair_lenders_with_different_pools_have_raw_gaps_but_adjusted_ratios_near_one(
    synthetic: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    frame, truth = synthetic
    result = with_truth(lender_denial_odds(frame, "group", "White", "minority"), truth)
    wide = result[(result["kind"] == "fair") & (result["pool_gap"] > 0.4) & (result["reason"] == "")]
    assert len(wide) >= 5
    weight = wide["compared_applications"]
    raw_gap = ((wide["compared_denial_rate"] - wide["reference_denial_rate"]) * weight).sum() / weight.sum()
    assert raw_gap > 0.05
    precision = 1 / wide["standard_error"] ** 2
    pooled = (wide["log_odds_ratio"] * precision).sum() / precision.sum()
    pooled_error = 1 / np.sqrt(precision.sum())
    assert abs(pooled) < 0.4 and abs(pooled) < 2.5 * pooled_error


def test_matched_pairs_favour_the_reference_group_at_disparate_treatment_lenders(
    synthetic: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    frame, truth = synthetic
    spec = SimilaritySpec(group_column="group", compared=("minority",), log_columns=("income", "loan_amount"))
    pairs = similar_pairs(frame, spec)
    result = with_truth(matched_pair_test(pairs, frame), truth)
    totals = result.groupby("kind")[["reference_favoured", "compared_favoured"]].sum()
    ratio = totals["reference_favoured"] / totals["compared_favoured"]
    assert ratio["disparate_treatment"] > 2.0 and ratio["disparate_treatment"] > ratio["fair"] + 0.5
    planted = totals.loc["disparate_treatment"]
    discordant = int(planted.sum())
    assert stats.binomtest(int(planted["reference_favoured"]), discordant, 0.5).pvalue < 1e-6

    outliers = with_truth(cluster_outliers(frame, pairs), truth)
    denied = outliers[outliers["decision"] == "denied"].groupby("kind").size()
    compared = frame[frame["group"] == "minority"].join(truth, on="lei").groupby("kind").size()
    assert denied["disparate_treatment"] / compared["disparate_treatment"] > denied["fair"] / compared["fair"]


def test_pricing_lenders_show_the_rate_spread_gap(synthetic: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    frame, truth = synthetic
    result = with_truth(pricing_disparity(frame, "group", "White", "minority"), truth)
    planted = result[result["kind"] == "pricing"]
    fair = result[(result["kind"] == "fair") & (result["reason"] == "")]
    assert len(planted) >= 2
    assert (planted["p_value"] < 1e-4).all()
    assert np.allclose(planted["adjusted_gap"], planted["effect_size"], atol=0.15)
    assert (fair["p_value"] < 1e-3).sum() <= 1 and fair["adjusted_gap"].abs().median() < 0.06


# --- product controls: categories and bands -------------------------------------------------


def test_a_product_premium_is_not_a_pricing_disparity_once_product_is_controlled() -> None:
    rng = np.random.default_rng(11)
    size = 600
    black = rng.random(size) < 0.5
    fha = rng.random(size) < np.where(black, 0.6, 0.2)  # more FHA loans among Black borrowers
    spread = 0.3 + 0.5 * fha + rng.normal(0, 0.15, size)  # the FHA premium, the same for everyone
    frame = frame_of({"race": np.where(black, BLACK, "White"), "rate_spread": spread})
    frame["loan_type"] = np.where(fha, 2, 1).astype(np.int64)
    naive = pricing_disparity(frame, "race", "White", BLACK, covariates=()).iloc[0]
    assert naive["p_value"] < 1e-10 and naive["adjusted_gap"] > 0.15
    controlled = pricing_disparity(
        frame, "race", "White", BLACK, covariates=Covariates(categorical=("loan_type",))
    ).iloc[0]
    assert abs(controlled["adjusted_gap"]) < 0.03 and controlled["p_value"] > 0.05


def test_bands_let_an_underwriting_threshold_shift_the_odds_without_losing_the_lender() -> None:
    # Every applicant above DTI 50% is denied (a hard threshold), and Black applicants have
    # higher DTIs; below it, decisions do not depend on race. A straight line in DTI calls the
    # threshold a racial disparity; bands see the threshold and the lender stays tested.
    rng = np.random.default_rng(12)
    size = 800
    black = rng.random(size) < 0.4
    dti = np.clip(rng.normal(np.where(black, 44, 36), 8), 5, 65)
    denied = (dti > 50) | (rng.random(size) < 0.1)
    frame = frame_of(
        {"race": np.where(black, BLACK, "White"), "dti": dti, "decision": np.where(denied, "denied", "approved")}
    )
    straight = lender_denial_odds(frame, "race", "White", BLACK, covariates=("dti",)).iloc[0]
    banded = lender_denial_odds(
        frame, "race", "White", BLACK, covariates=Covariates(bands=(("dti", (43.0, 50.0)),))
    ).iloc[0]
    assert banded["reason"] == ""
    assert straight["odds_ratio"] > banded["odds_ratio"]
    assert banded["ci_low"] < 1 < banded["ci_high"]


def test_a_lender_gets_the_same_fit_whatever_lenders_share_its_frame() -> None:
    rng = np.random.default_rng(13)

    def lender(lei: str, types: list[int], size: int) -> pd.DataFrame:
        black = rng.random(size) < 0.4
        part = frame_of(
            {
                "lei": [lei] * size,
                "race": np.where(black, BLACK, "White"),
                "dti": rng.normal(35, 8, size),
                "decision": np.where(rng.random(size) < 0.2 + 0.1 * black, "denied", "approved"),
            }
        )
        part["loan_type"] = rng.choice(types, size).astype(np.int64)
        part["application_id"] = [f"{lei}{number:05d}" for number in range(size)]
        return part

    first = lender("A", [1, 2], 300)
    other = lender("B", [1, 3, 4], 300)
    spec = Covariates(numeric=("dti",), categorical=("loan_type",), bands=(("dti", (43.0,)),))
    alone = lender_denial_odds(first, "race", "White", BLACK, covariates=spec).iloc[0]
    together = lender_denial_odds(pd.concat([first, other], ignore_index=True), "race", "White", BLACK, covariates=spec)
    assert together.iloc[0]["lei"] == "A"
    assert together.iloc[0]["log_odds_ratio"] == pytest.approx(alone["log_odds_ratio"], rel=1e-9)
    assert together.iloc[0]["standard_error"] == pytest.approx(alone["standard_error"], rel=1e-9)


def test_a_categorical_covariate_with_too_many_values_asks_for_bands() -> None:
    frame = frame_of({"race": ["White", BLACK] * 50})
    frame["loan_term"] = np.arange(100).astype(np.int64)
    with pytest.raises(UsageError, match="'loan_term' has more than 64 values"):
        lender_denial_odds(frame, "race", "White", BLACK, covariates=Covariates(categorical=("loan_term",)))


def test_a_covariate_constant_at_a_lender_is_reported_as_not_controlled() -> None:
    rng = np.random.default_rng(14)
    size = 200
    frame = frame_of(
        {
            "lei": ["A"] * size + ["B"] * size,
            "race": np.where(rng.random(2 * size) < 0.4, BLACK, "White"),
            "dti": rng.normal(35, 8, 2 * size),
            "decision": np.where(rng.random(2 * size) < 0.2, "denied", "approved"),
        }
    )
    frame["loan_type"] = np.r_[np.ones(size), rng.choice([1, 2], size)].astype(np.int64)  # A: conventional only
    spec = Covariates(numeric=("dti",), categorical=("loan_type",))
    odds = lender_denial_odds(frame, "race", "White", BLACK, covariates=spec)
    assert odds["not_controlled"].tolist() == ["loan_type", ""]
    pricing = pricing_disparity(frame.assign(decision="approved"), "race", "White", BLACK, covariates=spec)
    assert pricing["not_controlled"].tolist() == ["loan_type", ""]


def test_register_wide_levels_give_a_partition_the_columns_of_the_whole_register() -> None:
    frame = frame_of({"race": ["White", BLACK] * 20})
    frame["loan_type"] = np.r_[np.ones(20), np.full(20, 2.0)]
    spec = Covariates(categorical=("loan_type",)).with_levels(frame)
    assert spec.levels == (("loan_type", ("1", "2")),)
    part = frame.iloc[:20]  # loan type 1 only
    odds = lender_denial_odds(part, "race", "White", BLACK, covariates=spec)
    assert odds["not_controlled"].tolist() == ["loan_type"]
    missing = frame.assign(loan_type=np.r_[np.full(39, np.nan), 2.0])
    assert Covariates(categorical=("loan_type",)).with_levels(missing).levels == (("loan_type", ("\x00missing", "2")),)


def test_a_group_identical_to_a_controlled_category_is_collinear_not_a_disparity() -> None:
    # Every compared borrower FHA, every reference borrower conventional, an FHA premium: with loan
    # type controlled there is nothing left to compare (the penalty must not hide it).
    rng = np.random.default_rng(21)
    size = 400
    black = rng.random(size) < 0.4
    frame = frame_of(
        {
            "race": np.where(black, BLACK, "White"),
            "rate_spread": 0.3 + 0.8 * black + rng.normal(0, 0.1, size),
            "decision": np.where(rng.random(size) < 0.2 + 0.2 * black, "denied", "approved"),
        }
    )
    frame["loan_type"] = np.where(black, 2, 1).astype(np.int64)
    spec = Covariates(categorical=("loan_type",))
    assert pricing_disparity(frame, "race", "White", BLACK, covariates=spec)["reason"].tolist() == [
        "group collinear with the covariates"
    ]
    assert lender_denial_odds(frame, "race", "White", BLACK, covariates=spec)["reason"].tolist() == [
        "group collinear with the covariates"
    ]


def test_prepared_rows_serve_every_comparison_and_only_their_frame() -> None:
    """``Prepared``: the canonical rows and covariate matrices built once give what each fit
    builds alone, for the denial odds and the pricing gap of several comparisons and the denial
    probabilities (after them, reusing their matrices, masks and lenders); another frame
    (even equal to it) is refused."""
    rng = np.random.default_rng(5)
    size = 400
    frame = frame_of(
        {
            "lei": np.where(rng.random(size) < 0.5, "L1", "L2"),
            "race": rng.choice(["White", BLACK, "Asian"], size),
            "decision": np.where(rng.random(size) < 0.3, "denied", "approved"),
            "income": np.exp(rng.normal(11.3, 0.4, size)),
            "dti": rng.normal(35, 8, size),
            "rate_spread": rng.normal(0.5, 0.2, size),
        }
    )
    frame["application_id"] = [f"A{number}" for number in rng.permutation(size)]  # not in canonical order
    prepared = Prepared(frame)
    assert prepared.frame is not frame
    for compared in ([BLACK], ["Asian"], [BLACK, "Asian"]):
        pd.testing.assert_frame_equal(
            lender_denial_odds(frame, "race", "White", compared, ("income", "dti"), prepared=prepared),
            lender_denial_odds(frame, "race", "White", compared, ("income", "dti")),
        )
        pd.testing.assert_frame_equal(
            pricing_disparity(frame, "race", "White", compared, ("dti",), prepared=prepared),
            pricing_disparity(frame, "race", "White", compared, ("dti",)),
        )
    for covariates in (("income", "dti"), ("dti",)):
        shared = denial_probabilities(frame, covariates, prepared=prepared)
        assert shared.tobytes() == denial_probabilities(frame, covariates).tobytes()
        assert np.isfinite(shared).sum() > size / 2
    with pytest.raises(ValueError, match="another frame"):
        lender_denial_odds(frame.copy(), "race", "White", [BLACK], ("income",), prepared=prepared)
    with pytest.raises(ValueError, match="another frame"):
        denial_probabilities(frame.copy(), ("income",), prepared=prepared)


def test_category_codes_as_numbers_give_the_indicators_of_their_texts() -> None:
    """A categorical covariate stored as numbers (HMDA codes, float with NaN for missing) gets the
    indicators it gets as text (branch stats6: factorized as numbers), and two models controlling
    for the same category share its indicators in ``Prepared`` with the same matrices."""
    rng = np.random.default_rng(3)
    codes, liens = rng.choice([1.0, 2.0, 31.0, np.nan], 300), rng.choice([1, 2], 300)
    frame = frame_of({"income": rng.uniform(5e4, 2e5, 300)}).assign(loan_type=codes, lien_status=liens)
    assert str(frame["lien_status"].dtype) == "int64"
    as_text = frame.assign(
        loan_type=pd.Series([None if np.isnan(code) else str(int(code)) for code in codes], dtype=object),
        lien_status=pd.Series([str(lien) for lien in liens], dtype=object),
    )
    model = Covariates(numeric=("income",), categorical=("loan_type", "lien_status")).with_levels(frame)
    other = Covariates(numeric=(), categorical=("lien_status", "loan_type")).with_levels(frame)
    matrix, labels = covariate_matrix(frame, model)
    text_matrix, text_labels = covariate_matrix(as_text, model)
    assert labels == text_labels and labels.count("loan_type") == 4
    assert matrix.tobytes() == text_matrix.tobytes()
    prepared = Prepared(frame)
    assert prepared.covariates(model)[0].tobytes() == covariate_matrix(prepared.frame, model)[0].tobytes()
    assert prepared.covariates(other)[0].tobytes() == covariate_matrix(prepared.frame, other)[0].tobytes()


def test_cluster_outliers_are_sorted_by_lender_then_id_with_missing_texts_last() -> None:
    """The outliers in the order of a stable sort by lei then application id (branch stats6 sorts
    the texts itself), also with ids that sort differently as numbers and a lender missing."""
    ids = ["10", "9", "B", "a", "2", "x1", "x2", "x3", "x4", "x5"]
    frame = pd.DataFrame(
        {
            "application_id": ids,
            "lei": ["L2", "L2", "L1", "L2", "L1"] + ["L1"] * 5,
            "decision": ["denied"] * 5 + ["approved"] * 5,
        },
        dtype=object,
    )
    pairs = pd.DataFrame({"a": [f"x{k}" for k in range(1, 6)] * 5, "b": np.repeat(ids[:5], 5)})
    result = cluster_outliers(frame, pairs)
    assert result["application_id"].tolist() == ["2", "B", "10", "9", "a"]
    assert result["lei"].tolist() == ["L1", "L1", "L2", "L2", "L2"]
    assert str(result["application_id"].dtype) == "str" and str(result["decision"].dtype) == "str"
    missing = frame.assign(lei=[None, "L2", "L1", "L2", "L1"] + ["L1"] * 5)
    expected = cluster_outliers(missing, pairs)
    assert expected["application_id"].tolist() == ["2", "B", "9", "a", "10"]
    assert expected["lei"].isna().tolist() == [False] * 4 + [True]
    assert cluster_outliers(frame, pairs.iloc[:0]).empty
    numbers = frame.assign(application_id=[10, 9, 11, 12, 2, 21, 22, 23, 24, 25])  # ids as numbers: sorted as text
    numbered = pairs.assign(a=np.tile([21, 22, 23, 24, 25], 5), b=np.repeat([10, 9, 11, 12, 2], 5))
    assert cluster_outliers(numbers, numbered)["application_id"].tolist() == ["11", "2", "10", "12", "9"]
    # A neighbour without a decision (withdrawn, missing) counts for neither side: 4 of 5 approvals decide.
    undecided = frame.assign(decision=frame["decision"].where(frame["application_id"] != "x5", "withdrawn"))
    assert cluster_outliers(undecided, pairs, min_neighbours=5).empty
    assert cluster_outliers(undecided, pairs, min_neighbours=4)["neighbours"].tolist() == [4] * 5


@pytest.mark.parametrize("dtype", ["float32", "float16", "float64", "Int64", "int32", "object"])
def test_categorical_codes_of_any_numeric_width_give_the_same_indicators(dtype: str) -> None:
    """A categorical covariate held as codes of any width gives the indicators of the same codes held
    as Python objects (float32 codes were once written '1.0' and rejected as outside the levels)."""
    codes = [1.0, 2.0, None, 2.0, 3.0] if dtype != "int32" else [1, 2, 2, 2, 3]
    expected_frame = pd.DataFrame({"loan_type": pd.Series(codes, dtype=object)})
    frame = pd.DataFrame({"loan_type": pd.Series(codes, dtype=dtype)})
    model = Covariates(numeric=(), categorical=("loan_type",)).with_levels(expected_frame)
    found = covariate_matrix(frame, model)[0]
    np.testing.assert_array_equal(found, covariate_matrix(expected_frame, model)[0])


def test_prepared_shared_with_a_weighted_frame_gives_its_own_results() -> None:
    """A weighted comparison's frame (the frame with weight columns) shares the frame's ``Prepared``
    (``Prepared.sharing``): the same tables, bit for bit, as a ``Prepared`` of its own, rows out of
    id order included; a frame that is not the source with columns added is refused."""
    rng = np.random.default_rng(5)
    count = 600
    frame = two_group_register(5, count)
    frame["application_id"] = frame["application_id"].to_numpy()[rng.permutation(count)]  # not in id order
    group = frame["race_ethnicity"].to_numpy()
    reference, compared = "White non-Hispanic", "Black or African American"
    chance = rng.uniform(0.2, 1.0, count)
    weighted = frame.assign(
        w_reference=np.where(group == reference, chance, 1 - chance),
        w_compared=np.where(group == compared, chance, 1 - chance),
    )
    weights = {reference: "w_reference", compared: "w_compared"}
    covariates = ("income", "dti", "loan_amount")
    shared = Prepared(frame)
    lender_denial_odds(frame, "race_ethnicity", reference, compared, covariates, prepared=shared)  # fills its caches
    for fit in (lender_denial_odds, pricing_disparity):
        alone = fit(weighted, "race_ethnicity", reference, compared, covariates, weights=weights)
        sharing = fit(
            weighted, "race_ethnicity", reference, compared, covariates, weights=weights,
            prepared=shared.sharing(weighted),
        )
        pd.testing.assert_frame_equal(sharing, alone, check_exact=True)
    with pytest.raises(ValueError, match="not its source"):
        shared.sharing(weighted.iloc[::-1])
    with pytest.raises(ValueError, match="not its source"):
        shared.sharing(weighted.drop(columns="dti"))


def test_a_covariate_direction_left_by_rounding_does_not_count_in_the_rank() -> None:
    """The pricing fits' degrees of freedom take the covariates' rank: a direction at 1e-14 of the
    largest eigenvalue (what rounding leaves of a category's redundant indicator) does not count,
    one at 1e-5 (a covariate nearly constant) does; numpy's default tolerance counted both."""
    rng = np.random.default_rng(3)
    basis, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    spectrum = np.array([1.0, 0.3, 1e-5, 1e-14, 0.0])
    matrices = np.stack([basis @ np.diag(spectrum) @ basis.T, np.zeros((5, 5)), np.eye(5)])
    assert _rank(matrices).tolist() == [3, 0, 5]
    assert np.linalg.matrix_rank(matrices[0], hermitian=True) == 4  # the tolerance it replaced


def test_tables_joined_as_arrays_are_the_frames_joined_tagged_and_sorted() -> None:
    """``tables._joined`` (the comparisons' tables as arrays, one frame built) gives the frame of the
    comparisons' frames joined, tagged with their comparison and sorted (``_sorted(_tagged(...))``):
    texts in code-point order (accents, case, digits), ties in the comparisons' order, an empty table,
    numbers of two dtypes, and a missing key (sorted by pandas, last)."""
    from reasoner.lending.config import Comparison
    from reasoner.lending.evidence.statistics import Columns
    from reasoner.lending.evidence.tables import _joined, _sorted, _tagged

    def part(leis: list[str | None], groups: list[str], count: np.ndarray) -> Columns:
        return Columns(
            {
                "lei": np.array(leis, dtype=object),
                "group": np.array(groups, dtype=object),
                "count": count,
                "share": np.linspace(0.0, 1.0, len(leis)),
                "reason": np.array(["", "few"] * (len(leis) // 2) + [""] * (len(leis) % 2), dtype=object),
            },
            frozenset(("lei", "group", "reason")),
        )

    comparisons = [Comparison(name, "race", "White", ("Asian",), "treatment") for name in ("zeta", "Alpha", "beta")]
    parts = [
        part(["Lé", "LZ", "La", "L1"], ["b", "a", "b", "a"], np.arange(4, dtype=np.int64)),
        part([], [], np.zeros(0, dtype=np.float64)),
        part(["La", "L1", "La"], ["a", "a", "a"], np.array([1.5, 2.5, 3.5])),
    ]
    cases = list(zip(parts, comparisons, strict=True))
    keys = ["lei", "comparison", "group"]
    expected = _sorted(_tagged([(table.frame(), comparison) for table, comparison in cases]), keys)
    found = _joined(cases, keys)
    pd.testing.assert_frame_equal(found, expected)
    assert found["lei"].tolist()[:2] == ["L1", "L1"] and str(found["count"].dtype) == "float64"
    missing = [(part(["Lb", None], ["a", "a"], np.arange(2, dtype=np.int64)), comparisons[0]), *cases[1:]]
    expected = _sorted(_tagged([(table.frame(), comparison) for table, comparison in missing]), keys)
    pd.testing.assert_frame_equal(_joined(missing, keys), expected)
    assert _joined(missing, keys)["lei"].isna().tolist()[-1]


def test_denial_odds_joined_as_arrays_are_the_tables_joined_tagged_and_sorted(
    synthetic: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    """The denial-odds tables of several comparisons as arrays (``lender_denial_odds_columns``, as
    ``audit_tables`` joins them with ``tables._joined``) give the frame of ``lender_denial_odds``'s
    tables tagged and sorted: fitted units, units with a reason, covariates not controlled."""
    from reasoner.lending.config import Comparison
    from reasoner.lending.evidence.statistics import Prepared, lender_denial_odds_columns
    from reasoner.lending.evidence.tables import _joined, _sorted, _tagged

    frame, _ = synthetic
    shared = Prepared(frame)
    cases = [
        (Comparison("minority", "group", "White", ("minority",), "treatment"), {}),
        (Comparison("sex", "sex", "Male", ("Female",), "treatment"), {"min_group": 60}),
    ]
    arrays = [
        (lender_denial_odds_columns(frame, c.column, c.reference, c.compared, prepared=shared, **o), c)
        for c, o in cases
    ]
    frames = [(lender_denial_odds(frame, c.column, c.reference, c.compared, **o), c) for c, o in cases]
    keys = ["lei", "comparison", "group"]
    found = _joined(arrays, keys)
    pd.testing.assert_frame_equal(found, _sorted(_tagged(frames), keys))
    reasons = found["reason"]
    assert (reasons == "").sum() > 20 and reasons.str.startswith("fewer than").any()
    assert all(type(value) is str for value in arrays[0][0].values["reason"])  # sorted as arrays, not by pandas


def test_lender_counts_are_the_grouped_sums() -> None:
    """``tables._lenders`` (counts by the lenders' codes) gives the frame of the grouping it replaced: LEIs in
    text order (accents, case, digits), rows without an LEI or a decision, excluded rows, untested lenders."""
    from reasoner.lending.evidence.tables import _lenders

    frame = pd.DataFrame(
        {
            "lei": pd.Series(["Lé", "LZ", "La", None, "L1", "La", "LZ", "La", "Lé"], dtype="str"),
            "decision": pd.Series(
                ["denied", "approved", "withdrawn", "denied", None, "denied", "denied", "approved", "approved"],
                dtype="str",
            ),
            "excluded": pd.Series(["", "", "", "", "", "dup", "", "", ""], dtype="str"),
        }
    )
    odds = pd.DataFrame({"lei": ["La", "LZ", "L1"], "reason": ["", "few", ""]})
    decided = frame["decision"].isin(("approved", "denied"))
    usable = decided & frame["excluded"].eq("")
    summary = pd.DataFrame(
        {
            "lei": frame["lei"],
            "applications": 1,
            "decisions": decided.astype(np.int64),
            "usable": usable.astype(np.int64),
            "denied": (usable & frame["decision"].eq("denied")).astype(np.int64),
        }
    )
    expected = summary.groupby("lei", sort=True).sum().reset_index()
    expected["tested"] = expected["lei"].isin(["La", "L1"]).astype(np.int64)
    expected["lei"] = expected["lei"].astype("str")
    found = _lenders(frame, odds)
    pd.testing.assert_frame_equal(found, expected)
    assert found["lei"].tolist() == ["L1", "LZ", "La", "Lé"] and found["denied"].tolist() == [0, 1, 0, 1]
    pd.testing.assert_frame_equal(_lenders(frame.iloc[:0], odds.iloc[:0]), expected.iloc[:0], check_index_type=False)


def test_holm_adjustment_the_same_for_families_as_python_texts_numpy_texts_and_numbers() -> None:
    rng = np.random.default_rng(5)
    p = np.where(rng.random(300) < 0.1, np.nan, rng.random(300) ** 2)
    numbers = rng.integers(0, 7, 300)
    texts = np.array([f"L{number}" for number in numbers], dtype=object)  # Python texts: factorized directly
    expected = holm_adjusted(p, texts.astype(str))  # numpy texts: grouped through a text Series
    np.testing.assert_array_equal(holm_adjusted(p, texts), expected)
    np.testing.assert_array_equal(holm_adjusted(p, numbers), expected)
    np.testing.assert_array_equal(holm_adjusted(p, pd.Series(texts, dtype="str").to_numpy()), expected)


# Per-call forms that replaced pandas groupings and comparisons (the same values).


def test_running_max_is_groupby_cummax() -> None:
    random = np.random.default_rng(7)
    for size in (1, 2, 5, 40, 500):
        families = np.sort(random.integers(0, max(1, size // 4), size))
        values = np.round(random.random(size), 1)  # ties
        expected = pd.Series(values).groupby(families).cummax().to_numpy()
        assert _running_max(values, families).tobytes() == expected.tobytes()


def test_running_max_keeps_the_first_of_equal_zeros() -> None:
    values = np.array([-0.0, 0.0, 0.5, 0.0, -0.0])
    families = np.array([0, 0, 0, 1, 1])
    expected = pd.Series(values).groupby(families).cummax().to_numpy()
    assert _running_max(values, families).tobytes() == expected.tobytes()


def test_holm_adjusted_by_hand() -> None:
    p = np.array([0.01, 0.04, np.nan, 0.03, 0.2, 0.01])
    families = np.array(["a", "a", "a", "a", "b", "b"], dtype=object)
    adjusted = holm_adjusted(p, families)
    assert np.allclose(adjusted[[0, 3, 1]], [0.03, 0.06, 0.06])
    assert np.isnan(adjusted[2])
    assert np.allclose(adjusted[[5, 4]], [0.02, 0.2])


def test_equals_of_arrow_texts_is_pandas_comparison() -> None:
    values = ["denied", None, "approved", "denied", float("nan"), ""]
    for column in (
        pd.Series(values, dtype="str"),
        pd.Series([], dtype="str"),
        pd.concat([pd.Series(values[:3], dtype="str"), pd.Series(values[3:], dtype="str")], ignore_index=True),
        pd.Series(values, dtype=object),
    ):
        for value in ("denied", "", "other"):
            found = _equals(column, value)
            assert found.dtype == bool
            assert found.tolist() == column.eq(value).fillna(False).to_numpy(dtype=bool).tolist()
