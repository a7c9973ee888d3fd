"""Names and geographies as the Census tables spell them.

Surnames are cleaned as the CFPB's proxy code does (``surname_parser.do`` of cfpb/proxy-methodology):

1. upper case, accents dropped (``Muñoz`` → ``MUNOZ``: the Census file is plain ASCII);
2. apostrophes removed (``O'Leary`` → ``OLEARY``), other characters that are no letter, space or
   hyphen (digits, ``.``, ``,``, quotes, brackets) become spaces;
3. the suffixes JR, SR, II, III, IV, DDS, MD, PHD and lone letters (initials) removed as words;
4. a hyphenated name is split at its first hyphen; each part loses its spaces
   (``de la Cruz`` → ``DELACRUZ``, as the Census writes it); the first part that is in the table
   is used, then the second (``Garcia-Lopez``: GARCIA; ``Xq-Smith``: SMITH).

One step is added for compound names written with a space and no hyphen (``Garcia Xq``, which the
Census file does not hold as GARCIAXQ): when neither part matches, the first word, then the last,
is tried. First names: the same cleaning, then the first word (``Mary Ann`` → MARY).

Each distinct value is cleaned once, by Arrow's vectorised string kernels (``pyarrow.compute``),
and looked up by hash (``pc.index_in``): no Python loop over names.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from reasoner.lending.proxies.census import CensusTable

__all__ = ["SUFFIXES", "clean_name", "first_name_rows", "surname_candidates", "surname_rows", "zcta_keys"]

SUFFIXES = ("JR", "SR", "II", "III", "IV", "DDS", "MD", "PHD")
_SUFFIX_PATTERN = r"\b(?:" + "|".join(SUFFIXES) + r")\b"
_INITIAL_PASSES = 3  # lone letters in a row ('J R R'): one pass per letter, as the CFPB's loop


def _clean(text: pa.Array) -> pa.Array:
    """Steps 1-3 on an Arrow string array (nulls stay null)."""
    text = pc.utf8_normalize(text, "NFKD")
    text = pc.replace_substring_regex(text, r"[^\x00-\x7F]", "")
    text = pc.utf8_upper(text)
    text = pc.replace_substring_regex(text, "'", "")
    text = pc.replace_substring_regex(text, r"[^A-Z\- ]", " ")
    text = pc.replace_substring_regex(text, r"\s*-\s*", "-")  # 'SMITH - JONES' is hyphenated
    text = pc.replace_substring_regex(text, _SUFFIX_PATTERN, " ")
    text = pc.binary_join_element_wise(" ", text, " ")  # pad: every word has a separator on each side
    for _ in range(_INITIAL_PASSES):
        text = pc.replace_substring_regex(text, r"([ \-])[A-Z]([ \-])", r"\1\2")
    text = pc.replace_substring_regex(text, r"\s+", " ")
    text = pc.utf8_trim(text, " -")
    return text


def clean_name(values: pd.Series) -> pd.Series:
    """Steps 1-3 above, for each value (text; missing stays missing): words separated by one space,
    hyphens kept."""
    missing = values.isna().to_numpy()
    texts = pa.array(np.where(missing, None, values.astype(object).astype(str)), type=pa.string())
    cleaned = _clean(texts).to_numpy(zero_copy_only=False)
    return pd.Series(cleaned, index=values.index, dtype=object)


def surname_candidates(cleaned: pa.Array) -> list[pa.Array]:
    """The forms to look up, in order: each hyphen part without spaces (two at most), then the first
    and the last word ('' where there is none)."""
    text = pc.fill_null(cleaned, "")
    parts = pc.extract_regex(text, r"^(?P<first>[^-]*)(?:-(?P<second>.*))?$")
    first_word = pc.extract_regex(text, r"^(?P<word>[^ \-]*)").field("word")
    last_word = pc.extract_regex(text, r"(?P<word>[^ \-]*)$").field("word")
    return [
        pc.replace_substring(parts.field("first"), " ", ""),
        pc.replace_substring(parts.field("second"), " ", ""),
        first_word,
        last_word,
    ]


def _lookup(table: CensusTable, candidate: pa.Array) -> np.ndarray:
    """Row of each candidate in the table, -1 when absent ('' or one letter is no name)."""
    named = pc.if_else(pc.greater(pc.utf8_length(candidate), 1), candidate, pa.scalar(None, pa.string()))
    found = pc.index_in(named, value_set=table.arrow_keys)
    rows: np.ndarray = pc.fill_null(found, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    return rows


def _distinct(values: pd.Series) -> tuple[np.ndarray, pa.Array]:
    """Codes per row (-1 missing) and the distinct values as an Arrow string array."""
    codes, distinct = pd.factorize(values, use_na_sentinel=True)
    texts = pa.array(np.asarray(distinct, dtype=object).astype(str), type=pa.string())
    return codes, texts


def surname_rows(values: pd.Series, table: CensusTable) -> np.ndarray:
    """Per value, its row in the surname table (the first candidate found), -1 when none is."""
    codes, distinct = _distinct(values)
    found = np.full(len(distinct), -1, dtype=np.int64)
    if len(distinct):
        for candidate in surname_candidates(_clean(distinct)):
            found = np.where(found < 0, _lookup(table, candidate), found)
    return np.append(found, -1)[codes]  # the sentinel -1 picks the appended -1: missing


def first_name_rows(values: pd.Series, table: CensusTable) -> np.ndarray:
    """Per value, its row in a first-name table (the first word cleaned), -1 when it is not there."""
    codes, distinct = _distinct(values)
    found = np.full(len(distinct), -1, dtype=np.int64)
    if len(distinct):
        cleaned = pc.replace_substring(pc.fill_null(_clean(distinct), ""), "-", " ")
        found = _lookup(table, pc.extract_regex(cleaned, r"^(?P<word>[^ ]*)").field("word"))
    return np.append(found, -1)[codes]


def zcta_keys(values: pd.Series) -> np.ndarray:
    """ZIP codes as 5-digit ZCTA keys: ZIP+4 cut to its five digits, a 3- or 4-digit number (a ZIP
    whose leading zeros a spreadsheet dropped) padded with zeros; anything else is missing."""
    codes, distinct = _distinct(values)
    text = pc.replace_substring_regex(pc.utf8_trim_whitespace(distinct), r"\.0$", "")
    valid = pc.match_substring_regex(text, r"^\d{3,5}(?:-?\d{4})?$")
    digits = pc.extract_regex(text, r"^(?P<zip>\d{3,5})").field("zip")
    padded = pc.utf8_lpad(digits, 5, "0")
    keys = pc.if_else(valid, padded, pa.scalar(None, pa.string())).to_numpy(zero_copy_only=False)
    result: np.ndarray = np.append(np.asarray(keys, dtype=object), np.array([None], dtype=object))[codes]
    return result
