"""MaxWalkSAT (reasoner.local_search): reported costs are recomputed independently, it never
claims what it cannot know, and it is deterministic."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reasoner.local_search import clause_costs, local_search


@st.composite
def clause_sets(draw: st.DrawFn, max_vars: int = 7) -> tuple[int, list[list[int]], list[int]]:
    """Random weighted clauses (weight 0 = hard) over variables 1..n."""
    num_vars = draw(st.integers(1, max_vars))
    literal = st.integers(1, num_vars).flatmap(lambda v: st.sampled_from([v, -v]))
    clauses = draw(st.lists(st.lists(literal, min_size=1, max_size=4), min_size=1, max_size=14))
    weights = draw(st.lists(st.sampled_from([0, 1, 2, 3, 5, 8, 13, 100]), min_size=len(clauses), max_size=len(clauses)))
    return num_vars, clauses, weights


def as_arrays(clauses: list[list[int]], weights: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    offsets = np.concatenate([[0], np.cumsum([len(clause) for clause in clauses])]).astype(np.int64)
    literals = np.array([lit for clause in clauses for lit in clause], dtype=np.int64)
    return offsets, literals, np.array(weights, dtype=np.int64)


def plain_cost(clauses: list[list[int]], weights: list[int], world: list[bool]) -> tuple[int, int]:
    """The oracle: (soft cost, hard clauses broken), clause by clause in plain Python."""
    cost = broken = 0
    for clause, weight in zip(clauses, weights, strict=True):
        if not any(world[abs(lit)] == (lit > 0) for lit in clause):
            if weight == 0:
                broken += 1
            cost += weight
    return cost, broken


def optimum(num_vars: int, clauses: list[list[int]], weights: list[int]) -> int | None:
    best = None
    for bits in itertools.product([False, True], repeat=num_vars):
        cost, broken = plain_cost(clauses, weights, [False, *bits])
        if not broken and (best is None or cost < best):
            best = cost
    return best


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(problem=clause_sets(), seed=st.integers(0, 3), flips=st.integers(0, 300))
def test_reported_cost_is_the_cost_of_the_world(
    problem: tuple[int, list[list[int]], list[int]], seed: int, flips: int
) -> None:
    num_vars, clauses, weights = problem
    offsets, literals, weight_array = as_arrays(clauses, weights)
    result = local_search(offsets, literals, weight_array, num_vars, seed=seed, flips=flips)
    world = result.model.tolist()
    assert (result.cost, result.hard_broken) == plain_cost(clauses, weights, world)
    assert clause_costs(offsets, literals, weight_array, result.model) == (result.cost, result.hard_broken)
    assert result.flips <= flips
    best = optimum(num_vars, clauses, weights)
    if best is not None and not result.hard_broken:
        assert result.cost >= best  # a local search world is never better than the optimum
    # never worse than where it started (every variable false)
    start_cost, start_broken = plain_cost(clauses, weights, [False] * (num_vars + 1))
    assert (result.hard_broken, result.cost) <= (start_broken, start_cost)


@settings(max_examples=100, deadline=None)
@given(problem=clause_sets())
def test_finds_the_optimum_of_small_problems(problem: tuple[int, list[list[int]], list[int]]) -> None:
    """With enough flips on a few variables the walk meets an optimal world."""
    num_vars, clauses, weights = problem
    best = optimum(num_vars, clauses, weights)
    offsets, literals, weight_array = as_arrays(clauses, weights)
    result = local_search(offsets, literals, weight_array, num_vars, seed=1, flips=3_000, noise=0.5)
    if best is None:
        assert result.hard_broken > 0
    else:
        assert result.hard_broken == 0 and result.cost == best


def test_same_seed_same_world_other_seed_may_differ() -> None:
    generator = np.random.default_rng(7)
    num_vars, count = 60, 400
    variables = generator.integers(1, num_vars + 1, (count, 3))
    signs = np.where(generator.random((count, 3)) < 0.5, 1, -1)
    clauses = (variables * signs).tolist()
    weights = [int(w) for w in generator.integers(1, 20, count)]
    offsets, literals, weight_array = as_arrays(clauses, weights)
    first = local_search(offsets, literals, weight_array, num_vars, seed=3, flips=2_000)
    again = local_search(offsets, literals, weight_array, num_vars, seed=3, flips=2_000)
    assert np.array_equal(first.model, again.model) and first.cost == again.cost
    start = np.zeros(num_vars + 1, dtype=bool)
    start[1::2] = True
    from_start = local_search(offsets, literals, weight_array, num_vars, start=start, seed=3, flips=0)
    assert np.array_equal(from_start.model, start)  # no flips: the start itself


def test_a_passed_deadline_stops_at_once() -> None:
    offsets, literals, weights = as_arrays([[1, 2], [-1], [-2]], [5, 3, 3])
    result = local_search(offsets, literals, weights, 2, flips=10_000, deadline=0.0)
    assert result.flips == 0
