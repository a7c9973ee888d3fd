"""The analyst's baseline: per-lender regressions an analyst writes in an afternoon.

``analyst_baseline(frame)`` takes the cleaned register with its group columns
(``tables.add_group_columns``) and returns one row per lender with the p-values of its tests
and the smallest of them after Holm's adjustment over the lender's tests — the score by which
``reason evaluate`` ranks lenders for this method. Per lender and per comparison of
``COMPARISONS`` (minority, Black, Hispanic and Asian applicants against White non-Hispanic
ones, women against men), on the rows of the two groups:

- denial: logistic regression of denied (against approved) on the compared-group indicator and
  ``CONTROLS`` — log income, CLTV, DTI in the categories of ``DTI_EDGES``, loan type (FHA, VA,
  FSA/RHS against conventional) and loan purpose (refinancing, home improvement or other
  against purchase) — fitted by scikit-learn (L2 penalty ``1 / PENALTY_C``, so that a category a
  small lender always denies does not make the fit diverge); Wald test of the indicator from the
  inverse of the penalised information matrix;
- pricing: least squares of rate spread among originated loans on the indicator and the same
  controls, with HC3 heteroskedasticity-consistent standard errors (MacKinnon and White 1985;
  the small-sample choice of Long and Ervin 2000) and a t test on the residual degrees of freedom.

Rows: decisions (approved or denied) whose cleaning kept them, and also those it set aside only
because the race is not available — an analyst keeps a Hispanic applicant who gave no race,
whom the ethnicity places in the Hispanic group; the group columns already do. A test needs
``MIN_GROUP`` rows of each group (loans, for pricing) and, for denial, a denial in the model.
A test's p-value is two-sided, set to 1 when the estimate favours the compared group (an analyst
looks for disadvantage); Holm's step-down adjustment runs over the lender's computed tests.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from reasoner.lending.evidence.statistics import MIN_GROUP, holm_adjusted
from reasoner.lending.evidence.tables import HISPANIC, WHITE

__all__ = ["BASELINE_COLUMNS", "COMPARISONS", "CONTROLS", "DTI_EDGES", "analyst_baseline"]

# (name, group column, reference, compared)
COMPARISONS = (
    ("minority", "minority", WHITE, "Minority"),
    ("Black", "race_ethnicity", WHITE, "Black or African American"),
    ("Hispanic", "race_ethnicity", WHITE, HISPANIC),
    ("Asian", "race_ethnicity", WHITE, "Asian"),
    ("female", "sex", "Male", "Female"),
)
CONTROLS = ("log income", "CLTV", "DTI categories", "loan type", "loan purpose")
DTI_EDGES = (20.0, 30.0, 36.0, 40.0, 45.0, 50.0, 60.0)  # the cleaned DTI (buckets read as numbers)
PENALTY_C = 100.0  # inverse L2 strength on standardised controls: nearly maximum likelihood
BASELINE_COLUMNS = ("lei", "tests", "p_value", "p_adjusted", "strongest", "reason")
KEPT_EXCLUSIONS = ("", "race not available")
NOT_COMPUTED = f"no test computable (fewer than {MIN_GROUP} applications of a group, or no denial)"


def analyst_baseline(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per lender of ``frame`` (sorted by LEI): ``tests`` computed, the smallest raw
    ``p_value`` and Holm-adjusted ``p_adjusted`` (NaN when no test could be computed), the
    ``strongest`` test ('denial: Black', 'pricing: female' …) and why nothing was computed."""
    lei = frame["lei"].astype("str").to_numpy(dtype=object, na_value="")
    kept = frame["excluded"].isin(KEPT_EXCLUSIONS).to_numpy(dtype=bool) & (lei != "")
    decided = kept & frame["decision"].isin(("approved", "denied")).to_numpy(dtype=bool)
    denied = frame["decision"].eq("denied").to_numpy(dtype=bool)
    spread = frame["rate_spread"].to_numpy(dtype=np.float64, na_value=np.nan)
    originated = kept & frame["action_taken"].eq(1).fillna(False).to_numpy(dtype=bool) & np.isfinite(spread)
    controls = _controls(frame)
    complete = np.isfinite(controls).all(axis=1)
    leis = np.array(sorted(set(lei[decided | originated].tolist())), dtype=object)
    lender = np.searchsorted(leis, lei)
    lender = np.where(np.isin(lei, leis), lender, -1)

    tests: list[tuple[int, str, float]] = []  # lender, test, p
    for name, column, reference, compared in COMPARISONS:
        group = frame[column].astype("str").to_numpy(dtype=object, na_value="")
        in_comparison = np.isin(group, (reference, compared)) & complete
        indicator = (group == compared).astype(np.float64)
        for outcome_rows, kind in ((decided, "denial"), (originated, "pricing")):
            rows = np.flatnonzero(outcome_rows & in_comparison)
            order = np.argsort(lender[rows], kind="stable")
            rows = rows[order]
            bounds = np.searchsorted(lender[rows], np.arange(leis.size + 1))
            for index in range(leis.size):
                chosen = rows[bounds[index] : bounds[index + 1]]
                if chosen.size == 0:
                    continue
                x = indicator[chosen]
                if min(int(x.sum()), int(x.size - x.sum())) < MIN_GROUP:
                    continue
                if kind == "denial":
                    p = _denial_test(x, controls[chosen], denied[chosen])
                else:
                    p = _pricing_test(x, controls[chosen], spread[chosen])
                if np.isfinite(p):
                    tests.append((index, f"{kind}: {name}", p))
    return _per_lender(leis, tests)


def _controls(frame: pd.DataFrame) -> np.ndarray:
    """log income, CLTV and indicator columns of the categorical controls (first level left out)."""
    income = frame["income"].to_numpy(dtype=np.float64, na_value=np.nan)
    dti = frame["dti"].to_numpy(dtype=np.float64, na_value=np.nan)
    columns = [
        np.log(np.where(income > 0, income, np.nan)),
        frame["cltv"].to_numpy(dtype=np.float64, na_value=np.nan),
    ]
    category = np.where(np.isfinite(dti), np.searchsorted(np.array(DTI_EDGES), dti, side="right"), -1)
    columns += [np.where(category < 0, np.nan, category == level) for level in range(1, len(DTI_EDGES) + 1)]
    loan_type = frame["loan_type"].to_numpy(dtype=np.float64, na_value=np.nan)
    columns += [np.where(np.isfinite(loan_type), loan_type == code, np.nan) for code in (2, 3, 4)]
    purpose = frame["loan_purpose"].to_numpy(dtype=np.float64, na_value=np.nan)
    columns += [np.where(np.isfinite(purpose), np.isin(purpose, codes), np.nan) for codes in ((31, 32), (2,), (4, 5))]
    return np.column_stack(columns).astype(np.float64)


def _standardised(controls: np.ndarray) -> np.ndarray:
    """Controls centred and scaled; a constant column (a category the lender lacks) dropped."""
    spread = controls.std(axis=0)
    keep = spread > 1e-12
    return (controls[:, keep] - controls[:, keep].mean(axis=0)) / spread[keep]


def _denial_test(indicator: np.ndarray, controls: np.ndarray, denied: np.ndarray) -> float:
    if not denied.any() or denied.all():
        return np.nan
    design = np.column_stack([indicator, _standardised(controls)])
    model = LogisticRegression(C=PENALTY_C, solver="newton-cholesky", max_iter=200)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(design, denied)
    fitted = model.predict_proba(design)[:, 1]
    full = np.column_stack([np.ones(indicator.size), design])
    information = (full * (fitted * (1 - fitted))[:, None]).T @ full
    information[1:, 1:] += np.eye(design.shape[1]) / PENALTY_C
    covariance = np.linalg.pinv(information, hermitian=True)
    estimate, error = float(model.coef_[0][0]), float(np.sqrt(max(covariance[1, 1], 0.0)))
    return _adverse_p(estimate, estimate / error if error > 0 else np.nan, None)


def _pricing_test(indicator: np.ndarray, controls: np.ndarray, spread: np.ndarray) -> float:
    design = np.column_stack([np.ones(indicator.size), indicator, _standardised(controls)])
    gram = design.T @ design
    eigen = np.linalg.eigvalsh(gram)
    rank = int(np.count_nonzero(eigen > eigen.max() * 1e-10))
    freedom = indicator.size - rank
    bread = np.linalg.pinv(gram, hermitian=True)  # a rank-deficient set of controls: minimum norm
    others = [column for column in range(design.shape[1]) if column != 1]
    side = gram[1, others]
    left = gram[1, 1] - side @ np.linalg.pinv(gram[np.ix_(others, others)], hermitian=True) @ side
    if freedom < 1 or not left > 1e-9 * gram[1, 1]:  # no residual freedom, or the group is collinear
        return np.nan
    coefficients = bread @ design.T @ spread
    residual = spread - design @ coefficients
    leverage = np.einsum("ij,jk,ik->i", design, bread, design)
    weight = residual**2 / np.maximum(1 - leverage, 1e-12) ** 2  # HC3
    covariance = bread @ (design.T * weight) @ design @ bread
    estimate, error = float(coefficients[1]), float(np.sqrt(max(covariance[1, 1], 0.0)))
    return _adverse_p(estimate, estimate / error if error > 0 else np.nan, freedom)


def _adverse_p(estimate: float, statistic: float, freedom: int | None) -> float:
    """Two-sided p of the statistic, 1 when the estimate favours the compared group."""
    if not np.isfinite(statistic):
        return np.nan
    if estimate <= 0:
        return 1.0
    tail = stats.norm.sf(abs(statistic)) if freedom is None else stats.t.sf(abs(statistic), freedom)
    return float(min(1.0, 2 * tail))


def _per_lender(leis: np.ndarray, tests: Sequence[tuple[int, str, float]]) -> pd.DataFrame:
    if tests:
        lender = np.array([test[0] for test in tests], dtype=np.int64)
        names = np.array([test[1] for test in tests], dtype=object)
        p = np.array([test[2] for test in tests], dtype=np.float64)
        adjusted = holm_adjusted(p, lender)
    else:
        lender, names, p, adjusted = np.zeros(0, np.int64), np.zeros(0, object), np.zeros(0), np.zeros(0)
    counts = np.bincount(lender, minlength=leis.size)
    smallest = np.full(leis.size, np.nan)
    smallest_adjusted = np.full(leis.size, np.nan)
    strongest = np.full(leis.size, "", dtype=object)
    order = np.lexsort((names.astype(str), adjusted, lender))  # per lender: smallest adjusted p first
    first = order[np.r_[True, lender[order][1:] != lender[order][:-1]]] if order.size else order
    smallest_adjusted[lender[first]] = adjusted[first]
    strongest[lender[first]] = names[first]
    np.fmin.at(smallest, lender, p)
    return pd.DataFrame(
        {
            "lei": pd.Series(leis, dtype="str"),
            "tests": counts.astype(np.int64),
            "p_value": smallest,
            "p_adjusted": smallest_adjusted,
            "strongest": pd.Series(strongest, dtype="str"),
            "reason": pd.Series(np.where(counts == 0, NOT_COMPUTED, ""), dtype="str"),
        }
    )
