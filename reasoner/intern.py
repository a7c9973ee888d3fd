"""Constants as integers: one sorted table of every constant, and a domain per type.

Ids follow the canonical constant order (numbers by value, then strings), so
``x < y`` on two numeric ids is ``x < y`` on their values, and sorting by id
sorts atoms canonically.

Evidence comes in columns (``evidence.typed_constants``): text, int64 and float64
columns are interned with Arrow and numpy (hashed once, distinct values sorted
once), never value by value; Python values (rule constants, object columns) are
split by kind first. Integers beyond 64 bits take the plain Python path.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from reasoner.constants import ConstantValue, display, order_key
from reasoner.evidence import arrow_text, is_text

__all__ = ["ConstantTable", "build_constant_table", "intern_columns", "unique_sorted"]

_LOW, _HIGH = -(2**63), 2**63 - 1
Collection: TypeAlias = "pd.Series | np.ndarray | pa.Array | Iterable[ConstantValue]"


@dataclass(frozen=True, slots=True)
class ConstantTable:
    values: np.ndarray  # object array, canonical order
    num_numeric: int
    domains: dict[str, np.ndarray]  # type → sorted ids
    ints: np.ndarray | None = None  # int64 constants, sorted, with their ids (None: look up by ``index``)
    int_ids: np.ndarray | None = None
    floats: np.ndarray | None = None  # float constants, sorted, with their ids
    float_ids: np.ndarray | None = None
    texts: dict[int, str] = field(default_factory=dict, compare=False, repr=False)  # display text by id, as asked
    _lazy: dict[str, pd.Index] = field(default_factory=dict, compare=False, repr=False)
    _positions: dict[str, np.ndarray] = field(default_factory=dict, compare=False, repr=False)  # ``local``'s maps

    def __len__(self) -> int:
        return len(self.values)

    @property
    def index(self) -> pd.Index:
        """Every constant's id by value (built on first use: hashing every constant costs)."""
        found = self._lazy.get("index")
        if found is None:
            found = self._lazy["index"] = pd.Index(self.values, dtype=object)
        return found

    def ids(self, values: Iterable[ConstantValue] | pd.Series) -> np.ndarray:
        """Ids of known constants (raises KeyError on an unknown one)."""
        array = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
        found = self.index.get_indexer(array)
        if (found < 0).any():
            missing = array[found < 0].iloc[0] if isinstance(array, pd.Series) else None
            raise KeyError(missing)
        ids: np.ndarray = found.astype(np.int64)
        return ids

    def id(self, value: ConstantValue) -> int:
        if self.ints is None or self.int_ids is None or self.floats is None or self.float_ids is None:
            return int(self.index.get_loc(value))  # built value by value (``_python_table``): all four are None
        if isinstance(value, str):
            strings = self.values[self.num_numeric :]
            position = int(np.searchsorted(strings, value))
            if position < len(strings) and strings[position] == value:
                return self.num_numeric + position
            raise KeyError(value)
        if isinstance(value, bool) or (isinstance(value, int) and _LOW <= value <= _HIGH):
            return _find(self.ints, self.int_ids, int(value), value)
        if isinstance(value, float):
            return _find(self.floats, self.float_ids, value, value)
        return int(self.index.get_loc(value))

    def text(self, identifier: int) -> str:
        found = self.texts.get(identifier)
        if found is None:
            found = self.texts[identifier] = display(self.values[identifier])
        return found

    def local(self, type_name: str, ids: np.ndarray) -> np.ndarray:
        """Positions of ids within a type's domain (for an id outside it, where it would go).

        Read from a map of every constant id to its position (``_positions_of``), not found by
        binary search: grounding looks up millions of ids."""
        domain = self.domains[type_name]
        ids = np.asarray(ids)
        positions = self._positions_of(type_name)
        if (
            positions is None
            or ids.dtype.kind not in "iu"
            or not len(ids)
            or int(ids.min()) < 0
            or int(ids.max()) >= len(positions)
        ):
            searched: np.ndarray = np.searchsorted(domain, ids)
            return searched
        found: np.ndarray = positions[ids].astype(np.int64)
        outside = found < 0
        if outside.any():  # not of the type: its insertion point, as the search gives
            found[outside] = np.searchsorted(domain, ids[outside])
        return found

    def _positions_of(self, type_name: str) -> np.ndarray | None:
        """Every constant id's position in the type's domain (-1: not of the type), built once per
        type; None (search instead) when the table has more than a million constants and more
        than 16 per constant of the type (the map then costs more than 64 bytes per constant of it)."""
        found = self._positions.get(type_name)
        if found is None:
            domain = self.domains[type_name]
            if len(self.values) > max(1 << 20, 16 * len(domain)) or len(domain) >= 2**31:
                return None
            found = np.full(len(self.values), -1, dtype=np.int32)
            found[domain] = np.arange(len(domain), dtype=np.int32)
            self._positions[type_name] = found
        return found


def _find(table: np.ndarray, ids: np.ndarray, key: int | float, value: object) -> int:
    position = int(np.searchsorted(table, key))
    if position < len(table) and table[position] == key:
        return int(ids[position])
    raise KeyError(value)


def build_constant_table(
    typed_values: Mapping[str, Iterable[Collection]],
    untyped_values: Iterable[ConstantValue] = (),
) -> ConstantTable:
    """Intern every constant; ``typed_values`` maps a type to collections of its constants."""
    return intern_columns({name: list(collections) for name, collections in typed_values.items()}, untyped_values)[0]


def intern_columns(
    typed_values: Mapping[str, Sequence[Collection]],
    untyped_values: Iterable[ConstantValue] = (),
) -> tuple[ConstantTable, dict[str, list[np.ndarray]]]:
    """Intern every constant; also the id of every value of every collection, in its order.

    A collection is a text, int64 or float64 column (``pd.Series``, numpy or Arrow array) of
    canonical values without missing ones, or any iterable of canonical Python values.
    """
    arrays: dict[str, list[np.ndarray | pa.Array]] = {"int": [], "float": [], "str": []}
    lengths = {"int": 0, "float": 0, "str": 0}
    placed: dict[str, list[tuple[list[tuple[str, int, int]], np.ndarray | None]]] = {}

    def add(collection: Collection) -> tuple[list[tuple[str, int, int]], np.ndarray | None] | None:
        split = _split(collection)
        if split is None:
            return None
        pieces, order = split
        ranges = []
        for kind, array in pieces:
            ranges.append((kind, lengths[kind], lengths[kind] + len(array)))
            lengths[kind] += len(array)
            arrays[kind].append(array)
        return ranges, order

    for type_name, collections in typed_values.items():
        placed[type_name] = []
        for collection in collections:
            added = add(collection)
            if added is None:  # an integer beyond 64 bits
                return _python_table(typed_values, untyped_values)
            placed[type_name].append(added)
    if add(list(untyped_values)) is None:
        return _python_table(typed_values, untyped_values)

    ints = np.concatenate(arrays["int"]).astype(np.int64) if arrays["int"] else np.empty(0, np.int64)
    floats = np.concatenate(arrays["float"]).astype(np.float64) if arrays["float"] else np.empty(0, np.float64)
    int_codes, int_uniques = _factorize_sorted(ints)
    float_codes, float_uniques = _factorize_sorted(floats)
    # Numbers by value, an integer before a float of the same value (``order_key``).
    order = np.lexsort(
        (
            np.concatenate([np.zeros(len(int_uniques), bool), np.ones(len(float_uniques), bool)]),
            np.concatenate([int_uniques.astype(np.float64), float_uniques]),
        )
    )
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order), dtype=np.int64)
    int_ids, float_ids = position[: len(int_uniques)], position[len(int_uniques) :]
    num_numeric = len(order)
    # Strings by code point: UTF-8 byte order is code point order.
    strings = pa.concat_arrays(arrays["str"]) if arrays["str"] else pa.array([], type=pa.large_string())
    encoded = pc.dictionary_encode(strings)
    sort = np.asarray(pc.array_sort_indices(encoded.dictionary), dtype=np.int64)
    rank = np.empty(len(sort), dtype=np.int64)
    rank[sort] = np.arange(len(sort), dtype=np.int64)
    ids = {
        "int": int_ids[int_codes],
        "float": float_ids[float_codes],
        "str": num_numeric + rank[np.asarray(encoded.indices, dtype=np.int64)],
    }
    values = np.empty(num_numeric + len(sort), dtype=object)
    numbers = np.empty(num_numeric, dtype=object)
    numbers[int_ids] = int_uniques.tolist()
    numbers[float_ids] = float_uniques.tolist()
    values[:num_numeric] = numbers
    values[num_numeric:] = encoded.dictionary.take(pa.array(sort)).to_numpy(zero_copy_only=False)

    per_collection: dict[str, list[np.ndarray]] = {}
    domains: dict[str, np.ndarray] = {}
    for type_name in sorted(placed):
        present = np.zeros(len(values), dtype=bool)
        found = []
        for ranges, order_back in placed[type_name]:
            pieces = [ids[kind][start:stop] for kind, start, stop in ranges]
            column = np.concatenate(pieces) if pieces else np.empty(0, np.int64)
            present[column] = True
            found.append(column if order_back is None else column[order_back])
        per_collection[type_name] = found
        domains[type_name] = np.flatnonzero(present).astype(np.int64)
    table = ConstantTable(values, num_numeric, domains, int_uniques, int_ids, float_uniques, float_ids)
    return table, per_collection


def unique_sorted(values: np.ndarray) -> np.ndarray:
    """``np.unique(values)`` (flattened, as ``np.unique`` does), by one sort for integers: numpy 2.4's
    ``np.unique`` hashes them first, 3x slower at 45,000 ids and 10x at 200,000 (its table outgrows the
    cache), so that a partition of large lenders paid more per row than a small one."""
    if values.dtype.kind not in "iub":
        return np.unique(values)  # floats: NaN and -0.0 as ``np.unique`` has them
    ordered = np.sort(values, axis=None)
    if len(ordered) < 2:
        return ordered
    first = np.empty(len(ordered), dtype=bool)
    first[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    distinct: np.ndarray = ordered[first]
    return distinct


def _factorize_sorted(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes into the sorted distinct values (hashed, then only the distinct values sorted)."""
    if not len(values):
        return np.empty(0, dtype=np.int64), values
    codes, uniques = pd.factorize(values)
    sort = np.argsort(uniques, kind="stable")
    rank = np.empty(len(sort), dtype=np.int64)
    rank[sort] = np.arange(len(sort), dtype=np.int64)
    return rank[codes], np.asarray(uniques)[sort]


def _split(collection: Collection) -> tuple[list[tuple[str, np.ndarray | pa.Array]], np.ndarray | None] | None:
    """A collection as (kind, array) pieces, and the positions that put the pieces' values,
    concatenated, back in the collection's order (None: already in it). None for an integer
    beyond 64 bits."""
    if isinstance(collection, pd.Series):
        if collection.dtype.kind in "iu":
            return [("int", collection.to_numpy(dtype=np.int64))], None
        if collection.dtype.kind == "f":
            return [("float", collection.to_numpy(dtype=np.float64))], None
        if is_text(collection):
            return [("str", arrow_text(collection))], None
        collection = collection.to_numpy(dtype=object)
    elif isinstance(collection, pa.Array) and (
        pa.types.is_string(collection.type) or pa.types.is_large_string(collection.type)
    ):
        return [("str", collection.cast(pa.large_string()))], None
    elif isinstance(collection, np.ndarray) and collection.dtype.kind in "iu":
        return [("int", collection.astype(np.int64))], None
    elif isinstance(collection, np.ndarray) and collection.dtype.kind == "f":
        return [("float", collection.astype(np.float64))], None
    by_kind: dict[str, list[ConstantValue]] = {"int": [], "float": [], "str": []}
    positions: dict[str, list[int]] = {"int": [], "float": [], "str": []}
    for number, value in enumerate(collection):
        if isinstance(value, str):
            kind = "str"
        elif isinstance(value, float) and not (value.is_integer() and _LOW <= value <= _HIGH):
            kind = "float"
        elif isinstance(value, (int, float, np.integer)) and _LOW <= value <= _HIGH:
            value, kind = int(value), "int"
        else:
            return None  # an integer beyond 64 bits (or not a constant): the plain path
        by_kind[kind].append(value)
        positions[kind].append(number)
    pieces: list[tuple[str, np.ndarray | pa.Array]] = []
    for kind in ("int", "float", "str"):
        if not by_kind[kind]:
            continue
        if kind == "str":
            try:
                pieces.append((kind, pa.array(by_kind[kind], type=pa.large_string())))
            except (UnicodeEncodeError, pa.ArrowException):
                return None  # a string UTF-8 cannot hold (a lone surrogate): the plain path
        else:
            pieces.append((kind, np.array(by_kind[kind], dtype=np.int64 if kind == "int" else np.float64)))
    concatenated = np.array([p for kind in ("int", "float", "str") for p in positions[kind]], dtype=np.int64)
    back = np.empty(len(concatenated), dtype=np.int64)
    back[concatenated] = np.arange(len(concatenated), dtype=np.int64)
    return pieces, back


def _exact_order(value: ConstantValue) -> tuple[tuple[int, float, str], int]:
    return order_key(value), value if isinstance(value, int) else 0


def _python_values(collection: Collection) -> list[ConstantValue]:
    if isinstance(collection, pd.Series):
        return list(collection.to_numpy(dtype=object))
    if isinstance(collection, pa.Array):
        values: list[ConstantValue] = collection.to_pylist()
        return values
    return [value.item() if hasattr(value, "item") else value for value in collection]


def _python_table(
    typed_values: Mapping[str, Sequence[Collection]], untyped_values: Iterable[ConstantValue]
) -> tuple[ConstantTable, dict[str, list[np.ndarray]]]:
    """The table built value by value (integers beyond 64 bits sort with Python)."""
    per_type: dict[str, list[list[ConstantValue]]] = {}
    everything: set[ConstantValue] = set(untyped_values)
    for type_name, collections in typed_values.items():
        lists = per_type.setdefault(type_name, [])
        for collection in collections:
            listed = _python_values(collection)
            lists.append(listed)
            everything.update(listed)
    strings = sorted(value for value in everything if isinstance(value, str))
    # ``order_key``, and integers of one float value by their exact value (so no set order shows)
    numbers = sorted((value for value in everything if not isinstance(value, str)), key=_exact_order)
    values = np.empty(len(numbers) + len(strings), dtype=object)
    values[: len(numbers)] = numbers
    values[len(numbers) :] = strings
    table = ConstantTable(values, len(numbers), {})
    per_collection: dict[str, list[np.ndarray]] = {}
    for type_name, lists in sorted(per_type.items()):
        found = [table.index.get_indexer(pd.Series(listed, dtype=object)).astype(np.int64) for listed in lists]
        per_collection[type_name] = found
        table.domains[type_name] = unique_sorted(np.concatenate(found)) if found else np.empty(0, np.int64)
    return table, per_collection
