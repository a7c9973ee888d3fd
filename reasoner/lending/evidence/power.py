"""Statistical power of the denial comparisons: the smallest odds ratio a test could detect.

A lender × comparison whose test could not have detected a large disparity says nothing
when it finds none. ``min_detectable_odds_ratio`` gives, per row of ``denial_odds``, the
smallest denial odds ratio of the compared group that a two-sided test at ``alpha`` (0.05)
would detect with probability ``power`` (0.8), given the numbers of compared and reference
applicants and the reference group's denial rate.

The formula is the two-proportion test on the arcsine scale (Cohen's *h*, Cohen 1988, ch. 6):
the test detects the compared group's denial rate ``p1`` against the reference rate ``p0``
when ``h = 2 asin(sqrt(p1)) - 2 asin(sqrt(p0))`` reaches
``(z(1 - alpha/2) + z(power)) * sqrt(1/n1 + 1/n0)``, so

    p1 = sin(asin(sqrt(p0)) + h/2) ** 2,    min OR = [p1 / (1 - p1)] / [p0 / (1 - p0)]

in closed form (infinite when ``p1`` would reach 1, or when ``p0`` is 0 or 1: no odds ratio
can be estimated against a reference group that is always or never denied). The audit's test
is the Wald test of a logistic regression with the financials as covariates; the formula
ignores the covariates, which cost power when the group is correlated with them, so it is an
approximation that errs towards calling a lender testable.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["ALPHA", "DETECTABLE_ODDS_RATIO", "POWER", "min_detectable_odds_ratio", "with_power"]

ALPHA = 0.05  # two-sided
POWER = 0.8
DETECTABLE_ODDS_RATIO = 2.0  # a lender whose every test needs more than this is underpowered


def min_detectable_odds_ratio(
    compared: np.ndarray,
    reference: np.ndarray,
    reference_rate: np.ndarray,
    *,
    alpha: float = ALPHA,
    power: float = POWER,
) -> np.ndarray:
    """Per row: the smallest denial odds ratio (above 1) a two-sided test at ``alpha`` detects
    with probability ``power`` with ``compared`` and ``reference`` applicants and a reference
    denial rate ``reference_rate`` (module docstring). NaN without applicants in either group
    or without a reference rate; inf when no odds ratio is detectable."""
    n1 = np.asarray(compared, dtype=np.float64)
    n0 = np.asarray(reference, dtype=np.float64)
    p0 = np.asarray(reference_rate, dtype=np.float64)
    known = (n1 > 0) & (n0 > 0) & np.isfinite(p0)
    result = np.full(n1.shape, np.nan)
    if not known.any():
        return result
    z = stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)
    h = z * np.sqrt(1 / n1[known] + 1 / n0[known])
    angle = np.arcsin(np.sqrt(np.clip(p0[known], 0.0, 1.0))) + h / 2
    p1 = np.where(angle < np.pi / 2, np.sin(np.minimum(angle, np.pi / 2)) ** 2, 1.0)
    base = p0[known]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (p1 / (1 - p1)) / (base / (1 - base))
    degenerate = (p1 >= 1) | (base <= 0) | (base >= 1)
    result[known] = np.where(degenerate, np.inf, ratio)
    return result


def with_power(denial_odds: pd.DataFrame, *, alpha: float = ALPHA, power: float = POWER) -> pd.DataFrame:
    """``denial_odds`` with a last column ``min_detectable_odds_ratio`` (the others unchanged)."""
    table = denial_odds.copy()
    table["min_detectable_odds_ratio"] = min_detectable_odds_ratio(
        table["compared_applications"].to_numpy(dtype=np.float64),
        table["reference_applications"].to_numpy(dtype=np.float64),
        table["reference_denial_rate"].to_numpy(dtype=np.float64),
        alpha=alpha,
        power=power,
    )
    return table
