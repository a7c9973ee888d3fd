"""HMDA ingest: the published format's traps, exclusions and error messages."""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from support import REPOSITORY

from reasoner.errors import EvidenceError
from reasoner.lending import CLEAN_COLUMNS, EXCLUSION_REASONS, INPUT_COLUMNS, clean_hmda, read_hmda
from reasoner.lending.registers.fields import PUBLISHED_COLUMNS, normalize_name

# Data Browser spelling (hyphens), as the public data dictionary writes the names.
BROWSER = {
    "lei": ["LEI00000000000000001", "LEI00000000000000001", "LEI00000000000000002", "LEI00000000000000002"],
    "activity_year": ["2022", "2022", "2022", "2022"],
    "derived_msa-md": ["31084", "31084", "12060", "99999"],
    "state_code": ["CA", "CA", "GA", "NA"],
    "county_code": ["06037", "06037", "13121", "NA"],
    "census_tract": ["06037201300", "06037201300", "13121000100", "NA"],
    "derived_race": ["White", "Black or African American", "Asian", "Race Not Available"],
    "derived_ethnicity": ["Not Hispanic or Latino", "Not Hispanic or Latino", "Joint", "Ethnicity Not Available"],
    "derived_sex": ["Male", "Female", "Joint", "Sex Not Available"],
    "applicant_age": ["25-34", "<25", "8888", ">74"],
    "action_taken": ["1", "3", "2", "4"],
    "loan_type": ["1", "2", "3", "1"],
    "loan_purpose": ["1", "31", "32", "1"],
    "lien_status": ["1", "1", "2", "1"],
    "open-end_line_of_credit": ["2", "2", "1111", "2"],
    "loan_amount": ["255000", "105000", "5000", "305000"],
    "combined_loan_to_value_ratio": ["80", "96.5", "Exempt", "NA"],
    "interest_rate": ["5.125", "NA", "Exempt", "NA"],
    "rate_spread": ["0.351", "NA", "Exempt", "NA"],
    "property_value": ["325000", "115000", "Exempt", "NA"],
    "income": ["85", "40", "120", "NA"],
    "debt_to_income_ratio": ["<20%", "42", "Exempt", "NA"],
    "denial_reason-1": ["10", "1", "1111", "10"],
    "tract_minority_population_percent": ["61.25", "61.25", "12.5", ""],
    "tract_to_msa_income_percentage": ["74", "74", "131", ""],
}


def browser_frame(**changes: list[str]) -> pd.DataFrame:
    data = {**BROWSER, **changes}
    return pd.DataFrame({name: pd.Series(values, dtype="str") for name, values in data.items()})


def snapshot_frame() -> pd.DataFrame:
    """The same rows spelled as the snapshot files spell their columns (underscores)."""
    frame = browser_frame()
    return frame.rename(
        columns={
            "derived_msa-md": "derived_msa_md",
            "open-end_line_of_credit": "open_end_line_of_credit",
            "denial_reason-1": "denial_reason_1",
        }
    )


def error_of(call: object, *args: object) -> str:
    with pytest.raises(EvidenceError) as caught:
        call(*args)  # type: ignore[operator]
    return str(caught.value)


# --- the cleaned frame ------------------------------------------------------------------------


def test_cleaned_columns_types_and_values() -> None:
    cleaned = clean_hmda(browser_frame(), "lar.csv")
    frame = cleaned.frame
    assert tuple(frame.columns) == CLEAN_COLUMNS
    assert cleaned.rows_read == 4 and len(frame) == 4
    assert frame["row"].tolist() == [1, 2, 3, 4]
    assert cleaned.id_column == "row" and frame["application_id"].tolist() == ["1", "2", "3", "4"]
    assert frame["county_code"].tolist()[:3] == ["06037", "06037", "13121"]
    assert frame["census_tract"].tolist()[0] == "06037201300"
    assert frame["msa"].tolist() == ["31084", "31084", "12060", "99999"]
    assert frame["state_code"].isna().tolist() == [False, False, False, True]
    assert frame["decision"].tolist() == ["approved", "denied", "approved", "other"]
    assert frame["action_taken"].dtype == np.int64 and frame["loan_purpose"].tolist() == [1, 31, 32, 1]
    assert frame["income"].tolist()[:3] == [85_000.0, 40_000.0, 120_000.0]  # published in thousands
    assert frame["loan_amount"].tolist() == [255_000.0, 105_000.0, 5_000.0, 305_000.0]
    assert frame["cltv"].tolist()[:2] == [80.0, 96.5]
    assert frame["interest_rate"].tolist()[0] == 5.125 and frame["rate_spread"].tolist()[0] == 0.351
    assert frame["tract_minority_pct"].tolist()[0] == 61.25 and np.isnan(frame["tract_income_pct"].iloc[3])
    for name in ("race", "ethnicity", "sex", "age", "lei", "excluded", "decision", "census_tract"):
        assert frame[name].dtype == "str", name
    for name in ("loan_amount", "income", "dti", "cltv", "property_value", "rate_spread", "denial_reason_1"):
        assert frame[name].dtype == np.float64, name


def test_hyphenated_and_underscored_names_clean_alike() -> None:
    browser = clean_hmda(browser_frame(), "browser.csv").frame
    snapshot = clean_hmda(snapshot_frame(), "snapshot.txt").frame
    pd.testing.assert_frame_equal(browser, snapshot)


def test_normalize_name_spellings() -> None:
    assert normalize_name("derived_msa-md") == "derived_msa_md"
    assert normalize_name("co-applicant_race-1") == "co_applicant_race_1"
    assert normalize_name("\ufeffOpen-End_Line_Of_Credit ") == "open_end_line_of_credit"
    assert len({normalize_name(name) for name in PUBLISHED_COLUMNS}) == 99


def test_loan_to_value_ratio_stands_in_for_cltv() -> None:
    frame = browser_frame().rename(columns={"combined_loan_to_value_ratio": "loan_to_value_ratio"})
    assert clean_hmda(frame, "2018.csv").frame["cltv"].tolist()[:2] == [80.0, 96.5]
    both = browser_frame()
    both["loan_to_value_ratio"] = ["1", "2", "3", "4"]
    assert clean_hmda(both, "both.csv").frame["cltv"].tolist()[:2] == [80.0, 96.5]


@pytest.mark.parametrize(
    ("published", "number"),
    [
        ("<20%", 10.0),
        ("20%-<30%", 25.0),
        ("30%-<36%", 33.0),
        ("36", 36.0),
        ("37%", 37.0),
        ("49", 49.0),
        ("50%-60%", 55.0),
        (">60%", 70.0),
        ("43.5", 43.5),
    ],
)
def test_dti_buckets_become_numbers(published: str, number: float) -> None:
    frame = browser_frame(debt_to_income_ratio=[published, "NA", "Exempt", "NA"])
    cleaned = clean_hmda(frame, "lar.csv").frame
    assert cleaned["dti"].iloc[0] == number
    assert np.isnan(cleaned["dti"].iloc[1]) and np.isnan(cleaned["dti"].iloc[2])


def test_na_exempt_and_codes_are_missing() -> None:
    frame = clean_hmda(browser_frame(), "lar.csv").frame
    assert frame["age"].tolist()[:2] == ["25-34", "<25"] and pd.isna(frame["age"].iloc[2])  # 8888
    assert np.isnan(frame["cltv"].iloc[2]) and np.isnan(frame["property_value"].iloc[2])  # Exempt
    assert np.isnan(frame["rate_spread"].iloc[1])  # NA: denied (V657)
    assert frame["denial_reason_1"].tolist()[1] == 1.0
    assert frame["denial_reason_1"].isna().tolist() == [True, False, True, True]  # 10, 1111


def test_co_applicant_age_9999_is_missing() -> None:
    frame = clean_hmda(browser_frame(applicant_age=["9999", "NA", "", "45-54"]), "lar.csv").frame
    assert frame["age"].isna().tolist() == [True, True, True, False]


@pytest.mark.parametrize(
    ("action", "decision"),
    [
        ("1", "approved"),
        ("2", "approved"),
        ("3", "denied"),
        ("4", "other"),
        ("5", "other"),
        ("6", "other"),
        ("7", "other"),
        ("8", "other"),
    ],
)
def test_decision_of_every_action(action: str, decision: str) -> None:
    frame = clean_hmda(browser_frame(action_taken=[action, "1", "1", "1"]), "lar.csv").frame
    assert frame["decision"].iloc[0] == decision
    assert (frame["excluded"].iloc[0] == "not a decision") == (decision == "other")


def test_denials_without_pricing_stay_usable() -> None:
    frame = clean_hmda(browser_frame(), "lar.csv").frame
    denied = frame[frame["decision"] == "denied"]
    assert len(denied) == 1 and denied["rate_spread"].isna().all() and denied["interest_rate"].isna().all()
    assert (denied["excluded"] == "").all()


def test_leading_zeros_come_back_from_numbers() -> None:
    frame = browser_frame()
    frame["county_code"] = [6037.0, 6037.0, 13121.0, np.nan]
    frame["census_tract"] = [6037201300, 6037201300, 13121000100, 13121000100]
    cleaned = clean_hmda(frame, "numbers.parquet").frame
    assert cleaned["county_code"].tolist()[:3] == ["06037", "06037", "13121"] and pd.isna(
        cleaned["county_code"].iloc[3]
    )
    assert cleaned["census_tract"].tolist()[0] == "06037201300"


def test_categorical_and_numeric_inputs_clean_alike() -> None:
    text = clean_hmda(browser_frame(), "a").frame
    categorical = clean_hmda(browser_frame().astype("category"), "a").frame
    pd.testing.assert_frame_equal(text, categorical)
    numeric = browser_frame()
    numeric["loan_amount"] = [255000, 105000, 5000, 305000]
    numeric["action_taken"] = [1, 3, 2, 4]
    pd.testing.assert_frame_equal(text, clean_hmda(numeric, "a").frame)


# --- exclusions ------------------------------------------------------------------------------


def test_exclusions_first_reason_and_counts() -> None:
    frame = pd.concat([browser_frame().iloc[[0]]] * 5, ignore_index=True)
    frame["action_taken"] = ["1", "3", "5", "1", "2"]
    frame["income"] = ["85", "NA", "NA", "60", "70"]
    frame["debt_to_income_ratio"] = ["NA", "42", "NA", "Exempt", "30%-<36%"]
    frame["derived_race"] = ["White", "Black or African American", "Asian", "Martian", "Asian"]
    cleaned = clean_hmda(frame, "lar.csv")
    assert cleaned.frame["excluded"].tolist() == ["missing dti", "missing income", "not a decision", "exempt dti", ""]
    assert list(cleaned.exclusions) == list(EXCLUSION_REASONS)
    assert cleaned.exclusions["not a decision"] == 1 and cleaned.exclusions["missing income"] == 1
    assert cleaned.exclusions["missing dti"] == 1 and cleaned.exclusions["exempt dti"] == 1
    assert cleaned.exclusions["unknown race code"] == 0  # row 4 already excluded for its DTI
    assert sum(cleaned.exclusions.values()) == 5 - len(cleaned.usable) == 4
    assert cleaned.usable["row"].tolist() == [5]


def test_race_reasons_and_spelling() -> None:
    frame = browser_frame(
        derived_race=["WHITE", "Martian", "Free Form Text Only", "2 or more minority races"],
        action_taken=["1", "1", "1", "1"],
        income=["85", "40", "120", "50"],
        debt_to_income_ratio=["40", "40", "40", "40"],
        combined_loan_to_value_ratio=["80", "80", "80", "80"],
    )
    cleaned = clean_hmda(frame, "lar.csv")
    assert cleaned.frame["race"].tolist() == ["White", "Martian", "Free Form Text Only", "2 or more minority races"]
    # row 3: race not available, ethnicity joint and sex joint: no comparison can place it
    assert cleaned.frame["excluded"].tolist() == ["", "unknown race code", "no group known", ""]
    assert cleaned.exclusions["unknown race code"] == 1 and cleaned.exclusions["no group known"] == 1


def test_missing_cltv_and_loan_amount_reasons() -> None:
    frame = browser_frame(
        action_taken=["1", "1", "1", "1"],
        income=["85", "40", "120", "50"],
        debt_to_income_ratio=["40", "40", "40", "40"],
        combined_loan_to_value_ratio=["NA", "Exempt", "80", "80"],
        loan_amount=["255000", "105000", "", "305000"],
        derived_race=["White"] * 4,
    )
    cleaned = clean_hmda(frame, "lar.csv")
    assert cleaned.frame["excluded"].tolist() == ["missing cltv", "exempt cltv", "missing loan amount", ""]
    assert len(cleaned.usable) == 1


def test_optional_columns_may_be_absent() -> None:
    frame = browser_frame().drop(columns=["census_tract", "rate_spread", "denial_reason-1", "applicant_age"])
    cleaned = clean_hmda(frame, "lar.csv")
    absent = set(cleaned.absent_columns)
    assert {"census_tract", "rate_spread", "denial_reason_1", "applicant_age"} <= absent
    assert not absent & {column.replace("-", "_") for column in frame.columns}
    assert cleaned.frame["census_tract"].isna().all() and cleaned.frame["rate_spread"].isna().all()


@pytest.mark.parametrize("column", ["application_id", "uli", "ULI"])
def test_ids_from_application_id_or_uli(column: str) -> None:
    frame = browser_frame()
    frame[column] = ["A1", " A2 ", "A3", "A4"]
    cleaned = clean_hmda(frame, "lar.csv")
    assert cleaned.id_column == normalize_name(column)
    assert cleaned.frame["application_id"].tolist() == ["A1", "A2", "A3", "A4"]


# --- errors ----------------------------------------------------------------------------------


def test_missing_column_with_did_you_mean() -> None:
    frame = browser_frame().rename(columns={"income": "incme"})
    assert error_of(clean_hmda, frame, "lar.csv") == "lar.csv: missing column 'income' (did you mean 'incme'?)"


def test_missing_columns_listed() -> None:
    frame = browser_frame().drop(columns=["lei", "debt_to_income_ratio"])
    message = error_of(clean_hmda, frame, "lar.csv")
    assert message == "lar.csv: missing columns 'lei', 'debt_to_income_ratio'"


def test_no_hmda_columns_at_all() -> None:
    message = error_of(clean_hmda, pd.DataFrame({"a": ["1"], "b": ["2"]}), "x.csv")
    assert message.startswith("x.csv: missing columns 'lei', 'action_taken'")
    assert message.endswith("; no column is named like an HMDA field (a register with its own columns: map them in "
                            "[columns] of audit.toml)")


def test_same_field_twice() -> None:
    frame = browser_frame()
    frame["derived_msa_md"] = frame["derived_msa-md"]
    message = error_of(clean_hmda, frame, "lar.csv")
    assert message == "lar.csv: columns 'derived_msa-md' and 'derived_msa_md' are the same field 'derived_msa_md'"


def test_no_rows() -> None:
    assert error_of(clean_hmda, browser_frame().iloc[:0], "lar.csv") == "lar.csv: no rows"


def test_no_usable_rows() -> None:
    frame = browser_frame(action_taken=["4", "5", "6", "3"], income=["1", "2", "3", "NA"])
    message = error_of(clean_hmda, frame, "lar.csv")
    assert message == "lar.csv: no usable rows: 4 read; excluded: not a decision 3, missing income 1"


def test_non_numeric_value_names_column_value_and_row() -> None:
    frame = browser_frame(income=["85", "abc", "120", "NA"])
    message = error_of(clean_hmda, frame, "facts.csv")
    assert message == "facts.csv: column 'income': expected a number, 'NA' or 'Exempt', got 'abc' (row 2)"


def test_many_bad_values_are_summarised() -> None:
    rows = 12
    frame = pd.concat([browser_frame()] * (rows // 4), ignore_index=True)
    frame["loan_amount"] = ["1", "x", "x", "2", "y", "x", "z", "w", "x", "1", "1", "v"]
    message = error_of(clean_hmda, frame, "lar.csv")
    assert message == (
        "lar.csv: column 'loan_amount': expected a number, 'NA' or 'Exempt', "
        "got 'x' (rows 2, 3, 6), 'y' (row 5), 'z' (row 7) and 3 more rows"
    )


def test_bad_dti_text() -> None:
    frame = browser_frame(debt_to_income_ratio=["<20%", "about 40", "NA", "NA"])
    message = error_of(clean_hmda, frame, "lar.csv")
    assert message == (
        "lar.csv: column 'debt_to_income_ratio': expected a number, a published bucket such as '20%-<30%', "
        "'NA' or 'Exempt', got 'about 40' (row 2)"
    )


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [
        ("action_taken", "9", "expected one of 1, 2, 3, 4, 5, 6, 7, 8, got '9' (row 3)"),
        ("action_taken", "", "expected one of 1, 2, 3, 4, 5, 6, 7, 8, got an empty value (row 3)"),
        ("loan_purpose", "3", "expected one of 1, 2, 31, 32, 4, 5, got '3' (row 3)"),
        ("lien_status", "NA", "expected one of 1, 2, got 'NA' (row 3)"),
        ("denial_reason-1", "12", "expected one of 1 … 10, 1111 or 'NA', got '12' (row 3)"),
    ],
)
def test_undocumented_codes(column: str, value: str, expected: str) -> None:
    values = list(BROWSER[column])
    values[2] = value
    assert (
        error_of(clean_hmda, browser_frame(**{column: values}), "lar.csv") == f"lar.csv: column '{column}': {expected}"
    )


def test_duplicate_application_ids() -> None:
    frame = browser_frame()
    frame["application_id"] = ["A1", "A2", "A1", "A2"]
    message = error_of(clean_hmda, frame, "lar.csv")
    assert message == "lar.csv: column 'application_id': duplicate application ids 'A1' (rows 1, 3), 'A2' (rows 2, 4)"


def test_empty_application_id_and_lei() -> None:
    frame = browser_frame()
    frame["uli"] = ["A1", "", "A3", "A4"]
    assert (
        error_of(clean_hmda, frame, "l.csv")
        == "l.csv: column 'uli': expected an application id, got an empty value (row 2)"
    )
    frame = browser_frame(lei=["L1", "L1", "NA", ""])
    assert (
        error_of(clean_hmda, frame, "l.csv") == "l.csv: column 'lei': expected an LEI, got an empty value (rows 3, 4)"
    )


# --- reading ---------------------------------------------------------------------------------


def write_text(path: Path, frame: pd.DataFrame, delimiter: str, header: bool = True) -> Path:
    lines = [delimiter.join(frame.columns)] if header else []
    lines += [delimiter.join(row) for row in frame.astype(str).itertuples(index=False)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(("name", "delimiter"), [("lar.csv", ","), ("lar.txt", "|"), ("lar.tsv", "\t")])
def test_text_files_read_as_strings(tmp_path: Path, name: str, delimiter: str) -> None:
    path = write_text(tmp_path / name, browser_frame(), delimiter)
    raw = read_hmda(path)
    assert list(raw.columns) == list(BROWSER)
    assert all(dtype == "str" for dtype in raw.dtypes)
    assert raw["county_code"].tolist()[0] == "06037" and raw["census_tract"].tolist()[0] == "06037201300"
    assert raw["state_code"].tolist()[3] == "NA" and raw["tract_minority_population_percent"].tolist()[3] == ""
    pd.testing.assert_frame_equal(clean_hmda(raw, name).frame, clean_hmda(browser_frame(), name).frame)


def test_headerless_snapshot_pipe_text(tmp_path: Path) -> None:
    frame = pd.DataFrame({name: ["NA"] * 2 for name in PUBLISHED_COLUMNS})
    frame["lei"] = ["L1", "L2"]
    frame["county_code"] = ["06037", "01001"]
    raw = read_hmda(write_text(tmp_path / "2022_public_lar.txt", frame, "|", header=False))
    assert list(raw.columns) == list(PUBLISHED_COLUMNS) and len(raw) == 2
    assert raw["county_code"].tolist() == ["06037", "01001"]


def test_parquet_file_and_dataset_directory(tmp_path: Path) -> None:
    table = pa.table({"county_code": pa.array([6037.0, None]), "lei": ["L1", "L2"], "action_taken": pa.array([1, 3])})
    pq.write_table(table, tmp_path / "lar.parquet")
    raw = read_hmda(tmp_path / "lar.parquet")
    assert raw["county_code"].tolist()[0] == "6037" and pd.isna(raw["county_code"].iloc[1])
    assert raw["action_taken"].tolist() == ["1", "3"] and all(dtype == "str" for dtype in raw.dtypes)
    directory = tmp_path / "dataset"
    directory.mkdir()
    pq.write_table(table, directory / "part-0.parquet")
    pq.write_table(table, directory / "part-1.parquet")
    assert len(read_hmda(directory)) == 4


def test_compressed_and_zipped_text(tmp_path: Path) -> None:
    plain = write_text(tmp_path / "lar.txt", browser_frame(), "|")
    (tmp_path / "lar.txt.gz").write_bytes(gzip.compress(plain.read_bytes()))
    with zipfile.ZipFile(tmp_path / "lar.zip", "w") as archive:
        archive.write(plain, "2022_public_lar_pipe.txt")
    expected = read_hmda(plain)
    pd.testing.assert_frame_equal(read_hmda(tmp_path / "lar.txt.gz"), expected)
    pd.testing.assert_frame_equal(read_hmda(tmp_path / "lar.zip"), expected)


def test_read_errors(tmp_path: Path) -> None:
    assert error_of(read_hmda, tmp_path / "none.csv") == f"{tmp_path / 'none.csv'}: no such file or directory"
    (tmp_path / "empty.csv").write_text("\n")
    assert error_of(read_hmda, tmp_path / "empty.csv") == f"{tmp_path / 'empty.csv'}: empty file"
    (tmp_path / "ragged.csv").write_text("lei,income\nL1,1\nL2,2,3\n")
    assert (
        error_of(read_hmda, tmp_path / "ragged.csv")
        == f"{tmp_path / 'ragged.csv'}: line 3 (row 2): expected 2 fields, got 3"
    )
    with zipfile.ZipFile(tmp_path / "two.zip", "w") as archive:
        archive.writestr("a.txt", "lei\nL1\n")
        archive.writestr("b.txt", "lei\nL2\n")
    message = error_of(read_hmda, tmp_path / "two.zip")
    assert message == f"{tmp_path / 'two.zip'}: a .zip must hold exactly one data file, found 'a.txt', 'b.txt'"
    (tmp_path / "broken.parquet").write_bytes(b"not parquet")
    assert error_of(read_hmda, tmp_path / "broken.parquet").startswith(f"{tmp_path / 'broken.parquet'}: cannot read")


def test_header_only_file_has_no_rows(tmp_path: Path) -> None:
    path = write_text(tmp_path / "lar.csv", browser_frame().iloc[:0], ",")
    assert error_of(clean_hmda, read_hmda(path), "lar.csv") == "lar.csv: no rows"


@pytest.mark.parametrize("name", ["lar.csv", "lar.parquet"])
def test_read_only_the_columns_clean_uses(tmp_path: Path, name: str) -> None:
    frame = browser_frame()
    frame["applicant_race-2"] = ""
    frame["co-applicant_age"] = "9999"
    path = tmp_path / name
    if name.endswith(".parquet"):
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    else:
        write_text(path, frame, ",")
    raw = read_hmda(path, columns=INPUT_COLUMNS)
    assert "applicant_race-2" not in raw.columns and "co-applicant_age" not in raw.columns
    assert {"derived_msa-md", "denial_reason-1", "income"} <= set(raw.columns)
    pd.testing.assert_frame_equal(clean_hmda(raw, name).frame, clean_hmda(browser_frame(), name).frame)


# --- read and cleaned piece by piece (hmda.read_clean) ------------------------------------------

SAMPLE = REPOSITORY / "examples" / "hmda" / "sample.parquet"


@pytest.mark.parametrize("batch", [700, 5000, 10**6])
def test_read_in_pieces_gives_the_frame_of_one_piece(monkeypatch: pytest.MonkeyPatch, batch: int) -> None:
    from reasoner.lending.registers import files
    from reasoner.lending.registers.hmda import read_clean

    whole = clean_hmda(read_hmda(SAMPLE, INPUT_COLUMNS), SAMPLE.name)
    monkeypatch.setattr(files, "BATCH_ROWS", batch)
    pieces = []
    monkeypatch.setattr(files, "_piece", _counting(files._piece, pieces))
    cleaned = read_clean(SAMPLE, SAMPLE.name)
    assert len(pieces) == -(-whole.rows_read // batch)
    pd.testing.assert_frame_equal(cleaned.frame, whole.frame)
    assert list(cleaned.frame.dtypes) == list(whole.frame.dtypes)
    assert (cleaned.exclusions, cleaned.id_column) == (whole.exclusions, whole.id_column)
    assert cleaned.rows_read == whole.rows_read


def _counting(function, calls: list[int]):  # type: ignore[no-untyped-def]
    def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        return function(*args, **kwargs)

    return counted


def _register(rows: int) -> pd.DataFrame:
    frame = pd.DataFrame({name: values * (rows // 4) for name, values in BROWSER.items()})
    frame["application_id"] = [f"A{number:05d}" for number in range(len(frame))]
    return frame


def test_pieces_without_ids_number_rows_of_the_whole_input(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from reasoner.lending.registers import files
    from reasoner.lending.registers.hmda import read_clean

    path = tmp_path / "noid.parquet"
    pq.write_table(pa.Table.from_pandas(_register(40).drop(columns="application_id"), preserve_index=False), path)
    monkeypatch.setattr(files, "BATCH_ROWS", 12)
    cleaned = read_clean(path, path.name)
    assert cleaned.id_column == "row"
    assert cleaned.frame["application_id"].tolist() == [str(row) for row in range(1, 41)]
    assert cleaned.frame["row"].tolist() == list(range(1, 41))


@pytest.mark.parametrize("bad", ["value", "duplicate"])
def test_a_piece_refused_gives_the_message_of_the_whole_input(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, bad: str
) -> None:
    from reasoner.lending.registers import files
    from reasoner.lending.registers.hmda import read_clean

    frame = _register(40)
    if bad == "value":
        frame.loc[[3, 30, 31], "loan_amount"] = "lots"  # rows 4, 31 and 32: in the first and the third piece
    else:
        frame.loc[30, "application_id"] = frame.loc[2, "application_id"]  # rows 3 and 31: different pieces
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path)
    with pytest.raises(EvidenceError) as whole:
        clean_hmda(read_hmda(path, INPUT_COLUMNS), path.name)
    monkeypatch.setattr(files, "BATCH_ROWS", 12)
    with pytest.raises(EvidenceError) as pieces:
        read_clean(path, path.name)
    assert str(pieces.value) == str(whole.value)
    assert ("31" in str(whole.value)) and ("rows" in str(whole.value))


def test_product_fields_and_denial_reasons_kept() -> None:
    frame = browser_frame()
    frame["occupancy_type"] = ["1", "2", "3", "1"]
    frame["open-end_line_of_credit"] = ["2", "1111", "1", "2"]
    frame["loan_term"] = ["360", "Exempt", "NA", "180"]
    frame["total_units"] = ["1", "5-24", ">149", "4"]
    frame["denial_reason-2"] = ["", "3", "", "NA"]
    cleaned = clean_hmda(frame, "lar.csv").frame
    assert cleaned["occupancy_type"].tolist() == [1.0, 2.0, 3.0, 1.0]
    assert cleaned["open_end_line_of_credit"].fillna(-1).tolist() == [2.0, -1, 1.0, 2.0]
    assert cleaned["loan_term"].fillna(-1).tolist() == [360.0, -1, -1, 180.0]
    assert cleaned["total_units"].tolist() == [1.0, 5.0, 150.0, 4.0]
    assert cleaned["denial_reason_2"].fillna(-1).tolist() == [-1, 3.0, -1, -1]
    assert cleaned["reverse_mortgage"].isna().all() and "reverse_mortgage" in clean_hmda(frame, "x").absent_columns
    frame["occupancy_type"] = ["1", "7", "3", "1"]
    expected = r"column 'occupancy_type': expected one of 1, 2, 3, 1111, 'NA' or 'Exempt', got '7' \(row 2\)"
    with pytest.raises(EvidenceError, match=expected):
        clean_hmda(frame, "lar.csv")


def test_reading_in_pieces_gives_back_arrow_memory_after_each_piece(monkeypatch: pytest.MonkeyPatch) -> None:
    """pyarrow's allocator keeps freed pages: released after each piece and after the whole
    (1,078 -> 626 MB resident after reading 1,000,000 rows, README: Scale)."""
    from reasoner.lending.registers import files, hmda

    calls: list[int] = []
    monkeypatch.setattr(files, "BATCH_ROWS", 5000)
    monkeypatch.setattr(hmda, "release_arrow_memory", lambda: calls.append(1))
    cleaned = hmda.read_clean(SAMPLE, SAMPLE.name)
    assert len(calls) == -(-cleaned.rows_read // 5000) + 1


def _dictionary_register(path: Path, frame: pd.DataFrame) -> None:
    """``frame`` as a parquet register whose columns are dictionaries of text, in row groups of 20 rows."""
    table = pa.Table.from_pandas(frame.astype("category"), preserve_index=False)
    assert all(pa.types.is_dictionary(kind) for kind in table.schema.types)
    pq.write_table(table, path, row_group_size=20)


def test_a_register_of_dictionaries_read_in_pieces_gives_the_frame_of_its_text(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from reasoner.lending.registers import files
    from reasoner.lending.registers.hmda import read_clean

    frame = _register(40)
    frame.loc[5, "loan_type"] = " 2 "  # stripped as text is
    frame.loc[7, "derived_sex"] = None  # a null row of a dictionary column
    path = tmp_path / "dictionaries.parquet"
    _dictionary_register(path, frame)
    raws: list[pd.DataFrame] = []
    piece = files._piece
    monkeypatch.setattr(files, "_piece", lambda *args: raws.append(piece(*args)) or raws[-1])
    monkeypatch.setattr(files, "BATCH_ROWS", 12)  # a piece's batches carry their row group's whole dictionary
    cleaned = read_clean(path, path.name)
    whole = clean_hmda(read_hmda(path, INPUT_COLUMNS), path.name)
    pd.testing.assert_frame_equal(cleaned.frame, whole.frame)
    assert (cleaned.exclusions, cleaned.id_column) == (whole.exclusions, whole.id_column)
    assert len(raws) == 3  # batches of 12, 8, 12 and 8 rows (row groups of 20)
    assert isinstance(raws[0]["lei"].dtype, pd.CategoricalDtype)
    for raw in raws:  # no category that no row of the piece uses
        for name in raw.columns:
            used = np.unique(raw[name].cat.codes.to_numpy())
            assert used[used >= 0].size == len(raw[name].cat.categories), name


def test_a_bad_value_in_a_dictionary_column_is_reported_as_in_text(tmp_path: Path) -> None:

    frame = _register(40)
    frame.loc[[3, 30], "loan_type"] = "9"
    assert "'9' (rows 4, 31)" in _refused_as_in_text(tmp_path / "bad.parquet", frame)


def _refused_as_in_text(path: Path, frame: pd.DataFrame) -> str:
    """``frame`` written as a register of dictionaries: the message of its refusal, the same whether it is read
    in pieces of dictionaries or cleaned as text."""
    from reasoner.lending.registers.hmda import read_clean

    _dictionary_register(path, frame)
    with pytest.raises(EvidenceError) as expected:
        clean_hmda(read_hmda(path, INPUT_COLUMNS), path.name)
    with pytest.raises(EvidenceError) as refused:
        read_clean(path, path.name)
    assert str(refused.value) == str(expected.value)
    return str(refused.value)


def test_a_piece_of_dictionaries_and_texts_is_what_to_pandas_gives_without_unused_categories() -> None:
    from reasoner.lending.registers import files

    def chunk(codes: list[int | None], values: list[str]) -> pa.DictionaryArray:
        return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), pa.array(values))

    chunks = [chunk([0, 2, None, 2], ["b", "x", "a"]), chunk([1, 1, 0], ["z", "a", "q"]), chunk([], ["c"])]
    held = pa.chunked_array(chunks)
    table = pa.table({"text": pa.array(list("1234567")), "lei": held, "other": pa.array(["x"] * 7)})
    piece = files._piece(table.to_batches(), table.schema, Path("p.parquet"), frozenset({"lei"}))
    expected = table.to_pandas()
    expected["lei"] = expected["lei"].cat.remove_unused_categories()  # first-seen order kept: b, a, z
    pd.testing.assert_frame_equal(piece, expected)
    assert list(piece["lei"].cat.categories) == ["b", "a", "z"]
    assert piece["lei"].cat.codes.dtype == np.int8
    # an ordered dictionary stays ordered, as to_pandas makes it
    ordered = pa.chunked_array(
        [pa.DictionaryArray.from_arrays(pa.array([1, 0], pa.int32()), pa.array(["a", "b"]), ordered=True)]
    )
    assert files._used_categories(ordered).ordered and pa.chunked_array(ordered).to_pandas().cat.ordered
    # a dictionary that repeats a value is refused as to_pandas refuses it
    with pytest.raises(ValueError, match="unique"):
        files._used_categories(pa.chunked_array([chunk([0, 1], ["a", "a"])]))


@pytest.mark.parametrize(
    "texts",
    [
        ["6037", "06037", "6037.0", "6037.00", "NA", "na", "N/A", "n/A", "", None, "12345", " 6037 ", "0.0"],
        ["6037.5", "6037.", "+6037", "-637", "123456", "6e3", "0x12", "1_000", "60.37", ".0", "NaN", "6037.0.0"],
        ["6037", "abc", "6037", "x", "y", "z", "w", "00000000000000006037"],
        ["６０３７", "٦٠٣٧", "6037", "NA"],  # digits of other scripts: Python's string methods decide them
        ["ｘ", "6037"],
        [6037, 1234.0, np.nan],
    ],
)
@pytest.mark.parametrize("width", [5, 11])
def test_fips_in_arrow_as_by_python(texts: list[object], width: int) -> None:
    from reasoner.lending.registers.hmda import _fips, _fips_texts
    from reasoner.lending.registers.values import factorize_column

    column = factorize_column(pd.Series(texts), "tract")
    outcomes = []
    arrow = lambda: _fips(column, width, len(texts), "r", "code")  # noqa: E731
    python = lambda: _fips_texts(column, width, "r", "code")  # noqa: E731
    for made in (arrow, python):
        try:
            coded = made()
            outcomes.append((coded.codes.tolist(), coded.values.tolist(), coded.values.dtype))
        except EvidenceError as error:
            outcomes.append(str(error))
    assert outcomes[0] == outcomes[1]


def test_a_zero_has_no_sign_whatever_the_texts_beside_it() -> None:
    """pandas reads "-0" as the integer 0 beside integers and as -0.0 beside a fraction: the cleaned
    value must not depend on which texts share its piece (the review of 2026-12-07)."""
    from reasoner.lending.registers.values import _numbers

    for texts in (["-0", "250000"], ["-0", "250000.5"], ["-0", "NA"], ["-0.0", "7"], ["0", "-3.5"]):
        values, _, invalid = _numbers(pd.Series(texts, dtype=object))
        assert values[0] == 0 and not np.signbit(values[0]) and not invalid.any(), texts
    values, _, _ = _numbers(pd.Series(["-3.5", "-0.25"], dtype=object))
    assert values.tolist() == [-3.5, -0.25]  # other negatives keep their sign


# Python's str.isspace beyond ' \t\n\r': \x0b, \x0c, \x1c … \x1f (ASCII: stripped by Arrow), \x85, \xa0, \u2000,
# \u3000 (not ASCII: stripped by Python); 'ß', 'ı' and 'ﬅ' change length or script when upper-cased
EDGE_TEXTS = [
    " 250 ", "\x1c250\x1f", "\x0b\x0cNA\x1d\x1e", "\t\n\rExempt\r\n", "a b", "", "   ",
    "\xa0250\u2000", "\x85N/A\u3000", "straße", "ıi", "ﬅ", "\u200b5",  # U+200B: not a space to Python
]


@pytest.mark.parametrize("dtype", ["str", object, "category"])
@pytest.mark.parametrize("texts", [EDGE_TEXTS[:7], EDGE_TEXTS, [*EDGE_TEXTS[:7], None], [None, None]])
def test_factorized_texts_are_stripped_as_python_strips_them(texts: list[str | None], dtype: object) -> None:
    from reasoner.lending.registers.values import factorize_column

    column = factorize_column(pd.Series(texts, dtype=dtype), "income")
    assert column.texts[column.codes].tolist() == ["" if text is None else text.strip() for text in texts]
    assert column.texts.dtype == object and all(type(text) is str for text in column.texts)


@pytest.mark.parametrize(
    "texts", [EDGE_TEXTS[:7], EDGE_TEXTS, ["exempt", "n/a", "Na", "ǰ", "ŉ"], ["NA", np.nan, 7, "ß"], []]
)
def test_upper_texts_are_python_upper_and_found_as_pandas_finds_them(texts: list[object]) -> None:
    from reasoner.lending.registers.values import MISSING_TEXT, is_in, upper_texts

    series = pd.Series(texts, dtype=object)
    expected = series.str.upper()
    upper = upper_texts(series)
    found = upper.to_pylist() if isinstance(upper, pa.Array) else upper.tolist()
    assert [None if pd.isna(text) else text for text in found] == [None if pd.isna(text) else text for text in expected]
    for values in (MISSING_TEXT, {"EXEMPT"}, {"SS", "STRASSE", "II", "ST"}):
        assert is_in(upper, values).tolist() == expected.isin(values).tolist()


def test_a_text_arrow_cannot_hold_is_refused_as_a_bad_number_not_a_crash() -> None:
    """A lone surrogate (a frame read with ``encoding_errors="surrogateescape"``): the column's error, as before."""
    from reasoner.lending.registers.values import _numbers

    values, _, invalid = _numbers(pd.Series(["12\ud800", "5", "NA"], dtype=object))
    assert invalid.tolist() == [True, False, False] and values[1] == 5.0


def test_edge_texts_of_a_dictionary_register_read_as_python_reads_them(tmp_path: Path) -> None:
    """Numbers padded with Python's spaces that are not ' ' read as numbers (ASCII or not); 'ß' and a
    zero-width space are refused in the same message, whether the read is pieces of dictionaries or text."""
    from reasoner.lending.registers.hmda import read_clean

    frame = _register(40)
    frame.loc[[1, 2, 3], "income"] = ["\x1c250\x1f", "\xa0250\u2000", "\x0b\x0cNA\x1d"]
    frame.loc[[4, 5], "loan_amount"] = ["\t\n\rExempt\r\n", "\x85n/a\u3000"]
    path = tmp_path / "edges.parquet"
    _dictionary_register(path, frame)
    held = read_clean(path, path.name, compact=True).held
    assert held is not None
    restored = held.restore(["income", "loan_amount"])
    assert restored["income"].iloc[1:4].tolist()[:2] == [250_000.0, 250_000.0] and np.isnan(restored["income"][3])
    assert restored["loan_amount"].iloc[4:6].isna().all()
    frame.loc[[7, 30], "income"] = ["straße", "\u200b5"]
    assert "'straße' (row 8), '\u200b5' (row 31)" in _refused_as_in_text(path, frame)


@pytest.mark.parametrize("values", [5, 300, 40_000])
def test_used_categories_of_wide_dictionaries_are_to_pandas_without_the_unused(values: int) -> None:
    """Codes renumbered in the narrow type pandas keeps (int8, int16 ...), missing values kept missing."""
    from reasoner.lending.registers import files

    rng = np.random.default_rng(values)
    dictionary = pa.array([f"v{number}" for number in rng.permutation(values)])
    def chunk() -> pa.DictionaryArray:  # codes of the first half of the values, every seventh missing
        codes = [None if code % 7 == 0 else int(code) for code in rng.integers(0, values // 2 + 1, 500)]
        return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), dictionary)

    column = pa.chunked_array([chunk() for _ in range(3)])
    expected = column.to_pandas().cat.remove_unused_categories()
    used = files._used_categories(column)
    assert list(used.categories) == list(expected.cat.categories) and used.categories.dtype == "str"
    assert used.codes.dtype == expected.cat.codes.dtype and np.array_equal(used.codes, expected.cat.codes)
