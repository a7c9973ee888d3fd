"""Stage 3: evidence files and tables → ``Evidence`` (relations per predicate, with sources).

Evidence comes from Alchemy/Tuffy ``.db`` files (one ground atom per line,
``!`` for a false atom) and from tables (``.parquet``, ``.csv``) through the
``bind`` statements of the rule files. Every evidence atom keeps its source:
the file and line, or the table and its 1-based row.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from reasoner.check import CheckedFormula, CheckedProgram, Predicate, QueryPattern, predicate_like, where
from reasoner.constants import GROUND_ATOM, ConstantValue, canonical, display
from reasoner.errors import Diagnostic, EvidenceError, RuleError, UsageError, did_you_mean
from reasoner.limits import raise_if_memory_limit_reached
from reasoner.parse import unquote
from reasoner.syntax import Atom, Binding, Column, Condition, Implies, Span, Variable, WeightedFormula

__all__ = [
    "Evidence",
    "MemoryTable",
    "Relation",
    "Source",
    "file_sha256",
    "load_evidence",
    "parse_query_file",
    "parse_query_names",
    "read_table",
    "split_args",
]

_SOFT = re.compile(r"\s*([+-]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)\s+(?=!?\s*[A-Za-z_])")
_ARG = re.compile(r'\s*("(?:[^"\\]|\\.)*"|[^,"]*?)\s*(,|$)')
_INTEGER = re.compile(r"[+-]?\d+\Z")
_FLOAT = re.compile(r"[+-]?(\d+\.\d*|\.\d+|\d+)([eE][+-]?\d+)?\Z")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True, slots=True)
class Source:
    """An input file: its path, kind (``db`` or ``table``) and SHA-256."""

    path: str
    kind: str
    sha256: str


@dataclass(frozen=True, slots=True)
class MemoryTable:
    """A table already in memory (the lending audit's computed tables).

    ``label`` names it in citations ("facts.parquet row 17"), ``sha256`` is the digest
    recorded as its source (the input file's, one of the computed content, or "" for none).
    """

    frame: pd.DataFrame
    label: str
    sha256: str

    @classmethod
    def of(cls, frame: pd.DataFrame, label: str) -> MemoryTable:
        """A computed table, its digest taken over its content (stable across runs)."""
        digest = hashlib.sha256()
        digest.update(",".join(map(str, frame.columns)).encode())
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
        return cls(frame, label, digest.hexdigest())


@dataclass(frozen=True, slots=True)
class Relation:
    """Evidence atoms of one predicate.

    ``frame`` has one column per argument (``a0``, ``a1``, …) of canonical
    constants, ``truth`` (bool), ``source`` (index into ``Evidence.sources``) and
    ``row`` (line in a ``.db`` file or 1-based row of a table; 0 for derived).
    An argument column is columnar where its values allow (``typed_constants``):
    int64 (integers), float64 (floats, none of them integral) or text; else it
    holds the canonical Python values (object).
    """

    predicate: str
    arity: int
    frame: pd.DataFrame

    def columns(self) -> list[str]:
        return [f"a{i}" for i in range(self.arity)]


@dataclass(frozen=True, slots=True)
class Evidence:
    """Evidence relations per predicate; ``soft`` holds soft evidence per predicate: frames with
    the argument columns, ``probability`` (that the atom is true), ``source`` and ``row``."""

    relations: dict[str, Relation]
    sources: tuple[Source, ...]
    skipped: dict[str, int] = field(default_factory=dict)
    soft: dict[str, pd.DataFrame] = field(default_factory=dict)

    def relation(self, predicate: str) -> Relation | None:
        return self.relations.get(predicate)


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, in hex (how every input is identified in sources and manifests)."""
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def parse_constant(text: str) -> ConstantValue:
    """A constant written in an evidence file or query: number, name or quoted string."""
    if text.startswith('"') and text.endswith('"') and len(text) >= 2:
        return unquote(text)
    if _INTEGER.match(text):
        return int(text)
    if _FLOAT.match(text):
        return canonical(float(text))
    return text


def split_args(text: str) -> list[str] | None:
    if not text.strip():
        return []
    if '"' not in text:
        return [part.strip() for part in text.split(",")]
    parts: list[str] = []
    position = 0
    while position <= len(text):
        match = _ARG.match(text, position)
        if match is None:
            return None
        parts.append(match.group(1))
        if match.group(2) == "":
            break
        position = match.end()
    return parts


def _span(file: str, line: int, column: int, width: int, text: str) -> Span:
    return Span(file, line, column, line, column + max(1, width), text)


def parse_db(
    path: Path,
    program: CheckedProgram,
    source_index: int,
    soft: dict[str, list[tuple[tuple[ConstantValue, ...], float, int]]] | None = None,
) -> dict[str, list[tuple[tuple[ConstantValue, ...], bool, int]]]:
    """Atoms of one ``.db`` file, grouped by predicate: (args, truth, line).

    A line ``0.8 Smokes(Anna)`` is soft evidence (Tuffy): it goes to ``soft`` as (args,
    probability that the atom is true, line), ``0.8 !Smokes(Anna)`` with probability 0.2.
    Without ``soft`` such a line is an error."""
    atoms: dict[str, list[tuple[tuple[ConstantValue, ...], bool, int]]] = {}
    errors: list[Diagnostic] = []
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise EvidenceError(f"{file}: not UTF-8 text (byte {error.start})") from None
    except OSError as error:
        raise UsageError(f"{file}: cannot read: {error.strerror}") from None
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("//", 1)[0] if "//" in raw and '"' not in raw else raw
        if not line.strip():
            continue
        prior = _SOFT.match(line)
        if prior is not None:
            line = " " * prior.end() + line[prior.end() :]
        match = GROUND_ATOM.match(line)
        args = split_args(match.group(3)) if match else None
        if match is None or args is None or any(arg == "" for arg in args):
            column = len(line) - len(line.lstrip()) + 1
            errors.append(
                Diagnostic(
                    _span(file, number, column, len(line.strip()), raw),
                    "expected a ground atom such as 'Friends(Anna, Bob)' or '!Smokes(Bob)'",
                )
            )
            continue
        negated, name = match.group(1) == "!", match.group(2)
        predicate = program.predicates.get(name)
        column = match.start(2) + 1
        if predicate is None:
            notes = tuple(predicate_like(name, program.predicates))
            errors.append(
                Diagnostic(
                    _span(file, number, column, len(name), raw), f"unknown predicate '{name}/{len(args)}'", notes=notes
                )
            )
            continue
        if predicate.arity != len(args):
            errors.append(
                Diagnostic(
                    _span(file, number, column, len(name), raw),
                    f"'{name}' takes {predicate.arity} argument{'s' if predicate.arity != 1 else ''}, got {len(args)}",
                    notes=(f"declared as '{name}({', '.join(predicate.types)})' at {where(predicate.span)}",),
                )
            )
            continue
        if predicate.role == "derived":
            errors.append(
                Diagnostic(
                    _span(file, number, column, len(name), raw),
                    f"'{name}' is derived by rules; it cannot also be given as evidence",
                )
            )
            continue
        values = tuple(parse_constant(arg) for arg in args)
        if prior is not None:
            problem = _soft_problem(prior.group(1), predicate, soft is not None)
            if problem:
                errors.append(Diagnostic(_span(file, number, prior.start(1) + 1, len(prior.group(1)), raw), problem))
                continue
            assert soft is not None
            probability = float(prior.group(1))
            soft.setdefault(name, []).append((values, 1 - probability if negated else probability, number))
            continue
        atoms.setdefault(name, []).append((values, not negated, number))
        if len(errors) > 50:
            break
    if errors:
        raise RuleError(errors)
    return atoms


def _soft_problem(text: str, predicate: Predicate, accepted: bool) -> str | None:
    """Why a probability cannot weigh this atom, or None."""
    if not accepted:
        return "a probability before an atom (soft evidence) is not accepted in this file"
    probability = float(text)
    if not 0 < probability < 1:
        return (
            f"a probability must be strictly between 0 and 1, got {text} "
            "(write the atom without it for evidence that is certain)"
        )
    if not predicate.open_world:
        return (
            f"soft evidence needs an open-world predicate: '{predicate.name}' is closed-world "
            "(name it with --query, or declare it without '*' in a Tuffy program)"
        )
    return None


def read_table(path: Path) -> pd.DataFrame:
    """A table from parquet or CSV, or an ``EvidenceError`` that says what is wrong."""
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            return pq.read_table(path).to_pandas()
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except (OSError, ValueError) as error:
        raise_if_memory_limit_reached()
        raise EvidenceError(f"{path}: cannot read as {suffix.lstrip('.')} table: {error}") from None
    except Exception as error:  # pyarrow raises its own error types for corrupt files
        raise_if_memory_limit_reached()
        raise EvidenceError(f"{path}: cannot read as {suffix.lstrip('.')} table: {error}") from None
    return _infer_csv_types(frame)


def _infer_csv_types(frame: pd.DataFrame) -> pd.DataFrame:
    """Numbers stay numbers, codes with leading zeros stay strings."""
    for name in frame.columns:
        column = frame[name]
        present = column.dropna()
        if present.empty:
            continue
        text = present.astype(str)
        leading_zero = text.str.match(r"^[+-]?0\d").any()
        numbers = pd.to_numeric(text, errors="coerce")
        if not leading_zero and numbers.notna().all():
            frame[name] = pd.to_numeric(column, errors="coerce")
    return frame


def load_evidence(
    program: CheckedProgram,
    db_files: Sequence[Path] = (),
    tables: dict[str, Path | MemoryTable] | None = None,
) -> Evidence:
    """Read every evidence file and bound table; evaluate derived rules."""
    tables = dict(tables or {})
    sources: list[Source] = []
    collected: dict[str, list[pd.DataFrame]] = {}
    skipped: dict[str, int] = {}
    soft_frames: dict[str, list[pd.DataFrame]] = {}

    for path in db_files:
        index = len(sources)
        sources.append(Source(str(path), "db", file_sha256(path)))
        soft_atoms: dict[str, list[tuple[tuple[ConstantValue, ...], float, int]]] = {}
        parsed = parse_db(path, program, index, soft_atoms)
        for name, priors in soft_atoms.items():
            arity = program.predicates[name].arity
            frame = pd.DataFrame(
                {f"a{i}": pd.Series([args[i] for args, _, _ in priors], dtype=object) for i in range(arity)}
            )
            frame["probability"] = np.fromiter((p for _, p, _ in priors), dtype=np.float64, count=len(priors))
            frame["source"] = np.int32(index)
            frame["row"] = np.fromiter((line for _, _, line in priors), dtype=np.int64, count=len(priors))
            soft_frames.setdefault(name, []).append(frame)
        for name, atoms in parsed.items():
            arity = program.predicates[name].arity
            frame = pd.DataFrame(
                {f"a{i}": pd.Series([args[i] for args, _, _ in atoms], dtype=object) for i in range(arity)}
            )
            frame["truth"] = np.fromiter((truth for _, truth, _ in atoms), dtype=bool, count=len(atoms))
            frame["source"] = np.int32(index)
            frame["row"] = np.fromiter((line for _, _, line in atoms), dtype=np.int64, count=len(atoms))
            collected.setdefault(name, []).append(frame)

    used_tables = _resolve_tables(program.bindings, tables)
    loaded: dict[str, tuple[int, _Bound]] = {}
    for binding in program.bindings:
        given = used_tables[binding.table]
        if binding.table not in loaded:
            if isinstance(given, MemoryTable):
                loaded[binding.table] = (len(sources), _Bound(given.frame, given.label))
                sources.append(Source(given.label, "table", given.sha256))
            else:
                loaded[binding.table] = (len(sources), _Bound(read_table(given), str(given)))
                sources.append(Source(str(given), "table", file_sha256(given)))
    _encode_texts(program, {name: bound for name, (_index, bound) in loaded.items()})
    for binding in program.bindings:
        index, bound = loaded[binding.table]
        frame, missing = _bind(binding, bound, program, index)
        if missing:
            skipped[f"{binding.span.file}:{binding.span.line}"] = missing
        if binding.probability is not None:
            soft_frames.setdefault(binding.predicate, []).append(frame)
        else:
            collected.setdefault(binding.predicate, []).append(frame)

    relations: dict[str, Relation] = {}
    for name, frames in sorted(collected.items()):
        arity = program.predicates[name].arity
        relations[name] = Relation(name, arity, _deduplicate(name, concat_relations(frames, arity), arity, sources))

    from reasoner.derive import derive

    relations = derive(program, relations, sources)
    soft = {name: pd.concat(frames, ignore_index=True) for name, frames in sorted(soft_frames.items())}
    return Evidence(relations, tuple(sources), skipped, soft)


def _resolve_tables(
    bindings: Iterable[Binding], tables: dict[str, Path | MemoryTable]
) -> dict[str, Path | MemoryTable]:
    wanted = sorted({binding.table for binding in bindings})
    resolved: dict[str, Path | MemoryTable] = {}
    unnamed = [name for name in wanted if name not in tables]
    if unnamed and len(wanted) == 1 and len(tables) == 1:
        # One table given and one table named by the rules: they are the same.
        resolved[wanted[0]] = next(iter(tables.values()))
        return resolved
    for name in wanted:
        if name in tables:
            resolved[name] = tables[name]
            continue
        binding = next(b for b in bindings if b.table == name)
        given = ", ".join(sorted(tables)) or "none"
        raise RuleError(
            [
                Diagnostic(
                    binding.span,
                    f"no table named '{name}' was given (tables given: {given})",
                    notes=(f"pass it as '{name}.parquet' or '--table {name}=PATH'",),
                )
            ]
        )
    return resolved


class _Bound:
    """What the bindings of one table share: condition masks and missing-value masks, worked
    out once per table rather than once per binding (a table is often bound many times), and
    the codes of its bound text columns in the shared dictionary (``_encode_texts``)."""

    def __init__(self, table: pd.DataFrame, path: str) -> None:
        self.table, self.path = table, path
        self.rows = pd.Series(np.arange(1, len(table) + 1, dtype=np.int64))
        self._masks: dict[object, np.ndarray] = {}
        self.codes: dict[str, tuple[np.ndarray, pd.CategoricalDtype]] = {}  # text column → codes (-1: missing)

    def condition(self, condition: Condition, binding: Binding) -> np.ndarray:
        found = self._masks.get(condition)
        if found is None:
            found = self._masks[condition] = _condition_mask(self.table, self.rows, condition, binding, self.path)
        return found

    def values(self, column: Column) -> pd.Series:
        return _column_values(self.table, self.rows, column, self.path)

    def present(self, column: Column, values: pd.Series) -> np.ndarray:
        """Rows where the column has a value (not missing, a finite number)."""
        key = ("present", column)
        found = self._masks.get(key)
        if found is None:
            found = values.notna().to_numpy(dtype=bool).copy()
            if values.dtype.kind == "f":
                found &= np.isfinite(values.to_numpy(dtype=float, na_value=np.nan))
            self._masks[key] = found
        return found


def _bind(binding: Binding, bound: _Bound, program: CheckedProgram, source: int) -> tuple[pd.DataFrame, int]:
    """The binding's atoms (a relation frame), and how many rows it skipped for a missing value."""
    arity = program.predicates[binding.predicate].arity
    mask = np.ones(len(bound.table), dtype=bool)
    for condition in binding.conditions:
        mask &= bound.condition(condition, binding)
    values = [bound.values(column) for column in binding.columns]
    present = mask.copy()
    checked = list(zip(binding.columns, values, strict=True)) if arity else []
    probabilities = None
    if binding.probability is not None:  # a row without a probability gives no atom, like a missing argument
        probabilities = bound.values(binding.probability)
        checked.append((binding.probability, probabilities))
    for column, series in checked:
        present &= bound.present(column, series)
    missing = int(mask.sum() - present.sum())
    keep = np.flatnonzero(present)
    whole = len(keep) == len(bound.table)
    columns: dict[str, object] = {}
    for i in range(arity):
        column = binding.columns[i]
        coded = (
            bound.codes.get(str(column.name))
            if column.name is not None and column.constant is None and probabilities is None
            else None
        )
        if coded is not None:  # text: its codes in the shared dictionary
            codes, dtype = coded
            columns[f"a{i}"] = pd.Categorical.from_codes(codes if whole else codes[keep], dtype=dtype, validate=False)
        else:
            typed = typed_constants(values[i] if whole else pd.Series(values[i].array.take(keep), copy=False))
            # an object column stays a Series: pandas would infer text from an object array of strings
            columns[f"a{i}"] = typed if typed.dtype == object else typed.array
    if probabilities is not None:
        columns["probability"] = _probabilities(binding, bound, program, probabilities, keep)
    else:
        columns["truth"] = np.ones(len(keep), dtype=bool)
    columns["source"] = np.full(len(keep), source, dtype=np.int32)
    columns["row"] = keep + 1
    # arrays and the row index given: pandas neither aligns nor unions the columns' indexes (half the cost)
    return pd.DataFrame(columns, index=pd.RangeIndex(len(keep)), copy=False), missing


def _encode_texts(program: CheckedProgram, loaded: dict[str, _Bound]) -> None:
    """Give every text column that a binding (not one of soft evidence) binds as an argument its
    codes in one dictionary of the strings of all such columns, sorted by code point (``_Bound.codes``).

    The bound relations then hold these columns as categoricals of the one dictionary: repeats,
    the derived rules' joins and sorts, and grounding's interning compare the codes (integers)
    instead of hashing the text again at each step. Each column's text is hashed once here."""
    wanted: dict[tuple[str, str], pd.Series] = {}
    for binding in program.bindings:
        if binding.probability is not None:
            continue
        bound = loaded[binding.table]
        for column in binding.columns:
            if column.constant is not None or column.name is None or (binding.table, str(column.name)) in wanted:
                continue
            values = bound.table.get(str(column.name))
            if isinstance(values, pd.Series) and is_text(values):
                wanted[(binding.table, str(column.name))] = values
    if not wanted:
        return
    encoded = [pc.dictionary_encode(arrow_text(values)) for values in wanted.values()]
    together = pc.dictionary_encode(pa.concat_arrays([part.dictionary for part in encoded]))
    order = np.asarray(pc.array_sort_indices(together.dictionary), dtype=np.int64)  # code point order
    rank = np.empty(len(order), dtype=np.int64)
    rank[order] = np.arange(len(order), dtype=np.int64)
    dictionary = together.dictionary.take(pa.array(order))
    dtype = pd.CategoricalDtype(pd.Index(pd.Series(dictionary, dtype="str")))
    width = np.int32 if len(order) < 2**31 else np.int64
    remap = rank.astype(width)[np.asarray(together.indices, dtype=np.int64)]
    start = 0
    for (table, name), part in zip(wanted, encoded, strict=True):
        ranks = remap[start : start + len(part.dictionary)]
        start += len(part.dictionary)
        if part.indices.null_count:  # a missing value: code -1 (no binding keeps its row)
            ranks = np.append(ranks, np.array([-1], dtype=width))
            codes = ranks[np.asarray(part.indices.fill_null(len(ranks) - 1), dtype=np.int64)]
        else:
            codes = ranks[part.indices.to_numpy()]
        loaded[table].codes[name] = (codes, dtype)


def _probabilities(
    binding: Binding, bound: _Bound, program: CheckedProgram, values: pd.Series, keep: np.ndarray
) -> np.ndarray:
    """The probabilities of a binding's ``with probability COLUMN`` at the kept rows: numbers
    strictly between 0 and 1, on an open-world predicate (else a positioned error)."""
    column = binding.probability
    assert column is not None
    predicate = program.predicates[binding.predicate]
    if not predicate.open_world:
        raise RuleError(
            [
                Diagnostic(
                    column.span,
                    f"soft evidence needs an open-world predicate: '{predicate.name}' is closed-world",
                    notes=("name it with --query, or declare it without '*' in a Tuffy program",),
                )
            ]
        )
    kept = values.iloc[keep]
    numbers: np.ndarray = np.asarray(pd.to_numeric(kept, errors="coerce"), dtype=np.float64)
    wrong = np.flatnonzero(~((numbers > 0) & (numbers < 1)))
    if len(wrong):
        first = int(wrong[0])
        value = kept.iloc[first]
        value = value.item() if isinstance(value, np.generic) else value
        raise EvidenceError(
            f"{bound.path} row {int(keep[first]) + 1}: column '{column.name}' ({binding.span.file}:"
            f"{binding.span.line}: 'with probability {column.name}') is {value!r}; a probability must be a "
            f"number strictly between 0 and 1 ({len(wrong):,} row{'s' if len(wrong) != 1 else ''} like this)"
        )
    return numbers


def _column(table: pd.DataFrame, column: Column, path: str) -> pd.Series:
    name = str(column.name)
    if name in table.columns:
        return table[name]
    notes = list(did_you_mean(name, [str(c) for c in table.columns]))
    listed = ", ".join(str(c) for c in table.columns)
    notes.append(f"columns of {path}: {listed if len(listed) <= 500 else listed[:500] + '…'}")
    raise RuleError([Diagnostic(column.span, f"table {path} has no column '{name}'", notes=tuple(notes))])


def _column_values(table: pd.DataFrame, rows: pd.Series, column: Column, path: str) -> pd.Series:
    """A bound column's values: the table's column, the row numbers (``@row``) or a constant."""
    if column.constant is not None:
        return pd.Series([column.constant] * len(table), dtype=object)
    if column.name is None:
        return rows
    values = _column(table, column, path)
    return values if _numbered_from_zero(values.index) else values.reset_index(drop=True)


def _numbered_from_zero(index: pd.Index) -> bool:
    """Whether an index is 0, 1, 2, … already (``reset_index(drop=True)`` would give the same one)."""
    return isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1


def _condition_mask(
    table: pd.DataFrame, rows: pd.Series, condition: Condition, binding: Binding, path: str
) -> np.ndarray:
    column = _column_values(table, rows, condition.column, path)
    values = [constant.value for constant in condition.values]
    if condition.op in ("=", "in", "!="):
        texts = [value for value in values if isinstance(value, str)]
        if is_text(column) and len(texts) == len(values):  # text against text, by Arrow
            hit = _text_isin(column, texts)
        elif _typed_like(column, values):  # the column's values are their own canonical constants
            hit = column.isin(values).to_numpy(dtype=bool, na_value=False)
        else:
            hit = _canonical_series(column.where(column.notna(), None)).isin(values).to_numpy()
        return np.asarray(~hit & column.notna().to_numpy() if condition.op == "!=" else hit, dtype=bool)
    if isinstance(column.dtype, np.dtype) and column.dtype.kind in "iuf":  # numbers: ``pd.to_numeric`` keeps them
        numbers = column.to_numpy(dtype=float)
    else:
        numbers = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    bound = float(values[0])
    with np.errstate(invalid="ignore"):
        result = {
            "<": numbers < bound,
            "<=": numbers <= bound,
            ">": numbers > bound,
            ">=": numbers >= bound,
        }[condition.op]
    return np.asarray(result, dtype=bool)


def _text_isin(column: pd.Series, values: Sequence[str]) -> np.ndarray:
    """``column.isin(values)`` of a text column against text, by Arrow (a missing value is in no set)."""
    found = pc.is_in(arrow_text(column), value_set=pa.array(list(values), pa.large_string()))
    return np.asarray(found.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def _typed_like(column: pd.Series, values: Sequence[object]) -> bool:
    """Whether ``column.isin(values)`` compares canonical constants: a text column (not object)
    against text, or an integer column against integers."""
    if is_text(column):
        return all(isinstance(value, str) for value in values)
    if column.dtype.kind in "iu":
        return all(isinstance(value, int) and not isinstance(value, bool) for value in values)
    return False


def _canonical_series(values: pd.Series) -> pd.Series:
    """Canonical constant values (ints for integral floats, str for the rest)."""
    kind = values.dtype.kind
    if kind in "iub":
        return pd.Series(values.to_numpy().astype(np.int64).tolist(), dtype=object, index=values.index)
    if kind == "f":
        array = values.to_numpy(dtype=float, na_value=np.nan)
        finite = np.isfinite(array)
        integral = finite & _integral(array)
        out_array = np.empty(len(array), dtype=object)
        out_array[:] = array.tolist()
        if integral.any():
            out_array[integral] = array[integral].astype(np.int64).tolist()
        out_array[~finite] = None
        return pd.Series(out_array, dtype=object, index=values.index)
    if pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        # Strings are their own canonical value: no per-value conversion.
        array = values.to_numpy(dtype=object, na_value=None)
        return pd.Series(array, dtype=object, index=values.index)
    out: list[ConstantValue | None] = []
    for value in values.tolist():
        if value is None or (isinstance(value, float) and value != value):
            out.append(None)
        else:
            out.append(canonical(value))
    return pd.Series(out, dtype=object, index=values.index)


def typed_constants(values: pd.Series) -> pd.Series:
    """Present values as canonical constants, kept columnar when one dtype holds them exactly:
    integers (and integral floats) as int64, floats none of which is integral as float64, text
    as it is; anything else as canonical Python values (``_canonical_series``)."""
    kind = values.dtype.kind
    if kind in "iub":
        return pd.Series(values.to_numpy().astype(np.int64), index=values.index)
    if kind == "f":
        array = values.to_numpy(dtype=float, na_value=np.nan)
        if np.isfinite(array).all():
            integral = _integral(array)
            if integral.all():
                return pd.Series(array.astype(np.int64), index=values.index)
            if not integral.any():
                return pd.Series(array, index=values.index)
    elif is_text(values) and not values.isna().any():
        return values
    return _canonical_series(values)


def _integral(array: np.ndarray) -> np.ndarray:
    """Which floats are canonically integers (``constants.canonical``): integral and in int64's range."""
    with np.errstate(invalid="ignore"):
        return np.asarray((np.floor(array) == array) & (array >= -(2.0**63)) & (array < 2.0**63), dtype=bool)


def is_text(values: pd.Series) -> bool:
    """Whether a column is Arrow text (pandas' ``str``; every string in it is valid UTF-8)."""
    return isinstance(values.dtype, pd.StringDtype) and values.dtype.storage == "pyarrow"


def is_coded(values: pd.Series) -> bool:
    """Whether a column is text held as codes into a dictionary of text (a categorical of ``str``
    categories: the bound text columns, ``_encode_texts``)."""
    dtype = values.dtype
    return isinstance(dtype, pd.CategoricalDtype) and isinstance(dtype.categories.dtype, pd.StringDtype)


def codes_of(values: pd.Series) -> np.ndarray:
    """The codes of a coded column (``is_coded``) as int64."""
    return np.asarray(values.array.codes, dtype=np.int64)


def arrow_text(values: pd.Series) -> pa.Array:
    """A text column as one Arrow ``large_string`` array (no copy when it is one already)."""
    array = pa.array(values)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return array if array.type == pa.large_string() else array.cast(pa.large_string())


def as_objects(values: pd.Series) -> pd.Series:
    """A column of constants as canonical Python values (object dtype)."""
    if values.dtype == object:
        return values
    return pd.Series(values.to_numpy(dtype=object), index=values.index, dtype=object)


def isin(values: pd.Series, among: pd.Series) -> np.ndarray:
    """``values.isin(among)`` as a bool array; text against text with Arrow (pandas converts
    Arrow text to Python strings for it, 20 times slower), a dtype against another as values."""
    if is_text(values) and is_text(among):
        found = pc.is_in(arrow_text(values), value_set=arrow_text(among).unique())
        return np.asarray(found.to_numpy(zero_copy_only=False), dtype=bool)
    if is_coded(values) and is_coded(among) and values.dtype == among.dtype:  # one dictionary: by code
        present = np.zeros(len(values.dtype.categories) + 1, dtype=bool)
        present[codes_of(among)] = True  # a missing value (-1) marks the last place, which no code reads
        present[-1] = False
        found_codes: np.ndarray = present[codes_of(values)]
        return found_codes
    if values.dtype != among.dtype:
        values, among = as_objects(values), as_objects(among)
    return np.asarray(values.isin(among).to_numpy(dtype=bool))


def isin_rows(values: list[pd.Series], among: list[pd.Series]) -> np.ndarray | None:
    """Whether each row of the columns ``values`` (side by side) is a row of the columns ``among``,
    as a bool array, when every pair of columns is coded in one dictionary: each row's codes as
    one mixed-radix integer, looked up by hashing (a semi-join on several columns without
    pandas' merge). None when a column is not coded so, or the integer would not fit in 63 bits."""
    if not values or len(values) != len(among):
        return None
    for left, right in zip(values, among, strict=True):
        # the same categories in the same order (an unordered dtype equals one of its categories reordered)
        if not (is_coded(left) and is_coded(right) and left.dtype.categories.equals(right.dtype.categories)):
            return None
    radix = len(values[0].dtype.categories) + 1  # code -1 (missing) is digit 0
    if any(len(column.dtype.categories) + 1 != radix for column in values) or radix ** len(values) >= 2**63:
        return None

    def keys(columns: list[pd.Series]) -> np.ndarray:
        key = np.zeros(len(columns[0]), dtype=np.int64)
        for column in columns:
            key = key * radix + (codes_of(column) + 1)
        return key

    # pandas hashes the integers (np.isin sorts both: 5-10 times slower at 10,000 against 50,000)
    return np.asarray(pd.Series(keys(values), copy=False).isin(keys(among)).to_numpy(), dtype=bool)


def concat_relations(frames: list[pd.DataFrame], arity: int) -> pd.DataFrame:
    """Relation frames one after the other; a column whose dtype differs between them as Python
    values (concatenating int64 with float64 would turn integers into floats)."""
    if len(frames) == 1:
        return frames[0]
    for position in range(arity):
        column = f"a{position}"
        if len({str(frame[column].dtype) for frame in frames}) > 1:
            frames = [frame.assign(**{column: as_objects(frame[column])}) for frame in frames]
    return pd.concat(frames, ignore_index=True)


def _deduplicate(name: str, frame: pd.DataFrame, arity: int, sources: list[Source]) -> pd.DataFrame:
    """One row per atom (first source kept); an atom both true and false is an error."""
    keys = [f"a{i}" for i in range(arity)]
    if len(frame) <= 1:
        return frame  # nothing to repeat
    if keys and distinct_by_codes(frame, keys):
        return frame  # distinct in its coded columns alone: no repeat, no conflict
    if keys and len(frame) <= _FEW_ROWS and all(_kind_of_values(frame[key]) for key in keys):
        atoms = list(zip(*(frame[key].tolist() for key in keys), strict=True))
        if len(set(atoms)) == len(atoms):  # distinct (the usual case): no pandas hashing of a few rows
            return frame
    if not keys:
        repeated = np.arange(len(frame)) > 0
    elif len(keys) == 1:
        repeated = frame[keys[0]].duplicated(keep="first").to_numpy()
    else:
        repeated = frame.duplicated(subset=keys, keep="first").to_numpy()
    if not repeated.any():
        return frame  # one row per atom already: no conflict either
    truth = frame["truth"].to_numpy(dtype=bool)
    if truth.all() or not truth.any():  # every row says the same: no atom is both true and false
        return frame[~repeated].reset_index(drop=True)
    conflict = frame.groupby(keys, sort=False)["truth"].nunique() if keys else frame["truth"].agg(["nunique"])
    if (conflict > 1).any():
        bad = conflict[conflict > 1].index[0] if keys else ()
        bad_tuple = bad if isinstance(bad, tuple) else (bad,)
        values = ", ".join(display(v.item() if hasattr(v, "item") else v) for v in bad_tuple)
        same = np.ones(len(frame), dtype=bool)
        for key, value in zip(keys, bad_tuple, strict=True):
            same &= (frame[key] == value).to_numpy(dtype=bool)
        said = [_where(sources, frame, int(np.flatnonzero(same & (truth == value))[0])) for value in (True, False)]
        raise EvidenceError(
            f"evidence says both {name}({values}) ({said[0]}) and !{name}({values}) ({said[1]}); "
            "an atom is either true or false: remove one of them"
        )
    return frame[~repeated].reset_index(drop=True)


def distinct_by_codes(frame: pd.DataFrame, keys: list[str]) -> bool:
    """Whether the rows are distinct already in the coded columns (``is_coded``) among ``keys``,
    and so in all of ``keys``: the codes as one integer (mixed radix) hashed once. False when no
    column is coded, or the codes may not be so combined (then nothing is known)."""
    combined = np.zeros(len(frame), dtype=np.int64)
    space, used = 1, False
    for key in keys:
        column = frame[key]
        if not is_coded(column):
            continue
        size = len(column.dtype.categories)
        if space * size >= 2**62:
            break
        codes = codes_of(column)
        if len(codes) and int(codes.min()) < 0:
            return False  # a missing value
        combined = combined * size + codes
        space, used = space * size, True
    if not used:
        return False
    if len(combined) < 2 or bool((combined[1:] > combined[:-1]).all()):  # in order already
        return True
    if len(combined) > 1 << 19:  # a sort is faster than a hash table this large
        ordered = np.sort(combined)
        return bool((ordered[1:] != ordered[:-1]).all())
    return len(pd.unique(combined)) == len(combined)


_FEW_ROWS = 2048  # up to this many rows, a relation's atoms are checked for repeats as Python tuples


def _kind_of_values(values: pd.Series) -> bool:
    """Whether a column's Python values (``tolist``) are equal exactly when pandas finds them equal:
    integers, text and floats without NaN (an argument column never has a missing value)."""
    if values.dtype.kind in "iu" or is_text(values) or is_coded(values):
        return True
    return values.dtype.kind == "f" and not bool(np.isnan(values.to_numpy()).any())


def _where(sources: list[Source], frame: pd.DataFrame, position: int) -> str:
    """Where an evidence row came from: ``file.db:3`` or ``table row 7``."""
    source = sources[int(frame["source"].iloc[position])]
    row = int(frame["row"].iloc[position])
    return f"{source.path}:{row}" if source.kind == "db" else f"{source.path} row {row}"


def parse_query_names(text: str) -> list[QueryPattern]:
    """``--query P,Q`` → patterns for whole predicates."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    for name in names:
        if not _NAME.match(name):
            raise UsageError(f"--query: '{name}' is not a predicate name")
    return [QueryPattern(name) for name in names]


def parse_query_file(path: Path) -> tuple[list[QueryPattern], dict[str, Span]]:
    """A Tuffy ``query.db``: query predicates (``Cancer(x)``, ``Cancer``) or atoms (``Cancer(Bob)``)."""
    patterns: list[QueryPattern] = []
    spans: dict[str, Span] = {}
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"{file}: cannot read query file: {error}") from None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("//", 1)[0].strip()
        if not line:
            continue
        column = raw.index(line[0]) + 1
        if _NAME.match(line):
            patterns.append(QueryPattern(line))
            spans.setdefault(line, _span(file, number, column, len(line), raw))
            continue
        match = GROUND_ATOM.match(line)
        args = split_args(match.group(3)) if match else None
        if match is None or args is None or match.group(1):
            raise RuleError(
                [
                    Diagnostic(
                        _span(file, number, column, len(line), raw),
                        "expected a query predicate or atom such as 'Cancer(x)'",
                    )
                ]
            )
        name = match.group(2)
        values: list[ConstantValue | None] = []
        for arg in args:
            values.append(None if re.match(r"[a-z]", arg) and not arg.startswith('"') else parse_constant(arg))
        pattern_args = None if all(value is None for value in values) else tuple(values)
        patterns.append(QueryPattern(name, pattern_args))
        spans.setdefault(name, _span(file, number, column, len(name), raw))
    return patterns, spans


SOFT_WEIGHT_TYPE = "soft_evidence_weight"


def soft_weight(probability: float) -> float:
    """The weight of the unit formula that soft evidence ``p`` puts on its atom: ``log(p / (1 - p))``."""
    return float(np.log(probability) - np.log1p(-probability))


def with_soft_evidence(program: CheckedProgram, evidence: Evidence) -> tuple[CheckedProgram, Evidence]:
    """The program and evidence with soft evidence made formulas.

    Soft evidence ``p`` on ``P(a, b)`` (an open-world atom) becomes the evidence atom
    ``P_soft_evidence(a, b, w)``, ``w = log(p / (1 - p))``, and one data-weighted formula per
    predicate, ``w: P_soft_evidence(x0, x1, w) => P(x0, x1)``: each soft atom adds a unit formula
    ``P(a, b)`` of weight ``w`` (rounded to 4 decimals, as every weight from the data), whose
    proof cites the line or row that gave it. Two probabilities on one atom add their weights;
    an atom given both as evidence and with a probability is an error.
    """
    if not evidence.soft:
        return program, evidence
    predicates = dict(program.predicates)
    formulas = list(program.formulas)
    relations = dict(evidence.relations)
    weight_type = SOFT_WEIGHT_TYPE
    while weight_type in program.types:
        weight_type += "_"
    for name, frame in evidence.soft.items():
        predicate = program.predicates[name]
        arity = predicate.arity
        keys = [f"a{i}" for i in range(arity)]
        hard = evidence.relations.get(name)
        if hard is not None and len(hard.frame) and keys:
            hard_frame = hard.frame.assign(
                **{key: as_objects(hard.frame[key]) for key in keys if hard.frame[key].dtype != frame[key].dtype}
            )
            soft_frame = frame.assign(
                **{key: as_objects(frame[key]) for key in keys if hard.frame[key].dtype != frame[key].dtype}
            )
            both = soft_frame.reset_index().merge(hard_frame.reset_index(), on=keys, suffixes=("", "_hard"))
            if len(both):
                first = both.iloc[0]
                soft_place = _where(list(evidence.sources), frame, int(first["index"]))
                hard_place = _where(list(evidence.sources), hard.frame, int(first["index_hard"]))
                values = ", ".join(display(first[key]) for key in keys)
                raise EvidenceError(
                    f"{name}({values}) is given as evidence ({hard_place}) and with a probability ({soft_place}); "
                    "remove one of them"
                )
        soft_name = f"{name}_soft_evidence"
        while soft_name in predicates:
            soft_name += "_"
        source = evidence.sources[int(frame["source"].iloc[0])]
        span = Span(source.path, int(frame["row"].iloc[0]), 1, int(frame["row"].iloc[0]), 1)
        predicates[soft_name] = Predicate(soft_name, (*predicate.types, weight_type), "evidence", span)
        names = [f"x{i}" for i in range(arity)]
        variables = tuple(Variable(n, span) for n in names)
        weight = Variable("w", span)
        body = Atom(soft_name, (*variables, weight), span)
        head = Atom(name, variables, span)
        statement = WeightedFormula(None, Implies(body, head, span), f"w: {body} => {head}", span, weight_variable="w")
        formulas.append(CheckedFormula(len(formulas), statement, (*names, "w"), (*predicate.types, weight_type)))
        columns: dict[str, object] = {key: typed_constants(frame[key].reset_index(drop=True)) for key in keys}
        places = Decimal("0.0001")  # as every weight from the data (the constant shows what is used)
        weights = [float(Decimal(repr(soft_weight(p))).quantize(places)) for p in frame["probability"].tolist()]
        columns[f"a{arity}"] = typed_constants(pd.Series([canonical(w) for w in weights], dtype=object))
        columns["truth"] = np.ones(len(frame), dtype=bool)
        columns["source"] = frame["source"].to_numpy(dtype=np.int32)
        columns["row"] = frame["row"].to_numpy(dtype=np.int64)
        relations[soft_name] = Relation(soft_name, arity + 1, pd.DataFrame(columns))
    checked = replace(program, predicates=predicates, formulas=tuple(formulas))
    return checked, replace(evidence, relations=relations)
