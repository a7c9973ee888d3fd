"""Hostile facts tables: each gets a message naming the column, the row(s) and the expected form
(exit 2, no traceback, no output), or, where the HMDA data dictionary allows it, its rows are
excluded and counted by reason."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import REPOSITORY

from reasoner.errors import EvidenceError
from reasoner.lending.registers.hmda import INPUT_COLUMNS, clean_hmda, read_hmda
from reasoner.limits import MAX_FIELD_LENGTH

ROOT = REPOSITORY
SAMPLE = ROOT / "examples" / "hmda" / "sample.parquet"


@pytest.fixture(scope="module")
def small() -> pd.DataFrame:
    """The first 300 rows of the sample, every column as text (as published)."""
    frame = pd.read_parquet(SAMPLE).head(300)
    return pd.DataFrame({name: frame[name].astype(str) for name in frame.columns})


def _edit(frame: pd.DataFrame, column: str, row: int, value: object) -> pd.DataFrame:
    frame = frame.copy()
    frame[column] = frame[column].astype(object)
    frame.loc[row - 1, column] = value
    return frame


def _numbers(frame: pd.DataFrame, column: str, changes: dict[int, float]) -> pd.DataFrame:
    frame = frame.copy()
    values = pd.to_numeric(frame[column], errors="coerce").astype(float)
    for row, value in changes.items():
        values.iloc[row - 1] = value
    frame[column] = values
    return frame


def _cleaned(path: Path):  # type: ignore[no-untyped-def]
    return clean_hmda(read_hmda(path, INPUT_COLUMNS), path.name)


def _error(path: Path) -> str:
    with pytest.raises(EvidenceError) as caught:
        _cleaned(path)
    rendered = caught.value.render()
    assert rendered.startswith("error: ") and "Traceback" not in rendered
    return rendered


WriteCase = Callable[[pd.DataFrame, Path], Path]


def _parquet(change: Callable[[pd.DataFrame], pd.DataFrame]) -> WriteCase:
    def write(frame: pd.DataFrame, folder: Path) -> Path:
        path = folder / "facts.parquet"
        change(frame).to_parquet(path)
        return path

    return write


def _text(make: Callable[[pd.DataFrame], bytes], name: str = "facts.csv") -> WriteCase:
    def write(frame: pd.DataFrame, folder: Path) -> Path:
        path = folder / name
        path.write_bytes(make(frame))
        return path

    return write


def _latin1_in_utf8(frame: pd.DataFrame) -> bytes:
    lines = frame.to_csv(index=False).encode("utf-8").split(b"\n")
    lines[10] = lines[10].replace(b"White", b"Wh\xe9ite", 1)  # one latin-1 byte on data row 10
    return b"\n".join(lines)


def _with_ids(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(application_id=[f"A{i}" for i in range(len(frame))])


def _typed(kind: str) -> WriteCase:
    """The sample with its income column replaced by a column of another parquet type."""

    def write(frame: pd.DataFrame, folder: Path) -> Path:
        import pyarrow as pa
        import pyarrow.parquet as pq

        values = {
            "list": pa.array([[1, 2]] * len(frame)),
            "struct": pa.array([{"a": 1}] * len(frame)),
            "binary": pa.array([b"12"] * 4 + [b"\xff\xfe"] + [b"12"] * (len(frame) - 5)),
            "bool": pa.array([True] * len(frame)),
        }[kind]
        table = pa.Table.from_pandas(frame, preserve_index=False)
        path = folder / "facts.parquet"
        pq.write_table(table.set_column(table.column_names.index("income"), "income", values), path)
        return path

    return write


def _corrupt(frame: pd.DataFrame, folder: Path) -> Path:
    path = folder / "facts.parquet"
    frame.to_parquet(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] + b"\x00" * 64 + data[len(data) // 2 :])
    return path


def _truncated(frame: pd.DataFrame, folder: Path) -> Path:
    path = folder / "facts.parquet"
    frame.to_parquet(path)
    path.write_bytes(path.read_bytes()[:5000])
    return path


REFUSED: list[tuple[str, WriteCase, list[str]]] = [
    ("missing column", _parquet(lambda f: f.drop(columns=["income"])), ["facts.parquet: missing column 'income'"]),
    ("wrong type", _parquet(lambda f: _edit(f, "income", 6, "abc")),
     ["column 'income': expected a number, 'NA' or 'Exempt', got 'abc' (row 6)"]),
    ("empty file", _text(lambda f: b""), ["facts.csv: empty file"]),
    ("header only", _text(lambda f: f.iloc[:0].to_csv(index=False).encode()), ["facts.csv: no rows"]),
    ("zero rows parquet", _parquet(lambda f: f.iloc[:0]), ["facts.parquet: no rows"]),
    ("zero usable rows", _parquet(lambda f: f.assign(action_taken="4")),
     ["facts.parquet: no usable rows: 300 read; excluded: not a decision 300"]),
    ("duplicate ids", _parquet(lambda f: _edit(_with_ids(f), "application_id", 4, "A1")),
     ["column 'application_id': duplicate application ids 'A1' (rows 2, 4)"]),
    ("empty id", _parquet(lambda f: _edit(f.assign(uli=[f"U{i}" for i in range(len(f))]), "uli", 9, "")),
     ["column 'uli': expected an application id, got an empty value (row 9)"]),
    ("corrupt parquet", _corrupt, ["facts.parquet: cannot read as HMDA data, expected a parquet file"]),
    ("truncated parquet", _truncated, ["facts.parquet: cannot read as HMDA data, expected a parquet file"]),
    ("text named .parquet", _text(lambda f: b"lei,income\nA,1\n", "facts.parquet"), ["expected a parquet file"]),
    ("list column", _typed("list"), ["column 'income': expected text or numbers, got a column of type list<"]),
    ("struct column", _typed("struct"), ["column 'income': expected text or numbers, got a column of type struct<"]),
    ("non-UTF-8 binary column", _typed("binary"),
     ["column 'income': expected UTF-8 text, got bytes that are not UTF-8 (row 5)"]),
    ("boolean column", _typed("bool"),
     ["column 'income': expected a number, 'NA' or 'Exempt', got 'true' (rows 1, 2, 3)"]),
    ("latin-1 byte in UTF-8", _text(_latin1_in_utf8),
     ["column 'derived_race': expected UTF-8 text, got byte 0xe9 on line 11 (row 10)", "iconv"]),
    ("latin-1 file", _text(lambda f: f.to_csv(index=False).replace("White", "Whité").encode("latin-1")),
     ["column 'derived_race': expected UTF-8 text, got byte 0xe9", "convert the file to UTF-8"]),
    ("huge string", _parquet(lambda f: _edit(f, "lei", 3, "X" * 5_000_000)),
     [f"column 'lei': expected a value of at most {MAX_FIELD_LENGTH:,} characters, got one of 5,000,000 (row 3)"]),
    ("huge string in CSV", _text(lambda f: _edit(f, "derived_race", 7, "W" * 200_000).to_csv().encode()),
     ["column 'derived_race': expected a value of at most", "(row 7)"]),
    ("inf number", _parquet(lambda f: _numbers(f, "income", {6: np.inf})),
     ["column 'income': expected a number, 'NA' or 'Exempt', got 'inf' (row 6)"]),
    ("-inf number", _parquet(lambda f: _numbers(f, "loan_amount", {2: -np.inf})),
     ["column 'loan_amount'", "got '-inf' (row 2)"]),
    ("NaN and inf as text", _parquet(lambda f: _edit(_edit(f, "income", 5, "NaN"), "income", 6, "inf")),
     ["column 'income': expected a number, 'NA' or 'Exempt', got 'NaN' (row 5), 'inf' (row 6)"]),
    ("action code outside the dictionary", _parquet(lambda f: _edit(f, "action_taken", 8, "9")),
     ["column 'action_taken': expected one of 1, 2, 3, 4, 5, 6, 7, 8, got '9' (row 8)"]),
    ("loan type outside the dictionary", _parquet(lambda f: _edit(f, "loan_type", 8, "7")),
     ["column 'loan_type': expected one of 1, 2, 3, 4, got '7' (row 8)"]),
    ("DTI outside the dictionary", _parquet(lambda f: _edit(f, "debt_to_income_ratio", 3, "lots")),
     ["column 'debt_to_income_ratio': expected a number, a published bucket such as '20%-<30%'", "got 'lots' (row 3)"]),
    ("census tract outside the dictionary", _parquet(lambda f: _edit(f, "census_tract", 5, "12ab")),
     ["column 'census_tract': expected a census tract of 11 digits or 'NA', got '12ab' (row 5)"]),
    ("county outside the dictionary", _parquet(lambda f: _edit(f, "county_code", 4, "060370")),
     ["column 'county_code': expected a county (state + county FIPS) of 5 digits or 'NA', got '060370' (row 4)"]),
    ("age outside the dictionary", _parquet(lambda f: _edit(f, "applicant_age", 3, "old")),
     ["column 'applicant_age': expected one of <25, 25-34, 35-44, 45-54, 55-64, 65-74, >74, 8888, 9999 or 'NA'",
      "got 'old' (row 3)"]),
    ("empty LEI", _parquet(lambda f: _edit(f, "lei", 3, "")),
     ["column 'lei': expected an LEI, got an empty value (row 3)"]),
    ("ragged CSV", _text(lambda f: (f.to_csv(index=False) + "a,b\n").encode()),
     ["line 302 (row 301): expected 99 fields, got 2"]),
    ("binary junk", _text(lambda f: bytes(range(256)) * 10), ["facts.csv:"]),
]


@pytest.mark.parametrize(("case", "write", "expected"), REFUSED, ids=[case for case, _, _ in REFUSED])
def test_a_hostile_table_is_refused_naming_column_row_and_expected_form(
    small: pd.DataFrame, tmp_path: Path, case: str, write: WriteCase, expected: list[str]
) -> None:
    message = _error(write(small, tmp_path))
    for part in expected:
        assert part in message, message


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_a_csv_with_another_delimiter_is_read_the_same(small: pd.DataFrame, tmp_path: Path, delimiter: str) -> None:
    path = tmp_path / "facts.csv"
    path.write_text(small.to_csv(index=False, sep=delimiter))
    comma = tmp_path / "comma.csv"
    comma.write_text(small.to_csv(index=False))
    assert _cleaned(path).frame.equals(_cleaned(comma).frame)


def test_codes_the_dictionary_allows_to_exclude_are_excluded_and_counted(small: pd.DataFrame, tmp_path: Path) -> None:
    before = _cleaned(_write(small, tmp_path / "before.parquet"))
    first, second, third = (int(row) for row in before.usable["row"].iloc[:3])
    changed = _edit(_edit(small, "derived_race", first, "Martian"), "income", second, "NA")
    changed = _numbers(changed, "combined_loan_to_value_ratio", {third: np.nan})
    after = _cleaned(_write(changed, tmp_path / "facts.parquet"))
    frame = after.frame.set_index("row")
    assert frame.loc[first, "excluded"] == "unknown race code"
    assert frame.loc[second, "excluded"] == "missing income"
    assert frame.loc[third, "excluded"] == "missing cltv"
    for reason in ("unknown race code", "missing income", "missing cltv"):
        assert after.exclusions[reason] == before.exclusions[reason] + 1
    assert len(after.usable) == len(before.usable) - 3


def _write(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_parquet(path)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("case", ["latin-1 byte in UTF-8", "zero usable rows"])
def test_the_command_line_exits_2_with_the_message_and_writes_nothing(
    small: pd.DataFrame, tmp_path: Path, reason: Callable[..., object], case: str
) -> None:
    _, write, expected = next(item for item in REFUSED if item[0] == case)
    path = write(small, tmp_path)
    done = reason([ROOT / "rules", path, "-o", tmp_path / "out"], timeout=120)
    assert done.returncode == 2, done.stderr  # type: ignore[attr-defined]
    assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr  # type: ignore[attr-defined]
    assert expected[0] in done.stderr  # type: ignore[attr-defined]
    assert not (tmp_path / "out").exists()


# -- fuzzing: mutated CSV bytes -----------------------------------------------------------------

FUZZ_PIECES = [b",", b";", b"|", b"\t", b'"', b"\n", b"\r\n", b"\xe9", b"\xff", b"\x00", b"NA", b"Exempt", b"NaN",
               b"inf", b"-1", b"1e400", b"9999", b"", b"x" * 2000, "é".encode(), b"\xef\xbb\xbf"]


@pytest.fixture(scope="module")
def small_csv(small: pd.DataFrame) -> bytes:
    return small.head(40).to_csv(index=False).encode("utf-8")


CSV_EDIT = st.tuples(st.integers(0, 4), st.integers(0, 1_000_000), st.integers(0, 300), st.integers(0, 50))


@pytest.mark.slow
@settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(st.lists(CSV_EDIT, max_size=6))
def test_mutated_csv_bytes_give_a_table_or_an_evidence_error(
    small_csv: bytes, tmp_path: Path, edits: list[tuple[int, int, int, int]]
) -> None:
    data = small_csv
    for operation, start, length, piece in edits:
        i = start % (len(data) + 1)
        j = min(len(data), i + length)
        if operation == 0:
            data = data[:i] + FUZZ_PIECES[piece % len(FUZZ_PIECES)] + data[i:]
        elif operation == 1:
            data = data[:i] + data[j:]
        elif operation == 2:
            data = data[:i] + data[i:j] * 2 + data[j:]
        elif operation == 3:
            data = data[:i] + FUZZ_PIECES[piece % len(FUZZ_PIECES)] + data[j:]
        else:
            data = data[:i]
    path = tmp_path / "fuzzed.csv"
    path.write_bytes(data)
    try:
        cleaned = _cleaned(path)
    except EvidenceError as error:
        message = error.render()
        assert message.startswith("error: ") and "fuzzed.csv" in message, message
    else:
        assert len(cleaned.frame) == cleaned.rows_read and sum(cleaned.exclusions.values()) < cleaned.rows_read
