"""``Encoding`` → ``Marginals``: the probability of every unknown atom.

Each connected component is independent. A component of at most ``auto_limit`` atoms
(12 by default; ``method="exact"`` takes up to ``EXACT_LIMIT``, 20) is enumerated
exactly; a larger one is sampled with MC-SAT (``reasoner.sample``) in ``chains``
chains of ``burn_in + samples`` steps, each seeded from ``SeedSequence([seed,
component])``: the result depends on the seed only, never on how components are
spread. A one-atom component is exact in closed form. An atom in no ground formula has
probability 0.5; an atom fixed by evidence 0 or 1.

The convergence diagnostic is the split-R-hat of each sampled atom's indicator over the
chains' halves (close to 1 when the chains agree) and the largest difference between
two chains' estimates of an atom.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from scipy.stats import t as student_t

from reasoner.batches import in_batches
from reasoner.check import CheckedProgram, QueryPattern
from reasoner.encode import Encoding, encode
from reasoner.errors import ArgumentError, Option
from reasoner.evidence import Evidence, MemoryTable, load_evidence, with_soft_evidence
from reasoner.ground import GroundNetwork, ground
from reasoner.limits import Limits
from reasoner.pipeline import DEFAULT_LIMITS, Laps, QueryAtom, check, query_atoms, watching
from reasoner.sample import (
    EXACT_LIMIT,
    ChainSummary,
    ComponentModel,
    component_model,
    effective_samples,
    exact,
    mcsat,
    split_r_hat,
)
from reasoner.solve import Solution, solve
from reasoner.syntax import Span

__all__ = [
    "AUTO_EXACT_LIMIT",
    "AtomMarginals",
    "MarginalRun",
    "Marginals",
    "atom_marginals",
    "infer_marginals",
    "marginal_json",
    "result_lines",
    "run_marginals",
]

AUTO_EXACT_LIMIT = 12
Method = Literal["auto", "exact", "mcsat"]


@dataclass(frozen=True, slots=True)
class Marginals:
    """``probabilities[a]``: P(atom ``a`` is true) for atom ids ``1..num_atoms`` (index 0 unused).

    ``status`` is ``unsatisfiable`` when no world satisfies the hard formulas (``solution``
    then holds the MAP solver's core). ``r_hat`` and ``chain_difference`` are the worst over
    sampled atoms (1 and 0 when nothing was sampled).
    """

    status: Literal["ok", "unsatisfiable"]
    probabilities: np.ndarray
    samples: int
    burn_in: int
    chains: int
    seed: int
    r_hat: float
    chain_difference: float
    exact_components: int
    sampled_components: int
    sampled_atoms: int
    seconds: float
    solution: Solution | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "samples": self.samples,
            "burn_in": self.burn_in,
            "chains": self.chains,
            "seed": self.seed,
            "r_hat": _finite(self.r_hat),
            "chain_difference": round(self.chain_difference, 6),
            "exact_components": self.exact_components,
            "sampled_components": self.sampled_components,
            "sampled_atoms": self.sampled_atoms,
        }


def _finite(value: float) -> float | str:
    return round(value, 4) if math.isfinite(value) else "inf"


def infer_marginals(
    encoding: Encoding,
    *,
    method: Method = "auto",
    samples: int = 1000,
    burn_in: int = 100,
    chains: int = 2,
    seed: int = 0,
    steps: int | None = None,
    auto_limit: int = AUTO_EXACT_LIMIT,
    workers: int = 1,
) -> Marginals:
    """Marginal probabilities of every atom of the encoding (see the module docstring).

    ``workers`` processes sample the components MC-SAT takes; each component's chains are seeded
    by ``seed`` and the component's index alone, so the result does not depend on ``workers``."""
    if samples < 2 or burn_in < 0 or chains < 1:
        raise ArgumentError("marginals need at least 2 samples, a burn-in of 0 or more and at least 1 chain")
    started = time.perf_counter()
    probabilities = np.full(encoding.num_atoms + 1, 0.5)
    probabilities[0] = np.nan

    def result(status: Literal["ok", "unsatisfiable"], **extra: object) -> Marginals:
        defaults: dict[str, object] = {
            "r_hat": 1.0, "chain_difference": 0.0, "exact_components": 0, "sampled_components": 0, "sampled_atoms": 0,
        }
        defaults.update(extra)
        return Marginals(
            status, probabilities, samples, burn_in, chains, seed, seconds=time.perf_counter() - started,
            **defaults,  # type: ignore[arg-type]
        )

    if encoding.violated_hard:
        return result("unsatisfiable", solution=solve(encoding))
    components = encoding.components
    sizes = components.sizes()
    single = np.flatnonzero(sizes == 1)
    if not _singletons(encoding, single, probabilities):
        return result("unsatisfiable", solution=solve(encoding))
    map_values: np.ndarray | None = None
    worst_r_hat, worst_difference = 1.0, 0.0
    exact_count, sampled_count, sampled_atoms = len(single), 0, 0
    sampled: list[tuple[int, ComponentModel]] = []
    for index in np.flatnonzero(sizes != 1).tolist():
        model = component_model(encoding, components[index])
        atom_ids = model.variables[: model.num_atoms]
        limit = EXACT_LIMIT if method == "exact" else auto_limit if method == "auto" else -1
        if method == "exact" and model.num_atoms > EXACT_LIMIT:
            raise ArgumentError(
                f"a component has {model.num_atoms} atoms; exact marginals take at most {EXACT_LIMIT} per component"
            )
        if model.num_atoms <= limit:
            table = exact(model)
            if table is None:
                return result("unsatisfiable", solution=solve(encoding))
            probabilities[atom_ids] = table.probabilities(model.soft_weight) @ table.atoms
            exact_count += 1
            continue
        sampled.append((index, model))
    settings = _Sampling(samples, burn_in, chains, seed, steps)
    summaries = _sample_all(sampled, settings, workers)
    for (index, model), summary in zip(sampled, summaries, strict=True):
        atom_ids = model.variables[: model.num_atoms]
        sequence = np.random.SeedSequence([seed, index])
        if summary is None:
            if map_values is None:
                solution = solve(encoding)
                if solution.status == "unsatisfiable":
                    return result("unsatisfiable", solution=solution)
                map_values = solution.values
            summary = mcsat(
                model, model.soft_weight, samples=samples, burn_in=burn_in, chains=chains, seed=sequence, steps=steps,
                start=map_values[atom_ids],
            )
            assert summary is not None
        total = summary.atom_true.sum(axis=(0, 1))
        probabilities[atom_ids] = total / summary.samples
        per_chain = summary.atom_true.sum(axis=1) / summary.half_samples.sum(axis=1)[:, None]
        worst_difference = max(worst_difference, float(np.ptp(per_chain, axis=0).max(initial=0.0)))
        worst_r_hat = max(worst_r_hat, float(split_r_hat(summary).max(initial=1.0)))
        sampled_count += 1
        sampled_atoms += model.num_atoms
    return result(
        "ok", r_hat=worst_r_hat, chain_difference=worst_difference, exact_components=exact_count,
        sampled_components=sampled_count, sampled_atoms=sampled_atoms,
    )


def _singletons(encoding: Encoding, single: np.ndarray, probabilities: np.ndarray) -> bool:
    """Closed-form probabilities of one-atom components; False if one has no feasible value."""
    if not len(single):
        return True
    components = encoding.components
    firsts, lasts = components.clause_bounds[single], components.clause_bounds[single + 1]
    counts = lasts - firsts
    owner = np.repeat(np.arange(len(single)), counts)
    clauses = components.clauses[np.repeat(firsts - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())]
    starts, ends = encoding.offsets[clauses], encoding.offsets[clauses + 1]
    lengths = ends - starts
    literal_clause = np.repeat(np.arange(len(clauses)), lengths)
    positions = np.repeat(starts, lengths) + np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    positive = np.zeros(len(clauses), dtype=bool)
    negative = np.zeros(len(clauses), dtype=bool)
    np.logical_or.at(positive, literal_clause, encoding.literals[positions] > 0)
    np.logical_or.at(negative, literal_clause, encoding.literals[positions] < 0)
    tautology = positive & negative
    weights = encoding.weights[clauses].astype(np.float64) / encoding.scale
    hard = encoding.weights[clauses] == 0
    count = len(single)
    true_forbidden = np.bincount(owner[hard & ~positive & ~tautology], minlength=count) > 0
    false_forbidden = np.bincount(owner[hard & ~negative & ~tautology], minlength=count) > 0
    if (true_forbidden & false_forbidden).any():
        return False
    soft = ~hard & ~tautology
    log_odds = np.bincount(owner[soft], np.where(positive[soft], weights[soft], -weights[soft]), count)
    probability = 1.0 / (1.0 + np.exp(-log_odds))
    probability = np.where(true_forbidden, 0.0, np.where(false_forbidden, 1.0, probability))
    probabilities[components.variables[components.variable_bounds[single]]] = probability
    return True


# -- some atoms, each component seeded by its atom ------------------------------------


@dataclass(frozen=True, slots=True)
class AtomMarginals:
    """Per asked atom: ``probability``, ``interval`` (half-width of its 95% interval: 0 when
    computed exactly) and ``exact`` (enumerated, in closed form or fixed)."""

    probability: np.ndarray
    interval: np.ndarray
    exact: np.ndarray


def atom_marginals(
    encoding: Encoding,
    atom_ids: Sequence[int],
    seeds: Sequence[Sequence[int]],
    *,
    samples: int = 1000,
    burn_in: int = 100,
    chains: int = 2,
    auto_limit: int = AUTO_EXACT_LIMIT,
) -> AtomMarginals | None:
    """The marginal probability of each atom of ``atom_ids`` (0: an atom in no formula, 0.5),
    computing only the components that hold them; ``None`` when the hard formulas of one of
    them (or of the encoding) have no world.

    A component of at most ``auto_limit`` atoms is enumerated with its weights summed as the
    encoding's exact integers (divided by the scale once), so the probability depends on the
    component alone, not on what else the encoding holds. A larger one is sampled with MC-SAT
    from ``SeedSequence(seeds[i])`` of the first asked atom ``i`` in it (the caller names the
    seed, e.g. from the entity the atom is about, so that the result does not depend on how
    the network was split); its interval is a t interval over the chains' halves (batch
    means) with ``2 × chains − 1`` degrees of freedom, at least the binomial one of the
    chains' effective number of independent samples (``sample.effective_samples``).
    """
    if samples < 2 or burn_in < 0 or chains < 1:
        raise ArgumentError("marginals need at least 2 samples, a burn-in of 0 or more and at least 1 chain")
    ids = np.asarray(atom_ids, dtype=np.int64)
    probability = np.full(len(ids), 0.5)
    interval = np.zeros(len(ids))
    exact_flags = np.ones(len(ids), dtype=bool)
    if encoding.violated_hard:
        return None
    components = encoding.components
    owner = np.full(encoding.num_vars + 1, -1, dtype=np.int64)
    owner[components.variables] = np.repeat(np.arange(len(components)), components.sizes())
    where = np.where(ids > 0, owner[ids], -1)
    done: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray, bool]] = {}
    order = np.argsort(where, kind="stable")  # the asked atoms of each component, grouped once
    components_asked, starts = np.unique(where[order], return_index=True)
    groups = np.split(ids[order], starts[1:]) if starts.size else []
    asked_of = dict(zip(components_asked.tolist(), groups, strict=True))
    for position, index in enumerate(where.tolist()):
        if index < 0:
            continue
        if index not in done:
            asked = np.unique(asked_of[index])
            found = _component_marginals(encoding, index, seeds[position], samples, burn_in, chains, auto_limit, asked)
            if found is None:
                return None
            done[index] = found
        atoms, values, widths, exact_component = done[index]
        local = int(np.searchsorted(atoms, ids[position]))
        probability[position] = values[local]
        interval[position] = widths[local]
        exact_flags[position] = exact_component
    return AtomMarginals(probability, interval, exact_flags)


def _component_marginals(
    encoding: Encoding, index: int, seed: Sequence[int], samples: int, burn_in: int, chains: int, auto_limit: int,
    asked: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool] | None:
    """``(atom ids, probabilities, interval half-widths, exact)`` of one component's atoms; the
    half-widths are those of the ``asked`` atom ids only (NaN for the others: their effective
    samples are not computed)."""
    model = component_model(encoding, encoding.components[index])
    atom_ids = model.variables[: model.num_atoms]
    if model.num_atoms <= min(auto_limit, EXACT_LIMIT):
        table = exact(model)
        if table is None:
            return None
        integer = encoding.weights[encoding.components[index].clauses[model.soft]].astype(np.float64)
        log_weight = (table.satisfied @ integer) / encoding.scale  # sums of integers: exact, in any order
        weight = np.exp(log_weight - log_weight.max())
        world = weight / weight.sum()
        values = np.array([world[table.atoms[:, atom]].sum() for atom in range(model.num_atoms)])
        return atom_ids, np.clip(values, 0.0, 1.0), np.zeros(model.num_atoms), True
    sequence = np.random.SeedSequence([int(part) for part in seed])
    traced = np.searchsorted(atom_ids, asked)
    summary = mcsat(
        model, model.soft_weight, samples=samples, burn_in=burn_in, chains=chains, seed=sequence, traced=traced
    )
    if summary is None:
        solution = solve(encoding)
        if solution.status == "unsatisfiable":
            return None
        summary = mcsat(
            model, model.soft_weight, samples=samples, burn_in=burn_in, chains=chains, seed=sequence,
            start=solution.values[atom_ids], traced=traced,
        )
        assert summary is not None
    values = summary.atom_true.sum(axis=(0, 1)) / summary.samples
    halves = summary.half_samples.reshape(-1).astype(np.float64)
    means = summary.atom_true.reshape(len(halves), -1) / halves[:, None]
    batch = means.std(axis=0, ddof=1) / math.sqrt(len(halves)) if len(halves) > 1 else np.zeros(model.num_atoms)
    binomial = np.full(model.num_atoms, np.nan)
    binomial[traced] = np.sqrt(values[traced] * (1 - values[traced]) / effective_samples(summary))
    quantile = float(student_t.ppf(0.975, max(1, len(halves) - 1)))
    return atom_ids, values, quantile * np.maximum(batch, binomial), False


# -- the engine as one call ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MarginalRun:
    program: CheckedProgram
    evidence: Evidence
    network: GroundNetwork
    encoding: Encoding
    marginals: Marginals
    atoms: tuple[QueryAtom, ...]
    probabilities: tuple[float, ...]
    seconds: dict[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Sampling:
    samples: int
    burn_in: int
    chains: int
    seed: int
    steps: int | None


SAMPLING_BATCH_ATOMS = 20_000  # atoms of the components sent to a worker at once


def _sample_all(
    sampled: list[tuple[int, ComponentModel]], settings: _Sampling, workers: int
) -> list[ChainSummary | None]:
    """MC-SAT on each component, in this process or in ``workers`` processes (in order)."""
    if workers <= 1 or len(sampled) < 2:
        return _sample_batch(sampled, settings)
    batches = in_batches(sampled, lambda item: item[1].num_atoms, SAMPLING_BATCH_ATOMS)
    if len(batches) == 1:  # one batch's worth: split it so that every worker has some
        share = -(-len(sampled) // workers)
        batches = [sampled[start : start + share] for start in range(0, len(sampled), share)]
    with ProcessPoolExecutor(max_workers=min(workers, len(batches))) as pool:
        chunks = pool.map(_sample_batch, batches, [settings] * len(batches))
        return [summary for chunk in chunks for summary in chunk]


def _sample_batch(batch: list[tuple[int, ComponentModel]], settings: _Sampling) -> list[ChainSummary | None]:
    return [
        mcsat(
            model,
            model.soft_weight,
            samples=settings.samples,
            burn_in=settings.burn_in,
            chains=settings.chains,
            seed=np.random.SeedSequence([settings.seed, index]),
            steps=settings.steps,
        )
        for index, model in batch
    ]


def run_marginals(
    rules: Sequence[str | Path],
    db_files: Sequence[Path] = (),
    tables: dict[str, Path | MemoryTable] | None = None,
    queries: Sequence[QueryPattern] = (),
    query_spans: dict[str, Span] | None = None,
    *,
    method: Method = "auto",
    samples: int = 1000,
    burn_in: int = 100,
    chains: int = 2,
    seed: int = 0,
    steps: int | None = None,
    program: CheckedProgram | None = None,
    limits: Limits = DEFAULT_LIMITS,
    workers: int = 1,
) -> MarginalRun:
    """Parse, check, load, ground, encode and infer the marginals of the query atoms (within
    ``limits``, its memory limit watched; ``workers`` sampling processes, same result)."""
    with watching(limits):
        return _run_marginals(
            rules, db_files, tables, queries, query_spans, method=method, samples=samples, burn_in=burn_in,
            chains=chains, seed=seed, steps=steps, program=program, limits=limits, workers=workers,
        )


def _run_marginals(
    rules: Sequence[str | Path],
    db_files: Sequence[Path],
    tables: dict[str, Path | MemoryTable] | None,
    queries: Sequence[QueryPattern],
    query_spans: dict[str, Span] | None,
    *,
    method: Method,
    samples: int,
    burn_in: int,
    chains: int,
    seed: int,
    steps: int | None,
    program: CheckedProgram | None,
    limits: Limits,
    workers: int,
) -> MarginalRun:
    lap = Laps()
    seconds = lap.seconds

    if program is None:
        program = check(rules, queries=queries, query_spans=query_spans, limits=limits)
    if not program.queries:
        raise ArgumentError("no query: name the query predicates with ", Option("queries", "P,Q"))
    lap("parse")
    evidence = load_evidence(program, db_files, tables)
    program, evidence = with_soft_evidence(program, evidence)
    lap("evidence")
    network = ground(program, evidence, limits=limits)
    lap("ground")
    encoding = encode(network)
    lap("encode")
    atoms, notes = query_atoms(network, program.queries)
    marginals = infer_marginals(
        encoding, method=method, samples=samples, burn_in=burn_in, chains=chains, seed=seed, steps=steps,
        workers=workers,
    )
    lap("marginals")
    probabilities = tuple(
        (1.0 if atom.value else 0.0) if atom.fixed
        else float(marginals.probabilities[atom.atom_id]) if atom.atom_id
        else 0.5
        for atom in atoms
    )
    return MarginalRun(
        program, evidence, network, encoding, marginals, tuple(atoms), probabilities, seconds, tuple(notes)
    )


def result_lines(result: MarginalRun) -> list[str]:
    """Alchemy's ``.result`` format: one ``atom probability`` line per query atom."""
    return [f"{atom.text} {_probability(p)}" for atom, p in zip(result.atoms, result.probabilities, strict=True)]


def _probability(value: float) -> str:
    return f"{value:.4f}".rstrip("0").rstrip(".") if value not in (0.0, 1.0) else str(int(value))


def marginal_json(result: MarginalRun, *, timings: bool = True) -> dict[str, object]:
    out: dict[str, object] = {
        "status": result.marginals.status,
        "marginals": {
            atom.text: float(_probability(p)) for atom, p in zip(result.atoms, result.probabilities, strict=True)
        },
        "sampling": result.marginals.as_dict(),
    }
    if result.notes:
        out["notes"] = list(result.notes)
    if timings:
        out["seconds"] = {stage: round(value, 4) for stage, value in result.seconds.items()}
    return out
