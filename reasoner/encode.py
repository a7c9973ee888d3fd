"""Stage 5: ``GroundNetwork`` → ``Encoding``: weighted partial MaxSAT, split in components.

Weights are scaled once to exact integers (``scale`` is a power of ten). Each
ground formula is encoded exactly, never split with divided weights: a clause
becomes one soft clause; any other formula ``F`` gets an auxiliary variable
``t`` with hard clauses ``t → F`` (Plaisted–Greenbaum, valid because the tree
is in negation normal form) and one soft unit clause ``t`` carrying the whole
weight. Hard formulas are asserted directly. Zero weights never reach the
solver (pysat treats weight 0 as hard).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import overload

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from reasoner.errors import LimitError
from reasoner.ground import FALSE, TRUE, UNKNOWN, GroundBlock, GroundNetwork
from reasoner.intern import unique_sorted
from reasoner.limits import MAX_WEIGHT, MAX_WEIGHT_PLACES
from reasoner.normalize import Cmp, Junction, Lit, Node, Truth

__all__ = ["Component", "Components", "Encoding", "encode", "local_clauses"]



@dataclass(frozen=True, slots=True)
class Component:
    """One connected part of the network: its clauses (indices) and variables (sorted ids)."""

    index: int
    clauses: np.ndarray
    variables: np.ndarray


def local_clauses(encoding: Encoding, component: Component) -> tuple[np.ndarray, np.ndarray]:
    """The component's clauses over its own variables: ``(offsets, literals)`` where clause ``i``
    is ``literals[offsets[i]:offsets[i + 1]]`` and variable ``v`` of the encoding is numbered by
    its 1-based position in ``component.variables`` (negative when negated)."""
    clauses = component.clauses
    starts, ends = encoding.offsets[clauses], encoding.offsets[clauses + 1]
    lengths = ends - starts
    offsets = np.zeros(len(clauses) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    positions = np.repeat(starts - offsets[:-1], lengths) + np.arange(offsets[-1])
    literals = encoding.literals[positions]
    local = np.searchsorted(component.variables, np.abs(literals)) + 1
    return offsets, np.where(literals > 0, local, -local).astype(np.int64)


@dataclass(frozen=True, slots=True)
class Components(Sequence[Component]):
    """The components as arrays (one Python object per component cost more than encoding):
    component ``i`` has clauses ``clauses[clause_bounds[i]:clause_bounds[i + 1]]`` and
    variables ``variables[variable_bounds[i]:variable_bounds[i + 1]]``, each in order."""

    clause_bounds: np.ndarray
    clauses: np.ndarray
    variable_bounds: np.ndarray
    variables: np.ndarray

    def __len__(self) -> int:
        return len(self.clause_bounds) - 1

    @overload
    def __getitem__(self, index: int) -> Component: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Component]: ...

    def __getitem__(self, index: int | slice) -> Component | Sequence[Component]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        index %= len(self)
        clauses = self.clauses[self.clause_bounds[index] : self.clause_bounds[index + 1]]
        members = self.variables[self.variable_bounds[index] : self.variable_bounds[index + 1]]
        return Component(index, clauses, members)

    def sizes(self) -> np.ndarray:
        """Variables per component."""
        return np.diff(self.variable_bounds)

    @staticmethod
    def of(components: Sequence[Component]) -> Components:
        """Components given one by one, as arrays."""

        def bounds(parts: list[np.ndarray]) -> np.ndarray:
            return np.concatenate([[0], np.cumsum([len(part) for part in parts], dtype=np.int64)]).astype(np.int64)

        clauses = [np.asarray(component.clauses, dtype=np.int64) for component in components]
        members = [np.asarray(component.variables, dtype=np.int64) for component in components]
        empty = np.empty(0, dtype=np.int64)
        return Components(
            bounds(clauses), np.concatenate(clauses) if clauses else empty,
            bounds(members), np.concatenate(members) if members else empty,
        )


@dataclass(frozen=True, slots=True)
class Encoding:
    """All clauses in CSR form, with per-clause weight (0 = hard) and ground formula.

    Ground formula ``g`` is row ``formula_row[g]`` of block ``formula_block[g]``;
    ``formula_weight[g]`` is its scaled weight (0 for hard formulas).
    """

    num_atoms: int
    num_vars: int
    offsets: np.ndarray
    literals: np.ndarray
    weights: np.ndarray
    formula_of: np.ndarray
    formula_block: np.ndarray
    formula_row: np.ndarray
    formula_weight: np.ndarray
    scale: int
    fixed_cost: int
    violated_hard: tuple[tuple[int, int], ...]
    components: Components

    @property
    def num_clauses(self) -> int:
        return len(self.offsets) - 1

    def clause(self, index: int) -> np.ndarray:
        return self.literals[self.offsets[index] : self.offsets[index + 1]]


def weight_scale(weights: list[Decimal]) -> int:
    """The smallest power of ten that makes every weight an integer."""
    places = 0
    for weight in weights:
        exponent = weight.normalize().as_tuple().exponent
        if isinstance(exponent, int) and exponent < 0:
            places = max(places, -exponent)
    if places > MAX_WEIGHT_PLACES:
        raise LimitError(
            f"a weight has {places} decimal places; at most {MAX_WEIGHT_PLACES} are supported: round the weights"
        )
    scale: int = 10**places
    return scale


def encode(network: GroundNetwork) -> Encoding:
    """Encode every open ground formula; collect evidence-violated ones; find components."""
    soft = [block.weight for block in network.blocks if block.weight is not None]
    scale = weight_scale(soft)
    builder = _Builder(network.atoms.size)
    fixed_cost = 0
    violated_hard: list[tuple[int, int]] = []
    formula_block: list[np.ndarray] = []
    formula_row: list[np.ndarray] = []
    formula_weight: list[np.ndarray] = []
    next_formula = 0
    for block_index, block in enumerate(network.blocks):
        scaled = 0 if block.weight is None else int(block.weight * scale)
        if scaled >= MAX_WEIGHT:
            raise LimitError(f"{block.formula.span}: weight {block.weight} is too large")
        violated = np.flatnonzero(block.root_state == FALSE)
        if block.hard:
            violated_hard.extend((block_index, int(row)) for row in violated)
        else:
            fixed_cost += scaled * len(violated)
        rows = np.flatnonzero(block.root_state == UNKNOWN)
        if not len(rows):
            continue
        ids = np.arange(next_formula, next_formula + len(rows), dtype=np.int64)
        next_formula += len(rows)
        formula_block.append(np.full(len(rows), block_index, dtype=np.int32))
        formula_row.append(rows.astype(np.int64))
        formula_weight.append(np.full(len(rows), scaled, dtype=np.int64))
        builder.block(block, rows, ids, scaled)
    offsets, literals, weights, formula_of = builder.finish()
    components = _components(builder.next_var - 1, offsets, literals)
    return Encoding(
        num_atoms=network.atoms.size,
        num_vars=builder.next_var - 1,
        offsets=offsets,
        literals=literals,
        weights=weights,
        formula_of=formula_of,
        formula_block=_concat(formula_block, np.int32),
        formula_row=_concat(formula_row, np.int64),
        formula_weight=_concat(formula_weight, np.int64),
        scale=scale,
        fixed_cost=fixed_cost,
        violated_hard=tuple(violated_hard),
        components=components,
    )


def _concat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    return np.concatenate(parts).astype(dtype) if parts else np.empty(0, dtype=dtype)


class _Builder:
    """Collects clause groups: padded literal matrices with their ground formula and weight."""

    def __init__(self, num_atoms: int) -> None:
        self.next_var = num_atoms + 1
        self.groups: list[tuple[np.ndarray, np.ndarray, int]] = []

    def emit(self, matrix: np.ndarray, formulas: np.ndarray, weight: int) -> None:
        if matrix.shape[0]:
            self.groups.append((matrix, formulas, weight))

    def block(self, block: GroundBlock, rows: np.ndarray, ids: np.ndarray, weight: int) -> None:
        tree = block.tree
        states = [state[rows] for state in block.leaf_states]
        atoms = [atom[rows] for atom in block.leaf_atoms]
        encoder = _TreeEncoder(self, tree, states, atoms, ids)
        everything = np.ones(len(rows), dtype=bool)
        if block.hard:
            encoder.assert_true(encoder.root, everything)
        else:
            encoder.soft(encoder.root, weight)

    def finish(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        lengths: list[np.ndarray] = []
        literals: list[np.ndarray] = []
        weights: list[np.ndarray] = []
        formulas: list[np.ndarray] = []
        for matrix, formula_ids, weight in self.groups:
            mask = matrix != 0
            lengths.append(mask.sum(axis=1))
            literals.append(matrix[mask])
            weights.append(np.full(matrix.shape[0], weight, dtype=np.int64))
            formulas.append(formula_ids)
        if not lengths:
            empty = np.empty(0, dtype=np.int64)
            return np.zeros(1, dtype=np.int64), empty, empty, empty
        length = np.concatenate(lengths)
        offsets = np.zeros(len(length) + 1, dtype=np.int64)
        np.cumsum(length, out=offsets[1:])
        return offsets, np.concatenate(literals).astype(np.int64), np.concatenate(weights), np.concatenate(formulas)


class _IndexedNode:
    __slots__ = ("children", "kind", "leaf", "positive")

    def __init__(
        self, kind: str, leaf: int = -1, positive: bool = True, children: tuple[_IndexedNode, ...] = ()
    ) -> None:
        self.kind = kind
        self.leaf = leaf
        self.positive = positive
        self.children: tuple[_IndexedNode, ...] = children


class _TreeEncoder:
    """Vectorised Plaisted–Greenbaum encoding of one block's tree over its open rows."""

    def __init__(
        self, builder: _Builder, tree: Node, states: list[np.ndarray], atoms: list[np.ndarray], ids: np.ndarray
    ) -> None:
        self.builder = builder
        self.states = states
        self.atoms = atoms
        self.ids = ids
        self.count = len(ids)
        counter = iter(range(len(states)))
        self.root = self._index(tree, counter)
        self.state_cache: dict[int, np.ndarray] = {}

    def _index(self, node: Node, counter: object) -> _IndexedNode:
        if isinstance(node, Lit):
            return _IndexedNode("leaf", next(counter), node.positive)  # type: ignore[call-overload]
        if isinstance(node, Cmp):
            return _IndexedNode("leaf", next(counter), True)  # type: ignore[call-overload]
        if isinstance(node, Truth):
            return _IndexedNode("true" if node.value else "false")
        assert isinstance(node, Junction)
        return _IndexedNode(node.kind, children=tuple(self._index(child, counter) for child in node.children))

    def state(self, node: _IndexedNode) -> np.ndarray:
        cached = self.state_cache.get(id(node))
        if cached is not None:
            return cached
        if node.kind == "leaf":
            result = self.states[node.leaf]
        elif node.kind in ("true", "false"):
            result = np.full(self.count, TRUE if node.kind == "true" else FALSE, dtype=np.int8)
        else:
            stacked = np.stack([self.state(child) for child in node.children])
            if node.kind == "and":
                result = np.where((stacked == FALSE).any(0), FALSE, np.where((stacked == TRUE).all(0), TRUE, UNKNOWN))
            else:
                result = np.where((stacked == TRUE).any(0), TRUE, np.where((stacked == FALSE).all(0), FALSE, UNKNOWN))
            result = result.astype(np.int8)
        self.state_cache[id(node)] = result
        return result

    def literal(self, node: _IndexedNode, needed: np.ndarray) -> np.ndarray:
        """A literal per row that implies the node (valid where ``needed``; 0 elsewhere)."""
        out = np.zeros(self.count, dtype=np.int64)
        if node.kind == "leaf":
            atom = self.atoms[node.leaf]
            out[needed] = atom[needed] if node.positive else -atom[needed]
            return out
        open_children = [child for child in node.children if True]
        unknown = np.stack([self.state(child) == UNKNOWN for child in open_children])
        count = unknown.sum(axis=0)
        single = needed & (count == 1)
        several = needed & (count >= 2)
        child_literals = [self.literal(child, (single | several) & unknown[j]) for j, child in enumerate(open_children)]
        stacked = np.stack(child_literals)
        if single.any():
            out[single] = stacked[:, single].sum(axis=0)  # exactly one nonzero per column
        if several.any():
            rows = np.flatnonzero(several)
            aux = np.arange(self.builder.next_var, self.builder.next_var + len(rows), dtype=np.int64)
            self.builder.next_var += len(rows)
            out[rows] = aux
            if node.kind == "and":
                for j in range(len(open_children)):
                    take = unknown[j, rows]
                    if take.any():
                        matrix = np.column_stack([-aux[take], stacked[j, rows[take]]])
                        self.builder.emit(matrix, self.ids[rows[take]], 0)
            else:
                matrix = np.column_stack([-aux, stacked[:, rows].T])
                self.builder.emit(matrix, self.ids[rows], 0)
        return out

    def clause(self, node: _IndexedNode, needed: np.ndarray) -> np.ndarray:
        """Rows × literals of a clause equivalent to the node (an OR keeps its children)."""
        if node.kind == "or":
            unknown = [self.state(child) == UNKNOWN for child in node.children]
            columns = [self.literal(child, needed & open_) for child, open_ in zip(node.children, unknown, strict=True)]
            stacked: np.ndarray = np.column_stack(columns)[needed]
            return stacked
        single: np.ndarray = self.literal(node, needed)[needed][:, None]
        return single

    def soft(self, root: _IndexedNode, weight: int) -> None:
        needed = self.state(root) == UNKNOWN
        self.builder.emit(self.clause(root, needed), self.ids[needed], weight)

    def assert_true(self, node: _IndexedNode, rows: np.ndarray) -> None:
        needed = rows & (self.state(node) == UNKNOWN)
        if not needed.any():
            return
        if node.kind == "and":
            for child in node.children:
                self.assert_true(child, needed)
            return
        self.builder.emit(self.clause(node, needed), self.ids[needed], 0)


def _components(num_vars: int, offsets: np.ndarray, literals: np.ndarray) -> Components:
    num_clauses = len(offsets) - 1
    if num_clauses == 0:
        return Components.of([])
    variables = np.abs(literals)
    lengths = np.diff(offsets)
    first = np.repeat(variables[offsets[:-1]], lengths)
    graph = coo_matrix(
        (np.ones(len(variables), dtype=np.int8), (first, variables)), shape=(num_vars + 1, num_vars + 1)
    )
    _count, labels = connected_components(graph, directed=False)
    clause_bounds, clauses = _group(labels[variables[offsets[:-1]]], np.arange(num_clauses, dtype=np.int64))
    used = unique_sorted(variables)
    variable_bounds, members = _group(labels[used], used)
    return Components(clause_bounds, clauses, variable_bounds, members)


def _group(labels: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Items grouped by label (groups in label order, items in their original order): the
    bounds of each group in the grouped items, and the grouped items."""
    order = np.argsort(labels, kind="stable")
    boundaries = np.flatnonzero(np.diff(labels[order])) + 1
    bounds = np.concatenate([[0], boundaries, [len(order)]]).astype(np.int64)
    return bounds, items[order].astype(np.int64)
