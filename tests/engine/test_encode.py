"""Encoding at the level of its arrays: the clauses, weights and components of small networks.

A clause-shaped ground formula is one clause carrying its whole weight; any other soft formula
gets an auxiliary variable ``t`` (hard clauses ``t → F``, soft unit ``t``); hard ones are asserted.
Weights are scaled once by a power of ten; a weight of 0 in ``weights`` marks a hard clause.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reasoner import Run, run
from reasoner.encode import Encoding

DECLARATIONS = """\
person = {A, B}
Smokes(person)
Cancer(person)
Q(person)
"""


def _run(tmp_path: Path, formulas: str, evidence: str = "") -> Run:
    db = tmp_path / "evidence.db"
    db.write_text(evidence, encoding="utf-8")
    return run(DECLARATIONS + formulas, db, queries=["Cancer", "Q"])


def _clauses(encoding: Encoding) -> list[tuple[list[int], int]]:
    return [(encoding.clause(index).tolist(), int(encoding.weights[index])) for index in range(encoding.num_clauses)]


def _components(encoding: Encoding) -> list[tuple[list[int], list[int]]]:
    return [(component.clauses.tolist(), component.variables.tolist()) for component in encoding.components]


def test_clauses_carry_their_scaled_weight_and_evidence_literals_are_left_out(tmp_path: Path) -> None:
    # atoms: Cancer(A)=1, Cancer(B)=2; Smokes(A) is true evidence, Smokes(B) false (closed world)
    encoding = _run(tmp_path, "1.25 Smokes(x) => Cancer(x)\n-0.5 Cancer(x)\n", "Smokes(A)\n").encoding
    assert encoding.scale == 100
    assert _clauses(encoding) == [([1], 125), ([-1], 50), ([-2], 50)]
    assert encoding.formula_of.tolist() == [0, 1, 2]
    assert encoding.formula_block.tolist() == [0, 1, 1] and encoding.formula_row.tolist() == [0, 0, 1]
    assert encoding.formula_weight.tolist() == [125, 50, 50]
    assert encoding.num_atoms == 2 and encoding.num_vars == 2 and encoding.fixed_cost == 0
    assert _components(encoding) == [([0, 1], [1]), ([2], [2])]


def test_a_soft_conjunction_gets_one_auxiliary_variable_and_its_whole_weight(tmp_path: Path) -> None:
    # atoms: Cancer(A)=1, Cancer(B)=2, Q(A)=3, Q(B)=4; auxiliaries 5 and 6
    encoding = _run(tmp_path, "2 Cancer(x) ^ Q(x)\n").encoding
    assert encoding.num_atoms == 4 and encoding.num_vars == 6 and encoding.scale == 1
    clauses = _clauses(encoding)
    soft = [clause for clause in clauses if clause[1]]
    hard = sorted(clause[0] for clause in clauses if not clause[1])
    assert sorted(soft) == [([5], 2), ([6], 2)]
    assert hard == sorted([[-5, 1], [-5, 3], [-6, 2], [-6, 4]])
    for clauses_of, variables in _components(encoding):  # a person's atoms and auxiliary, with its 3 clauses
        assert variables in ([1, 3, 5], [2, 4, 6])
        assert sorted(abs(literal) for index in clauses_of for literal in clauses[index][0]) == sorted(
            [variables[2], variables[2], variables[2], variables[0], variables[1]]
        )
    assert encoding.formula_weight.tolist() == [2, 2]  # one ground formula per person, the weight once


def test_hard_formulas_are_hard_clauses_and_violations_by_evidence_are_listed(tmp_path: Path) -> None:
    result = _run(tmp_path, "Smokes(x) => Cancer(x).\nSmokes(x) => Q(x).\n!Smokes(A).\n", "Smokes(A)\n")
    encoding = result.encoding
    assert _clauses(encoding) == [([1], 0), ([2], 0)]  # Cancer(A)=1, Q(A)=2, both asserted
    assert encoding.violated_hard == ((2, 0),)  # block 2, row 0: '!Smokes(A).' against the evidence
    assert result.solution.status == "unsatisfiable"


def test_formulas_the_evidence_decides_cost_a_fixed_amount_and_add_no_clause(tmp_path: Path) -> None:
    encoding = _run(tmp_path, "0.75 Smokes(x)\n", "Smokes(A)\n").encoding  # Smokes(B) false: violated
    assert encoding.num_clauses == 0 and encoding.num_vars == 0
    assert encoding.fixed_cost == 75 and encoding.scale == 100
    assert len(encoding.components) == 0 and encoding.offsets.tolist() == [0]
    assert encoding.literals.dtype == np.int64
