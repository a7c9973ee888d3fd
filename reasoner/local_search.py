"""MaxWalkSAT: a seeded local search for a good world of one component (an anytime incumbent).

The search (Kautz, Selman and Jiang's MaxWalkSAT, as in Alchemy and Tuffy) starts from a
given world, repeatedly picks a violated clause (uniformly, from a seeded generator) and
flips one of its variables: with probability ``noise`` a random one, otherwise the one whose
flip lowers the cost most. Hard clauses weigh more than all soft clauses together, so a
world breaking no hard clause always beats one that breaks some. It proves nothing: it only
returns the best world it met, which the exact backends may start from or keep when time
runs out.

The same clauses, start, seed and number of flips give the same world; a deadline stops it
early (and then the world depends on the machine's speed, as any time limit does).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

import numpy as np

__all__ = ["LocalSearchResult", "clause_costs", "local_search"]

DEFAULT_NOISE = 0.2
CHECK_EVERY = 1024  # flips between looks at the clock


@dataclass(frozen=True, slots=True)
class LocalSearchResult:
    """The best world met (``model[v]``, index 0 unused), its soft cost and broken hard clauses."""

    model: np.ndarray
    cost: int
    hard_broken: int
    flips: int


def clause_costs(offsets: np.ndarray, literals: np.ndarray, weights: np.ndarray, model: np.ndarray) -> tuple[int, int]:
    """(soft cost, hard clauses broken) of ``model`` for clauses in CSR form (weight 0 = hard).

    Written independently of the search (vectorised), so a reported cost can be rechecked.
    """
    if len(weights) == 0:
        return 0, 0
    value = np.where(literals > 0, model[np.abs(literals)], ~model[np.abs(literals)])
    satisfied = np.logical_or.reduceat(value, offsets[:-1]) if len(value) else np.zeros(len(weights), dtype=bool)
    satisfied &= np.diff(offsets) > 0  # reduceat gives an empty clause its next clause's value
    broken = ~satisfied
    return int(weights[broken].sum()), int((broken & (weights == 0)).sum())


def local_search(
    offsets: np.ndarray,
    literals: np.ndarray,
    weights: np.ndarray,
    num_vars: int,
    *,
    start: np.ndarray | None = None,
    seed: int = 0,
    flips: int = 100_000,
    noise: float = DEFAULT_NOISE,
    deadline: float | None = None,
) -> LocalSearchResult:
    """MaxWalkSAT from ``start`` (default: every variable false) for at most ``flips`` flips.

    Clauses are in CSR form over variables ``1..num_vars`` (weights: scaled integers, 0 =
    hard). ``deadline`` is a ``time.monotonic()`` instant.
    """
    model = np.zeros(num_vars + 1, dtype=bool) if start is None else np.array(start, dtype=bool)
    soft_total = int(weights.sum())
    hard_weight = soft_total + 1
    weight = np.where(weights == 0, hard_weight, weights).tolist()
    clause_literals = [literals[offsets[i] : offsets[i + 1]].tolist() for i in range(len(weights))]
    positive: list[list[int]] = [[] for _ in range(num_vars + 1)]
    negative: list[list[int]] = [[] for _ in range(num_vars + 1)]
    for index, clause in enumerate(clause_literals):
        for literal in set(clause):
            (positive[literal] if literal > 0 else negative[-literal]).append(index)
    value = model.tolist()
    true_count = [
        sum(1 for literal in set(clause) if (value[literal] if literal > 0 else not value[-literal]))
        for clause in clause_literals
    ]
    unsatisfied: list[int] = []
    where = [-1] * len(clause_literals)
    cost = 0
    for index, count in enumerate(true_count):
        if count == 0:
            where[index] = len(unsatisfied)
            unsatisfied.append(index)
            cost += weight[index]
    best_cost = cost
    since_best: list[int] = []  # flips made since the best world: undone at the end (no copies)
    generator = random.Random(seed)
    done = 0
    while done < flips and unsatisfied:
        if deadline is not None and done % CHECK_EVERY == 0 and time.monotonic() >= deadline:
            break
        clause = clause_literals[unsatisfied[generator.randrange(len(unsatisfied))]]
        if generator.random() < noise:
            variable = abs(clause[generator.randrange(len(clause))])
        else:
            variable = 0
            best_delta = 0
            for literal in clause:
                candidate = abs(literal)
                if value[candidate]:
                    breaking, making = positive[candidate], negative[candidate]
                else:
                    breaking, making = negative[candidate], positive[candidate]
                delta = 0
                for index in breaking:
                    if true_count[index] == 1:
                        delta += weight[index]
                for index in making:
                    if true_count[index] == 0:
                        delta -= weight[index]
                if variable == 0 or delta < best_delta:
                    variable, best_delta = candidate, delta
        # flip
        if value[variable]:
            losing, gaining = positive[variable], negative[variable]
        else:
            losing, gaining = negative[variable], positive[variable]
        value[variable] = not value[variable]
        for index in losing:
            true_count[index] -= 1
            if true_count[index] == 0:
                where[index] = len(unsatisfied)
                unsatisfied.append(index)
                cost += weight[index]
        for index in gaining:
            true_count[index] += 1
            if true_count[index] == 1:
                position = where[index]
                last = unsatisfied.pop()
                if last != index:
                    unsatisfied[position] = last
                    where[last] = position
                where[index] = -1
                cost -= weight[index]
        done += 1
        since_best.append(variable)
        if cost < best_cost:
            best_cost = cost
            since_best.clear()
    for variable in since_best:
        value[variable] = not value[variable]
    result = np.array(value, dtype=bool)
    soft, hard = clause_costs(offsets, literals, weights, result)
    return LocalSearchResult(result, soft, hard, done)
