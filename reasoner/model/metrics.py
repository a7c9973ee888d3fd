"""Twin predictions and decisions on data → flip rates and group fairness metrics.

**Flip rate** (per attribute and per pair of groups *g*, *h*): the share of base applicants
whose twins of *g* and *h* get different decisions, with the exact (Clopper–Pearson) 95%
binomial interval (``scipy.stats.binomtest(...).proportion_ci(method='exact')``). Per
attribute, a base applicant flips when any two of its twins differ. **Score shift**: the mean
and largest absolute difference of the two twins' scores.

**Group metrics**, AIF360's definitions and names, for each group *g* of an attribute (and of
the intersection of the attributes) against the reference (privileged) group *r*, with ŷ = 1
the favourable decision and y the known outcome:

==================================  ==========================================================
``disparate_impact``                P(ŷ=1 | g) / P(ŷ=1 | r); below 0.8 breaches the four-fifths rule
``statistical_parity_difference``   P(ŷ=1 | g) − P(ŷ=1 | r)  (signed; Fairlearn's demographic parity difference)
``equal_opportunity_difference``    TPR_g − TPR_r, TPR = P(ŷ=1 | y=1)   (needs the outcome)
``average_odds_difference``         ½[(FPR_g − FPR_r) + (TPR_g − TPR_r)], FPR = P(ŷ=1 | y=0)   (needs the outcome)
==================================  ==========================================================

And Fairlearn's between-group summaries over every group of the attribute with metrics
(rows with group and reference ``*``): ``demographic_parity_difference`` (largest minus
smallest favourable rate), ``demographic_parity_ratio`` (smallest over largest) and
``equalized_odds_difference`` (the larger of the TPR and FPR ranges; needs the outcome).

Confidence intervals: stratified bootstrap (each group's rows resampled with replacement,
drawn as multinomial counts of its (y, ŷ) cells), ``replicates`` replicates with a fixed seed,
95% percentile intervals. A metric undefined in a replicate (a zero denominator) is left out of
that replicate; a group with fewer than ``min_group`` rows gets no metrics.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import combinations

import numpy as np
import pandas as pd
from scipy.stats import binomtest

__all__ = [
    "FLIP_COLUMNS",
    "FOUR_FIFTHS",
    "four_fifths_breaches",
    "GROUP_METRICS",
    "SPREAD_METRICS",
    "clopper_pearson",
    "flip_rates",
    "flips",
    "group_metrics",
]

FOUR_FIFTHS = 0.8  # the four-fifths rule of adverse-impact analysis (29 CFR 1607.4(D))


def four_fifths_breaches(metrics: pd.DataFrame, *, whole_interval: bool = False) -> pd.DataFrame:
    """The ``disparate_impact`` rows of ``metrics`` that breach the four-fifths rule: the ratio below
    ``FOUR_FIFTHS``; with ``whole_interval``, its whole 95% interval (``ci_high``) below it, the
    stricter test the lending rules bind as evidence (``rules/70-model.mln``, ``ModelDisparity``)."""
    column = "ci_high" if whole_interval else "value"
    return metrics[(metrics["metric"] == "disparate_impact") & (metrics[column] < FOUR_FIFTHS)]


SPREAD_METRICS = ("demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference")
GROUP_METRICS = (
    "disparate_impact",
    "statistical_parity_difference",
    "equal_opportunity_difference",
    "average_odds_difference",
)
FLIP_COLUMNS = ("base", "attribute", "denied_group", "approved_group", "denied_score", "approved_score", "score_shift")


def clopper_pearson(successes: int, trials: int) -> tuple[float, float]:
    """Exact 95% binomial interval; (nan, nan) without trials."""
    if trials == 0:
        return (float("nan"), float("nan"))
    interval = binomtest(int(successes), int(trials)).proportion_ci(confidence_level=0.95, method="exact")
    return (float(interval.low), float(interval.high))


def flips(
    base: np.ndarray, attribute: np.ndarray, group: np.ndarray, decisions: np.ndarray, scores: np.ndarray
) -> pd.DataFrame:
    """One row per base applicant × attribute × pair of its twins decided differently (the denied twin first)."""
    frame = pd.DataFrame(
        {"base": base, "attribute": attribute, "group": group, "decision": decisions.astype(bool), "score": scores}
    )
    parts = []
    for name, part in frame.groupby("attribute", sort=True):
        decision = part.pivot(index="base", columns="group", values="decision")
        score = part.pivot(index="base", columns="group", values="score")
        bases = decision.index.to_numpy()
        for first, second in combinations(list(decision.columns), 2):
            a, b = decision[first].to_numpy(dtype=bool), decision[second].to_numpy(dtype=bool)
            differ = a != b
            if not differ.any():
                continue
            first_denied = differ & ~a
            sa, sb = score[first].to_numpy(dtype=np.float64), score[second].to_numpy(dtype=np.float64)
            parts.append(
                pd.DataFrame(
                    {
                        "base": bases[differ],
                        "attribute": name,
                        "denied_group": np.where(first_denied, str(first), str(second))[differ],
                        "approved_group": np.where(first_denied, str(second), str(first))[differ],
                        "denied_score": np.where(first_denied, sa, sb)[differ],
                        "approved_score": np.where(first_denied, sb, sa)[differ],
                    }
                )
            )
    if not parts:
        empty = pd.DataFrame(
            {name: pd.Series(dtype="float64" if "score" in name else "object") for name in FLIP_COLUMNS}
        )
        return empty.astype({"base": np.int64})
    found = pd.concat(parts, ignore_index=True)
    found["score_shift"] = found["approved_score"] - found["denied_score"]
    found = found.sort_values(["base", "attribute", "denied_group", "approved_group"], kind="stable").reset_index(
        drop=True
    )
    return found[list(FLIP_COLUMNS)].astype({"base": np.int64})


def flip_rates(
    base: np.ndarray,
    attribute: np.ndarray,
    group: np.ndarray,
    decisions: np.ndarray,
    scores: np.ndarray,
    by: np.ndarray | None = None,
) -> pd.DataFrame:
    """Flip rates per attribute ('*' pair: any two twins differ) and per pair of groups, with CIs.

    ``by`` (one value per base applicant, e.g. its lender) splits the counts; without it the
    column ``lei`` is ''.
    """
    frame = pd.DataFrame(
        {"base": base, "attribute": attribute, "group": group, "decision": decisions.astype(bool), "score": scores}
    )
    keys = (
        np.asarray(by, dtype=object)[frame["base"].to_numpy()]
        if by is not None
        else np.full(len(frame), "", dtype=object)
    )
    frame["lei"] = keys
    rows = []
    for (lei, name), part in frame.groupby(["lei", "attribute"], sort=True):
        decision = part.pivot(index="base", columns="group", values="decision")
        score = part.pivot(index="base", columns="group", values="score")
        groups = list(decision.columns)
        values = decision.to_numpy(dtype=bool)
        any_flip = values.any(axis=1) & ~values.all(axis=1)
        scored = score.to_numpy(dtype=np.float64)
        spread = scored.max(axis=1) - scored.min(axis=1) if scored.size else np.zeros(0)
        rows.append(_rate_row(lei, name, "*", "*", int(any_flip.sum()), len(decision), spread))
        for first, second in combinations(groups, 2):
            differ = (decision[first] != decision[second]).to_numpy()
            shift = (score[second] - score[first]).to_numpy(dtype=np.float64)
            rows.append(_rate_row(lei, name, str(first), str(second), int(differ.sum()), len(decision), shift))
    columns = [
        "lei",
        "attribute",
        "group_a",
        "group_b",
        "twins",
        "flips",
        "flip_rate",
        "ci_low",
        "ci_high",
        "mean_abs_score_shift",
        "max_abs_score_shift",
    ]
    return pd.DataFrame(rows, columns=columns)


def _rate_row(
    lei: str, name: str, first: str, second: str, flipped: int, total: int, shift: np.ndarray
) -> tuple[object, ...]:
    low, high = clopper_pearson(flipped, total)
    magnitude = np.abs(shift[np.isfinite(shift)])
    mean = float(magnitude.mean()) if magnitude.size else float("nan")
    largest = float(magnitude.max()) if magnitude.size else float("nan")
    return (
        lei,
        name,
        first,
        second,
        total,
        flipped,
        flipped / total if total else float("nan"),
        low,
        high,
        mean,
        largest,
    )


def group_metrics(
    groups: pd.DataFrame,
    decisions: np.ndarray,
    outcomes: np.ndarray | None,
    references: Mapping[str, str],
    *,
    min_group: int = 20,
    replicates: int = 2000,
    seed: int = 0,
    lei: str = "",
) -> pd.DataFrame:
    """AIF360 metrics of each group of each column of ``groups`` (and of their intersection) against its reference.

    ``groups`` holds one column per protected attribute (null: no group); ``outcomes`` is 1/0
    (NaN: unknown, such rows count for the decision-only metrics).
    """
    decisions = np.asarray(decisions, dtype=bool)
    known = np.isfinite(outcomes) if outcomes is not None else np.zeros(len(decisions), dtype=bool)
    truth = np.where(known, outcomes, 0).astype(bool) if outcomes is not None else np.zeros(len(decisions), dtype=bool)
    # cells: 0 y unknown ŷ=0, 1 unknown ŷ=1, 2 y=0 ŷ=0, 3 y=0 ŷ=1, 4 y=1 ŷ=0, 5 y=1 ŷ=1
    cells = np.where(known, 2 + 2 * truth.astype(int), 0) + decisions.astype(int)
    rng = np.random.default_rng(seed)
    columns = list(groups.columns)
    attributes: list[tuple[str, pd.Series, str]] = [(name, groups[name], references[name]) for name in columns]
    if len(columns) > 1:
        parts = [groups[name].astype(object) for name in columns]
        known_all = np.logical_and.reduce([part.notna().to_numpy() for part in parts])
        joined = pd.Series(
            [" × ".join(map(str, values)) for values in zip(*parts, strict=True)], index=groups.index, dtype=object
        )
        joined[~known_all] = None
        attributes.append((" × ".join(columns), joined, " × ".join(references[name] for name in columns)))
    rows = []
    for name, column, reference in attributes:
        values = column.astype(object).to_numpy()
        counts = {}
        for group in sorted({str(v) for v in values if v is not None and not (isinstance(v, float) and np.isnan(v))}):
            mask = values == group
            counts[group] = np.bincount(cells[mask], minlength=6)
        if reference not in counts or counts[reference].sum() < min_group:
            continue
        ref_draws = rng.multinomial(
            int(counts[reference].sum()), counts[reference] / counts[reference].sum(), size=replicates
        )
        every = {reference: (counts[reference], ref_draws)}
        for group, count in counts.items():
            if group == reference or count.sum() < min_group:
                continue
            draws = rng.multinomial(int(count.sum()), count / count.sum(), size=replicates)
            every[group] = (count, draws)
            point = _metrics(count[None, :], counts[reference][None, :])
            boot = _metrics(draws, ref_draws)
            for metric in GROUP_METRICS:
                value = float(point[metric][0])
                low, high = _percentile_interval(boot[metric], value)
                rows.append(
                    (
                        lei,
                        name,
                        group,
                        reference,
                        metric,
                        value,
                        float(low),
                        float(high),
                        int(count.sum()),
                        int(counts[reference].sum()),
                    )
                )
        if len(every) > 1:  # Fairlearn's between-group summaries over every group with metrics
            ordered = sorted(every)
            point = _spread(np.stack([every[g][0][None, :] for g in ordered]))
            boot = _spread(np.stack([every[g][1] for g in ordered]))
            total = int(sum(every[g][0].sum() for g in ordered))
            for metric in SPREAD_METRICS:
                value = float(point[metric][0])
                low, high = _percentile_interval(boot[metric], value)
                rows.append((lei, name, "*", "*", metric, value, float(low), float(high), total, 0))
    return pd.DataFrame(
        rows,
        columns=[
            "lei",
            "attribute",
            "group",
            "reference",
            "metric",
            "value",
            "ci_low",
            "ci_high",
            "rows",
            "reference_rows",
        ],
    )


def _spread(counts: np.ndarray) -> dict[str, np.ndarray]:
    """Fairlearn's summaries for cell counts of shape (groups, replicates, 6)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = (counts[..., 1] + counts[..., 3] + counts[..., 5]) / counts.sum(axis=-1)
        tpr = counts[..., 5] / (counts[..., 4] + counts[..., 5])
        fpr = counts[..., 3] / (counts[..., 2] + counts[..., 3])
        tpr_range = tpr.max(axis=0) - tpr.min(axis=0)
        fpr_range = fpr.max(axis=0) - fpr.min(axis=0)
        return {
            "demographic_parity_difference": rate.max(axis=0) - rate.min(axis=0),
            "demographic_parity_ratio": rate.min(axis=0) / rate.max(axis=0),
            "equalized_odds_difference": np.maximum(tpr_range, fpr_range),
        }


def _metrics(group: np.ndarray, reference: np.ndarray) -> dict[str, np.ndarray]:
    """Each metric for rows of cell counts (see ``group_metrics``)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        rate_g = (group[:, 1] + group[:, 3] + group[:, 5]) / group.sum(axis=1)
        rate_r = (reference[:, 1] + reference[:, 3] + reference[:, 5]) / reference.sum(axis=1)
        tpr_g = group[:, 5] / (group[:, 4] + group[:, 5])
        tpr_r = reference[:, 5] / (reference[:, 4] + reference[:, 5])
        fpr_g = group[:, 3] / (group[:, 2] + group[:, 3])
        fpr_r = reference[:, 3] / (reference[:, 2] + reference[:, 3])
        return {
            "disparate_impact": rate_g / rate_r,
            "statistical_parity_difference": rate_g - rate_r,
            "equal_opportunity_difference": tpr_g - tpr_r,
            "average_odds_difference": 0.5 * ((fpr_g - fpr_r) + (tpr_g - tpr_r)),
        }


def _percentile_interval(replicates: np.ndarray, value: float) -> tuple[float, float]:
    """The 95% percentile bootstrap interval of the finite replicates (NaN when there are none
    or the point estimate itself is not finite)."""
    sample = replicates[np.isfinite(replicates)]
    if not sample.size or not np.isfinite(value):
        return float("nan"), float("nan")
    low, high = np.quantile(sample, [0.025, 0.975]).tolist()
    return float(low), float(high)
