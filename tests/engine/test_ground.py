"""Grounding at the level of its arrays: small programs whose blocks are worked out by hand.

Constants are numbered in sorted order (A=0, B=1, C=2); unknown atoms 1..n by predicate name,
then by key. Leaf states: 0 false, 1 true, 2 unknown (``reasoner.ground``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from reasoner import LimitError, Limits, Run, run
from reasoner.ground import FALSE, TRUE, UNKNOWN, GroundStats
from reasoner.normalize import Lit, leaves

DECLARATIONS = """\
person = {A, B, C}
Smokes(person)
Friends(person, person)
Cancer(person)
Q(person)
"""


def _run(tmp_path: Path, formulas: str, evidence: str, queries: str = "Cancer,Q") -> Run:
    db = tmp_path / "evidence.db"
    db.write_text(evidence, encoding="utf-8")
    return run(DECLARATIONS + formulas, db, queries=queries.split(","))


def _rows(array: np.ndarray) -> list[list[int]]:
    return [[int(value) for value in row] for row in array]


def test_evidence_satisfied_groundings_are_dropped_and_the_rest_keep_their_leaves(tmp_path: Path) -> None:
    result = _run(tmp_path, "1.5 Smokes(x) => Cancer(x)\n", "Smokes(A)\n")
    (block,) = result.network.blocks
    # Smokes is closed-world: B and C do not smoke, so their groundings are true and dropped.
    assert [(leaf.positive, leaf.predicate) for leaf in leaves(block.tree) if isinstance(leaf, Lit)] == [
        (False, "Smokes"),
        (True, "Cancer"),
    ]
    assert _rows(block.substitutions) == [[0]]  # x = A
    assert [state.tolist() for state in block.leaf_states] == [[FALSE], [UNKNOWN]]  # !Smokes(A) false, Cancer(A) open
    assert [atoms.tolist() for atoms in block.leaf_atoms] == [[0], [1]]  # Cancer(A) is atom 1
    assert [rows.tolist() for rows in block.leaf_evidence] == [[0], [-1]]  # Smokes(A): evidence row 0
    assert block.root_state.tolist() == [UNKNOWN]
    assert block.total_groundings == 3 and block.weight == 1.5 and not block.negated
    network = result.network
    assert network.atoms.size == 1 and network.atoms.ids("Cancer", np.array([0, 1, 2])).tolist() == [1, 0, 0]
    assert network.atom_text(1) == "Cancer(A)"


def test_negative_weights_negate_the_tree_and_keep_the_magnitude(tmp_path: Path) -> None:
    result = _run(tmp_path, "-2 Cancer(x)\n", "")
    (block,) = result.network.blocks
    assert block.negated and block.weight == 2
    assert [(leaf.positive, leaf.predicate) for leaf in leaves(block.tree) if isinstance(leaf, Lit)] == [
        (False, "Cancer")
    ]
    assert _rows(block.substitutions) == [[0], [1], [2]]
    assert block.leaf_atoms[0].tolist() == [1, 2, 3]
    assert block.root_state.tolist() == [UNKNOWN] * 3


def test_a_grounding_the_evidence_violates_is_kept_with_a_false_root(tmp_path: Path) -> None:
    rules = "0.5 Friends(x, y) ^ Smokes(x) => Smokes(y) ^ Q(y)\n"
    result = _run(tmp_path, rules, "Smokes(A)\nFriends(A, B)\n")
    (block,) = result.network.blocks
    assert _rows(block.substitutions) == [[0, 1]]  # only (A, B): every other has a false friendship
    # !Friends(A,B) false, !Smokes(A) false, Smokes(B) false (closed world), Q(B) open: the conjunction is false
    assert [state.tolist() for state in block.leaf_states] == [[FALSE], [FALSE], [FALSE], [UNKNOWN]]
    assert block.root_state.tolist() == [FALSE]
    assert block.total_groundings == 9
    stats = result.network.stats
    assert stats == GroundStats(
        zero_weight_formulas=0,
        candidate_groundings=stats.candidate_groundings,
        ground_formulas=0,
        violated_by_evidence=1,
        total_groundings=9,
        unknown_atoms=1,  # Q(B): in a grounding, if a decided one
        grounding_seconds=stats.grounding_seconds,
    )
    assert result.encoding.fixed_cost == 5 and result.encoding.scale == 10  # 0.5, scaled


def test_comparison_leaves_have_no_atom_and_filter_groundings(tmp_path: Path) -> None:
    result = _run(tmp_path, "1 Friends(x, y) ^ x != y => Q(y)\n", "Friends(A, A)\nFriends(A, C)\n")
    (block,) = result.network.blocks
    assert _rows(block.substitutions) == [[0, 2]]  # (A, A) is decided by the comparison
    comparison = [index for index, leaf in enumerate(leaves(block.tree)) if not isinstance(leaf, Lit)]
    assert comparison and all(block.leaf_atoms[index].tolist() == [0] for index in comparison)
    assert all(block.leaf_evidence[index].tolist() == [-1] for index in comparison)
    assert [state.tolist() for state in block.leaf_states if state[0] == TRUE] == []


def test_zero_weights_and_hard_formulas_are_counted_apart(tmp_path: Path) -> None:
    result = _run(tmp_path, "0 Cancer(x)\nQ(C).\n", "")
    (block,) = result.network.blocks
    assert block.hard and block.weight is None
    assert _rows(block.substitutions) == [[]]  # no variable: one grounding
    assert result.network.stats.zero_weight_formulas == 1
    assert result.network.atoms.size == 1 and result.network.atom_text(1) == "Q(C)"


def test_the_grounding_limit_is_an_argument_scaled_beyond_two_variables(tmp_path: Path) -> None:
    db = tmp_path / "evidence.db"
    db.write_text("", encoding="utf-8")
    two = DECLARATIONS + "1 Friends(x, y) => Friends(y, x)\n"
    three = DECLARATIONS + "1 Friends(x, y) ^ Friends(y, z) => Friends(x, z)\n"
    assert run(two, db, queries=["Friends"], limits=Limits(max_groundings=9)).network.stats.ground_formulas == 9
    with pytest.raises(LimitError, match=r"formula has more than 8 groundings .*\(limit 8\)"):
        run(two, db, queries=["Friends"], limits=Limits(max_groundings=8))
    # 3 variables: the limit is max_groundings * 2 / 3
    with pytest.raises(LimitError, match=r"formula has more than 26 groundings .*\(limit 26\)"):
        run(three, db, queries=["Friends"], limits=Limits(max_groundings=39))
    assert run(three, db, queries=["Friends"], limits=Limits(max_groundings=41)).network.stats.ground_formulas == 27
