"""Per-call costs of the statistics cut without changing a value: each new form against the one it replaced."""

import numpy as np
import pandas as pd

from reasoner.lending.evidence.similar import _block_codes
from reasoner.lending.evidence.statistics import _equals, _running_max, holm_adjusted


def test_running_max_is_groupby_cummax() -> None:
    random = np.random.default_rng(7)
    for size in (1, 2, 5, 40, 500):
        families = np.sort(random.integers(0, max(1, size // 4), size))
        values = np.round(random.random(size), 1)  # ties
        expected = pd.Series(values).groupby(families).cummax().to_numpy()
        assert _running_max(values, families).tobytes() == expected.tobytes()


def test_running_max_keeps_the_first_of_equal_zeros() -> None:
    values = np.array([-0.0, 0.0, 0.5, 0.0, -0.0])
    families = np.array([0, 0, 0, 1, 1])
    expected = pd.Series(values).groupby(families).cummax().to_numpy()
    assert _running_max(values, families).tobytes() == expected.tobytes()


def test_holm_adjusted_by_hand() -> None:
    p = np.array([0.01, 0.04, np.nan, 0.03, 0.2, 0.01])
    families = np.array(["a", "a", "a", "a", "b", "b"], dtype=object)
    adjusted = holm_adjusted(p, families)
    assert np.allclose(adjusted[[0, 3, 1]], [0.03, 0.06, 0.06])
    assert np.isnan(adjusted[2])
    assert np.allclose(adjusted[[5, 4]], [0.02, 0.2])


def test_equals_of_arrow_texts_is_pandas_comparison() -> None:
    values = ["denied", None, "approved", "denied", float("nan"), ""]
    for column in (
        pd.Series(values, dtype="str"),
        pd.Series([], dtype="str"),
        pd.concat([pd.Series(values[:3], dtype="str"), pd.Series(values[3:], dtype="str")], ignore_index=True),
        pd.Series(values, dtype=object),
    ):
        for value in ("denied", "", "other"):
            found = _equals(column, value)
            assert found.dtype == bool
            assert found.tolist() == column.eq(value).fillna(False).to_numpy(dtype=bool).tolist()


def test_block_codes_are_groupby_numbers() -> None:
    random = np.random.default_rng(3)
    size = 300
    frame = pd.DataFrame(
        {
            "lei": pd.Series(random.choice(["B", "A", "C", None], size), dtype="str"),
            "kind": pd.Categorical(random.choice(["2", "1", "3"], size), categories=["3", "1", "2"]),
            "lien": random.choice([1.0, 2.0, np.nan], size),
        }
    )
    for blocks in (("lei",), ("lei", "kind"), ("lei", "kind", "lien"), ("kind", "lien")):
        number = frame.groupby(list(blocks), sort=True, dropna=True, observed=True).ngroup()
        expected = number.to_numpy(dtype=np.float64, na_value=-1.0).astype(np.int64)
        assert _block_codes(frame, blocks).tolist() == expected.tolist()
    assert _block_codes(frame, ()).tolist() == [0] * size
