"""Stage 4: ``CheckedProgram`` + ``Evidence`` → ``GroundNetwork``.

Grounding is relational and bottom-up, as Tuffy does it in a database: each
formula is put in negation normal form, its CNF tells which substitutions the
evidence cannot already satisfy, and one SQL query per formula (DuckDB, over
integer-coded evidence relations) returns exactly those substitutions: joins
for literals the evidence must make false, anti-joins for the others, domain
scans only for variables nothing else binds. Each remaining grounding is then
evaluated against the evidence, column by column in numpy: groundings the
evidence satisfies are dropped (and counted), groundings it violates are added
to the cost, and the rest keep, per leaf, the atom they refer to.
"""

from __future__ import annotations

import functools
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from reasoner.check import CheckedFormula, CheckedProgram, Predicate
from reasoner.constants import ConstantValue
from reasoner.errors import EvidenceError, LimitError, Option
from reasoner.evidence import Evidence, arrow_text, codes_of, is_coded, is_text
from reasoner.intern import Collection, ConstantTable, intern_columns, unique_sorted
from reasoner.limits import MAX_CLAUSE_FILTERS, MAX_KEY, Limits
from reasoner.normalize import Cmp, Const, Junction, Lit, Node, Truth, Var, leaves, normalize, to_clauses
from reasoner.syntax import Comparison, Constant, Formula, Quantified

__all__ = ["AtomTable", "GroundBlock", "GroundNetwork", "GroundStats", "PredicateIndex", "evaluate", "ground"]

FALSE, TRUE, UNKNOWN = np.int8(0), np.int8(1), np.int8(2)
DUCKDB_THREADS = 2  # threads of the grounding joins; worker processes that already fill the cores set 1


@dataclass(frozen=True, slots=True)
class PredicateIndex:
    """Atoms of one predicate as integer keys (mixed radix over type-local positions)."""

    predicate: Predicate
    sizes: tuple[int, ...]
    strides: tuple[int, ...]
    evidence_keys: np.ndarray  # sorted
    evidence_truth: np.ndarray  # bool, aligned with evidence_keys
    evidence_rows: np.ndarray  # index into the relation frame, aligned
    _made: dict[str, list[np.ndarray]] = field(default_factory=dict, compare=False, repr=False)

    @property
    def num_atoms(self) -> int:
        return math.prod(self.sizes)

    def evidence_args(self, constants: ConstantTable) -> list[np.ndarray]:
        """``args`` of the evidence keys, made once per constant table (grounding reads them for many
        clauses)."""
        key = f"args {id(constants)}"
        found = self._made.get(key)
        if found is None:
            found = self._made[key] = self.args(constants, self.evidence_keys)
        return found

    def keys(self, constants: ConstantTable, columns: list[np.ndarray]) -> np.ndarray:
        key = np.zeros(len(columns[0]) if columns else 1, dtype=np.int64)
        for type_name, stride, column in zip(self.predicate.types, self.strides, columns, strict=True):
            key += _local(constants, type_name, column).astype(np.int64) * stride
        return key

    def args(self, constants: ConstantTable, keys: np.ndarray) -> list[np.ndarray]:
        """Global constant ids of each argument for the given keys."""
        out = []
        for type_name, size, stride in zip(self.predicate.types, self.sizes, self.strides, strict=True):
            out.append(constants.domains[type_name][(keys // stride) % size])
        return out

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Evidence state (FALSE/TRUE/UNKNOWN per the world assumption) and evidence row (-1)."""
        state = np.full(len(keys), UNKNOWN if self.predicate.open_world else FALSE, dtype=np.int8)
        rows = np.full(len(keys), -1, dtype=np.int64)
        if len(self.evidence_keys):
            position = np.searchsorted(self.evidence_keys, keys)
            position = np.minimum(position, len(self.evidence_keys) - 1)
            hit = self.evidence_keys[position] == keys
            state[hit] = np.where(self.evidence_truth[position[hit]], TRUE, FALSE)
            rows[hit] = self.evidence_rows[position[hit]]
        return state, rows


@dataclass(frozen=True, slots=True)
class AtomTable:
    """The unknown ground atoms, numbered 1..n: predicates by name, atoms by key."""

    predicates: tuple[str, ...]
    keys: tuple[np.ndarray, ...]
    offsets: tuple[int, ...]  # id of the first atom of each predicate is offset + 1

    @property
    def size(self) -> int:
        return self.offsets[-1] + len(self.keys[-1]) if self.keys else 0

    def ids(self, predicate: str, keys: np.ndarray) -> np.ndarray:
        """Atom ids for keys (0 where the atom is not unknown)."""
        if predicate not in self.predicates:
            return np.zeros(len(keys), dtype=np.int64)
        index = self.predicates.index(predicate)
        table = self.keys[index]
        if not len(table):
            return np.zeros(len(keys), dtype=np.int64)
        position = np.minimum(np.searchsorted(table, keys), len(table) - 1)
        found = table[position] == keys
        return np.where(found, position + self.offsets[index] + 1, 0).astype(np.int64)

    def locate(self, atom_id: int) -> tuple[str, int]:
        """(predicate, key) of an atom id."""
        index = int(np.searchsorted(np.asarray(self.offsets), atom_id - 1, side="right")) - 1
        return self.predicates[index], int(self.keys[index][atom_id - 1 - self.offsets[index]])


@dataclass(frozen=True, slots=True)
class GroundBlock:
    """The groundings of one formula that the evidence leaves open or violates.

    ``substitutions`` holds one row of constant ids per grounding (columns in
    the order of ``formula.variables``). Per leaf of ``tree`` (in ``leaves``
    order): its literal state, the atom id when unknown (else 0) and the
    evidence row that decided it (-1: none, closed-world default or comparison).
    """

    formula: CheckedFormula
    tree: Node
    weight: Decimal | None  # |w|; None for hard formulas
    negated: bool
    substitutions: np.ndarray
    leaf_states: tuple[np.ndarray, ...]
    leaf_atoms: tuple[np.ndarray, ...]
    leaf_evidence: tuple[np.ndarray, ...]
    root_state: np.ndarray
    total_groundings: int

    @property
    def hard(self) -> bool:
        return self.weight is None

    def __len__(self) -> int:
        return int(self.substitutions.shape[0])


@dataclass(frozen=True, slots=True)
class GroundStats:
    """What grounding found: formulas left to the solver, groundings the evidence decided."""

    zero_weight_formulas: int = 0  # formulas of weight 0, left out
    candidate_groundings: int = 0  # groundings the SQL (or numpy) pruning left to evaluate
    ground_formulas: int = 0  # groundings left undecided by the evidence: the solver's
    violated_by_evidence: int = 0  # groundings the evidence makes false (their cost is fixed)
    total_groundings: int = 0  # groundings of every formula, decided or not
    unknown_atoms: int = 0  # atoms the solver decides
    grounding_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class GroundNetwork:
    program: CheckedProgram
    evidence: Evidence
    constants: ConstantTable
    predicates: Mapping[str, PredicateIndex]  # each built when first asked for (``_PredicateIndexes``)
    atoms: AtomTable
    blocks: tuple[GroundBlock, ...]
    stats: GroundStats = field(default_factory=GroundStats)

    def atom_text(self, atom_id: int) -> str:
        predicate, key = self.atoms.locate(atom_id)
        return self.key_text(predicate, np.array([key]))[0]

    def key_text(self, predicate: str, keys: np.ndarray) -> list[str]:
        index = self.predicates[predicate]
        texts = []
        for column in index.args(self.constants, keys):  # each distinct constant's text made once
            distinct, inverse = np.unique(column, return_inverse=True)
            made = np.array([self.constants.text(constant) for constant in distinct.tolist()], dtype=object)
            texts.append(made[inverse].tolist())
        if not texts:
            return [f"{predicate}()" for _ in range(len(keys))]
        if len(texts) == 1:
            return [f"{predicate}({text})" for text in texts[0]]
        return [f"{predicate}({','.join(parts)})" for parts in zip(*texts, strict=True)]


def evaluate(node: Node, states: list[np.ndarray], count: int) -> np.ndarray:
    """Three-valued (Kleene) value of the tree per grounding, from its leaf states."""
    iterator = iter(states)

    def walk(node: Node) -> np.ndarray:
        if isinstance(node, (Lit, Cmp)):
            return next(iterator)
        if isinstance(node, Truth):
            return np.full(count, TRUE if node.value else FALSE, dtype=np.int8)
        assert isinstance(node, Junction)
        children = [walk(child) for child in node.children]
        stacked = np.stack(children) if children else np.empty((0, count), dtype=np.int8)
        # and: false if any child is, true if all are; or: the dual
        decisive, other = (FALSE, TRUE) if node.kind == "and" else (TRUE, FALSE)
        undecided = np.where((stacked == other).all(axis=0), other, UNKNOWN)
        out = np.where((stacked == decisive).any(axis=0), decisive, undecided)
        return out.astype(np.int8)

    return walk(node)


@dataclass(frozen=True, slots=True)
class _Candidates:
    """A formula's groundings that the evidence does not make true, with per leaf (in
    ``leaves`` order) the literal's state, the atom's key and the evidence row that decided it."""

    total: int  # groundings of the formula, decided or not
    substitutions: np.ndarray
    states: list[np.ndarray]
    keys: list[np.ndarray]
    rows: list[np.ndarray]

    def subset(self, keep: np.ndarray) -> _Candidates:
        return _Candidates(
            self.total,
            self.substitutions[keep],
            [state[keep] for state in self.states],
            [key[keep] for key in self.keys],
            [row[keep] for row in self.rows],
        )


@dataclass(frozen=True, slots=True)
class _Grounding:
    """The candidates of one formula (or of one weight of a data-weighted formula), before the
    unknown atoms are numbered."""

    formula: CheckedFormula
    tree: Node
    weight: Decimal | None  # |w|; None for hard formulas
    negated: bool
    candidates: _Candidates


def ground(
    program: CheckedProgram, evidence: Evidence, *, limits: Limits = Limits()  # noqa: B008 (frozen)
) -> GroundNetwork:
    """Ground every formula of the program against the evidence (within ``limits.max_groundings``
    per formula, and half of ``limits.memory_limit`` for the SQL engine)."""
    started = time.perf_counter()
    columns = _Columns(program, evidence)
    constants = _constant_table(program, columns)
    columns.uniques.clear()  # interned: the indexes, built on demand, read only codes and ids
    predicates = _PredicateIndexes(program, evidence, constants, columns)
    connection = _Relations(predicates, constants, limits.memory_limit)
    atom_states: dict[str, np.ndarray] = {}  # every atom's evidence state, per predicate (``_evidence_state``)
    try:
        grounded: list[_Grounding] = []
        zero_weight = 0
        domain_values = _DomainValues(constants)
        candidates = 0

        def candidates_of(formula: CheckedFormula, tree: Node) -> _Candidates:
            """The formula's groundings that the evidence does not make true, with their leaf states."""
            nonlocal candidates
            total = math.prod(len(constants.domains.get(type_name, ())) for type_name in formula.types)
            limit = _grounding_limit(limits.grounding_budget, len(formula.variables))
            substitutions = _candidates(connection, atom_states, formula, tree, predicates, constants, total, limit)
            states, keys, rows = _leaf_states(tree, substitutions, predicates, constants)
            candidates += len(substitutions)
            found = _Candidates(total, substitutions, states, keys, rows)
            keep = evaluate(tree, states, len(substitutions)) != TRUE
            return found if keep.all() else found.subset(keep)

        for formula in program.formulas:
            weight = formula.statement.weight
            if formula.statement.weight_variable is not None:
                grounded += _data_weighted(formula, domain_values, constants, functools.partial(candidates_of, formula))
                continue
            if weight is not None and weight == 0:
                zero_weight += 1
                continue
            negated = weight is not None and weight < 0
            tree = normalize(formula, domain_values, negate=negated)
            magnitude = None if weight is None else abs(weight)
            grounded.append(_Grounding(formula, tree, magnitude, negated, candidates_of(formula, tree)))
    finally:
        connection.close()

    atoms = _number_atoms(grounded, predicates)
    predicates.settle()
    blocks = [_block(grounding, atoms) for grounding in grounded]
    stats = GroundStats(
        zero_weight_formulas=zero_weight,
        candidate_groundings=candidates,
        ground_formulas=int(sum(int((block.root_state == UNKNOWN).sum()) for block in blocks)),
        violated_by_evidence=int(sum(int((block.root_state == FALSE).sum()) for block in blocks)),
        total_groundings=int(sum(block.total_groundings for block in blocks)),
        unknown_atoms=atoms.size,
        grounding_seconds=time.perf_counter() - started,
    )
    return GroundNetwork(program, evidence, constants, predicates, atoms, tuple(blocks), stats)


def _block(grounding: _Grounding, atoms: AtomTable) -> GroundBlock:
    """The block of one grounding, its unknown atoms numbered."""
    found = grounding.candidates
    leaf_atoms = []
    for leaf, state, key in zip(leaves(grounding.tree), found.states, found.keys, strict=True):
        if isinstance(leaf, Lit):
            ids = np.where(state == UNKNOWN, atoms.ids(leaf.predicate, key), 0)
        else:
            ids = np.zeros(len(state), dtype=np.int64)
        leaf_atoms.append(ids)
    return GroundBlock(
        formula=grounding.formula,
        tree=grounding.tree,
        weight=grounding.weight,
        negated=grounding.negated,
        substitutions=found.substitutions,
        leaf_states=tuple(found.states),
        leaf_atoms=tuple(leaf_atoms),
        leaf_evidence=tuple(found.rows),
        root_state=evaluate(grounding.tree, found.states, len(found.substitutions)),
        total_groundings=found.total,
    )


WEIGHT_PLACES = 4  # a weight taken from the data is rounded to this many decimal places
MAX_DATA_WEIGHT = Decimal("1e15")  # a larger value is no weight (a hard constraint is written with a period)


def data_weight(value: object) -> Decimal | None:
    """A grounding's weight from its weight variable's value: the number rounded to
    ``WEIGHT_PLACES`` decimals (half to even); ``None`` when the value is not a finite number
    of magnitude below ``MAX_DATA_WEIGHT``."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    number = Decimal(repr(value) if isinstance(value, float) else value)
    if abs(number) >= MAX_DATA_WEIGHT:
        return None
    return number.quantize(Decimal(1).scaleb(-WEIGHT_PLACES))


def _data_weighted(
    formula: CheckedFormula,
    domain_values: _DomainValues,
    constants: ConstantTable,
    candidates_of: Callable[[Node], _Candidates],
) -> list[_Grounding]:
    """The groundings of ``w: F``, one block per distinct weight (the encoding weighs blocks).

    A grounding whose ``w`` is positive weighs ``F``; a negative one weighs ``!F`` by ``|w|``
    (as a formula written with a negative weight); zero costs nothing. A value of ``w`` that
    is not a number is an error naming the formula.
    """
    variable = formula.statement.weight_variable
    assert variable is not None
    slot = formula.variables.index(variable)
    domain = constants.domains.get(formula.types[slot], np.empty(0, dtype=np.int64))
    negative = any((weight := data_weight(constants.values[int(i)])) is not None and weight < 0 for i in domain)
    parts: list[_Grounding] = []
    owed: int | None = None  # the formula's groundings, counted once: with its first block
    for negated in (False, True) if negative else (False,):  # no negative weight: no grounding of !F
        tree = normalize(formula, domain_values, negate=negated)
        found = candidates_of(tree)
        owed = found.total if owed is None else owed
        if not len(found.substitutions):
            continue
        ids, inverse = np.unique(found.substitutions[:, slot], return_inverse=True)
        weights = []
        for constant_id in ids:
            value = constants.values[int(constant_id)]
            weight = data_weight(value)
            if weight is None:
                raise EvidenceError(
                    f"{formula.span}:{formula.span.column}: the weight variable '{variable}' is bound to "
                    f"{constants.text(int(constant_id))}, which is not a number below {MAX_DATA_WEIGHT:,.0f} in size"
                )
            weights.append(weight)
        # |w| where the sign matches this tree, else 0 (left out)
        signed = np.array([w.copy_abs() if (w < 0) == negated else Decimal(0) for w in weights], dtype=object)
        per_grounding = signed[inverse]
        for magnitude in sorted(set(signed.tolist()) - {Decimal(0)}):
            keep = per_grounding == magnitude
            chosen = found.subset(keep)
            parts.append(_Grounding(formula, tree, magnitude, negated, replace(chosen, total=owed)))
            owed = 0
    return parts


# -- constants and evidence relations ------------------------------------


def _formula_constants(formula: Formula) -> list[ConstantValue]:
    found: list[ConstantValue] = []

    def walk(node: object) -> None:
        if isinstance(node, Constant):
            found.append(node.value)
        elif isinstance(node, Comparison):
            walk(node.left)
            walk(node.right)
        elif isinstance(node, Quantified):
            walk(node.body)
        elif hasattr(node, "operands"):
            for operand in node.operands:
                walk(operand)
        elif hasattr(node, "operand"):
            walk(node.operand)
        elif hasattr(node, "left") and hasattr(node, "right"):
            walk(node.left)
            walk(node.right)
        elif hasattr(node, "args"):
            for arg in node.args:
                walk(arg)

    walk(formula)
    return found


class _Columns:
    """Evidence columns interned once (``intern.intern_columns``): each type's columns are
    hashed together, by kind (text with Arrow, numbers with numpy), and the constant table is
    built from the distinct values; a column's constant ids are its distinct values' ids,
    taken by code."""

    def __init__(self, program: CheckedProgram, evidence: Evidence) -> None:
        self.codes: dict[tuple[str, int], tuple[int, np.ndarray]] = {}  # column → (its group, codes)
        self.uniques: dict[str, list[pd.Series | pa.Array | np.ndarray]] = {}  # type → distinct values per group
        self.ids: dict[str, list[np.ndarray]] = {}  # type → ids of those values, once interned
        self._local: dict[tuple[str, int], np.ndarray] = {}
        by_type: dict[str, dict[str, list[tuple[tuple[str, int], pd.Series]]]] = {}
        for name, relation in evidence.relations.items():
            for position, type_name in enumerate(program.predicates[name].types):
                column = relation.frame[f"a{position}"]
                groups = by_type.setdefault(type_name, {})
                groups.setdefault(_kind(column), []).append(((name, position), column))
        for type_name, groups in by_type.items():
            uniques = self.uniques.setdefault(type_name, [])
            for kind, parts in sorted(groups.items()):
                codes, distinct = _factorize([column for _key, column in parts], kind)
                bounds = np.cumsum([len(column) for _key, column in parts])[:-1]
                for (key, _column), part in zip(parts, np.split(codes, bounds), strict=True):
                    self.codes[key] = (len(uniques), part)
                uniques.append(distinct)

    def column_local(self, constants: ConstantTable, type_name: str, key: tuple[str, int]) -> np.ndarray:
        """Positions of column ``key``'s values within their type's domain (looked up for the
        distinct values only, taken by code)."""
        group, codes = self.codes[key]
        found = self._local.get((type_name, group))
        if found is None:
            found = self._local[(type_name, group)] = _local(constants, type_name, self.ids[type_name][group])
        local: np.ndarray = found[codes]
        return local


def _kind(column: pd.Series) -> str:
    if is_coded(column):  # codes of one dictionary (``evidence._encode_texts``): grouped by that dictionary
        return f"coded {id(column.dtype.categories)}"
    if column.dtype.kind in "iuf":
        return str(column.dtype)
    return "text" if is_text(column) else "object"


def _factorize(columns: list[pd.Series], kind: str) -> tuple[np.ndarray, pd.Series | pa.Array | np.ndarray]:
    """Codes of the columns' values, concatenated, into their distinct values."""
    if kind.startswith("coded"):  # codes already: only the dictionary's entries they use, renumbered
        codes = np.concatenate([codes_of(column) for column in columns]) if len(columns) > 1 else codes_of(columns[0])
        dictionary = columns[0].dtype.categories
        used = np.zeros(len(dictionary), dtype=bool)
        used[codes] = True
        position = np.cumsum(used, dtype=np.int64) - 1
        return position[codes], arrow_text(pd.Series(dictionary)).take(pa.array(np.flatnonzero(used)))
    if kind == "text":
        chunks = [arrow_text(column) for column in columns]
        encoded = pc.dictionary_encode(pa.concat_arrays(chunks))
        return np.asarray(encoded.indices, dtype=np.int64), encoded.dictionary
    arrays = [column.to_numpy(dtype=object if kind == "object" else None) for column in columns]
    codes, distinct = pd.factorize(np.concatenate(arrays) if len(arrays) > 1 else arrays[0], use_na_sentinel=False)
    return codes.astype(np.int64), distinct


def _constant_table(program: CheckedProgram, columns: _Columns) -> ConstantTable:
    typed: dict[str, list[Collection]] = {type_name: [] for type_name in program.types}
    for type_name, values in program.constants.items():
        typed[type_name].append(list(values))
    first = {type_name: len(collections) for type_name, collections in typed.items()}
    for type_name, uniques in columns.uniques.items():
        typed.setdefault(type_name, []).extend(uniques)
    untyped = [value for formula in program.formulas for value in _formula_constants(formula.formula)]
    constants, ids = intern_columns(typed, untyped)
    for type_name in columns.uniques:
        columns.ids[type_name] = ids[type_name][first.get(type_name, 0) :]
    return constants


class _DomainValues(Mapping[str, list[ConstantValue]]):
    """The constants of each type as values, built lazily, once per ``ground`` call.

    Only quantifiers need a domain's values; building every domain for every
    formula cost seconds on large domains.
    """

    def __init__(self, constants: ConstantTable) -> None:
        self._constants = constants
        self._cache: dict[str, list[ConstantValue]] = {}

    def __getitem__(self, name: str) -> list[ConstantValue]:
        if name not in self._cache:
            ids = self._constants.domains[name]
            self._cache[name] = [self._constants.values[i] for i in ids]
        return self._cache[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._constants.domains)

    def __len__(self) -> int:
        return len(self._constants.domains)


class _PredicateIndexes(Mapping[str, PredicateIndex]):
    """Every predicate's ``PredicateIndex``, each built when first asked for.

    Grounding asks for the predicates its formulas read (and their unknown atoms' predicates);
    a predicate only derived rules read (the audit's ``Comparator``, ``NoStronger`` and
    ``MatchedApproval``: 97,677 rows keyed and sorted per 100,000 applications) is indexed only
    if a query, ``reason explain`` or a record asks for it, and then gives the same index. Sizes
    are checked for all at once, so a predicate with too many atoms is an error of grounding."""

    def __init__(
        self, program: CheckedProgram, evidence: Evidence, constants: ConstantTable, columns: _Columns
    ) -> None:
        self._program, self._evidence, self._constants, self._columns = program, evidence, constants, columns
        self._built: dict[str, PredicateIndex] = {}
        self._shapes: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}
        for name, predicate in program.predicates.items():
            sizes = tuple(len(constants.domains.get(type_name, ())) for type_name in predicate.types)
            strides = []
            stride = 1
            for size in reversed(sizes):
                strides.append(stride)
                stride *= max(size, 1)
            if stride > MAX_KEY:
                raise LimitError(
                    f"predicate '{predicate.signature}' has {stride:.3g} possible atoms, more than "
                    f"the {MAX_KEY:.3g} the engine can number; split its types into smaller ones"
                )
            self._shapes[name] = (sizes, tuple(reversed(strides)))

    def __getitem__(self, name: str) -> PredicateIndex:
        found = self._built.get(name)
        if found is None:
            found = self._built[name] = self._index(name)
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(self._shapes)

    def __len__(self) -> int:
        return len(self._shapes)

    def __contains__(self, name: object) -> bool:
        return name in self._shapes

    def settle(self) -> None:
        """Let go of the interned codes of the predicates indexed already (grounding is done: the
        rest stay for an index asked for later). Nothing is removed while indexes may be built, so
        two threads asking for one index at once both build the same one; so call it only when no
        index is being built (``ground`` does, once its atoms are numbered)."""
        for key in [key for key in self._columns.codes if key[0] in self._built]:
            del self._columns.codes[key]

    def _index(self, name: str) -> PredicateIndex:
        predicate = self._program.predicates[name]
        sizes, strides = self._shapes[name]
        relation = self._evidence.relation(name)
        empty = np.empty(0, dtype=np.int64)
        if relation is None or not len(relation.frame):
            return PredicateIndex(predicate, sizes, strides, empty, np.empty(0, dtype=bool), empty)
        frame = relation.frame
        keys = np.zeros(len(frame), dtype=np.int64)
        for position, (type_name, stride) in enumerate(zip(predicate.types, strides, strict=True)):
            local = self._columns.column_local(self._constants, type_name, (name, position))
            keys += local.astype(np.int64) * stride
        if len(keys) < 2 or bool((keys[1:] > keys[:-1]).all()):  # in key order already (derived relations)
            order = np.arange(len(keys), dtype=np.int64)
        else:
            order = np.argsort(keys, kind="stable")
        return PredicateIndex(
            predicate, sizes, strides, keys[order], frame["truth"].to_numpy(dtype=bool)[order], order.astype(np.int64)
        )


_THREAD = threading.local()


def _close_before_fork() -> None:
    """A forked process must not inherit DuckDB's threads (nor a connection whose threads it
    lacks): the forking thread's kept connection is closed first, and opened again when needed."""
    connection = getattr(_THREAD, "connection", None)
    if connection is not None:
        _THREAD.connection = None
        connection.close()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_close_before_fork)


class _Relations:
    """The DuckDB connection of the grounding queries, opened and given each evidence relation
    and domain (as an Arrow table) only when a query needs it: most formulas of a program are
    grounded without SQL (``_scan_clause``)."""

    def __init__(
        self, predicates: Mapping[str, PredicateIndex], constants: ConstantTable, memory_limit: int | None
    ) -> None:
        self._predicates, self._constants = predicates, constants
        self._memory_limit = memory_limit
        self._connection: duckdb.DuckDBPyConnection | None = None
        self._registered: set[str] = set()

    def execute(self, sql: str) -> dict[str, np.ndarray]:
        connection = self._open()
        for name in sorted(set(re.findall(r'"([ed]_[A-Za-z_][A-Za-z0-9_]*)"', sql)) - self._registered):
            connection.register(name, self._table(name))
            self._registered.add(name)
        return connection.execute(sql).fetchnumpy()

    def close(self) -> None:
        if self._connection is not None:
            for name in sorted(self._registered):
                self._connection.unregister(name)
            self._registered.clear()

    def _open(self) -> duckdb.DuckDBPyConnection:
        if self._connection is None:
            # One connection per thread, kept: opening one costs 10-20 ms, more than most groundings.
            connection = getattr(_THREAD, "connection", None)
            if connection is None:
                connection = _THREAD.connection = duckdb.connect()
            connection.execute(f"SET threads TO {DUCKDB_THREADS}")
            budget = self._memory_limit
            if budget is not None:  # DuckDB allocates outside Python: give it half, so it fails cleanly first
                connection.execute(f"SET memory_limit = '{max(64, budget // 2 // 2**20)}MB'")
            else:
                connection.execute("RESET memory_limit")
            self._connection = connection
        return self._connection

    def _table(self, name: str) -> pa.Table:
        # Arrow tables: DuckDB scans them in place, and building them costs less than data frames.
        kind, _underscore, subject = name.partition("_")
        if kind == "d":
            ids = self._constants.domains.get(subject, np.empty(0, dtype=np.int64))
            return pa.table({"c": pa.array(np.asarray(ids, dtype=np.int64))})
        index = self._predicates[subject]
        args = index.evidence_args(self._constants)
        columns = {f"a{i}": pa.array(np.asarray(column, dtype=np.int64)) for i, column in enumerate(args)}
        columns["truth"] = pa.array(np.asarray(index.evidence_truth, dtype=bool))
        return pa.table(columns)


def _table(predicate: str) -> str:
    return f'"e_{predicate}"'


def _domain(type_name: str) -> str:
    return f'"d_{type_name}"'


# -- candidate substitutions -----------------------------------------------


def _candidates(
    connection: _Relations,
    states: dict[str, np.ndarray],
    formula: CheckedFormula,
    tree: Node,
    predicates: Mapping[str, PredicateIndex],
    constants: ConstantTable,
    total: int,
    limit: int,
) -> np.ndarray:
    """The substitutions (rows of constant ids) of ``formula`` under which the evidence does not
    make ``tree`` true; a ``LimitError`` when there are more than ``limit``."""
    width = len(formula.variables)
    if isinstance(tree, Truth):
        # Decided for every grounding; only a false one matters (it is violated).
        if tree.value or total == 0:
            return np.empty((0, width), dtype=np.int64)
        clauses: list[list[Lit | Cmp]] | None = [[]]
    else:
        clauses = to_clauses(tree)
    if clauses is None:
        clauses = [[]]  # every grounding is a candidate
    if not clauses:
        return np.empty((0, width), dtype=np.int64)
    # The limit holds before the groundings exist: the domain product when nothing prunes them;
    # else each clause's query stops one row past the limit (joins stream, so it never builds
    # more), and their union, capped the same way, is exact whenever no clause reached it. A
    # clause grounded in numpy has at most the rows of one relation or one domain.
    estimate = total if clauses == [[]] else 0
    if estimate > limit:
        raise _too_many(formula, estimate, limit)
    scanned = [_scan_clause(clause, formula, predicates, constants, states, limit) for clause in clauses]
    if all(part is not None for part in scanned):
        found = _unique_rows(np.concatenate(scanned) if len(scanned) > 1 else scanned[0])  # type: ignore[arg-type]
        if len(found) > limit:
            raise _too_many(formula, len(found), limit, at_least=True)
        return found.astype(np.int64).reshape(len(found), width)
    queries = [_clause_query(clause, formula, predicates, constants) for clause in clauses]
    columns = [f"v{i}" for i in range(width)] or ["_one"]
    sql = " UNION ".join(f"(SELECT * FROM ({query}) LIMIT {limit + 1})" for query in queries)
    sql = f"SELECT * FROM ({sql}) ORDER BY {', '.join(columns)} LIMIT {limit + 1}"
    try:
        result = connection.execute(sql)
    except duckdb.OutOfMemoryException:
        span = formula.span
        raise LimitError(
            f"{span.file}:{span.line}:{span.column}: out of memory while grounding this formula; "
            "join its variables through evidence predicates, or give more memory (",
            Option("memory_limit"),
            ")",
        ) from None
    count = len(result[columns[0]])
    if count > limit:
        raise _too_many(formula, count, limit, at_least=True)
    if not width:
        return np.empty((count, 0), dtype=np.int64)
    return np.column_stack([np.asarray(result[column], dtype=np.int64) for column in columns]).reshape(count, width)


def _scan_clause(
    clause: list[Lit | Cmp],
    formula: CheckedFormula,
    predicates: Mapping[str, PredicateIndex],
    constants: ConstantTable,
    states: dict[str, np.ndarray],
    limit: int,
) -> np.ndarray | None:
    """``_clause_query``'s substitutions (rows of constant ids) computed in numpy, for a clause
    whose variables are bound by the true atoms of the closed-world predicates it negates (joined
    on their shared variables, in the clause's order, as ``_clause_query`` joins them), or that
    has one variable, taken from its domain. Every other literal filters, as in SQL. None: use
    SQL (a domain product, a cross product, or a join of more than ``limit`` rows)."""
    clause = list(dict.fromkeys(clause))
    width = len(formula.types)
    if not width:
        return None
    joins: list[Lit] = []
    bound_slots: set[int] = set()
    for leaf in clause:  # as ``_clause_query`` picks its joins: a literal that binds a variable
        if isinstance(leaf, Lit) and not leaf.positive and not predicates[leaf.predicate].predicate.open_world:
            slots = {arg.slot for arg in leaf.args if isinstance(arg, Var)}
            if slots - bound_slots:
                if bound_slots and not slots & bound_slots:
                    return None  # a cross product
                joins.append(leaf)
                bound_slots |= slots
    if joins:
        if bound_slots != set(range(width)):
            return None  # a variable left to its domain
        bound = _true_atoms(joins[0], predicates, constants)
        for leaf in joins[1:]:
            joined = _join(bound, _true_atoms(leaf, predicates, constants), len(constants), limit)
            if joined is None:
                return None
            bound = joined
        rows = np.column_stack([bound[slot] for slot in range(width)]).astype(np.int64).reshape(-1, width)
    elif width == 1:
        domain = constants.domains.get(formula.types[0], np.empty(0, dtype=np.int64))
        rows = np.asarray(domain, dtype=np.int64).reshape(-1, 1)
    else:
        return None

    def column(arg: Var | Const) -> np.ndarray:
        if isinstance(arg, Const):
            return np.full(len(rows), constants.id(arg.value), dtype=np.int64)
        return rows[:, arg.slot]

    for leaf in clause:  # each filter narrows the rows the next one looks up
        if leaf in joins or not len(rows):
            continue
        if isinstance(leaf, Cmp):  # not true
            rows = rows[~_compare_ids(leaf.op, column(leaf.left), column(leaf.right), constants.num_numeric)]
            continue
        index = predicates[leaf.predicate]
        key = index.keys(constants, [column(arg) for arg in leaf.args]) if leaf.args else np.zeros(len(rows), np.int64)
        state = _evidence_state(index, key, states)
        rows = rows[(state != TRUE) if leaf.positive else (state != FALSE)]  # the literal is not true by evidence
    return rows


def _true_atoms(
    leaf: Lit, predicates: Mapping[str, PredicateIndex], constants: ConstantTable
) -> dict[int, np.ndarray]:
    """The variables' constants (by slot) of the true evidence atoms matching ``leaf``'s arguments
    (its constants, and a variable it repeats)."""
    index = predicates[leaf.predicate]
    take = index.evidence_truth.copy()
    args = index.evidence_args(constants)
    bound: dict[int, np.ndarray] = {}
    for arg, ids in zip(leaf.args, args, strict=True):
        if isinstance(arg, Const):
            take &= ids == constants.id(arg.value)
        elif arg.slot in bound:
            take &= ids == bound[arg.slot]
        else:
            bound[arg.slot] = ids
    return {slot: ids[take] for slot, ids in bound.items()}


def _join(
    left: dict[int, np.ndarray], right: dict[int, np.ndarray], num_constants: int, limit: int
) -> dict[int, np.ndarray] | None:
    """The rows of ``left`` and ``right`` (columns of constant ids by slot) that agree on their
    shared slots, with the columns of both (a sort-merge join: the rows' order does not matter,
    ``_unique_rows`` sorts them). None when they share no slot, or the join has more than
    ``limit`` rows."""
    shared = sorted(set(left) & set(right))
    if not shared or num_constants ** len(shared) >= 2**62:
        return None
    left_key = np.zeros(len(left[shared[0]]), dtype=np.int64)
    right_key = np.zeros(len(right[shared[0]]), dtype=np.int64)
    for slot in shared:  # the shared slots' ids as one number (mixed radix)
        left_key = left_key * num_constants + left[slot]
        right_key = right_key * num_constants + right[slot]
    order = np.argsort(right_key, kind="stable")
    ordered = right_key[order]
    start = np.searchsorted(ordered, left_key, side="left")
    count = np.searchsorted(ordered, left_key, side="right") - start
    total = int(count.sum())
    if total > limit:
        return None
    left_rows = np.repeat(np.arange(len(left_key), dtype=np.int64), count)
    offsets = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(count) - count, count)
    right_rows = order[np.repeat(start, count) + offsets]
    joined = {slot: ids[left_rows] for slot, ids in left.items()}
    joined.update({slot: ids[right_rows] for slot, ids in right.items() if slot not in joined})
    return joined


def _evidence_state(index: PredicateIndex, keys: np.ndarray, states: dict[str, np.ndarray]) -> np.ndarray:
    """``index.lookup(keys)[0]``; from a table of every atom's state when the predicate has at
    most a few million atoms (built once per grounding, in ``states``), else by binary search."""
    if index.num_atoms > max(1 << 22, 4 * len(keys)):
        return index.lookup(keys)[0]
    name = index.predicate.name
    table = states.get(name)
    if table is None:
        table = np.full(index.num_atoms, UNKNOWN if index.predicate.open_world else FALSE, dtype=np.int8)
        table[index.evidence_keys] = np.where(index.evidence_truth, TRUE, FALSE)
        states[name] = table
    found: np.ndarray = table[keys]
    return found


def _unique_rows(rows: np.ndarray) -> np.ndarray:
    """The distinct rows, sorted lexicographically (as SQL's ORDER BY v0, v1, … sorts them)."""
    if rows.shape[1] == 1:
        return unique_sorted(rows[:, 0]).reshape(-1, 1)
    ordered = rows[np.lexsort(rows.T[::-1])]
    first = np.ones(len(ordered), dtype=bool)
    first[1:] = (ordered[1:] != ordered[:-1]).any(axis=1)
    return ordered[first]


def _grounding_limit(budget: int, width: int) -> int:
    """Groundings one formula of ``width`` variables may have: ``budget`` (``max_groundings``),
    scaled down beyond 2 variables.

    A grounding's memory grows with its variables, so the limit is one of memory: a formula
    of ``w > 2`` variables may have ``max_groundings * 2 / w`` groundings.
    """
    return budget if width <= 2 else max(1, budget * 2 // width)


def _too_many(formula: CheckedFormula, count: int, limit: int, at_least: bool = False) -> LimitError:
    span = formula.span
    found = f"more than {limit:,}" if at_least else f"{count:,}"
    return LimitError(
        f"{span.file}:{span.line}:{span.column}: formula has {found} groundings the evidence does not decide "
        f"(limit {limit:,}); join its variables through evidence predicates or add conditions, "
        "or raise the limit with ",
        Option("max_groundings", "N"),
        " (memory grows with the groundings times the variables)",
    )


def _clause_query(
    clause: list[Lit | Cmp],
    formula: CheckedFormula,
    predicates: Mapping[str, PredicateIndex],
    constants: ConstantTable,
) -> str:
    """SQL for the substitutions under which no literal of the clause is true by evidence."""
    clause = list(dict.fromkeys(clause))  # quantifier expansion repeats literals
    bound: dict[int, str] = {}
    sources: list[str] = []
    conditions: list[str] = []
    later: list[Lit | Cmp] = []
    for number, leaf in enumerate(clause):
        if isinstance(leaf, Lit) and not leaf.positive and not predicates[leaf.predicate].predicate.open_world:
            if all(isinstance(arg, Const) or arg.slot in bound for arg in leaf.args):
                later.append(leaf)  # binds no variable: an EXISTS filter, not one more table to join
                continue
            # !P(t) is not true ⇔ P(t) is true: a join with P's true atoms.
            alias = f"j{number}"
            sources.append(f"{_table(leaf.predicate)} AS {alias}")
            conditions.append(f"{alias}.truth")
            for position, arg in enumerate(leaf.args):
                column = f"{alias}.a{position}"
                if isinstance(arg, Const):
                    conditions.append(f"{column} = {constants.id(arg.value)}")
                elif arg.slot in bound:
                    conditions.append(f"{column} = {bound[arg.slot]}")
                else:
                    bound[arg.slot] = column
        else:
            later.append(leaf)
    for slot, type_name in enumerate(formula.types):
        if slot not in bound:
            alias = f"d{slot}"
            sources.append(f"{_domain(type_name)} AS {alias}")
            bound[slot] = f"{alias}.c"

    def term(arg: Var | Const) -> str:
        return str(constants.id(arg.value)) if isinstance(arg, Const) else bound[arg.slot]

    # Each filter is a (correlated) subquery; a few prune as well as hundreds and cost
    # far less. Leaving some out only admits candidates that numpy evaluation drops.
    for leaf in later[:MAX_CLAUSE_FILTERS]:
        if isinstance(leaf, Cmp):
            conditions.append(f"NOT ({_comparison_sql(leaf.op, term(leaf.left), term(leaf.right), constants)})")
            continue
        index = predicates[leaf.predicate]
        # P(t) is not true ⇔ P(t) is not a true evidence atom; !P(t) ⇔ P(t) is not a false one
        truth = "a.truth" if leaf.positive else "NOT a.truth"
        matches = " AND ".join(f"a.a{position} = {term(arg)}" for position, arg in enumerate(leaf.args))
        if not leaf.positive and not index.predicate.open_world:
            # !P(t) is not true ⇔ P(t) is a true evidence atom
            where = f"{matches} AND a.truth" if matches else "a.truth"
            conditions.append(f"EXISTS (SELECT 1 FROM {_table(leaf.predicate)} AS a WHERE {where})")
            continue
        if not len(index.evidence_keys):
            continue
        where = f"{matches} AND {truth}" if matches else truth
        conditions.append(f"NOT EXISTS (SELECT 1 FROM {_table(leaf.predicate)} AS a WHERE {where})")
    selected = [f"{bound[slot]} AS v{slot}" for slot in range(len(formula.types))] or ["1 AS _one"]
    sql = f"SELECT {', '.join(selected)}"
    if sources:
        sql += f" FROM {', '.join(sources)}"
    if conditions:
        sql += f" WHERE {' AND '.join(conditions)}"
    return sql


def _comparison_sql(op: str, left: str, right: str, constants: ConstantTable) -> str:
    if op in ("=", "!="):
        return f"{left} {'=' if op == '=' else '<>'} {right}"
    if op.startswith("!"):
        return f"NOT {_comparison_sql(op[1:], left, right, constants)}"
    numeric = constants.num_numeric
    return f"({left} < {numeric} AND {right} < {numeric} AND {left} {op} {right})"


# -- leaves ------------------------------------------------------------------


def _leaf_states(
    tree: Node,
    substitutions: np.ndarray,
    predicates: Mapping[str, PredicateIndex],
    constants: ConstantTable,
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    count = substitutions.shape[0]
    states: list[np.ndarray] = []
    keys: list[np.ndarray] = []
    rows: list[np.ndarray] = []

    def column(arg: Var | Const) -> np.ndarray:
        if isinstance(arg, Const):
            return np.full(count, constants.id(arg.value), dtype=np.int64)
        return substitutions[:, arg.slot]

    for leaf in leaves(tree):
        if isinstance(leaf, Cmp):
            left, right = column(leaf.left), column(leaf.right)
            value = _compare_ids(leaf.op, left, right, constants.num_numeric)
            states.append(np.where(value, TRUE, FALSE).astype(np.int8))
            keys.append(np.zeros(count, dtype=np.int64))
            rows.append(np.full(count, -1, dtype=np.int64))
            continue
        index = predicates[leaf.predicate]
        key = index.keys(constants, [column(arg) for arg in leaf.args]) if leaf.args else np.zeros(count, np.int64)
        state, row = index.lookup(key)
        if not leaf.positive:
            state = np.where(state == UNKNOWN, UNKNOWN, np.where(state == TRUE, FALSE, TRUE)).astype(np.int8)
        states.append(state)
        keys.append(key)
        rows.append(row)
    return states, keys, rows


def _compare_ids(op: str, left: np.ndarray, right: np.ndarray, numeric: int) -> np.ndarray:
    if op in ("=", "!="):
        same: np.ndarray = left == right
        return same if op == "=" else ~same
    if op.startswith("!"):
        return ~_compare_ids(op[1:], left, right, numeric)
    both = (left < numeric) & (right < numeric)
    return both & {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]


def _local(constants: ConstantTable, type_name: str, ids: np.ndarray) -> np.ndarray:
    """``constants.local``, without a binary search when the type's ids are one run.

    Constants are numbered in canonical order, so a type whose constants are not
    interleaved with another type's has contiguous ids: the position of ``id`` is
    then ``id - first`` (exactly what the search returns for ids in the run).
    """
    domain = constants.domains[type_name]
    if len(ids) and len(domain) and int(domain[-1]) - int(domain[0]) + 1 == len(domain):
        low, high = int(domain[0]), int(domain[-1])
        if int(ids.min()) >= low and int(ids.max()) <= high:
            return ids - low
    return constants.local(type_name, ids)


def _unique_keys(keys: np.ndarray, space: int) -> np.ndarray:
    """``np.unique(keys)``; by a bitmap when the key space is small (no sort, no hash)."""
    if len(keys) and space <= max(4 * len(keys), 1 << 20) and int(keys.min()) >= 0 and int(keys.max()) < space:
        present = np.zeros(space, dtype=bool)
        present[keys] = True
        return np.flatnonzero(present).astype(np.int64)
    return unique_sorted(keys)


def _number_atoms(grounded: list[_Grounding], predicates: Mapping[str, PredicateIndex]) -> AtomTable:
    """Number the unknown atoms of every grounding: by predicate name, then by key."""
    found: dict[str, list[np.ndarray]] = {}
    for grounding in grounded:
        candidates = grounding.candidates
        for leaf, state, key in zip(leaves(grounding.tree), candidates.states, candidates.keys, strict=True):
            if isinstance(leaf, Lit):
                found.setdefault(leaf.predicate, []).append(key[state == UNKNOWN])
    names = tuple(sorted(found))
    tables = tuple(_unique_keys(np.concatenate(found[name]), predicates[name].num_atoms) for name in names)
    offsets = []
    offset = 0
    for table in tables:
        offsets.append(offset)
        offset += len(table)
    return AtomTable(names, tables, tuple(offsets))
