"""Derived evidence: Datalog rules evaluated over evidence before grounding.

``SameLender(a, b) :- Lender(a, l), Lender(b, l), a != b.`` Rules run stratum by
stratum (negation only on lower strata); recursive strata iterate to a fixpoint.
Derived atoms are closed-world facts whose source is the rule (``row`` 0).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from reasoner.check import CheckedProgram
from reasoner.errors import LimitError
from reasoner.evidence import (
    Relation,
    Source,
    as_objects,
    codes_of,
    concat_relations,
    distinct_by_codes,
    file_sha256,
    is_coded,
    is_text,
    isin,
    isin_rows,
)
from reasoner.limits import MAX_DERIVED_ROWS
from reasoner.syntax import Comparison, Constant, DerivedRule, Literal, Term, Variable

__all__ = ["derive"]



def derive(
    program: CheckedProgram,
    relations: dict[str, Relation],
    sources: list[Source] | None = None,
) -> dict[str, Relation]:
    """Add the relations of derived predicates to ``relations`` (a new dict).

    A derived atom's source is the rule file (appended to ``sources`` with kind
    ``rules``) and its row the line of the first rule that derived it.
    """

    sources = [] if sources is None else sources
    rule_files: dict[str, int] = {}

    result = dict(relations)
    for stratum in program.derived_strata:
        heads = sorted({rule.head.predicate for rule in stratum})
        current: dict[str, pd.DataFrame | None] = dict.fromkeys(heads)  # None: nothing derived yet
        while True:
            changed = False
            for rule in stratum:
                tables = {}
                for name in _body_names(rule):
                    if name not in current:
                        tables[name] = _facts(result, name, program)
                    else:  # a head of this stratum: what it derived so far
                        so_far = current[name]
                        tables[name] = _empty(program.predicates[name].arity) if so_far is None else so_far
                derived = _evaluate(rule, tables)
                name = rule.head.predicate
                file = rule.span.file
                if file not in rule_files:
                    rule_files[file] = len(sources)
                    digest = file_sha256(Path(file)) if Path(file).is_file() else ""
                    sources.append(Source(file, "rules", digest))
                derived["source"] = np.int32(rule_files[file])
                derived["row"] = np.int64(rule.span.line)
                columns = [f"a{i}" for i in range(program.predicates[name].arity)]
                so_far = current[name]
                if so_far is None or so_far.empty:
                    merged = derived  # distinct already (``_evaluate``)
                else:
                    merged = concat_relations([so_far, derived], len(columns))
                    merged = merged.drop_duplicates(subset=columns or None, ignore_index=True)
                if len(merged) > MAX_DERIVED_ROWS:
                    raise LimitError(
                        f"{rule.span.file}:{rule.span.line}: derived predicate '{name}' exceeds "
                        f"{MAX_DERIVED_ROWS:,} facts; add conditions to the rule"
                    )
                if len(merged) != (0 if so_far is None else len(so_far)):
                    changed = True
                current[name] = merged
            recursive = any(
                isinstance(lit, Literal) and lit.atom.predicate in heads for rule in stratum for lit in rule.body
            )
            if not changed or not recursive:
                break
        for name, found in current.items():
            arity = program.predicates[name].arity
            frame = _empty(arity) if found is None else found
            keys = [f"a{i}" for i in range(arity)]
            frame = _sorted(frame, keys) if arity else frame
            data: dict[str, object] = {key: frame[key] for key in keys}
            data["source"] = frame["source"].to_numpy(dtype=np.int32)
            data["row"] = frame["row"].to_numpy(dtype=np.int64)
            data["truth"] = np.ones(len(frame), dtype=bool)
            result[name] = Relation(name, arity, pd.DataFrame(data, index=frame.index, copy=False))
    return result


def _sorted(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """The frame's rows sorted by ``keys`` in ``constants.order_key`` order, renumbered from 0. Its
    rows are distinct in ``keys`` (no ties), so any sort gives the same order: typed columns
    (numbers by value, text by code point, which is the order of its UTF-8 bytes) are sorted by
    Arrow, many times faster than pandas' sort for several keys; other columns by their keys."""
    if len(frame) > 1 and all(frame[key].dtype.kind in "iuf" or is_coded(frame[key]) for key in keys):
        # Codes into a dictionary sorted by code point sort as their text; numbers by value.
        columns = [codes_of(frame[key]) if is_coded(frame[key]) else frame[key].to_numpy() for key in keys]
        order = np.lexsort(columns[::-1])
        return frame.take(order).reset_index(drop=True)
    if len(frame) > 1 and all(frame[key].dtype.kind in "iuf" or is_text(frame[key]) for key in keys):
        table = pa.table({key: pa.array(frame[key]) for key in keys})
        order = pc.sort_indices(table, sort_keys=[(key, "ascending") for key in keys]).to_numpy()
        return frame.take(order).reset_index(drop=True)
    return frame.sort_values(keys, key=_sort_key).reset_index(drop=True)


def _sort_key(column: pd.Series) -> pd.Series:
    """``constants.order_key`` of every value: text sorts as itself when every value is text."""
    from reasoner.constants import order_key

    if column.dtype.kind in "iuf" or is_text(column):  # typed: numbers by value, text by code point
        return column
    if is_coded(column):
        return pd.Series(codes_of(column), index=column.index)  # the dictionary is in code point order
    if pd.api.types.infer_dtype(column, skipna=False) == "string":
        return column
    return column.map(order_key)


def _empty(arity: int) -> pd.DataFrame:
    frame = pd.DataFrame({f"a{i}": pd.Series([], dtype=object) for i in range(arity)})
    frame["source"] = pd.Series([], dtype=np.int32)
    frame["row"] = pd.Series([], dtype=np.int64)
    return frame


def _body_names(rule: DerivedRule) -> set[str]:
    return {literal.atom.predicate for literal in rule.body if isinstance(literal, Literal)}


def _facts(relations: dict[str, Relation], name: str, program: CheckedProgram) -> pd.DataFrame:
    relation = relations.get(name)
    arity = program.predicates[name].arity
    if relation is None:
        return _empty(arity)
    frame = relation.frame
    truth = frame["truth"].to_numpy(dtype=bool)
    if truth.all():  # the relation's frame itself: ``_atom_frame`` takes only its argument columns
        return frame
    return frame.loc[truth, [f"a{i}" for i in range(arity)]]


def _atom_frame(atom_args: tuple[Term, ...], facts: pd.DataFrame) -> pd.DataFrame:
    """Rows of ``facts`` matching the atom's constants and repeated variables, by variable name."""
    mask = np.ones(len(facts), dtype=bool)
    seen: dict[str, str] = {}
    columns: dict[str, str] = {}
    for position, term in enumerate(atom_args):
        column = f"a{position}"
        if isinstance(term, Constant):
            mask &= (facts[column] == term.value).to_numpy(dtype=bool)
        elif term.name in seen:
            left, right = facts[column], facts[seen[term.name]]
            if left.dtype != right.dtype:  # categoricals compare only within one dictionary
                left, right = as_objects(left), as_objects(right)
            mask &= (left == right).to_numpy(dtype=bool)
        else:
            seen[term.name] = column
            columns[column] = term.name
    if mask.all():  # the columns themselves, renamed (no copy)
        frame = pd.DataFrame({name: facts[column] for column, name in columns.items()}, index=facts.index, copy=False)
    else:
        frame = facts.loc[mask, list(columns)].rename(columns=columns)
    if atom_args and len(columns) == len(atom_args):  # all columns kept: distinct already (one row per atom)
        return frame
    return frame.drop_duplicates()


def _evaluate(rule: DerivedRule, tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    positives = [lit for lit in rule.body if isinstance(lit, Literal) and lit.positive]
    negatives = [lit for lit in rule.body if isinstance(lit, Literal) and not lit.positive]
    comparisons = [lit for lit in rule.body if isinstance(lit, Comparison)]
    frame: pd.DataFrame | None = None
    waiting = list(comparisons)
    keep: np.ndarray | None = None  # rows of ``frame`` the semi-joins and comparisons keep, taken at the next join

    def narrow(mask: np.ndarray) -> None:
        nonlocal keep
        keep = mask if keep is None else keep & mask

    def settled() -> pd.DataFrame:
        nonlocal frame, keep
        assert frame is not None
        if keep is not None and not keep.all():
            frame = frame[keep]
        keep = None
        return frame

    for literal in positives:
        part = _atom_frame(literal.atom.args, tables[literal.atom.predicate])
        if frame is None:
            frame = part
        else:
            shared = [name for name in part.columns if name in frame.columns]
            if len(shared) == 1 and len(part.columns) == 1:  # a semi-join: keep the rows whose value it has
                narrow(isin(frame[shared[0]], part[shared[0]]))
            elif len(shared) == len(part.columns) and (
                rows := isin_rows([settled()[name] for name in shared], [part[name] for name in shared])
            ) is not None:  # a semi-join on several coded columns (``NoStronger(b, a)``): the rows it has
                narrow(rows)
            else:
                frame, part = _joinable(settled(), part, shared)
                frame = frame.merge(part, on=shared, how="inner") if shared else frame.merge(part, how="cross")
                _check_rows(rule, frame)
        for comparison in [item for item in waiting if _bound(item, frame)]:  # as soon as its variables are
            narrow(_compare(frame, comparison))
            waiting.remove(comparison)
    assert frame is not None
    _check_rows(rule, frame)
    for comparison in waiting:
        narrow(_compare(frame, comparison))
    frame = settled()
    for literal in negatives:
        part = _atom_frame(literal.atom.args, tables[literal.atom.predicate])
        shared = [name for name in part.columns if name in frame.columns]
        if not shared:
            frame = frame.iloc[0:0] if len(part) else frame
            continue
        marker = part[shared].drop_duplicates().assign(_hit=True)
        frame, marker = _joinable(frame, marker, shared)
        frame = frame.merge(marker, on=shared, how="left")
        frame = frame[frame["_hit"].isna()].drop(columns="_hit")
    head: dict[str, pd.Series | object] = {}
    for position, term in enumerate(rule.head.args):
        head[f"a{position}"] = frame[term.name] if isinstance(term, Variable) else term.value
    out = pd.DataFrame(head, index=frame.index) if head else pd.DataFrame(index=frame.index[:1])
    for column in out.columns:
        if out[column].dtype == object or out[column].dtype.kind == "b":
            out[column] = as_objects(out[column])  # a constant of the rule in every row, or Python values
    if len(out.columns) and distinct_by_codes(out, list(out.columns)):
        return out.reset_index(drop=True)
    return out.drop_duplicates().reset_index(drop=True)


def _check_rows(rule: DerivedRule, frame: pd.DataFrame) -> None:
    if len(frame) > MAX_DERIVED_ROWS:
        raise LimitError(
            f"{rule.span.file}:{rule.span.line}: the body of this rule joins to more than "
            f"{MAX_DERIVED_ROWS:,} rows; add conditions that share variables"
        )


def _joinable(left: pd.DataFrame, right: pd.DataFrame, shared: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The two frames with each shared column of one dtype (evidence columns are typed where
    they can be, ``evidence.typed_constants``; pandas joins int64 with text only as objects)."""
    for name in shared:
        if left[name].dtype != right[name].dtype:
            left = left.assign(**{name: as_objects(left[name])})
            right = right.assign(**{name: as_objects(right[name])})
    return left, right


def _bound(comparison: Comparison, frame: pd.DataFrame) -> bool:
    terms = (comparison.left, comparison.right)
    return all(not isinstance(term, Variable) or term.name in frame.columns for term in terms)


def _values(frame: pd.DataFrame, term: Term) -> pd.Series | object:
    """A variable's column, or a constant as it is (compared as a scalar, not a column of it)."""
    if isinstance(term, Variable):
        return frame[term.name]
    return term.value


def _numbers(values: pd.Series | object) -> np.ndarray | float:
    if isinstance(values, pd.Series):
        if is_coded(values):
            values = as_objects(values)
        numbers: np.ndarray = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        return numbers
    found = pd.to_numeric(pd.Series([values], dtype=object), errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return float(found[0])


def _compare(frame: pd.DataFrame, comparison: Comparison) -> np.ndarray:
    left, right = _values(frame, comparison.left), _values(frame, comparison.right)
    if isinstance(left, pd.Series) and isinstance(right, pd.Series) and left.dtype != right.dtype:
        left, right = as_objects(left), as_objects(right)  # categoricals compare only within one dictionary
    if comparison.op in ("=", "!="):
        if not isinstance(left, pd.Series) and not isinstance(right, pd.Series):
            same = np.full(len(frame), left == right, dtype=bool)
        else:
            same = np.asarray((left == right) if isinstance(left, pd.Series) else (right == left), dtype=bool)
        return same if comparison.op == "=" else ~same
    a, b = _numbers(left), _numbers(right)
    numeric = ~(np.isnan(a) | np.isnan(b))
    with np.errstate(invalid="ignore"):
        result = {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[comparison.op]
    return np.broadcast_to(np.asarray(result & numeric, dtype=bool), (len(frame),)).copy()
