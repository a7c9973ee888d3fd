"""Names and geographies as the Census tables spell them.

Surnames are cleaned as the CFPB's proxy code does (``surname_parser.do`` of cfpb/proxy-methodology):

1. upper case, accents dropped (``Muñoz`` → ``MUNOZ``: the Census file is plain ASCII);
2. apostrophes removed (``O'Leary`` → ``OLEARY``), other characters that are no letter, space or
   hyphen (digits, ``.``, ``,``, quotes, brackets) become spaces;
3. the suffixes JR, SR, II, III, IV, DDS, MD, PHD and lone letters (initials) removed as words;
4. a hyphenated name is split at its first hyphen; each part loses its spaces
   (``de la Cruz`` → ``DELACRUZ``, as the Census writes it); the first part that is in the table
   is used, then the second (``Garcia-Lopez``: GARCIA; ``Xq-Smith``: SMITH).

One step is added for compound names written with a space and no hyphen (``Garcia Lopez``, which
the Census file does not hold as GARCIALOPEZ): when neither part matches, the first word, then the
last, is tried. First names: the same cleaning, then the first word (``Mary Ann`` → MARY).

Each distinct value is cleaned once (pandas string methods on the distinct values): a million rows
of a few hundred thousand distinct names take about a second.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from reasoner.lending.proxies.census import CensusTable

__all__ = ["SUFFIXES", "clean_name", "first_name_rows", "surname_candidates", "surname_rows", "zcta_keys"]

SUFFIXES = ("JR", "SR", "II", "III", "IV", "DDS", "MD", "PHD")
_SUFFIX_PATTERN = r"\b(?:" + "|".join(SUFFIXES) + r")\b"


def clean_name(values: pd.Series) -> pd.Series:
    """Steps 1-3 above, for each value (text; missing stays missing): words separated by one space,
    hyphens kept."""
    missing = values.isna().to_numpy()
    text = pd.Series(np.where(missing, "", values.astype(object).astype(str)), index=values.index, dtype=object)
    text = text.str.normalize("NFKD").str.encode("ascii", "ignore").str.decode("ascii")
    text = text.str.upper().str.replace("'", "", regex=False).str.replace("\u2019", "", regex=False)
    text = text.str.replace(r"[^A-Z\- ]", " ", regex=True)
    text = text.str.replace(r"\s*-\s*", "-", regex=True)  # 'SMITH - JONES' is hyphenated
    text = text.str.replace(_SUFFIX_PATTERN, " ", regex=True)
    text = text.str.replace(r"(?:(?<=[\s\-])|^)[A-Z](?=[\s\-]|$)", " ", regex=True)  # lone letters: initials
    text = text.str.replace(r"\s+", " ", regex=True).str.strip().str.strip("-").str.strip()
    cleaned: pd.Series = text.astype(object).where(~missing, None)
    return cleaned


def surname_candidates(cleaned: pd.Series) -> list[pd.Series]:
    """The forms to look up, in order: each hyphen part without spaces (two at most), then the first
    and the last word."""
    text = cleaned.astype(object).fillna("")
    split = text.str.split("-", n=1)
    first = split.str[0].astype(object).fillna("")
    second = split.str[1].astype(object).fillna("")
    words = text.str.replace("-", " ", regex=False).str.split(" ")
    return [
        first.str.replace(" ", "", regex=False),
        second.str.replace(" ", "", regex=False),
        words.str[0].astype(object).fillna(""),
        words.str[-1].astype(object).fillna(""),
    ]


def surname_rows(values: pd.Series, table: CensusTable) -> np.ndarray:
    """Per value, its row in the surname table (the first candidate found), -1 when none is."""
    codes, distinct = pd.factorize(values, use_na_sentinel=True)
    found = np.full(len(distinct), -1, dtype=np.int64)
    if len(distinct):
        cleaned = clean_name(pd.Series(distinct, dtype=object))
        for candidate in surname_candidates(cleaned):
            keys = candidate.where(candidate.str.len() > 1, None).to_numpy(dtype=object)  # '' or a letter: no name
            rows = table.lookup(keys)
            found = np.where(found < 0, rows, found)
    return np.append(found, -1)[codes]  # the sentinel -1 picks the appended -1: missing


def first_name_rows(values: pd.Series, table: CensusTable) -> np.ndarray:
    """Per value, its row in a first-name table (the first word cleaned), -1 when it is not there."""
    codes, distinct = pd.factorize(values, use_na_sentinel=True)
    found = np.full(len(distinct), -1, dtype=np.int64)
    if len(distinct):
        cleaned = clean_name(pd.Series(distinct, dtype=object)).astype(object).fillna("")
        first = cleaned.str.replace("-", " ", regex=False).str.split(" ").str[0].astype(object).fillna("")
        found = table.lookup(first.where(first.str.len() > 1, None).to_numpy(dtype=object))
    return np.append(found, -1)[codes]


def zcta_keys(values: pd.Series) -> np.ndarray:
    """ZIP codes as 5-digit ZCTA keys: ZIP+4 cut to its five digits, a 3- or 4-digit number (a ZIP
    whose leading zeros a spreadsheet dropped) padded with zeros; anything else is missing."""
    missing = values.isna().to_numpy()
    text = pd.Series(np.where(missing, "", values.astype(object).astype(str)), dtype=object)
    text = text.str.strip().str.replace(r"\.0$", "", regex=True)
    five = text.str.extract(r"^(\d{3,5})(?:-?\d{4})?$", expand=False)
    keys: np.ndarray = five.str.zfill(5).astype(object).where(five.notna() & ~missing, None).to_numpy(dtype=object)
    return keys
