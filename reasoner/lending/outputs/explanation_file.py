"""``explanations.parquet``: every explanation record, compressed, with an index by id.

    explanations.parquet        finding ("lender" or "application"), id (the LEI or the application
                                id, as text) and record (its JSON text, one line): the records in
                                output order, flagged lenders by risk and then application findings
                                by lender, id and kind; a row group ends at 8,192 records or 2 Mi
                                characters of JSON, whichever comes first; zstd
    explanations.index.parquet  id and position (the record's 0-based row in explanations.parquet),
                                sorted by id then position; row groups of 65,536 entries

The JSON texts are those ``explanations.jsonl`` held before (``reason explain OUT --all --format
jsonl`` writes them back, one per line); compressed in columns they take about a tenth of the
bytes. A record is found by id through the index: the index's row-group statistics (its least
and greatest id) name the one or two groups that can hold the id, its positions name the row
groups of ``explanations.parquet`` to read, and nothing else is read, so a look-up takes
milliseconds whatever the size of the audit. Both files are written with fixed row-group sizes,
so their bytes depend on the records alone, not on how the partitions delivered them.

Imports pyarrow only (``reason explain`` starts quickly).
"""

from __future__ import annotations

import bisect
import functools
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from reasoner.errors import UsageError

__all__ = [
    "EXPLANATIONS",
    "EXPLANATIONS_INDEX",
    "Found",
    "every_id",
    "find",
    "json_lines",
    "rows_where",
    "write_explanations",
    "write_records",
]

EXPLANATIONS = "explanations.parquet"
EXPLANATIONS_INDEX = "explanations.index.parquet"
RECORD_ROWS = 8192
RECORD_CHARACTERS = 2 << 20  # a row group ends at 8,192 records or 2 Mi characters of JSON: a look-up reads little
INDEX_ROWS = 65536
COMPRESSION_LEVEL = 3  # zstd: level 9 is a fifth smaller on the audit's records but six times slower to write
SCHEMA = pa.schema([("finding", pa.string()), ("id", pa.string()), ("record", pa.large_string())])
INDEX_SCHEMA = pa.schema([("id", pa.string()), ("position", pa.int64())])


class Records(Protocol):
    """Consecutive records (``reasoner.lending.audit.explanations.Batch``): Arrow text or lists of text."""

    @property
    def findings(self) -> pa.Array | list[str]: ...

    @property
    def ids(self) -> pa.Array | list[str]: ...

    @property
    def records(self) -> pa.Array | list[str]: ...


def write_explanations(
    batches: Iterable[Records], directory: Path, progress: Callable[[int], None] | None = None
) -> int:
    """Write ``explanations.parquet`` and its index into ``directory``; return the number of records.
    ``progress`` is called with the number of records written, row group after row group."""
    directory = Path(directory)
    written = count = size = 0
    ids: list[pa.Array] = []
    pending: list[pa.Table] = []
    with pq.ParquetWriter(
        directory / EXPLANATIONS,
        SCHEMA,
        compression="zstd",
        compression_level=COMPRESSION_LEVEL,
        use_dictionary=["finding"],
        write_statistics=["finding", "id"],
        store_schema=False,
    ) as writer:

        def flush() -> None:
            nonlocal written, count, size
            # one chunk per column, as a table of lists would be: the pages of a column chunk follow its chunks
            table = pa.concat_tables(pending).combine_chunks() if pending else SCHEMA.empty_table()
            writer.write_table(table, row_group_size=RECORD_ROWS)
            ids.append(table.column("id").combine_chunks())
            pending.clear()
            written += table.num_rows
            count = size = 0
            if progress is not None:
                progress(table.num_rows)

        for batch in batches:
            table = _table(batch)
            # characters of each record (Python's len) and where each row group ends: at RECORD_ROWS records or
            # once RECORD_CHARACTERS are reached, counted from the group's first record
            lengths = pc.utf8_length(table.column("record")).to_numpy().astype(np.int64)
            start = 0
            while start < len(lengths):
                room = RECORD_ROWS - count
                filled = size + np.cumsum(lengths[start : start + room])
                end = int(np.searchsorted(filled, RECORD_CHARACTERS, side="left"))  # the first to reach it
                full = end < len(filled) or len(filled) == room
                end = start + (end + 1 if end < len(filled) else len(filled))
                pending.append(table.slice(start, end - start))
                count, size = count + end - start, int(filled[end - start - 1])
                start = end
                if full:
                    flush()
        if pending or not written:
            flush()
    _write_index(pa.chunked_array(ids, pa.string()), directory / EXPLANATIONS_INDEX)
    return written


def _table(batch: Records) -> pa.Table:
    columns = (batch.findings, batch.ids, batch.records)
    return pa.table(
        [
            values.cast(field.type) if isinstance(values, (pa.Array, pa.ChunkedArray)) else pa.array(values, field.type)
            for values, field in zip(columns, SCHEMA, strict=True)
        ],
        schema=SCHEMA,
    )


def _write_index(ids: pa.ChunkedArray, path: Path) -> None:
    table = pa.table({"id": ids, "position": pa.array(range(len(ids)), pa.int64())}, schema=INDEX_SCHEMA)
    table = table.take(pc.sort_indices(table, sort_keys=[("id", "ascending"), ("position", "ascending")]))
    pq.write_table(
        table, path, row_group_size=INDEX_ROWS, compression="zstd", use_dictionary=False, store_schema=False
    )


@dataclass(frozen=True, slots=True)
class RecordList:
    findings: list[str]
    ids: list[str]
    records: list[str]


def write_records(records: Iterable[dict[str, Any]], directory: Path) -> int:
    """Write parsed records (a lender's has ``"finding": "lender"`` and its ``lei``, an application's its
    ``application_id``) as ``write_explanations`` does; for records written by other means than an audit."""
    batch = RecordList([], [], [])
    for record in records:
        kind = str(record.get("finding", "application"))
        batch.findings.append(kind)
        batch.ids.append(str(record.get("lei" if kind == "lender" else "application_id", "")))
        batch.records.append(json.dumps(record, ensure_ascii=False, allow_nan=False))
    return write_explanations([batch], directory)


# -- reading ---------------------------------------------------------------------------------------


class Found(NamedTuple):
    """A record found: its 0-based position, its kind of finding, the record parsed and its JSON text."""

    position: int
    finding: str
    record: dict[str, Any]
    text: str


def find(directory: Path, identifier: str, finding: str | None = None) -> list[Found]:
    """The records whose id is ``identifier`` (of kind ``finding`` if given), in output order."""
    directory = Path(directory)
    positions = _positions(directory / EXPLANATIONS_INDEX, identifier)
    if not positions:
        return []
    path = directory / EXPLANATIONS
    file = _open(path)
    starts = _row_group_starts(file)
    total = starts[-1]
    found: list[Found] = []
    groups: dict[int, pa.Table] = {}
    for position in positions:
        if position >= total:
            raise UsageError(f"{directory / EXPLANATIONS_INDEX}: points at record {position + 1}, beyond the "
                             f"{total:,} records of {path}; the outputs are damaged (reason verify {directory})")
        group = bisect.bisect_right(starts, position) - 1
        if group not in groups:
            groups[group] = _read(path, functools.partial(file.read_row_group, group))
        table = groups[group]
        row = position - starts[group]
        kind, key, text = (table.column(name)[row].as_py() for name in ("finding", "id", "record"))
        if key != identifier:
            raise UsageError(f"{directory / EXPLANATIONS_INDEX}: points at record {position + 1} of {path}, which is "
                             f"not that of {identifier!r}; the outputs are damaged (reason verify {directory})")
        if finding is None or kind == finding:
            found.append(Found(position, str(kind), _parsed(path, position, text), str(text)))
    return found


def _positions(path: Path, identifier: str) -> list[int]:
    index = _open(path)
    found: list[int] = []
    for group in range(index.metadata.num_row_groups):
        statistics = index.metadata.row_group(group).column(0).statistics
        if statistics is not None and statistics.has_min_max and not statistics.min <= identifier <= statistics.max:
            continue
        table = _read(path, functools.partial(index.read_row_group, group))
        ids = table.column("id").to_pylist()
        start, stop = bisect.bisect_left(ids, identifier), bisect.bisect_right(ids, identifier)  # sorted by id
        found += table.column("position").slice(start, stop - start).to_pylist()
    return sorted(found)


def every_id(directory: Path) -> list[str]:
    """Every id with a record, once each, sorted."""
    path = Path(directory) / EXPLANATIONS_INDEX
    table = _read(path, lambda: _open(path).read(columns=["id"]))
    return sorted({str(value) for value in table.column("id").to_pylist()})


def json_lines(directory: Path) -> Iterator[str]:
    """Every record as JSON lines, in output order, one row group (whole lines) at a time."""
    path = Path(directory) / EXPLANATIONS
    file = _open(path)
    for group in range(file.metadata.num_row_groups):
        table = _read(path, functools.partial(file.read_row_group, group, columns=["record"]))
        yield "".join(text + "\n" for text in table.column("record").to_pylist())


def rows_where(path: Path, column: str, value: str) -> list[dict[str, Any]]:
    """The rows of a parquet file whose ``column`` (as text) is ``value``, reading that column and then
    only the row groups holding a match; none when the file cannot be read or lacks the column.
    (No ``pyarrow.compute``: its first call loads the compute library, a noticeable part of a second.)"""
    try:
        file = pq.ParquetFile(path)
        if column not in file.schema_arrow.names:
            return []
        keys = file.read(columns=[column]).column(0)
        if pa.types.is_string(keys.type) or pa.types.is_large_string(keys.type):
            hits = np.flatnonzero(np.asarray(keys.to_numpy(zero_copy_only=False), dtype=object) == value).tolist()
        else:
            hits = [row for row, key in enumerate(keys.to_pylist()) if str(key) == value]
        starts = _row_group_starts(file)
        rows: list[dict[str, Any]] = []
        groups: dict[int, pa.Table] = {}
        for hit in hits:
            group = bisect.bisect_right(starts, hit) - 1
            if group not in groups:
                groups[group] = file.read_row_group(group)
            rows += groups[group].slice(hit - starts[group], 1).to_pylist()
        return rows
    except (OSError, ValueError, pa.ArrowException):
        return []


def _open(path: Path) -> pq.ParquetFile:
    if not path.is_file():
        raise UsageError(
            f"{path}: not found; is {path.parent} the output directory of an audit (reason RULES FACTS -o OUT)?"
        )
    file = _read(path, lambda: pq.ParquetFile(path))
    expected = INDEX_SCHEMA if path.name == EXPLANATIONS_INDEX else SCHEMA
    names = set(file.schema_arrow.names)
    if not set(expected.names) <= names:
        missing = ", ".join(name for name in expected.names if name not in names)
        raise UsageError(f"{path}: not the explanations of an audit: no column {missing}")
    return file


def _read(path: Path, read: Callable[[], Any]) -> Any:
    try:
        return read()
    except (OSError, ValueError, pa.ArrowException) as error:
        raise UsageError(f"{path}: cannot read it as the explanations of an audit: {error}") from None


def _row_group_starts(file: pq.ParquetFile) -> list[int]:
    starts = [0]
    for group in range(file.metadata.num_row_groups):
        starts.append(starts[-1] + file.metadata.row_group(group).num_rows)
    return starts


def _parsed(path: Path, position: int, text: str) -> dict[str, Any]:
    try:
        record = json.loads(text)
    except (TypeError, ValueError) as error:
        raise UsageError(f"{path}: record {position + 1}: not a JSON record ({error})") from None
    if not isinstance(record, dict):
        raise UsageError(f"{path}: record {position + 1}: not a JSON record (a JSON {type(record).__name__})")
    return record
