"""Effect sizes of the denial comparisons, in terms a lawyer can state.

Per row of ``denial_odds`` (lender × comparison) with an estimate:

``marginal_effect``
    How much group membership changes the compared applicants' probability of denial:
    their observed denial rate ``p1`` minus the rate they would have had at the reference
    group's odds, the same financials held fixed. A logistic regression with an intercept
    and the group indicator reproduces each group's denial rate (the indicator's score
    equation sums the residuals over the compared group), so the model's average predicted
    probability with the indicator on is ``p1``; with it off, the odds are divided by the
    odds ratio ``OR``. Taken at the group's rate, ``p0* = p1 / (p1 + OR (1 - p1))`` and
    ``marginal_effect = p1 - p0*`` (a probability: 0.05 is five percentage points). This
    uses the group's rate where the exact average would divide each applicant's own odds,
    which differs little unless the group's denial probabilities are spread widely.
``excess_denials``
    The shortfall: compared applicants denied beyond what the reference group's odds
    predict, ``n1 × marginal_effect`` = observed denials − ``n1 p0*``.

Each has a 95% interval from the odds ratio's (``ci_low``, ``ci_high``), the effect being
increasing in the odds ratio; the denial rate is taken as observed. Rows without an estimate
(``reason`` not empty) get NaN.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["EFFECT_COLUMNS", "effect_sizes", "with_effects"]

EFFECT_COLUMNS = (
    "marginal_effect",
    "marginal_effect_ci_low",
    "marginal_effect_ci_high",
    "excess_denials",
    "excess_denials_ci_low",
    "excess_denials_ci_high",
)


def effect_sizes(
    compared: np.ndarray, compared_rate: np.ndarray, odds_ratio: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the marginal effect of group membership on the denial probability and the
    excess denials, for ``compared`` applicants denied at ``compared_rate`` with an adjusted
    odds ratio ``odds_ratio`` (module docstring). NaN where any input is missing."""
    n1 = np.asarray(compared, dtype=np.float64)
    p1 = np.asarray(compared_rate, dtype=np.float64)
    ratio = np.asarray(odds_ratio, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        counterfactual = np.where(np.isinf(ratio), 0.0, p1 / (p1 + ratio * (1 - p1)))
    effect = np.where(np.isfinite(p1) & ~np.isnan(ratio) & (n1 > 0), p1 - counterfactual, np.nan)
    return effect, n1 * effect


def with_effects(denial_odds: pd.DataFrame) -> pd.DataFrame:
    """``denial_odds`` with the ``EFFECT_COLUMNS`` last (NaN for rows without an estimate)."""
    table = denial_odds
    estimated = table["reason"].eq("").to_numpy(dtype=bool)
    n1 = table["compared_applications"].to_numpy(dtype=np.float64)
    p1 = np.where(estimated, table["compared_denial_rate"].to_numpy(dtype=np.float64), np.nan)
    added: dict[str, np.ndarray] = {}
    for suffix, column in (("", "odds_ratio"), ("_ci_low", "ci_low"), ("_ci_high", "ci_high")):
        effect, excess = effect_sizes(n1, p1, table[column].to_numpy(dtype=np.float64))
        added[f"marginal_effect{suffix}"] = effect
        added[f"excess_denials{suffix}"] = excess
    # one frame of the new columns joined once (not six insertions into a copy, then a copy to order them)
    effects = pd.DataFrame({name: added[name] for name in EFFECT_COLUMNS}, index=table.index)
    return pd.concat([table, effects], axis=1)
