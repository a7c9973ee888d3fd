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
(``income`` and ``loan_amount`` as logarithms), standardised within the lender. Every coefficient
but the intercept carries a ridge of ``RIDGE`` (1e-4 on standardised columns, next to nothing:
it keeps the estimate defined when covariates are collinear). The model is fitted by Newton's
method with step halving for all lenders at once (``statistics.unit_logistic``, to convergence;
until 2026-12 scikit-learn's ``LogisticRegression``, Newton–Cholesky, per lender, which gives the
same estimates to its tolerance), each lender's sums over its rows in application-id order, so
that the result depends neither on the input's row order nor on the other lenders; the standard
error is the square root of the interaction's entry of the inverse of the penalised information
matrix X'WX at the estimate, the CI is Wald's and the p-value the two-sided Wald z test.
``p_adjusted`` is Holm's adjustment over the lender's interaction tests.

A lender is not tested for an interaction (NaN and a ``reason``) when one of the four cells has
fewer than ``min_group`` applications, when the cell of both bases has no denial or no approval
(its odds are not estimable), or when the fit does not converge in ``MAX_ITERATIONS`` Newton
steps, separates (a coefficient of the bases or their interaction beyond ``SEPARATION_LIMIT``)
or is singular.
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
    Financial,
    Prepared,
    as_covariates,
    holm_adjusted,
    one_blas_thread,
    stable_order,
    unit_logistic,
    unit_scales,
)

RIDGE = 1e-4  # L2 penalty of the interaction fit, on standardised columns
SEPARATED = "the regression did not converge (separation)"
MAX_ITERATIONS = 100  # Newton steps before a fit counts as not converging

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
    if prepared is None:
        prepared = Prepared(frame)  # the rows in id order: the fit's sums do not depend on the input's order
    elif prepared.source is not frame:
        raise ValueError("prepared: built for another frame")
    frame = prepared.frame
    model = as_covariates(covariates)
    values, labels = prepared.covariates(model)
    complete = prepared.complete(model)
    codes, names = prepared.lenders()
    # The masks from prepared's, which the comparisons' fits have mostly made already (no text column converted).
    usable = prepared.usable()
    is_minority = prepared.equals("minority", MINORITY)
    known = usable & (is_minority | prepared.equals("minority", REFERENCE))
    categories = set(as_covariates(covariates).categorical)
    groups = tuple(labels.index(name) if name in categories else -1 for name in labels)  # first column of a category
    known &= complete
    female = prepared.equals("sex", "Female")
    seconds = {
        "sex": (female, prepared.equals("sex", "Male") | female),
        "tract": _tract(frame, majority_minority_percent),
    }
    denied = prepared.denied()
    lenders = np.unique(codes[usable & (codes >= 0)])  # lenders in LEI order
    position = np.full(len(names), -1, dtype=np.int64)
    position[lenders] = np.arange(lenders.size)
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = [(np.empty(0, np.int64),) * 2 + (np.empty(0, bool),)]
    for index, interaction in enumerate(interactions):  # unit: lender × interaction, in that order
        second, second_known = seconds[interaction.second]
        rows = np.flatnonzero(known & second_known & (codes >= 0))
        parts.append((rows, position[codes[rows]] * len(interactions) + index, second[rows]))
    rows, unit, second = (np.concatenate(part) for part in zip(*parts, strict=True))
    order = stable_order(unit)  # grouped by unit, each unit's rows in id order
    rows, unit, second = rows[order], unit[order], second[order]
    with one_blas_thread():  # one BLAS thread: the same sums in every process
        table = _tests(
            _Rows(unit, lenders.size * len(interactions), denied[rows], is_minority[rows], second, values, rows),
            min_group,
            groups,
            (prepared.financial(model), np.repeat(lenders, len(interactions))),
        )
    leis = np.repeat(np.asarray(names, dtype=object)[lenders], len(interactions))
    table.insert(0, "interaction", pd.Series(np.tile([item.name for item in interactions], lenders.size), dtype="str"))
    table.insert(0, "lei", pd.Series(leis, dtype="str"))
    table["p_adjusted"] = holm_adjusted(table["p_value"].to_numpy(dtype=np.float64), table["lei"].to_numpy())
    return table


def _tract(frame: pd.DataFrame, percent: float) -> tuple[np.ndarray, np.ndarray]:
    share = frame["tract_minority_pct"].to_numpy(dtype=np.float64, na_value=np.nan)
    return share > percent, np.isfinite(share)


@dataclass(frozen=True, slots=True)
class _Rows:
    """The rows of every unit (lender × interaction), grouped by unit, each unit's in id order:
    their unit, denial, minority and second-basis indicators, and their positions ``rows`` in the
    covariate matrix ``values`` (gathered once, by ``_fits``, for the units it fits)."""

    unit: np.ndarray
    count: int
    denied: np.ndarray
    minority: np.ndarray
    second: np.ndarray
    values: np.ndarray
    rows: np.ndarray


def _tests(
    data: _Rows, min_group: int, groups: tuple[int, ...], financial: tuple[Financial, np.ndarray] | None = None
) -> pd.DataFrame:
    """The interaction test of every unit: cell counts, denial rates and the estimate (the
    columns of ``INTERACTION_COLUMNS`` from ``applications`` to ``reason``). ``financial``: the
    lenders' fit on the financials alone and each unit's lender code, where Newton starts (``_start``)."""
    count, unit = data.count, data.unit
    cell = unit * 4 + data.minority.astype(np.int64) + 2 * data.second.astype(np.int64)  # per unit: CELLS' order
    counts = np.bincount(cell, minlength=4 * count).reshape(count, 4)
    denials = np.bincount(cell, data.denied.astype(np.float64), 4 * count).reshape(count, 4)
    reason = np.full(count, "", dtype=object)
    reason[counts.min(axis=1) < min_group] = f"fewer than {min_group} applications in a cell"
    one_sided = (denials[:, 3] == 0) | (denials[:, 3] == counts[:, 3])
    reason[(reason == "") & one_sided] = "no denial or no approval among applicants of both bases"
    beta, variance, status = _fits(data, reason == "", groups, financial)
    texts = np.array(["", SEPARATED, "the bases are collinear with the covariates"], dtype=object)
    fitted = reason == ""
    reason[fitted] = texts[status[fitted]]
    good = reason == ""
    beta, error = np.where(good, beta, np.nan), np.where(good, np.sqrt(np.where(good, variance, 1.0)), np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        rates = np.where(counts > 0, denials / np.maximum(counts, 1), np.nan)
        p_value = 2 * stats.norm.sf(np.abs(beta) / error)
    columns: dict[str, object] = {"applications": counts.sum(axis=1).astype(np.int64)}
    columns |= {f"{name}_applications": counts[:, index].astype(np.int64) for index, name in enumerate(CELLS)}
    columns |= {f"{name}_denial_rate": rates[:, index] for index, name in enumerate(CELLS)}
    columns |= {
        "odds_ratio": np.exp(beta),
        "ci_low": np.exp(beta - Z95 * error),
        "ci_high": np.exp(beta + Z95 * error),
        "p_value": p_value,
        "reason": pd.array(reason, dtype="str"),
    }
    return pd.DataFrame(columns)


def _fits(
    data: _Rows, fit: np.ndarray, groups: tuple[int, ...], financial: tuple[Financial, np.ndarray] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per unit (those of ``fit``; NaN and status 0 elsewhere): the interaction's coefficient, its
    variance and a status (0 ok, 1 did not converge or separated, 2 collinear).

    The model of the module docstring, fitted for every unit at once by ``statistics.unit_logistic``
    (Newton's method to convergence) on a design of fixed width: intercept, the two bases, their
    product, then every covariate column standardised within the unit, a column left at zero where
    the unit cannot estimate it (constant at the lender, or the base level of a category: its first
    level that varies), which with the ridge on it gets the coefficient 0 and changes nothing else.
    Newton starts from the unit's lender's fit on the financials (``_start``; zeros without one)."""
    count = data.count
    beta = np.full(count, np.nan)
    variance = np.full(count, np.nan)
    status = np.zeros(count, dtype=np.int64)
    units = np.flatnonzero(fit)
    if units.size == 0:
        return beta, variance, status
    taken = fit[data.unit]
    unit = np.searchsorted(units, data.unit[taken])  # 0..units.size - 1, still grouped
    means, spread, centred = unit_scales(data.values[data.rows[taken]], unit, units.size)
    varies = np.isfinite(spread)  # a covariate constant at the lender explains nothing
    bases = []
    # A category's indicators sum to one: its first that varies at the lender is the base, left out.
    for group in sorted({group for group in groups if group >= 0}):
        columns = np.flatnonzero(np.asarray(groups) == group)
        first = np.argmax(varies[:, columns], axis=1)
        has = varies[:, columns].any(axis=1)
        varies[np.flatnonzero(has), columns[first[has]]] = False
        bases.append((columns, np.flatnonzero(has), columns[first[has]]))
    first, other = data.minority[taken], data.second[taken]
    # Written in place: intercept, the bases, their product, then the centred covariates over their spread (0 where
    # a column does not vary or is a base level), the values ``np.column_stack`` of those columns made.
    design = np.empty((unit.size, 4 + centred.shape[1]))
    design[:, 0] = 1.0
    design[:, 1], design[:, 2], design[:, 3] = first, other, first & other
    scaled = design[:, 4:]
    np.divide(centred, spread[unit], out=scaled)
    np.copyto(scaled, 0.0, where=~varies[unit])
    # A whisper of ridge (1e-4 on standardised columns): covariates collinear among themselves (an
    # AUS result that follows the credit-score bands) leave the interaction's estimate defined.
    penalty = np.full(design.shape[1], RIDGE)
    penalty[0] = 0.0  # not on the intercept
    outcome = data.denied[taken].astype(np.float64)
    # From the financial fit as it is: three Newton steps in the intercept and bases alone first
    # saved fewer full steps than they cost (0.46 against 0.42 CPU s over reg100k).
    start = None if financial is None else _start(financial[0], financial[1][units], (means, spread, varies), bases)
    coefficients, information, converged = unit_logistic(
        design, outcome, unit, units.size, penalty, iterations=MAX_ITERATIONS, start=start
    )
    failed = (converged != 0) | (np.abs(coefficients[:, 1:4]).max(axis=1) > SEPARATION_LIMIT)
    status[units[failed]] = 1
    inverse = _inverses(information)
    found = inverse[:, 3, 3]
    collinear = ~failed & ~(np.isfinite(found) & (found > 0))
    status[units[collinear]] = 2
    ok = ~failed & ~collinear
    beta[units[ok]] = coefficients[ok, 3]
    variance[units[ok]] = found[ok]
    return beta, variance, status


def _start(
    financial: Financial,
    lender: np.ndarray,
    scales: tuple[np.ndarray, np.ndarray, np.ndarray],
    bases: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> np.ndarray:
    """Newton's starting point for the units of ``_fits``' design (intercept, the two bases and
    their product at 0, then the covariates) of lender codes ``lender``: the lender's linear
    predictor on the financials alone, written in the unit's columns: a category's base level
    left out, its coefficient goes to the intercept and is taken from its other levels'
    (the indicators sum to one); a column constant in the unit adds its value's term to the
    intercept. A lender without a financial fit starts at zeros."""
    means, spread, varies = scales
    start = np.zeros((lender.size, 4 + means.shape[1]))
    known = financial.fitted[lender]
    if not known.any():
        return start
    raw, intercept = financial.raw(np.where(known, lender, 0))
    for columns, units, base in bases:
        taken = raw[units, base]
        raw[units[:, None], columns[None, :]] -= taken[:, None]
        intercept[units] += taken
    with np.errstate(invalid="ignore"):
        start[:, 4:] = np.where(varies, raw * spread, 0.0)
    start[:, 0] = intercept + (raw * means).sum(axis=1)
    start[~known] = 0.0
    return start


def _inverses(matrices: np.ndarray) -> np.ndarray:
    """The inverse of each matrix (NaN for a singular one)."""
    try:
        inverse: np.ndarray = np.linalg.inv(matrices)
        return inverse
    except np.linalg.LinAlgError:
        inverse = np.full(matrices.shape, np.nan)
        for index, matrix in enumerate(matrices):
            try:
                inverse[index] = np.linalg.inv(matrix)
            except np.linalg.LinAlgError:
                continue
        return inverse
