"""A matched denial needs an approved comparator who was no better qualified (comparative file review)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from support import REPOSITORY

from reasoner.errors import RuleError, UsageError
from reasoner.lending import clean_hmda, synthesize
from reasoner.lending.config import load_config
from reasoner.lending.evidence.tables import audit_tables

pytestmark = pytest.mark.slow  # end-to-end audits: outside the inner loop, pytest -m "not slow"

RULES = REPOSITORY / "rules"


@pytest.fixture(scope="module")
def tables():  # type: ignore[no-untyped-def]
    raw, _ = synthesize(6000, 6, seed=8, simple=True)
    frame = clean_hmda(raw, "synth").frame
    config = load_config(RULES / "audit.toml")
    return frame, config, audit_tables(frame, config.with_levels(frame))


def test_no_stronger_means_no_better_income_dti_or_cltv(tables) -> None:  # type: ignore[no-untyped-def]
    frame, _, result = tables
    pairs = result.pairs
    indexed = frame.set_index(frame["application_id"].astype(str))
    a, b = indexed.loc[pairs["a"].astype(str)], indexed.loc[pairs["b"].astype(str)]
    weaker = (
        (a["income"].to_numpy() <= b["income"].to_numpy() * 1.05)
        & (a["dti"].to_numpy() >= b["dti"].to_numpy() - 2)
        & (a["cltv"].to_numpy() >= b["cltv"].to_numpy() - 2)
    )
    assert pairs["no_stronger"].tolist() == weaker.astype(int).tolist()
    assert 0 < pairs["no_stronger"].mean() < 1  # similar neighbours are often stronger


def test_a_wider_tolerance_admits_more_comparators(tables) -> None:  # type: ignore[no-untyped-def]
    frame, config, result = tables
    wide = dataclasses.replace(config, comparator_tolerance=(("cltv", 50.0), ("dti", 50.0), ("income", 5.0)))
    widened = audit_tables(frame, wide.with_levels(frame)).pairs
    assert widened["no_stronger"].sum() > result.pairs["no_stronger"].sum()
    assert np.all(widened["no_stronger"].to_numpy() >= result.pairs["no_stronger"].to_numpy())


def test_a_bad_tolerance_points_at_its_line(tmp_path: Path) -> None:
    text = (
        (RULES / "audit.toml")
        .read_text()
        .replace("comparator_tolerance = { income = 0.05,", "comparator_tolerance = { incom = 0.05,")
    )
    (tmp_path / "audit.toml").write_text(text)
    with pytest.raises(RuleError) as caught:
        load_config(tmp_path / "audit.toml")
    diagnostic = caught.value.diagnostics[0]
    assert diagnostic.message == "unknown key 'incom' in comparator_tolerance"
    assert diagnostic.notes == ("did you mean 'income'?",)
    assert "comparator_tolerance = { incom" in diagnostic.span.line_text and diagnostic.span.column > 1


def test_given_pairs_are_looked_up_once_and_an_unknown_id_is_named(tables) -> None:  # type: ignore[no-untyped-def]
    """Given pairs (a pair table instead of the search): the pair tests read the rows found once for
    the pair columns, with the tables of the search; an id not in the register is a usage error."""
    frame, config, result = tables
    given = result.pairs[["comparison", "a", "b", "distance", "rank", "lei"]]
    again = audit_tables(frame, config.with_levels(frame), given)
    for name in ("matched_pairs", "outliers"):
        assert getattr(again, name).equals(getattr(result, name))
    stray = given.copy()
    stray.loc[stray.index[-1], "b"] = "nope"
    with pytest.raises(UsageError, match="application id 'nope' is not in the frame"):
        audit_tables(frame, config.with_levels(frame), stray)


def test_searched_pairs_are_the_given_pairs_table_in_the_documented_order(tables) -> None:  # type: ignore[no-untyped-def]
    """The searched pair table (built from the rows the search found) is the table the given-pairs
    path builds by looking the ids up, column for column and dtype for dtype, ordered by comparison
    (audit.toml order), lender, compared applicant (text) and rank."""
    frame, config, result = tables
    pairs = result.pairs
    assert list(pairs.columns) == ["comparison", "a", "b", "distance", "rank", "lei", "spread_gap", "no_stronger"]
    given = pairs[["comparison", "a", "b", "distance", "rank", "lei"]]
    again = audit_tables(frame, config.with_levels(frame), given)
    pd.testing.assert_frame_equal(again.pairs, pairs, check_exact=True)
    dtypes = ["str", "str", "str", "float64", "int64", "str", "float64", "int64"]
    assert [str(dtype) for dtype in pairs.dtypes] == dtypes
    order = {comparison.name: index for index, comparison in enumerate(config.comparisons)}
    keys = pd.DataFrame(
        {"comparison": pairs["comparison"].map(order), "lei": pairs["lei"], "b": pairs["b"], "rank": pairs["rank"]}
    )
    assert keys.sort_values(["comparison", "lei", "b", "rank"], kind="stable").index.tolist() == list(range(len(pairs)))
    assert set(pairs["comparison"]) == set(order) and len(pairs) > 1000
    rows = frame.set_index(frame["application_id"].astype(str))
    spread = rows["rate_spread"].where(rows["action_taken"] == 1)
    gap = spread.loc[pairs["b"]].to_numpy() - spread.loc[pairs["a"]].to_numpy()
    np.testing.assert_array_equal(pairs["spread_gap"].to_numpy(), gap)
