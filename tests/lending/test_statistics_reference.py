"""The per-lender fits against the code they replaced (issue 18, branch speed3).

``reference_*`` below are the fitting routines of ``statistics`` as they were before Newton
steps were solved by Cholesky factorisations (``_solve_information``, with the pseudo-inverse as
the fallback), the score was summed by ``_cross``'s per-unit products instead of ``np.bincount``,
and the HC3 leverages became one matrix product per unit: every step a pseudo-inverse, copied
unchanged. The new routines must give the same statistics to 1e-8 (relative on estimates,
standard errors and variances, absolute on p-values), the same statuses, on random units and on
degenerate ones: separation, collinear and constant covariates, tiny groups, a covariate the same
for every unit, weights, and units whose rows are not grouped. The interaction tests' scikit-learn
fits (branch fits3) are at the end. Branch stats6 replaced the pseudo-inverses of the least squares'
normal matrices and of the logistic fits' information (for the indicator's variance) by
``np.linalg.inv`` and a solve where a Cholesky factorisation passes: ``reference_least_squares`` and
``reference_logistic`` keep the pseudo-inverses.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from reasoner.lending import clean_hmda, synthesize
from reasoner.lending.evidence import statistics
from reasoner.lending.evidence.interaction import (
    CELLS,
    INTERACTION_COLUMNS,
    INTERACTIONS,
    Interaction,
    interaction_tests,
)
from reasoner.lending.evidence.interaction import RIDGE as INTERACTION_RIDGE
from reasoner.lending.evidence.interaction import Z95 as INTERACTION_Z95
from reasoner.lending.evidence.statistics import (
    COLLINEAR,
    DENIAL_COVARIATES,
    MAX_HALVINGS,
    MAX_NEWTON,
    MIN_GROUP,
    RIDGE,
    SEPARATION_LIMIT,
    Covariates,
    _design,
    _partial_variance,
    _penalty,
    _solve_information,
    _standardise,
    as_covariates,
    covariate_matrix,
    holm_adjusted,
    lender_denial_odds,
    one_blas_thread,
    pricing_disparity,
)
from reasoner.lending.evidence.tables import add_group_columns

RELATIVE = 1e-8
ABSOLUTE = 1e-8  # p-values


# --- the replaced code, as it was -------------------------------------------------------------


def reference_logistic(
    design: np.ndarray,
    outcome: np.ndarray,
    unit: np.ndarray,
    count: int,
    numeric: int = 0,
    weight: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One logistic regression per unit, all at once: the indicator's (column 1) estimate,
    its variance from the observed information, and a status (0 ok, 1 diverged, 2 not
    converged, 3 indicator collinear with the covariates). The ``numeric`` covariates after
    the indicator are unpenalised; the band and category indicators after them are not.
    ``weight``: per row, its weight in the likelihood (probability weights; none: 1 each)."""
    penalty = _penalty(design.shape[1], free=2 + numeric)
    beta, eta, status = reference_newton(design, outcome, unit, count, penalty, weight)
    fitted = special.expit(eta)
    curvature = fitted * (1 - fitted) if weight is None else weight * fitted * (1 - fitted)
    unpenalised = reference_cross(design, curvature, unit, count)
    information = unpenalised + np.diag(penalty)
    left = _partial_variance(information, 1)
    # Collinearity is judged without the penalty, which would hide a group identical to a category.
    explained = _partial_variance(unpenalised, 1, rcond=1e-10)
    collinear = (status == 0) & ~(explained > COLLINEAR * information[:, 1, 1])
    status[collinear] = 3
    with np.errstate(divide="ignore", invalid="ignore"):
        variance = np.where(status == 0, 1.0 / left, np.nan)
    return beta[:, 1], variance, status


def reference_newton(
    design: np.ndarray,
    outcome: np.ndarray,
    unit: np.ndarray,
    count: int,
    penalty: np.ndarray | None = None,
    weight: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Penalised maximum likelihood by Newton's method with step halving, one regression per
    unit: coefficients (units, width), the linear predictor per row, and a status per unit
    (0 converged, 1 diverged, 2 not converged). ``penalty``: per coefficient, the weight of
    ``-penalty * beta**2 / 2`` added to the log-likelihood (a Gaussian prior; none by default);
    ``weight``: per row, the weight of its log-likelihood term (none: 1 each)."""
    width = design.shape[1]
    if penalty is None:
        penalty = np.zeros(width)
    beta = np.zeros((count, width))
    status = np.zeros(count, dtype=np.int64)
    active = np.ones(count, dtype=bool)
    # Each unit's sums run over its own rows in their order (np.bincount adds sequentially), so an
    # iteration restricted to the rows of the units still moving gives those units the same bits;
    # a unit that stopped keeps its coefficients, log-likelihood and linear predictor.
    eta = np.empty(unit.size)

    def loglik(coefficients: np.ndarray, live: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        part_unit = unit[live]
        part_eta = np.einsum("ij,ij->i", design[live], coefficients[part_unit])
        prior = 0.5 * (coefficients**2) @ penalty
        term = outcome[live] * part_eta - np.logaddexp(0.0, part_eta)
        return np.bincount(part_unit, term if weight is None else weight[live] * term, count) - prior, part_eta

    live = np.arange(unit.size)
    current, eta[live] = loglik(beta, live)
    for _ in range(MAX_NEWTON):
        if not active.any():
            break
        live = live[active[unit[live]]]
        live_unit, live_design, live_eta = unit[live], design[live], eta[live]
        fitted = special.expit(live_eta)
        residual = outcome[live] - fitted if weight is None else weight[live] * (outcome[live] - fitted)
        gradient = (
            np.column_stack(
                [np.bincount(live_unit, live_design[:, column] * residual, count) for column in range(width)]
            )
            - beta * penalty
        )
        # Only the units still moving: each unit's matrices and step are its own, so the others are not needed.
        moving = np.flatnonzero(active)
        curvature = fitted * (1 - fitted) if weight is None else weight[live] * fitted * (1 - fitted)
        information = reference_cross(live_design, curvature, live_unit, count, only=active)[moving] + np.diag(penalty)
        step = np.zeros((count, width))
        step[moving] = np.einsum("uij,uj->ui", np.linalg.pinv(information, hermitian=True), gradient[moving])
        size = np.ones(count)
        for _ in range(MAX_HALVINGS):
            trial = beta + size[:, None] * step
            value, trial_eta = loglik(trial, live)
            worse = active & (value < current - 1e-12 * (1 + np.abs(current)))
            if not worse.any():
                break
            size[worse] /= 2
        beta, current[active], eta[live] = trial, value[active], trial_eta
        moved = np.abs(size[:, None] * step).max(axis=1)
        diverged = active & (np.abs(beta).max(axis=1) > SEPARATION_LIMIT)
        status[diverged] = 1
        active &= ~diverged & (moved >= 1e-8)
    status[active] = 2
    return beta, eta, status


def reference_least_squares(
    outcome: np.ndarray,
    indicator: np.ndarray,
    values: np.ndarray,
    unit: np.ndarray,
    count: int,
    numeric: int | None = None,
    weight: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per unit, least squares of outcome on intercept + indicator + covariates (centred within
    the unit, so the intercept drops out), the band and category indicators after the first
    ``numeric`` covariates penalised by ``RIDGE`` as in the logistic fits (plain OLS when there
    are none): the indicator's coefficient, its heteroskedasticity-robust standard error (HC3:
    White's sandwich with each residual divided by one minus its leverage, the variant that
    holds its size in small samples, Long & Ervin 2000), the residual degrees of freedom and a
    status (0 ok, 1 no degrees of freedom left, 2 indicator collinear with the covariates).
    ``weight``: weighted least squares (probability weights; sizes and degrees of freedom are sums
    of weights, each row's leverage and sandwich term carry its weight)."""
    width = values.shape[1]
    numeric = width if numeric is None else numeric
    sizes = np.bincount(unit, weight, minlength=count).astype(np.float64)
    design = np.column_stack([indicator.astype(np.float64), _standardise(values, unit, count)])
    safe_sizes = np.maximum(sizes, 1.0) if weight is None else np.where(sizes > 0, sizes, 1.0)
    columns = np.column_stack([design, outcome])
    weighted_columns = columns if weight is None else columns * weight[:, None]
    centred = (
        columns
        - (np.column_stack([np.bincount(unit, c, count) for c in weighted_columns.T]) / safe_sizes[:, None])[unit]
    )
    row_weight = np.ones(unit.size) if weight is None else weight
    sums = reference_cross(centred, row_weight, unit, count)  # (units, width + 2, width + 2), outcome last
    penalty = np.zeros(width + 1)
    penalty[1 + numeric :] = RIDGE
    normal = sums[:, :-1, :-1] + np.diag(penalty)
    inverse = np.linalg.pinv(normal, hermitian=True)
    beta = np.einsum("uij,uj->ui", inverse, sums[:, :-1, -1])
    rank = np.zeros(count, int)
    if width:  # eigenvalues above RANK_TOLERANCE of the largest (c10151f: numpy's default counted rounding)
        covariance = sums[:, 1:-1, 1:-1]
        largest = np.abs(np.linalg.eigvalsh(covariance)).max(axis=1)
        rank = np.linalg.matrix_rank(covariance, tol=statistics.RANK_TOLERANCE * largest, hermitian=True)
    # What of the indicator the covariates do not explain (a Schur complement), for collinearity:
    # without the penalty, which would hide a group identical to a category.
    left = _partial_variance(sums[:, :-1, :-1], 0, rcond=1e-10)
    x = centred[:, :-1]
    residual = centred[:, -1] - np.einsum("ij,ij->i", x, beta[unit])
    leverage = 1.0 / safe_sizes[unit] + reference_quadratic_forms(x, inverse, unit)
    if weight is not None:
        leverage = leverage * weight
        residual = residual * weight
    inflated = residual / np.maximum(1.0 - leverage, 1e-6)  # HC3: each residual over 1 - its leverage
    meat = reference_cross(x, inflated**2, unit, count)
    variance = np.einsum("ui,uij,uj->u", inverse[:, 0, :], meat, inverse[:, 0, :])
    df = sizes - 2 - rank
    status = np.select([df < 1, ~(left > COLLINEAR * sums[:, 0, 0])], [1, 2], 0)
    return beta[:, 0], np.sqrt(np.maximum(variance, 0.0)), df, status


def reference_quadratic_forms(x: np.ndarray, matrices: np.ndarray, unit: np.ndarray, chunk: int = 2048) -> np.ndarray:
    """Per row i, x_i' M x_i with M its unit's matrix: ``np.einsum("ij,ijk,ik->i")`` a chunk of rows
    at a time (each row's sum is computed alone, so the bits are those of one call), which spares
    the (rows, p, p) copy of the matrices that one call over all rows would make."""
    result = np.empty(x.shape[0])
    for start in range(0, x.shape[0], chunk):
        rows = slice(start, start + chunk)
        result[rows] = np.einsum("ij,ijk,ik->i", x[rows], matrices[unit[rows]], x[rows])
    return result


def reference_cross(
    design: np.ndarray, weight: np.ndarray, unit: np.ndarray, count: int, only: np.ndarray | None = None
) -> np.ndarray:
    """Per-unit weighted cross products sum_i w_i x_i x_i' as (units, p, p): one matrix product
    per unit over its rows in their order (a stable sort), so a unit's sums do not depend on
    the other units. ``only`` (a mask of units): the others are left zero."""
    width = design.shape[1]
    result = np.zeros((count, width, width))
    order = np.argsort(unit, kind="stable")
    bounds = np.searchsorted(unit[order], np.arange(count + 1))
    rows = design[order]
    weighted = rows * weight[order, None]
    with one_blas_thread():  # one thread: the same kernel, so the same sums, in every process
        present = bounds[1:] > bounds[:-1]
        for index in np.flatnonzero(present if only is None else present & only):
            start, stop = bounds[index], bounds[index + 1]
            result[index] = weighted[start:stop].T @ rows[start:stop]
    return result


# --- units ------------------------------------------------------------------------------------


CATEGORY_COLUMNS = np.array([-1, -1, -1, 0, 0, 0])  # units_of's covariates: three numeric, one category of three levels


def units_of(
    rng: np.random.Generator, sizes: list[int], numeric: int = 3, categories: int = 3
) -> dict[str, np.ndarray]:
    """Rows of units of the given sizes, shuffled (not grouped by unit): a group indicator, numeric
    covariates, one-hot categories (penalised) and a logistic outcome with a group effect."""
    unit = np.repeat(np.arange(len(sizes)), sizes)
    rng.shuffle(unit)
    rows = unit.size
    indicator = rng.random(rows) < 0.4
    values = np.column_stack([rng.normal(size=(rows, numeric)), np.eye(categories)[rng.integers(0, categories, rows)]])
    eta = -1.0 + 0.6 * indicator + values[:, :numeric] @ rng.normal(0, 0.7, numeric)
    outcome = (rng.random(rows) < special.expit(eta)).astype(np.float64)
    spread = 0.5 + 0.2 * indicator + values[:, :numeric] @ rng.normal(0, 0.3, numeric) + rng.normal(0, 0.4, rows)
    return {"unit": unit, "indicator": indicator, "values": values, "outcome": outcome, "spread": spread}


def degenerate_units(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Units 0-1 ordinary; 2 separated (denied exactly when in the group); 3 with two identical
    numeric covariates (collinear, unpenalised); 4 with a numeric covariate constant; 5 tiny (6
    rows); 6 whose group is one of the categories (collinear with it); 7 with a numeric covariate
    a multiple of another plus a constant. Covariate 2 is the same in every row of every unit."""
    data = units_of(rng, [300, 200, 120, 250, 150, 6, 200, 180])
    unit, values = data["unit"], data["values"]
    values[:, 2] = 1.5
    mine = unit == 2
    data["outcome"][mine] = data["indicator"][mine].astype(np.float64)
    mine = unit == 3
    values[mine, 1] = values[mine, 0]
    values[unit == 4, 0] = 7.0
    mine = unit == 6
    values[mine, 3:] = 0.0
    values[mine, 3] = data["indicator"][mine]
    mine = unit == 7
    values[mine, 1] = 3.0 * values[mine, 0] - 2.0
    return data


def warm_start(data: dict[str, np.ndarray], design: np.ndarray, weight: np.ndarray | None) -> np.ndarray:
    """The denial-odds table's starting point for these units, each its own lender: the fit on the
    covariates alone (as ``denial_probabilities``: unweighted, units of fewer than ``MIN_GROUP`` rows or
    one outcome left out) carried to the unit's scales."""
    unit, count, outcome = data["unit"], int(data["unit"].max()) + 1, data["outcome"]
    means, spread = statistics._scales(data["values"], unit, count)
    financial_design = np.column_stack([np.ones(unit.size), _standardise(data["values"], unit, count)])
    beta, _, status = statistics._newton(financial_design, outcome, unit, count, _penalty(design.shape[1] - 1, free=4))
    sizes, denials = np.bincount(unit, minlength=count), np.bincount(unit, outcome, count)
    fitted = (status == 0) & (sizes >= MIN_GROUP) & (denials > 0) & (denials < sizes)
    financial = statistics.Financial(fitted, means, spread, beta)
    start = statistics._warm_start(
        financial, np.arange(count), (means, spread), statistics._null_intercept(outcome, unit, count, weight)
    )
    assert np.isfinite(start).all()
    return start


def compare_logistic(
    data: dict[str, np.ndarray], weight: np.ndarray | None = None, *, warm: bool = False
) -> np.ndarray:
    """``_logistic`` against the replaced code, from zeros or (``warm``) from ``warm_start``."""
    unit, count, numeric = data["unit"], int(data["unit"].max()) + 1, 3
    design = _design(data["values"], data["indicator"], unit, count)
    expected = reference_logistic(design, data["outcome"], unit, count, numeric, weight)
    start = warm_start(data, design, weight) if warm else None
    found = statistics._logistic(
        design, data["outcome"], unit, count, numeric, weight, start=start, categories=CATEGORY_COLUMNS
    )
    np.testing.assert_array_equal(found[2], expected[2])
    good = expected[2] == 0
    np.testing.assert_allclose(found[0][good], expected[0][good], rtol=RELATIVE, atol=1e-12)
    np.testing.assert_allclose(found[1][good], expected[1][good], rtol=RELATIVE)
    p_found = 2 * stats.norm.sf(np.abs(found[0][good] / np.sqrt(found[1][good])))
    p_expected = 2 * stats.norm.sf(np.abs(expected[0][good] / np.sqrt(expected[1][good])))
    np.testing.assert_allclose(p_found, p_expected, rtol=0, atol=ABSOLUTE)
    assert np.isnan(found[1][~good]).all()
    status: np.ndarray = expected[2]
    return status


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_logistic_fits_match_the_pseudo_inverse_newton(seed: int) -> None:
    rng = np.random.default_rng(seed)
    data = units_of(rng, list(rng.integers(8, 600, 30)))
    assert (compare_logistic(data) == 0).sum() >= 25
    weight = rng.uniform(0.05, 1.0, data["unit"].size)
    compare_logistic(data, weight)
    assert (compare_logistic(data, warm=True) == 0).sum() >= 25  # from the financial fit: the same optimum
    compare_logistic(data, weight, warm=True)


def test_logistic_fits_match_on_degenerate_units() -> None:
    data = degenerate_units(np.random.default_rng(7))
    status = compare_logistic(data)
    assert status[2] == 1  # separated: diverged in both
    assert status[6] == 3  # the group is a category: collinear in both
    assert (status[[0, 1, 3, 4, 7]] == 0).all()  # collinear and constant covariates fitted all the same
    compare_logistic(data, np.random.default_rng(8).uniform(0.1, 1.0, data["unit"].size))
    warm = compare_logistic(data, warm=True)  # separated, collinear, constant and tiny units from a warm start
    assert warm[2] == 1 and warm[6] == 3 and (warm[[0, 1, 3, 4, 7]] == 0).all()
    compare_logistic(data, np.random.default_rng(8).uniform(0.1, 1.0, data["unit"].size), warm=True)


def test_warm_start_without_a_financial_fit_or_a_second_group() -> None:
    """A unit whose lender has no financial fit starts at its denial rate's logit and zeros, and
    converges to the same estimates; a unit with one group only is collinear from there as from zeros."""
    rng = np.random.default_rng(21)
    data = units_of(rng, [80, 60, 40])
    unit, count = data["unit"], 3
    data["indicator"][unit == 2] = False  # one group only
    design = _design(data["values"], data["indicator"], unit, count)
    scales = statistics._scales(data["values"], unit, count)
    intercept = statistics._null_intercept(data["outcome"], unit, count, None)
    rates = np.bincount(unit, data["outcome"], count) / np.bincount(unit, minlength=count)
    np.testing.assert_allclose(intercept, special.logit(rates), rtol=1e-12)
    start = statistics._warm_start(None, np.arange(count), scales, intercept)
    assert (start[:, 1:] == 0).all() and (start[:, 0] == intercept).all()
    compare_logistic(data)
    found = statistics._logistic(design, data["outcome"], unit, count, 3, start=start)
    expected = reference_logistic(design, data["outcome"], unit, count, 3)
    np.testing.assert_array_equal(found[2], expected[2])
    assert found[2][2] == 3 and (found[2][:2] == 0).all()
    good = expected[2] == 0
    np.testing.assert_allclose(found[0][good], expected[0][good], rtol=RELATIVE, atol=1e-12)


@pytest.mark.parametrize(("seed", "effect"), [(6, 4.0), (14, 6.0)])
def test_a_unit_wider_than_its_lender_diverges_only_as_it_did_from_zeros(
    seed: int, effect: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Units drawn from one lender's rows, rich in its few extreme values of a covariate (spread 3-4 times
    the lender's), with a strong effect of it: the lender's financial fit carried to such a unit starts
    Newton far out, and a coefficient passed the separation limit on the way where the fit from zeros
    converged (found in review). Those units are fitted again from zeros: the statuses are those of
    the fits from zeros, the estimates the same."""
    rng = np.random.default_rng(seed)
    n, count = 3000, 6
    values = np.column_stack([rng.normal(0, 0.02, n), rng.normal(size=(n, 2)), np.eye(3)[rng.integers(0, 3, n)]])
    extreme = rng.random(n) < 0.03
    values[extreme, 0] = rng.choice([-3.0, 3.0], extreme.sum())
    indicator = rng.random(n) < 0.4
    eta = -1.0 + effect * values[:, 0] + 0.6 * indicator + 0.5 * values[:, 1]
    outcome = (rng.random(n) < special.expit(eta)).astype(np.float64)
    lender = np.zeros(n, dtype=np.int64)
    means, spread = statistics._scales(values, lender, 1)
    financial_design = np.column_stack([np.ones(n), _standardise(values, lender, 1)])
    beta, _, fit = statistics._newton(financial_design, outcome, lender, 1, _penalty(values.shape[1] + 1, free=4))
    financial = statistics.Financial(fit == 0, means, spread, beta)
    unit = np.where(extreme | (rng.random(n) < 0.05), rng.integers(0, count, n), -1)
    rows = unit >= 0
    values, outcome, indicator, unit = values[rows], outcome[rows], indicator[rows], unit[rows]
    scales = statistics._scales(values, unit, count)
    design = _design(values, indicator, unit, count, scales)
    intercept = statistics._null_intercept(outcome, unit, count, None)
    start = statistics._warm_start(financial, np.zeros(count, dtype=np.int64), scales, intercept)
    expected = reference_logistic(design, outcome, unit, count, 2)
    newton, refits = statistics._newton, []

    def watched(*arguments: Any, **options: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if options.get("start") is None and len(arguments[2]) < unit.size:  # a fit of some units' rows from zeros
            refits.append(len(arguments[2]))
        return newton(*arguments, **options)

    monkeypatch.setattr(statistics, "_newton", watched)
    found = statistics._logistic(design, outcome, unit, count, 2, start=start)
    assert refits  # units diverged on the way from the warm start and were fitted again from zeros
    np.testing.assert_array_equal(found[2], expected[2])
    good = expected[2] == 0
    np.testing.assert_allclose(found[0][good], expected[0][good], rtol=RELATIVE, atol=1e-12)
    np.testing.assert_allclose(found[1][good], expected[1][good], rtol=RELATIVE)


def test_newton_on_ungrouped_rows_matches_and_returns_the_predictor_in_their_order() -> None:
    data = degenerate_units(np.random.default_rng(9))
    unit, count = data["unit"], int(data["unit"].max()) + 1
    design = np.column_stack([np.ones(unit.size), _standardise(data["values"], unit, count)])
    penalty = _penalty(design.shape[1], free=4)
    beta, eta, status = statistics._newton(design, data["outcome"], unit, count, penalty)
    old_beta, old_eta, old_status = reference_newton(design, data["outcome"], unit, count, penalty)
    np.testing.assert_array_equal(status, old_status)
    good = (status == 0)[unit]
    np.testing.assert_allclose(beta[status == 0], old_beta[status == 0], rtol=RELATIVE, atol=1e-10)
    np.testing.assert_allclose(eta[good], old_eta[good], rtol=RELATIVE, atol=1e-10)
    np.testing.assert_allclose(eta, np.einsum("ij,ij->i", design, beta[unit]), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_newton_skips_the_log_likelihood_only_where_step_halving_would_take_the_whole_step(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Newton's steps that move no linear predictor by more than ``SAFE_REACH`` are taken without
    evaluating the log-likelihood (branch stats6): the same bits as evaluating it before every step
    (``SAFE_REACH`` below 0), from zeros and from warm starts, with and without weights, on random
    and degenerate units (separation, collinear, constant, tiny), and some steps are skipped."""
    rng = np.random.default_rng(seed)
    skipped = []
    safe_steps = statistics._safe_steps

    def counted(change: np.ndarray, unit: np.ndarray, count: int) -> np.ndarray:
        safe: np.ndarray = safe_steps(change, unit, count)
        skipped.append(int(safe[np.bincount(unit, minlength=count) > 0].sum()))
        return safe

    for data in (units_of(rng, list(rng.integers(8, 600, 20))), degenerate_units(rng)):
        unit, count = data["unit"], int(data["unit"].max()) + 1
        design = _design(data["values"], data["indicator"], unit, count)
        penalty = _penalty(design.shape[1], free=5)
        for weight in (None, rng.uniform(0.05, 1.0, unit.size)):
            for start in (None, warm_start(data, design, weight), rng.normal(0, 2.0, (count, design.shape[1]))):
                arguments = (design, data["outcome"], unit, count, penalty, weight)
                monkeypatch.setattr(statistics, "_safe_steps", counted)
                found = statistics._newton(*arguments, start=start)
                monkeypatch.setattr(statistics, "SAFE_REACH", -1.0)  # every step tested, as before
                expected = statistics._newton(*arguments, start=start)
                monkeypatch.undo()
                for new, old in zip(found, expected, strict=True):
                    np.testing.assert_array_equal(new, old)
    assert sum(skipped) > 0


def test_solve_information_by_cholesky_and_by_the_pseudo_inverse_where_it_fails() -> None:
    rng = np.random.default_rng(11)
    base = rng.normal(size=(4, 40, 5))
    matrices = np.einsum("uri,urj->uij", base, base)
    matrices[1, 2, :] = matrices[1, :, 2] = 0.0  # a constant covariate: no step there
    matrices[2] = np.outer(base[2, 0], base[2, 0]) + np.outer(base[2, 1], base[2, 1])  # rank 2: pseudo-inverse
    matrices[3, 0, 0] = -1.0  # not positive semi-definite: the factorisation fails, pseudo-inverse
    gradient = rng.normal(size=(4, 5))
    gradient[1, 2] = 0.0
    gradient[2] = matrices[2] @ rng.normal(size=5)  # in the range, as a score is
    step = _solve_information(matrices, gradient)
    pinv = np.einsum("uij,uj->ui", np.linalg.pinv(matrices, hermitian=True), gradient)
    np.testing.assert_allclose(step, pinv, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(step[0], np.linalg.solve(matrices[0], gradient[0]), rtol=1e-12)
    assert step[1, 2] == 0.0
    for fallback in (2, 3):  # the pseudo-inverse's answer to the last digits (a solve would be far off)
        expected = np.linalg.pinv(matrices[fallback], hermitian=True) @ gradient[fallback]
        np.testing.assert_allclose(step[fallback], expected, rtol=1e-14, atol=1e-15)
    assert _solve_information(matrices[:0], gradient[:0]).shape == (0, 5)


def test_inverse_and_schur_complement_by_cholesky_match_the_pseudo_inverse() -> None:
    """``_inverse`` and ``_schur_complement`` (branch stats6: ``np.linalg.inv`` and a solve where the
    Cholesky factorisation passes) against the pseudo-inverse they replaced: to 1e-10 on well-posed
    matrices and ones with a column zero throughout (zeros there, as the pseudo-inverse gives), the
    pseudo-inverse itself where the factorisation fails (collinear columns, not semi-definite)."""
    rng = np.random.default_rng(23)
    base = rng.normal(size=(5, 60, 6))
    matrices = np.einsum("uri,urj->uij", base, base) + np.diag([0.0, 0.0, 0.0, 1.0, 1.0, 1.0])
    matrices[1, 2, :] = matrices[1, :, 2] = 0.0  # a constant covariate
    matrices[2] = np.outer(base[2, 0], base[2, 0]) + np.outer(base[2, 1], base[2, 1])  # rank 2
    matrices[3, :, 4] = matrices[3, :, 3]  # two identical columns
    matrices[3, 4, :] = matrices[3, 3, :]
    matrices[4, 0, 0] = -1.0  # not positive semi-definite
    pinv = np.linalg.pinv(matrices, hermitian=True)
    found = statistics._inverse(matrices)
    np.testing.assert_allclose(found[:2], pinv[:2], rtol=1e-10, atol=1e-12)
    assert (found[1, 2, :] == 0).all() and (found[1, :, 2] == 0).all()
    np.testing.assert_array_equal(found[2:], pinv[2:])  # the fallback: the pseudo-inverse's bits
    for index in (0, 1, 3):
        expected = _partial_variance(matrices, index)
        left = statistics._schur_complement(matrices, index)
        np.testing.assert_allclose(left[:2], expected[:2], rtol=1e-10)
        np.testing.assert_array_equal(left[2:], expected[2:])
    assert statistics._schur_complement(matrices, 2)[1] == 0.0  # a column zero throughout: nothing left
    assert statistics._inverse(matrices[:0]).shape == (0, 6, 6)


def test_explained_variance_without_a_base_level_matches_the_pseudo_inverse() -> None:
    """``_explained`` (branch stats6: each category's first varying level left out, the rest by
    Cholesky) against ``_partial_variance(..., rcond=1e-10)`` of the cross products of standardised
    designs: two categories, a level constant in a unit, a group identical to a level (nothing left
    to it: collinear in both), a unit where one level alone varies (not left out), collinear numeric
    covariates (the pseudo-inverse, as before)."""
    rng = np.random.default_rng(29)
    units, rows = 6, 400
    unit = np.repeat(np.arange(units), rows)
    group = (rng.random(unit.size) < 0.4).astype(np.float64)
    numeric = rng.normal(size=(unit.size, 2))
    first = np.eye(3)[rng.integers(0, 3, unit.size)]
    second = np.eye(4)[rng.integers(0, 4, unit.size)]
    mine = unit == 1
    second[mine] = np.eye(4)[rng.integers(0, 2, mine.sum())]  # levels 2 and 3 constant (0) in unit 1
    mine = unit == 2
    first[mine] = np.eye(3)[np.where(group[mine] > 0, 0, rng.integers(1, 3, mine.sum()))]
    group[mine] = first[mine, 0]  # the group is the first level
    mine = unit == 3
    first[mine] = 0.0
    first[mine, 1] = rng.random(mine.sum()) < 0.5  # one level alone varies: not a category's levels here
    mine = unit == 4
    numeric[mine, 1] = 2.0 * numeric[mine, 0] + 1.0  # collinear numeric covariates
    values = np.column_stack([numeric, first, second])
    design = np.column_stack([np.ones(unit.size), group, _standardise(values, unit, units)])
    weight = rng.uniform(0.05, 0.25, unit.size)
    matrices = statistics._cross(design, weight, unit, units)
    categories = statistics._column_categories(np.array([-1, -1, 0, 0, 0, 1, 1, 1, 1]), design.shape[1], 2)
    left, factored = statistics._explained(matrices, 1, categories)
    expected = _partial_variance(matrices, 1, rcond=1e-10)
    assert factored.tolist() == [True, True, False, True, False, True]  # 2: collinear with the group, 4: numeric
    np.testing.assert_allclose(left[factored], expected[factored], rtol=1e-9)
    assert expected[2] <= COLLINEAR * matrices[2, 1, 1]  # the group identical to a level: nothing left
    assert (left[[0, 1, 3, 5]] > 0.5 * matrices[[0, 1, 3, 5], 1, 1]).all()


def compare_least_squares(data: dict[str, np.ndarray], weight: np.ndarray | None = None) -> np.ndarray:
    unit, count = data["unit"], int(data["unit"].max()) + 1
    arguments = (data["spread"], data["indicator"], data["values"], unit, count, 3, weight)
    gap, error, df, status = statistics._least_squares(*arguments, categories=CATEGORY_COLUMNS)
    old_gap, old_error, old_df, old_status = reference_least_squares(*arguments)
    np.testing.assert_array_equal(status, old_status)
    np.testing.assert_array_equal(df, old_df)
    good = old_status == 0
    np.testing.assert_allclose(gap[good], old_gap[good], rtol=RELATIVE, atol=1e-12)
    np.testing.assert_allclose(error[good], old_error[good], rtol=RELATIVE)
    p_value = 2 * stats.t.sf(np.abs(gap[good] / error[good]), df[good])
    old_p_value = 2 * stats.t.sf(np.abs(old_gap[good] / old_error[good]), old_df[good])
    np.testing.assert_allclose(p_value, old_p_value, rtol=0, atol=ABSOLUTE)
    return old_status


@pytest.mark.parametrize("seed", [1, 2])
def test_least_squares_match_the_one_call_leverages(seed: int) -> None:
    rng = np.random.default_rng(seed)
    data = units_of(rng, list(rng.integers(8, 600, 30)))
    assert (compare_least_squares(data) == 0).all()
    compare_least_squares(data, rng.uniform(0.05, 1.0, data["unit"].size))


def test_least_squares_match_on_degenerate_units() -> None:
    data = degenerate_units(np.random.default_rng(12))
    status = compare_least_squares(data)
    assert status[6] == 2 and (status[[0, 1, 3, 4, 7]] == 0).all()
    tiny = units_of(np.random.default_rng(14), [200, 4, 9])  # 4 rows for 6 covariates: no degrees of freedom
    assert compare_least_squares(tiny)[1] == 1
    compare_least_squares(data, np.random.default_rng(13).uniform(0.1, 1.0, data["unit"].size))


def test_least_squares_of_values_standardised_by_the_caller_give_the_same_bits() -> None:
    """``pricing_disparity`` hands ``_least_squares`` the covariates standardised from ``_centred_scales``'
    centred values (``standardised=True``): the bits of the values given as they are, grouped by unit or
    not, weighted or not, degenerate units included."""
    data = degenerate_units(np.random.default_rng(15))
    for grouped in (False, True):
        order = np.argsort(data["unit"], kind="stable") if grouped else np.arange(data["unit"].size)
        unit, values = data["unit"][order], data["values"][order]
        count = int(unit.max()) + 1
        _, spread, centred = statistics._centred_scales(values, unit, count)
        for weight in (None, np.random.default_rng(16).uniform(0.1, 1.0, unit.size)):
            arguments = (data["spread"][order], data["indicator"][order])
            given = statistics._least_squares(
                *arguments, values, unit, count, 3, weight, categories=CATEGORY_COLUMNS
            )
            standardised = statistics._least_squares(
                *arguments, centred / spread[unit], unit, count, 3, weight, categories=CATEGORY_COLUMNS,
                standardised=True,
            )
            for new, old in zip(standardised, given, strict=True):
                assert new.tobytes() == old.tobytes()


@pytest.fixture(scope="module")
def register() -> pd.DataFrame:
    raw, _ = synthesize(6_000, 24, 5)
    return clean_hmda(raw, "synth").frame


def test_lender_tables_match_the_replaced_code(register: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both comparison tables of a synthetic register, every lender, as the replaced code gives them."""
    groups = ("Black or African American", "Asian")
    covariates = statistics.Covariates(
        numeric=("income", "dti", "cltv", "loan_amount"), categorical=("loan_type",), bands=(("dti", (36.0, 43.0)),)
    )
    odds = lender_denial_odds(register, "race", "White", groups, covariates)
    pricing = pricing_disparity(register, "race", "White", groups, covariates)
    monkeypatch.setattr(  # from zeros, where the replaced code started
        statistics, "_logistic", lambda *arguments, start=None, categories=None: reference_logistic(*arguments)
    )
    monkeypatch.setattr(  # the scales it is given are those it computes; values given standardised it standardises
        statistics, "_least_squares",  # again (their means ~1e-17, their spreads ~1: the same fit to ~1e-15)
        lambda *arguments, scales=None, categories=None, standardised=False: reference_least_squares(*arguments),
    )
    old_odds = lender_denial_odds(register, "race", "White", groups, covariates)
    old_pricing = pricing_disparity(register, "race", "White", groups, covariates)
    for new, old, estimate in ((odds, old_odds, "log_odds_ratio"), (pricing, old_pricing, "adjusted_gap")):
        assert new["reason"].tolist() == old["reason"].tolist()
        assert new[estimate].notna().sum() >= 20
        for column in (estimate, "standard_error", "ci_low", "ci_high"):
            np.testing.assert_allclose(new[column], old[column], rtol=RELATIVE, atol=1e-12)
        np.testing.assert_allclose(new["p_value"], old["p_value"], rtol=0, atol=ABSOLUTE)


# --- the exact matched-pair test (issue 18, branch fitspeed) ----------------------------------


def test_denial_probabilities_from_the_null_intercept_match_the_fits_from_zeros(
    register: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fit on the financials alone started at each lender's denial rate's logit (branch odds4)
    against Newton from zeros (as before): the same lenders fitted, probabilities to 1e-8."""
    covariates = statistics.Covariates(
        numeric=("income", "dti", "cltv", "loan_amount"), categorical=("loan_type",), bands=(("dti", (36.0, 43.0)),)
    )
    found = statistics.denial_probabilities(register, covariates)
    newton = statistics._newton
    monkeypatch.setattr(
        statistics, "_newton", lambda *arguments, start=None, **options: newton(*arguments, **options)
    )
    expected = statistics.denial_probabilities(register, covariates)
    np.testing.assert_array_equal(np.isnan(found), np.isnan(expected))
    assert np.isfinite(found).sum() > len(register) // 2
    np.testing.assert_allclose(found, expected, rtol=RELATIVE, atol=0)


def reference_poisson_binomial_test(unit: np.ndarray, chance: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """``statistics._poisson_binomial_test`` as it was: scipy's distributions, one lender at a time."""
    p_value = np.ones(observed.size)
    order = np.argsort(unit, kind="stable")
    bounds = np.searchsorted(unit[order], np.arange(observed.size + 1))
    for index in range(observed.size):
        trials = chance[order[bounds[index] : bounds[index + 1]]]
        if trials.size == 0:
            continue
        x = observed[index]
        if np.all(trials == trials[0]):
            below, above = stats.binom.cdf(x, trials.size, trials[0]), stats.binom.sf(x - 1, trials.size, trials[0])
        else:
            below, above = stats.poisson_binom.cdf(x, trials), stats.poisson_binom.sf(x - 1, trials)
        p_value[index] = min(1.0, 2 * min(float(below), float(above)))
    return p_value


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_poisson_binomial_test_gives_scipys_bits(seed: int, compiled: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every observed count of units of many sizes (none, one trial, equal trials, sizes in
    several classes, probabilities 0 and 1, rows not grouped by unit): the same bits as scipy, from
    scipy's compiled recursion and from the numpy recursion a scipy without it would take."""
    if not compiled:
        monkeypatch.setattr(statistics, "_scipy_poisson_binom", None)
    else:
        assert statistics._scipy_poisson_binom is not None
    rng = np.random.default_rng(seed)
    sizes = np.array([0, 1, 2, 3, 5, 8, 17, 40, 63, 64, 65, 150, 300])
    unit = rng.permutation(np.repeat(np.arange(sizes.size), sizes))
    chance = rng.random(unit.size)
    chance[unit == 4] = 0.5  # equal trials: the binomial
    chance[(unit == 6) & (rng.random(unit.size) < 0.3)] = 0.0
    chance[(unit == 7) & (rng.random(unit.size) < 0.3)] = 1.0
    chance[unit == 8] = np.round(chance[unit == 8], 1)
    for _ in range(12):
        observed = np.array([rng.integers(0, size + 1) for size in sizes])
        observed[rng.random(sizes.size) < 0.2] = 0
        new = statistics._poisson_binomial_test(unit, chance, observed)
        old = reference_poisson_binomial_test(unit, chance, observed)
        assert new.tobytes() == old.tobytes()
    extremes = statistics._poisson_binomial_test(unit, chance, sizes)  # every trial a success
    assert extremes.tobytes() == reference_poisson_binomial_test(unit, chance, sizes).tobytes()


def test_poisson_binomial_test_without_units() -> None:
    empty = np.empty(0, dtype=np.int64)
    assert statistics._poisson_binomial_test(empty, np.empty(0), empty).size == 0
    observed = np.array([0, 0], dtype=np.int64)
    assert statistics._poisson_binomial_test(empty, np.empty(0), observed).tolist() == [1.0, 1.0]


# --- the interaction tests (issue 18, branch fits3) -------------------------------------------
# ``reference_interaction_tests`` is ``interaction.interaction_tests`` as it was: scikit-learn's
# LogisticRegression (Newton-Cholesky, C = 1 / RIDGE, tol 1e-10) per lender and interaction,
# copied unchanged but for its name and the ``prepared`` argument (which gave the same bits).


def reference_interaction_tests(
    frame: pd.DataFrame,
    *,
    covariates: Sequence[str] | Covariates = DENIAL_COVARIATES,
    majority_minority_percent: float = 50.0,
    min_group: int = MIN_GROUP,
    interactions: Sequence[Interaction] = INTERACTIONS,
    polish: bool = False,
) -> pd.DataFrame:
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
    known = usable & np.isin(minority, ("Minority", "White non-Hispanic"))
    categories = set(as_covariates(covariates).categorical)
    groups = tuple(labels.index(name) if name in categories else -1 for name in labels)  # first column of a category
    known &= np.isfinite(values).all(axis=1)
    share = frame["tract_minority_pct"].to_numpy(dtype=np.float64, na_value=np.nan)
    seconds = {
        "sex": (frame["sex"].to_numpy(dtype=object, na_value=None) == "Female",
                np.isin(frame["sex"].to_numpy(dtype=object, na_value=None), ("Male", "Female"))),
        "tract": (share > majority_minority_percent, np.isfinite(share)),
    }
    denied = frame["decision"].to_numpy(dtype=object) == "denied"
    is_minority = minority == "Minority"
    rows = []
    with one_blas_thread():  # one BLAS thread: the same sums in every process
        for code in np.unique(codes[usable & (codes >= 0)]):  # lenders in LEI order
            lei, at = str(names[code]), codes == code
            for interaction in interactions:
                second, second_known = seconds[interaction.second]
                rows.append(
                    {"lei": lei, "interaction": interaction.name}
                    | reference_interaction_test(
                        denied, is_minority, second, values, at & known & second_known, min_group, groups, polish
                    )
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


def reference_interaction_test(
    denied: np.ndarray,
    minority: np.ndarray,
    second: np.ndarray,
    values: np.ndarray,
    rows: np.ndarray,
    min_group: int,
    groups: tuple[int, ...] = (),
    polish: bool = False,
) -> dict[str, object]:
    """The interaction test on ``rows`` (one lender): cell counts, denial rates and the estimate.
    ``polish`` (not in the replaced code): scikit-learn's estimate refined by plain Newton steps, so
    its digits beyond the solver's tolerance are the optimum's."""
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
    model = LogisticRegression(C=1.0 / INTERACTION_RIDGE, solver="newton-cholesky", tol=1e-10, max_iter=100)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        try:
            model.fit(design, y)
        except (ConvergenceWarning, ValueError, np.linalg.LinAlgError):
            return found | estimate | {"reason": "the regression did not converge (separation)"}
    coefficients = np.concatenate([model.intercept_, model.coef_[0]])
    if polish:
        coefficients = newton_polished(design, y, coefficients)
    if np.abs(coefficients[1:4]).max() > SEPARATION_LIMIT:
        return found | estimate | {"reason": "the regression did not converge (separation)"}
    full = np.column_stack([np.ones(len(design)), design])
    probability = special.expit(full @ coefficients) if polish else model.predict_proba(design)[:, 1]
    information = full.T @ (full * (probability * (1 - probability))[:, None])
    information[1:, 1:] += INTERACTION_RIDGE * np.eye(full.shape[1] - 1)  # the penalty (not on the intercept)
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
        "ci_low": float(np.exp(beta - INTERACTION_Z95 * error)),
        "ci_high": float(np.exp(beta + INTERACTION_Z95 * error)),
        "p_value": float(2 * stats.norm.sf(abs(beta) / error)),
        "reason": "",
    }


def newton_polished(design: np.ndarray, outcome: np.ndarray, coefficients: np.ndarray) -> np.ndarray:
    """Full Newton steps (intercept unpenalised, the ridge on the rest) from ``coefficients``
    until they stop moving: the optimum to the last digits from a point close to it."""
    full = np.column_stack([np.ones(len(design)), design])
    penalty = np.r_[0.0, np.full(design.shape[1], INTERACTION_RIDGE)]
    for _ in range(20):
        probability = special.expit(full @ coefficients)
        score = full.T @ (outcome - probability) - penalty * coefficients
        information = full.T @ (full * (probability * (1 - probability))[:, None]) + np.diag(penalty)
        step = np.linalg.solve(information, score)
        coefficients = coefficients + step
        if np.abs(step).max() < 1e-13 * max(1.0, np.abs(coefficients).max()):
            break
    return coefficients


def interaction_register(seed: int, lenders: int = 12) -> pd.DataFrame:
    """Lenders of 30-900 applications with a race effect, a sex and a tract effect and, at some, an
    interaction; DTI, CLTV, income, loan amount and loan type as covariates; then degenerate
    lenders: 0 separated (every minority man and White woman approved, the rest mixed), 1 with DTI
    constant, 2 with CLTV equal to DTI (collinear), 3 with one loan type (a constant category),
    4 with a tiny cell (three minority women), 5 whose minority women were all denied, 6 whose
    minority men were all approved."""
    rng = np.random.default_rng(seed)
    parts = []
    for lender in range(lenders):
        size = int(rng.integers(30, 900))
        minority = rng.random(size) < rng.uniform(0.2, 0.6)
        female = rng.random(size) < 0.5
        tract = rng.uniform(0, 100, size)
        dti = rng.normal(35, 8, size)
        cltv = rng.normal(80, 10, size)
        loan_type = rng.choice(["Conventional", "FHA", "VA"], size, p=[0.6, 0.3, 0.1])
        logit = (
            -1.5 + 0.05 * (dti - 35) + 0.02 * (cltv - 80) + 0.6 * minority + 0.2 * female + 0.3 * (tract > 50)
            + rng.choice([0.0, 0.0, 1.0]) * (minority & female) + 0.4 * (loan_type == "FHA")
        )
        denied = rng.random(size) < special.expit(logit)
        if lender == 0:  # minority men and White women all approved: the interaction diverges
            denied[minority != female] = False
        if lender == 1:
            dti[:] = 40.0
        if lender == 2:
            cltv = dti.copy()
        if lender == 3:
            loan_type[:] = "Conventional"
        if lender == 4:
            female[np.flatnonzero(minority & female)[3:]] = False
        if lender == 5:
            denied[minority & female] = True
        if lender == 6:  # minority men all approved: near separation, an odds ratio of about 10^4
            denied[minority & ~female] = False
        parts.append(
            pd.DataFrame(
                {
                    "lei": f"LENDER{lender:02d}",
                    "excluded": np.where(rng.random(size) < 0.03, "withdrawn", ""),
                    "decision": np.where(denied, "denied", "approved"),
                    "race": np.where(minority, "Black or African American", "White"),
                    "ethnicity": "Not Hispanic or Latino",
                    "sex": np.where(female, "Female", "Male"),
                    "tract_minority_pct": np.where(rng.random(size) < 0.02, np.nan, tract),
                    "income": rng.lognormal(11, 0.4, size),
                    "dti": dti,
                    "cltv": cltv,
                    "loan_amount": rng.lognormal(12, 0.4, size),
                    "loan_type": loan_type,
                }
            )
        )
    frame = pd.concat(parts, ignore_index=True)
    frame.insert(0, "application_id", [f"A{number}" for number in rng.permutation(len(frame))])
    return add_group_columns(frame, 50.0)


INTERACTION_MODEL = Covariates(numeric=("income", "dti", "cltv", "loan_amount"), categorical=("loan_type",))


def compare_interactions(
    frame: pd.DataFrame, model: Covariates = INTERACTION_MODEL, min_group: int = 5
) -> pd.DataFrame:
    """The new table against the replaced code's: the same columns, dtypes, counts, rates and
    reasons; estimates to 1e-8 (relative), p-values to 1e-8 (absolute)."""
    new = interaction_tests(frame, covariates=model, min_group=min_group)
    old = reference_interaction_tests(frame, covariates=model, min_group=min_group)
    assert list(new.columns) == list(old.columns) and list(new.dtypes) == list(old.dtypes)
    assert new["reason"].tolist() == old["reason"].tolist()
    # scikit-learn stops where the mean score is below 1e-10: near separation (odds ratios of 10^4)
    # that leaves ~1e-7 of the estimate, so a lender beyond 1e-8 must match the optimum itself.
    close = np.all(
        [np.isclose(new[name], old[name], rtol=RELATIVE, atol=0, equal_nan=True) for name in ("odds_ratio", "ci_low")],
        axis=0,
    )
    if not close.all():
        polished = reference_interaction_tests(frame, covariates=model, min_group=min_group, polish=True)
        assert polished["reason"].tolist() == old["reason"].tolist()
        old = old.where(np.repeat(close[:, None], old.shape[1], axis=1), polished)
        for name in ("odds_ratio", "ci_low", "ci_high"):  # only the last digits
            np.testing.assert_allclose(old[name], polished[name], rtol=1e-5)
    for name in new.columns:
        if name in ("odds_ratio", "ci_low", "ci_high"):
            np.testing.assert_allclose(new[name], old[name], rtol=RELATIVE, atol=0)
        elif name in ("p_value", "p_adjusted"):
            np.testing.assert_allclose(new[name], old[name], rtol=0, atol=ABSOLUTE)
        else:
            pd.testing.assert_series_equal(new[name], old[name])
    return old


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_interaction_tests_match_the_scikit_learn_fits(seed: int) -> None:
    old = compare_interactions(interaction_register(seed))
    reasons = old.set_index(["lei", "interaction"])["reason"]
    assert (reasons == "").sum() >= 10
    assert reasons["LENDER04", "race_sex"] == "fewer than 5 applications in a cell"
    assert reasons["LENDER05", "race_sex"] == "no denial or no approval among applicants of both bases"
    assert reasons["LENDER00", "race_sex"] == "the regression did not converge (separation)"
    for lender in ("LENDER01", "LENDER02", "LENDER03"):  # constant, collinear covariates: estimated all the same
        assert reasons[lender, "race_sex"] == reasons[lender, "race_tract"] == ""


def test_interaction_tests_match_without_lenders_or_covariates() -> None:
    frame = interaction_register(4, lenders=6)
    compare_interactions(frame, Covariates())
    compare_interactions(frame, INTERACTION_MODEL, min_group=200)  # every cell too small
    empty = compare_interactions(frame.iloc[:0])
    assert empty.empty


@pytest.mark.parametrize("seed", [3, 4])
def test_interaction_fits_from_the_financial_fit_match_the_fits_from_zeros(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Newton started from each lender's fit on the financials (branch odds4) against the in-house
    fits from zeros it replaced (branch fits3), on registers with separation, a constant and a
    collinear covariate, a constant category and tiny cells, a category among the covariates (its
    base level carried to the intercept): the same reasons, counts and rates; estimates to 1e-8
    relative, p-values to 1e-8 absolute."""
    import reasoner.lending.evidence.interaction as interaction_module

    frame = interaction_register(seed)
    model = Covariates(
        numeric=("income", "dti", "cltv", "loan_amount"), categorical=("loan_type",), bands=(("dti", (36.0, 43.0)),)
    )
    new = interaction_tests(frame, covariates=model)
    starts: list[np.ndarray] = []
    original = interaction_module._start
    monkeypatch.setattr(interaction_module, "_start", lambda *a: starts.append(original(*a)) or starts[-1])
    assert interaction_tests(frame, covariates=model).equals(new)  # the same start, the same bits
    assert starts and np.abs(starts[0][:, 4:]).max() > 0.01  # a start from the financials, not zeros
    monkeypatch.setattr(interaction_module, "_start", lambda financial, lender, *rest: None)  # from zeros
    old = interaction_tests(frame, covariates=model)
    assert new["reason"].tolist() == old["reason"].tolist()
    assert (new["reason"] == "").sum() >= 12 and (new["reason"] != "").sum() >= 2
    for column in new.columns:
        if new[column].dtype.kind == "f" and column not in ("p_value", "p_adjusted"):
            np.testing.assert_allclose(new[column], old[column], rtol=RELATIVE, atol=0)
        elif new[column].dtype.kind == "f":
            np.testing.assert_allclose(new[column], old[column], rtol=0, atol=ABSOLUTE)
        else:
            assert new[column].equals(old[column]), column


def test_interaction_design_in_place_has_the_bits_of_the_stacked_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    """The interaction fits' design written column by column from the scales' centred values (branch
    tables11) against the columns ``np.column_stack`` made of the values centred again: the same bits, on
    a register with a constant covariate, a category (base levels left at 0) and units of every kind."""
    import reasoner.lending.evidence.interaction as interaction_module

    frame = interaction_register(3)
    model = Covariates(
        numeric=("income", "dti", "cltv", "loan_amount"), categorical=("loan_type",), bands=(("dti", (36.0, 43.0)),)
    )
    designs: list[tuple[np.ndarray, np.ndarray]] = []
    original_logistic, original_scales = interaction_module.unit_logistic, interaction_module.unit_scales
    gathered: list[np.ndarray] = []

    def scales(values: np.ndarray, unit: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        gathered.append(values)
        return original_scales(values, unit, count)

    def logistic(design: np.ndarray, outcome: np.ndarray, unit: np.ndarray, *rest: Any, **named: Any) -> Any:
        designs.append((design.copy(), unit))
        return original_logistic(design, outcome, unit, *rest, **named)

    monkeypatch.setattr(interaction_module, "unit_scales", scales)
    monkeypatch.setattr(interaction_module, "unit_logistic", logistic)
    interaction_tests(frame, covariates=model)
    ((design, unit),), (x,) = designs, gathered
    count = int(unit.max()) + 1
    means, spread, _ = statistics._centred_scales(x, unit, count)
    # A unit's column is estimated (not constant, not a category's base level) when any of its values is not 0.
    estimated = np.zeros((count, x.shape[1]), dtype=bool)
    np.logical_or.at(estimated, unit, design[:, 4:] != 0)
    varies = estimated[unit]
    stacked = np.where(varies, (x - means[unit]) / spread[unit], 0.0)
    assert design.flags.c_contiguous and design[:, 4:].tobytes() == stacked.tobytes()
    assert (design[:, 0] == 1.0).all() and (design[:, 3] == design[:, 1] * design[:, 2]).all()
    assert (~varies).any() and varies.any()


@pytest.mark.parametrize("width", [1, 2, 3, 7, 34])
def test_unit_sums_of_grouped_rows_have_the_bits_of_one_bincount_per_column(width: int) -> None:
    """``_unit_sums`` of rows grouped by unit sums each unit's block of rows (branch stats6): the
    bits of ``np.bincount`` per column (each unit's rows added in order), for units of one row,
    empty units, a block that starts anywhere in memory and values of very different sizes."""
    rng = np.random.default_rng(width)
    sizes = rng.integers(0, 3000, 40)
    sizes[[3, 9]] = 0
    sizes[[4, 5]] = 1
    unit = np.repeat(np.arange(sizes.size), sizes)
    values = rng.normal(size=(unit.size, width)) * np.exp(rng.normal(0, 6, (unit.size, 1)))
    expected = np.column_stack([np.bincount(unit, values[:, column], sizes.size) for column in range(width)])
    assert statistics._unit_sums(values, unit, sizes.size).tobytes() == expected.tobytes()
    assert statistics._unit_sums(np.asfortranarray(values), unit, sizes.size).tobytes() == expected.tobytes()
    shuffled = rng.permutation(unit.size)  # not grouped: one bincount over the cells, the same bits per unit
    expected = np.column_stack(
        [np.bincount(unit[shuffled], values[shuffled, column], sizes.size) for column in range(width)]
    )
    assert statistics._unit_sums(values[shuffled], unit[shuffled], sizes.size).tobytes() == expected.tobytes()


def test_linear_predictor_per_unit_block_has_the_bits_of_one_einsum_over_every_row() -> None:
    """``_linear`` (branch stats6: one ``einsum`` per unit's block of rows) against the einsum of
    every row with its unit's coefficients, on units of every size, empty ones and one-row ones."""
    rng = np.random.default_rng(17)
    for _ in range(60):
        count, width = int(rng.integers(1, 30)), int(rng.integers(1, 40))
        unit = np.sort(rng.integers(0, count, int(rng.integers(1, 2500))))
        design = rng.normal(size=(unit.size, width)) * np.exp(rng.normal(0, 3, (unit.size, 1)))
        coefficients = rng.normal(0, 2, (count, width))
        expected = np.einsum("ij,ij->i", design, coefficients[unit])
        assert statistics._linear(design, coefficients, unit, count).tobytes() == expected.tobytes()
        only = rng.random(count) < 0.5  # the moving units of a Newton step: theirs are the same bits
        rows = only[unit]
        found = statistics._linear(design, coefficients, unit, count, only=only)
        assert found[rows].tobytes() == expected[rows].tobytes()


@pytest.mark.parametrize("width", [1, 2, 30])
def test_scales_of_grouped_rows_have_the_bits_of_the_bincount_passes(width: int) -> None:
    """``_centred_scales`` of rows grouped by unit, one unit's block at a time (branch stats6), against
    the passes it replaced: means and spreads by ``np.bincount`` per column, the centred values by the
    means gathered per row; with empty units, one-row units and a constant column."""
    rng = np.random.default_rng(31 + width)
    sizes = rng.integers(0, 2000, 25)
    sizes[[2, 7]] = 0
    sizes[11] = 1
    unit = np.repeat(np.arange(sizes.size), sizes)
    values = rng.normal(size=(unit.size, width)) * np.exp(rng.normal(0, 4, (unit.size, 1)))
    values[unit == 5, 0] = 3.25
    count = sizes.size
    size = np.maximum(sizes, 1).astype(np.float64)
    means = np.column_stack([np.bincount(unit, values[:, k], count) for k in range(width)]) / size[:, None]
    centred = values - means[unit]
    squares = np.column_stack([np.bincount(unit, centred[:, k] ** 2, count) for k in range(width)])
    spread = np.sqrt(squares / size[:, None])
    spread = np.where(spread <= 1e-9 * np.maximum(np.abs(means), 1.0), np.inf, spread)
    found = statistics._centred_scales(values, unit, count)
    for new, old in zip(found, (means, spread, centred), strict=True):
        assert new.tobytes() == old.tobytes()
    assert np.isinf(found[1][5, 0])


def test_newton_takes_the_last_evaluated_trial_when_its_halvings_run_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """With a single evaluation allowed per step (``MAX_HALVINGS`` = 1), a step that lowers the
    log-likelihood is taken as it was evaluated, whole, as the reference took it: so from a far start
    the fit is plain Newton's (every step whole, ``SAFE_REACH`` infinite), not one of halved steps no
    one evaluated (found in review), whose log-likelihood the next step would be compared with."""
    rng = np.random.default_rng(21)
    data = units_of(rng, [60, 80, 120, 40])
    unit, count = data["unit"], int(data["unit"].max()) + 1
    design = _design(data["values"], data["indicator"], unit, count)
    start = rng.normal(0, 1.0, (count, design.shape[1]))  # far out: full steps from here lower the likelihood
    arguments = (design, data["outcome"], unit, count, np.zeros(design.shape[1]), None)
    monkeypatch.setattr(statistics, "MAX_HALVINGS", 1)
    with np.errstate(all="ignore"):
        beta, _, status = statistics._newton(*arguments, limit=np.inf, iterations=4, start=start)
        monkeypatch.setattr(statistics, "SAFE_REACH", np.inf)  # every step whole, never evaluated
        plain, _, plain_status = statistics._newton(*arguments, limit=np.inf, iterations=4, start=start)
    np.testing.assert_array_equal(status, plain_status)
    np.testing.assert_array_equal(beta, plain)


def test_least_squares_match_the_pseudo_inverse_when_nearly_collinear() -> None:
    """Two covariates correlated to 1 - 1e-9 in every unit: the normal matrix, though its Cholesky
    factorisation passes, is inverted by the pseudo-inverse (``INVERSE_PIVOT``), whose gap and HC3
    error are the reference's (np.linalg.inv's drifted 1e-5 relative and more; found in review)."""
    rng = np.random.default_rng(7)
    data = units_of(rng, [30, 13, 49, 200])
    values = data["values"].copy()
    values[:, 1] = values[:, 0] + 3e-5 * rng.normal(size=values.shape[0])
    compare_least_squares({**data, "values": values})


def test_odds_design_in_place_has_the_bits_of_the_stacked_columns() -> None:
    """``_odds_design`` (branch odds9: written in place, unit by unit) against the columns stacked from
    the divided centred values, for rows grouped and not, every row kept and some units left out,
    constant columns (an infinite spread) included."""
    rng = np.random.default_rng(23)
    for _ in range(20):
        count, width = int(rng.integers(1, 12)), int(rng.integers(1, 9))
        unit = np.sort(rng.integers(0, count, int(rng.integers(1, 400))))
        centred = rng.normal(size=(unit.size, width)) * np.exp(rng.normal(0, 2, (unit.size, 1)))
        spread = np.exp(rng.normal(0, 1, (count, width)))
        spread[rng.random((count, width)) < 0.2] = np.inf
        indicator = rng.random(unit.size) < 0.3
        for rows in (np.arange(unit.size), rng.permutation(unit.size)):
            for fit in (np.ones(unit.size, dtype=bool), (rng.random(count) < 0.6)[unit[rows]]):
                found = statistics._odds_design(centred[rows], spread, unit[rows], indicator[rows], fit)
                expected = np.column_stack(
                    [np.ones(int(fit.sum())), indicator[rows][fit].astype(np.float64),
                     centred[rows][fit] / spread[unit[rows][fit]]]
                )
                assert found.tobytes() == expected.tobytes()


def test_scipys_private_recursion_is_used_only_when_it_gives_the_numpy_bits() -> None:
    """scipy's compiled recursion is a private name: one that fails or gives other values is set aside
    at import (the numpy recursion is used), the real one is kept."""
    scipy_stats = pytest.importorskip("scipy.stats._stats_pythran")
    real = getattr(scipy_stats, "_poisson_binom", None)
    if real is not None:
        assert statistics._checked_compiled(real) is real
    assert statistics._checked_compiled(lambda at, trials, kind: np.zeros(2)) is None
    assert statistics._checked_compiled(lambda at, trials, kind: 1 / 0) is None
    assert statistics._checked_compiled(lambda at, trials: None) is None
    assert statistics._checked_compiled(None) is None


@pytest.mark.parametrize("rows", [0, 1, 218, 219, 4095, 4096, 4097, 10_000])
@pytest.mark.parametrize("width", [0, 1, 30, 32, 601])
def test_covariate_columns_stacked_by_blocks_are_column_stack(rows: int, width: int) -> None:
    """``_stacked`` (a block of rows at a time, ``STACK_VALUES`` values a block: 4,096 rows of 32 columns,
    218 of 601) gives ``np.column_stack``'s matrix: the same bytes, C-ordered floats, for block boundaries,
    a partial last block and no columns at all."""
    rng = np.random.default_rng(rows + width)
    columns = [rng.normal(size=rows) * 10.0 ** rng.integers(-300, 300) for _ in range(width)]
    columns[:1] = [np.where(rng.random(rows) < 0.1, np.nan, -0.0)] if width else []
    found = statistics._stacked(columns, rows)
    expected = np.column_stack(columns) if columns else np.empty((rows, 0))
    assert found.shape == expected.shape and found.dtype == np.float64 and found.flags.c_contiguous
    assert found.tobytes() == expected.tobytes()


def test_units_lenders_are_the_sorted_leis_of_the_rows_taking_part() -> None:
    """``_Units._lenders``: the lender codes present among the rows taking part (sorted, as ``np.unique``
    finds them), their LEIs, and per row its lender's position among them (-1 for a row not taking part
    or without an LEI), for lenders with no row taking part and rows without a code."""
    rng = np.random.default_rng(41)
    names = np.array([f"LEI{index:02d}" for index in range(12)], dtype=object)
    for _ in range(20):
        codes = rng.integers(-1, names.size, int(rng.integers(0, 300)))
        taking_part = rng.random(codes.size) < rng.random()
        units = statistics._Units.__new__(statistics._Units)
        units._lenders(taking_part, (codes, names))
        known = taking_part & (codes >= 0)
        present = np.unique(codes[known])
        assert units.codes.tolist() == present.tolist()
        assert units.leis.tolist() == names[present].tolist()
        expected = np.where(known, np.searchsorted(present, codes), -1)
        assert units.lender.dtype == np.int64 and units.lender.tolist() == expected.tolist()
