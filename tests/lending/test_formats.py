"""Register formats: each read from its content, the same records giving the same audit in every format."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from registers import FORMATS, consistent, write
from support import DATA, REPOSITORY

from reasoner.cli import main
from reasoner.errors import EvidenceError
from reasoner.lending.registers.files import read_hmda, register_format
from reasoner.lending.registers.formats import FILING_LAR_FIELDS, MODIFIED_LAR_FIELDS, TRANSMITTAL_FIELDS
from reasoner.lending.registers.hmda import read_clean

pytestmark = pytest.mark.slow  # end-to-end audits: outside the inner loop, pytest -m "not slow"

ROOT = REPOSITORY
REGISTERS = DATA / "registers"
SAMPLE = ROOT / "examples" / "hmda" / "sample.parquet"
RULES = ROOT / "rules"
AGES = ["<25", "25-34", "35-44", "45-54", "55-64", "65-74", ">74"]


def test_published_field_counts() -> None:
    assert (len(TRANSMITTAL_FIELDS), len(FILING_LAR_FIELDS), len(MODIFIED_LAR_FIELDS)) == (15, 110, 85)
    assert len(set(FILING_LAR_FIELDS)) == 110 and len(set(MODIFIED_LAR_FIELDS)) == 85


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("filing.txt", "filing"),
        ("modified.txt", "modified"),
        ("snapshot.txt", "snapshot"),
        ("browser.csv", "header"),
        ("browser-codes-only.csv", "header"),
    ],
)
def test_each_fixture_is_recognised_and_cleans_to_the_same_rows(name: str, kind: str) -> None:
    layout = register_format(REGISTERS / name)
    assert layout is not None and layout.name == kind
    reference = read_clean(REGISTERS / "browser.csv", "browser.csv").frame
    cleaned = read_clean(REGISTERS / name, name)
    frame = cleaned.frame
    assert len(frame) == 40
    for column in ("lei", "race", "ethnicity", "sex", "age", "action_taken", "loan_amount", "income", "dti", "cltv"):
        pd.testing.assert_series_equal(frame[column], reference[column], check_names=False)
    assert cleaned.groups_derived == (name not in ("browser.csv", "snapshot.txt"))


def test_filing_transmittal_sheet_goes_into_the_report_notes() -> None:
    cleaned = read_clean(REGISTERS / "filing.txt", "filing.txt")
    sheet = cleaned.transmittal
    assert sheet is not None
    assert (sheet.institution_name, sheet.lei) == ("Ficus Bank", "5493000002IE5CU9ZH69")
    assert (sheet.year, sheet.quarter, sheet.total_lines) == ("2022", "4", "40")
    assert cleaned.id_column == "uli" and cleaned.frame["application_id"].iloc[0] == "5493000002IE5CU9ZH6900000001"
    assert set(cleaned.frame["activity_year"]) == {"2022"}  # from the transmittal sheet
    notes = cleaned.provenance_notes()
    assert notes[0].startswith("Format: HMDA filing format (transmittal sheet and 110-field loan/application register)")
    assert "Ficus Bank (LEI 5493000002IE5CU9ZH69), HMDA filing for 2022 Q4; contact Mary Smith" in notes[1]
    assert any("derived from the applicant and co-applicant codes" in note for note in notes)


def test_filing_ages_in_years_become_buckets() -> None:
    raw = read_hmda(REGISTERS / "filing.txt")
    cleaned = read_clean(REGISTERS / "filing.txt", "filing.txt").frame
    years = pd.to_numeric(raw["applicant_age"])
    expected = pd.cut(years, [0, 25, 35, 45, 55, 65, 75, 200], right=False, labels=AGES).astype(str)
    expected = expected.where(years < 8888, None)
    assert cleaned["age"].tolist() == expected.tolist()
    assert {"30", "8888"} <= set(raw["applicant_age"])  # the fixture has ages in years and 'not applicable'


def test_a_2017_register_is_refused_naming_year_and_layout() -> None:
    with pytest.raises(EvidenceError) as caught:
        read_clean(REGISTERS / "filing-2017.txt", "filing-2017.txt")
    message = str(caught.value)
    assert message.startswith(f"{REGISTERS / 'filing-2017.txt'}: this looks like a 2017-or-earlier HMDA register")
    assert "a transmittal sheet of 21 fields (2018 onward: 15), then lines of 39 fields" in message
    assert "debt-to-income nor combined loan-to-value" in message


def test_a_bad_filing_line_is_named_by_line_and_row(tmp_path: Path) -> None:
    lines = (REGISTERS / "filing.txt").read_text().splitlines()
    lines[3] = lines[3].rsplit("|", 1)[0]  # a loan line one field short
    broken = tmp_path / "lar.txt"
    broken.write_text("\n".join(lines) + "\n")
    with pytest.raises(EvidenceError, match=r"lar.txt: line 4 \(row 3\): expected 110 fields, got 109$"):
        read_clean(broken, "lar.txt")
    lines = (REGISTERS / "filing.txt").read_text().splitlines()
    lines[5] = "3" + lines[5][1:]
    broken.write_text("\n".join(lines) + "\n")
    expected = r"lar.txt: line 6 \(row 5\): expected a loan/application line starting '2\|'"
    with pytest.raises(EvidenceError, match=expected):
        read_clean(broken, "lar.txt")


def test_a_bad_code_in_a_filing_names_column_and_row(tmp_path: Path) -> None:
    lines = (REGISTERS / "filing.txt").read_text().splitlines()
    fields = lines[2].split("|")
    fields[FILING_LAR_FIELDS.index("applicant_race-1")] = "9"
    lines[2] = "|".join(fields)
    broken = tmp_path / "lar.txt"
    broken.write_text("\n".join(lines) + "\n")
    expected = r"lar.txt: column 'applicant_race-1': expected one of .*, got '9' \(row 2\)"
    with pytest.raises(EvidenceError, match=expected):
        read_clean(broken, "lar.txt")


def test_boston_fed_parquet_names_its_missing_columns() -> None:
    with pytest.raises(EvidenceError) as caught:
        read_clean(REGISTERS / "aer_hmda.parquet", "aer_hmda.parquet")
    message = str(caught.value)
    assert message.startswith("aer_hmda.parquet: missing columns 'lei', 'action_taken'")
    assert "no rows" not in message and message.endswith("map them in [columns] of audit.toml)")


def _audit_files(tmp_path: Path, kind: str, public: pd.DataFrame, command: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    suffix = {"snapshot": "txt", "modified": "txt", "filing": "txt"}.get(kind, kind)
    path = write(public, tmp_path / f"lar-{kind}.{suffix}", kind)
    out = tmp_path / f"out-{kind}-{command}"
    arguments = ["audit", str(path)] if command == "audit" else [str(RULES), str(path)]
    assert main([*arguments, "-o", str(out), "--quiet", "--no-timings", "--workers", "1"]) == 0
    lenders = pd.read_parquet(out / "lenders.parquet")
    applications = pd.read_parquet(out / "applications.parquet").drop(columns=["application_id", "comparators"])
    # the filing format's ids are its ULIs, the others' row numbers: findings compared in row order
    return lenders, applications.sort_values(["row", "finding"], kind="stable").reset_index(drop=True)


def test_one_register_in_every_format_gives_the_same_audit(tmp_path: Path) -> None:
    sample = pd.read_parquet(SAMPLE).astype(str)
    public = consistent(sample[sample["lei"].isin(sample["lei"].value_counts().index[3:6])])
    lenders, applications = _audit_files(tmp_path, "parquet", public, "audit")
    assert len(lenders) == 3 and len(applications) > 0
    # Every format audited once, through 'reason audit' and 'reason rules/' in turn (the two commands
    # are the same audit: test_audit.py compares them byte for byte).
    for number, kind in enumerate(FORMATS[1:]):
        command = ("rules", "audit")[number % 2] if kind != "filing" else "audit"  # the report check below
        other_lenders, other_applications = _audit_files(tmp_path, kind, public, command)
        pd.testing.assert_frame_equal(other_lenders, lenders, obj=f"{kind} ({command}) lenders")
        pd.testing.assert_frame_equal(other_applications, applications, obj=f"{kind} ({command}) applications")
    report = (tmp_path / "out-filing-audit" / "report.md").read_text()
    assert "- Transmittal sheet: Ficus Bank (LEI " in report and "- Format: HMDA filing format" in report
    assert "Transmittal sheet: Ficus Bank (LEI " in (tmp_path / "out-filing-audit" / "report.html").read_text()


def test_the_command_takes_every_format_and_answers_a_missing_file_without_importing_pandas() -> None:
    code = (
        "import sys\n"
        "from reasoner.cli import main\n"
        "assert main(['audit', 'missing.txt']) == 2\n"
        "assert main(['rules/', 'missing.csv.gz']) == 2\n"
        "assert 'pandas' not in sys.modules, 'pandas imported'\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "error: missing.txt: no such file or directory",
        "error: missing.csv.gz: no such file or directory",
    ]


def test_a_filing_shorter_than_its_transmittal_sheet_says_is_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = (REGISTERS / "filing.txt").read_text().splitlines(keepends=True)
    short = tmp_path / "short.txt"
    short.write_text("".join(lines[:-1]))  # 40 lines declared, 39 left
    cleaned = read_clean(short, "short.txt")
    assert cleaned.warnings() == (
        "the transmittal sheet declares 40 loan/application lines but 39 were read: "
        "the file may be truncated or have lines added",
    )
    assert any(note.startswith("Warning: the transmittal sheet declares 40") for note in cleaned.provenance_notes())
    assert read_clean(REGISTERS / "filing.txt", "filing.txt").warnings() == ()
    assert main([str(RULES), str(short), "-o", str(tmp_path / "out"), "--quiet", "--workers", "1"]) == 0
    assert "warning: " in capsys.readouterr().err
