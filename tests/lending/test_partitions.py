"""Partitions of whole lenders (``audit.run._partitions``) and the order they are dispatched in: plans only, no
audit (the audits of several partitions are in ``test_scale.py``)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from reasoner.lending.audit.run import PARTITION_ROWS, TAIL_ROWS, _largest_first, _partitions


def test_partitions_hold_whole_lenders_in_lei_order() -> None:
    frame = pd.DataFrame({"lei": ["B", "A", None, "C", "A", "B", "D", "C", "A"]})
    parts = _partitions(frame["lei"], 3, whole=False)
    leis = [frame["lei"].iloc[rows].fillna("-").tolist() for rows in parts]
    assert leis == [["A", "-", "A", "A"], ["B", "B"], ["C", "D", "C"]]  # rows without a LEI join the first
    assert all((np.diff(rows) > 0).all() for rows in parts)  # input order within a partition
    assert sorted(np.concatenate(parts).tolist()) == list(range(len(frame)))
    assert [rows.tolist() for rows in _partitions(frame["lei"], 3, whole=True)] == [list(range(len(frame)))]
    assert len(_partitions(frame["lei"], 100, whole=False)) == 1


def test_partitions_are_at_most_the_limit_or_one_lender_and_by_default_the_largest_lender() -> None:
    rng = np.random.default_rng(5)
    sizes = rng.integers(1, 3_000, 200)
    sizes[[17, 150]] = [45_000, 52_000]  # two lenders larger than PARTITION_ROWS
    lei = pd.Series(np.repeat([f"L{number:03d}" for number in range(len(sizes))], sizes)).sample(frac=1, random_state=1)
    lei = lei.reset_index(drop=True)
    for target, limit in ((5_000, 5_000), (None, 52_000)):
        parts = _partitions(lei, target, whole=False)
        held = [len(rows) for rows in parts]
        lenders = [lei.iloc[rows].nunique() for rows in parts]
        assert all(rows <= limit or count == 1 for rows, count in zip(held, lenders, strict=True))
        # closed only when the next lender would not fit: no two neighbours could have been one partition
        assert all(left + right > limit for left, right in zip(held, held[1:], strict=False))
        assert sum(held) == len(lei)
    assert max(len(rows) for rows in _partitions(lei, None, whole=False)) > PARTITION_ROWS
    small = lei[~lei.isin(["L017", "L150"])].reset_index(drop=True)  # no lender above PARTITION_ROWS: it is the limit
    assert max(len(rows) for rows in _partitions(small, None, whole=False)) <= PARTITION_ROWS


def test_default_partitions_for_several_workers_get_smaller_towards_the_end() -> None:
    """Guided self-scheduling: each partition at most a worker's share of the rows left (never more than
    the one-worker limit, never less than TAIL_ROWS), so the workers end about together."""
    lei = pd.Series(np.repeat([f"L{number:03d}" for number in range(100)], 1_000)).sample(frac=1, random_state=2)
    lei = lei.reset_index(drop=True)
    assert [len(rows) for rows in _partitions(lei, None, whole=False)] == [40_000, 40_000, 20_000]  # one worker
    tapered = _partitions(lei, None, whole=False, workers=2)
    assert [len(rows) for rows in tapered] == [40_000, 30_000, 15_000, TAIL_ROWS, 5_000]  # 100k, 60k, 30k, 15k left
    leis = [lei.iloc[rows].unique() for rows in tapered]
    assert [code for codes in leis for code in sorted(codes)] == sorted(lei.unique())  # whole lenders in LEI order
    assert all((np.diff(rows) > 0).all() for rows in tapered)
    # an explicit limit keeps its meaning whatever the workers
    for target in (5_000, 40_000):
        same = _partitions(lei, target, whole=False, workers=2)
        assert [rows.tolist() for rows in same] == [rows.tolist() for rows in _partitions(lei, target, whole=False)]


def test_tapered_partitions_are_never_larger_than_the_one_worker_limit() -> None:
    rng = np.random.default_rng(7)
    sizes = rng.integers(1, 3_000, 400)
    sizes[[30, 390]] = [45_000, 52_000]  # lenders larger than PARTITION_ROWS, one near the end
    lei = pd.Series(np.repeat([f"L{number:03d}" for number in range(len(sizes))], sizes))
    one, two = (_partitions(lei, None, whole=False, workers=workers) for workers in (1, 2))
    assert max(map(len, two)) == max(map(len, one)) == 52_000  # the limit of one worker: the largest lender
    left = len(lei) - np.cumsum([0, *map(len, two[:-1])])  # the rows left when each partition starts
    assert all(
        len(rows) <= max(TAIL_ROWS, -(-rest // 2)) or lei.iloc[rows].nunique() == 1
        for rows, rest in zip(two, left, strict=True)
    )
    assert len(two) > len(one) and len(two[-1]) <= TAIL_ROWS
    assert sorted(np.concatenate(two).tolist()) == list(range(len(lei)))
    order = _largest_first(two)
    assert len(two[order[0]]) == 52_000 and len(two[order[-1]]) == min(map(len, two))


def test_the_largest_partitions_are_dispatched_first_ties_in_index_order() -> None:
    parts = [np.arange(size) for size in (3, 5, 1, 5, 2)]
    assert _largest_first(parts) == [1, 3, 0, 4, 2]
