"""Exact backend for large components: weighted partial MaxSAT as a 0-1 integer program (HiGHS).

A component's clauses are first put in a canonical form (``normalise``): literals sorted and
deduplicated, tautologies dropped, identical clauses merged (weights added; hard wins). The
integer program (``solve_highs``) has one binary column per variable, a soft unit clause
becomes an objective term of that column, and any other clause ``l1 v ... v lk`` a row
``sum(l) >= 1`` (a negative literal ``-x`` counts ``1 - x``) with, if soft, a continuous
relaxation column ``r`` in [0, 1] costing the clause's weight. Weights enter divided by their
greatest common divisor, so every world's objective is an integer and a gap below one unit
proves optimality. The status is ``optimal`` only when HiGHS proves it (to its floating-point
tolerances) and the world's exact cost is at most the proven bound; otherwise ``feasible``
with its best world and its dual bound, or ``unknown`` when it found no world in time. Costs
are always recomputed exactly, in integers, from the original clauses.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Literal

import highspy
import numpy as np

from reasoner.local_search import clause_costs

__all__ = ["HighsOutcome", "NormalClauses", "normalise", "solve_highs"]

HighsStatus = Literal["optimal", "feasible", "unsatisfiable", "unknown"]


@dataclass(frozen=True, slots=True)
class NormalClauses:
    """Distinct clauses as rows of ``matrix`` (literals sorted by variable, 0-padded at the
    right) with merged ``weights`` (0 = hard)."""

    matrix: np.ndarray
    weights: np.ndarray

    def csr(self) -> tuple[np.ndarray, np.ndarray]:
        """(offsets, literals) of the clauses."""
        present = self.matrix != 0
        offsets = np.zeros(len(self.matrix) + 1, dtype=np.int64)
        np.cumsum(present.sum(axis=1), out=offsets[1:])
        return offsets, self.matrix[present]


@dataclass(frozen=True, slots=True)
class HighsOutcome:
    status: HighsStatus
    model: np.ndarray  # bool per variable, index 0 unused
    cost: int  # exact, recomputed
    lower_bound: int


def normalise(offsets: np.ndarray, literals: np.ndarray, weights: np.ndarray) -> NormalClauses:
    """Canonical clauses: sorted, duplicate literals and tautologies removed, equal clauses merged."""
    count = len(weights)
    lengths = np.diff(offsets)
    width = int(lengths.max(initial=1))
    matrix = np.zeros((count, width), dtype=np.int64)
    rows = np.repeat(np.arange(count), lengths)
    matrix[rows, np.arange(len(literals)) - np.repeat(offsets[:-1], lengths)] = literals
    matrix = _sorted_rows(matrix)
    repeated = np.zeros(matrix.shape, dtype=bool)
    repeated[:, 1:] = (matrix[:, 1:] == matrix[:, :-1]) & (matrix[:, 1:] != 0)
    matrix[repeated] = 0
    matrix = _sorted_rows(matrix)
    tautology = ((np.abs(matrix[:, 1:]) == np.abs(matrix[:, :-1])) & (matrix[:, 1:] != 0)).any(axis=1)
    matrix, weights = matrix[~tautology], weights[~tautology]
    unique, inverse = np.unique(matrix, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    hard = np.zeros(len(unique), dtype=bool)
    np.logical_or.at(hard, inverse, weights == 0)
    merged = np.zeros(len(unique), dtype=np.int64)
    np.add.at(merged, inverse, weights)
    merged[hard] = 0
    return NormalClauses(unique, merged)


def _sorted_rows(matrix: np.ndarray) -> np.ndarray:
    """Each row's literals by variable (negative first), zeros last."""
    key = np.where(matrix == 0, np.iinfo(np.int64).max, np.abs(matrix) * 2 + (matrix > 0))
    return np.take_along_axis(matrix, np.argsort(key, axis=1, kind="stable"), axis=1)


def solve_highs(
    offsets: np.ndarray,
    literals: np.ndarray,
    weights: np.ndarray,
    num_vars: int,
    *,
    deadline: float | None = None,
    start: np.ndarray | None = None,
    seed: int = 0,
) -> HighsOutcome:
    """Solve one component's clauses (CSR, variables ``1..num_vars``, weight 0 = hard) with HiGHS.

    ``start``: a world satisfying the hard clauses, handed to HiGHS as its first incumbent.
    ``deadline``: a ``time.monotonic()`` instant.
    """
    empty = np.zeros(num_vars + 1, dtype=bool)
    clauses = normalise(offsets, literals, weights)
    matrix, merged = clauses.matrix, clauses.weights
    soft = merged[merged > 0]
    unit_of = 1 if not len(soft) else int(np.gcd.reduce(soft))
    # HiGHS sees weights of order one (its tolerances and heuristics are tuned for that)
    divisor = float(soft.max() // unit_of) if len(soft) else 1.0
    lengths = (matrix != 0).sum(axis=1)
    unit = (lengths == 1) & (merged > 0)
    objective = np.zeros(num_vars + 1, dtype=np.int64)
    unit_literals, unit_weights = matrix[unit, 0], merged[unit] // unit_of
    # a positive unit costs w(1 - x), a negative one w x
    np.add.at(objective, np.abs(unit_literals), np.where(unit_literals > 0, -unit_weights, unit_weights))
    constant = int(unit_weights[unit_literals > 0].sum())
    rows, row_weights = matrix[~unit], merged[~unit] // unit_of
    relaxed = row_weights > 0
    num_relaxed = int(relaxed.sum())
    num_columns = num_vars + num_relaxed
    columns = np.where(rows != 0, np.abs(rows) - 1, -1)
    values = np.where(rows > 0, 1.0, -1.0)
    relaxation = np.full(len(rows), -1, dtype=np.int64)
    relaxation[relaxed] = num_vars + np.arange(num_relaxed)
    columns = np.column_stack([columns, relaxation])
    values = np.column_stack([values, np.ones(len(rows))])
    present = columns >= 0
    problem = highspy.HighsLp()
    problem.num_col_ = num_columns
    problem.num_row_ = len(rows)
    problem.col_cost_ = np.concatenate([objective[1:], row_weights[relaxed]]).astype(np.float64) / divisor
    problem.col_lower_ = np.zeros(num_columns)
    problem.col_upper_ = np.ones(num_columns)
    problem.row_lower_ = (1 - (rows < 0).sum(axis=1)).astype(np.float64)
    problem.row_upper_ = np.full(len(rows), highspy.kHighsInf)
    problem.offset_ = constant / divisor
    problem.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    problem.a_matrix_.start_ = np.concatenate([[0], np.cumsum(present.sum(axis=1))]).astype(np.int32)
    problem.a_matrix_.index_ = columns[present].astype(np.int32)
    problem.a_matrix_.value_ = values[present]
    problem.integrality_ = [highspy.HighsVarType.kInteger] * num_vars + [highspy.HighsVarType.kContinuous] * num_relaxed
    # highspy.Highs prints a banner on stdout when it is created; its core class does not
    solver = highspy._Highs()  # type: ignore[attr-defined]
    for option, value in (
        ("output_flag", False), ("threads", 1), ("random_seed", seed),
        ("mip_rel_gap", 0.0), ("mip_abs_gap", 0.5 / divisor),  # below one weight unit: proven optimal
    ):
        solver.setOptionValue(option, value)
    if deadline is not None:
        solver.setOptionValue("time_limit", max(0.001, deadline - time.monotonic()))
    solver.passModel(problem)
    if start is not None:
        incumbent = highspy.HighsSolution()
        start_values = np.asarray(start[1 : num_vars + 1], dtype=np.float64)
        satisfied = _row_satisfied(rows, start)
        incumbent.col_value = np.concatenate([start_values, (~satisfied[relaxed]).astype(np.float64)]).tolist()
        solver.setSolution(incumbent)
    solver.run()
    status = solver.getModelStatus()
    if status == highspy.HighsModelStatus.kInfeasible:
        return HighsOutcome("unsatisfiable", empty, 0, 0)
    info = solver.getInfo()
    if info.primal_solution_status != highspy.kSolutionStatusFeasible:
        return HighsOutcome("unknown", empty, 0, _bound(info.mip_dual_bound * divisor, unit_of))
    model = np.zeros(num_vars + 1, dtype=bool)
    model[1:] = np.asarray(solver.getSolution().col_value[:num_vars]) > 0.5
    cost, broken = clause_costs(offsets, literals, weights, model)
    if broken:  # rounding broke a hard clause: no world from HiGHS
        return HighsOutcome("unknown", empty, 0, _bound(info.mip_dual_bound * divisor, unit_of))
    bound = _bound(info.mip_dual_bound * divisor, unit_of)
    if status == highspy.HighsModelStatus.kOptimal and cost <= bound:  # the world's exact cost meets the proof
        return HighsOutcome("optimal", model, cost, cost)
    if status == highspy.HighsModelStatus.kOptimal and start is not None:
        # measured: when presolve solves the whole program, HiGHS hands back the start as its
        # solution (objective and bound 0, the start's cost higher): solve again without it
        return solve_highs(offsets, literals, weights, num_vars, deadline=deadline, seed=seed)
    return HighsOutcome("feasible", model, cost, min(cost, bound))


def _row_satisfied(rows: np.ndarray, model: np.ndarray) -> np.ndarray:
    true = np.where(rows > 0, model[np.abs(rows)], ~model[np.abs(rows)]) & (rows != 0)
    return np.asarray(true.any(axis=1))


def _bound(dual_bound: float, unit_of: int) -> int:
    """A proven lower bound in scaled integers: the dual bound, less its tolerance, rounded up
    to a whole number of weight units (every world's cost is one)."""
    if not math.isfinite(dual_bound) or dual_bound <= 0:
        return 0
    return max(0, math.ceil(dual_bound - 1e-6 - 1e-9 * abs(dual_bound))) * unit_of
