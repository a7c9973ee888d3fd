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
(``income`` and ``loan_amount`` as logarithms), standardised within the lender. The model is
fitted by scikit-learn (``LogisticRegression`` without penalty, Newton–Cholesky) on the rows in
application-id order, so that the result does not depend on the input's row order; the standard
error is the square root of the interaction's entry of the inverse information matrix X'WX at
the estimate, the CI is Wald's and the p-value the two-sided Wald z test. ``p_adjusted`` is
Holm's adjustment over the lender's interaction tests.

A lender is not tested for an interaction (NaN and a ``reason``) when one of the four cells has
fewer than ``min_group`` applications, when the cell of both bases has no denial or no approval
(its odds are not estimable), or when the fit separates or is singular.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from reasoner.lending.evidence.statistics import (
    DENIAL_COVARIATES,
    MIN_GROUP,
    Covariates,
    Prepared,
    as_covariates,
    covariate_matrix,
    holm_adjusted,
    one_blas_thread,
)

RIDGE = 1e-4  # L2 penalty of the interaction fit, on standardised columns

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
    prepared: Prepared | None = None,
) -> pd.DataFrame:
    """One row per lender × interaction (module docstring), sorted by ``lei`` and interaction.

    ``frame`` is the applications table of ``tables.audit_tables`` (cleaned rows with the group
    columns). ``prepared``: ``statistics.Prepared(frame)``, whose rows in id order, covariate
    matrix and lenders are reused (the same results).
    """
    if prepared is not None:
        if prepared.source is not frame:
            raise ValueError("prepared: built for another frame")
        frame = prepared.frame  # the rows in id order, as below
        values, labels = prepared.covariates(as_covariates(covariates))
        codes, names = prepared.lenders()
    else:
        if "application_id" in frame.columns and len(frame):  # the fit's sums in id order, not input order
            ids = frame["application_id"].astype(str)
            frame = frame.iloc[np.lexsort((ids.to_numpy(dtype=object), ids.str.len().to_numpy()))]
        values, labels = covariate_matrix(frame, covariates)
        lei = frame["lei"].astype("str").to_numpy(dtype=object, na_value=None)
        codes, names = pd.factorize(lei, sort=True)
    usable = frame["excluded"].eq("").fillna(False).to_numpy(dtype=bool) & frame["decision"].isin(
        ("approved", "denied")
    ).to_numpy(dtype=bool)
    minority = frame["minority"].to_numpy(dtype=object, na_value=None)
    known = usable & np.isin(minority, (MINORITY, REFERENCE))
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
    rows = []
    with one_blas_thread():  # one BLAS thread: the same sums in every process
        for code in np.unique(codes[usable & (codes >= 0)]):  # lenders in LEI order
            lei, at = str(names[code]), codes == code
            for interaction in interactions:
                second, second_known = seconds[interaction.second]
                rows.append(
                    {"lei": lei, "interaction": interaction.name}
                    | _test(denied, is_minority, second, values, at & known & second_known, min_group, groups)
                )
    table = pd.DataFrame(rows, columns=list(INTERACTION_COLUMNS[:-1]))
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


def _test(
    denied: np.ndarray,
    minority: np.ndarray,
    second: np.ndarray,
    values: np.ndarray,
    rows: np.ndarray,
    min_group: int,
    groups: tuple[int, ...] = (),
) -> dict[str, object]:
    """The interaction test on ``rows`` (one lender): cell counts, denial rates and the estimate."""
    y, first, other, x = denied[rows], minority[rows], second[rows], values[rows]
    cell = first.astype(np.int64) + 2 * other.astype(np.int64)  # 0 neither, 1 minority only, 2 second only, 3 both
    counts = np.bincount(cell, minlength=4)
    denials = np.bincount(cell, weights=y.astype(np.float64), minlength=4)
    found: dict[str, object] = {"applications": int(rows.sum())}
    for index, name in enumerate(CELLS):
        found[f"{name}_applications"] = int(counts[index])
        found[f"{name}_denial_rate"] = denials[index] / counts[index] if counts[index] else np.nan
    estimate = dict.fromkeys(("odds_ratio", "ci_low", "ci_high", "p_value"), np.nan)
    if counts.min() < min_group:
        return found | estimate | {"reason": f"fewer than {min_group} applications in a cell"}
    if denials[3] == 0 or denials[3] == counts[3]:
        return found | estimate | {"reason": "no denial or no approval among applicants of both bases"}
    mean, spread = x.mean(axis=0), x.std(axis=0)
    varies = spread > 1e-9 * np.maximum(np.abs(mean), 1.0)  # a covariate constant at the lender explains nothing
    # A category's indicators sum to one: its first that varies at the lender is the base, left out.
    seen: set[int] = set()
    for column, group in enumerate(groups):
        if group >= 0 and varies[column] and group not in seen:
            seen.add(group)
            varies[column] = False
    scaled = (x[:, varies] - mean[varies]) / spread[varies]
    design = np.column_stack([first, other, first & other, scaled]).astype(np.float64)
    # A whisper of ridge (1e-4 on standardised columns): covariates collinear among themselves (an
    # AUS result that follows the credit-score bands) leave the interaction's estimate defined.
    model = LogisticRegression(C=1.0 / RIDGE, solver="newton-cholesky", tol=1e-10, max_iter=100)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        try:
            model.fit(design, y)
        except (ConvergenceWarning, ValueError, np.linalg.LinAlgError):
            return found | estimate | {"reason": "the regression did not converge (separation)"}
    coefficients = np.concatenate([model.intercept_, model.coef_[0]])
    if np.abs(coefficients[1:4]).max() > SEPARATION_LIMIT:
        return found | estimate | {"reason": "the regression did not converge (separation)"}
    full = np.column_stack([np.ones(len(design)), design])
    probability = model.predict_proba(design)[:, 1]
    information = full.T @ (full * (probability * (1 - probability))[:, None])
    information[1:, 1:] += RIDGE * np.eye(full.shape[1] - 1)  # the penalty's curvature (not on the intercept)
    try:
        covariance = np.linalg.inv(information)
    except np.linalg.LinAlgError:
        return found | estimate | {"reason": "the bases are collinear with the covariates"}
    variance = covariance[3, 3]
    if not np.isfinite(variance) or variance <= 0:
        return found | estimate | {"reason": "the bases are collinear with the covariates"}
    beta, error = coefficients[3], float(np.sqrt(variance))
    return found | {
        "odds_ratio": float(np.exp(beta)),
        "ci_low": float(np.exp(beta - Z95 * error)),
        "ci_high": float(np.exp(beta + Z95 * error)),
        "p_value": float(2 * stats.norm.sf(abs(beta) / error)),
        "reason": "",
    }
