"""Read HMDA registers as published: every column as text, so codes keep their leading zeros.

Parquet (a file or a dataset directory), CSV, or the pipe-delimited text the HMDA platform
publishes; the delimiter is detected from the first line ('|', tab, ',' or ';'), ``.gz`` and
``.bz2`` are decompressed, and a ``.zip`` holding one file (as the snapshot downloads come)
is read from inside. Which register a text file is (the HMDA filing format with its
transmittal sheet, the Modified LAR, the headerless public LAR, or a table with a header) is told
from its first lines by ``formats.detect_format``; ``register_format`` returns it. Non-string
parquet columns are cast to text (6037.0 becomes '6037', never '6037.0').
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from reasoner.errors import EvidenceError, ReasonerError
from reasoner.lending.registers.compact import code_type
from reasoner.lending.registers.fields import normalize_name
from reasoner.lending.registers.formats import KNOWN_NAMES, RegisterFormat, detect_format
from reasoner.limits import MAX_FIELD_LENGTH, raise_if_memory_limit_reached

__all__ = [
    "BATCH_ROWS",
    "SMALL_BATCH_ROWS",
    "KNOWN_NAMES",
    "column_names",
    "parquet_rows",
    "piece_rows",
    "read_hmda",
    "read_hmda_batches",
    "register_format",
]

DELIMITERS = ("|", "\t", ",", ";")


BATCH_ROWS = 1_000_000  # the most rows per piece of ``read_hmda_batches`` (a parquet input's record batches gathered)
SMALL_BATCH_ROWS = 250_000  # the fewest, unless the register is smaller
# A piece's distinct values are parsed once per piece (most of a row group's dictionary in every piece), so pieces
# of 1,000,000 rows read 12,000,000 in 26 CPU s instead of 33 with 250,000, the read's peak 2,069 -> 2,309 MB:
# below the register-wide pass's (2.7 GB). At 1,000,000 rows one piece would peak at 1,185 MB, not 714 (the
# register-wide pass needs ~750): pieces are a twelfth of the register, between the two (``piece_rows``).
# Record batches and files the scanner reads ahead: a row group of 1,000,000 rows peaked at 803 MB with
# pyarrow's defaults (16, 4) and 643 MB with (2, 1), in no more time (3,000,000 rows, benchmarks/memory.py)
SCAN_READAHEAD = (2, 1)


def read_hmda(
    path: str | Path, columns: Iterable[str] | None = None, progress: Callable[[int], None] | None = None
) -> pd.DataFrame:
    """The register at ``path`` as published, every column as text (``str``), no row dropped.

    ``columns`` (any spelling; compared after ``normalize_name``) keeps only those columns,
    which saves most of the time and memory on a national file: pass ``hmda.INPUT_COLUMNS``
    to read just what ``clean_hmda`` uses. ``progress`` is called with the number of rows of
    each batch read (parquet is read in record batches; text at once).
    """
    path = Path(path)
    with _reading(path) as parquet:
        table = _read_parquet(path, _wanted(columns), progress) if parquet else _read_text(path, _wanted(columns))
        if not parquet and progress is not None:
            progress(table.num_rows)
    _check_lengths(table, path)
    return table.to_pandas()


def piece_rows(total: int | None) -> int:
    """The rows per piece of a register of ``total`` rows (None: unknown): a twelfth of it, at least
    ``SMALL_BATCH_ROWS`` and at most ``BATCH_ROWS``, so that the read's peak memory, which follows the piece, stays
    below the register-wide pass's, which follows the register (benchmarks/memory.py)."""
    if total is None:
        return BATCH_ROWS
    return min(BATCH_ROWS, max(SMALL_BATCH_ROWS, -(-total // 12)))


def read_hmda_batches(
    path: str | Path,
    columns: Iterable[str] | None = None,
    progress: Callable[[int], None] | None = None,
    rows: int | None = None,
    dictionaries: Iterable[str] = (),
) -> Iterator[pd.DataFrame]:
    """``read_hmda`` in consecutive pieces of about ``rows`` rows (``piece_rows``), in input order:
    a parquet input (file or dataset directory) is scanned in column-pruned record batches, so
    only one piece is in memory at a time; a text input is one piece.

    ``dictionaries`` (any spelling): columns that a parquet input stores as a dictionary of text
    come as a ``pd.Categorical`` of the same texts, without unused categories (as
    ``values.factorize_column`` reads it: no string per row decoded and hashed again), not as ``str``."""
    path = Path(path)
    with _reading(path) as parquet:
        if not parquet:
            table = _read_text(path, _wanted(columns))
            if progress is not None:
                progress(table.num_rows)
            _check_lengths(table, path)
            yield table.to_pandas()
            return
        import pyarrow.dataset as ds

        dataset = ds.dataset(path, format="parquet", partitioning="hive")
        rows = piece_rows(dataset.count_rows()) if rows is None else rows  # the files' metadata: no scan
        scanner = dataset.scanner(
            columns=_selected(dataset.schema.names, _wanted(columns)),
            batch_size=min(rows, 1 << 17),
            batch_readahead=SCAN_READAHEAD[0],  # pyarrow's default (16 batches, 4 files) holds more: memory
            fragment_readahead=SCAN_READAHEAD[1],
        )
        kept = _wanted(dictionaries) or frozenset()
        gathered: list[pa.RecordBatch] = []
        filled, pieces = 0, 0
        for batch in scanner.to_batches():  # column-pruned record batches, file after file
            if progress is not None:
                progress(batch.num_rows)
            gathered.append(batch)
            filled += batch.num_rows
            if filled >= rows:
                yield _piece(gathered, scanner.projected_schema, path, kept)
                gathered, filled, pieces = [], 0, pieces + 1
        if filled or not pieces:  # the rest; an empty register is one empty piece
            yield _piece(gathered, scanner.projected_schema, path, kept)


def _piece(
    batches: list[pa.RecordBatch], schema: pa.Schema, path: Path, dictionaries: frozenset[str] = frozenset()
) -> pd.DataFrame:
    table = _as_texts(pa.Table.from_batches(batches, schema=schema), path, dictionaries)
    _check_lengths(table, path)
    kinds = [pa.types.is_dictionary(column.type) for column in table.columns]
    if not any(kinds):
        return table.to_pandas()
    texts = table.select([i for i, kind in enumerate(kinds) if not kind]).to_pandas()
    columns = {
        name: _used_categories(column) if kind else texts[name]
        for name, column, kind in zip(table.column_names, table.columns, kinds, strict=True)
    }
    return pd.DataFrame(columns, copy=False)


def _used_categories(column: pa.ChunkedArray) -> pd.Categorical:
    """A dictionary column of text as ``to_pandas`` gives it (a categorical of its unified dictionaries'
    values), without the categories no row uses (a dictionary of several record batches holds every
    batch's values), made once from the codes as they are: not a validated categorical, its unused
    categories then counted and a second one made (2.7 + 3.6 CPU s of the main process at 12,000,000 rows).
    The dictionary is checked for repeats by Arrow and only its used values become pandas text (a row
    group's dictionary holds the whole file's values, hashed again by pandas for each piece: 0.4 CPU s a
    million rows of the 12,000,000)."""
    unified = column.unify_dictionaries()  # one dictionary, values in first-seen order, as to_pandas unifies
    if not unified.num_chunks:
        return pd.Categorical(column.to_pandas())
    dictionary = unified.chunk(0).dictionary
    if pc.count_distinct(dictionary, mode="all").as_py() < len(dictionary):  # repeats (none that parquet writers
        return pd.Categorical(column.to_pandas())  # make): refused as to_pandas refuses them ("... must be unique")
    indices = pa.chunked_array([chunk.indices for chunk in unified.chunks], column.type.index_type)
    codes = (pc.fill_null(indices, -1) if indices.null_count else indices).to_numpy()  # a missing value: code -1
    used = np.bincount(codes[codes >= 0] if indices.null_count else codes, minlength=len(dictionary)) > 0
    if not used.all():
        kind = code_type(int(used.sum()))  # np.append of -1 would make them int64, which pandas then narrows: a copy
        renumbered = np.concatenate([np.cumsum(used, dtype=kind) - 1, np.array([-1], dtype=kind)])  # -1 stays -1
        codes, dictionary = np.take(renumbered, codes), dictionary.filter(pa.array(used))
    # every code is a category's or -1 by construction: not checked again (pandas narrows the codes' type)
    dtype = pd.CategoricalDtype(pd.Index(dictionary.to_pandas()), ordered=column.type.ordered)  # ordered stays so
    return pd.Categorical.from_codes(codes, dtype=dtype, validate=False)


def _wanted(columns: Iterable[str] | None) -> frozenset[str] | None:
    return None if columns is None else frozenset(normalize_name(name) for name in columns)


@contextmanager
def _reading(path: Path) -> Iterator[bool]:
    """Reading ``path`` (yields whether it is parquet): its failures as ``EvidenceError``s."""
    if not path.exists():
        raise EvidenceError(f"{path}: no such file or directory")
    parquet = path.is_dir() or path.suffix.lower() in (".parquet", ".pq")
    expected = "a parquet file (or a directory of them)" if parquet else "CSV or pipe-delimited text"
    try:
        yield parquet
    except ReasonerError:  # EvidenceError, or a limit reached while reading
        raise
    except OSError as error:
        raise_if_memory_limit_reached()
        if error.errno is not None:  # a real system error, not pyarrow's IOError for a corrupt file
            raise EvidenceError(f"{path}: cannot read: {error.strerror or error}") from None
        raise EvidenceError(f"{path}: cannot read as HMDA data, expected {expected}: {_first_line(error)}") from None
    except Exception as error:  # pyarrow and zipfile raise their own types for corrupt files
        raise_if_memory_limit_reached()
        raise EvidenceError(f"{path}: cannot read as HMDA data, expected {expected}: {_first_line(error)}") from None


def _check_lengths(table: pa.Table, path: Path) -> None:
    """An ``EvidenceError`` naming the column and rows of a value longer than any HMDA field."""
    for name, column in zip(table.column_names, table.columns, strict=True):
        if pa.types.is_dictionary(column.type):
            continue  # kept by ``_as_texts`` only when no value of its dictionary is too long
        lengths = pc.utf8_length(column)
        longest = pc.max(lengths).as_py()
        if longest is not None and longest > MAX_FIELD_LENGTH:
            rows = pc.indices_nonzero(pc.greater(lengths, MAX_FIELD_LENGTH)).to_numpy()[:3] + 1
            listed = ", ".join(str(row) for row in rows)
            raise EvidenceError(
                f"{path}: column '{name}': expected a value of at most {MAX_FIELD_LENGTH:,} characters, "
                f"got one of {longest:,} (row{'s' if len(rows) > 1 else ''} {listed}); is it the right file?"
            )


def _selected(names: list[str], wanted: frozenset[str] | None) -> list[str]:
    return names if wanted is None else [name for name in names if normalize_name(name) in wanted]


def parquet_rows(path: str | Path) -> int | None:
    """Rows of a parquet file or dataset directory from its metadata; None for other inputs."""
    import pyarrow.dataset as ds

    path = Path(path)
    if not (path.is_dir() or path.suffix.lower() in (".parquet", ".pq")):
        return None
    try:
        return int(ds.dataset(path, format="parquet", partitioning="hive").count_rows())
    except Exception:  # unreadable: read_hmda says why
        return None


def _read_parquet(path: Path, wanted: frozenset[str] | None, progress: Callable[[int], None] | None) -> pa.Table:
    import pyarrow.dataset as ds

    dataset = ds.dataset(path, format="parquet", partitioning="hive")
    scanner = dataset.scanner(columns=_selected(dataset.schema.names, wanted))
    batches = []
    for batch in scanner.to_batches():  # column-pruned record batches, file after file
        batches.append(batch)
        if progress is not None:
            progress(batch.num_rows)
    return _as_texts(pa.Table.from_batches(batches, schema=scanner.projected_schema), path)


def _as_texts(table: pa.Table, path: Path, dictionaries: frozenset[str] = frozenset()) -> pa.Table:
    """Every column as text; a column of ``dictionaries`` (normalized names) stored as a dictionary
    of text stays one when its dictionaries hold no null and no value too long for ``_check_lengths``."""
    columns = {}
    for name, column in zip(table.column_names, table.columns, strict=True):
        if normalize_name(name) in dictionaries and _plain_dictionary(column):
            columns[name] = column
            continue
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
            column = _as_text(column, name, path)
        columns[name] = column
    return pa.table(columns)


def _plain_dictionary(column: pa.ChunkedArray) -> bool:
    """A dictionary of text whose values are neither null nor longer than any HMDA field."""
    kind = column.type
    if not pa.types.is_dictionary(kind) or not pa.types.is_string(kind.value_type):
        return False
    for chunk in column.chunks:
        values = chunk.dictionary
        longest = pc.max(pc.utf8_length(values)).as_py()
        if values.null_count or (longest is not None and longest > MAX_FIELD_LENGTH):
            return False
    return True


def _as_text(column: pa.ChunkedArray, name: str, path: Path) -> pa.ChunkedArray:
    """A parquet column as text (6037.0 → '6037': no stray '.0'); nested or non-UTF-8 bytes refused."""
    kind = column.type
    if pa.types.is_nested(kind):
        raise EvidenceError(f"{path}: column '{name}': expected text or numbers, got a column of type {kind}")
    try:
        return pc.cast(column, pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
            row = next((index + 1 for index, value in enumerate(column.to_pylist()) if not _utf8(value)), None)
            where = f" (row {row})" if row else ""
            message = f"{path}: column '{name}': expected UTF-8 text, got bytes that are not UTF-8{where}"
            raise EvidenceError(message) from None
        raise EvidenceError(f"{path}: column '{name}': expected text or numbers, got a column of type {kind}") from None


@contextmanager
def _open_binary(path: Path) -> Iterator[BinaryIO]:
    """The bytes of ``path``: decompressed (.gz, .bz2), or the one file inside a .zip."""
    if path.suffix.lower() != ".zip":
        with pa.input_stream(str(path), compression="detect") as stream:
            yield cast(BinaryIO, stream)
        return
    with zipfile.ZipFile(path) as archive:
        members = [info.filename for info in archive.infolist() if not info.is_dir()]
        if len(members) != 1:
            listed = ", ".join(f"'{name}'" for name in members[:5]) or "no file"
            raise EvidenceError(f"{path}: a .zip must hold exactly one data file, found {listed}")
        with archive.open(members[0]) as member:
            yield cast(BinaryIO, member)


def column_names(path: str | Path) -> list[str]:
    """The column names of a register, as spelled in it (a headerless text register: its layout's)."""
    import pyarrow.dataset as ds

    path = Path(path)
    with _reading(path) as parquet:
        if parquet:
            return list(ds.dataset(path, format="parquet", partitioning="hive").schema.names)
        layout = _text_format(path)
        return list(layout.columns) if layout.columns is not None else _header(path, layout.delimiter)


def _header(path: Path, delimiter: str) -> list[str]:
    with _open_binary(path) as handle:
        first = handle.read(1 << 16).split(b"\n", 1)[0].decode("utf-8-sig", errors="replace").rstrip("\r")
    return next(csv.reader([first], delimiter=delimiter))


def register_format(path: str | Path) -> RegisterFormat | None:
    """The format of a text register (``formats.detect_format``); None for parquet."""
    path = Path(path)
    with _reading(path) as parquet:
        return None if parquet else _text_format(path)


def _text_format(path: Path) -> RegisterFormat:
    with _open_binary(path) as handle:
        head = handle.read(1 << 16)
    if not head.strip():
        raise EvidenceError(f"{path}: empty file")
    lines = head.decode("utf-8-sig", errors="replace").splitlines()
    first = lines[0].rstrip("\r")
    delimiter = _detect_delimiter(first)
    quote = delimiter != "|"  # HMDA's pipe-delimited files are never quoted: a '"' is text
    fields = _split(first, delimiter, quote)
    second = _split(lines[1], delimiter, quote) if len(lines) > 1 else None
    try:
        return detect_format(fields, second, delimiter)
    except ValueError as error:
        raise EvidenceError(f"{path}: {error}") from None


def _split(line: str, delimiter: str, quote: bool) -> list[str]:
    return next(csv.reader([line], delimiter=delimiter, quoting=csv.QUOTE_MINIMAL if quote else csv.QUOTE_NONE))


def _read_text(path: Path, wanted: frozenset[str] | None) -> pa.Table:
    import pyarrow.csv as pacsv

    layout = _text_format(path)
    names = _header(path, layout.delimiter) if layout.columns is None else list(layout.columns)
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise EvidenceError(f"{path}: column '{repeated[0]}' appears more than once in the header")
    included = _selected(names, wanted)
    check_records = layout.name == "filing" and "record_identifier" not in included
    read = pacsv.ReadOptions(column_names=names, skip_rows=layout.skip, encoding="utf8")
    parse = pacsv.ParseOptions(delimiter=layout.delimiter, quote_char='"' if layout.quoted else False)
    convert = pacsv.ConvertOptions(
        column_types={name: pa.string() for name in names},
        include_columns=included + (["record_identifier"] if check_records else []),
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    try:
        with _open_binary(path) as handle:
            table = pacsv.read_csv(handle, read_options=read, parse_options=parse, convert_options=convert)
    except pa.ArrowInvalid as error:
        if "invalid UTF8" in str(error):
            raise EvidenceError(f"{path}: {_describe_encoding_error(path, layout, names)}") from None
        raise EvidenceError(f"{path}: {_describe_parse_error(path, layout, len(names), error)}") from None
    if layout.name == "filing":
        _check_record_identifiers(table.column("record_identifier"), path, layout.skip)
        if check_records:
            table = table.drop_columns(["record_identifier"])
    return table


def _check_record_identifiers(column: pa.ChunkedArray, path: Path, skip: int) -> None:
    """Every line after the transmittal sheet of a filing is a loan/application line ('2')."""
    wrong = pc.indices_nonzero(pc.not_equal(pc.utf8_trim_whitespace(column), "2")).to_numpy()
    if wrong.size:
        row = int(wrong[0]) + 1
        value = column[int(wrong[0])].as_py()
        raise EvidenceError(
            f"{path}: line {row + skip} (row {row}): expected a loan/application line starting '2|', got '{value}|...'"
        )


def _detect_delimiter(line: str) -> str:
    counts = {delimiter: _count_outside_quotes(line, delimiter) for delimiter in DELIMITERS}
    best = max(DELIMITERS, key=lambda delimiter: counts[delimiter])
    return best if counts[best] else ","


def _count_outside_quotes(line: str, character: str) -> int:
    return sum(part.count(character) for part in line.split('"')[::2])


def _describe_parse_error(path: Path, layout: RegisterFormat, width: int, error: Exception) -> str:
    """Find the first line whose number of fields is wrong (only runs on a broken file)."""
    skip = layout.skip
    with _open_binary(path) as handle:
        text = io.TextIOWrapper(handle, encoding="utf-8", errors="replace", newline="")
        if layout.quoted:
            reader = csv.reader(text, delimiter=layout.delimiter)
        else:  # HMDA's pipe-delimited formats are never quoted
            reader = csv.reader(text, delimiter=layout.delimiter, quoting=csv.QUOTE_NONE)
        for line_number, fields in enumerate(reader, start=1):
            if line_number > skip and fields and len(fields) != width:
                return f"line {line_number} (row {line_number - skip}): expected {width} fields, got {len(fields)}"
    return f"cannot parse: {_first_line(error)}"


def _describe_encoding_error(path: Path, layout: RegisterFormat, names: list[str]) -> str:
    """Name the line, row and column of the first byte that is not UTF-8 (only on a broken file)."""
    delimiter, skip = layout.delimiter, layout.skip
    with _open_binary(path) as handle:
        for line_number, line in enumerate(io.BufferedReader(cast(io.RawIOBase, handle)), start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as error:
                text = line.decode("latin-1").rstrip("\r\n")
                fields = next(csv.reader([text], delimiter=delimiter), [])
                column, offset = "", 0
                for index, field in enumerate(fields):
                    offset += len(field) + 1
                    if offset > error.start:
                        column = f"column '{names[index]}': " if index < len(names) else ""
                        break
                row = f" (row {line_number - skip})" if line_number > skip else ""
                return (
                    f"{column}expected UTF-8 text, got byte 0x{line[error.start]:02x} on line {line_number}{row}; "
                    "convert the file to UTF-8 (e.g. 'iconv -f latin1 -t utf-8')"
                )
    return "expected UTF-8 text; convert the file to UTF-8"


def _utf8(value: bytes | None) -> bool:
    try:
        value is None or value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
