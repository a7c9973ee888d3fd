"""BISG and BIFSG: race and ethnicity probabilities from surname, first name and geography.

Bayes' rule with the sources taken as independent given race (Elliott et al. 2009; the CFPB's
``combine_probs.do``; Voicu 2018 for the first name):

    P(r | s, g)    ∝ P(r | s) · P(g | r)                    (BISG)
    P(r | s, f, g) ∝ P(r | s) · P(f | r) · P(g | r)         (BIFSG, when a first name is given)

normalised over the six categories of ``census.RACES``. A source that cannot be matched drops out
and the others decide (the CFPB's fallback): geography alone is P(r | g), surname alone P(r | s),
a first name alone P(r | f); with a first name, P(f | r) multiplies whichever is left. When the
sources contradict each other completely (every product zero: a surname the Census saw only among
White people in a ZIP code without White adults) the geography drops out as well. A row with no
source matched has no probabilities (NaN) and takes part in no race or ethnicity comparison; it is
counted, never dropped.

The geography is the census tract when it is in the table, else the ZIP code (ZCTA).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from reasoner.lending.proxies.census import RACES, CensusTables, census_tables
from reasoner.lending.proxies.names import first_name_rows, surname_rows, zcta_keys

__all__ = ["SOURCE_NAMES", "ProxyCounts", "combine", "proxy_probabilities"]

# Bits of the ``source`` code: which sources decided a row's probabilities.
SURNAME, FIRST_NAME, TRACT, ZIP = 1, 2, 4, 8
SOURCE_NAMES = {SURNAME: "surname", FIRST_NAME: "first name", TRACT: "census tract", ZIP: "ZIP code"}


@dataclass(frozen=True, slots=True)
class ProxyCounts:
    """How many rows each fallback served (for the report): every row is counted once in
    ``by_sources`` under the sources that decided it ('' when none did)."""

    rows: int
    surname_unmatched: int
    first_name_unmatched: int  # among rows with a first name given
    first_names_given: int
    geography_unmatched: int
    contradictory: int
    no_source: int
    by_sources: tuple[tuple[str, int], ...]


def combine(
    surname: np.ndarray, first_name: np.ndarray, geography: np.ndarray, geography_only: np.ndarray,
    first_name_only: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The Bayes update on rows of probabilities (n, 6), NaN rows where a source is unmatched:
    ``surname`` P(r|s), ``first_name`` P(f|r), ``geography`` P(g|r), ``geography_only`` P(r|g),
    ``first_name_only`` P(r|f). Returns the posterior (n, 6; NaN where nothing matched) and the
    source bits per row (``SURNAME | FIRST_NAME | TRACT``…; the geography bit is ZIP here, the
    caller sets which)."""
    has_surname = np.isfinite(surname).all(axis=1)
    has_first = np.isfinite(first_name).all(axis=1)
    has_geography = np.isfinite(geography).all(axis=1)
    ones = np.ones_like(surname)
    first_factor = np.where(has_first[:, None], first_name, ones)
    prior = np.where(has_surname[:, None], surname, np.where(has_geography[:, None], geography_only, ones))
    likelihood = np.where((has_surname & has_geography)[:, None], geography, ones)
    product = prior * likelihood * first_factor
    total = product.sum(axis=1)
    contradictory = has_surname & has_geography & ~(total > 0)
    if contradictory.any():  # the geography drops out
        product[contradictory] = surname[contradictory] * first_factor[contradictory]
        total[contradictory] = product[contradictory].sum(axis=1)
    only_first = has_first & ~has_surname & ~has_geography
    product[only_first] = first_name_only[only_first]
    total[only_first] = product[only_first].sum(axis=1)
    matched = (has_surname | has_geography | has_first) & (total > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        posterior = np.where(matched[:, None], product / total[:, None], np.nan)
    uses_geography = has_geography & ~contradictory
    source = (
        has_surname * SURNAME + (has_first & matched) * FIRST_NAME + (uses_geography & matched) * ZIP
    ).astype(np.int64)
    source[~matched] = 0
    return posterior, source


def proxy_probabilities(
    surname: pd.Series | None,
    first_name: pd.Series | None = None,
    zip_code: pd.Series | None = None,
    tract: pd.Series | None = None,
    *,
    tables: CensusTables | None = None,
) -> tuple[pd.DataFrame, ProxyCounts]:
    """Per row: the six probabilities (columns ``RACES``) and ``source`` (the sources that decided it,
    'surname, first name, census tract'; '' for none), and the counts of unmatched sources."""
    tables = census_tables() if tables is None else tables
    given = [column for column in (surname, first_name, zip_code, tract) if column is not None]
    if not given:
        raise ValueError("proxy_probabilities needs a surname, first name, ZIP code or tract column")
    count = len(given[0])
    missing = np.full((count, len(RACES)), np.nan)

    def rows_of(table_values: np.ndarray, rows: np.ndarray) -> np.ndarray:
        picked = table_values[np.maximum(rows, 0)]
        return np.where((rows >= 0)[:, None], picked, np.nan)

    surname_p = missing
    if surname is not None:
        surname_p = rows_of(tables.race_given_surname.values, surname_rows(surname, tables.race_given_surname))
    first_p, first_only = missing, missing
    if first_name is not None:
        first = first_name_rows(first_name, tables.first_name_given_race)
        first_p = rows_of(tables.first_name_given_race.values, first)
        first_only_rows = first_name_rows(first_name, tables.race_given_first_name)
        first_only = rows_of(tables.race_given_first_name.values, first_only_rows)
    tract_rows = np.full(count, -1, dtype=np.int64)
    if tract is not None:
        keys = tract.astype("str").str.strip().where(tract.notna(), None).to_numpy(dtype=object)
        tract_rows = tables.tract_given_race.lookup(keys)
    zip_rows = np.full(count, -1, dtype=np.int64)
    if zip_code is not None:
        zip_rows = tables.zcta_given_race.lookup(zcta_keys(zip_code))
    by_tract = tract_rows >= 0
    geography = np.where(
        by_tract[:, None], rows_of(tables.tract_given_race.values, tract_rows),
        rows_of(tables.zcta_given_race.values, zip_rows),
    )
    geography_only = np.where(
        by_tract[:, None], rows_of(tables.race_given_tract.values, tract_rows),
        rows_of(tables.race_given_zcta.values, zip_rows),
    )
    posterior, source = combine(surname_p, first_p, geography, geography_only, first_only)
    source = np.where(by_tract & (source & ZIP > 0), source - ZIP + TRACT, source)
    frame = pd.DataFrame(posterior, columns=list(RACES))
    codes, position = np.unique(source, return_inverse=True)
    texts = [", ".join(name for bit, name in SOURCE_NAMES.items() if code & bit) for code in codes]
    names = np.array(texts, dtype=object)
    frame["source"] = pd.Series(names[position.reshape(-1)] if count else np.array([], dtype=object), dtype="str")
    has_surname = np.isfinite(surname_p).all(axis=1)
    has_geography = np.isfinite(geography).all(axis=1)
    first_given = 0 if first_name is None else int(first_name.notna().sum())
    tallies = frame["source"].value_counts(sort=False)
    counts = ProxyCounts(
        rows=count,
        surname_unmatched=int((~has_surname).sum()) if surname is not None else 0,
        first_name_unmatched=first_given - int(np.isfinite(first_p).all(axis=1).sum()) if first_name is not None else 0,
        first_names_given=first_given,
        geography_unmatched=int((~has_geography).sum()) if (zip_code is not None or tract is not None) else 0,
        contradictory=int((has_surname & has_geography & ((source & (ZIP | TRACT)) == 0)).sum()),
        no_source=int((source == 0).sum()),
        by_sources=tuple(sorted((str(name), int(number)) for name, number in tallies.items())),
    )
    return frame, counts
