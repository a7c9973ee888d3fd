"""Graded evidence: the log-likelihood ratios the rules weigh (``tables.with_evidence``)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from reasoner.lending.evidence.tables import MAX_EVIDENCE, _strongest, with_evidence

D = math.log(2.0)


def _table(rows: list[tuple[str, str, float, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["lei", "comparison", "log_odds_ratio", "standard_error"])


def test_llr_is_the_log_ratio_of_the_normal_likelihoods() -> None:
    table = with_evidence(_table([("A", "black", 0.9, 0.3)]), "log_odds_ratio", D, ["black"])
    expected = stats.norm.logpdf(0.9, D, 0.3) - stats.norm.logpdf(0.9, 0.0, 0.3)
    assert table["llr"].iloc[0] == pytest.approx(expected)
    assert table["evidence_weight"].iloc[0] == pytest.approx(round(expected, 4))  # one comparison: ln 1 = 0


def test_a_precise_small_effect_counts_against_a_finding() -> None:
    # odds ratio 1.2 at p < 1e-6: significant, but the data favour "no doubling" by far
    table = with_evidence(_table([("A", "black", math.log(1.2), 0.03)]), "log_odds_ratio", D, ["black"])
    assert stats.norm.sf(math.log(1.2) / 0.03) * 2 < 1e-6
    assert table["llr"].iloc[0] < -50 and table["evidence_weight"].iloc[0] == 0


def test_only_the_strongest_comparison_counts_less_the_cost_of_looking() -> None:
    rows = [
        ("A", "minority", 0.8, 0.25),
        ("A", "black", 1.0, 0.3),
        ("A", "neighbourhood", 3.0, 0.2),  # another theory: not a look at treatment
        ("A", "sex", float("nan"), float("nan")),  # not estimated: not a look
        ("B", "black", -0.5, 0.4),
    ]
    table = with_evidence(_table(rows), "log_odds_ratio", D, ["minority", "black", "sex"])
    llr = table["llr"].to_numpy()
    assert table["strongest"].tolist() == [int(llr[0] > llr[1]), int(llr[1] >= llr[0]), 0, 0, 1]
    best = max(llr[0], llr[1])
    assert table.loc[table["lei"].eq("A"), "evidence_weight"].max() == pytest.approx(round(best - math.log(2), 4))
    assert table["evidence_weight"].iloc[4] == 0.0  # negative evidence weighs nothing here


def test_evidence_is_capped() -> None:
    table = with_evidence(_table([("A", "black", 2.0, 0.01)]), "log_odds_ratio", D, ["black"])
    assert table["evidence_weight"].iloc[0] == MAX_EVIDENCE


def test_a_t_statistic_on_few_degrees_of_freedom_weighs_less() -> None:
    rows = pd.DataFrame(
        {"lei": ["A", "B"], "comparison": ["black"] * 2, "adjusted_gap": [0.12] * 2, "standard_error": [0.024] * 2,
         "degrees_of_freedom": [3.0, 1e9]}
    )
    table = with_evidence(rows, "adjusted_gap", 0.2, ["black"])
    few, many = table["llr"].tolist()
    assert many == pytest.approx((0.12 * 0.2 - 0.02) / 0.024**2, rel=1e-6)
    assert few < many / 4
    assert np.isfinite(few)


def test_a_t_statistic_far_in_the_tail_keeps_its_evidence() -> None:
    rows = pd.DataFrame(
        {"lei": ["A", "B"], "comparison": ["black"] * 2, "adjusted_gap": [0.30] * 2,
         "standard_error": [0.0075, 0.0085], "degrees_of_freedom": [40000.0] * 2}
    )
    table = with_evidence(rows, "adjusted_gap", 0.2, ["black"])
    assert np.isfinite(table["llr"]).all()
    assert table["llr"].iloc[0] > table["llr"].iloc[1]
    assert table["evidence_weight"].tolist() == [MAX_EVIDENCE, MAX_EVIDENCE]


def _pandas_strongest(lei: pd.Series, llr: np.ndarray, eligible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The strongest rows and looks as ``with_evidence`` found them with pandas before ``_strongest``."""
    ranked = pd.DataFrame({"lei": lei, "llr": np.where(eligible, llr, -np.inf), "row": np.arange(len(lei))})
    ranked = ranked[eligible].sort_values(["lei", "llr", "row"], ascending=[True, False, True], kind="stable")
    best = ranked.drop_duplicates("lei")["row"].to_numpy()
    tried = ranked.groupby("lei", sort=False)["row"].size()
    return best, tried.reindex(lei.iloc[best]).to_numpy(dtype=np.float64)


@pytest.mark.parametrize("dtype", ["object", "str"])
def test_the_strongest_rows_are_pandas_ranking(dtype: str) -> None:
    random = np.random.default_rng(3)
    for size in (0, 1, 7, 200):
        names = np.array(["b", "A", "a", "é", "B1", "b0", "Z"], dtype=object)
        lei = pd.Series(names[random.integers(0, names.size, size)], dtype=dtype)
        llr = np.round(random.normal(size=size), 1)  # ties within a lender
        llr[random.random(size) < 0.1] = np.inf
        llr[random.random(size) < 0.1] = -0.0
        eligible = np.isfinite(llr) & (random.random(size) < 0.8)
        best, looks = _strongest(lei, llr, eligible)
        expected_best, expected_looks = _pandas_strongest(lei, llr, eligible)
        assert best.tolist() == expected_best.tolist()
        assert looks.dtype == np.float64 and looks.tolist() == expected_looks.tolist()


def test_the_strongest_rows_with_a_missing_lei() -> None:
    lei = pd.Series(["B", None, "A", "B", None], dtype="str")
    llr = np.array([1.0, 3.0, 0.5, 2.0, 4.0])
    eligible = np.ones(5, dtype=bool)
    best, looks = _strongest(lei, llr, eligible)
    expected_best, expected_looks = _pandas_strongest(lei, llr, eligible)
    assert best.tolist() == expected_best.tolist() == [2, 3, 4]
    np.testing.assert_array_equal(looks, expected_looks)
