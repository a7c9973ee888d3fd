"""Surnames, first names and ZIP codes for synthetic applicants, drawn from the Census tables by
group and geography (``reason synth --names``), so the race and ethnicity proxy can be validated
offline: hide the race of a register whose truth is known, estimate it, compare.

- surname: P(surname | group) ∝ P(group | surname) over the 2010 Census surnames (the tables give
  shares per surname, not the number of people holding it, so every surname is taken as equally
  common: the synthetic population's surnames are rarer than real ones, and about as informative);
- first name: P(first name | group), Tzioumis (2018);
- ZIP code: P(ZCTA | group) among the ZCTAs of the applicant's state (its MSA's state, by the ZIP
  ranges of ``STATE_ZIP_PREFIXES``);
- messiness a real file has: 2% of surnames with a suffix ('Jr.', 'III'), 3% hyphenated
  double surnames, 1% of surnames and 1% of ZIP codes missing, names in title case or upper case.

The latent groups of ``synth`` (0 White, 1 Black, 2 Hispanic, 3 Asian, 4 American Indian) map to
the tables' white, black, hispanic, api and aian. The draws use their own random stream: the rest
of the register is the same row for row with or without names.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from reasoner.lending.proxies.census import RACES, census_tables

__all__ = ["NAME_COLUMNS", "STATE_ZIP_PREFIXES", "draw_names"]

NAME_COLUMNS = ("applicant_surname", "applicant_first_name", "zip_code")
LATENT_RACE = ("white", "black", "hispanic", "api", "aian")
# First three digits of the ZIP codes of each synthetic MSA's state (USPS ranges).
STATE_ZIP_PREFIXES = {
    "GA": ((300, 319), (398, 399)),
    "IL": ((600, 629),),
    "TX": ((750, 799), (885, 885)),
    "CA": ((900, 961),),
    "FL": ((320, 349),),
    "NY": ((100, 149),),
    "DC": ((200, 205),),
    "MS": ((386, 397),),
}
SUFFIXES = (" Jr.", " Jr", " III", " Sr.")


def _sample(weights: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` indices drawn with probabilities proportional to ``weights``."""
    cumulative = np.cumsum(weights)
    if count == 0 or cumulative[-1] <= 0:
        return np.zeros(count, dtype=np.int64)
    found: np.ndarray = np.searchsorted(cumulative, rng.random(count) * cumulative[-1], side="right")
    return np.minimum(found, weights.size - 1)


def draw_names(group: np.ndarray, state: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per applicant (latent ``group``, ``state`` two-letter code): surname, first name and ZIP code as text."""
    tables = census_tables()
    count = group.size
    surname_keys = tables.race_given_surname.keys.to_numpy(dtype=object)
    first_keys = tables.first_name_given_race.keys.to_numpy(dtype=object)
    zcta_keys = tables.zcta_given_race.keys.to_numpy(dtype=object)
    zip3 = np.array([int(key[:3]) for key in zcta_keys])
    surname = np.empty(count, dtype=object)
    second = np.empty(count, dtype=object)
    first = np.empty(count, dtype=object)
    zip_code = np.empty(count, dtype=object)
    for latent, race in enumerate(LATENT_RACE):
        column = RACES.index(race)
        rows = np.flatnonzero(group == latent)
        surnames = tables.race_given_surname.values[:, column]
        surname[rows] = surname_keys[_sample(surnames, rows.size, rng)]
        second[rows] = surname_keys[_sample(surnames, rows.size, rng)]
        first[rows] = first_keys[_sample(tables.first_name_given_race.values[:, column], rows.size, rng)]
        for code in np.unique(state[rows]):
            here = rows[state[rows] == code]
            allowed = np.zeros(zip3.size, dtype=bool)
            for low, high in STATE_ZIP_PREFIXES.get(str(code), ((0, 999),)):
                allowed |= (zip3 >= low) & (zip3 <= high)
            weights = np.where(allowed, tables.zcta_given_race.values[:, column], 0.0)
            zip_code[here] = zcta_keys[_sample(weights, here.size, rng)]
    mess = rng.random((5, count))
    surname = np.array(pd.Series(surname, dtype=object).str.title().to_numpy(dtype=object), dtype=object)
    hyphenated = mess[0] < 0.03
    surname[hyphenated] = surname[hyphenated] + "-" + pd.Series(second[hyphenated], dtype=object).str.title()
    suffixed = mess[1] < 0.02
    surname[suffixed] = surname[suffixed] + np.array(SUFFIXES, dtype=object)[(mess[1][suffixed] * 200).astype(int) % 4]
    upper = mess[2] < 0.2
    surname[upper] = np.array(pd.Series(surname[upper], dtype=object).str.upper().to_numpy(dtype=object), dtype=object)
    surname[mess[3] < 0.01] = ""
    zip_code[mess[4] < 0.01] = ""
    first = pd.Series(first, dtype=object).str.title().to_numpy(dtype=object)
    return {"applicant_surname": surname, "applicant_first_name": first, "zip_code": zip_code}
