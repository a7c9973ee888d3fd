"""Explanations: a partition's findings → JSON records; every partition's records → ``explanations.parquet``.

    Findings + PartitionTables of one partition ──render──▶ Rendered (one JSON object per finding)
    Rendered of every partition, spilled to disk ──Explanations.batches──▶ explanations.parquet

A partition renders its own findings (in the worker that found them, so the work is spread
and the proofs never travel or pile up in the main process), citing rows of its own tables:
"denial_odds row 3", "pairs row 17", "facts.parquet row 5" (its N-th application). Its
application records travel as an Arrow IPC stream compressed with zstd (about a tenth of the
JSON text) and are spilled to disk as they are, by the worker process that rendered them
(``spill``; the main process does it for results audited in it or on a Dask cluster). Once
every partition is back, the numbers of the whole register's tables are known (a partition's
rows of a table come after those of the partitions before it); ``Explanations.batches`` reads
each partition's records back from disk and renumbers the citations as they are written out
(``outputs.write``). Only the ``"source"`` values of proofs, citations and records are
citations: a value elsewhere that happens to read "X row N" (an application id, a
substitution) is left alone, and so is a JSON-escaped quote.

An application record is spilled already cut at its citations' row numbers (``_cut``): the
texts between them, and per citation its table (a code) and row within the partition. The
worker marks each cited row as it writes the record (``_ProofText``: a citation's text is made
once, however many formulas cite it) and cuts the records in Arrow, so the main process only
converts the rows (arrays) and joins the pieces (``_joined``, in Arrow): no regular expression
and no Python string per record. A lender's record (a few per partition) is renumbered by a
regular expression on its text (``Numbering.renumber``).

The pair table is ordered by comparison (``audit.toml`` order), then lender, compared
applicant (id as text) and rank (``tables.audit_tables``), so a partition's pairs of one
comparison are one run of the whole table's rows.

Records, in order: flagged lenders by risk (as ``lenders.parquet``), each with its proof,
the proofs of its violations and its rows of the statistics tables; then application
findings by lender, application id and kind (as ``applications.parquet``).
"""

from __future__ import annotations

import gc
import json
import math
import os
import pickle
import re
import shutil
import tempfile
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

try:
    import fcntl
except ImportError:  # Windows: abandoned directories are left to the system
    fcntl = None  # type: ignore[assignment]

from reasoner.errors import LimitError
from reasoner.explain import EvidenceCitation, GroundFormulaProof, Proof, ProofColumns, decimal_json
from reasoner.lending.audit.score import Findings, positions_of
from reasoner.lending.config import AuditConfig
from reasoner.lending.evidence.kinds import STATISTIC_TABLES
from reasoner.lending.evidence.tables import PartitionTables

__all__ = ["Batch", "Explanations", "Gathered", "Numbering", "Rendered", "Spilled", "json_safe", "render", "spill"]

SPILL_BATCH = 8192  # records per record batch of a partition's stream


@dataclass(frozen=True, slots=True)
class Rendered:
    """A partition's explanation records as JSON texts (one line each, no newline) citing its own rows.

    ``lenders``: flagged lender → its record; ``applications``: the application findings in output
    order as an Arrow IPC stream compressed with zstd, empty when there are none: columns ``id``
    (the application id as text) and the record cut at its citations' rows (``_cut``): ``pieces``
    (its text around them), ``codes`` (each citation's table, an index into the stream's
    ``labels`` metadata, a JSON list) and ``rows`` (each citation's row within the partition).
    """

    lenders: dict[str, str]
    applications: bytes


@dataclass(frozen=True, slots=True)
class Batch:
    """Consecutive explanation records in output order, as Arrow text: per record, its kind of
    finding (``lender`` or ``application``), its id (the LEI or the application id) and its JSON
    text (one line, no newline)."""

    findings: pa.Array
    ids: pa.Array
    records: pa.Array


def json_safe(value: Any) -> Any:
    """JSON-safe: NaN → None, ±inf → "inf"/"-inf", numpy scalars → Python, tuples → lists."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:  # most values: returned as they are
        return value
    if kind is float:
        return value if math.isfinite(value) else (None if math.isnan(value) else ("inf" if value > 0 else "-inf"))
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars
        return json_safe(value.item())
    return value


def _safe(record: dict[str, Any], proofs: tuple[str, ...]) -> dict[str, Any]:
    """``json_safe`` of a record whose ``proofs`` entries are ``Proof.to_json`` texts (or dicts of
    them), which are JSON-safe already (text, bools, Python ints and finite floats, lists; tested):
    a proof is most of a record, so walking it again would cost more than the rest of the record."""
    return {str(key): value if key in proofs else json_safe(value) for key, value in record.items()}


# ``json.dumps(record, ensure_ascii=False, allow_nan=False)``, made once; a record is built fresh from
# proofs and rows and no container in it holds itself, so the check for circular references is left out
# (a seventh of the encoding time; the same text).
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, check_circular=False)


def _line(record: dict[str, Any]) -> str:
    return _ENCODER.encode(record)


def _stream(ids: list[str], records: list[str] | pa.Array, labels: dict[str, int]) -> bytes:
    """``ids`` and ``records`` (with marked citations, ``_ProofText``; Python or Arrow text) as a
    zstd-compressed Arrow IPC stream (``Rendered.applications``); ``labels``: each cited table's code."""
    if not len(records):
        return b""
    if not isinstance(records, pa.Array):
        records = pa.array(records, pa.large_string())
    metadata = {"labels": json.dumps(list(labels), ensure_ascii=False)}
    sink = pa.BufferOutputStream()
    writer: pa.ipc.RecordBatchStreamWriter | None = None
    try:
        # cut and written SPILL_BATCH records at a time (the batches the stream holds anyway): the cut's
        # copies of the records (split, filtered, listed) are of one batch, not of the partition's records
        for start in range(0, len(records), SPILL_BATCH):
            pieces, codes, rows = _cut(records.slice(start, SPILL_BATCH))
            batch = pa.table(
                {"id": pa.array(ids[start : start + SPILL_BATCH], pa.large_string()), "pieces": pieces,
                 "codes": codes, "rows": rows}
            ).replace_schema_metadata(metadata)
            if writer is None:
                writer = pa.ipc.new_stream(sink, batch.schema, options=pa.ipc.IpcWriteOptions(compression="zstd"))
            writer.write_table(batch, max_chunksize=SPILL_BATCH)
    finally:
        if writer is not None:
            writer.close()
    return bytes(sink.getvalue().to_pybytes())


def render(findings: Findings, tables: PartitionTables, config: AuditConfig, facts_label: str) -> Rendered:
    """The explanation records of one partition's findings (module docstring)."""
    # The records are many short-lived texts: keep the collector from rescanning the long-lived objects (the
    # network, evidence, tables, proofs) on a full pass, as scoring does. Collection never changes results.
    gc.freeze()
    try:
        return _render(findings, tables, config, facts_label)
    finally:
        gc.unfreeze()


def _render(findings: Findings, tables: PartitionTables, config: AuditConfig, facts_label: str) -> Rendered:
    flagged = findings.lenders[findings.lenders["flagged"]]
    statistics = _statistics(tables, set(flagged["lei"]))
    lenders = {}
    for row in flagged.itertuples(index=False):
        proof = findings.proofs.get(("lender", row.lei))
        kinds = {
            label: findings.proofs[(predicate, row.lei)].to_json()
            for predicate, label in config.lender_kinds
            if (predicate, row.lei) in findings.proofs
        }
        lenders[str(row.lei)] = _line(
            _safe(
                {
                    "finding": "lender",
                    "lei": row.lei,
                    "risk_tier": row.risk_tier,
                    "risk_score": row.risk_score,
                    "risk_interval": row.risk_interval,
                    "confidence": row.confidence,
                    "margin": row.margin,
                    "violations": list(row.violations),
                    "proof": proof.to_json() if proof else None,
                    "violation_proofs": kinds,
                    "statistics": statistics[row.lei],
                },
                ("proof", "violation_proofs", "statistics"),  # the statistics' rows are made JSON-safe already
            )
        )
    predicates = {label: predicate for predicate, label in config.application_findings}
    applications = findings.applications
    labels: dict[str, int] = {}  # each cited table's code, in the order first cited
    proof_text = _ProofText(labels)
    source = _cited_text(f"{facts_label} row 1", labels)  # how the record's own "source" is written
    source_at = source.index(MARK) + 1 + len(str(labels[facts_label])) + 1  # its row follows the separator
    ids = applications["application_id"].astype(str).tolist()
    # the application findings' proofs written block by block from their columns (``ProofColumns``)
    texts = {name: (proof_text.columns(proofs), numbers) for name, (proofs, numbers) in findings.columns.items()}
    proofs = []
    for finding, key in zip(applications["finding"].tolist(), ids, strict=True):
        predicate = predicates[finding]
        if predicate in texts:
            written, numbers = texts[predicate]
            proofs.append(written[numbers[key]])
        else:
            proofs.append(proof_text(findings.proofs[(predicate, key)]))
    if not ids:
        return Rendered(lenders, b"")
    # the partition's row of each finding, renumbered when gathered
    local = pc.cast(pa.array(positions_of(tables.applications, ids) + 1, pa.int64()), pa.large_string())
    # Each record is the text ``_line(_safe(record))`` would give it, its fields in this order, with its
    # "source" row marked, written a field at a time for all records in Arrow (``_column_texts``)
    pieces: list[pa.Array | pa.Scalar] = [_text('{"finding": "application", "application_id": ')]
    pieces += [_column_texts(applications["application_id"]), _text(', "row": '), _column_texts(applications["row"])]
    pieces += [_text(f', "source": {source[:source_at]}'), local, _text(f'{MARK}"')]
    for name, key in (("lei", "lei"), ("kind", "finding"), ("confidence", "confidence"), ("margin", "margin")):
        pieces += [_text(f', "{name}": '), _column_texts(applications[key])]
    pieces += [_text(', "violation_score": '), _column_texts(applications["violation_score"])]
    pieces += [_text(', "comparators": '), _comparator_array(applications), _text(', "proof": ')]
    pieces += [pa.array(proofs, pa.large_string()), _text("}")]
    records = pc.binary_join_element_wise(*pieces, _text(""))
    return Rendered(lenders, _stream(ids, records, labels))


def _column_texts(values: pd.Series) -> pa.Array:
    """The JSON text ``_line(json_safe(value))`` of each value of a column, as Arrow text: written by
    ``_field_texts`` when Arrow holds the column as text, int64 or float64, else value by value (so
    too an object column of numbers, which Arrow would make all floats: ``1`` written ``1.0``)."""
    try:
        array = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):  # mixed Python values, an int beyond int64
        array = None
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if array is not None and values.dtype == object and not pa.types.is_string(array.type):
        array = None
    if array is None or not _plain(array.type):
        return pa.array([_line(json_safe(value)) for value in values.tolist()], pa.large_string())
    return _field_texts(array).cast(pa.large_string())


class _ProofText:
    """``_line(proof.to_json())`` of many proofs, put together from the texts of their parts: a
    citation is one object shared by the formulas that cite it (``explain.Occurrences``), written
    once; a rule's text, location and weight once. Objects by ``id``: they live as long as the proofs.

    With ``labels``, the row of every cited table row (a ``"source"`` value "T row N", of the proof
    or of a citation) is marked (``_cited_text``) and T's code added to ``labels``."""

    def __init__(self, labels: dict[str, int] | None = None) -> None:
        self._citations: dict[int, str] = {}
        self._rules: dict[tuple[str, str, str], str] = {}
        self._labels = labels
        self._sources: dict[str, str] = {}
        self._effects: dict[Decimal, str] = {}

    def __call__(self, proof: Proof) -> str:
        return self._proof(
            proof.atom,
            proof.value,
            proof.decided_by,
            proof.source,
            proof.margin,
            list(map(self._formula, proof.supporting)),
            list(map(self._formula, proof.opposing)),
            proof.neutral,
        )

    def columns(self, proofs: ProofColumns) -> list[str]:
        """The text of each proof of ``proofs`` (``self(proofs.proof(number))``), the citations written
        in Arrow: each distinct source once, each distinct citation (atom, value, source) once and taken
        for every citation of it (an atom is cited by 2-3 formulas in an audit's proofs: a gain there,
        a small loss where citations rarely repeat), then each formula's list of them at once; a
        formula's other fields and a proof's head as for a ``Proof``."""
        formulas = len(proofs.rules)
        if len(proofs.citation_values):
            encoded = pc.dictionary_encode(proofs.citation_sources)
            sources = self._sources_of(encoded.dictionary)
            # each distinct citation (most atoms are cited by several formulas) written once, then taken
            distinct, first = _distinct_citations(proofs.citation_atoms, proofs.citation_values, encoded.indices)
            index = pa.array(first, pa.int64())
            values = pc.if_else(pa.array(proofs.citation_values[first], pa.bool_()), _text("true"), _text("false"))
            written = pc.binary_join_element_wise(
                _text('{"atom": '), _json_texts(proofs.citation_atoms.take(index)), _text(', "value": '), values,
                _text(', "source": '), sources.take(encoded.indices.take(index)), _text("}"), _text(""),
            )
            citations = written.take(pa.array(distinct, pa.int64()))
            lists = pa.LargeListArray.from_arrays(pa.array(proofs.citation_offsets, pa.int64()), citations)
            atoms: list[str] = pc.binary_join(lists, _text(", ")).to_pylist()
        else:
            atoms = [""] * formulas
        texts = [
            self._formula_text(rule, location, weight, substitution, satisfied, effect, cited)
            for rule, location, weight, substitution, satisfied, effect, cited in zip(
                proofs.rules, proofs.locations, proofs.weights, proofs.substitutions, proofs.satisfied,
                proofs.effects, atoms, strict=True,
            )
        ]
        offsets = proofs.formula_offsets.tolist()
        return [
            self._proof(
                atom, value, decided_by, source, margin,
                texts[start : start + supporting], texts[start + supporting : stop], neutral,
            )
            for atom, value, decided_by, source, margin, neutral, supporting, start, stop in zip(
                proofs.atoms, proofs.values, proofs.decided_by, proofs.sources, proofs.margins, proofs.neutral,
                proofs.supporting, offsets[:-1], offsets[1:], strict=True,
            )
        ]

    def _proof(
        self,
        atom: str,
        value: bool,
        decided_by: str,
        source: str | None,
        margin: Decimal | None,
        supporting: list[str],
        opposing: list[str],
        neutral: int,
    ) -> str:
        margin_text = "null" if margin is None else _ENCODER.encode(decimal_json(margin))
        return (
            f'{{"atom": {_encode_text(atom)}, "value": {_BOOLEANS[value]}, '
            f'"decided_by": {_encode_text(decided_by)}, "source": {self._source(source)}, '
            f'"margin": {margin_text}, "supporting": [{", ".join(supporting)}], '
            f'"opposing": [{", ".join(opposing)}], "neutral_formulas": {neutral}}}'
        )

    def _formula(self, item: GroundFormulaProof) -> str:
        made = self._citations  # a citation's text by its id, looked up here: most are cited by several formulas
        atoms = ", ".join([made.get(id(citation)) or self._citation(citation) for citation in item.atoms])
        return self._formula_text(
            item.rule, item.location, item.weight, item.substitution, item.satisfied, item.effect, atoms
        )

    def _formula_text(
        self,
        rule: str,
        location: str,
        weight: str,
        substitution: tuple[tuple[str, str], ...],
        satisfied: bool,
        effect: Decimal,
        atoms: str,
    ) -> str:
        """A formula's text, ``atoms`` the texts of its citations, comma-separated."""
        key = (rule, location, weight)
        head = self._rules.get(key)
        if head is None:
            head = self._rules[key] = (
                f'{{"rule": {_encode_text(rule)}, "location": {_encode_text(location)}, '
                f'"weight": {_encode_text(weight)}, "substitution": '
            )
        values = ", ".join([f"{_encode_text(name)}: {_encode_text(value)}" for name, value in substitution])
        effect_text = self._effects.get(effect)  # a few distinct weights: equal ones are written alike
        if effect_text is None:
            effect_text = self._effects[effect] = _ENCODER.encode(decimal_json(effect))
        return (
            f'{head}{{{values}}}, "satisfied": {_BOOLEANS[satisfied]}, '
            f'"effect": {effect_text}, "atoms": [{atoms}]}}'
        )

    def _citation(self, citation: EvidenceCitation) -> str:
        """The citation's text, made and kept the first time it is cited (``_formula`` looks it up)."""
        source = self._sources.get(citation.source) if citation.source is not None else None
        text = self._citations[id(citation)] = (
            f'{{"atom": {_encode_text(citation.atom)}, "value": {_BOOLEANS[citation.value]}, '
            f'"source": {source or self._source(citation.source)}}}'
        )
        return text

    def _sources_of(self, sources: pa.Array) -> pa.Array:
        """``_source`` of each text of ``sources`` (distinct, none missing), in Arrow: the cited tables'
        labels added to ``labels`` in the order of their first citation, as ``_source`` one by one adds them."""
        if self._labels is None:
            return _json_texts(sources.cast(pa.large_string()))
        return _cited_texts(sources.cast(pa.large_string()), self._labels)

    def _source(self, source: str | None) -> str:
        if source is None:
            return "null"
        if self._labels is None:
            return _encode_text(source)
        text = self._sources.get(source)
        if text is None:
            text = self._sources[source] = _cited_text(source, self._labels)
        return text


def _distinct_citations(atoms: pa.Array, values: np.ndarray, sources: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """The citations (atom text, value, source code) numbered in the order of first occurrence: each
    citation's number, and the position of each number's first citation."""
    atom_codes = np.asarray(pc.dictionary_encode(atoms).indices, dtype=np.int64)
    # an atom with its value: below 2n; numbered again (below n) before the source's code joins it
    valued, _ = pd.factorize(atom_codes * 2 + np.asarray(values, dtype=np.int64))
    source_codes = np.asarray(sources, dtype=np.int64)
    numbers, _ = pd.factorize(valued.astype(np.int64) * (int(source_codes.max()) + 1) + source_codes)
    numbers = numbers.astype(np.int64)
    # numbered in order of first occurrence: a citation is a first one where the numbers reach a new high
    seen = np.maximum.accumulate(numbers)
    first = np.flatnonzero(np.concatenate([[True], seen[1:] > seen[:-1]]))
    return numbers, first


MARK, SEPARATOR = "\x00", "\x01"  # a cited row in a rendered record: MARK code SEPARATOR row MARK


def _cited_text(source: str, labels: dict[str, int]) -> str:
    """The JSON text of a ``"source"`` value; one that cites a row ("pairs row 17": a label, " row "
    and a row number as ``str`` writes it) with that row marked as ``MARK code SEPARATOR row MARK``,
    ``code`` the label's in ``labels`` (added when new). The encoder writes every control
    character of a text as an escape, so the marks are the only ones in a record."""
    label, found, row = source.rpartition(" row ")
    if not found or not (row.isascii() and row.isdigit()) or str(int(row)) != row:
        return _encode_text(source)
    code = labels.setdefault(label, len(labels))
    return f'{_encode_text(label + " row ")[:-1]}{MARK}{code}{SEPARATOR}{row}{MARK}"'


def _cited_texts(sources: pa.Array, labels: dict[str, int]) -> pa.Array:
    """``_cited_text`` of each of ``sources`` (Arrow text, none missing), in Arrow: a source that cites
    a row (its last " row " followed by a row number as ``str`` writes it) gets its label's marked
    prefix, each label's made once (in the order of first citation), and its row; the others are
    written as JSON text."""
    parts = pc.extract_regex(sources, r"(?s)^(?P<label>.*) row (?P<row>0|[1-9][0-9]*)$")
    cites = parts.is_valid()
    plain = _json_texts(sources)
    if not pc.any(cites, min_count=0).as_py():
        return plain
    label = pc.struct_field(parts, "label")
    distinct = pc.unique(label.filter(cites))  # in the order of first occurrence
    prefixes = [
        f'{_encode_text(name + " row ")[:-1]}{MARK}{labels.setdefault(name, len(labels))}{SEPARATOR}'
        for name in distinct.to_pylist()
    ]
    prefix = pa.array(prefixes, pa.large_string()).take(pc.index_in(label, value_set=distinct))
    marked = pc.binary_join_element_wise(prefix, pc.struct_field(parts, "row"), _text(f'{MARK}"'), _text(""))
    return pc.if_else(cites, marked, plain)


def _cut(records: pa.Array) -> tuple[pa.Array, pa.Array, pa.Array]:
    """Records with marked citations (``_cited_text``) cut at them: per record the list of its texts
    around the cited rows (one more than its citations), the list of their codes and of their rows."""
    split = pc.split_pattern(records, MARK)  # per record: text, code SEPARATOR row, text, ..., text
    offsets = split.offsets.to_numpy().astype(np.int64)
    offsets -= offsets[0]
    values = split.flatten()
    record = np.repeat(np.arange(len(records)), np.diff(offsets))
    odd = ((np.arange(len(values)) - offsets[record]) % 2).astype(bool)
    cited = pc.split_pattern(values.filter(pa.array(odd)), SEPARATOR)
    codes = pc.cast(pc.list_element(cited, 0), pa.int32())
    rows = pc.cast(pc.list_element(cited, 1), pa.int64())
    before = np.arange(len(offsets))  # per record, the records before it
    at_citations = pa.array((offsets - before) // 2, pa.int32())
    pieces = pa.ListArray.from_arrays(pa.array((offsets + before) // 2, pa.int32()), values.filter(pa.array(~odd)))
    return pieces, pa.ListArray.from_arrays(at_citations, codes), pa.ListArray.from_arrays(at_citations, rows)


def _joined(pieces: pa.Array, codes: pa.Array, rows: pa.Array, labels: Sequence[str], numbering: Numbering) -> pa.Array:
    """The records ``_cut`` cut, joined again with their cited rows renumbered (``numbering``; a
    table not of the whole register's is cited with the row it had): each record's pieces and
    rows in turn, in Arrow."""
    local = rows.flatten().to_numpy()
    code = codes.flatten().to_numpy()
    numbers = local.copy()
    for value in np.unique(code).tolist():
        where = code == value
        found = numbering.convert_many(labels[value], local[where])
        if found is not None:
            numbers[where] = found
    texts = pc.cast(pa.array(numbers, pa.int64()), pa.large_string())
    offsets = pieces.offsets.to_numpy().astype(np.int64)
    offsets -= offsets[0]
    values = pieces.flatten().cast(pa.large_string())
    count, records = len(values), len(pieces)
    record = np.repeat(np.arange(records), np.diff(offsets))
    at = 2 * np.arange(count) - record  # a piece's place among pieces and rows: after its record's rows before it
    order = np.empty(count + len(numbers), np.int64)
    order[at] = np.arange(count)
    last = np.zeros(count, dtype=bool)
    last[offsets[1:] - 1] = True  # a record's last piece has no row after it
    order[at[~last] + 1] = count + np.arange(len(numbers))
    interleaved = pa.concat_arrays([values, texts]).take(pa.array(order))
    bounds = pa.array(2 * offsets - np.arange(records + 1), pa.int64())
    return pc.binary_join(pa.LargeListArray.from_arrays(bounds, interleaved), _text(""))


_BOOLEANS = {True: "true", False: "false"}


def _comparator_texts(applications: pd.DataFrame) -> list[str]:
    """``_comparator_array`` as Python texts."""
    texts: list[str] = _comparator_array(applications).to_pylist()
    return texts


def _comparator_array(applications: pd.DataFrame) -> pa.Array:
    """Each finding's comparators (the ``comparators`` column, a list of structs per finding) as the
    JSON text ``_line`` gives their ``json_safe`` Python lists, made a field at a time in Arrow rather
    than as dicts to walk and encode: text as the encoder escapes it, integers and finite floats as
    their ``repr``, a missing value ``null``, NaN ``null`` and ±inf ``"inf"``/``"-inf"`` (``json_safe``).
    A column with missing lists or structs, or fields of other types, goes the long way."""
    column = pa.chunked_array(pa.array(applications["comparators"]))
    column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    values = column.flatten()
    fields = list(column.type.value_type) if pa.types.is_list(column.type) else []
    if not fields or column.null_count or values.null_count or not all(_plain(field.type) for field in fields):
        return pa.array([_line(json_safe(comparators)) for comparators in column.to_pylist()], pa.large_string())
    pieces: list[pa.Array | pa.Scalar] = []
    for number, field in enumerate(fields):
        pieces += [_text(("{" if number == 0 else ", ") + _encode_text(field.name) + ": ")]
        pieces.append(_field_texts(values.field(field.name)))
    items = pc.binary_join_element_wise(*pieces, _text("}"), _text(""))
    lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
    bounds = pa.array(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32), pa.int32())
    joined = pc.binary_join(pa.ListArray.from_arrays(bounds, items), _text(", "))
    return pc.binary_join_element_wise(_text("["), joined, _text("]"), _text(""))


def _plain(kind: pa.DataType) -> bool:
    """Whether ``_field_texts`` writes a field of this type."""
    return pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_int64(kind) or kind == pa.float64()


def _field_texts(values: pa.Array) -> pa.Array:
    """The JSON text of each value (``json_safe``, then the encoder), as Arrow text."""
    if pa.types.is_int64(values.type):
        return pc.cast(values, pa.large_string()).fill_null("null")
    if values.type == pa.float64():  # as Python writes them (Arrow writes 1.0 as "1")
        return _float_texts(values)
    values = values.cast(pa.large_string())
    if pc.any(pc.match_substring_regex(values, r'[\x00-\x1f"\\]'), min_count=0).as_py():  # escapes needed
        return pa.array(["null" if value is None else _encode_text(value) for value in values.to_pylist()], values.type)
    return pc.binary_join_element_wise(_text('"'), values, _text('"'), _text("")).fill_null("null")


def _float_texts(values: pa.Array) -> pa.Array:
    """``_floats`` of a float64 array, as Arrow text. Arrow and Python both write a float as the shortest
    digits that read back as it; from 1e-4 up to 1e16 Python writes them without an exponent, as Arrow
    does for a number with a fraction: those are taken from Arrow's cast, the rest (integral values,
    which Arrow writes without ".0", exponents, NaN, ±inf, missing values) written by Python."""
    texts = pc.cast(values, pa.large_string())
    magnitude = np.abs(values.to_numpy(zero_copy_only=False))  # a missing value: NaN
    with np.errstate(invalid="ignore"):
        plain = (magnitude >= 1e-4) & (magnitude < 1e16)
    plain &= pc.fill_null(
        pc.and_(pc.match_substring(texts, "."), pc.invert(pc.match_substring(texts, "e"))), False
    ).to_numpy(zero_copy_only=False)
    rest = np.flatnonzero(~plain)
    if not rest.size:
        return texts
    written = pa.array(_floats(values.take(pa.array(rest, pa.int64())).to_pylist()), pa.large_string())
    where = np.arange(len(values), dtype=np.int64)
    where[rest] = len(values) + np.arange(rest.size, dtype=np.int64)
    return pa.concat_arrays([texts, written]).take(pa.array(where, pa.int64()))


def _json_texts(values: pa.Array) -> pa.Array:
    """Each text (none missing) as the encoder writes it (``_encode_text``), in Arrow: a quote and a
    backslash escaped; texts with another character below U+0020 are written by Python."""
    # printable ASCII needs no look for control characters (a tenth of the regex's time)
    if not pc.all(pc.ascii_is_printable(values), min_count=0).as_py() and pc.any(
        pc.match_substring_regex(values, r"[\x00-\x1f]"), min_count=0
    ).as_py():
        return pa.array([_encode_text(value) for value in values.to_pylist()], pa.large_string())
    escaped = pc.replace_substring(pc.replace_substring(values, "\\", "\\\\"), '"', '\\"')
    return pc.binary_join_element_wise(_text('"'), escaped, _text('"'), _text(""))


def _text(text: str) -> pa.Scalar:
    return pa.scalar(text, pa.large_string())


def _floats(values: list[float | None]) -> list[str]:
    return [
        "null"
        if value is None or value != value
        else float.__repr__(value)
        if math.isfinite(value)
        else '"inf"'
        if value > 0
        else '"-inf"'
        for value in values
    ]


_encode_text = json.encoder.encode_basestring  # how ``_ENCODER`` writes a string (``ensure_ascii=False``)


def _statistics(tables: PartitionTables, leis: set[str]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Per lender of ``leis``: its rows of each statistics table (each table grouped once)."""
    found: dict[str, dict[str, list[dict[str, Any]]]] = {lei: {name: [] for name in STATISTIC_TABLES} for lei in leis}
    for name in STATISTIC_TABLES:
        frame = getattr(tables, name)
        for row in _records(frame[frame["lei"].isin(leis)]):
            found[str(row["lei"])][name].append(json_safe(row))
    return found


def _records(frame: pd.DataFrame) -> list[dict[Any, Any]]:
    """``frame.to_dict("records")``: the values of each column as Python scalars (``tolist``), a
    column at a time rather than a value at a time (four times faster; the same values, tested)."""
    names = list(frame.columns)
    columns = [frame[name].tolist() for name in names]
    return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]


@dataclass(frozen=True, slots=True)
class Numbering:
    """How one partition's citations become rows of the whole register's tables.

    ``rows``: the input row of each of the partition's applications; ``offsets``: per table,
    the rows of the partitions before this one; ``pair_runs``: per comparison, where its run
    starts in the partition's pair table and in the whole register's (0-based).
    """

    facts_label: str
    rows: np.ndarray
    offsets: dict[str, int]
    pair_runs: tuple[tuple[int, int], ...]  # (start here, start in the whole table), by local start

    def convert(self, label: str, row: int) -> int | None:
        """The whole register's row for ``label row row``; None when ``label`` is no table of ours."""
        found = self.convert_many(label, np.array([row], dtype=np.int64))
        return None if found is None else int(found[0])

    def convert_many(self, label: str, rows: np.ndarray) -> np.ndarray | None:
        """``convert`` of every row of ``rows`` (1-based, int64) cited as ``label``."""
        if label == self.facts_label:
            return np.asarray(self.rows, dtype=np.int64)[rows - 1]
        if label == "pairs":
            runs = np.array(self.pair_runs, dtype=np.int64).reshape(-1, 2)
            run = np.searchsorted(runs[:, 0], rows - 1, side="right") - 1
            return runs[run, 1] + (rows - 1 - runs[run, 0]) + 1
        offset = self.offsets.get(label)
        return None if offset is None else rows + offset

    def renumber(self, text: str) -> str:
        """``text`` (JSON lines) with every citation renumbered (module docstring).

        The citations of our tables are found by one regex naming them (a "source" value of
        another label is not a match, as before: it was left as it is), converted label by label
        as arrays, and joined back: a fifth of the time of a regex with a callback per citation."""
        names = (self.facts_label, "pairs", *self.offsets)
        escaped = {json.dumps(label, ensure_ascii=False)[1:-1]: label for label in names}
        pattern = re.compile(f'"source": "({"|".join(map(re.escape, escaped))}) row ([0-9]+)"')
        parts = pattern.split(text)  # text, then (label as JSON escapes it, row, text) per citation
        if len(parts) == 1:
            return text
        cited = parts[1::3]
        numbers = np.array(parts[2::3], dtype=object)
        codes, labels = pd.factorize(np.array(cited, dtype=object))
        for code, label in enumerate(labels.tolist()):
            where = np.flatnonzero(codes == code)
            found = self.convert_many(escaped[label], numbers[where].astype(np.int64))
            assert found is not None  # a label of ours
            numbers[where] = found.astype(str).astype(object)
        prefixes = {label: f'"source": "{label} row ' for label in labels.tolist()}
        parts[1::3] = map(prefixes.__getitem__, cited)
        parts[2::3] = [number + '"' for number in numbers.tolist()]
        return "".join(parts)


def numberings(
    parts: Sequence[tuple[np.ndarray, dict[str, int], dict[str, int]]], comparisons: Sequence[str], facts_label: str
) -> list[Numbering]:
    """One ``Numbering`` per partition, in partition order, from each partition's input rows,
    its rows per table and its pairs per comparison."""
    totals = {name: sum(pairs.get(name, 0) for _, _, pairs in parts) for name in comparisons}
    starts = np.cumsum([0, *(totals[name] for name in comparisons)]).tolist()
    comparison_start = dict(zip(comparisons, starts, strict=False))
    done: dict[str, int] = {}
    pairs_done = dict.fromkeys(comparisons, 0)
    found = []
    for rows, sizes, pairs in parts:
        runs, local = [], 0
        for name in comparisons:
            runs.append((local, comparison_start[name] + pairs_done[name]))
            local += pairs.get(name, 0)
            pairs_done[name] += pairs.get(name, 0)
        found.append(Numbering(facts_label, rows, {name: done.get(name, 0) for name in sizes}, tuple(runs)))
        for name, size in sizes.items():
            done[name] = done.get(name, 0) + size
    return found


class Explanations:
    """Every partition's rendered explanations, spilled to a temporary directory as they come
    (removed with this object), and how to renumber them once every partition is in."""

    def __init__(self) -> None:
        remove_abandoned(Path(tempfile.gettempdir()))
        try:
            self.directory = Path(tempfile.mkdtemp(prefix=SPILL_PREFIX))
            self._lock = _hold(self.directory / SPILL_LOCK)
        except OSError as error:
            raise _spill_error(Path(tempfile.gettempdir()), error) from None
        self._cleanup = weakref.finalize(self, _release, self.directory, self._lock)
        self.lenders: dict[str, tuple[int, str]] = {}  # flagged lender → (partition, record)
        self.spilled: list[int] = []  # partitions whose application records are on disk
        self.numbering: dict[int, Numbering] = {}

    def adopt(self, spilled: Spilled) -> None:
        """Take in a partition spilled into ``self.directory`` (``spill``, in the process that
        audited it or in this one): its flagged lenders' records are kept here, the rest stays on disk."""
        self.lenders.update({lei: (spilled.index, line) for lei, line in spilled.lenders.items()})
        if spilled.records:
            self.spilled.append(spilled.index)

    def take(self, partition: int) -> Any:
        """The result ``spill`` kept for ``partition`` (without its explanations); its file is removed."""
        path = _held_path(self.directory, partition)
        with open(path, "rb") as handle:
            value = pickle.load(handle)  # written by this audit, in its own directory
        path.unlink()
        return value

    def number(self, numbering: dict[int, Numbering]) -> None:
        self.numbering = numbering

    def gathered(self) -> Gathered:
        """What ``batches`` reads, as a value another process can be given (``outputs.write``): the
        spilled records stay in ``self.directory``, which lives as long as this object."""
        return Gathered(self.directory, dict(self.lenders), tuple(sorted(self.spilled)), dict(self.numbering))

    def batches(self, flagged_leis: Sequence[str]) -> Iterator[Batch]:
        """Every record with its citations renumbered (``Gathered.batches``)."""
        return self.gathered().batches(flagged_leis)

    def lines(self, flagged_leis: Sequence[str]) -> Iterator[str]:
        """The records as JSON lines (``reason explain OUT --all --format jsonl``), in chunks of whole lines."""
        for batch in self.batches(flagged_leis):
            yield "".join(record + "\n" for record in batch.records.to_pylist())

    def close(self) -> None:
        self._cleanup()


@dataclass(frozen=True, slots=True)
class Gathered:
    """Every partition's records once every partition is in: the directory they were spilled to
    (``Explanations.directory``), the flagged lenders' records (lender → (partition, record)), the
    partitions with application records on disk, in order, and each partition's ``Numbering``."""

    directory: Path
    lenders: dict[str, tuple[int, str]]
    spilled: tuple[int, ...]
    numbering: dict[int, Numbering]

    def batches(self, flagged_leis: Sequence[str]) -> Iterator[Batch]:
        """Every record with its citations renumbered: the flagged lenders in the order given,
        then the application findings partition after partition."""
        if flagged_leis:
            records = [self.numbering[self.lenders[lei][0]].renumber(self.lenders[lei][1]) for lei in flagged_leis]
            yield Batch(
                pa.array(["lender"] * len(records), pa.string()),
                pa.array([str(lei) for lei in flagged_leis], pa.string()),
                pa.array(records, pa.large_string()),
            )
        for partition in self.spilled:
            numbering = self.numbering[partition]
            with pa.memory_map(str(_records_path(self.directory, partition))) as source:
                reader = pa.ipc.open_stream(source)
                labels = json.loads(reader.schema.metadata[b"labels"])
                for batch in reader:
                    pieces, codes, rows = (batch.column(name) for name in ("pieces", "codes", "rows"))
                    records = _joined(pieces, codes, rows, labels, numbering)
                    # the joins' intermediate copies back to the system now, not at the pool's leisure: the
                    # writing phase's peak at 1,000,000 rows 562 -> 488 MB (516 with the regex path), no time
                    pa.default_memory_pool().release_unused()
                    kinds = pa.DictionaryArray.from_arrays(np.zeros(len(records), np.int8), ["application"])
                    yield Batch(kinds.cast(pa.string()), batch.column("id").cast(pa.string()), records)


@dataclass(frozen=True, slots=True)
class Spilled:
    """A partition's result on disk (``spill``), and what the main process takes of it as it
    comes: its applications (for progress), its flagged lenders' records, whether it has
    application records."""

    index: int
    applications: int
    lenders: dict[str, str]
    records: bool


def spill(directory: Path, index: int, applications: int, rendered: Rendered, rest: object) -> Spilled:
    """Write partition ``index``'s application records and ``rest`` (its result without its
    explanations: tables, findings, rows, about 42 bytes an application) into ``directory``
    (``Explanations.directory``), where they wait until every partition is in. A worker process
    spills its own result, so the main process neither receives nor writes those bytes."""
    try:
        if rendered.applications:
            _records_path(directory, index).write_bytes(rendered.applications)
        with open(_held_path(directory, index), "wb") as handle:
            pickle.dump(rest, handle, protocol=pickle.HIGHEST_PROTOCOL)
    except OSError as error:
        raise _spill_error(directory, error) from None
    return Spilled(index, applications, dict(rendered.lenders), bool(rendered.applications))


def _records_path(directory: Path, partition: int) -> Path:
    return directory / f"{partition:08d}.arrows"


def _held_path(directory: Path, partition: int) -> Path:
    return directory / f"{partition:08d}.result.pickle"


SPILL_PREFIX = "reasoner-explanations-"
SPILL_LOCK = "in-use.lock"
ABANDONED_SECONDS = 60  # a directory without its lock file this old was left by a killed run


def remove_abandoned(temporary: Path) -> list[Path]:
    """Remove the spill directories in ``temporary`` that no running audit holds (left by a run
    that was killed: its kernel lock died with it); return them."""
    removed: list[Path] = []
    if fcntl is None:  # no kernel locks to tell a running audit's directory: leave them to the system
        return removed
    for directory in sorted(temporary.glob(SPILL_PREFIX + "*")):
        try:
            if not directory.is_dir() or directory.is_symlink() or directory.stat().st_uid != os.getuid():
                continue
            lock = directory / SPILL_LOCK
            if lock.exists():
                handle = os.open(lock, os.O_RDWR)
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # OSError: a running audit holds it
                finally:
                    os.close(handle)
            elif time.time() - directory.stat().st_mtime < ABANDONED_SECONDS:
                continue  # being created right now
        except OSError:
            continue
        shutil.rmtree(directory, ignore_errors=True)
        removed.append(directory)
    return removed


def _hold(path: Path) -> int:
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    if fcntl is not None:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return handle


def _release(directory: Path, handle: int) -> None:
    shutil.rmtree(directory, ignore_errors=True)
    if directory.exists():  # a worker killed with the run was finishing a file as it was removed: once more
        shutil.rmtree(directory, ignore_errors=True)
    with suppress(OSError):
        os.close(handle)


def _spill_error(directory: Path, error: OSError) -> LimitError:
    return LimitError(
        f"cannot keep the explanations in {directory}: {error.strerror or error}; they take about 20 bytes per "
        "application, and the partitions' results about 40 until gathered: set TMPDIR to a directory with room for them"
    )


def flagged_in_order(lenders: pd.DataFrame) -> list[str]:
    return [str(lei) for lei in lenders.loc[lenders["flagged"], "lei"]]
