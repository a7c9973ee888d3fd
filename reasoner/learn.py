"""Discriminative weight learning: rule files + evidence + the true query atoms → weights.

The weights ``θ`` of the learnable formulas (soft, not ``@w``-fixed, not ``w:``-weighted
from the data; Alchemy's unweighted learning templates start from 0) maximise the
conditional log-likelihood of the true query atoms ``y`` given the evidence ``x``,

    CLL(θ) = Σ_i θ_i n_i(x, y) + Σ_fixed w_j n_j(x, y) − log Z_x(θ),

minus a Gaussian prior ``Σ_i (θ_i − θ0_i)² / (2σ²)`` centred on the starting weights
(the weights written in the rule files; Alchemy's prior is centred on 0, which is the
same when the files start from 0). ``n_i`` counts the true groundings of formula ``i``
the evidence leaves open (the others add a constant). Hard formulas and fixed weights
are kept as written.

The optimiser is Alchemy's diagonal Newton (Lowd & Domingos 2007): the step for weight
``i`` is the penalised gradient ``n_i(y) − E[n_i] − (θ_i − θ0_i)/σ²`` divided by
``Var[n_i] + 1/σ²``. Expectations come from exact enumeration on components of at most
``EXACT_LIMIT`` atoms and from MC-SAT on the others. When every component is exact the
penalised CLL is computed exactly, a step is halved until it increases, so the learned
weights never give a lower training CLL than the starting ones (the prior term is 0 at
the start); with sampled components the steps are taken as computed (stochastic).
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path

import numpy as np

from reasoner.atomic import written_whole
from reasoner.check import CheckedFormula, CheckedProgram, QueryPattern
from reasoner.encode import Encoding, encode
from reasoner.errors import ArgumentError, EvidenceError, Option, UsageError
from reasoner.evidence import MemoryTable, load_evidence, parse_db, with_soft_evidence
from reasoner.ground import GroundNetwork, ground
from reasoner.pipeline import check
from reasoner.sample import EXACT_LIMIT, ComponentModel, ExactTable, component_model, exact, mcsat, world_values

__all__ = ["LearnedWeight", "Learning", "learn_weights", "write_learned"]


@dataclass(frozen=True, slots=True)
class LearnedWeight:
    formula: CheckedFormula
    start: float
    weight: float


@dataclass(frozen=True, slots=True)
class Learning:
    """The learned weights (one per learnable formula, in program order) and how they were found.

    ``log_likelihood`` and ``start_log_likelihood``: the training CLL (natural log) at the
    learned and the starting weights, when every component is exact; else ``None``.
    """

    program: CheckedProgram
    weights: tuple[LearnedWeight, ...]
    start_log_likelihood: float | None
    log_likelihood: float | None
    iterations: int
    exact_components: int
    sampled_components: int
    sigma: float
    seconds: float


@dataclass(frozen=True, slots=True)
class _Part:
    """One component: its model, the feature of each soft clause (-1: fixed weight), the
    fixed weights, the soft clauses the true world satisfies, and its world table if exact."""

    model: ComponentModel
    feature: np.ndarray
    fixed: np.ndarray
    truth: np.ndarray
    table: ExactTable | None


def learn_weights(
    rules: Sequence[str | Path],
    db_files: Sequence[Path],
    truth: Path,
    tables: dict[str, Path | MemoryTable] | None = None,
    queries: Sequence[QueryPattern] = (),
    *,
    sigma: float = 10.0,
    iterations: int = 50,
    samples: int = 500,
    burn_in: int = 50,
    seed: int = 0,
) -> Learning:
    """Learn the weights of the learnable formulas (see the module docstring).

    ``queries``: the query predicates; by default those named in ``truth``, a ``.db`` file
    of the true query atoms (every unlisted atom of a query predicate is false).
    """
    started = time.perf_counter()
    if sigma <= 0 or iterations < 0:
        raise ArgumentError("learning needs a positive prior standard deviation and 0 or more iterations")
    if not queries:
        names = sorted(parse_db(truth, check(rules), 0))
        if not names:
            raise ArgumentError(f"{truth}: no true query atoms, and no ", Option("queries", "P,Q"))
        queries = [QueryPattern(name) for name in names]
    program = check(rules, queries=queries)
    learnable = [
        formula for formula in program.formulas
        if (formula.statement.weight is not None and not formula.statement.fixed) or formula.statement.unweighted
    ]
    plus = [formula for formula in learnable if formula.statement.per_constant]
    if plus:
        span = plus[0].span
        raise ArgumentError(
            f"{span.file}:{span.line}:{span.column}: per-constant weights ('+{plus[0].statement.per_constant[0]}') "
            "are not learned yet: write the formula without '+'"
        )
    if not learnable:
        raise ArgumentError("no formula to learn: every formula is hard, '@'-fixed or weighted from the data")
    position = {formula.index: i for i, formula in enumerate(learnable)}
    start = np.array([float(formula.statement.weight or 0) for formula in learnable])
    # Ground every learnable formula as itself with weight 1 (a zero or negative weight would drop or negate it).
    placeholder = replace(
        program,
        formulas=tuple(
            replace(formula, statement=replace(formula.statement, weight=Decimal(1), unweighted=False))
            if formula.index in position
            else formula
            for formula in program.formulas
        ),
    )
    evidence = load_evidence(placeholder, db_files, tables)
    placeholder, evidence = with_soft_evidence(placeholder, evidence)
    network = ground(placeholder, evidence)
    encoding = encode(network)
    world = _true_world(network, truth, placeholder)
    parts = _parts(encoding, network, position, world)
    features = len(learnable)
    sampled = [part for part in parts if part.table is None]

    def expectations(theta: np.ndarray, iteration: int) -> tuple[np.ndarray, np.ndarray, float | None]:
        """Gradient of the CLL, variance of each feature count, and the CLL when all is exact."""
        gradient = np.zeros(features)
        variance = np.zeros(features)
        log_likelihood: float | None = 0.0
        for part in parts:
            weights = np.where(part.feature >= 0, theta[np.maximum(part.feature, 0)], part.fixed)
            mine = part.feature >= 0
            truth_counts = np.bincount(part.feature[mine], part.truth[mine], features)
            if part.table is not None:
                probability = part.table.probabilities(weights)
                counts = part.table.satisfied[:, mine] @ _indicator(part.feature[mine], features)
                mean = probability @ counts
                variance += probability @ (counts * counts) - mean * mean
                if log_likelihood is not None:
                    log_likelihood += float(part.truth @ weights) - part.table.log_partition(weights)
            else:
                summary = mcsat(
                    part.model, weights, samples=samples, burn_in=burn_in, chains=1,
                    seed=np.random.SeedSequence([seed, iteration, part.model.index]),
                    start=world[part.model.variables[: part.model.num_atoms]],
                    features=(part.feature, features),
                )
                assert summary is not None  # started from the true world, which satisfies the hard formulas
                means = summary.satisfied_sum / summary.samples
                mean = np.bincount(part.feature[mine], means[mine], features)
                variance += np.diag(summary.feature_square / summary.samples) - mean * mean
                log_likelihood = None
            gradient += truth_counts - mean
        return gradient, np.maximum(variance, 0.0), log_likelihood

    def penalised(theta: np.ndarray, log_likelihood: float) -> float:
        return log_likelihood - float(((theta - start) ** 2).sum()) / (2 * sigma**2)

    theta = start.copy()
    gradient, variance, start_log_likelihood = expectations(theta, 0)
    current = start_log_likelihood
    done = 0
    for iteration in range(1, iterations + 1):
        direction = (gradient - (theta - start) / sigma**2) / (variance + 1 / sigma**2)
        if current is None:  # sampled components: a clipped step, as computed
            step = np.clip(direction, -1.0, 1.0)
            theta = theta + step
            gradient, variance, _ = expectations(theta, iteration)
            done = iteration
            if np.abs(step).max() < 1e-3:
                break
            continue
        size = 1.0
        while size > 1e-6:
            candidate = theta + size * direction
            new_gradient, new_variance, value = expectations(candidate, iteration)
            assert value is not None
            if penalised(candidate, value) >= penalised(theta, current):
                break
            size /= 2
        else:
            break
        improvement = penalised(candidate, value) - penalised(theta, current)
        theta, gradient, variance, current = candidate, new_gradient, new_variance, value
        done = iteration
        if np.abs(size * direction).max() < 1e-5 or improvement < 1e-9:
            break
    weights = tuple(
        LearnedWeight(formula, float(begin), float(end))
        for formula, begin, end in zip(learnable, start, theta, strict=True)
    )
    return Learning(
        program, weights, start_log_likelihood, current, done, len(parts) - len(sampled), len(sampled), sigma,
        time.perf_counter() - started,
    )


def _indicator(feature: np.ndarray, count: int) -> np.ndarray:
    out = np.zeros((len(feature), count))
    out[np.arange(len(feature)), feature] = 1.0
    return out


def _true_world(network: GroundNetwork, truth: Path, program: CheckedProgram) -> np.ndarray:
    """The truth file's value of every unknown atom (listed true: true; everything else false)."""
    world = np.zeros(network.atoms.size + 1, dtype=bool)
    queried = {query.predicate for query in program.queries}
    for name, atoms in parse_db(truth, program, 0).items():
        if name not in queried:
            line = atoms[0][2]
            raise EvidenceError(f"{truth}:{line}: '{name}' is not a query predicate; the truth file lists query atoms")
        index = network.predicates[name]
        values = [args for args, holds, _ in atoms if holds]
        if not values:
            continue
        columns = []
        known = np.ones(len(values), dtype=bool)
        for position, type_name in enumerate(index.predicate.types):
            column = [args[position] for args in values]
            ids = network.constants.index.get_indexer(column) if len(network.constants) else np.full(len(values), -1)
            domain = network.constants.domains.get(type_name, np.empty(0, dtype=np.int64))
            known &= (ids >= 0) & np.isin(ids, domain)
            columns.append(np.asarray(ids, dtype=np.int64))
        if not known.any():
            continue
        keys = index.keys(network.constants, [column[known] for column in columns])
        world[network.atoms.ids(name, keys)] = True
    world[0] = False
    return world


def _parts(encoding: Encoding, network: GroundNetwork, position: dict[int, int], world: np.ndarray) -> list[_Part]:
    formula_feature = np.array([position.get(block.formula.index, -1) for block in network.blocks], dtype=np.int64)
    parts = []
    for component in encoding.components:
        model = component_model(encoding, component)
        feature = formula_feature[encoding.formula_block[model.soft_formula]]
        truth_atoms = world[model.variables[: model.num_atoms]]
        truth = world_values(model, truth_atoms)
        table = exact(model) if model.num_atoms <= EXACT_LIMIT else None
        if table is not None and not (table.atoms == truth_atoms).all(axis=1).any():
            raise EvidenceError(
                "the true world violates a hard formula; learning needs a truth the hard formulas allow"
            )
        parts.append(_Part(model, feature, model.soft_weight, truth, table))
    return parts


# -- writing the rule files back ------------------------------------------------------

_NUMBER = re.compile(r"[+-]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?")


def weight_text(weight: float) -> str:
    """A learned weight as written: 4 decimals, no trailing zeros."""
    text = f"{weight:.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def write_learned(learning: Learning, out: Path, *, evidence: Sequence[Path], truth: Path) -> list[Path]:
    """The rule files with the learned weights in place of the written ones, every other
    character (comments included) as it was, and a first comment line saying where the
    weights came from. One rule file goes to ``out``; several go into directory ``out``."""
    files = list(learning.program.program.files)
    by_file: dict[str, list[LearnedWeight]] = {}
    for learned in learning.weights:
        by_file.setdefault(learned.formula.span.file, []).append(learned)
    written = []
    if len(files) > 1:
        out.mkdir(parents=True, exist_ok=True)
    for file in files:
        target = out / Path(file).name if len(files) > 1 else out
        text = Path(file).read_text(encoding="utf-8")
        lines = text.split("\n")
        changes = sorted(by_file.get(file, []), key=lambda item: (item.formula.span.line, -item.formula.span.column))
        for learned in reversed(changes):
            span = learned.formula.span
            line = lines[span.line - 1]
            start = span.column - 1
            if learned.formula.statement.unweighted:  # a learning template: the weight goes before it
                lines[span.line - 1] = line[:start] + weight_text(learned.weight) + " " + line[start:]
                continue
            match = _NUMBER.match(line, start)
            if match is None:
                raise UsageError(f"{span.file}:{span.line}:{span.column}: cannot find the weight to replace")
            lines[span.line - 1] = line[:start] + weight_text(learned.weight) + line[match.end() :]
        likelihood = (
            f"; training CLL {learning.start_log_likelihood:.4f} -> {learning.log_likelihood:.4f}"
            if learning.start_log_likelihood is not None and learning.log_likelihood is not None
            else ""
        )
        header = (
            f"// weights learned by 'reason learn' from {', '.join(Path(p).name for p in evidence)} "
            f"and {Path(truth).name} "
            f"(diagonal Newton, Gaussian prior sigma={learning.sigma:g} around the written weights{likelihood})"
        )
        if changes:
            lines.insert(0, header)
        with written_whole(target) as partial:
            partial.write_text("\n".join(lines), encoding="utf-8")
        written.append(target)
    return written


def describe_learning(learning: Learning) -> str:
    rows = [f"{weight_text(item.start):>10} -> {weight_text(item.weight):>10}  {item.formula.statement.text}"
            for item in learning.weights]
    if learning.log_likelihood is not None and learning.start_log_likelihood is not None:
        rows.append(
            f"training conditional log-likelihood {learning.start_log_likelihood:.4f} -> {learning.log_likelihood:.4f} "
            f"({learning.iterations} iterations, {learning.exact_components} exact components)"
        )
    else:
        rows.append(
            f"{learning.iterations} iterations; {learning.sampled_components} components sampled with MC-SAT "
            f"({learning.exact_components} exact): the likelihood is not computed"
        )
    return "\n".join(rows)

