"""A bank's own register through [columns] in audit.toml: mapping, errors with file, line and key."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from support import REPOSITORY

from reasoner.cli import main
from reasoner.errors import EvidenceError, RuleError
from reasoner.lending.config import GROUP_COLUMNS, check_config_columns, load_column_map, load_config
from reasoner.lending.registers.hmda import CLEAN_COLUMNS, read_clean

ROOT = REPOSITORY
BANK = ROOT / "examples" / "bank"
CONFIG = BANK / "rules" / "audit.toml"
SAMPLE = ROOT / "examples" / "hmda" / "sample.parquet"


def test_the_example_maps_every_field_and_cleans_like_the_hmda_records() -> None:
    column_map = load_column_map(CONFIG)
    assert column_map is not None and column_map.income_divisor == 1000.0
    assert ("lender", "branch") in [(field, name) for field, name, _ in column_map.columns]
    cleaned = read_clean(BANK / "loans.csv", "loans.csv", column_map=column_map)
    frame = cleaned.frame
    sample = pd.read_parquet(SAMPLE).astype(str)
    sample = sample[
        sample["lei"].isin(
            ["5493000007WZSHXDHH53", "549300000BRZUOJ8WO79", "5493000000T822ITJS47", "5493000008TV94UHAV19"]
        )
    ].reset_index(drop=True)
    assert len(frame) == len(sample) == 1574
    assert cleaned.id_column == "application_id" and frame["application_id"].iloc[0] == "APP-00001"
    assert frame["lei"].iloc[0] == "BR-WEST"
    decision = sample["action_taken"].map({"1": "approved", "2": "approved", "3": "denied"}).fillna("other")
    assert frame["decision"].tolist() == decision.tolist()
    published = sample["derived_race"].replace("Free Form Text Only", "Race Not Available")
    assert frame["race"].tolist() == published.tolist()
    assert frame["ethnicity"].tolist() == sample["derived_ethnicity"].tolist()
    assert frame["sex"].tolist() == sample["derived_sex"].tolist()
    income = pd.to_numeric(sample["income"], errors="coerce") * 1000
    pd.testing.assert_series_equal(frame["income"], income, check_names=False)
    assert frame["loan_type"].tolist() == sample["loan_type"].astype(int).tolist()
    assert frame["loan_purpose"].eq(1).all()  # not mapped: one product
    assert "columns mapped by [columns] of audit.toml (lender ← 'branch'" in cleaned.provenance_notes()[0]


@pytest.mark.slow
def test_the_example_audits(tmp_path: Path) -> None:
    out = tmp_path / "out"
    arguments = [str(BANK / "rules"), str(BANK / "loans.csv"), "-o", str(out), "--quiet", "--no-timings"]
    assert main([*arguments, "--workers", "1"]) == 0
    lenders = pd.read_parquet(out / "lenders.parquet")
    assert sorted(lenders["lei"]) == ["BR-EAST", "BR-NORTH", "BR-SOUTH", "BR-WEST"]


def _config(tmp_path: Path, columns: str) -> Path:
    text = CONFIG.read_text()
    start, end = text.index("[columns]"), text.index("# --- The rest")
    path = tmp_path / "audit.toml"
    path.write_text(text[:start] + columns + "\n" + text[end:])
    return path


MINIMAL = """[columns]
lender = "branch"
decision = "status"
race = "race"
ethnicity = "hispanic"
sex = "gender"
income = "annual_income"
dti = "dti_pct"
ltv = "ltv_pct"
amount = "amount"

[columns.values.decision]
approved = ["FUNDED", "APPROVED-NOT-TAKEN"]
denied = ["DECLINED"]
other = ["WITHDRAWN", "INCOMPLETE", "PURCHASED", "PREAPP-DECLINED", "PREAPP-APPROVED"]
"""


def _error(path: Path) -> str:
    with pytest.raises(RuleError) as caught:
        load_column_map(path)
    return caught.value.render()


def test_a_misspelt_key_is_named_with_file_line_and_a_suggestion(tmp_path: Path) -> None:
    path = _config(tmp_path, MINIMAL.replace('income = "annual_income"', 'incme = "annual_income"'))
    message = _error(path)
    line = path.read_text().splitlines().index('incme = "annual_income"') + 1
    assert message.startswith(f"{path}:{line}:1: error: unknown key 'incme' in [columns]")
    assert "did you mean 'income'?" in message
    load_config(path)  # the rest of the file is still valid: [columns] is its own section


def test_a_missing_field_an_unknown_value_and_a_value_mapped_twice(tmp_path: Path) -> None:
    message = _error(_config(tmp_path, MINIMAL.replace('dti = "dti_pct"\n', "")))
    assert "error: [columns] has no 'dti'" in message
    message = _error(_config(tmp_path, MINIMAL.replace("denied = [", "declined = [")))
    assert "error: unknown decision 'declined'" in message and "did you mean 'denied'?" in message
    message = _error(_config(tmp_path, MINIMAL.replace('denied = ["DECLINED"]', 'denied = ["DECLINED", "FUNDED"]')))
    assert "the value 'FUNDED' is mapped twice (to 'approved' and 'denied')" in message
    path = _config(tmp_path, MINIMAL + '\n[columns.values.gender]\nMale = ["M"]\n')
    line = path.read_text().splitlines().index("[columns.values.gender]") + 1
    message = _error(path)
    assert message.startswith(f"{path}:{line}:1: error: no values can be mapped for 'gender'")
    assert "note: fields with values: decision, race, ethnicity, sex, product, purpose, lien" in message


def test_register_errors_name_the_mapped_column(tmp_path: Path) -> None:
    column_map = load_column_map(_config(tmp_path, MINIMAL.replace('"annual_income"', '"gross_income"')))
    assert column_map is not None
    expected = r"loans.csv: missing column 'gross_income' \(mapped to income in audit.toml:\d+\)"
    with pytest.raises(EvidenceError, match=expected):
        read_clean(BANK / "loans.csv", "loans.csv", column_map=column_map)
    loans = pd.read_csv(BANK / "loans.csv", dtype=str, keep_default_na=False)
    loans.loc[2, "status"] = "COUNTER-OFFER"
    loans.to_csv(tmp_path / "loans.csv", index=False)
    column_map = load_column_map(_config(tmp_path, MINIMAL))
    assert column_map is not None
    expected = (
        r"loans.csv: column 'status': expected a decision value listed in \[columns.values.decision\]"
        r".*got 'COUNTER-OFFER' \(row 3\)"
    )
    with pytest.raises(EvidenceError, match=expected):
        read_clean(tmp_path / "loans.csv", "loans.csv", column_map=column_map)


def test_a_misspelt_covariate_is_named_with_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "audit.toml"
    text = (ROOT / "rules" / "audit.toml").read_text()
    path.write_text(text.replace('covariates = ["income"', 'covariates = ["incme"'))
    config = load_config(path)
    with pytest.raises(RuleError) as caught:
        check_config_columns(config, [*CLEAN_COLUMNS, *GROUP_COLUMNS])
    line = next(number for number, text in enumerate(path.read_text().splitlines(), 1) if '["incme"' in text)
    message = caught.value.render()
    assert message.startswith(f"{path}:{line}:16: error: unknown column 'incme' in 'covariates' of [statistics]")
    assert message.endswith("note: did you mean 'income'?")
    check_config_columns(load_config(ROOT / "rules" / "audit.toml"), [*CLEAN_COLUMNS, *GROUP_COLUMNS])


def test_a_bank_covariate_that_is_no_hmda_field_enters_the_models() -> None:
    cleaned = read_clean(
        BANK / "loans.csv",
        "loans.csv",
        column_map=load_column_map(BANK / "rules" / "audit.toml"),
        extra_numeric=("credit_score",),
        extra_text=("aus_result",),
    )
    assert cleaned.frame["credit_score"].dtype == np.float64 and cleaned.frame["credit_score"].isna().any()
    assert set(cleaned.frame["aus_result"].dropna()) == {"APPROVE-ELIGIBLE", "REFER", "REFER-CAUTION"}


def test_a_bank_covariate_that_is_not_a_number_names_its_column_and_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    loans = pd.read_csv(BANK / "loans.csv", dtype=str, keep_default_na=False)
    loans.loc[[4, 9], "credit_score"] = "excellent"
    loans.to_csv(tmp_path / "loans.csv", index=False)
    arguments = [str(BANK / "rules"), str(tmp_path / "loans.csv"), "-o", str(tmp_path / "out"), "--quiet"]
    assert main([*arguments, "--workers", "1"]) == 2
    error = capsys.readouterr().err
    assert "loans.csv: column 'credit_score': expected a number or 'NA', got 'excellent' (rows 5, 10)" in error
    assert "Traceback" not in error and not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            'covariates = ["income", "dti", "cltv", "loan_amount", "race"]',
            "covariate 'race' in 'covariates' is not numeric",
        ),
        ('categorical_covariates = ["loan_type", "income"]', "categorical covariate 'income' has more than 64 values"),
    ],
)
def test_a_covariate_of_the_wrong_kind_points_at_its_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str, message: str
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    for source in (ROOT / "rules").glob("*.mln"):
        (rules / source.name).write_text(source.read_text())
    text = (ROOT / "rules" / "audit.toml").read_text()
    key = line.split(" =")[0]
    lines = [line if existing.startswith(f"{key} =") else existing for existing in text.splitlines()]
    (rules / "audit.toml").write_text("\n".join(lines) + "\n")
    sample = ROOT / "examples" / "hmda" / "sample.parquet"
    assert main([str(rules), str(sample), "-o", str(tmp_path / "out"), "--quiet", "--workers", "1"]) == 2
    error = capsys.readouterr().err
    number = next(index for index, existing in enumerate(lines, start=1) if existing == line)
    assert f"audit.toml:{number}:" in error and message in error and "Traceback" not in error
