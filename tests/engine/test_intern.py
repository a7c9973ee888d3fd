"""Interning columns (Arrow text, int64, float64) gives the table interning Python values gives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from reasoner.constants import order_key
from reasoner.evidence import typed_constants
from reasoner.intern import _python_table, intern_columns, unique_sorted

texts = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=4)
any_texts = st.text(max_size=4)  # lone surrogates too: UTF-8 (Arrow) cannot hold them, Python can
ints = st.integers(min_value=-(2**63), max_value=2**63 - 1)
big = st.integers(min_value=2**63, max_value=2**65)
floats = st.floats(allow_nan=False, allow_infinity=False).filter(lambda value: not value.is_integer())
integral_floats = st.sampled_from([-(2.0**63), -1.0, 0.0, 3.0, 2.0**62])  # Python values: canonical as integers


def _column(kind: str, values: list) -> object:  # type: ignore[type-arg]
    if kind == "text":
        return pd.Series(values, dtype="str")
    if kind == "arrow":
        return pa.array(values, type=pa.string())
    if kind == "int":
        return np.array(values, dtype=np.int64)
    if kind == "float":
        return pd.Series(values, dtype=np.float64)
    return values  # Python values


collections = st.one_of(
    st.tuples(st.just("text"), st.lists(texts, max_size=8)),
    st.tuples(st.just("arrow"), st.lists(texts, max_size=8)),
    st.tuples(st.just("int"), st.lists(ints, max_size=8)),
    st.tuples(st.just("float"), st.lists(floats, max_size=8)),
    st.tuples(st.just("python"), st.lists(st.one_of(any_texts, ints, floats, big), max_size=8)),
)


def _expected_order(values: set) -> list:  # type: ignore[type-arg]
    return sorted(values, key=lambda value: (order_key(value), value if isinstance(value, int) else 0))


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(st.sampled_from(["a", "b", "c"]), st.lists(collections, max_size=4), max_size=3),
    st.lists(st.one_of(texts, ints), max_size=3),
)
def test_columns_intern_as_their_values(typed: dict, untyped: list) -> None:  # type: ignore[type-arg]
    given_values = {name: [_column(kind, values) for kind, values in parts] for name, parts in typed.items()}
    table, ids = intern_columns(given_values, untyped)
    everything = set(untyped) | {value for parts in typed.values() for _kind, values in parts for value in values}
    assert list(table.values) == _expected_order(everything)
    assert [type(value) for value in table.values] == [type(value) for value in _expected_order(everything)]
    assert table.num_numeric == sum(not isinstance(value, str) for value in everything)
    for name, parts in typed.items():
        domain = {value for _kind, values in parts for value in values}
        assert [table.values[i] for i in table.domains[name]] == _expected_order(domain)
        for (_kind, values), found in zip(parts, ids[name], strict=True):
            assert [table.values[i] for i in found] == values
            for value, identifier in zip(values, found, strict=True):
                assert table.id(value) == identifier
        every = np.arange(len(table), dtype=np.int64)  # of the type or not: the position a binary search gives
        assert table.local(name, every).tolist() == np.searchsorted(table.domains[name], every).tolist()
        assert table.local(name, every[::-1]).tolist() == np.searchsorted(table.domains[name], every[::-1]).tolist()
        beyond = np.array([-1, len(table), len(table) + 5], dtype=np.int64)  # not ids at all: searched too
        assert table.local(name, beyond).tolist() == np.searchsorted(table.domains[name], beyond).tolist()
        assert table.local(name, every[:0]).tolist() == []
    python, python_ids = _python_table(given_values, untyped)
    assert list(python.values) == list(table.values)
    assert {name: [list(found) for found in parts] for name, parts in python_ids.items()} == {
        name: [list(found) for found in parts] for name, parts in ids.items()
    }


def test_unknown_constants_are_key_errors() -> None:
    table, _ids = intern_columns({"t": [pd.Series(["x"], dtype="str"), np.array([3]), np.array([0.5])]})
    for value in ("y", 4, 0.25, 2**70):
        try:
            table.id(value)
        except KeyError:
            continue
        raise AssertionError(f"{value!r} found")


def test_typed_constants_keep_exact_columns_and_canonicalise_the_rest() -> None:
    assert str(typed_constants(pd.Series([1, 2])).dtype) == "int64"
    assert typed_constants(pd.Series([True, False])).tolist() == [1, 0]
    assert str(typed_constants(pd.Series([1.0, 2.0])).dtype) == "int64"
    assert str(typed_constants(pd.Series([0.5, 2.25])).dtype) == "float64"
    mixed = typed_constants(pd.Series([1.0, 0.5]))
    assert mixed.dtype == object and [type(value) for value in mixed] == [int, float]
    text = pd.Series(["a", "b"], dtype="str")
    assert typed_constants(text) is text
    assert typed_constants(pd.Series(["a", 3], dtype=object)).tolist() == ["a", 3]


def test_the_lowest_int64_is_one_constant_whatever_its_column() -> None:
    low = -(2**63)
    table, ids = intern_columns({"t": [np.array([low], dtype=np.int64), [float(low)]]})
    assert list(table.values) == [low] and [list(found) for found in ids["t"]] == [[0], [0]]
    assert str(typed_constants(pd.Series([float(low), 1.0])).dtype) == "int64"


def test_strings_arrow_cannot_hold_take_the_python_path() -> None:
    table, ids = intern_columns({"t": [["\ud83d", "a"], pd.Series(["b"], dtype="str")]})
    assert list(table.values) == sorted(["\ud83d", "a", "b"])
    assert [table.values[i] for i in ids["t"][0]] == ["\ud83d", "a"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), max_size=40), st.sampled_from(["int64", "int32"]))
def test_unique_sorted_is_numpys_unique(values: list[int], dtype: str) -> None:
    array = np.array([value % (2**31) if dtype == "int32" else value for value in values], dtype=np.int64).astype(dtype)
    found = unique_sorted(array)
    assert found.dtype == np.unique(array).dtype
    assert found.tolist() == np.unique(array).tolist()


def test_unique_sorted_flattens_as_numpys_unique_does() -> None:
    grid = np.array([[3, 1], [1, 2]])
    assert unique_sorted(grid).tolist() == np.unique(grid).tolist() == [1, 2, 3]
    assert unique_sorted(grid[:, :1]).tolist() == [1, 3]  # not contiguous


def test_unique_sorted_of_floats_and_flags_is_numpys_unique() -> None:
    floats = np.array([2.0, np.nan, -0.0, 0.0, np.nan, 1.5, 2.0])
    np.testing.assert_array_equal(unique_sorted(floats), np.unique(floats))  # one NaN, as numpy gives it
    flags = np.array([True, False, True])
    assert unique_sorted(flags).tolist() == [False, True]
    assert unique_sorted(np.empty(0, dtype=np.int64)).dtype == np.int64
    assert unique_sorted(np.array([7], dtype=np.uint32)).tolist() == [7]
