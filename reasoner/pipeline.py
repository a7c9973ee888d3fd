"""The engine as one call: rule files + evidence → ground, encode, solve.

``run`` returns a ``Run`` with every stage's output, so the command line, the
lending audit and tests share one path through the pipeline.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import numpy as np

from reasoner.check import CheckedProgram, QueryPattern, check_program, require_weights
from reasoner.encode import Encoding, encode
from reasoner.errors import UsageError
from reasoner.evidence import Evidence, MemoryTable, load_evidence, with_soft_evidence
from reasoner.ground import TRUE, UNKNOWN, GroundNetwork, ground
from reasoner.parse import parse_program
from reasoner.soften import broken_hard_formulas, soften
from reasoner.solve import Solution, solve
from reasoner.syntax import Span

__all__ = ["QueryAtom", "Run", "check", "query_atoms", "run"]

MAX_LISTED_ATOMS = 1_000_000
DEFAULT_MARGIN_ATOMS = 1_000


@dataclass(frozen=True, slots=True)
class QueryAtom:
    text: str
    value: bool
    atom_id: int  # 0 when fixed by evidence or in no formula
    fixed: bool  # given by evidence


@dataclass(frozen=True, slots=True)
class Run:
    program: CheckedProgram
    evidence: Evidence
    network: GroundNetwork
    encoding: Encoding
    solution: Solution
    atoms: tuple[QueryAtom, ...]
    seconds: dict[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    margin_predicates: frozenset[str] = frozenset()

    def margin(self, atom: QueryAtom) -> Decimal | None:
        """The atom's margin: 0 in no formula, ``None`` when fixed by evidence or hard formulas."""
        if atom.fixed:
            return None
        if not atom.atom_id:
            return Decimal(0)
        scaled = self.solution.margins.get(atom.atom_id)
        return None if scaled is None else self.cost(scaled)

    def has_margin(self, atom: QueryAtom) -> bool:
        return atom.text.split("(", 1)[0] in self.margin_predicates

    def cost(self, scaled: int) -> Decimal:
        return Decimal(scaled) / Decimal(self.solution.scale)


def check(
    rules: Sequence[str | Path],
    queries: Sequence[QueryPattern] = (),
    query_spans: dict[str, Span] | None = None,
) -> CheckedProgram:
    return check_program(parse_program(rules), queries, query_spans)


def run(
    rules: Sequence[str | Path],
    db_files: Sequence[Path] = (),
    tables: dict[str, Path | MemoryTable] | None = None,
    queries: Sequence[QueryPattern] = (),
    query_spans: dict[str, Span] | None = None,
    *,
    margins: Sequence[str] | None = None,
    time_limit: float | None = None,
    workers: int = 1,
    explain_atoms: Sequence[str] = (),
    program: CheckedProgram | None = None,
    solver: str = "auto",
    hard_weight: Decimal | None = None,
) -> Run:
    """Parse, check, load, ground, encode and solve.

    ``margins``: predicates whose atoms get margins; ``None`` means every query
    atom when there are at most 1,000 of them, else none. Atoms named in
    ``explain_atoms`` (text such as ``Smokes(Bob)``) always get one. ``program``:
    the checked ``rules`` and ``queries`` when the caller has them already (the
    lending audit checks its rules once for many partitions). ``solver``: the exact
    backend (``reasoner.solve.BACKENDS``); ``hard_weight``: hard formulas become soft
    ones of this weight, and ``solution.stats["hard_broken"]`` counts those broken.
    """
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[stage] = now - clock
        clock = now

    if program is None:
        program = check(rules, queries, query_spans)
    if not queries:
        raise UsageError("no query: name the query predicates with --query P,Q or --query-file FILE")
    require_weights(program)  # a formula written without a weight (a learning template) cannot be inferred with
    lap("parse")
    evidence = load_evidence(program, db_files, tables)
    program, evidence = with_soft_evidence(program, evidence)  # soft evidence: unit formulas
    lap("evidence")
    network = ground(program, evidence)
    hard_blocks: frozenset[int] = frozenset()
    if hard_weight is not None:
        network, hard_blocks = soften(network, hard_weight)
    lap("ground")
    encoding = encode(network)
    lap("encode")
    atoms, notes = query_atoms(network, program.queries)
    margin_predicates = _margin_predicates(atoms, margins, program)
    margin_atoms = [atom.atom_id for atom in atoms if atom.atom_id and atom.text.split("(", 1)[0] in margin_predicates]
    margin_atoms += _explained_atom_ids(network, explain_atoms)
    solution = solve(encoding, margin_atoms=margin_atoms, time_limit=time_limit, workers=workers, backend=solver)
    if hard_weight is not None:
        solution.stats["hard_broken"] = broken_hard_formulas(network, encoding, hard_blocks, solution.values)
    lap("solve")
    values = solution.values
    atoms = tuple(
        QueryAtom(atom.text, bool(values[atom.atom_id]) if atom.atom_id else atom.value, atom.atom_id, atom.fixed)
        for atom in atoms
    )
    return Run(program, evidence, network, encoding, solution, atoms, seconds, tuple(notes), frozenset(margin_predicates))


def _explained_atom_ids(network: GroundNetwork, texts: Sequence[str]) -> list[int]:
    from reasoner.explain import find_atom

    ids = []
    for text in texts:
        predicate, key = find_atom(network, text)
        ids.extend(int(i) for i in network.atoms.ids(predicate, np.array([key], dtype=np.int64)) if i)
    return ids


def _margin_predicates(atoms: Sequence[QueryAtom], margins: Sequence[str] | None, program: CheckedProgram) -> set[str]:
    if margins is None:
        if len(atoms) > DEFAULT_MARGIN_ATOMS:
            return set()
        return {query.predicate for query in program.queries}
    wanted = set(margins)
    for name in wanted:
        if name not in program.predicates:
            raise UsageError(f"--margins: unknown predicate '{name}'")
    return wanted


def query_atoms(network: GroundNetwork, queries: Sequence[QueryPattern]) -> tuple[list[QueryAtom], list[str]]:
    """Every ground atom of every query predicate (matching the query patterns), in order."""
    atoms: list[QueryAtom] = []
    notes: list[str] = []
    by_predicate: dict[str, list[QueryPattern]] = {}
    for query in queries:
        by_predicate.setdefault(query.predicate, []).append(query)
    for name in sorted(by_predicate):
        index = network.predicates[name]
        count = index.num_atoms
        if count > MAX_LISTED_ATOMS:
            keys = np.unique(np.concatenate([index.evidence_keys, _unknown_keys(network, name)]))
            notes.append(
                f"{name} has {count:,} ground atoms; only the {len(keys):,} that are evidence or "
                "in the network are listed, all others are false"
            )
        else:
            keys = np.arange(count, dtype=np.int64)
        state, _rows = index.lookup(keys)
        ids = network.atoms.ids(name, keys)
        texts = network.key_text(name, keys)
        patterns = by_predicate[name]
        whole = any(pattern.args is None for pattern in patterns)
        args = None if whole else index.args(network.constants, keys)
        for position, (text, value, atom_id) in enumerate(zip(texts, state.tolist(), ids.tolist(), strict=True)):
            if args is not None:
                values = tuple(network.constants.values[int(column[position])] for column in args)
                if not any(pattern.matches(values) for pattern in patterns):
                    continue
            fixed = value != UNKNOWN
            atoms.append(QueryAtom(text, bool(value == TRUE), int(atom_id), bool(fixed)))
    return atoms, notes


def _unknown_keys(network: GroundNetwork, name: str) -> np.ndarray:
    if name not in network.atoms.predicates:
        return np.empty(0, dtype=np.int64)
    return network.atoms.keys[network.atoms.predicates.index(name)]
