"""A cleaned register held in fewer bytes, restored column by column or slice by slice, exactly.

The audit's main process holds the whole cleaned register (``hmda.CLEAN_COLUMNS``) while the
partitions run. As cleaned, most of it is repetition: a text column of a few values (``race``,
``decision``, ``excluded``, the LEI, the tract) takes 10 to 30 bytes a row as Arrow strings, a
code (``loan_type``, a denial reason) 8 bytes as a float. ``compact`` holds such a column as a
dictionary (a ``pd.Categorical``: one small integer a row and each distinct value once), the
``row`` column as the range it is, and ``application_id`` not at all when it is the row number as
text (a register without ids). ``CompactFrame.restore`` gives back the columns and rows asked
for with exactly the dtypes and values of the cleaned frame: a column is held as a dictionary
only when the round trip gives the same bits (a float column mixing 0.0 and -0.0, or with an
unusual NaN, is kept as it is), and restored text is built the way the cleaning builds it (an
Arrow dictionary cast to ``str``).

``compact(frame, coded)``: a column the cleaning made from the codes of its input's distinct
values (``Coded``: the column is ``values[codes]``) is held from those codes, the few values
factorized instead of every row (the same categories and codes as factorizing the rows).

``concat`` joins consecutive pieces (``hmda.read_clean`` compacts each piece as it is cleaned),
writing the codes into one array instead of copying whole columns twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["Coded", "CompactFrame", "code_type", "compact", "concat"]

TEXT = pd.StringDtype("pyarrow", na_value=np.nan)  # the cleaned frame's text columns ("str")
MAX_FLOAT_VALUES = 1 << 15  # a float or integer column with more distinct values in a piece stays as it is


@dataclass(frozen=True, slots=True)
class Coded:
    """A column as ``values[codes]``: per row a code (0 … len(values) - 1), per code a value (text:
    an object array, None for missing). Codes need not use every value."""

    codes: np.ndarray
    values: np.ndarray

    def rows(self) -> np.ndarray:
        """The column's values, one a row."""
        taken: np.ndarray = self.values[self.codes]
        return taken


@dataclass(frozen=True, slots=True)
class CompactFrame:
    """``columns`` in order with their ``dtypes``; ``held`` the columns kept (some as categoricals);
    ``first_row`` the ``row`` of the first row when ``row`` is the range (then not held), and
    ``ids_are_rows`` when ``application_id`` is ``row`` as text (then not held either)."""

    held: pd.DataFrame
    columns: tuple[str, ...]
    dtypes: dict[str, Any]  # numpy or pandas dtypes
    encoded: frozenset[str] = frozenset()  # held as categoricals
    first_row: int | None = None
    ids_are_rows: bool = False
    rows: int = field(default=0)
    positions: np.ndarray | None = None  # a ``take`` of a larger frame: the rows' positions there (the index)

    def __len__(self) -> int:
        return self.rows

    def restore(
        self, columns: Sequence[str] | None = None, rows: np.ndarray | None = None, *, text_as_held: bool = False
    ) -> pd.DataFrame:
        """The cleaned frame's ``columns`` (all: None) at the positions ``rows`` (all: None), with
        its dtypes and values; the index is the positions, as ``frame.iloc[rows]`` gives.

        ``text_as_held``: a text column held as a dictionary comes as it is held, a categorical
        with sorted categories (a few bytes a row instead of 10 to 30): for code that compares
        it, groups, sorts or factorizes it, or turns it to text with ``astype("str")``, which
        see the same values in the same order."""
        names = list(self.columns if columns is None else columns)
        unknown = [name for name in names if name not in self.dtypes]
        if unknown:
            raise KeyError(unknown[0])
        positions = None if rows is None else np.asarray(rows, dtype=np.int64)
        if self.positions is not None:  # a take: its index is the positions in the frame it was taken from
            index = pd.Index(self.positions if positions is None else self.positions[positions])
        else:
            index = pd.RangeIndex(self.rows) if positions is None else pd.Index(positions)
        restored = {
            name: self._as_held(name, positions)
            if text_as_held and self.dtypes[name] == TEXT
            else self.column(name, positions)
            for name in names
        }
        for column in restored.values():
            column.index = index  # the same index object: no alignment
        return pd.DataFrame(restored, index=index, copy=False)

    def column(self, name: str, rows: np.ndarray | None = None) -> pd.Series:
        """One column (``restore``), index 0 … n-1."""
        if name == "row" and self.first_row is not None:
            return pd.Series(self._row_numbers(rows), dtype=np.int64, copy=False)
        if name == "application_id" and self.ids_are_rows:
            return pc.cast(pa.array(self._row_numbers(rows)), pa.string()).to_pandas()
        held = self.held[name]
        if name not in self.encoded:
            taken = held if rows is None else held.iloc[rows]
            # not reset_index: its view marks an Arrow array read-only (a pickle that differs from the slice's)
            return pd.Series(taken.array, dtype=taken.dtype, copy=False)
        codes = held.cat.codes.to_numpy()
        return _decode(codes if rows is None else codes[rows], held.cat.categories, self.dtypes[name])

    def _as_held(self, name: str, rows: np.ndarray | None) -> pd.Series:
        if name not in self.encoded:
            return self.column(name, rows)
        held = self.held[name]
        return pd.Series(held.array if rows is None else held.array.take(rows), copy=False)

    def take(self, rows: np.ndarray) -> CompactFrame:
        """The rows at the positions ``rows``, held as they are here: ``take(rows).restore()`` is
        ``restore(rows=rows)``, the same index, dtypes and values, from a few bytes a row (a
        partition's rows are sent so to the worker process that audits them, which restores them)."""
        positions = np.asarray(rows, dtype=np.int64)
        held: dict[str, pd.Series] = {}
        for name in self.held.columns:
            column = self.held[name]
            if name in self.encoded:
                codes = column.cat.codes.to_numpy()[positions]
                held[name] = pd.Series(pd.Categorical.from_codes(codes, dtype=column.dtype), copy=False)
            else:
                held[name] = pd.Series(column.iloc[positions].array, dtype=column.dtype, copy=False)
        if self.first_row is not None:  # not a range any more: the row numbers themselves
            held["row"] = pd.Series(positions + self.first_row, dtype=np.int64, copy=False)
        return CompactFrame(
            pd.DataFrame(held, index=pd.RangeIndex(len(positions)), copy=False),
            self.columns,
            self.dtypes,
            self.encoded,
            None,
            self.ids_are_rows,
            len(positions),
            positions if self.positions is None else self.positions[positions],
        )

    def dictionary(self, name: str) -> pd.Series | None:
        """The column ``name`` as held, when it is held as a dictionary: a categorical whose
        categories are sorted, so its codes order rows as the values do; else None."""
        return self.held[name] if name in self.encoded else None

    def drop(self, names: Sequence[str]) -> CompactFrame:
        """Without the columns ``names``."""
        gone = set(names)
        return CompactFrame(
            self.held.drop(columns=[name for name in names if name in self.held.columns]),
            tuple(name for name in self.columns if name not in gone),
            {name: dtype for name, dtype in self.dtypes.items() if name not in gone},
            self.encoded - gone,
            self.first_row if "row" not in gone else None,
            self.ids_are_rows and "application_id" not in gone,
            self.rows,
            self.positions,
        )

    def memory_usage(self) -> int:
        """Bytes held (``memory_usage(deep=True)`` of the held columns)."""
        return int(self.held.memory_usage(deep=True, index=True).sum())

    def _row_numbers(self, rows: np.ndarray | None) -> np.ndarray:
        if self.first_row is None:
            numbers = self.held["row"].to_numpy(dtype=np.int64)
            return numbers if rows is None else numbers[rows]
        if rows is None:
            return np.arange(self.first_row, self.first_row + self.rows, dtype=np.int64)
        return np.asarray(rows, dtype=np.int64) + self.first_row


def compact(frame: pd.DataFrame, coded: Mapping[str, Coded] | None = None) -> CompactFrame:
    """``frame`` (a cleaned register, or a piece of one) held in fewer bytes (module docstring).

    ``coded``: columns of ``frame`` as the cleaning made them, encoded from their codes; their rows are
    ``coded[name].rows()`` (as text: ``values.strings`` of them), and ``frame[name]`` gives only the
    column's dtype (``clean_hmda(keep_codes=True)`` does not build their rows: a stand-in of that dtype)."""
    coded = {} if coded is None else coded
    count = len(frame)
    first_row = None
    if "row" in frame.columns and frame["row"].dtype == np.int64:
        numbers = frame["row"].to_numpy()
        start = int(numbers[0]) if count else 1
        if np.array_equal(numbers, np.arange(start, start + count, dtype=np.int64)):
            first_row = start
    ids_are_rows = False
    if "application_id" in frame.columns and "row" in frame.columns and frame["application_id"].dtype == TEXT:
        as_text = pc.cast(pa.array(frame["row"].to_numpy(dtype=np.int64)), pa.string()).to_pandas()
        ids_are_rows = bool(frame["application_id"].reset_index(drop=True).equals(as_text))
    held: dict[str, pd.Series] = {}
    encoded: set[str] = set()
    for name in frame.columns:
        if (name == "row" and first_row is not None) or (name == "application_id" and ids_are_rows):
            continue
        column = frame[name]
        given = coded.get(name)
        if given is not None and len(given.codes) != count:
            raise ValueError(f"column '{name}': {len(given.codes)} codes for {count} rows")
        dictionary = _encode(column) if given is None else _encode_coded(column, given)
        if dictionary is not None:
            encoded.add(name)
            held[name] = pd.Series(dictionary, copy=False)
        elif given is not None:  # too many values for a dictionary: its rows, made from the codes
            held[name] = _coded_rows(given, column.dtype)
        else:  # a copy: a view would keep the frame's other columns of its block alive
            held[name] = pd.Series(column.array.copy(), dtype=column.dtype, copy=False)
    return CompactFrame(
        pd.DataFrame(held, index=pd.RangeIndex(count), copy=False),  # not a second copy of every column
        tuple(frame.columns),
        dict(frame.dtypes.items()),
        frozenset(encoded),
        first_row,
        ids_are_rows,
        count,
    )


def concat(parts: Sequence[CompactFrame]) -> CompactFrame:
    """Consecutive pieces of one register as one (the same columns and dtypes in each)."""
    first = parts[0]
    if len(parts) == 1:
        return first
    count = sum(part.rows for part in parts)
    first_row = first.first_row
    running = first_row
    for part in parts:
        if running is None or part.first_row != running:
            first_row = None
            break
        running += part.rows
    ids_are_rows = all(part.ids_are_rows for part in parts)
    held: dict[str, pd.Series] = {}
    encoded: set[str] = set()
    for name in first.columns:
        if name == "row" and first_row is not None or name == "application_id" and ids_are_rows:
            continue
        if _joinable(name, parts):
            held[name] = pd.Series(_joined_codes([part.held[name] for part in parts], count), copy=False)
            encoded.add(name)
        else:
            pieces = [part.column(name) for part in parts]
            held[name] = pd.concat(pieces, ignore_index=True)
            del pieces
    return CompactFrame(
        pd.DataFrame(held, index=pd.RangeIndex(count), copy=False),  # not a second copy of every column
        first.columns,
        first.dtypes,
        frozenset(encoded),
        first_row,
        ids_are_rows,
        count,
    )


def _joinable(name: str, parts: Sequence[CompactFrame]) -> bool:
    """Whether the pieces' dictionaries of column ``name`` join into one that restores every
    piece's bits: each piece encoded it with the same dtype, and the pieces' zeros have one sign
    (a union of 0.0 and -0.0 would keep one of them)."""
    dtype = parts[0].dtypes[name]
    if not all(name in part.encoded and part.dtypes[name] == dtype for part in parts):
        return False
    if dtype != np.float64:
        return True
    values = np.concatenate([part.held[name].cat.categories.to_numpy(dtype=np.float64) for part in parts])
    signs = np.signbit(values[values == 0])
    return bool(signs.all() or not signs.any())

def _encode(column: pd.Series) -> pd.Categorical | None:
    """``column`` as a dictionary when that is smaller and restores the same bits; else None."""
    dtype = column.dtype
    if dtype != TEXT and dtype != np.float64 and dtype != np.int64:
        return None
    codes, uniques = pd.factorize(column, sort=True, use_na_sentinel=True)  # sorted: codes order as values do
    limit = len(column) // 2 if dtype == TEXT else min(MAX_FLOAT_VALUES, len(column) // 4)
    if len(uniques) > limit:
        return None
    codes = np.asarray(codes)
    if dtype != TEXT:  # a float's sign of zero or NaN payload must come back too
        restored = _decode(codes, uniques, dtype).to_numpy()
        original = column.to_numpy()
        if restored.tobytes() != original.tobytes():
            return None
    return pd.Categorical.from_codes(codes, dtype=pd.CategoricalDtype(uniques))


def _coded_rows(coded: Coded, dtype: Any) -> pd.Series:
    """The rows of ``coded`` as a column of ``dtype``: text as ``values.strings`` makes it (an Arrow
    dictionary of the values, None missing, cast to text), numbers taken."""
    if dtype == TEXT:
        dictionary = pa.array(list(coded.values), type=pa.string())
        indices = pa.array(np.asarray(coded.codes, dtype=np.int32))
        return pd.Series(pa.DictionaryArray.from_arrays(indices, dictionary).cast(pa.string()).to_pandas(), copy=False)
    return pd.Series(coded.rows(), dtype=dtype, copy=False)


def _encode_coded(column: pd.Series, coded: Coded) -> pd.Categorical | None:
    """``_encode(column)`` of a column that is ``coded.rows()``: the same categories and codes, from
    the values its rows use (factorized: a few) and one take of their codes."""
    dtype = column.dtype
    if dtype != TEXT and dtype != np.float64 and dtype != np.int64:
        return None
    limit = len(column) // 2 if dtype == TEXT else min(MAX_FLOAT_VALUES, len(column) // 4)
    codes = np.asarray(coded.codes)
    used = np.flatnonzero(np.bincount(codes, minlength=len(coded.values)))
    values = pd.Series(np.asarray(coded.values)[used], dtype=dtype)
    value_codes, uniques = pd.factorize(values, sort=True, use_na_sentinel=True)  # as _encode's on the rows
    if len(uniques) > limit:
        return None
    value_codes = np.asarray(value_codes)
    if dtype != TEXT:  # each used value comes back with its bits, so each row does
        if _decode(value_codes, uniques, dtype).to_numpy().tobytes() != values.to_numpy().tobytes():
            return None
    per_code = np.full(len(coded.values), -1, dtype=code_type(len(uniques)))
    per_code[used] = value_codes
    # every row's code is a used value's, so a category's: not checked again (a pass over the rows)
    return pd.Categorical.from_codes(np.take(per_code, codes), dtype=pd.CategoricalDtype(uniques), validate=False)


def code_type(categories: int) -> type[np.signedinteger[Any]]:
    """The integer type pandas holds a categorical's codes in when it has ``categories`` values (its
    ``coerce_indexer_dtype``): codes made in it are kept as they are, codes of another type are converted, a
    pass over the rows (35 columns a piece) that making them narrow in the first place saves."""
    for kind in (np.int8, np.int16, np.int32):
        if categories < np.iinfo(kind).max:
            return kind
    return np.int64


def _decode(codes: np.ndarray, categories: pd.Index, dtype: Any) -> pd.Series:
    """The values of ``codes`` (-1: missing) among ``categories`` as a column of ``dtype``."""
    if dtype == TEXT:
        missing = np.asarray(codes) < 0
        indices = pa.array(np.asarray(codes, dtype=np.int32), mask=missing if missing.any() else None)  # no bitmap
        dictionary = pa.array(np.asarray(categories.astype(object)), type=pa.string())
        return pa.DictionaryArray.from_arrays(indices, dictionary).cast(pa.string()).to_pandas()
    values = np.asarray(categories.to_numpy(), dtype=dtype)
    if dtype == np.float64:  # missing last: code -1 takes it, one take and no mask (2.5 times faster)
        return pd.Series(np.append(values, np.nan)[codes], dtype=dtype, copy=False)
    taken = values[np.maximum(codes, 0)] if len(values) else np.zeros(len(codes), dtype=dtype)
    return pd.Series(taken, dtype=dtype, copy=False)


def _joined_codes(columns: list[pd.Series], count: int) -> pd.Categorical:
    """Categorical pieces as one: the union of their values (sorted), codes remapped in place."""
    categories = [column.cat.categories for column in columns]
    union = categories[0].append(categories[1:]).unique().sort_values()
    codes = np.empty(count, dtype=code_type(len(union)))
    start = 0
    for column, piece_categories in zip(columns, categories, strict=True):
        where = np.append(union.get_indexer(piece_categories), -1).astype(codes.dtype)  # code -1 (missing) stays -1
        piece = column.cat.codes.to_numpy()
        np.take(where, piece, out=codes[start : start + len(piece)])  # no temporary array
        start += len(piece)
    return pd.Categorical.from_codes(codes, dtype=pd.CategoricalDtype(union))
