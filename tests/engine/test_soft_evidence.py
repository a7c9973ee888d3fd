"""Soft evidence (``0.8 Smokes(Anna)`` in a .db file) against the brute-force oracle.

Semantics: a probability ``p`` on an open-world atom adds the unit formula of weight
``log(p / (1 - p))`` (rounded to 4 decimals) on it; the oracle adds that weight to the
log-weight of every world where the atom holds.
"""

from __future__ import annotations

import math
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reasoner.check import QueryPattern
from reasoner.errors import EvidenceError, RuleError
from reasoner.evidence import soft_weight
from reasoner.explain import render_proof
from reasoner.pipeline import explain, run
from tests.engine.test_marginals import compare, run_program
from tests.engine.test_properties import COMMON, BruteForce, Program, atom_text, programs

PROBABILITIES = (0.05, 0.2, 0.5, 0.7, 0.9, 0.999)


def rounded(probability: float) -> float:
    return float(Decimal(repr(soft_weight(probability))).quantize(Decimal("0.0001")))


def with_soft(program: Program, data: st.DataObject) -> tuple[Program, list[str], np.ndarray]:
    """Soft evidence on some open atoms of the query predicates: the .db lines and the oracle's
    extra log-weight per world."""
    oracle = BruteForce(program)
    candidates = [key for key in oracle.open if program.predicates[key[0]].role == "query"]
    chosen = data.draw(st.lists(st.sampled_from(candidates), max_size=3, unique=True)) if candidates else []
    lines, extra = [], np.zeros(len(oracle.cost))
    for key in chosen:
        probability = data.draw(st.sampled_from(PROBABILITIES))
        negated = data.draw(st.booleans())
        lines.append(f"{probability} {'!' if negated else ''}{atom_text(key)}")
        truth = 1 - probability if negated else probability
        extra += rounded(truth) * oracle.bits[oracle.index[key]]
    return program, lines, extra


@settings(COMMON, max_examples=20)
@given(program=programs(), data=st.data())
def test_soft_evidence_marginals_match_brute_force(program: Program, data: st.DataObject, tmp_path: Path) -> None:
    program, lines, extra = with_soft(program, data)
    soft_db = tmp_path / "soft.db"
    soft_db.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = run_program(program, tmp_path, method="exact", extra_db=[soft_db])
    compare(program, result, 1e-9, extra)


@settings(COMMON, max_examples=20)
@given(program=programs(), data=st.data())
def test_soft_evidence_map_is_a_best_world_of_the_oracle(program: Program, data: st.DataObject, tmp_path: Path) -> None:
    program, lines, extra = with_soft(program, data)
    oracle = BruteForce(program)
    (tmp_path / "rules.mln").write_text(program.rules_text(), encoding="utf-8")
    (tmp_path / "evidence.db").write_text(program.db_text() + "\n".join(lines) + "\n", encoding="utf-8")
    queries = [QueryPattern(name) for name, p in program.predicates.items() if p.role == "query"]
    result = run([tmp_path / "rules.mln"], [tmp_path / "evidence.db"], queries=queries, margins=[])
    if not oracle.feasible.any():
        assert result.solution.status == "unsatisfiable"
        return
    log_weight = np.where(oracle.feasible, -oracle.cost / 100 + extra, -np.inf)
    world = np.zeros(len(oracle.cost), dtype=bool)
    index = 0
    for key, position in oracle.index.items():
        ids = [a for a in range(1, result.network.atoms.size + 1) if result.network.atom_text(a) == atom_text(key)]
        if ids and result.solution.values[ids[0]]:
            index |= 1 << position
    world[index] = True
    assert log_weight[index] >= log_weight.max() - 1e-9


def test_soft_evidence_adds_log_odds_to_a_lone_atom(tmp_path: Path) -> None:
    rules = tmp_path / "r.mln"
    rules.write_text("Smokes(person)\nCancer(person)\n1.5 Smokes(x) => Cancer(x)\n", encoding="utf-8")
    db = tmp_path / "e.db"
    db.write_text("0.8 Smokes(Anna)\n0.3 !Cancer(Bob)\n", encoding="utf-8")
    from reasoner.marginal import run_marginals

    result = run_marginals([rules], [db], queries=[QueryPattern("Smokes"), QueryPattern("Cancer")], method="exact")
    got = dict(zip((atom.text for atom in result.atoms), result.probabilities, strict=True))
    # Anna: weight w on Smokes(Anna), 1.5 on Smokes(Anna) => Cancer(Anna)
    w = rounded(0.8)
    z = sum(math.exp(w * s + 1.5 * (not s or c)) for s in (0, 1) for c in (0, 1))
    assert got["Smokes(Anna)"] == pytest.approx((math.exp(w) + math.exp(w + 1.5)) / z)
    # Bob: 0.3 on !Cancer(Bob) is 0.7 on Cancer(Bob)
    v = rounded(0.7)
    z = sum(math.exp(v * c + 1.5 * (not s or c)) for s in (0, 1) for c in (0, 1))
    assert got["Cancer(Bob)"] == pytest.approx(2 * math.exp(v + 1.5) / z)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("1.5 Smokes(Anna)", "e.db:1:1: error: a probability must be strictly between 0 and 1, got 1.5"),
        ("0 Smokes(Anna)", "strictly between 0 and 1, got 0"),
        ("0.5 Friends(Anna, Bob)", "e.db:1:1: error: soft evidence needs an open-world predicate: 'Friends' is closed"),
    ],
)
def test_bad_soft_evidence_is_positioned(tmp_path: Path, line: str, message: str) -> None:
    rules = tmp_path / "r.mln"
    rules.write_text("Friends(person, person)\nSmokes(person)\n1 Friends(x, y) => Smokes(x)\n", encoding="utf-8")
    db = tmp_path / "e.db"
    db.write_text(line + "\n", encoding="utf-8")
    with pytest.raises(RuleError) as error:
        run([rules], [db], queries=[QueryPattern("Smokes")])
    assert message in error.value.render().replace(str(tmp_path) + "/", "")


def test_soft_and_hard_evidence_on_one_atom_is_an_error(tmp_path: Path) -> None:
    rules = tmp_path / "r.mln"
    rules.write_text("Smokes(person)\n1 Smokes(x)\n", encoding="utf-8")
    db = tmp_path / "e.db"
    db.write_text("Smokes(Anna)\n0.4 Smokes(Anna)\n", encoding="utf-8")
    expected = r"Smokes\(Anna\) is given as evidence \(.*e.db:1\) and with a probability \(.*e.db:2\)"
    with pytest.raises(EvidenceError, match=expected):
        run([rules], [db], queries=[QueryPattern("Smokes")])


# -- soft evidence from a table: bind ... with probability COLUMN --------------------------------

BOUND_RULES = (
    "Smokes(person)\nCancer(person)\n"
    "bind Smokes(id) from survey where year = 2024 with probability p_smokes\n"
    "1.5 Smokes(x) => Cancer(x)\n"
)


def _survey(tmp_path: Path, probabilities: list[object]) -> Path:
    import pandas as pd

    table = tmp_path / "survey.parquet"
    names = ["Anna", "Bob", "Cleo", "Dan"][: len(probabilities)]
    years = [2024, 2024, 2023, 2024][: len(probabilities)]
    pd.DataFrame({"id": names, "year": years, "p_smokes": probabilities}).to_parquet(table)
    return table


def test_a_bound_probability_column_is_the_soft_evidence_of_a_db_file(tmp_path: Path) -> None:
    from reasoner.marginal import run_marginals

    queries = [QueryPattern("Smokes"), QueryPattern("Cancer")]
    rules = tmp_path / "bound.mln"
    rules.write_text(BOUND_RULES, encoding="utf-8")
    table = _survey(tmp_path, [0.8, 0.3, 0.9, None])  # Cleo: another year; Dan: no probability
    bound = run_marginals([rules], tables={"survey": table}, queries=queries, method="exact")
    plain = tmp_path / "plain.mln"
    plain.write_text("Smokes(person)\nCancer(person)\n1.5 Smokes(x) => Cancer(x)\n", encoding="utf-8")
    db = tmp_path / "e.db"
    db.write_text("0.8 Smokes(Anna)\n0.3 Smokes(Bob)\n", encoding="utf-8")
    written = run_marginals([plain], [db], queries=queries, method="exact")
    got = dict(zip((atom.text for atom in bound.atoms), bound.probabilities, strict=True))
    expected = dict(zip((atom.text for atom in written.atoms), written.probabilities, strict=True))
    assert got == expected and set(got) == {"Smokes(Anna)", "Smokes(Bob)", "Cancer(Anna)", "Cancer(Bob)"}
    result = run([rules], tables={"survey": table}, queries=queries, explain_atoms=["Smokes(Anna)"])
    assert result.evidence.skipped == {f"{rules}:3": 1}  # Dan: a row without a probability, counted
    assert f"[{table} row 1]" in render_proof(explain(result, "Smokes(Anna)"))


@pytest.mark.parametrize(
    ("probabilities", "message"),
    [
        ([0.8, 1.0], r"survey.parquet row 2: column 'p_smokes' .* is 1.0; a probability must be a number strictly"),
        ([0.0, 0.5], r"survey.parquet row 1: column 'p_smokes' .* is 0.0;"),
        (["high", "low"], r"survey.parquet row 1: column 'p_smokes' .* is 'high'; .* \(2 rows like this\)"),
    ],
)
def test_a_bad_bound_probability_names_its_row(tmp_path: Path, probabilities: list[object], message: str) -> None:
    rules = tmp_path / "bound.mln"
    rules.write_text(BOUND_RULES, encoding="utf-8")
    with pytest.raises(EvidenceError, match=message):
        run([rules], tables={"survey": _survey(tmp_path, probabilities)}, queries=[QueryPattern("Smokes")])


def test_a_bound_probability_on_a_closed_world_predicate_points_at_the_column(tmp_path: Path) -> None:
    rules = tmp_path / "bound.mln"
    rules.write_text(BOUND_RULES, encoding="utf-8")
    with pytest.raises(RuleError) as error:
        run([rules], tables={"survey": _survey(tmp_path, [0.8])}, queries=[QueryPattern("Cancer")])
    assert "bound.mln:3:64: error: soft evidence needs an open-world predicate: 'Smokes' is closed-world" in (
        error.value.render().replace(str(tmp_path) + "/", "")
    )


def test_a_misspelt_probability_clause_is_a_positioned_syntax_error(tmp_path: Path) -> None:
    rules = tmp_path / "bound.mln"
    rules.write_text("Smokes(person)\nbind Smokes(id) from survey with chance p\n", encoding="utf-8")
    with pytest.raises(RuleError) as error:
        run([rules], tables={"survey": _survey(tmp_path, [0.8])}, queries=[QueryPattern("Smokes")])
    assert "bound.mln:2:34: error: unexpected 'chance'; expected 'probability' or end of line" in (
        error.value.render().replace(str(tmp_path) + "/", "")
    )
