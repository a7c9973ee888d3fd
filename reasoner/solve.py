"""Stage 6: ``Encoding`` → ``Solution``: exact MAP per component, margins, cores.

Each connected component is an independent weighted partial MaxSAT problem.
Components are solved in order, or by worker processes in batches; the result
does not depend on how they are spread. The backend is chosen per component
(``backend="auto"``), by size, which is deterministic: up to ``RC2_MAX_CLAUSES``
clauses python-sat's RC2 (Glucose 3), which is fastest on small components;
larger ones a MaxWalkSAT incumbent (``reasoner.local_search``) handed to HiGHS
as a 0-1 program (``reasoner.backends``), whose LP bound closes large
components that RC2 does not. Among equally good worlds the world is the one
the backend returns for the component's canonical clause order (atoms numbered
in sorted order), so the same input always gives the same world; an atom in no
formula is false.

With a time limit, RC2 gets half of the time that is left; a component it has
not closed then goes the HiGHS way with the rest (local search first, so there
is a good world however soon the time runs out). An unfinished component keeps
its best world and the best proven lower bound: the status is then
``feasible``, not ``optimal``.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from pysat.examples.musx import MUSX
from pysat.examples.rc2 import RC2
from pysat.formula import WCNF
from pysat.solvers import Solver

from reasoner.backends import normalise, solve_highs
from reasoner.batches import in_batches
from reasoner.encode import Component, Components, Encoding, local_clauses
from reasoner.intern import unique_sorted
from reasoner.local_search import clause_costs, local_search

__all__ = ["BACKENDS", "Solution", "Status", "solve"]

Status = Literal["optimal", "feasible", "unsatisfiable"]  # feasible: a time limit stopped the solver

SOLVER = "g3"
BATCH_CLAUSES = 20_000
BACKENDS = ("auto", "rc2", "highs")
RC2_MAX_CLAUSES = 50_000  # auto: larger components go to HiGHS (measured: README, MAP inference)
LOCAL_SEARCH_FLIPS = 4  # per variable, before HiGHS starts (measured: README, MAP inference)
LOCAL_SEARCH_MAX_FLIPS = 50_000
LOCAL_SEARCH_SHARE = 0.05  # of the time left, at most


@dataclass(frozen=True, slots=True)
class Solution:
    """The MAP world (``values[v]`` for variable ``v``; index 0 unused) and its cost.

    Costs are scaled integers (divide by ``scale``). ``margins`` maps an atom id
    to the scaled cost increase of the best world where it takes the other
    value, or ``None`` when no such world satisfies the hard formulas.
    ``core`` lists ground formula ids of a small unsatisfiable core; ``core_evidence``
    the hard (block, row) groundings that evidence alone violates.
    """

    status: Status
    values: np.ndarray
    cost: int
    lower_bound: int
    scale: int
    margins: dict[int, int | None] = field(default_factory=dict)
    core: tuple[int, ...] = ()
    core_evidence: tuple[tuple[int, int], ...] = ()
    stats: dict[str, object] = field(default_factory=dict)  # components, largest_component, seconds, backends...


@dataclass(frozen=True, slots=True)
class _Problem:
    """One component with local variables 1..n (``variables[i-1]`` is the global id)."""

    index: int
    variables: np.ndarray
    offsets: np.ndarray
    literals: np.ndarray
    weights: np.ndarray
    margin_variables: np.ndarray  # local ids
    first_auxiliary: int = 0  # local id of the first auxiliary (Plaisted–Greenbaum) variable, 0: none


@dataclass(frozen=True, slots=True)
class _Result:
    index: int
    status: Status
    model: np.ndarray  # bool per local variable (index 0 unused)
    cost: int
    lower_bound: int
    margins: tuple[tuple[int, int | None], ...]
    core: tuple[int, ...]  # local clause indices
    backend: str = "rc2"  # the backend whose world this is


def solve(
    encoding: Encoding,
    *,
    margin_atoms: Iterable[int] | np.ndarray = (),
    time_limit: float | None = None,
    workers: int = 1,
    split: bool = True,
    backend: str = "auto",
) -> Solution:
    """Solve every component; compute margins for ``margin_atoms``.

    ``split=False`` solves the whole network as one problem (for testing that
    splitting changes nothing). ``backend``: one of ``BACKENDS`` ("auto" chooses
    per component).
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend '{backend}' (one of {', '.join(BACKENDS)})")
    started = time.perf_counter()
    deadline = None if time_limit is None else time.monotonic() + time_limit
    values = np.zeros(encoding.num_vars + 1, dtype=bool)
    if encoding.violated_hard:
        return Solution(
            "unsatisfiable",
            values,
            encoding.fixed_cost,
            encoding.fixed_cost,
            encoding.scale,
            core_evidence=encoding.violated_hard[:10],
            stats={"components": len(encoding.components)},
        )
    if isinstance(margin_atoms, np.ndarray):
        wanted = unique_sorted(margin_atoms.astype(np.int64, copy=False))
    else:
        wanted = unique_sorted(np.fromiter(margin_atoms, dtype=np.int64))
    components = encoding.components
    if not split and len(components) > 1:
        clauses = np.sort(components.clauses)
        members = unique_sorted(components.variables)
        components = Components.of([Component(0, clauses, members)])
    single = np.flatnonzero(components.sizes() == 1)
    multi = [components[int(index)] for index in np.flatnonzero(components.sizes() != 1)]
    problems = [_problem(component, encoding, wanted) for component in multi]
    # RC2 allocates many small objects; keep the collector from rescanning the
    # long-lived ones (network, evidence) on every pass, and forked workers from
    # touching (copying) their pages. Collection never changes results.
    gc.freeze()
    try:
        results = _run(problems, deadline, workers, backend)
    finally:
        gc.unfreeze()

    cost = encoding.fixed_cost
    bound = encoding.fixed_cost
    margins: dict[int, int | None] = dict.fromkeys(wanted.tolist(), 0)
    statuses: set[Status] = set()
    if len(single):
        outcome = _solve_singletons(components, single, encoding, wanted, values, margins)
        if outcome is None:  # a variable whose hard clauses contradict: the generic path finds the core
            extra = [_problem(components[int(index)], encoding, wanted) for index in single]
            results = [_solve_problem(problem, deadline, backend) for problem in extra] + results
            problems = extra + problems
        else:
            cost += outcome
            bound += outcome
    for problem, result in zip(problems, results, strict=True):
        statuses.add(result.status)
        if result.status == "unsatisfiable":
            core = tuple(int(encoding.formula_of[components[problem.index].clauses[c]]) for c in result.core)
            return Solution(
                "unsatisfiable",
                values,
                cost,
                bound,
                encoding.scale,
                core=tuple(sorted(set(core))),
                stats={"components": len(problems), "seconds": time.perf_counter() - started},
            )
        values[problem.variables] = result.model[1:]
        cost += result.cost
        bound += result.lower_bound
        for local, margin in result.margins:
            margins[int(problem.variables[local - 1])] = margin
    status: Status = "feasible" if "feasible" in statuses else "optimal"
    sizes = [len(problem.variables) for problem in problems]
    stats = {
        "components": len(encoding.components),
        "largest_component": max(sizes, default=0),
        "seconds": time.perf_counter() - started,
        "unfinished_components": sum(1 for result in results if result.status == "feasible"),
        "backends": {name: sum(1 for result in results if result.backend == name) for name in ("rc2", "highs")},
    }
    return Solution(status, values, cost, bound if status == "feasible" else cost, encoding.scale, margins, stats=stats)


def _solve_singletons(
    components: Components,
    single: np.ndarray,
    encoding: Encoding,
    wanted: np.ndarray,
    values: np.ndarray,
    margins: dict[int, int | None],
) -> int | None:
    """Solve the one-variable components (indices ``single``) at once; their cost, or None if
    one has no model.

    A clause of a one-variable component is satisfied by true when it has a positive literal
    and by false when it has a negative one; ties go to false, as in ``_single_variable``.
    """
    first, last = components.clause_bounds[single], components.clause_bounds[single + 1]
    counts = last - first
    owner = np.repeat(np.arange(len(single), dtype=np.int64), counts)
    clauses = components.clauses[np.repeat(first - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())]
    variables = components.variables[components.variable_bounds[single]]
    starts, ends = encoding.offsets[clauses], encoding.offsets[clauses + 1]
    lengths = ends - starts
    positions = np.repeat(starts, lengths) + (
        np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    )
    literal_clause = np.repeat(np.arange(len(clauses)), lengths)
    positive = np.zeros(len(clauses), dtype=bool)
    negative = np.zeros(len(clauses), dtype=bool)
    np.logical_or.at(positive, literal_clause, encoding.literals[positions] > 0)
    np.logical_or.at(negative, literal_clause, encoding.literals[positions] < 0)
    weights = encoding.weights[clauses].astype(np.int64)
    hard = weights == 0
    count = len(single)
    true_forbidden = np.bincount(owner[hard & ~positive], minlength=count) > 0
    false_forbidden = np.bincount(owner[hard & ~negative], minlength=count) > 0
    if (true_forbidden & false_forbidden).any():
        return None
    soft = ~hard
    cost_true = np.bincount(owner[soft & ~positive], weights[soft & ~positive], count).astype(np.int64)
    cost_false = np.bincount(owner[soft & ~negative], weights[soft & ~negative], count).astype(np.int64)
    choose_true = false_forbidden | (~true_forbidden & (cost_true < cost_false))
    values[variables] = choose_true
    chosen = np.where(choose_true, cost_true, cost_false)
    other = np.where(choose_true, cost_false, cost_true)
    other_forbidden = np.where(choose_true, false_forbidden, true_forbidden)
    asked = np.isin(variables, wanted)
    listed = variables[asked].tolist()
    margins.update(zip(listed, (other - chosen)[asked].tolist(), strict=True))
    for position in np.flatnonzero(other_forbidden[asked]).tolist():  # no world with it reversed
        margins[listed[position]] = None
    return int(chosen.sum())


def _problem(component: Component, encoding: Encoding, wanted: np.ndarray) -> _Problem:
    clauses = component.clauses
    offsets, local_literals = local_clauses(encoding, component)
    # the component's variables (sorted) that are wanted (sorted), by binary search in ``wanted``:
    # ``np.isin(wanted, variables)`` per component cost time in every wanted atom, for every component
    if len(wanted):
        found = np.minimum(np.searchsorted(wanted, component.variables), len(wanted) - 1)
        margin_variables = np.flatnonzero(wanted[found] == component.variables) + 1
    else:
        margin_variables = np.empty(0, dtype=np.int64)
    auxiliary = np.flatnonzero(component.variables > encoding.num_atoms)
    first_auxiliary = int(auxiliary[0]) + 1 if len(auxiliary) else 0
    return _Problem(
        component.index,
        component.variables,
        offsets,
        local_literals,
        encoding.weights[clauses],
        margin_variables,
        first_auxiliary,
    )


def _run(problems: list[_Problem], deadline: float | None, workers: int, backend: str) -> list[_Result]:
    if workers <= 1 or len(problems) < 2:
        return [_solve_problem(problem, deadline, backend) for problem in problems]
    batches = in_batches(problems, lambda problem: len(problem.weights), BATCH_CLAUSES)
    if len(batches) == 1:
        return [_solve_problem(problem, deadline, backend) for problem in problems]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        chunks = pool.map(_solve_batch, batches, [deadline] * len(batches), [backend] * len(batches))
        return [result for chunk in chunks for result in chunk]


def _solve_batch(problems: list[_Problem], deadline: float | None, backend: str) -> list[_Result]:
    return [_solve_problem(problem, deadline, backend) for problem in problems]


def _clauses(problem: _Problem) -> tuple[list[list[int]], list[list[int]], list[int], list[int]]:
    hard: list[list[int]] = []
    soft: list[list[int]] = []
    weights: list[int] = []
    hard_index: list[int] = []
    literals = problem.literals.tolist()
    offsets = problem.offsets.tolist()
    for index, weight in enumerate(problem.weights.tolist()):
        clause = literals[offsets[index] : offsets[index + 1]]
        if weight == 0:
            hard.append(clause)
            hard_index.append(index)
        else:
            soft.append(clause)
            weights.append(weight)
    return hard, soft, weights, hard_index


def _wcnf(num_vars: int, hard: list[list[int]], soft: list[list[int]], weights: list[int]) -> WCNF:
    formula = WCNF()
    formula.nv = num_vars
    formula.hard = [list(clause) for clause in hard]
    formula.soft = [list(clause) for clause in soft]
    formula.wght = list(weights)
    formula.topw = sum(weights) + 1
    return formula


def _cost(model: np.ndarray, soft: list[list[int]], weights: list[int]) -> int:
    value = model.tolist()  # list indexing: ~5x faster than numpy scalars here
    total = 0
    for clause, weight in zip(soft, weights, strict=True):
        for lit in clause:
            if value[lit] if lit > 0 else not value[-lit]:
                break
        else:
            total += weight
    return total


def _to_model(num_vars: int, assignment: list[int] | None) -> np.ndarray:
    model = np.zeros(num_vars + 1, dtype=bool)
    if assignment:
        for lit in assignment:
            if 0 < abs(lit) <= num_vars:
                model[abs(lit)] = lit > 0
    return model


def _solve_problem(problem: _Problem, deadline: float | None, backend: str = "auto") -> _Result:
    num_vars = len(problem.variables)
    hard, soft, weights, hard_index = _clauses(problem)
    large = backend == "highs" or (backend == "auto" and len(problem.weights) > RC2_MAX_CLAUSES)

    def best(forced: list[int] | None) -> tuple[Status, np.ndarray, int, int, str]:
        extra = [] if forced is None else [forced]
        if num_vars > 1 and large:
            return (*_large(problem, num_vars, hard + extra, soft, weights, forced, deadline, 0), "highs")
        rc2_deadline = deadline
        if backend == "auto" and deadline is not None:  # RC2 first, for half the time left
            rc2_deadline = time.monotonic() + max(0.0, deadline - time.monotonic()) / 2
        status, model, cost, bound = _maxsat(num_vars, hard + extra, soft, weights, rc2_deadline)
        if status != "feasible" or backend == "rc2" or num_vars == 1:
            return status, model, cost, bound, "rc2"
        return (*_large(problem, num_vars, hard + extra, soft, weights, forced, deadline, bound), "highs")

    def settled(answer: tuple[Status, np.ndarray, int, int, str]) -> tuple[Status, np.ndarray, int, int, str]:
        status, model, cost, bound, used = answer
        if status != "feasible" or not problem.first_auxiliary:
            return answer
        model = _settle_auxiliary(problem, model)
        cost = clause_costs(problem.offsets, problem.literals, problem.weights, model)[0]
        return status, model, cost, min(bound, cost), used

    status, model, cost, bound, used = settled(best(None))
    if status == "unsatisfiable":
        return _Result(problem.index, status, model, 0, 0, (), _core(num_vars, hard, hard_index), used)
    margins: list[tuple[int, int | None]] = []
    for variable in problem.margin_variables.tolist():
        other_status, _other, other_cost, _bound, _used = settled(best([-variable] if model[variable] else [variable]))
        if other_status == "unsatisfiable":
            margins.append((variable, None))
        else:
            margins.append((variable, max(0, other_cost - cost)))
    return _Result(problem.index, status, model, cost, bound, tuple(margins), (), used)


def _settle_auxiliary(problem: _Problem, model: np.ndarray) -> np.ndarray:
    """The world with each auxiliary variable ``t`` true where its subformula holds.

    A world found before the optimum (a SAT call, local search, an unfinished HiGHS) may
    leave ``t`` false where ``F`` holds, and so count a formula the world satisfies. An
    auxiliary variable occurs negated only in its definitions ``-t v ...``, and its children
    are numbered before it: in increasing order, ``t`` becomes true when every definition
    holds without it. Only false becomes true, so no hard clause breaks and the cost can only
    fall; the atoms do not change.
    """
    model = model.copy()
    first = problem.first_auxiliary
    literals = problem.literals
    lengths = np.diff(problem.offsets)
    clause_of = np.repeat(np.arange(len(lengths)), lengths)
    negative = np.flatnonzero((literals < 0) & (-literals >= first))
    order = np.argsort(-literals[negative], kind="stable")
    definitions: dict[int, list[int]] = {}
    for position in negative[order].tolist():
        definitions.setdefault(int(-literals[position]), []).append(int(clause_of[position]))
    offsets = problem.offsets.tolist()
    values = model.tolist()
    every = literals.tolist()
    for auxiliary in sorted(definitions):
        if values[auxiliary]:
            continue
        if all(
            any(
                (values[lit] if lit > 0 else not values[-lit])
                for lit in every[offsets[clause] : offsets[clause + 1]]
                if lit != -auxiliary
            )
            for clause in definitions[auxiliary]
        ):
            values[auxiliary] = True
    return np.array(values, dtype=bool)


def _large(
    problem: _Problem,
    num_vars: int,
    hard: list[list[int]],
    soft: list[list[int]],
    weights: list[int],
    forced: list[int] | None,
    deadline: float | None,
    bound: int,
) -> tuple[Status, np.ndarray, int, int]:
    """A large component: a SAT world (phases from the soft units), improved by MaxWalkSAT,
    handed to HiGHS. With a deadline the best world met is kept; ``bound`` is a lower bound
    already proven (by RC2)."""
    status, model, cost, _bound = _fallback(num_vars, hard, soft, weights, 0)
    if status == "unsatisfiable":
        return status, model, 0, 0
    offsets, literals, clause_weights = problem.offsets, problem.literals, problem.weights
    if forced is not None:
        offsets = np.append(offsets, offsets[-1] + 1)
        literals = np.append(literals, forced)
        clause_weights = np.append(clause_weights, 0)
    flips = min(LOCAL_SEARCH_MAX_FLIPS, LOCAL_SEARCH_FLIPS * num_vars)
    search_deadline = None
    if deadline is not None:
        search_deadline = time.monotonic() + LOCAL_SEARCH_SHARE * max(0.0, deadline - time.monotonic())
    normal = normalise(offsets, literals, clause_weights)  # duplicates merged: the walk's lists are shorter
    normal_offsets, normal_literals = normal.csr()
    searched = local_search(
        normal_offsets, normal_literals, normal.weights, num_vars, start=model, flips=flips, deadline=search_deadline
    )
    # equal costs where the hard clauses hold: recomputed on the component's own clauses
    searched_cost, searched_broken = clause_costs(offsets, literals, clause_weights, searched.model)
    if not searched_broken and searched_cost < cost:
        model, cost = searched.model, searched_cost
    outcome = solve_highs(offsets, literals, clause_weights, num_vars, deadline=deadline, start=model)
    if outcome.status in ("optimal", "unsatisfiable"):
        return outcome.status, outcome.model, outcome.cost, outcome.lower_bound
    bound = max(bound, outcome.lower_bound)
    if outcome.status == "feasible" and outcome.cost <= cost:
        model, cost = outcome.model, outcome.cost
    return "feasible", model, cost, min(bound, cost)


def _maxsat(
    num_vars: int, hard: list[list[int]], soft: list[list[int]], weights: list[int], deadline: float | None
) -> tuple[Status, np.ndarray, int, int]:
    """(status, model, cost, lower bound) of one weighted partial MaxSAT problem."""
    if num_vars == 1:
        return _single_variable(hard, soft, weights)
    if deadline is not None and time.monotonic() >= deadline:
        return _fallback(num_vars, hard, soft, weights, 0)
    with RC2(_wcnf(num_vars, hard, soft, weights), solver=SOLVER) as rc2:
        timer = None
        if deadline is not None:
            timer = threading.Timer(max(0.0, deadline - time.monotonic()), rc2.interrupt)
            timer.start()
        try:
            assignment = rc2.compute(expect_interrupt=deadline is not None)
        finally:
            if timer is not None:
                timer.cancel()
        if assignment is None:
            if rc2.interrupted or (deadline is not None and time.monotonic() >= deadline):
                return _fallback(num_vars, hard, soft, weights, int(rc2.cost))
            return "unsatisfiable", np.zeros(num_vars + 1, dtype=bool), 0, 0
        model = _to_model(num_vars, assignment)
        cost = _cost(model, soft, weights)
        return "optimal", model, cost, cost


def _single_variable(
    hard: list[list[int]], soft: list[list[int]], weights: list[int]
) -> tuple[Status, np.ndarray, int, int]:
    allowed = {True, False}
    for clause in hard:
        literals = set(clause)  # a clause may repeat its literal: [1, 1]
        if literals == {1}:
            allowed.discard(False)
        elif literals == {-1}:
            allowed.discard(True)
        elif not literals:
            allowed.clear()
    if not allowed:
        return "unsatisfiable", np.zeros(2, dtype=bool), 0, 0
    costs = {}
    for value in allowed:
        model = np.array([False, value])
        costs[value] = _cost(model, soft, weights)
    best = min(sorted(allowed), key=lambda value: costs[value])  # ties: False
    return "optimal", np.array([False, best]), costs[best], costs[best]


def _fallback(
    num_vars: int, hard: list[list[int]], soft: list[list[int]], weights: list[int], bound: int
) -> tuple[Status, np.ndarray, int, int]:
    """A world satisfying the hard clauses (SAT, phases from the unit soft clauses), unoptimised."""
    with Solver(name=SOLVER, bootstrap_with=hard) as oracle:
        phases = [clause[0] for clause in soft if len(clause) == 1]
        if phases:
            oracle.set_phases(phases)
        if not oracle.solve():
            return "unsatisfiable", np.zeros(num_vars + 1, dtype=bool), 0, 0
        model = _to_model(num_vars, oracle.get_model())
    cost = _cost(model, soft, weights)
    return "feasible", model, cost, min(bound, cost)


def _core(num_vars: int, hard: list[list[int]], hard_index: list[int]) -> tuple[int, ...]:
    """Local indices of the hard clauses in a minimal unsatisfiable subset."""
    formula = WCNF()
    formula.nv = num_vars
    for clause in hard:
        formula.append(clause, weight=1)
    with MUSX(formula, verbosity=0) as mus:
        subset = mus.compute() or []
    return tuple(hard_index[index - 1] for index in subset)
