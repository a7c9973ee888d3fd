"""``power.min_detectable_odds_ratio``: Cohen's table, a simulation of the test, edge cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from reasoner.lending.evidence.power import min_detectable_odds_ratio, with_power


def test_cohens_table_392_per_group_detect_h_of_0_2() -> None:
    # Cohen (1988), table 6.4.1: 392 per group detect h = 0.20 at alpha 0.05 (two-sided) with power 0.80.
    ratio = min_detectable_odds_ratio(np.array([392]), np.array([392]), np.array([0.5]))[0]
    p1 = math.sin(math.pi / 4 + 0.1) ** 2
    assert ratio == pytest.approx(p1 / (1 - p1), rel=2e-3)


def test_the_detectable_odds_ratio_is_detected_four_times_in_five() -> None:
    """Simulate the two-proportion test at the returned odds ratio: it rejects about 80% of the time."""
    rng = np.random.default_rng(11)
    n1, n0, p0 = 150, 600, 0.15
    ratio = min_detectable_odds_ratio(np.array([n1]), np.array([n0]), np.array([p0]))[0]
    p1 = p0 * ratio / (1 - p0 + p0 * ratio)
    trials = 20_000
    x1 = rng.binomial(n1, p1, trials) / n1
    x0 = rng.binomial(n0, p0, trials) / n0
    pooled = (x1 * n1 + x0 * n0) / (n1 + n0)
    z = (x1 - x0) / np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))
    assert np.mean(np.abs(z) > 1.959964) == pytest.approx(0.8, abs=0.03)
    # half the sample sizes cannot detect it
    smaller = min_detectable_odds_ratio(np.array([n1 // 2]), np.array([n0 // 2]), np.array([p0]))[0]
    assert smaller > ratio


def test_more_applicants_detect_smaller_odds_ratios() -> None:
    sizes = np.array([10, 30, 100, 300, 1000, 10_000])
    ratios = min_detectable_odds_ratio(sizes, sizes * 3, np.full(sizes.size, 0.15))
    assert (np.diff(ratios) < 0).all() and ratios[-1] > 1
    assert ratios[2] > 2 > ratios[4]  # ~100 compared applicants cannot detect a doubling; 1,000 can


def test_degenerate_groups() -> None:
    ratios = min_detectable_odds_ratio(
        np.array([0, 50, 50, 50, 2]), np.array([50, 0, 50, 50, 2]), np.array([0.2, np.nan, 0.0, 1.0, 0.5])
    )
    assert np.isnan(ratios[0]) and np.isnan(ratios[1])  # nobody to compare
    assert np.isinf(ratios[2]) and np.isinf(ratios[3])  # a reference group never or always denied
    assert np.isinf(ratios[4])  # two applicants a side: no rate short of 1 would be detected


def test_with_power_adds_one_column() -> None:
    table = pd.DataFrame(
        {"compared_applications": [100, 0], "reference_applications": [300, 20], "reference_denial_rate": [0.1, 0.2]}
    )
    out = with_power(table)
    assert list(out.columns) == [*table.columns, "min_detectable_odds_ratio"]
    assert out["min_detectable_odds_ratio"].iloc[0] > 1 and np.isnan(out["min_detectable_odds_ratio"].iloc[1])
    assert "min_detectable_odds_ratio" not in table.columns
