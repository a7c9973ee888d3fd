"""A reference table → synthetic base applicants with its marginals and correlations.

A Gaussian copula: each numeric column is mapped to normal scores through its empirical
distribution (mid-ranks), the correlation matrix of the scores is estimated, correlated normal
vectors are drawn and mapped back through each column's empirical quantiles, so every
synthetic column has the reference's marginal distribution (values inside its range) and the
columns keep their rank correlations. Text columns are taken together from one reference row
chosen at random (their joint distribution is kept, not their dependence on the numbers).
Identities are generated with ``mimesis`` (first and last names, a ULI-like id) when asked
for: a model that reads names gets realistic ones; the twins hold them fixed. Everything is
drawn from ``seed``: the same seed gives the same profiles.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import norm

__all__ = ["synthetic_profiles"]


def synthetic_profiles(reference: pd.DataFrame, count: int, seed: int, *, identities: bool = False) -> pd.DataFrame:
    """``count`` synthetic rows with the columns of ``reference``."""
    rng = np.random.default_rng(seed)
    numeric = [name for name in reference.columns if pd.api.types.is_numeric_dtype(reference[name].dtype)]
    other = [name for name in reference.columns if name not in numeric]
    out = pd.DataFrame(index=pd.RangeIndex(count))
    if numeric:
        values = reference[numeric].to_numpy(dtype=np.float64)
        scores = np.column_stack([_normal_scores(values[:, index]) for index in range(len(numeric))])
        correlation = _correlation(scores)
        draws = rng.multivariate_normal(np.zeros(len(numeric)), correlation, size=count, method="eigh")
        uniform = norm.cdf(draws)
        for index, name in enumerate(numeric):
            column = values[:, index]
            finite = np.sort(column[np.isfinite(column)])
            missing_share = 1 - finite.size / max(len(column), 1)
            synthetic = (
                np.quantile(finite, uniform[:, index], method="inverted_cdf") if finite.size else np.full(count, np.nan)
            )
            synthetic = synthetic.astype(np.float64)
            synthetic[rng.random(count) < missing_share] = np.nan
            out[name] = synthetic.astype(reference[name].dtype) if not np.isnan(synthetic).any() else synthetic
    if other:
        rows = rng.integers(0, len(reference), size=count)
        picked = reference[other].iloc[rows].reset_index(drop=True)
        for name in other:
            out[name] = picked[name].to_numpy()
    out = out[list(reference.columns)]
    if identities:
        from mimesis import Generic, Locale

        person = Generic(locale=Locale.EN, seed=seed)
        out["applicant_first_name"] = [person.person.first_name() for _ in range(count)]
        out["applicant_last_name"] = [person.person.last_name() for _ in range(count)]
        out["application_id"] = [f"SYN{person.code.imei()}" for _ in range(count)]
    else:
        out["application_id"] = [f"synthetic-{index + 1}" for index in range(count)]
    return out


def _normal_scores(column: np.ndarray) -> np.ndarray:
    """Normal scores of the mid-ranks; 0 for missing values."""
    finite = np.isfinite(column)
    scores = np.zeros(len(column))
    if finite.sum() > 1:
        ranks = pd.Series(column[finite]).rank(method="average").to_numpy()
        scores[finite] = norm.ppf(ranks / (finite.sum() + 1))
    return scores


def _correlation(scores: np.ndarray) -> np.ndarray:
    if scores.shape[1] == 1:
        return np.ones((1, 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        correlation = np.corrcoef(scores, rowvar=False)
    correlation = np.nan_to_num(correlation)
    np.fill_diagonal(correlation, 1.0)
    return correlation
