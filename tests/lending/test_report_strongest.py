"""The report's strongest application findings per lender, picked by one sort, against a plain Python sort."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from reasoner.lending.outputs import report


def _reference(applications: pd.DataFrame) -> list[tuple[str, int]]:
    """(lender, row) of each lender's strongest findings: the sort the report made per lender before."""

    def key(row: tuple[object, ...]) -> tuple[object, ...]:
        _, _, application_id, score = row
        assert isinstance(score, float) and isinstance(application_id, str)
        return (0, -score, application_id) if math.isfinite(score) else (1, 0.0, application_id)

    rows = list(
        zip(
            applications["lei"].tolist(),
            applications["row"].tolist(),
            applications["application_id"].tolist(),
            applications["violation_score"].tolist(),
            strict=True,
        )
    )
    found = []
    for lei in dict.fromkeys(applications["lei"].tolist()):
        ranked = sorted((row for row in rows if row[0] == lei), key=key)
        found += [(str(row[0]), int(row[1])) for row in ranked[: report.MAX_APPLICATIONS_LISTED]]
    return found


def test_strongest_findings_match_a_python_sort_per_lender() -> None:
    generator = np.random.default_rng(3)
    count = 400
    scores = generator.choice([0.0, -0.0, 0.5, 1.25, 2.0, math.nan, math.inf, -math.inf, -1.0], size=count)
    scores[::7] = generator.random(count)[::7]
    ids = generator.choice(["17", "9", "100", "a", "Z", "é", "中", "ä", "09"], size=count)  # repeated: ties
    frame = pd.DataFrame(
        {
            "application_id": pd.Series(ids, dtype="str"),
            "row": np.arange(count, dtype=np.int64),
            "lei": pd.Series(generator.choice(["L3", "L1", "L2", "L0"], size=count), dtype="str"),
            "violation_score": scores,
        }
    )
    picked = report._strongest(frame)
    found = list(zip(picked["lei"].tolist(), picked["row"].tolist(), strict=True))
    by_lender: dict[str, list[int]] = {}
    for lei, row in found:
        by_lender.setdefault(lei, []).append(row)
    expected: dict[str, list[int]] = {}
    for lei, row in _reference(frame):
        expected.setdefault(lei, []).append(row)
    assert by_lender == expected
    assert all(len(rows) == report.MAX_APPLICATIONS_LISTED for rows in by_lender.values())


def test_strongest_findings_of_no_findings() -> None:
    frame = pd.DataFrame(
        {
            "application_id": pd.Series([], dtype="str"),
            "row": np.array([], dtype=np.int64),
            "lei": pd.Series([], dtype="str"),
            "violation_score": np.array([], dtype=np.float64),
        }
    )
    assert report._strongest(frame).empty
