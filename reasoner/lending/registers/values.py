"""Column values of a published register: factorized once, parsed per distinct value.

A ``Column`` holds one input column as ``codes`` into its distinct ``texts`` (stripped; ''
for a null). Parsing runs on the distinct texts only and is spread back to the rows with
one array take, so a million rows cost what their few thousand distinct values cost. Bad
values are reported with their 1-based rows: ``got 'abc' (rows 3, 9), 'x' (row 12) and 4
more rows``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from reasoner.errors import EvidenceError
from reasoner.lending.registers.compact import Coded
from reasoner.lending.registers.fields import DTI_BUCKETS

__all__ = [
    "MISSING_TEXT",
    "Column",
    "describe_bad",
    "describe_rows",
    "factorize_column",
    "is_in",
    "parse_code",
    "parse_denial_reason",
    "parse_dti",
    "parse_number",
    "strings",
    "upper_texts",
]

MISSING_TEXT = frozenset({"", "NA", "N/A"})
# the ASCII characters that are ``str.isspace()``: what ``str.strip()`` strips from ASCII text (with \x1c … \x1f)
ASCII_WHITESPACE = "".join(chr(code) for code in range(128) if chr(code).isspace())
SHOWN = 3


@dataclass(frozen=True, slots=True)
class Column:
    """One input column: ``label`` as in the input, ``codes`` (per row) into ``texts``."""

    label: str
    codes: np.ndarray
    texts: np.ndarray

    def take(self, per_text: np.ndarray) -> np.ndarray:
        taken: np.ndarray = per_text[self.codes]
        return taken

    def take_strings(self, per_text: Sequence[str | None]) -> pd.Series:
        return strings(self.codes, per_text)

    def coded(self, per_text: np.ndarray | Sequence[str | None]) -> Coded:
        """The column ``per_text[codes]`` as its codes and ``per_text`` (``compact.Coded``)."""
        values = per_text if isinstance(per_text, np.ndarray) else np.array(list(per_text), dtype=object)
        return Coded(self.codes, values)

    def series(self) -> pd.Series:
        return pd.Series(self.texts, dtype=object)


def factorize_column(column: pd.Series, label: str) -> Column:
    """Distinct stripped texts of ``column`` (any dtype: str, categorical, numbers) and codes."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes = column.cat.codes.to_numpy(dtype=np.int32)
        uniques: pd.Index = column.cat.categories
    else:
        raw_codes, uniques = pd.factorize(column, use_na_sentinel=True)
        codes = np.asarray(raw_codes, dtype=np.int32)
    if pd.api.types.is_numeric_dtype(uniques.dtype) or pd.api.types.is_bool_dtype(uniques.dtype):
        texts = _stripped(pc.cast(pa.array(np.asarray(uniques)), pa.string()))
    elif isinstance(uniques.dtype, pd.StringDtype):
        texts = _stripped(pa.array(uniques.array))
    else:  # objects (not all of them text, maybe): as pandas' ``str`` methods take them
        texts = _python_stripped(np.asarray(uniques.astype(object), dtype=object))
    if (codes < 0).any():  # null → ''
        texts = np.append(texts, "")
        codes = np.where(codes < 0, texts.size - 1, codes)
    return Column(label, codes, texts)


def _stripped(texts: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """``str.strip()`` of each text (none missing), as an object array: by Arrow when every text is ASCII,
    where ``ASCII_WHITESPACE`` is exactly what Python strips; else by Python, which strips any Unicode space
    (U+0085, U+00A0, U+2000 ...) that Arrow's ``utf8_trim_whitespace`` may not."""
    if _all_ascii(texts):
        stripped: np.ndarray = pc.utf8_trim(texts, ASCII_WHITESPACE).to_numpy(zero_copy_only=False)
        return stripped
    return _python_stripped(texts.to_numpy(zero_copy_only=False))


def _python_stripped(values: np.ndarray) -> np.ndarray:
    """``str.strip()`` of each value by pandas' ``str`` methods (Python's own), as an object array."""
    stripped: np.ndarray = pd.Series(values, dtype=object).str.strip().to_numpy(dtype=object)
    return stripped


def _all_ascii(texts: pa.Array | pa.ChunkedArray) -> bool:
    return bool(pc.all(pc.string_is_ascii(texts), min_count=0).as_py())


def upper_texts(texts: pd.Series) -> pa.Array | pd.Series:
    """``texts.str.upper()``: as Arrow text when every value is ASCII text (upper-cased by Arrow), else as
    pandas gives it (``str.upper`` maps 'ß' to 'SS', 'ı' to 'I', 'ﬅ' to 'ST'; a value that is not text, or a
    text Arrow cannot hold such as a lone surrogate, stays as pandas has it). ``is_in`` takes either."""
    try:
        array = pa.array(texts, type=pa.string())
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeEncodeError):  # no text, or not UTF-8 (a lone surrogate)
        array = None
    if array is not None and not array.null_count and _all_ascii(array):
        return pc.ascii_upper(array)
    upper: pd.Series = texts.str.upper()
    return upper


def is_in(texts: pa.Array | pd.Series, values: Iterable[str]) -> np.ndarray:
    """Per text (``upper_texts``) whether it is one of ``values`` (a missing value is not)."""
    if isinstance(texts, pd.Series):
        return texts.isin(list(values)).to_numpy(dtype=bool)
    found: np.ndarray = pc.is_in(texts, pa.array(sorted(values), pa.string())).to_numpy(zero_copy_only=False)
    return found


def strings(codes: np.ndarray, per_code: Sequence[str | None]) -> pd.Series:
    """``per_code[codes]`` as a ``str`` column (None → missing), decoded by Arrow."""
    dictionary = pa.array(list(per_code), type=pa.string())
    indices = pa.array(np.asarray(codes, dtype=np.int32))
    return pa.DictionaryArray.from_arrays(indices, dictionary).cast(pa.string()).to_pandas()


def canonical_texts(texts: np.ndarray, canonical: Iterable[str] = (), missing: Iterable[str] = ()) -> list[str | None]:
    """Published spelling of a known value (any case); None for a missing one; others as they are."""
    spelled = {value.lower(): value for value in canonical}
    absent = MISSING_TEXT | {value.upper() for value in missing}
    return [None if text.upper() in absent else spelled.get(text.lower(), text) for text in texts]


Parsed = tuple[np.ndarray, np.ndarray, np.ndarray]  # value, exempt, invalid — per distinct text


def _numbers(texts: pd.Series) -> Parsed:
    upper = upper_texts(texts)
    exempt = is_in(upper, ("EXEMPT",))
    missing = is_in(upper, MISSING_TEXT) | exempt
    values = pd.to_numeric(texts.where(~missing), errors="coerce").to_numpy(dtype=float, copy=True)
    invalid = ~missing & ~np.isfinite(values)
    values[~np.isfinite(values)] = np.nan
    # Zero without a sign: pandas reads "-0" as an integer (0) when every text beside it is an integer and as a
    # float (-0.0) otherwise, so its sign would follow the other texts of its piece, not the register
    values[values == 0] = 0.0
    return values, exempt, invalid


def _dti(texts: pd.Series) -> Parsed:
    compact = texts.str.replace(" ", "", regex=False)
    bucket = compact.map(DTI_BUCKETS).to_numpy(dtype=float)
    in_bucket = ~np.isnan(bucket)
    values, exempt, invalid = _numbers(compact.str.removesuffix("%").where(~in_bucket, "NA"))
    return np.where(in_bucket, bucket, values), exempt, invalid


def _parse(
    column: Column, source: str, parser: Callable[[pd.Series], Parsed], expected: str
) -> tuple[Coded, Coded]:
    values, exempt, invalid = parser(column.series())
    if invalid.any():
        raise EvidenceError(
            f"{source}: column '{column.label}': expected {expected}, got {describe_bad(column, invalid)}"
        )
    return column.coded(values), column.coded(exempt)


def parse_number(column: Column, source: str) -> tuple[Coded, Coded]:
    """Per row (``Coded.rows``): the number (NaN for 'NA', 'Exempt', empty) and whether it was 'Exempt'."""
    return _parse(column, source, _numbers, "a number, 'NA' or 'Exempt'")


def parse_dti(column: Column, source: str) -> tuple[Coded, Coded]:
    """Per row (``Coded.rows``): DTI in percent (published buckets → ``DTI_BUCKETS``) and whether it was 'Exempt'."""
    return _parse(column, source, _dti, "a number, a published bucket such as '20%-<30%', 'NA' or 'Exempt'")


def parse_code(column: Column, source: str, codes: Iterable[int]) -> Coded:
    """Per row (``Coded.rows``): an integer code that must be one of ``codes`` (never missing)."""
    allowed_codes = list(codes)
    values, _, _ = _numbers(column.series())
    allowed = np.isin(values, allowed_codes)
    if not allowed.all():
        expected = ", ".join(str(code) for code in allowed_codes)
        raise EvidenceError(
            f"{source}: column '{column.label}': expected one of {expected}, got {describe_bad(column, ~allowed)}"
        )
    return column.coded(values.astype(np.int64))


def parse_denial_reason(column: Column, source: str) -> Coded:
    """Per row (``Coded.rows``): 1 … 9, or NaN for 10 (not applicable), 1111 (exempt), 'NA' and empty."""
    values, _, invalid = _numbers(column.series())
    reason = np.isin(values, range(1, 10))
    not_applicable = np.isin(values, (10, 1111)) | (np.isnan(values) & ~invalid)
    bad = ~(reason | not_applicable)
    if bad.any():
        raise EvidenceError(
            f"{source}: column '{column.label}': expected one of 1 … 10, 1111 or 'NA', got {describe_bad(column, bad)}"
        )
    return column.coded(np.where(reason, values, np.nan))


def describe_bad(column: Column, bad_text: np.ndarray) -> str:
    """The first few bad values in row order, each with its first rows, and how many more rows."""
    bad_rows = np.flatnonzero(bad_text[column.codes])
    shown: dict[int, list[int]] = {}
    for position in bad_rows[:100]:
        code = int(column.codes[position])
        if code in shown or len(shown) < SHOWN:
            shown.setdefault(code, []).append(int(position) + 1)
    parts = []
    listed = 0
    for code, rows in shown.items():
        listed += min(len(rows), SHOWN)
        parts.append(f"{_quote(column.texts[code])} ({describe_rows(np.array(rows[:SHOWN]))})")
    more = bad_rows.size - listed
    return ", ".join(parts) + (f" and {more} more row{'s' if more > 1 else ''}" if more > 0 else "")


def describe_rows(rows: np.ndarray) -> str:
    """'row 7' or 'rows 3, 9, 12 and 40 more' for 1-based row numbers."""
    shown = ", ".join(str(int(row)) for row in rows[:SHOWN])
    extra = f" and {rows.size - SHOWN} more" if rows.size > SHOWN else ""
    return f"row{'s' if rows.size > 1 else ''} {shown}{extra}"


def _quote(value: str) -> str:
    return "an empty value" if value == "" else f"'{value}'"
