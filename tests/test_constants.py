"""Constants are interned in one canonical order, however they are sorted."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from reasoner.constants import order_key
from reasoner.intern import _by_order_key

numbers = st.one_of(
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=False, allow_infinity=False).filter(lambda value: not value.is_integer()),
)


@given(st.sets(numbers, max_size=40))
def test_numbers_sort_as_order_key_sorts_them(values: set[int | float]) -> None:
    listed = list(values)
    assert _by_order_key(list(listed)) == sorted(listed, key=order_key)
