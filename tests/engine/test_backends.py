"""Exact backends (RC2, HiGHS), the anytime strategy and ``--hard-weight``, against the
brute-force oracle of tests/test_properties.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_local_search import as_arrays, clause_sets, optimum, plain_cost
from test_properties import (
    COMMON,
    WEIGHT_SCALE,
    BruteForce,
    Program,
    _not,
    check_against_oracle,
    describe,
    engine_world,
    oracle_cost,
    programs,
    run_program,
    scaled,
)

from reasoner.backends import normalise, solve_highs
from reasoner.check import QueryPattern
from reasoner.pipeline import run
from reasoner.solve import solve

REPOSITORY = Path(__file__).resolve().parents[2]


@settings(max_examples=150, deadline=None)
@given(problem=clause_sets())
def test_highs_finds_the_optimum(problem: tuple[int, list[list[int]], list[int]]) -> None:
    num_vars, clauses, weights = problem
    offsets, literals, weight_array = as_arrays(clauses, weights)
    outcome = solve_highs(offsets, literals, weight_array, num_vars)
    best = optimum(num_vars, clauses, weights)
    if best is None:
        assert outcome.status == "unsatisfiable"
        return
    assert outcome.status == "optimal"
    assert outcome.cost == outcome.lower_bound == best
    assert plain_cost(clauses, weights, outcome.model.tolist()) == (best, 0)


@settings(max_examples=100, deadline=None)
@given(problem=clause_sets())
def test_normalised_clauses_cost_the_same(problem: tuple[int, list[list[int]], list[int]]) -> None:
    """Sorting, merging duplicates and dropping tautologies keeps every world's cost."""
    num_vars, clauses, weights = problem
    offsets, literals, weight_array = as_arrays(clauses, weights)
    normal = normalise(offsets, literals, weight_array)
    merged = [[int(lit) for lit in row if lit] for row in normal.matrix]
    assert all(len(set(map(abs, clause))) == len(clause) for clause in merged)
    assert len({tuple(clause) for clause in merged}) == len(merged)
    generator = np.random.default_rng(num_vars)
    for _ in range(8):
        world = [False, *(generator.random(num_vars) < 0.5).tolist()]
        cost, broken = plain_cost(clauses, weights, world)
        normal_cost, normal_broken = plain_cost(merged, normal.weights.tolist(), world)
        assert (normal_broken > 0) == (broken > 0)
        if not broken:  # a hard clause absorbs an equal soft one: costs agree where hard ones hold
            assert normal_cost == cost


@pytest.mark.slow
@settings(COMMON, max_examples=60)
@given(program=programs())
def test_engine_with_highs_matches_brute_force(program: Program, tmp_path: Path) -> None:
    """Optimum, the world's cost and margins with HiGHS for every component."""
    oracle = BruteForce(program)
    result = run_program(program, tmp_path, solver="highs")
    try:
        check_against_oracle(program, result, oracle)
    except AssertionError as error:
        raise AssertionError(f"{error}\n{describe(program)}") from error


@pytest.mark.slow
@settings(COMMON, max_examples=60)
@given(program=programs(), solver=st.sampled_from(["auto", "rc2", "highs"]))
def test_a_time_limit_never_claims_more_than_it_knows(program: Program, solver: str, tmp_path: Path) -> None:
    """With a time limit too short to finish: ``optimal`` only at the optimum; otherwise the
    lower bound is at most the optimum and the cost is the returned world's."""
    oracle = BruteForce(program)
    program.margins = ()
    result = run_program(program, tmp_path, solver=solver, time_limit=1e-6)
    best = oracle.optimum()
    solution = result.solution
    if best is None:
        assert solution.status == "unsatisfiable"
        return
    assert solution.status in ("optimal", "feasible")
    world_cost, feasible = oracle.world_cost(engine_world(result, program, oracle))
    assert feasible
    assert scaled(result, solution.cost) == oracle_cost(world_cost)
    assert scaled(result, solution.lower_bound) <= oracle_cost(best) <= scaled(result, solution.cost)
    if solution.status == "optimal":
        assert scaled(result, solution.cost) == oracle_cost(best)


HARD_WEIGHT = Decimal("7.5")


@settings(COMMON, max_examples=50)
@given(program=programs())
def test_hard_weight_makes_hard_formulas_soft(program: Program, tmp_path: Path) -> None:
    """Each broken hard ground formula costs W; the count reported is the world's."""
    oracle = BruteForce(program)
    penalty = np.zeros(len(oracle.cost), dtype=np.int64)
    for formula in program.formulas:
        if formula.weight is None:
            for value in oracle.groundings(formula, oracle.vector_value):
                penalty += np.asarray(_not(value), dtype=np.int64)
    total = oracle.cost + penalty * int(HARD_WEIGHT * WEIGHT_SCALE)
    program.margins = ()
    result = run_program(program, tmp_path, hard_weight=HARD_WEIGHT)
    solution = result.solution
    try:
        assert solution.status == "optimal"
        assert scaled(result, solution.cost) == oracle_cost(int(total.min()))
        world = engine_world(result, program, oracle)
        index = sum(1 << oracle.index[key] for key, value in world.items() if value)
        assert solution.stats["hard_broken"] == int(penalty[index])
    except AssertionError as error:
        raise AssertionError(f"{error}\n{describe(program)}") from error


def _chain_program(folder: Path, groups: int, size: int) -> tuple[list[Path], list[Path], list[QueryPattern]]:
    """``groups`` independent chains of ``size`` people with mutual friendships (one
    component each) and a hard rule."""
    rules = folder / "chain.mln"
    rules.write_text(
        "Friends(person, person)\nSmokes(person)\nCancer(person)\n"
        "1.5 Smokes(x) => Cancer(x)\n1.1 Friends(x, y) ^ Smokes(x) => Smokes(y)\n"
        "-0.4 Smokes(x)\nCancer(x) => Smokes(x).\n",
        encoding="utf-8",
    )
    lines = []
    for group in range(groups):
        for person in range(size - 1):
            lines.append(f"Friends(P{group}x{person}, P{group}x{person + 1})")
            lines.append(f"Friends(P{group}x{person + 1}, P{group}x{person})")
        lines.append(f"Cancer(P{group}x0)")
    db = folder / "chain.db"
    db.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [rules], [db], [QueryPattern("Smokes"), QueryPattern("Cancer")]


def test_highs_worlds_do_not_depend_on_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from reasoner import solve as solve_module

    monkeypatch.setattr(solve_module, "BATCH_CLAUSES", 10)  # several batches: the process pool runs
    rules, dbs, queries = _chain_program(tmp_path, 6, 12)
    result = run(rules, dbs, queries=queries, margins=[])
    answers = []
    for backend in ("highs", "auto"):
        for workers in (1, 2):
            solution = solve(result.encoding, margin_atoms=[1, 5], workers=workers, backend=backend)
            answers.append((solution.status, solution.cost, solution.values.tobytes(), solution.margins))
    assert all(answer[:2] == answers[0][:2] for answer in answers)  # the same optimum whatever the backend
    assert answers[0] == answers[1] and answers[2] == answers[3]  # the same world whatever the workers


@pytest.mark.slow
def test_cli_solver_and_hard_weight(reason: Callable[..., Any], tmp_path: Path) -> None:
    smoke = REPOSITORY / "examples" / "tuffy-smoke"
    args = [smoke / "prog.mln", smoke / "evidence.db", "--query-file", smoke / "query.db", "--json", "--no-timings"]
    done = reason([*args, "--solver", "highs"])
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    queries = [QueryPattern("Smokes"), QueryPattern("Cancer")]
    default = run([smoke / "prog.mln"], [smoke / "evidence.db"], queries=queries, margins=[])
    assert answer["status"] == default.solution.status == "optimal"
    assert Decimal(str(answer["cost"])) == default.cost(default.solution.cost)
    rules = tmp_path / "clash.mln"
    rules.write_text("P(thing)\nQ(thing)\nP(x).\n!P(x) v Q(x).\n!Q(x).\n2 Q(x)\n", encoding="utf-8")
    db = tmp_path / "things.db"
    db.write_text("P(A)\nQ(B)\n", encoding="utf-8")
    clash = [rules, db, "--query", "P,Q", "--no-timings"]
    assert reason(clash).returncode == 3
    done = reason([*clash, "--hard-weight", "10", "--json"])
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    # A: P(A) true by evidence; Q(A) true breaks '!Q(x).' (10), false would break '!P(x) v Q(x).'
    # and the soft formula (12). B: Q(B) true by evidence breaks '!Q(x).' (10); P(B) true costs nothing
    assert answer["status"] == "optimal" and answer["hard_broken"] == 2 and answer["cost"] == 20
    assert answer["query_atoms"] == {"P(A)": True, "P(B)": True, "Q(A)": True, "Q(B)": True}
    bad = reason([*clash, "--hard-weight", "heavy"])
    assert bad.returncode == 2 and "--hard-weight must be a positive number, got 'heavy'" in bad.stderr
    assert "Traceback" not in bad.stderr
