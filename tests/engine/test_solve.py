"""Solving at the level of its arrays: hand-built encodings and the worlds, costs, margins and
cores that come back (``values[v]`` for variable ``v``; costs in scaled integers)."""

from __future__ import annotations

import numpy as np
import pytest

from reasoner.encode import Component, Components, Encoding
from reasoner.solve import solve


def _encoding(clauses: list[tuple[list[int], int]], num_atoms: int, components: list[list[int]]) -> Encoding:
    """An encoding of ``clauses`` (literals, weight; 0 is hard), one ground formula each, with
    ``components`` given as lists of clause indices."""
    lengths = [len(literals) for literals, _weight in clauses]
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    literals = np.array([literal for literals, _weight in clauses for literal in literals], dtype=np.int64)
    weights = np.array([weight for _literals, weight in clauses], dtype=np.int64)
    parts = []
    for index, members in enumerate(components):
        variables = sorted({abs(literal) for clause in members for literal in clauses[clause][0]})
        parts.append(Component(index, np.array(members, dtype=np.int64), np.array(variables, dtype=np.int64)))
    count = len(clauses)
    return Encoding(
        num_atoms=num_atoms,
        num_vars=num_atoms,
        offsets=offsets,
        literals=literals,
        weights=weights,
        formula_of=np.arange(count, dtype=np.int64),
        formula_block=np.zeros(count, dtype=np.int32),
        formula_row=np.arange(count, dtype=np.int64),
        formula_weight=weights.copy(),
        scale=1,
        fixed_cost=7,
        violated_hard=(),
        components=Components.of(parts),
    )


def test_the_cheapest_world_its_cost_and_the_margins_of_each_atom() -> None:
    # x1 v x2 (hard); !x1 weight 3, !x2 weight 2: the best world makes x2 alone true (cost 2).
    encoding = _encoding([([1, 2], 0), ([-1], 3), ([-2], 2)], 2, [[0, 1, 2]])
    solution = solve(encoding, margin_atoms=[1, 2])
    assert solution.status == "optimal"
    assert solution.values.tolist() == [False, False, True]
    assert solution.cost == solution.lower_bound == 2 + 7  # with the encoding's fixed cost
    # x1 true (and x2 false): cost 3, one more; x2 false forces x1 true: cost 3, one more
    assert solution.margins == {1: 1, 2: 1}
    assert solution.stats["components"] == 1 and solution.stats["largest_component"] == 2


def test_components_are_solved_apart_and_an_atom_alone_by_its_own_rule() -> None:
    # component 0: x1 (weight 4) against !x1 (weight 1); component 1: x2 v x3 (weight 5), !x3 (weight 1)
    clauses = [([1], 4), ([-1], 1), ([2, 3], 5), ([-3], 1)]
    encoding = _encoding(clauses, 3, [[0, 1], [2, 3]])
    split = solve(encoding, margin_atoms=[1, 2, 3])
    whole = solve(encoding, margin_atoms=[1, 2, 3], split=False)
    assert split.values.tolist() == whole.values.tolist() == [False, True, True, False]
    assert split.cost == whole.cost == 1 + 0 + 7
    assert split.margins == whole.margins == {1: 3, 2: 1, 3: 1}  # x2 false: x3 true instead, cost 1


def test_a_hard_contradiction_is_unsatisfiable_with_its_core() -> None:
    # x1 and !x1 both hard, x2 free: the core is the two hard formulas, never the soft one
    encoding = _encoding([([1], 0), ([-1, 2], 0), ([-2], 0), ([2], 1)], 2, [[0, 1, 2, 3]])
    solution = solve(encoding)
    assert solution.status == "unsatisfiable"
    assert solution.core == (0, 1, 2)


@pytest.mark.parametrize("workers", [1, 2])
def test_the_world_does_not_depend_on_the_workers(workers: int) -> None:
    clauses = [([index, index + 1], 2) for index in range(1, 40, 2)] + [([-index], 1) for index in range(1, 41)]
    groups = [[pair, 20 + 2 * pair, 21 + 2 * pair] for pair in range(20)]
    encoding = _encoding(clauses, 40, groups)
    solution = solve(encoding, workers=workers)
    assert solution.cost == 20 + 7  # one atom of each pair true
    assert sum(solution.values) == 20
    assert all(solution.values[index] != solution.values[index + 1] for index in range(1, 40, 2))
    assert solution.values.tolist() == solve(encoding, workers=1).values.tolist()
