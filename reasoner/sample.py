"""Worlds of one component, weighed: exact enumeration and MC-SAT with SampleSAT.

A component of the ``Encoding`` is a CNF over atoms and the auxiliary variables of
the Plaisted–Greenbaum encoding (``t → F``). For MAP that is enough; for
probabilities an auxiliary variable must be a function of the atoms, or worlds would
be counted once per free auxiliary value. So each auxiliary variable is *completed*:
``t ↔ ∧_j D_j`` where ``D_j`` are its defining clauses without ``¬t`` (an ``and``
node has one two-literal clause per child, an ``or`` node one clause). Then the
satisfying assignments of the completed CNF are in one-to-one correspondence with
the worlds of the atoms that satisfy the hard formulas, and a soft clause is true
exactly when its ground formula is: ``P(world) ∝ exp(Σ w_c · [clause c holds])``.

``exact`` enumerates the ``2^n`` worlds of a component's ``n`` atoms (``n ≤
EXACT_LIMIT``), auxiliary values computed from them in order (an auxiliary variable
is numbered after those it is defined by). ``mcsat`` is MC-SAT (Poon & Domingos
2006): each step keeps every satisfied soft clause of weight ``w > 0`` (every false
one of ``w < 0``, which must then stay false) with probability ``1 − e^{−|w|}`` and
moves to a world that satisfies the kept clauses and the hard ones. The move is
SampleSAT (Wei, Erenrich & Selman 2004) over the atoms (auxiliary variables follow):

- from the current world (a solution of the kept clauses): twice as many moves as the
  component has atoms, each a WalkSAT move when some constraint is broken (with
  probability ``walk_probability``) or a lazy simulated-annealing flip of a random atom
  at temperature 0.5, then WalkSAT until every constraint holds (the world is kept if it
  does not). Annealing moves that break a clause and WalkSAT's repair let the chain cross
  between solutions that single flips within the solutions cannot join (two atoms that a
  heavy formula wants different).
- on a component with hard clauses, of at most ``RESTART_LIMIT`` atoms, with probability
  ``RESTART_PROBABILITY``: from a random world, WalkSAT moves to a solution, then
  WalkSAT and simulated annealing moves (temperature 0.5) mixed. Hard formulas can
  split the worlds into regions that single flips never cross; a random start reaches
  all of them, at the price of SampleSAT's small bias towards solutions near random
  worlds (marginals drawn towards 0.5 by about 0.01–0.02 in the tests).

After each step, ``2 × atoms`` lazy Metropolis flips on the weighed distribution itself (a
random atom flipped, kept with probability ``min(1, e^Δ)``, never breaking a hard clause).
They leave the distribution invariant and join what an MC-SAT step alone almost never does:
two likely worlds one flip apart, each satisfying formulas the other does not that together
outweigh the difference (five of weight 2.99 on each side: a step crosses only when it drops
all five, ``e^{−14.95}``; both chains stayed in the less likely world, agreeing, so no
diagnostic flagged it).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np

from reasoner.encode import Component, Encoding, local_clauses

__all__ = [
    "EXACT_LIMIT",
    "ChainSummary",
    "ComponentModel",
    "ExactTable",
    "component_model",
    "exact",
    "mcsat",
]

EXACT_LIMIT = 20  # atoms of a component that exact enumeration accepts (2^20 worlds)
RESTART_PROBABILITY = 0.1  # a SampleSAT call starts from a random world (else from the current one) ...
RESTART_LIMIT = 2_000  # ... in components of at most this many atoms
_CHUNK = 1 << 15  # worlds evaluated at once


@dataclass(frozen=True, slots=True)
class ComponentModel:
    """One component with local variables ``1..num_vars`` (``variables[i - 1]`` is the global
    id): atoms first (``1..num_atoms``), then auxiliary variables in increasing order.

    ``soft``: local clause indices of the soft clauses, with their real weight and ground
    formula; ``hard``: the hard clauses; ``definitions[k]``: the clauses that define auxiliary
    variable ``num_atoms + 1 + k`` (each holds its negation).
    """

    index: int
    variables: np.ndarray
    num_atoms: int
    offsets: np.ndarray
    literals: np.ndarray
    soft: np.ndarray
    soft_weight: np.ndarray
    soft_formula: np.ndarray
    hard: np.ndarray
    definitions: tuple[np.ndarray, ...]

    @property
    def num_vars(self) -> int:
        return len(self.variables)

    def clause(self, index: int) -> np.ndarray:
        return self.literals[self.offsets[index] : self.offsets[index + 1]]


def component_model(encoding: Encoding, component: Component) -> ComponentModel:
    """The component's clauses with local variables, split into soft, hard and definitions."""
    clauses = component.clauses
    offsets, local_literals = local_clauses(encoding, component)
    weights = encoding.weights[clauses]
    soft = np.flatnonzero(weights != 0)
    num_atoms = int(np.searchsorted(component.variables, encoding.num_atoms, side="right"))
    owner = np.repeat(np.arange(len(clauses)), np.diff(offsets))
    negative_aux = (local_literals < 0) & (-local_literals > num_atoms)
    defined = -local_literals[negative_aux]
    defining = owner[negative_aux]
    order = np.argsort(defined, kind="stable")
    defined, defining = defined[order], defining[order]
    definitions = tuple(
        defining[np.searchsorted(defined, aux) : np.searchsorted(defined, aux, side="right")]
        for aux in range(num_atoms + 1, len(component.variables) + 1)
    )
    if any(weights[d].any() or len(d) == 0 for d in definitions):
        raise ValueError(f"component {component.index}: an auxiliary variable is not defined by hard clauses")
    return ComponentModel(
        index=component.index,
        variables=component.variables,
        num_atoms=num_atoms,
        offsets=offsets,
        literals=local_literals,
        soft=soft,
        soft_weight=weights[soft].astype(np.float64) / encoding.scale,
        soft_formula=encoding.formula_of[clauses[soft]],
        hard=np.flatnonzero(weights == 0),
        definitions=definitions,
    )


# -- exact ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExactTable:
    """Every world of a component's atoms that satisfies its hard clauses: the world's atom
    values (``worlds × num_atoms``) and which soft clauses it satisfies (``worlds × soft``)."""

    atoms: np.ndarray
    satisfied: np.ndarray

    def log_weights(self, weights: np.ndarray) -> np.ndarray:
        return np.asarray(self.satisfied @ weights)

    def probabilities(self, weights: np.ndarray) -> np.ndarray:
        """P(world) for each world of the table under soft-clause weights ``weights``."""
        log_weight = self.log_weights(weights)
        log_weight -= log_weight.max()
        weight = np.exp(log_weight)
        return np.asarray(weight / weight.sum())

    def log_partition(self, weights: np.ndarray) -> float:
        log_weight = self.log_weights(weights)
        top = float(log_weight.max())
        return top + math.log(float(np.exp(log_weight - top).sum()))


def _evaluate(model: ComponentModel, atoms: np.ndarray) -> np.ndarray:
    """Every variable's value (``worlds × num_vars``) from the atoms' values, auxiliary
    variables by their completed definitions."""
    worlds = atoms.shape[0]
    values = np.zeros((worlds, model.num_vars), dtype=bool)
    values[:, : model.num_atoms] = atoms
    for position, clauses in enumerate(model.definitions):
        aux = model.num_atoms + 1 + position
        value = np.ones(worlds, dtype=bool)
        for clause in clauses:
            literals = [int(lit) for lit in model.clause(int(clause)) if lit != -aux]
            if any(abs(lit) >= aux for lit in literals):
                raise ValueError(f"auxiliary variable {aux} is defined by a later variable")
            value &= _clause_values(values, np.asarray(literals, dtype=np.int64))
        values[:, aux - 1] = value
    return values


def _clause_values(values: np.ndarray, literals: np.ndarray) -> np.ndarray:
    return np.asarray((values[:, np.abs(literals) - 1] == (literals > 0)).any(axis=1))


def _satisfied(model: ComponentModel, values: np.ndarray, clauses: np.ndarray) -> np.ndarray:
    """``worlds × len(clauses)``: whether each world satisfies each clause."""
    out = np.zeros((values.shape[0], len(clauses)), dtype=bool)
    for position, clause in enumerate(clauses.tolist()):
        out[:, position] = _clause_values(values, model.clause(clause))
    return out


def exact(model: ComponentModel) -> ExactTable | None:
    """The table of every feasible world (``None`` when no world satisfies the hard clauses)."""
    if model.num_atoms > EXACT_LIMIT:
        raise ValueError(
            f"component {model.index} has {model.num_atoms} atoms; exact enumeration takes at most {EXACT_LIMIT}"
        )
    total = 1 << model.num_atoms
    shifts = np.arange(model.num_atoms, dtype=np.int64)
    atoms_parts, satisfied_parts = [], []
    for start in range(0, total, _CHUNK):
        index = np.arange(start, min(total, start + _CHUNK), dtype=np.int64)
        atoms = ((index[:, None] >> shifts) & 1).astype(bool)
        values = _evaluate(model, atoms)
        feasible = _satisfied(model, values, model.hard).all(axis=1)
        atoms_parts.append(atoms[feasible])
        satisfied_parts.append(_satisfied(model, values[feasible], model.soft))
    atoms = np.concatenate(atoms_parts)
    if not len(atoms):
        return None
    return ExactTable(atoms, np.concatenate(satisfied_parts).astype(np.float64))


def world_values(model: ComponentModel, atoms: np.ndarray) -> np.ndarray:
    """Soft clauses satisfied (as 0/1) by one world of the atoms."""
    values = _evaluate(model, atoms[None, :])
    return np.asarray(_satisfied(model, values, model.soft)[0], dtype=np.float64)


# -- MC-SAT ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChainSummary:
    """What the chains of one component saw after burn-in.

    ``atom_true[k, h]``: samples of chain ``k``, half ``h`` (0, 1) in which each atom was
    true; ``half_samples[k, h]`` the samples in that half; ``trace[k, i]`` the value in sample
    ``i`` of chain ``k`` of each atom ``mcsat`` was asked to trace (for ``effective_samples``;
    None when none was); ``satisfied_sum`` and
    ``satisfied_square`` the sums over all samples of each soft clause's truth and of the
    products of every two (for learning); ``fallback``: chains started from the MAP world.
    """

    atom_true: np.ndarray
    half_samples: np.ndarray
    trace: np.ndarray | None
    satisfied_sum: np.ndarray
    feature_square: np.ndarray
    samples: int


class _SampleSat:
    """A component's clauses as Python lists, for flip-by-flip local search over its atoms.

    Moves flip an atom; the auxiliary variables that depend on it follow (their completed
    definitions), so a world is always a world of the atoms and the defining clauses always
    hold. A constraint is a clause with a mode: ``1`` it must hold, ``-1`` it must not hold
    (every literal false: a kept soft clause of negative weight), ``0`` free.
    """

    def __init__(self, model: ComponentModel, temperature: float, walk_probability: float, noise: float) -> None:
        self.model = model
        num_atoms = model.num_atoms
        self.num_atoms = num_atoms
        self.clauses: list[list[int]] = []
        self.tautologies: list[int] = []
        literals: list[list[int]] = []
        for index in range(len(model.offsets) - 1):
            unique = list(dict.fromkeys(model.clause(index).tolist()))  # a literal written twice counts once
            literals.append(unique)
            if any(-lit in unique for lit in unique):  # always holds: no occurrences, true count fixed at 1
                self.tautologies.append(index)
                unique = []
            self.clauses.append(unique)
        self.bodies: list[list[list[int]]] = [[] for _ in range(model.num_vars + 1)]
        for position, clauses in enumerate(model.definitions):
            aux = num_atoms + 1 + position
            self.bodies[aux] = [[lit for lit in literals[int(c)] if lit != -aux] for c in clauses]
        # the auxiliary variables each atom decides, directly or through others, in order
        users: list[set[int]] = [set() for _ in range(model.num_vars + 1)]
        for aux in range(num_atoms + 1, model.num_vars + 1):
            for body in self.bodies[aux]:
                for lit in body:
                    users[abs(lit)].add(aux)
        self.dependents: list[list[int]] = [[] for _ in range(num_atoms + 1)]
        for atom in range(1, num_atoms + 1):
            found: set[int] = set()
            frontier = list(users[atom])
            while frontier:
                aux = frontier.pop()
                if aux not in found:
                    found.add(aux)
                    frontier.extend(users[aux])
            self.dependents[atom] = sorted(found)
        self.occurrences: list[list[int]] = [[] for _ in range(model.num_vars + 1)]
        for index, clause in enumerate(self.clauses):
            for lit in clause:
                self.occurrences[abs(lit)].append(2 * index + (1 if lit > 0 else 0))
        self.base_mode = [0] * len(self.clauses)
        defining = {int(c) for clauses in model.definitions for c in clauses}
        for c in model.hard.tolist():
            if c not in defining:
                self.base_mode[c] = 1
        self.support: dict[int, list[int]] = {}
        self.temperature = temperature
        self.walk_probability = walk_probability
        self.noise = noise

    def counts(self, values: list[bool]) -> list[int]:
        counts = [sum(1 for lit in clause if values[abs(lit)] == (lit > 0)) for clause in self.clauses]
        for index in self.tautologies:
            counts[index] = 1
        return counts

    def start(self, atoms: list[bool]) -> list[bool]:
        """Values of every variable (index 0 unused) from the atoms, auxiliary ones completed."""
        values = [False, *atoms] + [False] * (self.model.num_vars - self.num_atoms)
        bodies = self.bodies
        for aux in range(self.num_atoms + 1, self.model.num_vars + 1):
            values[aux] = all(any(values[abs(lit)] == (lit > 0) for lit in body) for body in bodies[aux])
        return values

    def atoms_of(self, clause: int) -> list[int]:
        """The atoms a clause depends on, through its auxiliary variables too."""
        found = self.support.get(clause)
        if found is None:
            atoms: set[int] = set()
            frontier = [abs(lit) for lit in self.clauses[clause]]
            while frontier:
                variable = frontier.pop()
                if variable <= self.num_atoms:
                    atoms.add(variable)
                else:
                    frontier.extend(abs(lit) for body in self.bodies[variable] for lit in body)
            found = self.support[clause] = sorted(atoms)
        return found

    def search(
        self,
        values: list[bool],
        counts: list[int],
        mode: list[int],
        steps: int,
        generator: random.Random,
        anneal: bool,
        temperature: float | None = None,
    ) -> bool:
        """Local search from ``values`` (changed in place, with ``counts``) towards a world that
        satisfies every constraint of ``mode``: ``steps`` moves mixing WalkSAT and annealing
        (only WalkSAT when ``anneal`` is false, stopping at the first solution). At temperature
        0 an annealing move that breaks a constraint is never taken: from a solution, the walk
        is then a Metropolis chain whose stationary law is uniform over the solutions. Whether
        the final world satisfies every constraint."""
        temperature = self.temperature if temperature is None else temperature
        occurrences, bodies, dependents = self.occurrences, self.bodies, self.dependents
        unsat: list[int] = []
        where = [-1] * len(self.clauses)
        for c, m in enumerate(mode):
            if (m == 1 and counts[c] == 0) or (m == -1 and counts[c] > 0):
                where[c] = len(unsat)
                unsat.append(c)

        def flip(variable: int) -> None:
            was = values[variable]
            values[variable] = not was
            for code in occurrences[variable]:
                c = code >> 1
                if (code & 1) == was:  # the literal was true
                    counts[c] -= 1
                else:
                    counts[c] += 1
                m = mode[c]
                if not m:
                    continue
                bad = counts[c] == 0 if m == 1 else counts[c] > 0
                if bad and where[c] < 0:
                    where[c] = len(unsat)
                    unsat.append(c)
                elif not bad and where[c] >= 0:
                    last = unsat.pop()
                    if last != c:
                        unsat[where[c]] = last
                        where[last] = where[c]
                    where[c] = -1

        def move(atom: int) -> list[int]:
            """Flip an atom and the auxiliary variables that follow it; the variables flipped."""
            flip(atom)
            flipped = [atom]
            for aux in dependents[atom]:
                value = all(any(values[abs(lit)] == (lit > 0) for lit in body) for body in bodies[aux])
                if value != values[aux]:
                    flip(aux)
                    flipped.append(aux)
            return flipped

        def undo(flipped: list[int]) -> None:
            for variable in reversed(flipped):
                flip(variable)

        rand = generator.random
        for _ in range(steps):
            if unsat and (not anneal or rand() < self.walk_probability):
                candidates = self.atoms_of(unsat[int(rand() * len(unsat))])
                if not candidates:
                    return False
                if rand() < self.noise:
                    move(candidates[int(rand() * len(candidates))])
                else:
                    best, least = candidates[0], -1
                    for atom in candidates:
                        flipped = move(atom)
                        if least < 0 or len(unsat) < least:
                            best, least = atom, len(unsat)
                        undo(flipped)
                    move(best)
            elif anneal:
                if rand() < 0.5:  # a lazy move: without it a chain over one free atom would only alternate
                    continue
                before = len(unsat)
                flipped = move(1 + int(rand() * self.num_atoms))
                delta = len(unsat) - before
                if delta > 0 and (temperature <= 0 or rand() >= math.exp(-delta / temperature)):
                    undo(flipped)
            else:
                return True
        return not unsat

    def metropolis(
        self, values: list[bool], counts: list[int], weight: list[float], flips: int, generator: random.Random
    ) -> None:
        """``flips`` Metropolis moves on the weighed distribution itself (changed in place, with
        ``counts``): flip a random atom (its auxiliary variables follow) and keep the flip with
        probability ``min(1, e^{Δ})``, ``Δ`` the change of the satisfied soft clauses' weight
        (``weight[c]``, 0 for the others), never when it breaks a hard clause. Each move leaves
        the distribution invariant, so it may follow any MC-SAT step; it joins worlds one flip
        apart that MC-SAT's slice rarely does (each satisfying heavy clauses the other does
        not: a step crosses only when it drops them all at once)."""
        occurrences, bodies, dependents = self.occurrences, self.bodies, self.dependents
        hard = [m == 1 for m in self.base_mode]
        flipped: list[int] = []
        change = [0.0, 0]  # of the move: the satisfied weight, and the hard clauses broken

        def flip(variable: int) -> None:
            # a clause's weight counts when its count leaves or reaches 0, so a clause that the
            # atom and its auxiliary variables break and mend again adds nothing
            was = values[variable]
            values[variable] = not was
            for code in occurrences[variable]:
                c = code >> 1
                if (code & 1) == was:  # the literal was true
                    counts[c] -= 1
                    if not counts[c]:
                        change[0] -= weight[c]
                        change[1] += hard[c]
                else:
                    counts[c] += 1
                    if counts[c] == 1:
                        change[0] += weight[c]
                        change[1] -= hard[c]
            flipped.append(variable)

        rand = generator.random
        for _ in range(flips):
            if rand() < 0.5:  # lazy, as the annealing moves: a lone free atom does not just alternate
                continue
            flipped.clear()
            change[0], change[1] = 0.0, 0
            atom = 1 + int(rand() * self.num_atoms)
            flip(atom)
            for aux in dependents[atom]:
                if all(any(values[abs(lit)] == (lit > 0) for lit in body) for body in bodies[aux]) != values[aux]:
                    flip(aux)
            delta = change[0]
            if change[1] > 0 or (delta < 0 and rand() >= math.exp(delta)):
                for variable in reversed(flipped[:]):
                    flip(variable)


def mcsat(
    model: ComponentModel,
    weights: np.ndarray,
    *,
    samples: int,
    burn_in: int,
    chains: int,
    seed: np.random.SeedSequence,
    steps: int | None = None,
    start: np.ndarray | None = None,
    temperature: float = 0.5,
    walk_probability: float = 0.5,
    noise: float = 0.5,
    features: tuple[np.ndarray, int] | None = None,
    traced: np.ndarray | None = None,
) -> ChainSummary | None:
    """Run ``chains`` MC-SAT chains of ``burn_in + samples`` steps each on one component.

    ``weights`` are the soft clauses' weights; ``steps`` the SampleSAT flips per sample
    (default: twice the component's number of atoms, at least 30). Chain ``k`` starts from a
    world of the hard clauses found by WalkSAT from all atoms false (``k = 0``) or random
    atoms, or from ``start`` (atom values) when WalkSAT finds none. Each step ends with ``2 ×
    atoms`` lazy Metropolis flips (``_SampleSat.metropolis``). ``features=(of, count)``
    groups soft clauses into features (soft clause ``i`` counts for feature ``of[i]``, -1
    none) whose sums and products are accumulated; ``traced``: the atoms (indices among
    the component's) whose value in every sample is kept (``ChainSummary.trace``: chains ×
    samples × traced atoms bytes). ``None`` when no chain can start.
    """
    sampler = _SampleSat(model, temperature, walk_probability, noise)
    flips = max(30, 2 * model.num_atoms) if steps is None else steps
    has_hard = any(sampler.base_mode)
    restart = RESTART_PROBABILITY if has_hard and model.num_atoms <= RESTART_LIMIT else 0.0
    num_feature = features[1] if features is not None else 0
    feature_of = features[0] if features is not None else np.empty(0, dtype=np.int64)
    keep_probability = -np.expm1(-np.abs(weights))
    positive = weights > 0
    atom_true = np.zeros((chains, 2, model.num_atoms), dtype=np.int64)
    half_samples = np.zeros((chains, 2), dtype=np.int64)
    trace = None if traced is None else np.zeros((chains, samples, len(traced)), dtype=np.bool_)
    satisfied_sum = np.zeros(len(model.soft), dtype=np.float64)
    feature_square = np.zeros((num_feature, num_feature), dtype=np.float64)
    soft = np.asarray(model.soft, dtype=np.int64)
    clause_weight = [0.0] * (len(model.offsets) - 1)
    for c, w in zip(soft.tolist(), np.asarray(weights, dtype=np.float64).tolist(), strict=True):
        clause_weight[c] = w
    for chain, child in enumerate(seed.spawn(chains)):
        rng = np.random.default_rng(child)
        generator = random.Random(int(rng.integers(2**62)))
        atoms = [False] * model.num_atoms if chain == 0 else rng.random(model.num_atoms).__lt__(0.5).tolist()
        values = sampler.start(atoms)
        counts = sampler.counts(values)
        if not sampler.search(values, counts, sampler.base_mode, 100 * flips + 10_000, generator, anneal=False):
            if start is None:
                return None
            values = sampler.start(start.tolist())
            counts = sampler.counts(values)
        mode = list(sampler.base_mode)
        for step in range(burn_in + samples):
            count_array = np.asarray(counts, dtype=np.int64)[soft]
            true = count_array > 0
            keep = (true == positive) & (rng.random(len(soft)) < keep_probability)
            for c, kept, sign in zip(soft.tolist(), keep.tolist(), positive.tolist(), strict=True):
                mode[c] = (1 if sign else -1) if kept else 0
            if restart and generator.random() < restart:  # SampleSAT from a random world
                saved_values, saved_counts = values, counts
                values = sampler.start(rng.random(model.num_atoms).__lt__(0.5).tolist())
                counts = sampler.counts(values)
                if not (
                    sampler.search(values, counts, mode, 10 * flips, generator, anneal=False)
                    and (
                        sampler.search(values, counts, mode, flips, generator, anneal=True)
                        or sampler.search(values, counts, mode, 10 * flips, generator, anneal=False)
                    )
                ):
                    values, counts = saved_values, saved_counts
            else:  # from the current world (a solution)
                saved_values, saved_counts = values.copy(), counts.copy()
                if not sampler.search(values, counts, mode, flips, generator, anneal=True) and not sampler.search(
                    values, counts, mode, flips, generator, anneal=False
                ):
                    values, counts = saved_values, saved_counts
            sampler.metropolis(values, counts, clause_weight, 2 * model.num_atoms, generator)
            if step < burn_in:
                continue
            kept_index = step - burn_in
            half = 0 if kept_index < samples // 2 else 1
            world = np.asarray(values[1 : model.num_atoms + 1], dtype=np.int64)
            atom_true[chain, half] += world
            half_samples[chain, half] += 1
            if trace is not None:
                trace[chain, kept_index] = world[traced]
            satisfied = (np.asarray(counts, dtype=np.int64)[soft] > 0).astype(np.float64)
            satisfied_sum += satisfied
            if num_feature:
                vector = np.bincount(feature_of[feature_of >= 0], satisfied[feature_of >= 0], num_feature)
                feature_square += np.outer(vector, vector)
    return ChainSummary(atom_true, half_samples, trace, satisfied_sum, feature_square, samples * chains)


def split_r_hat(summary: ChainSummary) -> np.ndarray:
    """Split-R-hat (Gelman et al.) of each atom's indicator over the half-chains; 1 for an
    atom constant in every half-chain, infinity for one constant but different across them."""
    n = summary.half_samples.reshape(-1).astype(np.float64)
    true = summary.atom_true.reshape(-1, summary.atom_true.shape[-1]).astype(np.float64)
    if len(n) < 2 or n.min() < 2:
        return np.ones(true.shape[1])
    length = float(n.min())
    means = true / n[:, None]
    within = (means * (1 - means) * n[:, None] / (n[:, None] - 1)).mean(axis=0)
    between = length * means.var(axis=0, ddof=1)
    out = np.ones(true.shape[1])
    varying = within > 0
    out[varying] = np.sqrt(((length - 1) / length * within[varying] + between[varying] / length) / within[varying])
    out[~varying & (between > 0)] = np.inf
    return out


ESS_MEMORY = 64 * 2**20  # bytes of autocorrelation work at once: atoms are taken in blocks that fit


def effective_samples(summary: ChainSummary) -> np.ndarray:
    """Per traced atom, the effective number of independent samples of its indicator over the
    chains' ``trace``: the multi-chain estimate of Stan and ArviZ (Vehtari et al. 2021, §3.2,
    without rank normalisation: an indicator is already bounded) on the chains split in halves
    (as ``split_r_hat``: a chain that drifts counts as two that disagree), autocorrelations by
    FFT, summed over Geyer's initial monotone sequence up to lag ``n − 3`` with the last positive
    even lag added once; at most the samples drawn, and all of them for an atom that never moved."""
    assert summary.trace is not None, "effective_samples needs mcsat(..., traced=...)"
    chains, drawn, atoms = summary.trace.shape
    half = drawn // 2
    total = float(chains * drawn)
    out = np.full(atoms, total)
    if half < 4:
        return out
    split = np.concatenate([summary.trace[:, :half], summary.trace[:, drawn - half :]], axis=0)
    m, n = split.shape[0], half
    size = 1 << (2 * n - 1).bit_length()
    block = max(1, ESS_MEMORY // (m * size * 48))  # the float copy, its spectrum and the autocovariances
    lags = n - 2  # lags 0 .. n - 3
    for start in range(0, atoms, block):
        x = split[:, :, start : start + block].astype(np.float64)
        means = x.mean(axis=1)
        spectrum = np.fft.rfft(x - means[:, None, :], size, axis=1)
        autocovariance = np.fft.irfft(spectrum * np.conj(spectrum), size, axis=1)[:, :lags] / n
        del spectrum
        within = (autocovariance[:, 0] * n / (n - 1)).mean(axis=0)
        pooled = (n - 1) / n * within + means.var(axis=0, ddof=1)
        moving = pooled > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            rho = 1.0 - (within - autocovariance.mean(axis=0)) / pooled  # (lags, atoms)
        rho[0] = 1.0
        pairs = rho[0 : lags - 1 : 2] + rho[1:lags:2]  # adjacent lags summed while positive, made monotone
        positive = np.logical_and.accumulate(pairs > 0, axis=0)
        kept = positive.sum(axis=0)
        monotone = np.minimum.accumulate(np.where(positive, pairs, np.inf), axis=0)
        tau = -1.0 + 2.0 * np.where(positive, monotone, 0.0).sum(axis=0)
        after = 2 * kept  # the even lag after the last positive pair, when it is positive itself
        within_lags = (after < lags) & (kept > 0)
        tail = np.zeros(x.shape[2])
        tail[within_lags] = rho[after[within_lags], np.flatnonzero(within_lags)]
        tau += np.maximum(tail, 0.0)
        tau = np.maximum(tau, 1.0 / np.log10(m * n))  # Stan's floor (antithetic chains)
        found = np.where(moving, m * n / tau, total)
        out[start : start + block] = np.minimum(found, total)
    return out
