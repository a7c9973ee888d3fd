"""Per-lender tests of an interaction of two prohibited bases (``rules/60-intersectional.mln``).

Comparing minority women with White non-Hispanic men measures the race effect and the sex effect
together: a lender that denies minority applicants more, women and men alike, shows a gap there
that is nothing but its race effect. Intersectional discrimination is the part the single bases
do not explain, so it is tested as the interaction term of a logistic regression, per lender:

    logit P(denied) = b0 + b1 minority + b2 second + b3 minority × second + covariates

with ``second`` being female (``race_sex``: Female against Male) or a majority-minority tract
(``race_tract``: tract minority share above ``majority_minority_percent``), over the usable
decisions whose two bases are known (minority is any race other than White, or Hispanic, against
White non-Hispanic: the ``minority`` group column of ``tables.add_group_columns``). ``exp(b3)``
(``odds_ratio``) is how many times the odds of denial of minority women (or of minority
applicants in majority-minority tracts) exceed what the race effect and the other basis's effect
together predict; 1 means no interaction. The covariates are those of the denial regression
(``income`` and ``loan_amount`` as logarithms), standardised within the lender, with a whisper of
ridge (``RIDGE`` on every coefficient but the intercept). The models of all lenders are fitted at
once by Newton's method (``statistics.logistic_fits``) on the rows in application-id order, so
that the result does not depend on the input's row order (a test checks each lender's fit against
scikit-learn's ``LogisticRegression`` of that lender alone to 1e-8); the standard error is the
square root of the interaction's entry of the inverse information matrix X'WX (with the ridge) at
the estimate, the CI is Wald's and the p-value the two-sided Wald z test. ``p_adjusted`` is
Holm's adjustment over the lender's interaction tests.

A lender is not tested for an interaction (NaN and a ``reason``) when one of the four cells has
fewer than ``min_group`` applications, when the cell of both bases has no denial or no approval
(its odds are not estimable), or when the fit separates or is singular.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from reasoner.lending.evidence.statistics import (
    DENIAL_COVARIATES,
    MIN_GROUP,
    Covariates,
    as_covariates,
    covariate_matrix,
    holm_adjusted,
    logistic_fits,
    one_blas_thread,
    unit_scales,
)

RIDGE = 1e-4  # L2 penalty of the interaction fit, on standardised columns
MAX_ITERATIONS = 100  # Newton iterations per fit

__all__ = ["INTERACTION_COLUMNS", "INTERACTIONS", "Interaction", "interaction_tests"]

MINORITY = "Minority"
REFERENCE = "White non-Hispanic"
SEPARATION_LIMIT = 15.0  # |coefficient| (log-odds per unit or standard deviation) taken as divergence
Z95 = float(stats.norm.ppf(0.975))
CELLS = ("neither", "minority_only", "second_only", "both")  # (minority, second): (0,0), (1,0), (0,1), (1,1)
INTERACTION_COLUMNS = (
    "lei", "interaction", "applications",
    *(f"{cell}_applications" for cell in CELLS), *(f"{cell}_denial_rate" for cell in CELLS),
    "odds_ratio", "ci_low", "ci_high", "p_value", "reason", "p_adjusted",
)


@dataclass(frozen=True, slots=True)
class Interaction:
    """Race crossed with a second basis: ``second`` is 'sex' (Female against Male) or 'tract'."""

    name: str
    second: str
    description: str


INTERACTIONS = (
    Interaction("race_sex", "sex", "minority women beyond the race and sex effects"),
    Interaction(
        "race_tract", "tract", "minority applicants in majority-minority tracts beyond the race and tract effects"
    ),
)


def interaction_tests(
    frame: pd.DataFrame,
    *,
    covariates: Sequence[str] | Covariates = DENIAL_COVARIATES,
    majority_minority_percent: float = 50.0,
    min_group: int = MIN_GROUP,
    interactions: Sequence[Interaction] = INTERACTIONS,
) -> pd.DataFrame:
    """One row per lender × interaction (module docstring), sorted by ``lei`` and interaction.

    ``frame`` is the applications table of ``tables.audit_tables`` (cleaned rows with the group
    columns).
    """
    if "application_id" in frame.columns and len(frame):  # the fit's floating-point sums in id order, not input order
        ids = frame["application_id"].astype(str)
        frame = frame.iloc[np.lexsort((ids.to_numpy(dtype=object), ids.str.len().to_numpy()))]
    usable = frame["excluded"].eq("").fillna(False).to_numpy(dtype=bool) & frame["decision"].isin(
        ("approved", "denied")
    ).to_numpy(dtype=bool)
    minority = frame["minority"].to_numpy(dtype=object, na_value=None)
    known = usable & np.isin(minority, (MINORITY, REFERENCE))
    values, labels = covariate_matrix(frame, covariates)
    categories = set(as_covariates(covariates).categorical)
    groups = tuple(labels.index(name) if name in categories else -1 for name in labels)  # first column of a category
    known &= np.isfinite(values).all(axis=1)
    seconds = {
        "sex": (frame["sex"].to_numpy(dtype=object, na_value=None) == "Female",
                np.isin(frame["sex"].to_numpy(dtype=object, na_value=None), ("Male", "Female"))),
        "tract": _tract(frame, majority_minority_percent),
    }
    denied = frame["decision"].to_numpy(dtype=object) == "denied"
    is_minority = minority == MINORITY
    leis = frame["lei"].astype("str").to_numpy(dtype=object)
    lenders = np.array(sorted(set(leis[usable].tolist())), dtype=object)
    lender = pd.Index(lenders).get_indexer(leis) if lenders.size else np.full(len(frame), -1)
    width = len(interactions)
    parts = []
    for index, interaction in enumerate(interactions):  # a unit per lender and interaction, rows in id order
        second, second_known = seconds[interaction.second]
        rows = np.flatnonzero(known & second_known & (lender >= 0))
        parts.append((rows, lender[rows] * width + index, second[rows]))
    rows = np.concatenate([part[0] for part in parts])
    unit = np.concatenate([part[1] for part in parts])
    other = np.concatenate([part[2] for part in parts]).astype(bool)
    order = np.argsort(unit, kind="stable")
    rows, unit, other = rows[order], unit[order], other[order]
    count = lenders.size * width
    found = _estimates(denied[rows], is_minority[rows], other, values[rows], unit, count, min_group, groups)
    table = pd.DataFrame(
        {
            "lei": np.repeat(lenders, width),
            "interaction": np.tile(np.array([item.name for item in interactions], dtype=object), lenders.size),
        }
        | found,
        columns=list(INTERACTION_COLUMNS[:-1]),
    )
    table["p_adjusted"] = holm_adjusted(table["p_value"].to_numpy(dtype=np.float64), table["lei"].to_numpy())
    for name in ("applications", *(f"{cell}_applications" for cell in CELLS)):
        table[name] = table[name].astype(np.int64)
    for name in (*(f"{cell}_denial_rate" for cell in CELLS), "odds_ratio", "ci_low", "ci_high", "p_value"):
        table[name] = table[name].astype(np.float64)
    for name in ("lei", "interaction", "reason"):
        table[name] = table[name].astype("str")
    return table.reset_index(drop=True)


def _tract(frame: pd.DataFrame, percent: float) -> tuple[np.ndarray, np.ndarray]:
    share = frame["tract_minority_pct"].to_numpy(dtype=np.float64, na_value=np.nan)
    return share > percent, np.isfinite(share)


def _estimates(
    denied: np.ndarray,
    minority: np.ndarray,
    second: np.ndarray,
    values: np.ndarray,
    unit: np.ndarray,
    count: int,
    min_group: int,
    groups: tuple[int, ...] = (),
) -> dict[str, np.ndarray]:
    """The interaction test of every unit (rows sorted by ``unit``): cell counts, denial rates,
    the estimate and a reason. All units' regressions are fitted at once (``logistic_fits``):
    a covariate a unit leaves out (constant there, or its category's base) is a column of zeros
    in that unit's rows, which the ridge keeps at 0 and apart from the others, so each unit's fit
    is that of its own columns."""
    cell = minority.astype(np.int64) + 2 * second.astype(np.int64)  # 0 neither, 1 minority only, 2 second only, 3 both
    counts = np.bincount(unit * 4 + cell, minlength=count * 4).reshape(count, 4)
    denials = np.bincount(unit * 4 + cell, denied.astype(np.float64), count * 4).reshape(count, 4)
    found: dict[str, np.ndarray] = {"applications": counts.sum(axis=1)}
    with np.errstate(divide="ignore", invalid="ignore"):
        for index, name in enumerate(CELLS):
            found[f"{name}_applications"] = counts[:, index]
            found[f"{name}_denial_rate"] = np.where(counts[:, index] > 0, denials[:, index] / counts[:, index], np.nan)
    reason = np.full(count, "", dtype=object)
    reason[counts.min(axis=1) < min_group] = f"fewer than {min_group} applications in a cell"
    both = (denials[:, 3] == 0) | (denials[:, 3] == counts[:, 3])
    reason[(reason == "") & both] = "no denial or no approval among applicants of both bases"
    estimate = np.full(count, np.nan)
    error = np.full(count, np.nan)
    fit = reason[unit] == ""
    fitted_units, fit_unit = np.unique(unit[fit], return_inverse=True)
    if fitted_units.size:
        x = values[fit]
        mean, spread = unit_scales(x, fit_unit, fitted_units.size)  # inf: constant at the lender, explains nothing
        varies = np.isfinite(spread)
        # A category's indicators sum to one: its first that varies at the lender is the base, left out.
        seen: dict[int, np.ndarray] = {}
        for column, group in enumerate(groups):
            if group >= 0:
                base = varies[:, column] & ~seen.get(group, np.zeros(fitted_units.size, dtype=bool))
                seen[group] = seen.get(group, np.zeros(fitted_units.size, dtype=bool)) | base
                varies[:, column] &= ~base
        scaled = np.where(varies[fit_unit], (x - mean[fit_unit]) / spread[fit_unit], 0.0)
        first, other = minority[fit].astype(np.float64), second[fit].astype(np.float64)
        design = np.column_stack([np.ones(first.size), first, other, first * other, scaled])
        # A whisper of ridge (1e-4 on standardised columns, not on the intercept): covariates collinear among
        # themselves (an AUS result that follows the credit-score bands) leave the interaction's estimate defined.
        penalty = np.full(design.shape[1], RIDGE)
        penalty[0] = 0.0
        with one_blas_thread():  # many small matrices: one thread is fastest, and the same in every process
            beta, status, variance = logistic_fits(
                design, denied[fit].astype(np.float64), fit_unit, fitted_units.size, penalty, 3,
                watched=slice(1, 4), iterations=MAX_ITERATIONS,
            )
        singular = (status == 0) & ~(np.isfinite(variance) & (variance > 0))
        reason[fitted_units[status != 0]] = "the regression did not converge (separation)"
        reason[fitted_units[singular]] = "the bases are collinear with the covariates"
        good = (status == 0) & ~singular
        estimate[fitted_units[good]] = beta[good, 3]
        error[fitted_units[good]] = np.sqrt(variance[good])
    with np.errstate(invalid="ignore"):
        found["odds_ratio"] = np.exp(estimate)
        found["ci_low"] = np.exp(estimate - Z95 * error)
        found["ci_high"] = np.exp(estimate + Z95 * error)
        found["p_value"] = 2 * stats.norm.sf(np.abs(estimate) / error)
    found["reason"] = reason
    return found
