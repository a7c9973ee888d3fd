"""Per-lender statistical evidence of disparate treatment and pricing disparity (redlining: ``redlining``).

Every function takes a cleaned HMDA frame (``reasoner.lending.registers.hmda``), never raises for a
small or degenerate lender, and returns a DataFrame sorted by ``lei`` in which a statistic
that cannot be computed is NaN and the ``reason`` column says why ('' when all is well).

``lender_denial_odds(frame, group_column, reference, compared, covariates)``
    Per lender and compared group: applications and raw denial rates of both groups, and the
    odds ratio of denial for the compared group adjusted for the covariates: a logistic
    regression of ``denied`` on an intercept, the group indicator and the covariates
    (``income`` and ``loan_amount`` as logarithms; every covariate standardised within the
    lender's fit, which changes no odds ratio). Fitted by Newton's method with step halving,
    all lenders at once (sums per lender by ``np.bincount``). The standard error is the
    square root of the indicator's entry of the inverse observed information (X'WX at the
    estimate, computed as a Schur complement so that a covariate constant within a lender
    does no harm); the CI is Wald's (estimate ± 1.96 SE on the log scale) and the p-value
    the two-sided Wald z test. Separation (a group with no denial or no approval, or
    coefficients that diverge), too few applications and collinearity give NaN and a reason.

``matched_pair_test(pairs, frame, max_rank=1)``
    Per lender, over the pairs of ``similar_pairs`` (``b`` compared, ``a`` reference): pairs
    where both were approved or both denied (concordant), where only the reference applicant
    was approved (``reference_favoured``) and the reverse (``compared_favoured``), and the
    exact McNemar test: under no disparity a discordant pair favours either side with
    probability 1/2, so ``reference_favoured`` ~ Binomial(discordant, 1/2) and the two-sided
    p-value is ``min(1, 2 P(X <= min(n10, n01)))`` (equal to ``scipy.stats.binomtest``).
    Fisher's exact test would be wrong here: it treats the two groups as independent
    samples and ignores the pairing, which is the point of matching; concordant pairs carry
    no information about the disparity. ``max_rank`` (default 1) keeps each compared
    applicant's nearest pair only, so pairs do not share a compared applicant (a reference
    applicant may still serve several: matching is with replacement).

``pricing_disparity(frame, group_column, reference, compared, covariates)``
    Per lender and compared group, among originated loans (usable rows with
    ``action_taken == 1`` and a ``rate_spread``): mean rate spreads, the raw gap and the gap adjusted by ordinary least
    squares for the covariates (``loan_amount`` as a logarithm), with its 95% CI and the
    two-sided t test p-value (heteroskedasticity-robust HC3 standard errors: spreads vary
    more for some products and borrowers than others), for all lenders at
    once via the Frisch–Waugh–Lovell partialling of per-lender cross-product sums.

``cluster_outliers(frame, pairs, min_neighbours=5, share=0.8)``
    Compared applicants whose decision disagrees with most of their reference neighbours:
    denied while at least ``share`` of at least ``min_neighbours`` neighbours were approved,
    or approved while at least that share were denied.

Rows usable for treatment analyses are those with ``excluded == ''`` and a decision
'approved' or 'denied'. A lender's group with fewer than ``min_group`` (default
``MIN_GROUP``) applications or loans is not tested.
"""

from __future__ import annotations

import functools
import typing
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from scipy import special, stats
from threadpoolctl import ThreadpoolController

try:  # scipy's compiled Poisson-binomial recursion, which ``scipy.stats.poisson_binom.cdf`` calls
    from scipy.stats._stats_pythran import _poisson_binom as _scipy_poisson_binom
except ImportError:  # pragma: no cover - a scipy without it: the same recursion in numpy (``_poisson_binomial_cdf``)
    _scipy_poisson_binom = None

from reasoner.errors import UsageError, closest
from reasoner.lending.covariates import (
    MISSING_LEVEL,
    Covariates,
    as_covariates,
    category_levels,
    level_text,
)

__all__ = [
    "DENIAL_COVARIATES",
    "Covariates",
    "as_covariates",
    "covariate_matrix",
    "one_blas_thread",
    "MIN_GROUP",
    "PRICING_COVARIATES",
    "Columns",
    "Financial",
    "PairTexts",
    "Prepared",
    "application_index",
    "cluster_outlier_columns",
    "cluster_outliers",
    "denial_probabilities",
    "holm_adjusted",
    "lender_denial_odds",
    "lender_denial_odds_columns",
    "matched_pair_columns",
    "matched_pair_test",
    "pair_rows",
    "pricing_columns",
    "pricing_disparity",
    "stable_order",
    "unit_logistic",
    "unit_scales",
]

DENIAL_COVARIATES = ("income", "dti", "cltv", "loan_amount")
RIDGE = 1.0  # L2 penalty on the standardised band and category indicators' coefficients (never on the group's)
PRICING_COVARIATES = ("cltv", "dti", "loan_amount")
LOG_COVARIATES = ("income", "loan_amount", "property_value")  # skewed dollar amounts: logarithms
MIN_GROUP = 5
Z95 = float(stats.norm.ppf(0.975))
MAX_NEWTON = 50
MAX_HALVINGS = 30
SEPARATION_LIMIT = 15.0  # |coefficient| (log-odds per standard deviation) taken as divergence
COLLINEAR = 1e-9  # indicator variance left after the covariates, relative to its own


class Prepared:
    """A frame's rows in canonical order (``_canonical_positions``) and their covariate matrices, built
    once for the fits of several comparisons over the same rows (``audit_tables``): the
    covariates do not depend on the comparison. Pass it as ``prepared`` with that same frame
    object; a fit over another frame is refused."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.source = frame
        self._order = _canonical_positions(frame)
        self.frame = frame if self._order is None else frame.iloc[self._order]
        self._matrices: dict[Covariates, tuple[np.ndarray, tuple[str, ...]]] = {}
        self._complete: dict[Covariates, np.ndarray] = {}
        self._lenders: tuple[np.ndarray, np.ndarray] | None = None
        self._masks: dict[str, np.ndarray] = {}
        self._financial: dict[Covariates, Financial] = {}
        self._indicators: dict[tuple[str, tuple[str, ...] | None], list[np.ndarray]] = {}

    def sharing(self, frame: pd.DataFrame) -> Prepared:
        """The ``Prepared`` of ``frame``, this one's source with columns added (a weighted comparison's
        weight columns, ``tables.audit_tables``): the same rows in the same order, so it shares what this
        one built and builds (the canonical order, covariate matrices, masks, lenders, fits), none of
        which reads an added column; the added columns are taken into the canonical order."""
        source = self.source
        added = [name for name in frame.columns if name not in source.columns]
        if list(frame.columns[: source.shape[1]]) != list(source.columns) or not frame.index.equals(source.index):
            raise ValueError("prepared: shared with a frame that is not its source with columns added")
        shared = Prepared.__new__(Prepared)
        shared.source = frame
        shared._order = self._order
        taken = {name: frame[name] if self._order is None else frame[name].iloc[self._order] for name in added}
        shared.frame = self.frame.assign(**{name: column.set_axis(self.frame.index) for name, column in taken.items()})
        shared._matrices, shared._complete, shared._lenders = self._matrices, self._complete, self.lenders()
        shared._masks, shared._financial, shared._indicators = self._masks, self._financial, self._indicators
        return shared

    def lenders(self) -> tuple[np.ndarray, np.ndarray]:
        """``_lender_codes`` of the canonical rows, built once."""
        if self._lenders is None:
            self._lenders = _lender_codes(self.frame)
        return self._lenders

    def usable(self) -> np.ndarray:
        """``_usable`` of the canonical rows, built once (do not modify)."""
        if "usable" not in self._masks:
            self._masks["usable"] = _usable(self.frame)
        return self._masks["usable"]

    def equals(self, column: str, value: str) -> np.ndarray:
        """Per canonical row, whether ``column`` is ``value`` (missing: no), built once (do not modify)."""
        key = f"{column}\x00{value}"
        if key not in self._masks:
            self._masks[key] = _equals(self.frame[column], value)
        return self._masks[key]

    def denied(self) -> np.ndarray:
        """Per canonical row, whether it was denied, built once (do not modify)."""
        if "denied" not in self._masks:
            self._masks["denied"] = _equals(self.frame["decision"], "denied")
        return self._masks["denied"]

    def covariates(self, covariates: Covariates) -> tuple[np.ndarray, tuple[str, ...]]:
        """``_labelled_covariates`` of the canonical rows, built once per model (a category's
        indicators once for every model that controls for it)."""
        if covariates not in self._matrices:
            self._matrices[covariates] = _labelled_covariates(self.frame, covariates, self._indicators)
        return self._matrices[covariates]

    def financial(self, covariates: Covariates) -> Financial:
        """``_financial_fit`` of the canonical rows, built once per model (do not modify)."""
        if covariates not in self._financial:
            self._financial[covariates] = _financial_fit(self, covariates)
        return self._financial[covariates]

    def priced(self) -> tuple[np.ndarray, np.ndarray]:
        """Per canonical row, its rate spread (NaN: missing) and whether it is an originated loan
        (``action_taken`` 1) with a spread, built once (do not modify)."""
        if "priced" not in self._masks:
            spread = self.frame["rate_spread"].to_numpy(dtype=np.float64, na_value=np.nan)
            originated = self.frame["action_taken"].eq(1).fillna(False).to_numpy(dtype=bool)
            self._masks["rate spread"], self._masks["priced"] = spread, originated & np.isfinite(spread)
        return self._masks["rate spread"], self._masks["priced"]

    def complete(self, covariates: Covariates) -> np.ndarray:
        """Per canonical row, whether every column of ``covariates``' matrix is known, built once
        per model (do not modify)."""
        if covariates not in self._complete:
            self._complete[covariates] = np.isfinite(self.covariates(covariates)[0]).all(axis=1)
        return self._complete[covariates]


def _prepared(frame: pd.DataFrame, prepared: Prepared | None) -> Prepared:
    if prepared is None:
        return Prepared(frame)
    if prepared.source is not frame:
        raise ValueError("prepared: built for another frame")
    return prepared


# --- (a) adjusted denial odds -----------------------------------------------------------------


def lender_denial_odds(
    frame: pd.DataFrame,
    group_column: str,
    reference: str,
    compared: str | Sequence[str],
    covariates: Sequence[str] | Covariates = DENIAL_COVARIATES,
    *,
    min_group: int = MIN_GROUP,
    weights: Mapping[str, str] | None = None,
    prepared: Prepared | None = None,
) -> pd.DataFrame:
    """Raw denial rates and the adjusted denial odds ratio per lender and compared group.

    ``weights`` (group → a column of ``frame``): each applicant belongs to each group with the
    weight in that group's column (a probability estimated from surname and geography, or 1 and 0
    for a reported group) instead of by ``group_column``; see ``weighted_rows``. Applications are
    then sums of weights (expected counts) and the regression is weighted.

    Columns: lei, group, reference_applications, compared_applications,
    reference_denial_rate, compared_denial_rate, model_applications (rows of both groups
    with every covariate), log_odds_ratio, standard_error, odds_ratio, ci_low, ci_high,
    p_value, not_controlled (covariates constant in the lender's rows, so not adjusted for),
    reason. See the module docstring for the model. ``prepared``: ``Prepared(frame)``, shared by
    the fits of several comparisons.
    """
    return lender_denial_odds_columns(
        frame, group_column, reference, compared, covariates, min_group=min_group, weights=weights, prepared=prepared
    ).frame()


def lender_denial_odds_columns(
    frame: pd.DataFrame,
    group_column: str,
    reference: str,
    compared: str | Sequence[str],
    covariates: Sequence[str] | Covariates = DENIAL_COVARIATES,
    *,
    min_group: int = MIN_GROUP,
    weights: Mapping[str, str] | None = None,
    prepared: Prepared | None = None,
) -> Columns:
    """``lender_denial_odds`` as ``Columns``."""
    groups = _groups(compared, reference)
    covariates = as_covariates(covariates)
    _require(frame, ("lei", "excluded", "decision", group_column, *covariates.columns), "lender denial odds")
    prepared = _prepared(frame, prepared)
    frame = prepared.frame
    if weights is not None:
        return _weighted_denial_odds(frame, reference, groups, weights, covariates, min_group, prepared)
    usable = prepared.usable()
    units = _Units(frame, group_column, reference, groups, usable, prepared)
    denied = prepared.denied()
    values, labels = prepared.covariates(covariates)
    complete = prepared.complete(covariates)

    raw_rows, raw_unit, raw_indicator = units.rows(usable)
    count = units.count
    reference_n = np.bincount(raw_unit[~raw_indicator], minlength=count)
    compared_n = np.bincount(raw_unit[raw_indicator], minlength=count)
    reference_denials = np.bincount(raw_unit[~raw_indicator], denied[raw_rows[~raw_indicator]], count)
    compared_denials = np.bincount(raw_unit[raw_indicator], denied[raw_rows[raw_indicator]], count)

    rows, unit, indicator = units.rows(usable & complete)
    outcome = denied[rows].astype(np.float64)
    model_reference = np.bincount(unit[~indicator], minlength=count)
    model_compared = np.bincount(unit[indicator], minlength=count)
    model_reference_denials = np.bincount(unit[~indicator], outcome[~indicator], count)
    model_compared_denials = np.bincount(unit[indicator], outcome[indicator], count)
    reason = _size_reasons(model_reference, model_compared, min_group, "applications")
    reason = _first_reason(
        reason,
        (model_compared_denials == 0, "separation: no compared applicant denied"),
        (model_compared_denials == model_compared, "separation: every compared applicant denied"),
        (model_reference_denials == 0, "separation: no reference applicant denied"),
        (model_reference_denials == model_reference, "separation: every reference applicant denied"),
    )
    return _odds_table(
        units,
        (reference_n, compared_n, reference_denials, compared_denials, model_reference + model_compared),
        reason,
        (values, labels, len(covariates.numeric), _category_columns(labels, covariates)),
        (rows, unit, indicator, outcome, None),
        prepared.financial(covariates),
    )


def _weighted_denial_odds(
    frame: pd.DataFrame,
    reference: str,
    groups: tuple[str, ...],
    weights: Mapping[str, str],
    covariates: Covariates,
    min_group: int,
    prepared: Prepared,
) -> Columns:
    """``lender_denial_odds`` with probability-weighted group membership (``_WeightedUnits``): the
    same columns, applications and denials as sums of weights, a weighted logistic regression."""
    usable = prepared.usable()
    units = _WeightedUnits(frame, reference, groups, weights, usable, prepared)
    denied = prepared.denied()
    values, labels = prepared.covariates(covariates)
    complete = prepared.complete(covariates)
    count = units.count

    def sums(rows: np.ndarray, unit: np.ndarray, indicator: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, ...]:
        outcome = denied[rows]
        return (
            np.bincount(unit[~indicator], weight[~indicator], count),
            np.bincount(unit[indicator], weight[indicator], count),
            np.bincount(unit[~indicator], (weight * outcome)[~indicator], count),
            np.bincount(unit[indicator], (weight * outcome)[indicator], count),
        )

    raw_rows, raw_unit, raw_indicator = units.rows(usable)
    raw_weight = units.weight(raw_rows)
    assert raw_weight is not None
    reference_n, compared_n, reference_denials, compared_denials = sums(raw_rows, raw_unit, raw_indicator, raw_weight)
    rows, unit, indicator = units.rows(usable & complete)
    weight = units.weight(rows)
    assert weight is not None
    model_sums = sums(rows, unit, indicator, weight)
    model_reference, model_compared, model_reference_denials, model_compared_denials = model_sums
    tolerance = 1e-9
    reason = _size_reasons(model_reference, model_compared, min_group, "applications")
    reason = _first_reason(
        reason,
        (model_compared_denials <= tolerance, "separation: no compared applicant denied"),
        (model_compared_denials >= model_compared - tolerance, "separation: every compared applicant denied"),
        (model_reference_denials <= tolerance, "separation: no reference applicant denied"),
        (model_reference_denials >= model_reference - tolerance, "separation: every reference applicant denied"),
    )
    return _odds_table(
        units,
        (reference_n, compared_n, reference_denials, compared_denials, model_reference + model_compared),
        reason,
        (values, labels, len(covariates.numeric), _category_columns(labels, covariates)),
        (rows, unit, indicator, denied[rows].astype(np.float64), weight),
    )


def _odds_table(
    units: _Units,
    sizes: tuple[np.ndarray, ...],
    reason: np.ndarray,
    covariates: tuple[np.ndarray, tuple[str, ...], int, np.ndarray],
    model: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None],
    financial: Financial | None = None,
) -> Columns:
    """The denial-odds table of ``units`` (as ``Columns``), fitting the units without a ``reason``: ``sizes`` are
    the reference and compared applications and denials and the model's applications;
    ``covariates`` the covariate matrix, its labels, how many are numeric and each column's category
    (``_category_columns``); ``model`` the
    model's rows, their unit, group indicator, outcome and weight (None: unweighted); ``financial``:
    the lenders' fit on the financials alone (``_financial_fit``), Newton's starting point for each
    unit of a lender it fitted (``_warm_start``; the others start at their denial rate's logit)."""
    reference_n, compared_n, reference_denials, compared_denials, model_n = sizes
    values, labels, numeric, categories = covariates
    rows, unit, indicator, outcome, weight = model
    fit = reason[unit] == ""
    fitted_units, fit_unit = np.unique(unit[fit], return_inverse=True)
    # Each unit's scales, once for the fit and the covariates not controlled: a fitted unit's rows
    # are the same rows in the same order in both, so its sums (and the design) are the same bits;
    # the design's covariates are the centred values of its rows over their unit's spread, as
    # ``_design`` computes them.
    unit_values = values[rows]
    means, spread, centred = _centred_scales(unit_values, unit, units.count)
    scales = (means[fitted_units], spread[fitted_units])
    design = _odds_design(centred, spread, unit, indicator, fit)
    fit_weight = None if weight is None else weight[fit]
    start = _warm_start(
        financial, units.codes[fitted_units // len(units.groups)], scales,
        _null_intercept(outcome[fit], fit_unit, fitted_units.size, fit_weight),
    )
    log_odds, variance, status = _logistic(
        design, outcome[fit], fit_unit, fitted_units.size, numeric, fit_weight, start=start, categories=categories
    )
    not_controlled = _not_controlled(unit_values, labels, unit, units.count, spread)
    estimate = np.full(units.count, np.nan)
    error = np.full(units.count, np.nan)
    texts = np.array(["", "separation: coefficients diverge", "did not converge", _COLLINEAR_TEXT])
    reason[fitted_units] = texts[status]
    good = fitted_units[status == 0]
    estimate[good] = log_odds[status == 0]
    error[good] = np.sqrt(variance[status == 0])
    return units.columns(
        {
            "reference_applications": reference_n,
            "compared_applications": compared_n,
            "reference_denial_rate": _ratio(reference_denials, reference_n),
            "compared_denial_rate": _ratio(compared_denials, compared_n),
            "model_applications": model_n,
            "log_odds_ratio": estimate,
            "standard_error": error,
            "odds_ratio": np.exp(estimate),
            "ci_low": np.exp(estimate - Z95 * error),
            "ci_high": np.exp(estimate + Z95 * error),
            "p_value": 2 * stats.norm.sf(np.abs(estimate / error)),
            "not_controlled": not_controlled,
            "reason": reason,
        },
        ("not_controlled", "reason"),
    )


def _odds_design(
    centred: np.ndarray, spread: np.ndarray, unit: np.ndarray, indicator: np.ndarray, fit: np.ndarray
) -> np.ndarray:
    """The denial-odds design of the rows ``fit``: intercept, group indicator and the centred covariates
    over their unit's spread, written in place (the bits of ``np.column_stack`` of ``centred[fit] /
    spread[unit[fit]]``: the same divisions), unit by unit when every row is kept and the rows are
    grouped by unit (no per-row copy of the spreads)."""
    kept = unit[fit]
    design = np.empty((kept.size, 2 + centred.shape[1]))
    design[:, 0] = 1.0
    design[:, 1] = indicator[fit]
    if fit.all() and _by_unit(unit) is None:
        bounds = np.searchsorted(unit, np.arange(spread.shape[0] + 1))
        for index in np.flatnonzero(bounds[1:] > bounds[:-1]):
            start, stop = bounds[index], bounds[index + 1]
            np.divide(centred[start:stop], spread[index], out=design[start:stop, 2:])
    else:
        np.divide(centred[fit], spread[kept], out=design[:, 2:])
    return design


class Financial(typing.NamedTuple):
    """Per lender code (``Prepared.lenders``), the fit of ``denial_probabilities``: whether it was
    fitted (enough rows, both outcomes, converged), the covariates' means and scales over its rows
    (``_scales``) and the coefficients of the standardised covariates, intercept first."""

    fitted: np.ndarray
    means: np.ndarray
    spread: np.ndarray
    beta: np.ndarray

    def raw(self, code: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For the lender codes ``code``: the fit's coefficients of the covariates as they are (not
        standardised; 0 for a covariate constant at the lender) and its intercept on that scale."""
        with np.errstate(divide="ignore", invalid="ignore"):
            raw = np.where(np.isfinite(self.spread[code]), self.beta[code, 1:] / self.spread[code], 0.0)
        return raw, self.beta[code, 0] - (raw * self.means[code]).sum(axis=1)


def _warm_start(
    financial: Financial | None, lender: np.ndarray, scales: tuple[np.ndarray, np.ndarray], intercept: np.ndarray
) -> np.ndarray:
    """Newton's starting point for units of ``_design`` (intercept, group indicator, covariates
    standardised by ``scales``) of the lender codes ``lender``: the lender's financial fit carried to
    the unit's scales (the same linear predictor for the group indicator at 0), or for a lender without
    one, ``intercept`` (the unit's denial rate's logit) and zeros. Only where Newton starts, never
    where it stops: the estimates are the same optimum (to the convergence test's 1e-8 step)."""
    means, spread = scales
    start = np.zeros((lender.size, 2 + means.shape[1]))
    start[:, 0] = intercept
    if financial is None or lender.size == 0:
        return start
    known = financial.fitted[lender]
    if not known.any():
        return start
    raw, raw_intercept = financial.raw(lender[known])
    unit_spread = spread[known]
    with np.errstate(invalid="ignore"):
        start[known, 2:] = np.where(np.isfinite(unit_spread), raw * unit_spread, 0.0)
    start[known, 0] = raw_intercept + (raw * means[known]).sum(axis=1)
    return start


def _null_intercept(outcome: np.ndarray, unit: np.ndarray, count: int, weight: np.ndarray | None) -> np.ndarray:
    """Per unit, the logit of its (weighted) outcome rate, within [1e-3, 1 - 1e-3]."""
    sizes = np.bincount(unit, weight, minlength=count)
    events = np.bincount(unit, outcome if weight is None else weight * outcome, minlength=count)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.clip(np.where(sizes > 0, events / sizes, 0.5), 1e-3, 1 - 1e-3)
    logit: np.ndarray = special.logit(rate)
    return logit


def _design(
    values: np.ndarray, indicator: np.ndarray, unit: np.ndarray, count: int,
    scales: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Intercept, group indicator and the covariates standardised within each unit (``scales``:
    ``_scales`` of these rows, when known)."""
    standardised = _standardise(values, unit, count, scales)
    return np.column_stack([np.ones(indicator.size), indicator.astype(np.float64), standardised])


def _logistic(
    design: np.ndarray, outcome: np.ndarray, unit: np.ndarray, count: int, numeric: int = 0,
    weight: np.ndarray | None = None, *, start: np.ndarray | None = None, categories: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One logistic regression per unit, all at once: the indicator's (column 1) estimate,
    its variance from the observed information, and a status (0 ok, 1 diverged, 2 not
    converged, 3 indicator collinear with the covariates). The ``numeric`` covariates after
    the indicator are unpenalised; the band and category indicators after them are not.
    ``weight``: per row, its weight in the likelihood (probability weights; none: 1 each);
    ``start``: Newton's starting coefficients per unit (none: zeros); ``categories``: per covariate
    column, the category it is an indicator of (-1: none; none: no categories), for ``_explained``."""
    order = _by_unit(unit)  # every result is per unit: group the rows once, for _newton's and _cross's slices
    if order is not None:
        design, outcome, unit = design[order], outcome[order], unit[order]
        weight = None if weight is None else weight[order]
    penalty = _penalty(design.shape[1], free=2 + numeric)
    beta, eta, status = _newton(design, outcome, unit, count, penalty, weight, start=start)
    fitted = special.expit(eta)
    curvature = fitted * (1 - fitted) if weight is None else weight * fitted * (1 - fitted)
    unpenalised = _cross(design, curvature, unit, count)
    information = unpenalised + np.diag(penalty)
    left = _schur_complement(information, 1)
    # Collinearity is judged without the penalty, which would hide a group identical to a category.
    explained, factored = _explained(unpenalised, 1, _column_categories(categories, design.shape[1], 2))
    if not factored.all():
        explained[~factored] = _partial_variance(unpenalised[~factored], 1, rcond=1e-10)
    collinear = (status == 0) & ~(explained > COLLINEAR * information[:, 1, 1])
    status[collinear] = 3
    with np.errstate(divide="ignore", invalid="ignore"):
        variance = np.where(status == 0, 1.0 / left, np.nan)
    return beta[:, 1], variance, status


def _column_categories(categories: np.ndarray | None, width: int, before: int) -> np.ndarray:
    """Per column of a matrix of ``width`` columns whose covariates start after ``before`` others, the
    category of ``categories`` (per covariate column; none: no categories) it belongs to, -1 for none."""
    found = np.full(width, -1, dtype=np.int64)
    if categories is not None:
        found[before : before + categories.size] = categories
    return found


def _category_columns(labels: tuple[str, ...], covariates: Covariates) -> np.ndarray:
    """Per column of ``covariate_matrix``, the number of the categorical covariate whose indicator it
    is (-1: a numeric or band column)."""
    names = list(covariates.categorical)
    return np.array([names.index(label) if label in names else -1 for label in labels], dtype=np.int64)


def _penalty(width: int, free: int) -> np.ndarray:
    """``RIDGE`` on every coefficient but the first ``free`` (intercept, group indicator,
    numeric covariates): the band and category indicators, which alone can make a fit
    singular or separate (every applicant above DTI 50% denied)."""
    penalty = np.full(width, RIDGE)
    penalty[:free] = 0.0
    return penalty


def _newton(
    design: np.ndarray, outcome: np.ndarray, unit: np.ndarray, count: int, penalty: np.ndarray | None = None,
    weight: np.ndarray | None = None, *, limit: float = SEPARATION_LIMIT, iterations: int = MAX_NEWTON,
    start: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Penalised maximum likelihood by Newton's method with step halving, one regression per
    unit: coefficients (units, width), the linear predictor per row, and a status per unit
    (0 converged, 1 diverged: a coefficient beyond ``limit`` — from zeros, a unit diverging from
    ``start`` is fitted again from zeros —, 2 not converged in ``iterations`` steps). ``penalty``:
    per coefficient, the weight of ``-penalty * beta**2 / 2`` added to the log-likelihood
    (a Gaussian prior; none by default); ``weight``: per row, the weight of its log-likelihood term
    (none: 1 each); ``start``: the starting coefficients (units, width; none: zeros)."""
    width = design.shape[1]
    if penalty is None:
        penalty = np.zeros(width)
    order = _by_unit(unit)
    if order is not None:  # a stable sort: each unit's rows keep their order, so its sums are the same
        grouped_beta, grouped_eta, grouped_status = _newton(
            design[order], outcome[order], unit[order], count, penalty, None if weight is None else weight[order],
            limit=limit, iterations=iterations, start=start,
        )
        eta = np.empty(unit.size)
        eta[order] = grouped_eta
        return grouped_beta, eta, grouped_status
    design = np.ascontiguousarray(design)  # row-wise products in one layout, whichever rows are live
    beta = np.zeros((count, width)) if start is None else np.array(start, dtype=np.float64)
    status = np.zeros(count, dtype=np.int64)
    active = np.ones(count, dtype=bool)
    # Each unit's sums run over its own rows in their order (np.bincount adds sequentially, the
    # matrix products of _cross are per unit), so an iteration restricted to the rows of the units
    # still moving gives those units the same bits; a unit that stopped keeps its coefficients,
    # log-likelihood and linear predictor. The rows are grouped by unit, so the live rows are too.
    eta = np.empty(unit.size)

    # The rows of the units still moving, as arrays (every row: the arrays themselves, no copy). The
    # design is never copied: the matrix products (``_cross``, ``_linear``) take each moving unit's block
    # of it in place, and their per-row arrays are as long as the design (the stopped units' rows unused).
    live = np.arange(unit.size)
    live_unit, live_outcome = unit, outcome
    live_weight = weight
    curvature = np.zeros(unit.size)  # per row of the design: the moving units' weights in X'WX
    residual = np.zeros(unit.size)

    def linear(coefficients: np.ndarray) -> np.ndarray:
        """The linear predictor of the live rows."""
        every = live.size == unit.size
        found = _linear(design, coefficients, unit, count, only=None if every else active)
        return found if every else found[live]

    def loglik(coefficients: np.ndarray, part_eta: np.ndarray, tested: np.ndarray) -> np.ndarray:
        """The penalised log-likelihood per unit from the live rows' linear predictor, summed over
        the rows of the ``tested`` units only (the others' entries are meaningless). A unit's sum
        runs over its own rows in their order, so it has the bits of a sum over every row."""
        prior = 0.5 * (coefficients**2) @ penalty
        taken = tested[live_unit]
        every = bool(taken.all())
        part = part_eta if every else part_eta[taken]
        term = (live_outcome if every else live_outcome[taken]) * part - np.logaddexp(0.0, part)
        if live_weight is not None:
            term = (live_weight if every else live_weight[taken]) * term
        return np.bincount(live_unit if every else live_unit[taken], term, count) - prior

    # The log-likelihood is evaluated only where a step could lower it (``_safe_steps``); a unit whose
    # steps were all safe since it was last evaluated has it computed when first needed (``stale``),
    # from the linear predictor at its coefficients: the bits it would have had.
    eta[live] = linear(beta)
    current = np.zeros(count)
    stale = np.ones(count, dtype=bool)
    for _ in range(iterations):
        if not active.any():
            break
        still = active[live_unit]
        if not still.all():
            live = live[still]
            live_unit, live_outcome = unit[live], outcome[live]
            live_weight = None if weight is None else weight[live]
        every = live.size == unit.size
        live_eta = eta if every else eta[live]
        fitted = special.expit(live_eta)
        # Only the units still moving: each unit's matrices and step are its own, so the others are not needed.
        moving = np.flatnonzero(active)
        if every:
            curvature = fitted * (1 - fitted) if live_weight is None else live_weight * fitted * (1 - fitted)
            residual = live_outcome - fitted if live_weight is None else live_weight * (live_outcome - fitted)
        else:
            curvature[live] = fitted * (1 - fitted) if live_weight is None else live_weight * fitted * (1 - fitted)
            residual[live] = live_outcome - fitted if live_weight is None else live_weight * (live_outcome - fitted)
        information, score = _cross(design, curvature, unit, count, only=active, vector=residual)
        gradient = score[moving] - beta[moving] * penalty
        step = np.zeros((count, width))
        step[moving] = _solve_information(information[moving] + np.diag(penalty), gradient)
        size = np.ones(count)
        trial = beta + size[:, None] * step
        trial_eta = linear(trial)
        tested = active & ~_safe_steps(trial_eta - live_eta, live_unit, count)
        if tested.any():
            refresh = tested & stale
            if refresh.any():
                current[refresh] = loglik(beta, live_eta, refresh)[refresh]
                stale[refresh] = False
            for attempt in range(MAX_HALVINGS):
                value = loglik(trial, trial_eta, tested)
                worse = tested & (value < current - 1e-12 * (1 + np.abs(current)))
                if not worse.any():
                    break
                size[worse] /= 2
                if attempt < MAX_HALVINGS - 1:  # halvings exhausted: the last trial evaluated is taken
                    trial = beta + size[:, None] * step
                    trial_eta = linear(trial)
            current[tested] = value[tested]
        stale |= active & ~tested
        beta, eta[live] = trial, trial_eta
        moved = np.abs(size[:, None] * step).max(axis=1)
        diverged = active & (np.abs(beta).max(axis=1) > limit)
        status[diverged] = 1
        active &= ~diverged & (moved >= 1e-8)
    status[active] = 2
    if start is not None and (status == 1).any():
        # A coefficient beyond the limit on the way from a warm start can be the path's doing, not the
        # data's (a unit whose covariates spread wider than its lender's starts far out): such units are
        # fitted again from zeros, so that "diverged" means what it means from zeros. A unit's sums run
        # over its own rows, so fitting its rows alone gives the bits of a fit of every unit.
        again, redo = status[unit] == 1, status == 1
        beta_again, eta_again, status_again = _newton(
            design[again], outcome[again], unit[again], count, penalty, None if weight is None else weight[again],
            limit=limit, iterations=iterations,
        )
        beta[redo], status[redo], eta[again] = beta_again[redo], status_again[redo], eta_again
    return beta, eta, status


def _linear(
    design: np.ndarray, coefficients: np.ndarray, unit: np.ndarray, count: int, only: np.ndarray | None = None
) -> np.ndarray:
    """Per row (C-ordered, grouped by unit), its design row times its unit's coefficients: per unit,
    ``np.einsum("ij,j->i")`` over its block of rows, the bits of ``np.einsum("ij,ij->i", design,
    coefficients[unit])`` (the same summation of each row's products; tested) without a copy of
    the coefficients per row. ``only`` (a mask of units): the other units' rows are left unset."""
    found = np.empty(unit.size)
    bounds = np.searchsorted(unit, np.arange(count + 1))
    present = bounds[1:] > bounds[:-1]
    for index in np.flatnonzero(present if only is None else present & only):
        start, stop = bounds[index], bounds[index + 1]
        np.einsum("ij,j->i", design[start:stop], coefficients[index], out=found[start:stop])
    return found


SAFE_REACH = 1.0  # a Newton step moving no row's linear predictor further than this raises the log-likelihood


def _safe_steps(change: np.ndarray, unit: np.ndarray, count: int) -> np.ndarray:
    """Per unit, whether its full Newton step is sure to raise the penalised log-likelihood, so that
    step halving needs no evaluation of it: the step moves no row's linear predictor (``change``,
    rows grouped by unit) by more than ``SAFE_REACH``. A row's log-likelihood has a third derivative
    at most its second in size, so its curvature along a move of r changes by a factor within
    [e^-r, e^r] and the log-likelihood changes by at least g'd - psi(R) d'X'WXd - d'Pd/2 for a step
    d, with psi(R) = (e^R - R - 1)/R^2 at R, the largest move (Bach 2010, generalised
    self-concordance); a Newton step makes g'd = d'(X'WX + P)d, so the change is at least
    (1 - psi(R)) d'X'WXd + d'Pd/2 >= 0 for psi(R) < 1, true up to R = 1.79 (psi(1) = 0.72). Such a
    step is taken whole, as the test it skips would have taken it."""
    bounds = np.searchsorted(unit, np.arange(count + 1))
    present = bounds[1:] > bounds[:-1]
    reach = np.zeros(count)
    if change.size:
        reach[present] = np.maximum.reduceat(np.abs(change), bounds[:-1][present])
    safe: np.ndarray = ~(reach > SAFE_REACH)  # NaN (an overflow) counts as safe: NaN was never "worse" either
    return safe


def unit_logistic(
    design: np.ndarray, outcome: np.ndarray, unit: np.ndarray, count: int, penalty: np.ndarray,
    *, iterations: int = MAX_NEWTON, start: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Penalised logistic regressions, one per unit, fitted to convergence (``_newton`` without a
    divergence limit: the penalty keeps every estimate finite): the coefficients (units, width),
    the penalised information X'WX + diag(penalty) at the estimate (units, width, width), and a
    status per unit (0 converged, 2 not converged in ``iterations`` Newton steps). Each unit's
    sums run over its own rows in their order, so its results do not depend on the other units.
    ``start``: Newton's starting coefficients (units, width; none: zeros)."""
    order = _by_unit(unit)
    if order is not None:
        design, outcome, unit = design[order], outcome[order], unit[order]
    beta, eta, status = _newton(design, outcome, unit, count, penalty, limit=np.inf, iterations=iterations, start=start)
    fitted = special.expit(eta)
    information = _cross(design, fitted * (1 - fitted), unit, count) + np.diag(penalty)
    return beta, information, status


def unit_scales(values: np.ndarray, unit: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per unit and column: the mean and the standard deviation of the unit's rows (inf for a
    column constant in the unit: spread at most 1e-9 of the mean's size, or of 1); and the values
    centred by them (``values - means[unit]``, the same bits, which the scales computed anyway)."""
    return _centred_scales(values, unit, count)


def denial_probabilities(
    frame: pd.DataFrame,
    covariates: Sequence[str] | Covariates = DENIAL_COVARIATES,
    *,
    prepared: Prepared | None = None,
) -> np.ndarray:
    """Per row, the probability of denial on the financials alone: one logistic regression per
    lender of ``denied`` on an intercept and the covariates (no group), over its usable rows
    with every covariate. NaN for rows without every covariate and for lenders whose fit
    fails (fewer than ``MIN_GROUP`` rows, separation, no convergence). ``prepared``: as for
    ``lender_denial_odds`` (its covariate matrix, lenders and masks are reused)."""
    covariates = as_covariates(covariates)
    _require(frame, ("lei", "excluded", "decision", *covariates.columns), "denial probabilities")
    order = _canonical_positions(frame)  # sums independent of the input's row order
    fitted = _fitted_denial(_prepared(frame, prepared), covariates)
    if order is None:
        return fitted
    probability = np.empty(len(frame))
    probability[order] = fitted
    return probability


def _financial_fit(prepared: Prepared, covariates: Covariates) -> Financial:
    """``denial_probabilities``' fit per lender code of ``prepared``: its usable rows with every
    covariate, lenders with at least ``MIN_GROUP`` of them and both outcomes."""
    values = prepared.covariates(covariates)[0]
    codes = prepared.lenders()[0]
    count = int(codes.max()) + 1 if codes.size else 0
    fit = prepared.complete(covariates) & (codes >= 0) & prepared.usable()
    outcome = prepared.denied()
    rows = np.flatnonzero(fit)
    unit = codes[rows]
    size = np.bincount(unit, minlength=count)
    denials = np.bincount(unit, outcome[rows], count)
    good_unit = (size >= MIN_GROUP) & (denials > 0) & (denials < size)
    rows, unit = rows[good_unit[unit]], unit[good_unit[unit]]
    # Grouped by lender, each lender's rows in their order (a stable sort): its sums are the same, and
    # neither the scales nor Newton need to group the covariates themselves.
    order = _by_unit(unit)
    if order is not None:
        rows, unit = rows[order], unit[order]
    width = values.shape[1]
    if rows.size == 0:
        empty = np.zeros((count, width))
        return Financial(np.zeros(count, dtype=bool), empty, np.ones((count, width)), np.zeros((count, 1 + width)))
    # Standardise on the fitted rows, then apply the same centring and scale to every row of the lender.
    means, spread = _scales(values[rows], unit, count)
    design = np.column_stack([np.ones(rows.size), (values[rows] - means[unit]) / spread[unit]])
    penalty = _penalty(design.shape[1], free=1 + len(covariates.numeric))
    denial = outcome[rows].astype(np.float64)
    start = np.zeros((count, design.shape[1]))
    start[:, 0] = _null_intercept(denial, unit, count, None)  # the covariates are centred: the fit without them
    beta, _, status = _newton(design, denial, unit, count, penalty, start=start)
    return Financial(good_unit & (status == 0), means, spread, beta)


def _fitted_denial(prepared: Prepared, covariates: Covariates) -> np.ndarray:
    """``denial_probabilities`` of the canonical rows of ``prepared``."""
    values = prepared.covariates(covariates)[0]
    codes = prepared.lenders()[0]
    known = prepared.complete(covariates) & (codes >= 0)
    financial = prepared.financial(covariates)
    probability = np.full(len(prepared.frame), np.nan)
    scored = np.flatnonzero(known & financial.fitted[np.maximum(codes, 0)]) if codes.size else np.empty(0, np.int64)
    if scored.size == 0:
        return probability
    lender = codes[scored]
    means, spread, beta = financial.means, financial.spread, financial.beta
    eta = beta[lender, 0] + np.einsum("ij,ij->i", (values[scored] - means[lender]) / spread[lender], beta[lender, 1:])
    probability[scored] = special.expit(eta)
    return probability


# --- (b) matched pairs ------------------------------------------------------------------------


def matched_pair_test(
    pairs: pd.DataFrame,
    frame: pd.DataFrame | PairTexts,
    *,
    max_rank: int = 1,
    denial_probability: np.ndarray | None = None,
    id_index: pd.Index | None = None,
    rows: tuple[np.ndarray, np.ndarray] | None = None,
) -> pd.DataFrame:
    """Concordant and discordant decisions of matched pairs per lender, exact tests.

    ``pairs`` as ``similar_pairs`` returns them (columns a, b, rank); decisions and lenders
    come from ``frame`` by ``application_id``; a pair counts for the lender of ``b`` and only
    when both applicants have the same lender and a decision (approved or denied). Columns:
    lei, pairs, both_approved, both_denied, reference_favoured (a approved, b denied),
    compared_favoured (a denied, b approved), discordant, discordant_ratio
    (reference_favoured / compared_favoured, the conditional odds ratio),
    expected_reference_favoured, adjusted_ratio (the discordant ratio over the ratio expected
    from the financials, E / (discordant - E)), p_value, mcnemar_p_value, reason.

    ``mcnemar_p_value`` is the exact McNemar test (each discordant pair favours either side
    with probability 1/2). Matching leaves residual differences: where the compared group's
    pool is financially weaker, its nearest reference neighbour is on average a little
    stronger, and with thousands of pairs McNemar's test finds that bias. So ``p_value``
    conditions on each pair's financials (bias-corrected matching): with ``denial_probability``
    (per row of ``frame``, from ``denial_probabilities``) a discordant pair favours the
    reference applicant with probability q = d_b(1 - d_a) / (d_b(1 - d_a) + d_a(1 - d_b))
    under no disparity, so ``reference_favoured`` follows the Poisson-binomial distribution of
    those q (exact, ``scipy.stats.poisson_binom``) with mean ``expected_reference_favoured``;
    the two-sided p-value is min(1, 2 min(P(X <= x), P(X >= x))). A pair without both
    probabilities counts with q = 1/2; without ``denial_probability``, ``p_value`` is McNemar's.
    ``rows``: ``pair_rows(pairs, ...)``, found once for the functions that read the same pairs;
    ``frame`` may be ``PairTexts.of(frame)`` when ``rows`` is given (made once for every comparison).
    """
    return matched_pair_columns(
        pairs, frame, max_rank=max_rank, denial_probability=denial_probability, id_index=id_index, rows=rows
    ).frame()


def matched_pair_columns(
    pairs: pd.DataFrame,
    frame: pd.DataFrame | PairTexts,
    *,
    max_rank: int = 1,
    denial_probability: np.ndarray | None = None,
    id_index: pd.Index | None = None,
    rows: tuple[np.ndarray, np.ndarray] | None = None,
) -> Columns:
    """``matched_pair_test`` as ``Columns``."""
    _require(pairs, ("a", "b", "rank"), "matched pair test: pairs")
    texts = _pair_texts(frame, "matched pair test")
    chosen_rows = pairs["rank"].to_numpy() <= max_rank
    if rows is None:
        chosen = pairs[chosen_rows]
        assert isinstance(frame, pd.DataFrame)  # rows are given with PairTexts (_pair_texts)
        id_index = application_index(frame) if id_index is None else id_index
        first, second = _lookup(id_index, chosen["a"], "a"), _lookup(id_index, chosen["b"], "b")
    else:
        first, second = rows[0][chosen_rows], rows[1][chosen_rows]
    outcome, lender = texts.outcome, texts.lender  # codes: equal codes are equal texts
    keep = (outcome[first] > 0) & (outcome[second] > 0) & (lender[first] == lender[second])
    first, second = first[keep], second[keep]
    # The lenders of the kept pairs in text order: the codes of every row's LEI among the sorted LEIs (made
    # once per frame), renumbered over those present (sorted codes are sorted texts).
    present, codes = np.unique(lender[second], return_inverse=True)
    codes = codes.reshape(-1)
    leis = texts.leis[present]
    count = leis.size
    first_approved = outcome[first] == APPROVED
    second_approved = outcome[second] == APPROVED
    both_approved = np.bincount(codes, first_approved & second_approved, count).astype(np.int64)
    both_denied = np.bincount(codes, ~first_approved & ~second_approved, count).astype(np.int64)
    reference_favoured = np.bincount(codes, first_approved & ~second_approved, count).astype(np.int64)
    compared_favoured = np.bincount(codes, ~first_approved & second_approved, count).astype(np.int64)
    discordant = reference_favoured + compared_favoured
    smaller = np.minimum(reference_favoured, compared_favoured)
    mcnemar = np.minimum(1.0, 2 * stats.binom.cdf(smaller, discordant, 0.5))
    odd = first_approved != second_approved
    chance = np.full(first.size, 0.5)
    if denial_probability is not None:
        d_a, d_b = denial_probability[first], denial_probability[second]
        with np.errstate(divide="ignore", invalid="ignore"):
            q = d_b * (1 - d_a) / (d_b * (1 - d_a) + d_a * (1 - d_b))
        chance = np.where(np.isfinite(q), q, 0.5)
    expected = np.bincount(codes, np.where(odd, chance, 0.0), count)
    p_value = (
        mcnemar if denial_probability is None else _poisson_binomial_test(codes[odd], chance[odd], reference_favoured)
    )
    reason = np.where(discordant == 0, "no discordant pairs", "")
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(discordant > 0, reference_favoured / compared_favoured, np.nan)
    return Columns(
        {
            "lei": leis,
            "pairs": np.bincount(codes, minlength=count).astype(np.int64),
            "both_approved": both_approved,
            "both_denied": both_denied,
            "reference_favoured": reference_favoured,
            "compared_favoured": compared_favoured,
            "discordant": discordant,
            "discordant_ratio": ratio,
            "expected_reference_favoured": np.where(discordant > 0, expected, np.nan),
            "adjusted_ratio": ratio / _ratio(expected, discordant - expected),
            "p_value": np.where(discordant > 0, p_value, np.nan),
            "mcnemar_p_value": np.where(discordant > 0, mcnemar, np.nan),
            "reason": reason,
        },
        frozenset(("lei", "reason")),
    )


def _poisson_binomial_test(unit: np.ndarray, chance: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Per unit, the two-sided exact test of ``observed`` successes among trials (rows of
    ``unit``) with success probabilities ``chance``: min(1, 2 min(P(X <= x), P(X >= x))).

    A unit whose trials share one probability takes ``scipy.stats.binom``; the others scipy's compiled
    recursion, which ``scipy.stats.poisson_binom.cdf`` calls (its bits, without the distribution's
    per-call argument handling), at the two counts the test reads; without it (another scipy),
    ``_poisson_binomial_cdf``, which gives the same bits for all units of a size class at once in numpy
    (tested against scipy; its steps' per-call overhead cost ten times the compiled recursion)."""
    p_value = np.ones(observed.size)
    sizes = np.bincount(unit, minlength=observed.size)
    order = np.argsort(unit, kind="stable")
    bounds = np.searchsorted(unit[order], np.arange(observed.size + 1))
    mixed = []
    for index in np.flatnonzero(sizes > 0):
        trials = chance[order[bounds[index] : bounds[index + 1]]]
        if np.all(trials == trials[0]):
            x = observed[index]
            below, above = stats.binom.cdf(x, trials.size, trials[0]), stats.binom.sf(x - 1, trials.size, trials[0])
            p_value[index] = min(1.0, 2 * min(float(below), float(above)))
        else:
            mixed.append(index)
    mixed_units = np.array(mixed, dtype=np.int64)
    if _scipy_poisson_binom is not None:
        x, n = observed[mixed_units], sizes[mixed_units]
        at = np.stack([np.clip(x, 0, n), np.clip(x - 1, 0, n)], axis=1).astype(np.int64)  # P(X <= x), P(X <= x - 1)
        cdf = np.empty((mixed_units.size, 2))
        for row, index in enumerate(mixed_units):
            trials = chance[order[bounds[index] : bounds[index + 1]]]
            cdf[row] = _scipy_poisson_binom(at[row], np.repeat(trials[:, None], 2, axis=1), "cdf")
        below = np.where(x >= n, 1.0, np.clip(cdf[:, 0], 0.0, 1.0))
        above = np.where(x - 1 < 0, 1.0, np.where(x - 1 >= n, 0.0, np.clip(1.0 - cdf[:, 1], 0.0, 1.0)))
        p_value[mixed_units] = np.minimum(1.0, 2 * np.minimum(below, above))
        return p_value
    # Size classes (sizes within a factor of 2), so padding a class to its largest unit costs little.
    size_class = np.floor(np.log2(np.maximum(sizes[mixed_units], 1))).astype(np.int64)
    for members in (mixed_units[size_class == value] for value in np.unique(size_class)):
        width = int(sizes[members].max())
        trials = np.zeros((members.size, width))  # padded with trials of probability 0: the same sums
        for row, index in enumerate(members):
            trials[row, : sizes[index]] = chance[order[bounds[index] : bounds[index + 1]]]
        cdf = _poisson_binomial_cdf(trials)
        x = observed[members]
        n = sizes[members]
        rows = np.arange(members.size)
        below = np.where(x >= n, 1.0, np.clip(cdf[rows, np.minimum(x, width)], 0.0, 1.0))
        previous = np.clip(1.0 - cdf[rows, np.clip(x - 1, 0, width)], 0.0, 1.0)
        above = np.where(x - 1 < 0, 1.0, np.where(x - 1 >= n, 0.0, previous))
        p_value[members] = np.minimum(1.0, 2 * np.minimum(below, above))
    return p_value


def _poisson_binomial_cdf(trials: np.ndarray) -> np.ndarray:
    """Per row of ``trials`` (success probabilities, (units, n)), P(X <= k) for k = 0..n, unclipped:
    the recursion of ``scipy.stats.poisson_binom`` (each trial in turn: the mass at k moves to
    k + 1 with its probability) and a running sum, elementwise, so each row has scipy's bits."""
    count, width = trials.shape
    pmf = np.zeros((count, width + 1))
    if width == 0:
        pmf[:, 0] = 1.0
        return pmf
    pmf[:, 0], pmf[:, 1] = 1 - trials[:, 0], trials[:, 0]
    moved = np.empty((count, width))  # one buffer for every step's moved mass
    failure = 1 - trials
    for index in range(1, width):
        np.multiply(pmf[:, : index + 1], trials[:, index : index + 1], out=moved[:, : index + 1])
        pmf[:, : index + 1] *= failure[:, index : index + 1]
        pmf[:, 1 : index + 2] += moved[:, : index + 1]
    cdf: np.ndarray = np.cumsum(pmf, axis=1)
    return cdf


def _checked_compiled(candidate: Any) -> Any:
    """``candidate`` (scipy's private compiled recursion) if it gives ``_poisson_binomial_cdf``'s bits on
    a small case, else None: the name is private, so a scipy that changes its arguments or results
    makes the tests take the numpy recursion rather than fail or differ."""
    if candidate is None:
        return None
    trials = np.array([0.1, 0.35, 0.8, 0.5])
    at = np.array([2, 1], dtype=np.int64)
    try:
        found = np.asarray(candidate(at, np.repeat(trials[:, None], 2, axis=1), "cdf"), dtype=np.float64)
    except Exception:  # noqa: BLE001 - any failure of a private function: not used
        return None
    expected = _poisson_binomial_cdf(trials[None, :])[0, at]
    return candidate if found.shape == expected.shape and found.tobytes() == expected.tobytes() else None


_scipy_poisson_binom = _checked_compiled(_scipy_poisson_binom)


def holm_adjusted(p_values: np.ndarray, families: np.ndarray) -> np.ndarray:
    """Holm's step-down adjustment of ``p_values`` within each family (rows with the same
    ``families`` value): with the family's m finite p-values in ascending order,
    adjusted p(i) = max over j <= i of min(1, (m - j + 1) p(j)). NaN stays NaN. Controls the
    chance of any false finding in a family at the level, whatever the tests' dependence."""
    adjusted = np.full(p_values.size, np.nan)
    finite = np.flatnonzero(np.isfinite(p_values))
    if finite.size == 0:
        return adjusted
    named = families[finite]
    if not all(type(name) is str for name in named):  # families named otherwise: grouped by their texts
        named = pd.Series(named).astype("str")
    codes = pd.factorize(named)[0]  # texts: the same groups, without a text Series made first
    order = np.lexsort((p_values[finite], codes))
    codes_sorted, p_sorted = codes[order], p_values[finite][order]
    sizes = np.bincount(codes_sorted)
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    rank = np.arange(order.size) - starts[codes_sorted]  # 0-based rank within the family
    scaled = np.minimum(1.0, (sizes[codes_sorted] - rank) * p_sorted)
    adjusted[finite[order]] = _running_max(scaled, codes_sorted)
    return adjusted


def _running_max(values: np.ndarray, families: np.ndarray) -> np.ndarray:
    """Per position, the largest of ``values`` so far within its family (``families``: ascending integer
    codes, each family's positions together), the first of equal values (as ``groupby(...).cummax()``, which
    costs a grouping per call). Each value is ranked among the distinct values; a family's code times the
    number of ranks plus the rank only grows from one family to the next, so one running maximum of these
    keys runs within each family, and the position where each maximum was first reached gives its value."""
    levels, rank = np.unique(values, return_inverse=True)
    key = families.astype(np.int64) * levels.size + rank.reshape(-1)
    best = np.maximum.accumulate(key)
    first = np.ones(key.size, dtype=bool)
    first[1:] = key[1:] > best[:-1]  # a new maximum: a family's first position or a larger value
    return values[np.maximum.accumulate(np.where(first, np.arange(key.size), 0))]


# --- (d) pricing ------------------------------------------------------------------------------


def pricing_disparity(
    frame: pd.DataFrame,
    group_column: str,
    reference: str,
    compared: str | Sequence[str],
    covariates: Sequence[str] | Covariates = PRICING_COVARIATES,
    *,
    min_group: int = MIN_GROUP,
    weights: Mapping[str, str] | None = None,
    prepared: Prepared | None = None,
) -> pd.DataFrame:
    """Raw and adjusted rate-spread gaps (compared - reference) among originated loans.

    Columns: lei, group, reference_loans, compared_loans, reference_mean_spread,
    compared_mean_spread, raw_gap, adjusted_gap, standard_error, ci_low, ci_high, p_value,
    reason. Loans are usable rows (``excluded == ''``) with ``action_taken == 1``, a rate
    spread and every covariate. ``weights``: as for ``lender_denial_odds`` (loans are then sums of
    weights, and the least squares weighted). ``prepared``: as for ``lender_denial_odds``.
    """
    return pricing_columns(
        frame, group_column, reference, compared, covariates, min_group=min_group, weights=weights, prepared=prepared
    ).frame()


def pricing_columns(
    frame: pd.DataFrame,
    group_column: str,
    reference: str,
    compared: str | Sequence[str],
    covariates: Sequence[str] | Covariates = PRICING_COVARIATES,
    *,
    min_group: int = MIN_GROUP,
    weights: Mapping[str, str] | None = None,
    prepared: Prepared | None = None,
) -> Columns:
    """``pricing_disparity`` as ``Columns``."""
    groups = _groups(compared, reference)
    covariates = as_covariates(covariates)
    needed = ("lei", "excluded", "action_taken", "rate_spread", group_column, *covariates.columns)
    _require(frame, needed, "pricing disparity")
    prepared = _prepared(frame, prepared)
    frame = prepared.frame
    spread, priced = prepared.priced()
    values, labels = prepared.covariates(covariates)
    loans = prepared.usable() & priced & prepared.complete(covariates)
    units: _Units = (
        _Units(frame, group_column, reference, groups, loans, prepared) if weights is None
        else _WeightedUnits(frame, reference, groups, weights, loans, prepared)
    )
    rows, unit, indicator = units.rows(loans)
    weight = units.weight(rows)
    count = units.count
    if weight is None:
        reference_n = np.bincount(unit[~indicator], minlength=count)
        compared_n = np.bincount(unit[indicator], minlength=count)
        reference_mean = _ratio(np.bincount(unit[~indicator], spread[rows[~indicator]], count), reference_n)
        compared_mean = _ratio(np.bincount(unit[indicator], spread[rows[indicator]], count), compared_n)
    else:
        reference_n = np.bincount(unit[~indicator], weight[~indicator], count)
        compared_n = np.bincount(unit[indicator], weight[indicator], count)
        weighted_spread = spread[rows] * weight
        reference_mean = _ratio(np.bincount(unit[~indicator], weighted_spread[~indicator], count), reference_n)
        compared_mean = _ratio(np.bincount(unit[indicator], weighted_spread[indicator], count), compared_n)
    reason = _size_reasons(reference_n, compared_n, min_group, "loans")

    fit = reason[unit] == ""
    fitted_units, fit_unit = np.unique(unit[fit], return_inverse=True)
    # Each unit's scales once for the fit and the covariates not controlled, and the fit's standardised values
    # from the centred values they were computed with (a fitted unit's rows are all its rows, in their order:
    # the bits ``_standardise`` would give, without gathering and centring the rows again).
    _, scale, centred = _centred_scales(values[rows], unit, count)
    gap, error, df, status = _least_squares(
        spread[rows[fit]], indicator[fit], centred[fit] / scale[unit[fit]], fit_unit, fitted_units.size,
        len(covariates.numeric), None if weight is None else weight[fit],
        categories=_category_columns(labels, covariates), standardised=True,
    )
    texts = np.array(["", "too few loans for the covariates", _COLLINEAR_TEXT])
    reason[fitted_units] = texts[status]
    adjusted = np.full(count, np.nan)
    standard_error = np.full(count, np.nan)
    freedom = np.full(count, np.nan)
    adjusted[fitted_units] = np.where(status == 0, gap, np.nan)
    standard_error[fitted_units] = np.where(status == 0, error, np.nan)
    freedom[fitted_units] = df
    with np.errstate(invalid="ignore"):
        critical = stats.t.ppf(0.975, freedom)
        p_value = 2 * stats.t.sf(np.abs(adjusted / standard_error), freedom)

    return units.columns(
        {
            "reference_loans": reference_n,
            "compared_loans": compared_n,
            "reference_mean_spread": reference_mean,
            "compared_mean_spread": compared_mean,
            "raw_gap": compared_mean - reference_mean,
            "adjusted_gap": adjusted,
            "standard_error": standard_error,
            "ci_low": adjusted - critical * standard_error,
            "ci_high": adjusted + critical * standard_error,
            "p_value": p_value,
            "degrees_of_freedom": freedom,
            "not_controlled": _not_controlled(values, labels, unit, count, scale),
            "reason": reason,
        },
        ("not_controlled", "reason"),
    )


RANK_TOLERANCE = 1e-10  # of the largest eigenvalue: on reg100k's pricing fits none lies between 1e-14 and 1e-5


def _rank(matrices: np.ndarray) -> np.ndarray:
    """The rank of each symmetric positive semi-definite matrix of ``matrices`` (units, p, p): its
    eigenvalues above ``RANK_TOLERANCE`` of the largest. A category's redundant direction (every
    level present, the indicators centred) is left by rounding at 1e-20 to 1e-14 of the largest,
    across numpy's default tolerance (p × machine epsilon), which counted it in some units and not
    others (2 of reg100k's 686 pricing units): the residual degrees of freedom were one short there."""
    spectrum = np.abs(np.linalg.eigvalsh(matrices))
    rank: np.ndarray = (spectrum > RANK_TOLERANCE * spectrum.max(axis=1, keepdims=True)).sum(axis=1)
    return rank


def _least_squares(
    outcome: np.ndarray,
    indicator: np.ndarray,
    values: np.ndarray,
    unit: np.ndarray,
    count: int,
    numeric: int | None = None,
    weight: np.ndarray | None = None,
    *,
    scales: tuple[np.ndarray, np.ndarray] | None = None,
    categories: np.ndarray | None = None,
    standardised: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per unit, least squares of outcome on intercept + indicator + covariates (centred within
    the unit, so the intercept drops out), the band and category indicators after the first
    ``numeric`` covariates penalised by ``RIDGE`` as in the logistic fits (plain OLS when there
    are none): the indicator's coefficient, its heteroskedasticity-robust standard error (HC3:
    White's sandwich with each residual divided by one minus its leverage, the variant that
    holds its size in small samples, Long & Ervin 2000), the residual degrees of freedom and a
    status (0 ok, 1 no degrees of freedom left, 2 indicator collinear with the covariates).
    ``weight``: weighted least squares (probability weights; sizes and degrees of freedom are sums
    of weights, each row's leverage and sandwich term carry its weight). ``scales``: ``_scales``
    of ``values`` per unit, when known; ``categories``: as for ``_logistic``; ``standardised``: ``values`` are
    ``_standardise``'s of the covariates already (``scales`` unused)."""
    order = _by_unit(unit)  # every result is per unit: group the rows once, for _cross's and the leverages' slices
    if order is not None:
        outcome, indicator, values, unit = outcome[order], indicator[order], values[order], unit[order]
        weight = None if weight is None else weight[order]
    width = values.shape[1]
    numeric = width if numeric is None else numeric
    sizes = np.bincount(unit, weight, minlength=count).astype(np.float64)
    safe_sizes = np.maximum(sizes, 1.0) if weight is None else np.where(sizes > 0, sizes, 1.0)
    covariates = values if standardised else _standardise(values, unit, count, scales)
    columns = np.column_stack([indicator.astype(np.float64), covariates, outcome])
    weighted_columns = columns if weight is None else columns * weight[:, None]
    centred = columns - (
        _unit_sums(weighted_columns, unit, count) / safe_sizes[:, None]
    )[unit]
    row_weight = np.ones(unit.size) if weight is None else weight
    sums = _cross(centred, row_weight, unit, count)  # (units, width + 2, width + 2), outcome last
    penalty = np.zeros(width + 1)
    penalty[1 + numeric :] = RIDGE
    normal = sums[:, :-1, :-1] + np.diag(penalty)
    inverse = _inverse(normal)
    beta = np.einsum("uij,uj->ui", inverse, sums[:, :-1, -1])
    rank = _rank(sums[:, 1:-1, 1:-1]) if width else np.zeros(count, dtype=np.int64)
    # What of the indicator the covariates do not explain (a Schur complement), for collinearity:
    # without the penalty, which would hide a group identical to a category.
    left, factored = _explained(sums[:, :-1, :-1], 0, _column_categories(categories, width + 1, 1))
    if not factored.all():
        left[~factored] = _partial_variance(sums[~factored, :-1, :-1], 0, rcond=1e-10)
    x = centred[:, :-1]
    residual = centred[:, -1] - np.einsum("ij,ij->i", x, beta[unit])
    leverage = 1.0 / safe_sizes[unit] + _quadratic_forms(x, inverse, unit)
    if weight is not None:
        leverage = leverage * weight
        residual = residual * weight
    inflated = residual / np.maximum(1.0 - leverage, 1e-6)  # HC3: each residual over 1 - its leverage
    meat = _cross(x, inflated**2, unit, count)
    variance = np.einsum("ui,uij,uj->u", inverse[:, 0, :], meat, inverse[:, 0, :])
    df = sizes - 2 - rank
    status = np.select([df < 1, ~(left > COLLINEAR * sums[:, 0, 0])], [1, 2], 0)
    return beta[:, 0], np.sqrt(np.maximum(variance, 0.0)), df, status


def _quadratic_forms(x: np.ndarray, matrices: np.ndarray, unit: np.ndarray) -> np.ndarray:
    """Per row i, x_i' M x_i with M its unit's matrix; the rows grouped by unit (``_by_unit``):
    one matrix product per unit over its rows, (X_u M_u) * X_u summed across, so a row's value
    does not depend on the other units and no (rows, p, p) copy of the matrices is made."""
    result = np.zeros(x.shape[0])
    bounds = np.searchsorted(unit, np.arange(matrices.shape[0] + 1))
    with one_blas_thread():
        for index in np.flatnonzero(bounds[1:] > bounds[:-1]):
            rows = x[bounds[index] : bounds[index + 1]]
            result[bounds[index] : bounds[index + 1]] = np.einsum("ij,ij->i", rows @ matrices[index], rows)
    return result


# --- (e) outliers among neighbours ------------------------------------------------------------


def cluster_outliers(
    frame: pd.DataFrame | PairTexts,
    pairs: pd.DataFrame,
    *,
    min_neighbours: int = 5,
    share: float = 0.8,
    id_index: pd.Index | None = None,
    rows: tuple[np.ndarray, np.ndarray] | None = None,
) -> pd.DataFrame:
    """Compared applicants decided against most of their similarly situated neighbours.

    Neighbours are the reference applicants paired with ``b`` (every rank of ``pairs``), so
    ``similar_pairs`` must ask for at least ``min_neighbours``. Columns: application_id,
    lei, decision, neighbours, neighbour_approval_share; one row per applicant denied while
    at least ``share`` of its neighbours were approved, or approved while at least ``share``
    were denied; sorted by lei then application id. ``rows`` and ``frame``: as for ``matched_pair_test``.
    """
    return cluster_outlier_columns(
        frame, pairs, min_neighbours=min_neighbours, share=share, id_index=id_index, rows=rows
    ).frame()


def cluster_outlier_columns(
    frame: pd.DataFrame | PairTexts,
    pairs: pd.DataFrame,
    *,
    min_neighbours: int = 5,
    share: float = 0.8,
    id_index: pd.Index | None = None,
    rows: tuple[np.ndarray, np.ndarray] | None = None,
) -> Columns:
    """``cluster_outliers`` as ``Columns``."""
    _require(pairs, ("a", "b"), "cluster outliers: pairs")
    texts = _pair_texts(frame, "cluster outliers")
    if rows is None:
        assert isinstance(frame, pd.DataFrame)  # rows are given with PairTexts (_pair_texts)
        first, second = pair_rows(pairs, frame, id_index)
    else:
        first, second = rows
    outcome = texts.outcome
    decided = outcome[first] > 0
    first, second = first[decided], second[decided]
    # The compared applicants (rows, ascending) and each pair's position among them, as ``np.unique(second,
    # return_inverse=True)`` gives them, by marking rows (one pass, no sort).
    marked = np.zeros(outcome.size, dtype=bool)
    marked[second] = True
    applicants = np.flatnonzero(marked)
    codes = (np.cumsum(marked) - 1)[second]
    neighbours = np.bincount(codes, minlength=applicants.size)
    approvals = np.bincount(codes, outcome[first] == APPROVED, applicants.size)
    approval_share = _ratio(approvals, neighbours)
    own = outcome[applicants]
    outlier = (neighbours >= min_neighbours) & (
        ((own == DENIED) & (approval_share >= share)) | ((own == APPROVED) & (1 - approval_share >= share))
    )
    kept = np.flatnonzero(outlier)
    ids, leis = texts.application_id[applicants[kept]], texts.lei_as_read[applicants[kept]]
    if _texts_only(ids, leis):
        # Texts compare by code point in Python as in pandas: the order of a stable sort by lei, then id.
        order = np.lexsort((ids, leis))
    else:  # missing or non-text values: as texts (missing: None), sorted by pandas (missing last)
        ids, leis = (pd.Series(values, dtype="str").to_numpy(dtype=object, na_value=None) for values in (ids, leis))
        order = pd.DataFrame({"lei": leis, "id": ids}, dtype="str").sort_values(["lei", "id"], kind="stable").index
        order = order.to_numpy()
    kept, ids, leis = kept[order], ids[order], leis[order]
    return Columns(
        {
            "application_id": ids,
            "lei": leis,
            "decision": texts.decision[applicants[kept]],
            "neighbours": neighbours[kept].astype(np.int64),
            "neighbour_approval_share": approval_share[kept],
        },
        frozenset(("application_id", "lei", "decision")),
    )


def _texts_only(*columns: np.ndarray) -> bool:
    """Whether every value of ``columns`` (arrays of Python objects) is a text (none missing)."""
    return all(type(value) is str for column in columns for value in column)


# --- shared -----------------------------------------------------------------------------------

_COLLINEAR_TEXT = "group collinear with the covariates"


def _canonical_positions(frame: pd.DataFrame) -> np.ndarray | None:
    """Positions of the rows in canonical order, application-id order (shorter ids first: row numbers
    keep their order), so the floating-point sums of a fit do not depend on the order of the input's
    rows; None when the rows are in that order already."""
    if "application_id" not in frame.columns or frame.empty:
        return None
    ids = frame["application_id"].astype(str)
    order = np.lexsort((ids.to_numpy(dtype=object), ids.str.len().to_numpy()))
    return None if (order == np.arange(len(order))).all() else order


class _Units:
    """Fit units: one per lender (sorted LEI) and compared group; lenders with a usable row."""

    def __init__(
        self,
        frame: pd.DataFrame,
        group_column: str,
        reference: str,
        groups: tuple[str, ...],
        usable: np.ndarray,
        prepared: Prepared | None = None,
    ) -> None:
        """``prepared``: ``Prepared`` of ``frame`` (its canonical rows), whose masks and lenders are reused."""

        def equals(name: str) -> np.ndarray:
            return _equals(frame[group_column], name) if prepared is None else prepared.equals(group_column, name)

        self.is_reference = equals(reference)
        self.group_index = np.full(len(frame), -1, dtype=np.int64)
        for index, name in enumerate(groups):
            self.group_index[equals(name)] = index
        lenders = _lender_codes(frame) if prepared is None else prepared.lenders()
        self._lenders(usable & (self.is_reference | (self.group_index >= 0)), lenders)
        self.groups = groups
        self.count = self.leis.size * len(groups)

    def _lenders(self, taking_part: np.ndarray, lenders: tuple[np.ndarray, np.ndarray]) -> None:
        """``leis``: the sorted LEIs of the rows taking part; ``lender``: per row, its LEI's
        position among them (-1 for rows not taking part or without an LEI)."""
        codes, names = lenders
        known = taking_part & (codes >= 0)
        # Rows not known count in an extra last bin and read position -1 (np.where, not masked copies: 3x faster).
        row_code = np.where(known, codes, names.size)
        present = np.flatnonzero(np.bincount(row_code, minlength=names.size + 1)[:-1])
        self.leis = names[present]  # sorted, as np.unique
        self.codes = present  # per position, the lender code
        position = np.full(names.size + 1, -1, dtype=np.int64)
        position[present] = np.arange(present.size)
        self.lender = position[row_code]

    def rows(self, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows of every unit under ``mask`` (reference rows once per compared group), their
        unit number and whether they belong to the compared group; grouped by unit (``_grouped``),
        each unit's reference rows first, each part in row order."""
        width = len(self.groups)
        reference = np.flatnonzero(mask & self.is_reference & (self.lender >= 0))
        parts_rows, parts_unit, parts_indicator = [], [], []
        for index in range(width):
            compared = np.flatnonzero(mask & (self.group_index == index) & (self.lender >= 0))
            parts_rows += [reference, compared]
            parts_unit += [self.lender[reference] * width + index, self.lender[compared] * width + index]
            parts_indicator += [np.zeros(reference.size, bool), np.ones(compared.size, bool)]
        rows, unit, indicator = _grouped(
            np.concatenate(parts_rows), np.concatenate(parts_unit), np.concatenate(parts_indicator)
        )
        return rows, unit, indicator

    def weight(self, rows: np.ndarray) -> np.ndarray | None:
        """The weight of each row of ``rows`` (as ``rows`` returned them); None: every row weighs 1."""
        return None

    def columns(self, columns: Mapping[str, np.ndarray], texts: Iterable[str]) -> Columns:
        """``table`` as ``Columns``: ``columns`` are arrays, those named in ``texts`` (and lei, group) texts."""
        return Columns(
            {
                "lei": np.repeat(self.leis, len(self.groups)),
                "group": np.tile(np.array(self.groups, dtype=object), self.leis.size),
            }
            | dict(columns),
            frozenset(("lei", "group", *texts)),
        )



class _WeightedUnits(_Units):
    """Fit units whose members weigh what the group's weight column says (``weighted_rows``): an
    applicant whose group is estimated is in the reference rows with its probability of the
    reference group and in each compared group's rows with its probability of that group; one
    whose group is reported weighs 1 in its group and 0 elsewhere. Rows of weight 0 are left out."""

    def __init__(
        self,
        frame: pd.DataFrame,
        reference: str,
        groups: tuple[str, ...],
        weights: Mapping[str, str],
        usable: np.ndarray,
        prepared: Prepared | None = None,
    ) -> None:
        _require(frame, [weights[name] for name in (reference, *groups) if name in weights], "weighted groups")

        def column(name: str) -> np.ndarray:
            if name not in weights:
                return np.zeros(len(frame))
            values: np.ndarray = frame[weights[name]].to_numpy(dtype=np.float64, na_value=np.nan)
            return np.where(np.isfinite(values), values, 0.0)

        self.reference_weight = column(reference)
        self.group_weights = [column(name) for name in groups]
        self.is_reference = self.reference_weight > 0
        self.group_index = np.full(len(frame), -1, dtype=np.int64)  # unused: rows() reads the weights
        taking_part = usable & (self.is_reference | np.any([w > 0 for w in self.group_weights], axis=0))
        self._lenders(taking_part, _lender_codes(frame) if prepared is None else prepared.lenders())
        self.groups = groups
        self.count = self.leis.size * len(groups)
        self._weights: np.ndarray = np.empty(0)

    def rows(self, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        width = len(self.groups)
        reference = np.flatnonzero(mask & self.is_reference & (self.lender >= 0))
        parts_rows, parts_unit, parts_indicator, parts_weight = [], [], [], []
        for index in range(width):
            compared = np.flatnonzero(mask & (self.group_weights[index] > 0) & (self.lender >= 0))
            parts_rows += [reference, compared]
            parts_unit += [self.lender[reference] * width + index, self.lender[compared] * width + index]
            parts_indicator += [np.zeros(reference.size, bool), np.ones(compared.size, bool)]
            parts_weight += [self.reference_weight[reference], self.group_weights[index][compared]]
        rows, unit, indicator, self._weights = _grouped(
            np.concatenate(parts_rows), np.concatenate(parts_unit), np.concatenate(parts_indicator),
            np.concatenate(parts_weight),
        )
        return rows, unit, indicator

    def weight(self, rows: np.ndarray) -> np.ndarray | None:
        if rows.size != self._weights.size:
            raise ValueError("weight() answers for the rows of the last rows() call")
        return self._weights


def _grouped(unit_rows: np.ndarray, unit: np.ndarray, *columns: np.ndarray) -> tuple[np.ndarray, ...]:
    """``_Units.rows``' arrays (rows, their unit, and per row ``columns``) grouped by unit, each unit's
    rows in their order (a stable sort): every sum per unit is the same, and the fits, which group
    their rows by unit, need not copy their matrices to do it."""
    order = _by_unit(unit)
    if order is None:
        return (unit_rows, unit, *columns)
    return (unit_rows[order], unit[order], *(column[order] for column in columns))


def _equals(values: pd.Series, value: str) -> np.ndarray:
    """Per row, whether ``values`` is ``value`` (missing: no). Text columns held by Arrow are compared
    by Arrow itself (a fifth of the cost of pandas' comparison, whose Series and checks cost per call)."""
    if isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow":
        found: np.ndarray = pc.equal(pa.array(values.array), value).fill_null(False).to_numpy(zero_copy_only=False)
        return found
    equal: np.ndarray = values.eq(value).fillna(False).to_numpy(dtype=bool)
    return equal


def _lender_codes(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the position of its LEI among the frame's LEIs sorted as text (-1: none), and those LEIs."""
    lei = frame["lei"].astype("str").to_numpy(dtype=object, na_value=None)
    codes, names = pd.factorize(lei, sort=True)
    return codes.astype(np.int64), np.asarray(names, dtype=object)


def _groups(compared: str | Sequence[str], reference: str) -> tuple[str, ...]:
    groups = (compared,) if isinstance(compared, str) else tuple(compared)
    if not groups or len(set(groups)) != len(groups):
        raise UsageError(f"compared groups must be given once each, got {groups!r}")
    if reference in groups:
        raise UsageError(f"reference group '{reference}' is also a compared group")
    return groups


def _require(frame: pd.DataFrame, names: Iterable[str], what: str) -> None:
    """A usage error naming the first of ``names`` that is not a column of ``frame`` (and the closest
    column's name); the columns listed as texts only then, not on every call."""
    for name in names:
        if name not in frame.columns:
            close = closest(name, [str(known) for known in frame.columns], cutoff=0.75)
            hint = f" (did you mean '{close}'?)" if close else ""
            raise UsageError(f"{what}: no column '{name}'{hint}")


def _usable(frame: pd.DataFrame) -> np.ndarray:
    usable: np.ndarray = frame["excluded"].eq("").fillna(False).to_numpy(dtype=bool) & frame["decision"].isin(
        ("approved", "denied")
    ).to_numpy(dtype=bool)
    return usable


def _covariates(frame: pd.DataFrame, covariates: Covariates) -> np.ndarray:
    """The model's covariate columns as floats (n, width): numeric columns (logarithms of
    LOG_COVARIATES, NaN when <= 0), then band and category indicators (``Covariates``). A row
    with a numeric or banded value missing is NaN throughout its numeric part (left out of
    the fit); a missing category is a level of its own."""
    return _labelled_covariates(frame, covariates)[0]


def covariate_matrix(frame: pd.DataFrame, covariates: Sequence[str] | Covariates) -> tuple[np.ndarray, tuple[str, ...]]:
    """The model's covariate columns (numeric, band and category indicators; see ``Covariates``)
    and, per column, the covariate it comes from ('income', 'dti bands', 'loan_type')."""
    return _labelled_covariates(frame, as_covariates(covariates))


def _labelled_covariates(
    frame: pd.DataFrame,
    covariates: Covariates,
    indicators: dict[tuple[str, tuple[str, ...] | None], list[np.ndarray]] | None = None,
) -> tuple[np.ndarray, tuple[str, ...]]:
    """``_covariates`` and, per column, the covariate it comes from ('dti bands', 'loan_type').
    ``indicators``: each category's ``_indicators`` by column and levels, filled and reused."""
    columns, labels = [], []
    for name in covariates.numeric:
        columns.append(_numeric(frame, name))
        labels.append(name)
    for name, edges in covariates.bands:
        values = _numeric(frame, name, logarithm=False)
        band = np.searchsorted(np.asarray(edges, dtype=np.float64), values, side="right")
        for index in range(1, len(edges) + 1):
            columns.append(np.where(np.isnan(values), np.nan, (band == index).astype(np.float64)))
            labels.append(f"{name} bands")
    known = dict(covariates.levels)
    for name in covariates.categorical:
        key = (name, known.get(name))
        if indicators is None or key not in indicators:
            made = _indicators(frame[name], known.get(name))
            if indicators is None:
                columns.extend(made)
                labels.extend([name] * len(made))
                continue
            indicators[key] = made
        columns.extend(indicators[key])
        labels.extend([name] * len(indicators[key]))
    return _stacked(columns, len(frame)), tuple(labels)


STACK_VALUES = 131_072  # values of a block of ``_stacked`` (1 MB): 4,096 rows of 32 columns stay in cache


def _stacked(columns: list[np.ndarray], rows: int) -> np.ndarray:
    """``np.column_stack(columns)`` of float64 columns of ``rows`` rows (always float64), filled a block
    of rows at a time: the block's pieces of the columns, stacked and transposed into place while in cache
    (1.6-1.9x faster at 200,000 rows of 30 columns than writing one column at a time down the whole matrix,
    which touches every row's cache line once per column). A block holds ``STACK_VALUES`` values whatever
    the width: a fixed number of rows of hundreds of columns (a covariate of many levels) would not fit in
    the cache and be slower than ``np.column_stack``. The same values: copies."""
    matrix = np.empty((rows, len(columns)))
    step = max(1, STACK_VALUES // max(len(columns), 1))
    for start in range(0, rows, step) if columns else ():
        stop = start + step
        matrix[start:stop] = np.array([column[start:stop] for column in columns], dtype=np.float64).T
    return matrix


def _not_controlled(
    values: np.ndarray, labels: tuple[str, ...], unit: np.ndarray, count: int, spread: np.ndarray | None = None
) -> np.ndarray:
    """Per unit, the covariates (comma-separated) every column of which is constant in the unit's
    rows: the fit could not adjust for them (a lender making only conventional loans cannot be
    adjusted for loan type), so explanations must not claim it did. ``spread``: ``_scales``' of
    these rows, when known."""
    if not labels or unit.size == 0:
        return np.full(count, "", dtype=object)
    if spread is None:
        _, spread = _scales(values, unit, count)
    constant = ~np.isfinite(spread)  # (units, columns)
    names = list(dict.fromkeys(labels))
    owner = np.array([names.index(label) for label in labels])
    flat = np.ones((count, len(names)), dtype=bool)
    for index in range(len(names)):
        flat[:, index] = constant[:, owner == index].all(axis=1)
    present = np.bincount(unit, minlength=count) > 0
    texts = [", ".join(name for name, gone in zip(names, row, strict=True) if gone) for row in flat]
    return np.array([text if seen else "" for text, seen in zip(texts, present, strict=True)], dtype=object)


def _numeric(frame: pd.DataFrame, name: str, *, logarithm: bool = True) -> np.ndarray:
    if not pd.api.types.is_numeric_dtype(frame[name]):
        raise UsageError(f"covariate '{name}' is not numeric ({frame[name].dtype}): name it as a categorical covariate")
    column: np.ndarray = frame[name].to_numpy(dtype=np.float64, na_value=np.nan)
    if logarithm and name in LOG_COVARIATES:
        column = np.where(column > 0, np.log(np.where(column > 0, column, 1.0)), np.nan)
    return column


def _indicators(values: pd.Series, levels: tuple[str, ...] | None = None) -> list[np.ndarray]:
    """One 0/1 column per value of ``levels`` (``category_levels``: the register's, so every
    partition has the same columns; by default the frame's own). There is no base level: the
    columns are centred within each lender's fit and their coefficients penalised (``RIDGE``),
    which makes the fit unique and the same whichever lenders share a partition."""
    if levels is None:
        levels = category_levels(values)
    if values.dtype.kind in "iu" or values.dtype == np.float64:  # codes: factorized as numbers, NaN missing
        # (not float32 or float16, whose numpy scalars ``level_text`` writes otherwise than the Python floats
        # of the object path)
        codes, uniques = pd.factorize(values.to_numpy(), use_na_sentinel=True)
    else:
        codes, uniques = pd.factorize(values.astype(object).where(values.notna(), None), use_na_sentinel=True)
    position = {level: index for index, level in enumerate(levels)}
    found = [position.get(level_text(value), -1) for value in uniques]
    mapped = np.array([*found, position.get(MISSING_LEVEL, -1)], dtype=np.int64)
    level = mapped[codes]  # the sentinel -1 takes the last entry: missing
    if (level < 0).any():
        raise UsageError(f"categorical covariate '{values.name}': a value outside the register's levels")
    return [(level == index).astype(np.float64) for index in range(len(levels))]


def _standardise(
    values: np.ndarray, unit: np.ndarray, count: int, scales: tuple[np.ndarray, np.ndarray] | None = None
) -> np.ndarray:
    """Columns centred and scaled within each unit; a column constant in a unit becomes 0.
    ``scales``: ``_scales(values, unit, count)``, when known."""
    if values.shape[1] == 0:
        return values
    means, spread = _scales(values, unit, count) if scales is None else scales
    standardised: np.ndarray = (values - means[unit]) / spread[unit]
    return standardised


def _scales(values: np.ndarray, unit: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Per unit and column: the mean and the standard deviation (inf for a column constant in
    the unit, so that it standardises to 0)."""
    means, spread, _ = _centred_scales(values, unit, count)
    return means, spread


def _centred_scales(values: np.ndarray, unit: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``_scales`` and the values centred by them (``values - means[unit]``, which ``_standardise``
    would compute again)."""
    sizes = np.maximum(np.bincount(unit, minlength=count), 1).astype(np.float64)
    if values.shape[1] > 1 and _by_unit(unit) is None:
        # Rows grouped by unit: each unit's block once, in cache, for its mean, its centred values and
        # their squares' sum (``_unit_sums``' block sums: the same bits as the passes below).
        blocks = np.ascontiguousarray(values, dtype=np.float64)
        bounds = np.searchsorted(unit, np.arange(count + 1))
        means = np.zeros((count, values.shape[1]))
        squares = np.zeros((count, values.shape[1]))
        centred = np.empty(blocks.shape)
        for index in np.flatnonzero(bounds[1:] > bounds[:-1]):
            start, stop = bounds[index], bounds[index + 1]
            means[index] = blocks[start:stop].sum(axis=0) / sizes[index]
            block = np.subtract(blocks[start:stop], means[index], out=centred[start:stop])
            squares[index] = (block**2).sum(axis=0)
        spread = np.sqrt(squares / sizes[:, None])
        constant = spread <= 1e-9 * np.maximum(np.abs(means), 1.0)
        return means, np.where(constant, np.inf, spread), centred
    cells = _cells(unit, values.shape[1])  # once for both sums
    means = _unit_sums(values, unit, count, cells) / sizes[:, None]
    centred = values - means[unit]
    spread = np.sqrt(_unit_sums(centred**2, unit, count, cells) / sizes[:, None])
    constant = spread <= 1e-9 * np.maximum(np.abs(means), 1.0)
    return means, np.where(constant, np.inf, spread), centred


def _cells(unit: np.ndarray, width: int) -> np.ndarray:
    """``_unit_sums``' bin of each (row, column) cell of a (rows, ``width``) matrix, row-major."""
    cells: np.ndarray = (unit[:, None] * width + np.arange(width)).ravel()
    return cells


def _unit_sums(values: np.ndarray, unit: np.ndarray, count: int, cells: np.ndarray | None = None) -> np.ndarray:
    """Per unit and column, the sum of the unit's rows (units, columns), each unit's rows added in
    their order, as one ``np.bincount`` per column adds them. Rows grouped by unit, two columns or
    more: per unit, its block of rows summed down the columns (numpy adds a C-ordered block's rows
    one after another into the sums: the bits of ``np.bincount``, tested; a single column it would
    sum pairwise). Otherwise one ``np.bincount`` over the (row, column) cells, in one pass over the
    rows. ``cells``: ``_cells(unit, columns)``, when known."""
    width = values.shape[1]
    if width == 0:
        return np.zeros((count, 0))
    if width > 1 and _by_unit(unit) is None:
        blocks = np.ascontiguousarray(values, dtype=np.float64)
        bounds = np.searchsorted(unit, np.arange(count + 1))
        found = np.zeros((count, width))
        for index in np.flatnonzero(bounds[1:] > bounds[:-1]):
            found[index] = blocks[bounds[index] : bounds[index + 1]].sum(axis=0)
        return found
    cells = _cells(unit, width) if cells is None else cells
    sums: np.ndarray = np.bincount(cells, np.ascontiguousarray(values, dtype=np.float64).ravel(), count * width)
    return sums.reshape(count, width)


@functools.cache
def _blas() -> ThreadpoolController:
    """The process's BLAS libraries, found once (a look-up reads /proc/self/maps: ~8 ms)."""
    return ThreadpoolController()


def one_blas_thread() -> Any:
    """A context in which matrix products run on one BLAS thread."""
    return _blas().limit(limits=1, user_api="blas")


def _by_unit(unit: np.ndarray) -> np.ndarray | None:
    """The stable order that groups rows by unit (each unit's rows keep their order); None when
    they are grouped already."""
    if unit.size < 2 or bool((unit[1:] >= unit[:-1]).all()):
        return None
    return stable_order(unit)


def stable_order(keys: np.ndarray) -> np.ndarray:
    """``np.argsort(keys, kind="stable")`` of integer keys: as 16-bit keys when they all fit, which numpy
    sorts by radix (4-20x faster than its merge sort of 64-bit keys); a stable order is unique, so the same."""
    if keys.size and keys.dtype.kind in "iu" and keys.min() >= 0 and keys.max() <= np.iinfo(np.uint16).max:
        keys = keys.astype(np.uint16)
    order: np.ndarray = np.argsort(keys, kind="stable")
    return order


@typing.overload
def _cross(
    design: np.ndarray, weight: np.ndarray, unit: np.ndarray, count: int, only: np.ndarray | None = None
) -> np.ndarray: ...


@typing.overload
def _cross(
    design: np.ndarray, weight: np.ndarray, unit: np.ndarray, count: int, only: np.ndarray | None = None,
    *, vector: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]: ...


def _cross(
    design: np.ndarray, weight: np.ndarray, unit: np.ndarray, count: int, only: np.ndarray | None = None,
    *, vector: np.ndarray | None = None,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Per-unit weighted cross products sum_i w_i x_i x_i' as (units, p, p): one matrix product
    per unit over its rows in their order (a stable sort, skipped when the rows are grouped by
    unit already), so a unit's sums do not depend on the other units. ``only`` (a mask of
    units): the others are left zero. ``vector``: also sum_i x_i v_i per unit, (units, p)
    (a Newton step's score), from the same slices."""
    width = design.shape[1]
    result = np.zeros((count, width, width))
    order = _by_unit(unit)
    if order is not None:
        design, weight, unit = design[order], weight[order], unit[order]
        vector = None if vector is None else vector[order]
    bounds = np.searchsorted(unit, np.arange(count + 1))
    sums = None if vector is None else np.zeros((count, width))
    with one_blas_thread():  # one thread: the same kernel, so the same sums, in every process
        present = bounds[1:] > bounds[:-1]
        for index in np.flatnonzero(present if only is None else present & only):
            start, stop = bounds[index], bounds[index + 1]
            rows = design[start:stop]
            result[index] = (rows * weight[start:stop, None]).T @ rows  # weighted per unit: in cache
            if sums is not None and vector is not None:
                sums[index] = vector[start:stop] @ rows
    return result if sums is None else (result, sums)


PIVOT = 1e-10  # a Cholesky pivot below this share of its diagonal entry: the column is (nearly) collinear
# ``_inverse`` inverts directly only matrices whose every pivot is at least this share of its diagonal entry: an
# ill-conditioned normal matrix (condition ~1e8 and more) is inverted by the pseudo-inverse, which is closer to the
# exact inverse there (np.linalg.inv drifted up to 2% in a pricing gap, 50% in a standard error under HC3).
INVERSE_PIVOT = 1e-6


def _definite(information: np.ndarray, pivot: float = PIVOT) -> tuple[np.ndarray, np.ndarray]:
    """Positive semi-definite matrices (units, p, p) made ready for a factorisation: a column that
    is zero throughout (a covariate constant in the unit, standardised to 0 and not penalised) gets
    a 1 on the diagonal; and per unit, whether its Cholesky factorisation succeeds with every pivot
    at least ``PIVOT`` of its diagonal entry (else covariates are collinear within it)."""
    matrices = information.copy()
    empty = (matrices == 0).all(axis=2)
    units, columns = np.nonzero(empty)
    matrices[units, columns, columns] = 1.0
    good = np.ones(matrices.shape[0], dtype=bool)
    factor = np.zeros_like(matrices)
    try:
        factor = np.linalg.cholesky(matrices)
    except np.linalg.LinAlgError:
        for index in range(matrices.shape[0]):
            try:
                factor[index] = np.linalg.cholesky(matrices[index])
            except np.linalg.LinAlgError:
                good[index] = False
    pivots = np.diagonal(factor, axis1=1, axis2=2) ** 2
    good &= (pivots > pivot * np.maximum(np.diagonal(matrices, axis1=1, axis2=2), 0.0)).all(axis=1)
    return matrices, good


def _solve_information(information: np.ndarray, gradient: np.ndarray) -> np.ndarray:
    """Newton steps: per unit, the solution of ``information @ step = gradient`` (positive
    semi-definite matrices, (units, p, p)), checked by a Cholesky factorisation (``_definite``). A
    column that is zero throughout gets no step (the gradient there is 0); a unit whose factorisation
    fails or has a pivot below ``PIVOT`` of its diagonal entry is solved with the pseudo-inverse, as
    all units once were."""
    if information.shape[0] == 0:
        return np.zeros(gradient.shape)
    matrices, good = _definite(information)
    step = np.zeros(gradient.shape)
    if good.any():
        step[good] = np.linalg.solve(matrices[good], gradient[good][:, :, None])[:, :, 0]
    if not good.all():
        step[~good] = np.einsum(
            "uij,uj->ui", np.linalg.pinv(information[~good], hermitian=True), gradient[~good]
        )
    return step


def _inverse(information: np.ndarray) -> np.ndarray:
    """Per unit, the pseudo-inverse of a positive semi-definite matrix (units, p, p): where its
    Cholesky factorisation passes with every pivot at least ``INVERSE_PIVOT`` of its diagonal entry
    (``_definite``), its inverse (``np.linalg.inv``; a column zero throughout gets zeros, as the
    pseudo-inverse gives it), a tenth of the cost of the pseudo-inverse's eigendecomposition;
    elsewhere the pseudo-inverse."""
    if information.shape[0] == 0:
        return np.zeros(information.shape)
    matrices, good = _definite(information, INVERSE_PIVOT)
    inverse = np.zeros(information.shape)
    if good.any():
        empty = (information[good] == 0).all(axis=2)
        found = np.linalg.inv(matrices[good])
        found[np.broadcast_to(empty[:, :, None], found.shape) | np.broadcast_to(empty[:, None, :], found.shape)] = 0.0
        inverse[good] = found
    if not good.all():
        inverse[~good] = np.linalg.pinv(information[~good], hermitian=True)
    return inverse


def _schur_complement(information: np.ndarray, index: int) -> np.ndarray:
    """``_partial_variance(information, index)`` of positive semi-definite matrices: where the
    Cholesky factorisation passes (``_definite``), 1 / (the inverse's entry ``index``), the same
    quantity without the pseudo-inverse's eigendecomposition (0 where the column is zero throughout,
    as there); elsewhere ``_partial_variance``."""
    left = np.zeros(information.shape[0])
    if information.shape[0] == 0:
        return left
    matrices, good = _definite(information)
    good &= ~(information[:, index] == 0).all(axis=1)
    if good.any():
        target = np.zeros((int(good.sum()), information.shape[1], 1))
        target[:, index, 0] = 1.0
        left[good] = 1.0 / np.linalg.solve(matrices[good], target)[:, index, 0]
    if not good.all():
        left[~good] = _partial_variance(information[~good], index)
    return left


def _explained(matrices: np.ndarray, index: int, categories: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``_partial_variance(matrices, index, rcond=1e-10)`` of unpenalised cross products (units, p, p)
    whose columns ``categories`` says belong to a category (its number; -1 none; its indicators sum to
    one in every row, as ``_indicators`` makes them): a category's standardised indicators are
    linearly dependent, so the matrix is singular; with each category's first level that varies in
    the unit left out (its row and column
    taken as zero: the others span what it spans), the rest is factorised by Cholesky
    (``_definite``) and the Schur complement is solved, without the pseudo-inverse's
    eigendecomposition; and per unit whether the factorisation passed (elsewhere the caller takes
    ``_partial_variance``). The pseudo-inverse drops directions below 1e-10 of the largest, the
    factorisation refuses pivots below ``PIVOT`` of their diagonal entry: the same units pass both
    but for covariates collinear to within that margin."""
    count = matrices.shape[0]
    reduced = matrices.copy()
    varies = ~(matrices == 0).all(axis=2)
    for category in np.unique(categories[categories >= 0]):
        columns = np.flatnonzero(categories == category)
        has = varies[:, columns].sum(axis=1) >= 2  # one level that varies alone would not be a category's
        base = columns[np.argmax(varies[:, columns], axis=1)][has]
        units = np.flatnonzero(has)
        reduced[units, base, :] = 0.0
        reduced[units, :, base] = 0.0
    left = np.zeros(count)
    if count == 0:
        return left, np.ones(0, dtype=bool)
    prepared, good = _definite(reduced)
    good &= varies[:, index]
    if good.any():
        target = np.zeros((int(good.sum()), matrices.shape[1], 1))
        target[:, index, 0] = 1.0
        left[good] = 1.0 / np.linalg.solve(prepared[good], target)[:, index, 0]
    return left, good


def _partial_variance(information: np.ndarray, index: int, rcond: float = 1e-15) -> np.ndarray:
    """Schur complement of entry ``index``: what of it the other columns do not explain
    (``rcond``: directions of the others below this share of their largest count as absent)."""
    others = [column for column in range(information.shape[1]) if column != index]
    block = information[:, others][:, :, others]
    side = information[:, index, others]
    left: np.ndarray = information[:, index, index] - np.einsum(
        "ui,uij,uj->u", side, np.linalg.pinv(block, rcond=rcond, hermitian=True), side
    )
    return left


class Columns(typing.NamedTuple):
    """A table as arrays, its frame built once (``frame``): per column its values in order, the columns
    named in ``texts`` arrays of Python strings (None or NaN: missing) that become text columns (dtype
    'str'). ``tables.audit_tables`` joins the comparisons' tables as arrays and builds one frame."""

    values: dict[str, np.ndarray]
    texts: frozenset[str]

    def frame(self) -> pd.DataFrame:
        texts = self.texts  # text columns as arrays, not Series: a Series costs an index and its checks per column
        return pd.DataFrame(
            {name: pd.array(values, dtype="str") if name in texts else values for name, values in self.values.items()}
        )


class PairTexts(typing.NamedTuple):
    """The text columns of a frame the pair tests read (``matched_pair_test``, ``cluster_outliers``),
    as arrays of Python objects, and each row's lender code: made once for the tests of every
    comparison, not converted (and searched for missing values) again by each test."""

    application_id: np.ndarray  # as read (missing stays missing)
    lei_as_read: np.ndarray
    lei: np.ndarray  # '' for missing
    decision: np.ndarray  # '' for missing
    lender: np.ndarray  # per row, the position of ``lei`` among ``leis``
    leis: np.ndarray  # the distinct ``lei`` texts, sorted
    outcome: np.ndarray  # per row, ``decision`` as a code: APPROVED, DENIED, or 0 for any other (missing too)

    @classmethod
    def of(cls, frame: pd.DataFrame) -> PairTexts:
        lei = frame["lei"].to_numpy(dtype=object, na_value="")
        lender, leis = pd.factorize(lei, sort=True)  # Python's text order: the order of pandas' sort of texts
        decision = frame["decision"].to_numpy(dtype=object, na_value="")
        codes, decisions = pd.factorize(decision)
        outcome = np.array([_OUTCOMES.get(text, 0) for text in decisions] + [0], dtype=np.int8)[codes]
        return cls(
            frame["application_id"].to_numpy(),
            frame["lei"].to_numpy(),
            lei,
            decision,
            lender,
            np.asarray(leis, dtype=object),
            outcome,
        )


APPROVED, DENIED = 1, 2  # ``PairTexts.outcome``
_OUTCOMES = {"approved": APPROVED, "denied": DENIED}


def _pair_texts(frame: pd.DataFrame | PairTexts, what: str) -> PairTexts:
    if isinstance(frame, PairTexts):
        return frame
    _require(frame, ("application_id", "lei", "decision"), what)
    return PairTexts.of(frame)


def application_index(frame: pd.DataFrame) -> pd.Index:
    """The frame's application ids (as text) as an index, to find pair members' rows; build it
    once per frame and pass it as ``id_index`` to the pair functions."""
    return pd.Index(frame["application_id"].astype("str").to_numpy(dtype=object))  # plain strings hash fastest


def pair_rows(
    pairs: pd.DataFrame, frame: pd.DataFrame, id_index: pd.Index | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The rows of ``frame`` of each pair's ``a`` and ``b`` (UsageError for an id not in it)."""
    _require(pairs, ("a", "b"), "pairs")
    id_index = application_index(frame) if id_index is None else id_index
    return _lookup(id_index, pairs["a"], "a"), _lookup(id_index, pairs["b"], "b")


def _lookup(id_index: pd.Index, ids: pd.Series, column: str) -> np.ndarray:
    positions: np.ndarray = id_index.get_indexer(ids.astype("str").to_numpy(dtype=object))
    if (positions < 0).any():
        missing = ids.astype("str").to_numpy()[positions < 0]
        raise UsageError(f"pairs: column '{column}': application id '{missing[0]}' is not in the frame")
    return positions


def _size_reasons(reference: np.ndarray, compared: np.ndarray, minimum: int, noun: str) -> np.ndarray:
    return _first_reason(
        np.full(reference.size, "", dtype=object),
        (compared == 0, f"no compared {noun}"),
        (reference == 0, f"no reference {noun}"),
        (compared < minimum, f"fewer than {minimum} compared {noun}"),
        (reference < minimum, f"fewer than {minimum} reference {noun}"),
    )


def _first_reason(reason: np.ndarray, *rules: tuple[np.ndarray, str]) -> np.ndarray:
    """Fill empty reasons with the first rule that applies."""
    for applies, text in rules:
        reason = np.where((reason == "") & applies, text, reason).astype(object)
    return reason


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio: np.ndarray = np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1), np.nan)
    return ratio
