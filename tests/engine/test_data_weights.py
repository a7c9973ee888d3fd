"""Formulas whose weight comes from the data (``w: F``, RockIt's weights from evidence).

The oracle is the same program written out by hand: one ordinary formula per distinct
value of ``w``, with that value as its weight and as the constant in place of ``w``.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reasoner.check import QueryPattern
from reasoner.errors import EvidenceError, RuleError
from reasoner.ground import data_weight
from reasoner.pipeline import Run, run

DECLARATIONS = """Strength(lender, amount)
Flagged(lender)
Reviewed(lender)
"""
TAIL = """{link} Flagged(l) => Reviewed(l)
{prior} Reviewed(l)
"""


def _run(directory: Path, rules: str, rows: list[tuple[str, Decimal]]) -> Run:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "p.mln").write_text(rules)
    table = directory / "s.csv"
    table.write_text("lei,llr\n" + "".join(f"{lei},{value}\n" for lei, value in rows))
    queries = (QueryPattern("Flagged"), QueryPattern("Reviewed"))
    return run([directory / "p.mln"], tables={"s": table}, queries=queries, margins=["Flagged", "Reviewed"])


def _summary(result: Run) -> tuple[Decimal, dict[str, Decimal | None]]:
    cost = result.cost(result.solution.cost)
    return cost, {atom.text: result.margin(atom) for atom in result.atoms}


values = st.decimals(min_value=-3, max_value=3, places=2, allow_nan=False, allow_infinity=False)


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(st.tuples(st.sampled_from("ABCD"), values), min_size=1, max_size=6, unique_by=lambda r: r),
    link=values.filter(lambda v: v != 0),
    prior=values.filter(lambda v: v != 0),
)
def test_data_weights_equal_one_formula_per_value(
    rows: list[tuple[str, Decimal]], link: Decimal, prior: Decimal, tmp_path: Path
) -> None:
    tail = TAIL.format(link=link, prior=prior)
    binding = "bind Strength(lei, llr) from s\n"
    weighted = _run(tmp_path / "weighted", DECLARATIONS + binding + "w: Strength(l, w) => Flagged(l)\n" + tail, rows)
    expanded_formulas = "".join(
        f"{value} Strength(l, {value}) => Flagged(l)\n" for value in sorted({value for _, value in rows}) if value != 0
    )
    expanded = _run(tmp_path / "expanded", DECLARATIONS + binding + expanded_formulas + tail, rows)
    assert _summary(weighted) == _summary(expanded)


def test_each_grounding_is_weighed_and_explained_with_its_own_weight(tmp_path: Path) -> None:
    rules = DECLARATIONS + "bind Strength(lei, llr) from s\nw: Strength(l, w) => Flagged(l)\n-1 Flagged(l)\n"
    result = _run(tmp_path, rules, [("A", Decimal("2.5")), ("B", Decimal("0.4")), ("C", Decimal("-0.7"))])
    world = {atom.text: atom.value for atom in result.atoms}
    assert world["Flagged(A)"] and not world["Flagged(B)"] and not world["Flagged(C)"]
    margins = {atom.text: result.margin(atom) for atom in result.atoms}
    assert margins["Flagged(A)"] == Decimal("1.5")
    assert margins["Flagged(B)"] == Decimal("0.6")
    assert margins["Flagged(C)"] == Decimal("1.7")  # its -0.7 counts against flagging it


def test_weight_variable_must_be_free_in_the_formula(tmp_path: Path) -> None:
    with pytest.raises(RuleError, match="weight variable 'v' does not appear free"):
        _run(tmp_path, DECLARATIONS + "v: Flagged(l) => Reviewed(l)\n", [("A", Decimal(1))])


def test_a_weight_that_is_not_a_number_names_the_formula(tmp_path: Path) -> None:
    rules = (
        "Label(lender, word)\nFlagged(lender)\nReviewed(lender)\nbind Label(lei, llr) from s\n"
        "w: Label(l, w) => Flagged(l)\n"
    )
    directory = tmp_path
    (directory / "p.mln").write_text(rules)
    (directory / "s.csv").write_text("lei,llr\nA,high\n")
    with pytest.raises(
        EvidenceError, match=r"p.mln:5:1: the weight variable 'w' is bound to high, which is not a number"
    ):
        run([directory / "p.mln"], tables={"s": directory / "s.csv"}, queries=(QueryPattern("Flagged"),))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0.123456, Decimal("0.1235")),
        (2, Decimal("2.0000")),
        (-1.00005, Decimal("-1.0000")),
        (float("nan"), None),
        ("x", None),
        (True, None),
        (1e30, None),
        (-1e15, None),
    ],
)
def test_data_weight_rounds_to_four_places(value: object, expected: Decimal | None) -> None:
    assert data_weight(value) == expected


def test_positive_data_weights_ground_no_negated_formula(tmp_path: Path) -> None:
    rows = [(f"L{index}", Decimal(index % 7 + 1) / 4) for index in range(60)]
    rules = DECLARATIONS + "bind Strength(lei, llr) from s\nw: Strength(l, w) => Flagged(l)\n"
    result = _run(tmp_path, rules, rows)
    # one grounding per row that the evidence leaves open (60), not lenders x weights
    assert result.network.stats.ground_formulas == 60
    assert result.network.stats.total_groundings == 60 * 7
