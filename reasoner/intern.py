"""Constants as integers: one sorted table of every constant, and a domain per type.

Ids follow the canonical constant order (numbers by value, then strings), so
``x < y`` on two numeric ids is ``x < y`` on their values, and sorting by id
sorts atoms canonically.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from reasoner.constants import ConstantValue, display

__all__ = ["ConstantTable", "build_constant_table"]


@dataclass(frozen=True, slots=True)
class ConstantTable:
    values: np.ndarray  # object array, canonical order
    index: pd.Index
    num_numeric: int
    domains: dict[str, np.ndarray]  # type → sorted ids
    texts: dict[int, str] = field(default_factory=dict, compare=False, repr=False)  # display text by id, as asked

    def __len__(self) -> int:
        return len(self.values)

    def ids(self, values: Iterable[ConstantValue] | pd.Series) -> np.ndarray:
        """Ids of known constants (raises KeyError on an unknown one)."""
        array = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
        found = self.index.get_indexer(array)
        if (found < 0).any():
            missing = array[found < 0].iloc[0] if isinstance(array, pd.Series) else None
            raise KeyError(missing)
        return found.astype(np.int64)

    def id(self, value: ConstantValue) -> int:
        return int(self.index.get_loc(value))

    def text(self, identifier: int) -> str:
        found = self.texts.get(identifier)
        if found is None:
            found = self.texts[identifier] = display(self.values[identifier])
        return found

    def local(self, type_name: str, ids: np.ndarray) -> np.ndarray:
        """Positions of ids within a type's domain."""
        return np.searchsorted(self.domains[type_name], ids)


def _by_order_key(numbers: list[ConstantValue]) -> list[ConstantValue]:
    """``sorted(numbers, key=order_key)``, with numpy: by value as a float, then integers first."""
    if not numbers:
        return numbers
    as_float = np.array([float(value) for value in numbers], dtype=np.float64)
    is_float = np.array([type(value) is float for value in numbers], dtype=bool)
    return [numbers[position] for position in np.lexsort((is_float, as_float)).tolist()]


def build_constant_table(
    typed_values: Mapping[str, Iterable[Iterable[ConstantValue]]],
    untyped_values: Iterable[ConstantValue] = (),
) -> ConstantTable:
    """Intern every constant; ``typed_values`` maps a type to collections of its constants."""
    per_type: dict[str, set[ConstantValue]] = {}
    everything: set[ConstantValue] = set(untyped_values)
    for type_name, collections in typed_values.items():
        bucket = per_type.setdefault(type_name, set())
        for collection in collections:
            if isinstance(collection, pd.Series):
                bucket.update(pd.unique(collection.to_numpy(dtype=object)).tolist())
            else:
                bucket.update(collection)
        everything |= bucket
    # Canonical order (``order_key``): numbers by value, then strings by code point.
    # Strings sort without a key function, which is the same order and much faster.
    strings = sorted(value for value in everything if isinstance(value, str))
    numbers = _by_order_key([value for value in everything if not isinstance(value, str)])
    values = np.empty(len(numbers) + len(strings), dtype=object)
    values[: len(numbers)] = numbers
    values[len(numbers) :] = strings
    index = pd.Index(values, dtype=object)
    num_numeric = len(numbers)
    domains = {}
    for type_name, bucket in sorted(per_type.items()):
        ids = index.get_indexer(pd.Series(list(bucket), dtype=object)).astype(np.int64)
        domains[type_name] = np.sort(ids)
    return ConstantTable(values, index, num_numeric, domains)
