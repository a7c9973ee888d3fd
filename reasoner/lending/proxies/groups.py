"""Estimated probabilities → the audit's groups, as weights (never as a hard assignment).

A comparison on ``race_ethnicity``, ``minority``, ``minority_sex`` or ``minority_tract`` weighs each
applicant whose race and ethnicity were estimated by its probability of each group (the CFPB's
approach), and each applicant who reported them by 1 in the reported group and 0 elsewhere:

=====================================  =====================================================
group                                  weight of an applicant with estimates
=====================================  =====================================================
White non-Hispanic                     P(white)
Black or African American              P(black)
Hispanic or Latino                     P(hispanic)
Asian                                  P(Asian or Pacific Islander): the Census tables do not
                                       tell Asian from Pacific Islander applicants
American Indian or Alaska Native       P(aian)
2 or more minority races               P(multiracial)
Native Hawaiian or Other Pacific Isl.  0 (counted under Asian)
Minority                               1 - P(white)
``<minority group> <sex>``             the minority group's weight, for a reported sex
``<minority group> / <tract>``         the minority group's weight, for the applicant's tract
=====================================  =====================================================

Comparisons by ``race``, ``ethnicity``, ``sex`` or ``age`` use reported values only. Matched pairs
need one group per applicant: ``pairing_frame`` places an applicant with estimates in a group only
when its probability of that group is at least the threshold (``[proxies] pair_threshold``), in a
copy used for the similarity search alone; no table the audit writes names an estimated group.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from reasoner.lending.proxies.census import RACES

__all__ = [
    "ESTIMATED_COLUMNS",
    "PROXIED_COLUMNS",
    "estimated_rows",
    "group_weights",
    "has_estimates",
    "pairing_frame",
]

ESTIMATED_COLUMNS = tuple(f"estimated_{race}" for race in RACES)
PROXIED_COLUMNS = ("race_ethnicity", "minority", "minority_sex", "minority_tract")
WHITE = "White non-Hispanic"
_NONE = np.array(None, dtype=object)  # a missing group in np.where
RACE_ETHNICITY = {
    WHITE: "white",
    "Black or African American": "black",
    "Hispanic or Latino": "hispanic",
    "Asian": "api",
    "American Indian or Alaska Native": "aian",
    "2 or more minority races": "multiracial",
}


def has_estimates(frame: pd.DataFrame) -> bool:
    """Whether the frame carries estimated probabilities (``proxies.register.with_proxies``)."""
    return ESTIMATED_COLUMNS[0] in frame.columns


def estimated_rows(frame: pd.DataFrame) -> np.ndarray:
    """Rows whose group is estimated (probabilities present)."""
    if not has_estimates(frame):
        return np.zeros(len(frame), dtype=bool)
    found: np.ndarray = np.isfinite(frame[ESTIMATED_COLUMNS[0]].to_numpy(dtype=np.float64, na_value=np.nan))
    return found


def _probabilities(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    return {
        race: np.nan_to_num(frame[column].to_numpy(dtype=np.float64, na_value=np.nan), nan=0.0)
        for race, column in zip(RACES, ESTIMATED_COLUMNS, strict=True)
    }


def _minority_weight(group: str, probability: dict[str, np.ndarray], count: int) -> np.ndarray:
    """Weight of a ``minority`` or ``race_ethnicity`` group for rows with estimates."""
    if group == "Minority":
        return 1.0 - probability["white"]
    if group in RACE_ETHNICITY:
        return probability[RACE_ETHNICITY[group]]
    return np.zeros(count)


def group_weights(
    frame: pd.DataFrame, column: str, groups: Sequence[str], majority_minority_percent: float
) -> dict[str, np.ndarray] | None:
    """Per group, each row's weight in it (module docstring); None when the frame has no estimates or
    ``column`` is not one the estimates speak to (the comparison then uses reported groups only).
    ``frame`` has the group columns of ``tables.add_group_columns``."""
    if not has_estimates(frame) or column not in PROXIED_COLUMNS:
        return None
    estimated = estimated_rows(frame)
    probability = _probabilities(frame)
    count = len(frame)
    reported = frame[column].to_numpy(dtype=object, na_value=None)
    sex = frame["sex"].to_numpy(dtype=object, na_value=None)
    percent = frame["tract_minority_pct"].to_numpy(dtype=np.float64, na_value=np.nan)
    tract = np.where(percent > majority_minority_percent, "majority-minority tract", "other tract")
    weights = {}
    for group in groups:
        if column == "minority_sex":
            base, _, wanted = group.rpartition(" ")
            condition = sex == wanted
        elif column == "minority_tract":
            base, _, wanted = group.partition(" / ")
            condition = np.isfinite(percent) & (tract == wanted)
        else:
            base, condition = group, np.ones(count, dtype=bool)
        estimate = _minority_weight(base, probability, count) * condition
        weights[group] = np.where(estimated, estimate, (reported == group).astype(np.float64))
    return weights


def pairing_frame(frame: pd.DataFrame, threshold: float, majority_minority_percent: float) -> pd.DataFrame:
    """A copy of ``frame`` whose rows with estimates are placed in the groups of ``PROXIED_COLUMNS``
    when their probability of the group is at least ``threshold`` (for the similarity search of
    matched pairs only)."""
    estimated = estimated_rows(frame)
    if not estimated.any():
        return frame
    probability = _probabilities(frame)
    stacked = np.column_stack([probability[race] for race in RACES])
    top = stacked.argmax(axis=1)
    confident = estimated & (stacked.max(axis=1) >= threshold)
    labels = {race: group for group, race in RACE_ETHNICITY.items()}
    top_group = np.array([labels[race] for race in RACES], dtype=object)[top]
    white = probability["white"]
    minority = np.where(white >= threshold, WHITE, np.where(1.0 - white >= threshold, "Minority", _NONE))
    minority = np.where(estimated, minority, _NONE)
    out = frame.copy()
    race_ethnicity = out["race_ethnicity"].to_numpy(dtype=object, na_value=None)
    race_ethnicity = np.where(confident, top_group, np.where(estimated, _NONE, race_ethnicity))
    reported_minority = out["minority"].to_numpy(dtype=object, na_value=None)
    minority = np.where(estimated, minority, reported_minority)
    sex = out["sex"].to_numpy(dtype=object, na_value=None)
    binary_sex = np.isin(sex, ("Male", "Female"))
    known = minority != None  # noqa: E711 (elementwise)
    minority_sex = np.where(known & binary_sex, minority.astype(str) + " " + sex.astype(str), _NONE)
    percent = out["tract_minority_pct"].to_numpy(dtype=np.float64, na_value=np.nan)
    tract_names = out["minority_tract"].to_numpy(dtype=object, na_value=None)
    tract = np.where(percent > majority_minority_percent, "majority-minority tract", "other tract")
    recomputed = np.where(known & np.isfinite(percent), minority.astype(str) + " / " + tract.astype(str), _NONE)
    for name, values in (
        ("race_ethnicity", race_ethnicity),
        ("minority", minority),
        ("minority_sex", np.where(estimated, minority_sex, out["minority_sex"].to_numpy(dtype=object, na_value=None))),
        ("minority_tract", np.where(estimated, recomputed, tract_names)),
    ):
        out[name] = pd.Series(values, index=out.index, dtype="str")
    return out
