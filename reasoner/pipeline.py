"""The engine as one call: rule files + evidence → ground, encode, solve.

``run`` returns a ``Run`` with every stage's output, so the command line, the
lending audit and tests share one path through the pipeline. ``parse``, ``check``,
``run`` and ``explain`` are the engine's public functions (``reasoner.__init__``
re-exports them): rules are rule text (``str``), rule files or directories of them
(``Path``), or a sequence of these; options are keyword-only.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import numpy as np

from reasoner.check import CheckedProgram, QueryPattern, check_program, require_weights
from reasoner.encode import Encoding, encode
from reasoner.errors import ArgumentError, Option
from reasoner.evidence import Evidence, MemoryTable, load_evidence, with_soft_evidence
from reasoner.explain import Proof, explain_atom, find_atom
from reasoner.ground import TRUE, UNKNOWN, GroundNetwork, ground
from reasoner.intern import unique_sorted
from reasoner.limits import Limits, MemoryWatchdog, watched_memory_limit
from reasoner.parse import parse_program, parse_text
from reasoner.soften import broken_hard_formulas, soften
from reasoner.solve import Solution, Status, solve
from reasoner.syntax import Program, Span

__all__ = [
    "QueryAtom",
    "QueryAtoms",
    "Run",
    "RuleSource",
    "check",
    "explain",
    "parse",
    "query_atoms",
    "query_table",
    "run",
]

MAX_LISTED_ATOMS = 1_000_000
DEFAULT_MARGIN_ATOMS = 1_000
DEFAULT_LIMITS = Limits()

RuleSource = str | Path  # rule text, or a rule file or a directory of *.mln files


@dataclass(frozen=True, slots=True)
class QueryAtom:
    text: str
    value: bool
    atom_id: int  # 0 when fixed by evidence or in no formula
    fixed: bool  # given by evidence


@dataclass(frozen=True, slots=True)
class QueryAtoms:
    """The query atoms as columns, per query predicate (sorted by name): the atoms' keys (in key
    order), their evidence states and their atom ids (0 when fixed by evidence or in no formula)."""

    predicates: tuple[str, ...]
    keys: tuple[np.ndarray, ...]
    states: tuple[np.ndarray, ...]
    ids: tuple[np.ndarray, ...]

    def __len__(self) -> int:
        return sum(len(keys) for keys in self.keys)

    def margin_ids(self, predicates: set[str]) -> np.ndarray:
        """The atom ids of the atoms of ``predicates`` the solver decides, in order (int64)."""
        found = [ids[ids != 0] for name, ids in zip(self.predicates, self.ids, strict=True) if name in predicates]
        return np.concatenate(found).astype(np.int64, copy=False) if found else np.empty(0, dtype=np.int64)

    def atoms(self, network: GroundNetwork, values: np.ndarray | None = None) -> list[QueryAtom]:
        """The atoms as objects with their texts, valued from the solver's ``values`` (None: as
        evidence gives them, false when unknown)."""
        found: list[QueryAtom] = []
        true, unknown = int(TRUE), int(UNKNOWN)
        for name, keys, states, ids in zip(self.predicates, self.keys, self.states, self.ids, strict=True):
            given = (states == true).tolist()
            solved = values[ids].astype(bool).tolist() if values is not None else given
            found.extend(
                QueryAtom(text, value_solved if atom_id else value_given, atom_id, state != unknown)
                for text, value_given, value_solved, atom_id, state in zip(
                    network.key_text(name, keys), given, solved, ids.tolist(), states.tolist(), strict=True
                )
            )
        return found


@dataclass(frozen=True, slots=True)
class Run:
    program: CheckedProgram
    evidence: Evidence
    network: GroundNetwork
    encoding: Encoding
    solution: Solution
    query: QueryAtoms
    seconds: dict[str, float] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    margin_predicates: frozenset[str] = frozenset()
    _made: dict[str, tuple[QueryAtom, ...]] = field(default_factory=dict, init=False, compare=False, repr=False)

    @property
    def atoms(self) -> tuple[QueryAtom, ...]:
        """Every query atom with its text and MAP value, in order (made on first use: the lending
        audit reads the columns of ``query`` instead)."""
        found = self._made.get("atoms")
        if found is None:
            found = self._made["atoms"] = tuple(self.query.atoms(self.network, self.solution.values))
        return found

    @property
    def status(self) -> Status:
        """``optimal``, ``feasible`` (a time limit stopped the solver) or ``unsatisfiable``."""
        return self.solution.status

    @property
    def total_cost(self) -> Decimal:
        """The cost of the MAP world (the sum of the weights of the ground formulas it breaks)."""
        return self.cost(self.solution.cost)

    @property
    def values(self) -> dict[str, bool]:
        """Every query atom's MAP value, by its text (``Cancer(Anna)``)."""
        return {atom.text: atom.value for atom in self.atoms}

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


def parse(rules: RuleSource | Sequence[RuleSource], *, limits: Limits = DEFAULT_LIMITS) -> Program:
    """Parse rules: rule text (``str``), rule files or directories (``Path``), or a sequence of them."""
    sources = _sources(rules)
    texts = [source for source in sources if isinstance(source, str)]
    if not texts:
        return parse_program(sources, limits=limits)
    programs: list[Program] = []
    number = 0
    for source in sources:
        if isinstance(source, Path):
            programs.append(parse_program([source], limits=limits))
            continue
        number += 1
        name = "<rules>" if len(texts) == 1 else f"<rules {number}>"
        programs.append(parse_text(source, name, limits=limits))
    return Program(
        tuple(statement for program in programs for statement in program.statements),
        tuple(name for program in programs for name in program.files),
    )


def check(
    rules: RuleSource | Sequence[RuleSource],
    *,
    queries: Sequence[QueryPattern | str] = (),
    query_spans: Mapping[str, Span] | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> CheckedProgram:
    """Parse and check rules against the query predicates (``RuleError`` lists every problem)."""
    return check_program(parse(rules, limits=limits), _patterns(queries), dict(query_spans or {}))


def run(
    rules: RuleSource | Sequence[RuleSource],
    evidence: str | Path | Sequence[str | Path] = (),
    *,
    tables: Mapping[str, Path | MemoryTable] | None = None,
    queries: Sequence[QueryPattern | str] = (),
    query_spans: Mapping[str, Span] | None = None,
    margins: Sequence[str] | None = None,
    time_limit: float | None = None,
    workers: int = 1,
    explain_atoms: Sequence[str] = (),
    limits: Limits = DEFAULT_LIMITS,
    program: CheckedProgram | None = None,
    solver: str = "auto",
    hard_weight: Decimal | None = None,
) -> Run:
    """Parse, check, load, ground, encode and solve: the MAP world of the query predicates.

    ``evidence``: Alchemy/Tuffy evidence files (``*.db``, paths); ``tables``: tables by name for the
    rules' ``bind`` statements; ``queries``: query predicates (names or ``QueryPattern`` s).
    ``margins``: predicates whose atoms get margins; ``None`` means every query atom when
    there are at most 1,000 of them, else none. Atoms named in ``explain_atoms`` (text such
    as ``Smokes(Bob)``) always get one. ``time_limit`` (seconds) stops exact solving with the
    best world found (status ``feasible``); ``workers`` solver processes never change the
    result. ``program``: the checked ``rules`` and ``queries`` when the caller has them already
    (the lending audit checks its rules once for many partitions).
    ``solver``: the exact backend (``reasoner.solve.BACKENDS``); ``hard_weight``: hard formulas
    become soft ones of this weight, and ``solution.stats["hard_broken"]`` counts those broken.
    """
    if time_limit is not None and not time_limit > 0:
        raise ArgumentError(Option("time_limit"), " must be a positive number of seconds")
    if workers < 1:
        raise ArgumentError(Option("workers"), " must be at least 1")
    lap = Laps()
    seconds = lap.seconds

    patterns = _patterns(queries)
    with watching(limits):
        if program is None:
            program = check(rules, queries=patterns, query_spans=query_spans, limits=limits)
        if not patterns and not program.queries:
            raise ArgumentError("no query: name the query predicates with ", Option("queries", "P,Q"))
        require_weights(program)  # a formula written without a weight (a learning template) cannot be inferred with
        lap("parse")
        files = [Path(evidence)] if isinstance(evidence, (str, Path)) else [Path(file) for file in evidence]
        facts = load_evidence(program, files, dict(tables) if tables is not None else None)
        program, facts = with_soft_evidence(program, facts)  # soft evidence: unit formulas
        lap("evidence")
        network = ground(program, facts, limits=limits)
        hard_blocks: frozenset[int] = frozenset()
        if hard_weight is not None:
            network, hard_blocks = soften(network, hard_weight)
        lap("ground")
        encoding = encode(network)
        lap("encode")
        found, notes = query_table(network, program.queries)
        margin_predicates = _margin_predicates(len(found), margins, program)
        explained = np.array(_explained_atom_ids(network, explain_atoms), dtype=np.int64)
        margin_atoms = np.concatenate([found.margin_ids(margin_predicates), explained])
        solution = solve(encoding, margin_atoms=margin_atoms, time_limit=time_limit, workers=workers, backend=solver)
        if hard_weight is not None:
            solution.stats["hard_broken"] = broken_hard_formulas(network, encoding, hard_blocks, solution.values)
        lap("solve")
    return Run(program, facts, network, encoding, solution, found, seconds, tuple(notes), frozenset(margin_predicates))


def explain(result: Run, atom: str) -> Proof:
    """Why ``atom`` (text such as ``Cancer(Anna)``) has its value in ``result``'s MAP world:
    the ground formulas that support and oppose it, with their rules and evidence."""
    return explain_atom(result.network, result.solution, atom)


def _sources(rules: RuleSource | Sequence[RuleSource]) -> list[RuleSource]:
    sources: list[RuleSource] = [rules] if isinstance(rules, (str, Path)) else list(rules)
    for source in sources:
        if not isinstance(source, (str, Path)):
            raise TypeError(f"rules: expected rule text (str) or a path (Path), got {type(source).__name__}")
        if isinstance(source, str) and "\n" not in source and source.strip().endswith(".mln"):
            raise ArgumentError(
                Option("rules"), f": '{source}' looks like a file name; a str is rule text, a file is a Path"
            )
    if not sources:
        raise ArgumentError(Option("rules"), ": no rules given")
    return sources


def _patterns(queries: Sequence[QueryPattern | str]) -> tuple[QueryPattern, ...]:
    if isinstance(queries, str):
        queries = [name.strip() for name in queries.split(",") if name.strip()]
    return tuple(query if isinstance(query, QueryPattern) else QueryPattern(query) for query in queries)


class Laps:
    """A stopwatch of the pipeline's stages: ``lap("ground")`` records the seconds since the
    previous lap (or since the start) under ``seconds["ground"]``."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._clock = time.perf_counter()

    def __call__(self, stage: str) -> None:
        now = time.perf_counter()
        self.seconds[stage] = now - self._clock
        self._clock = now


@contextmanager
def watching(limits: Limits) -> Iterator[None]:
    """The memory watchdog of ``limits``, unless one already watches as low a limit."""
    watched = watched_memory_limit()
    if limits.memory_limit is None or (watched is not None and watched <= limits.memory_limit):
        yield
        return
    with MemoryWatchdog(limits.memory_limit) as watchdog:
        yield
    watchdog.check()  # passed, but the thread could not interrupt (not the main thread) or just did


def _explained_atom_ids(network: GroundNetwork, texts: Sequence[str]) -> list[int]:
    ids: list[int] = []
    for text in texts:
        predicate, key = find_atom(network, text)
        ids.extend(int(i) for i in network.atoms.ids(predicate, np.array([key], dtype=np.int64)) if i)
    return ids


def _margin_predicates(count: int, margins: Sequence[str] | None, program: CheckedProgram) -> set[str]:
    """The predicates whose atoms get margins, of ``count`` query atoms."""
    if margins is None:
        if count > DEFAULT_MARGIN_ATOMS:
            return set()
        return {query.predicate for query in program.queries}
    wanted = set(margins)
    for name in sorted(wanted):
        if name not in program.predicates:
            raise ArgumentError(Option("margins"), f": unknown predicate '{name}'")
    return wanted


def query_atoms(network: GroundNetwork, queries: Sequence[QueryPattern]) -> tuple[list[QueryAtom], list[str]]:
    """Every ground atom of every query predicate (matching the query patterns), in order, with
    the value evidence gives it (false when unknown)."""
    table, notes = query_table(network, queries)
    return table.atoms(network), notes


def query_table(network: GroundNetwork, queries: Sequence[QueryPattern]) -> tuple[QueryAtoms, list[str]]:
    """``query_atoms`` as columns."""
    notes: list[str] = []
    by_predicate: dict[str, list[QueryPattern]] = {}
    for query in queries:
        by_predicate.setdefault(query.predicate, []).append(query)
    all_keys, all_states, all_ids = [], [], []
    for name in sorted(by_predicate):
        index = network.predicates[name]
        count = index.num_atoms
        if count > MAX_LISTED_ATOMS:
            keys = unique_sorted(np.concatenate([index.evidence_keys, _unknown_keys(network, name)]))
            notes.append(
                f"{name} has {count:,} ground atoms; only the {len(keys):,} that are evidence or "
                "in the network are listed, all others are false"
            )
        else:
            keys = np.arange(count, dtype=np.int64)
        patterns = by_predicate[name]
        if not any(pattern.args is None for pattern in patterns):  # only the atoms some pattern matches
            args = index.args(network.constants, keys)
            values = network.constants.values
            matched = [
                any(pattern.matches(tuple(values[column] for column in columns)) for pattern in patterns)
                for columns in zip(*(column.tolist() for column in args), strict=True)
            ] if args else [any(pattern.matches(()) for pattern in patterns)] * len(keys)
            keys = keys[np.array(matched, dtype=bool)]
        state, _rows = index.lookup(keys)
        all_keys.append(keys)
        all_states.append(state)
        all_ids.append(network.atoms.ids(name, keys))
    table = QueryAtoms(tuple(sorted(by_predicate)), tuple(all_keys), tuple(all_states), tuple(all_ids))
    return table, notes


def _unknown_keys(network: GroundNetwork, name: str) -> np.ndarray[tuple[int], np.dtype[np.int64]]:
    if name not in network.atoms.predicates:
        return np.empty(0, dtype=np.int64)
    return network.atoms.keys[network.atoms.predicates.index(name)]
