"""Base applicants → counterfactual twins that differ only in one protected attribute.

For each base applicant and each protected attribute, one twin per group of that attribute:
a copy of the applicant's row in which the attribute is set to the group. **Every other column
is held fixed**: financials, loan terms, geography, the census tract and its minority share,
names, the other protected attributes, and every co-applicant field. A flip between two twins
can therefore only be caused by the attribute itself.

The HMDA fields that *encode the same attribute of the same applicant* follow the twin, so
that each twin is a consistent HMDA record (a model may read either field):

=====================  ===================================================================
attribute              fields set with it (when present in the data)
=====================  ===================================================================
``derived_race``       ``applicant_race-1`` (HMDA code of the race), ``applicant_race-2`` …
                       ``applicant_race-5`` emptied
``derived_ethnicity``  ``applicant_ethnicity-1`` (code), ``applicant_ethnicity-2`` … ``-5`` emptied
``derived_sex``        ``applicant_sex`` (1 male, 2 female)
``applicant_age``      ``applicant_age_above_62`` ('Yes' for '>74' and '65-74', else 'No')
=====================  ===================================================================

HMDA's derived fields summarise applicant *and* co-applicant; the twins change the applicant
only, so a base row whose derived value is 'Joint' gets twins of the single groups. Values
that are no group ('Race Not Available', 'Joint', 'Sex Not Available', 'Free Form Text Only',
'8888', '9999', empty) are never given to a twin. Attributes without an HMDA mapping (any other
column) are varied alone.

**Proxies** (``proxies``, ``--proxies``): columns that are not the attribute but move with it
in the world the model is used in (the tract's minority share, a neighbourhood, a name). They
are held fixed by default, which isolates treatment *because of* the attribute. Named as
proxies, they follow the twin by quantile mapping — a base applicant at the *q*-th percentile
of the column among its own group gets the *q*-th percentile among the twin's group (the group
distributions come from the data) — in a second set of twins whose attribute is labelled
``ATTRIBUTE+proxies``. A model that flips only there decides through the proxy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from reasoner.errors import UsageError

__all__ = ["ENCODINGS", "NOT_A_GROUP", "PROXY_SUFFIX", "Twins", "default_groups", "make_twins"]

RACE_CODES = {
    "American Indian or Alaska Native": "1",
    "Asian": "2",
    "Black or African American": "3",
    "Native Hawaiian or Other Pacific Islander": "4",
    "White": "5",
}
ETHNICITY_CODES = {"Hispanic or Latino": "1", "Not Hispanic or Latino": "2"}
SEX_CODES = {"Male": "1", "Female": "2"}
NOT_A_GROUP = frozenset(
    {
        "",
        "Race Not Available",
        "Ethnicity Not Available",
        "Sex Not Available",
        "Joint",
        "Free Form Text Only",
        "2 or more minority races",
        "8888",
        "9999",
        "NA",
        "nan",
        "None",
    }
)


def _race(frame: pd.DataFrame, group: str) -> None:
    _code_fields(frame, "applicant_race", RACE_CODES.get(group))


def _ethnicity(frame: pd.DataFrame, group: str) -> None:
    _code_fields(frame, "applicant_ethnicity", ETHNICITY_CODES.get(group))


def _code_fields(frame: pd.DataFrame, prefix: str, code: str | None) -> None:
    if code is None:
        return
    for index in range(1, 6):
        name = f"{prefix}-{index}"
        if name in frame.columns:
            frame[name] = _like(frame[name], code if index == 1 else "")


def _sex(frame: pd.DataFrame, group: str) -> None:
    if group in SEX_CODES and "applicant_sex" in frame.columns:
        frame["applicant_sex"] = _like(frame["applicant_sex"], SEX_CODES[group])


def _age(frame: pd.DataFrame, group: str) -> None:
    if "applicant_age_above_62" in frame.columns:
        frame["applicant_age_above_62"] = _like(
            frame["applicant_age_above_62"], "Yes" if group in (">74", "65-74") else "No"
        )


ENCODINGS = {
    "derived_race": (
        ("applicant_race-1", "applicant_race-2", "applicant_race-3", "applicant_race-4", "applicant_race-5"),
        _race,
    ),
    "derived_ethnicity": (
        (
            "applicant_ethnicity-1",
            "applicant_ethnicity-2",
            "applicant_ethnicity-3",
            "applicant_ethnicity-4",
            "applicant_ethnicity-5",
        ),
        _ethnicity,
    ),
    "derived_sex": (("applicant_sex",), _sex),
    "applicant_age": (("applicant_age_above_62",), _age),
}


def _like(column: pd.Series, value: str) -> pd.Series:
    """``value`` in every row, with the column's numeric type when it has one."""
    if pd.api.types.is_numeric_dtype(column.dtype):
        number = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
        return pd.Series(number, index=column.index, dtype=column.dtype if not pd.isna(number) else "float64")
    return pd.Series(value, index=column.index, dtype=object)


@dataclass(frozen=True, slots=True)
class Twins:
    frame: pd.DataFrame  # the twins: the data's columns (as given), one row per base × attribute × group
    base: np.ndarray  # position of each twin's base applicant in the base table
    attribute: np.ndarray  # protected attribute varied (object)
    group: np.ndarray  # the twin's group (object)
    followed: dict[str, tuple[str, ...]]  # attribute → the other columns set with it


def default_groups(frame: pd.DataFrame, attribute: str, min_count: int = 1) -> tuple[str, ...]:
    """The values of ``attribute`` that are groups (not 'not available', 'Joint', ...), sorted."""
    values = frame[attribute].astype(str)
    counts = values[~values.isin(NOT_A_GROUP)].value_counts()
    return tuple(sorted(str(value) for value, count in counts.items() if count >= min_count))


PROXY_SUFFIX = "+proxies"


def make_twins(
    base: pd.DataFrame,
    groups: Mapping[str, Sequence[str]],
    proxies: Sequence[str] = (),
    reference: pd.DataFrame | None = None,
) -> Twins:
    """Twins of every row of ``base``, for each attribute of ``groups`` and each of its groups.

    With ``proxies``, a second set per attribute in which those columns follow the twin by
    quantile mapping within the groups of ``reference`` (default ``base``).
    """
    parts, bases, attributes, names = [], [], [], []
    followed: dict[str, tuple[str, ...]] = {}
    positions = np.arange(len(base))
    reference = base if reference is None else reference
    for name in proxies:
        if name not in base.columns:
            raise UsageError(f"--proxies: the data has no column '{name}'")
        if not pd.api.types.is_numeric_dtype(base[name].dtype):
            raise UsageError(f"--proxies: column '{name}' is not numeric; proxies are mapped by quantile")
    for attribute, values in groups.items():
        if attribute not in base.columns:
            raise UsageError(f"--protected: the data has no column '{attribute}'")
        if len(values) < 2:
            raise UsageError(f"--protected {attribute}: needs at least two groups to compare, found {list(values)}")
        fields, setter = ENCODINGS.get(attribute, ((), None))
        followed[attribute] = tuple(name for name in fields if name in base.columns)
        for group in values:
            twin = base.copy()
            twin[attribute] = _like(base[attribute], str(group))
            if setter is not None:
                setter(twin, str(group))
            parts.append(twin)
            bases.append(positions)
            attributes.append(np.full(len(base), attribute, dtype=object))
            names.append(np.full(len(base), str(group), dtype=object))
        if proxies:
            label = attribute + PROXY_SUFFIX
            followed[label] = followed[attribute] + tuple(proxies)
            for group in values:
                twin = base.copy()
                twin[attribute] = _like(base[attribute], str(group))
                if setter is not None:
                    setter(twin, str(group))
                for name in proxies:
                    twin[name] = _quantile_map(base, reference, attribute, name, str(group)).astype(base[name].dtype)
                parts.append(twin)
                bases.append(positions)
                attributes.append(np.full(len(base), label, dtype=object))
                names.append(np.full(len(base), str(group), dtype=object))
    frame = pd.concat(parts, ignore_index=True) if parts else base.iloc[:0].copy()
    return Twins(
        frame=frame,
        base=np.concatenate(bases) if bases else np.zeros(0, dtype=np.int64),
        attribute=np.concatenate(attributes) if attributes else np.zeros(0, dtype=object),
        group=np.concatenate(names) if names else np.zeros(0, dtype=object),
        followed=followed,
    )


def _quantile_map(base: pd.DataFrame, reference: pd.DataFrame, attribute: str, column: str, group: str) -> pd.Series:
    """``column`` of each base row moved to the same percentile of ``group``'s distribution."""
    values = base[column].to_numpy(dtype=np.float64)
    own = base[attribute].astype(str).to_numpy()
    target = _finite(reference, attribute, column, group)
    out = values.copy()
    if target.size == 0:
        return pd.Series(out, index=base.index)
    for source in np.unique(own):
        mask = (own == source) & np.isfinite(values)
        if source == group or not mask.any():
            continue
        pool = _finite(reference, attribute, column, source)
        if pool.size == 0:
            pool = np.sort(
                reference[column].to_numpy(dtype=np.float64)[np.isfinite(reference[column].to_numpy(dtype=np.float64))]
            )
        percentile = (
            np.searchsorted(pool, values[mask], side="left") + np.searchsorted(pool, values[mask], side="right")
        ) / (2 * pool.size)
        out[mask] = np.quantile(target, np.clip(percentile, 0, 1), method="inverted_cdf")
    return pd.Series(out, index=base.index)


def _finite(frame: pd.DataFrame, attribute: str, column: str, group: str) -> np.ndarray:
    values = frame.loc[frame[attribute].astype(str) == group, column].to_numpy(dtype=np.float64)
    return np.sort(values[np.isfinite(values)])
