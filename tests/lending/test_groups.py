"""Derived race, ethnicity and sex from the applicant codes (the CFPB's published rules), and who is compared."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from reasoner.errors import EvidenceError
from reasoner.lending.evidence.tables import add_group_columns
from reasoner.lending.registers.groups import (
    GROUP_CODE_COLUMNS,
    derive_ethnicity,
    derive_groups,
    derive_race,
    derive_sex,
)
from reasoner.lending.registers.hmda import clean_hmda

E = ""
NONE = ("8", E, E, E, E)  # no co-applicant
HISPANIC_TEXT = "Hispanic or Latino"


def codes(*values: str) -> tuple[str, ...]:
    return tuple(values) + (E,) * (5 - len(values))


# (applicant races, co-applicant races, derived_race), each case one rule of the published derivation
RACE_CASES = [
    (codes(), NONE, "Free Form Text Only"),  # race 1 empty: only free-form text was given
    (codes("6"), NONE, "Race Not Available"),
    (codes("7"), codes("5"), "Race Not Available"),
    (codes("5"), NONE, "White"),
    (codes("5"), codes("5"), "White"),
    (codes("5"), codes("6"), "White"),
    (codes("5"), codes("3"), "Joint"),  # White applicant, minority co-applicant
    (codes("3"), codes("5"), "Joint"),  # minority applicant, White co-applicant
    (codes("3"), NONE, "Black or African American"),
    (codes("3"), codes("3"), "Black or African American"),
    (codes("1"), NONE, "American Indian or Alaska Native"),
    (codes("2"), NONE, "Asian"),
    (codes("22"), NONE, "Asian"),  # a subgroup counts as its race
    (codes("21", "24"), NONE, "Asian"),  # only Asian subgroups
    (codes("4"), NONE, "Native Hawaiian or Other Pacific Islander"),
    (codes("41", "43"), NONE, "Native Hawaiian or Other Pacific Islander"),
    (codes("2", "3"), NONE, "2 or more minority races"),
    (codes("22", "41"), NONE, "2 or more minority races"),
    (codes("2", "3"), codes("5"), "Joint"),  # two minority races, White co-applicant
    (codes("3", "5"), NONE, "Black or African American"),  # a minority race and White, nothing after
    (codes("5", "3"), NONE, "Black or African American"),
    (codes("5", "2"), NONE, "Asian"),
    (codes("5", "1", "5"), NONE, "Joint"),  # a third field: Joint
    (codes("5", "5"), NONE, "Joint"),  # White twice is not 'White alone'
    (codes("5"), codes("5", "3"), "Joint"),
]


@pytest.mark.parametrize(("applicant", "co_applicant", "expected"), RACE_CASES)
def test_derived_race(applicant: tuple[str, ...], co_applicant: tuple[str, ...], expected: str) -> None:
    assert derive_race(applicant, co_applicant) == expected


def test_derived_race_keeps_the_published_details() -> None:
    # "the co-applicant reported White" does not look at the fourth field, as published
    assert derive_race(codes("3"), ("3", "2", "1", "5", E)) == "Black or African American"
    assert derive_race(codes("3"), ("3", E, E, "5", E)) == "Black or African American"
    assert derive_race(codes("3"), ("3", E, "5", E, E)) == "Joint"
    # the Pacific Islander rule asks about the applicant's own White
    assert derive_race(codes("4"), codes("5")) == "Joint"  # caught earlier: minority with a White co-applicant


ETHNICITY_CASES = [
    (codes(), codes("5"), "Free Form Text Only"),
    (codes("3"), codes("5"), "Ethnicity Not Available"),
    (codes("4"), codes("1"), "Ethnicity Not Available"),
    (codes("1"), codes("5"), "Hispanic or Latino"),
    (codes("11", "12"), codes("5"), "Hispanic or Latino"),
    (codes("1"), codes("1"), "Hispanic or Latino"),
    (codes("2"), codes("5"), "Not Hispanic or Latino"),
    (codes("2"), codes("2"), "Not Hispanic or Latino"),
    (codes("1"), codes("2"), "Joint"),
    (codes("2"), codes("13"), "Joint"),
    (codes("1", "2"), codes("5"), "Joint"),  # both reported by the applicant
]


@pytest.mark.parametrize(("applicant", "co_applicant", "expected"), ETHNICITY_CASES)
def test_derived_ethnicity(applicant: tuple[str, ...], co_applicant: tuple[str, ...], expected: str) -> None:
    assert derive_ethnicity(applicant, co_applicant) == expected


@pytest.mark.parametrize(
    ("applicant", "co_applicant", "expected"),
    [
        ("1", "5", "Male"),
        ("1", "1", "Male"),
        ("2", "5", "Female"),
        ("2", "3", "Female"),
        ("1", "2", "Joint"),
        ("2", "1", "Joint"),
        ("1", "6", "Joint"),
        ("6", "5", "Joint"),
        ("3", "1", "Sex Not Available"),
        ("4", "5", "Sex Not Available"),
    ],
)
def test_derived_sex(applicant: str, co_applicant: str, expected: str) -> None:
    assert derive_sex(applicant, co_applicant) == expected


def test_derive_groups_reads_text_and_parquet_floats() -> None:
    row = {name: "" for name in GROUP_CODE_COLUMNS}
    row |= {"applicant_race_1": "3", "co_applicant_race_1": "8", "applicant_ethnicity_1": "1.0"}
    row |= {"co_applicant_ethnicity_1": "5", "applicant_sex": "2", "co_applicant_sex": "5"}
    derived = derive_groups(pd.DataFrame([row]), "lar.csv")
    assert derived is not None
    assert derived.iloc[0].tolist() == ["Black or African American", "Hispanic or Latino", "Female"]
    assert derive_groups(pd.DataFrame([row]).drop(columns=["applicant_sex"]), "lar.csv") is None


def test_an_undocumented_code_is_an_error_naming_column_and_row() -> None:
    rows = [{name: "" for name in GROUP_CODE_COLUMNS} | {"applicant_race_1": race, "applicant_sex": "1",
            "co_applicant_sex": "5", "applicant_ethnicity_1": "2", "co_applicant_ethnicity_1": "5",
            "co_applicant_race_1": "8"} for race in ("5", "8")]
    with pytest.raises(EvidenceError, match=r"lar.csv: column 'applicant_race_1': expected one of .*got '8' \(row 2\)"):
        derive_groups(pd.DataFrame(rows), "lar.csv")


# --- who is compared ------------------------------------------------------------------------


def _register(race: list[str], ethnicity: list[str], sex: list[str]) -> pd.DataFrame:
    count = len(race)
    return pd.DataFrame(
        {
            "lei": ["L"] * count,
            "action_taken": ["1"] * count,
            "derived_race": race,
            "derived_ethnicity": ethnicity,
            "derived_sex": sex,
            "loan_type": ["1"] * count,
            "loan_purpose": ["1"] * count,
            "lien_status": ["1"] * count,
            "loan_amount": ["205000"] * count,
            "income": ["80"] * count,
            "debt_to_income_ratio": ["40"] * count,
            "combined_loan_to_value_ratio": ["80"] * count,
            "tract_minority_population_percent": ["20"] * count,
        }
    )


def test_hispanic_applicants_without_race_and_applicants_without_race_are_compared() -> None:
    register = _register(
        race=["Race Not Available", "Race Not Available", "Free Form Text Only", "White", "White",
              "Race Not Available"],
        ethnicity=["Hispanic or Latino", "Not Hispanic or Latino", "Ethnicity Not Available", "Ethnicity Not Available",
                   "Not Hispanic or Latino", "Ethnicity Not Available"],
        sex=["Female", "Male", "Female", "Male", "Male", "Sex Not Available"],
    )
    cleaned = clean_hmda(register, "lar.csv")
    assert cleaned.frame["excluded"].tolist() == ["", "", "", "", "", "no group known"]
    groups = add_group_columns(cleaned.frame, 50.0)
    assert groups["race_ethnicity"].iloc[0] == "Hispanic or Latino" and groups["minority"].iloc[0] == "Minority"
    assert groups["minority_sex"].iloc[0] == "Minority Female"
    # the first five are in the sex comparison
    assert groups["sex"].iloc[:5].tolist() == ["Female", "Male", "Female", "Male", "Male"]
    assert groups["minority"].iloc[1:4].isna().all()  # no race: in no race comparison
    assert groups["minority"].iloc[4] == "White non-Hispanic"
    notes = cleaned.provenance_notes()
    assert "1 Hispanic or Latino applicants did not report a race: they are compared as Hispanic" in notes[0]
    assert notes[1].startswith("2 applicants with neither race nor Hispanic ethnicity reported are compared by sex")
    assert notes[2].startswith("1 White applicants whose ethnicity is not available, joint or free-form text are in no")


def _groups_by_text(frame: pd.DataFrame, percent: float) -> dict[str, list[object]]:
    """The group columns as the module docstring of ``tables`` defines them, row by row (the
    reference for ``add_group_columns``, which works on codes)."""
    from reasoner.lending.evidence.tables import HISPANIC, MINORITY_GROUPS, WHITE

    out: dict[str, list[object]] = {"race_ethnicity": [], "minority": [], "minority_sex": [], "minority_tract": []}
    for race, ethnicity, sex, tract in zip(
        frame["race"], frame["ethnicity"], frame["sex"], frame["tract_minority_pct"], strict=True
    ):
        race, ethnicity, sex = (None if pd.isna(value) else value for value in (race, ethnicity, sex))
        if ethnicity == HISPANIC:
            group = HISPANIC
        elif race == "White":
            group = WHITE if ethnicity == "Not Hispanic or Latino" else None
        else:
            group = race
        minority = "Minority" if group in MINORITY_GROUPS else WHITE if group == WHITE else None
        known = minority is not None
        out["race_ethnicity"].append(group)
        out["minority"].append(minority)
        out["minority_sex"].append(f"{minority} {sex}" if known and sex in ("Male", "Female") else None)
        where = "majority-minority tract" if tract > percent else "other tract"
        out["minority_tract"].append(f"{minority} / {where}" if known and pd.notna(tract) else None)
    return out


def test_group_columns_are_the_definitions_row_by_row() -> None:
    rng = np.random.default_rng(3)
    size = 3000
    races = ["White", "Black or African American", "Asian", "Race Not Available", "Joint", HISPANIC_TEXT, None]
    ethnicities = [HISPANIC_TEXT, "Not Hispanic or Latino", "Ethnicity Not Available", "Joint", None]
    frame = pd.DataFrame(
        {
            "race": pd.Series(rng.choice(np.array(races, dtype=object), size), dtype="str"),
            "ethnicity": pd.Series(rng.choice(np.array(ethnicities, dtype=object), size), dtype="str"),
            "sex": pd.Series(rng.choice(np.array(["Male", "Female", "Sex Not Available", None], dtype=object), size),
                             dtype="str"),
            "tract_minority_pct": np.where(rng.random(size) < 0.1, np.nan, rng.uniform(0, 100, size).round()),
        }
    )
    groups = add_group_columns(frame, 50.0)
    expected = _groups_by_text(frame, 50.0)
    for name, values in expected.items():
        assert str(groups[name].dtype) == "str"
        assert groups[name].tolist() == pd.Series(values, dtype="str").tolist(), name
        assert groups[name].isna().tolist() == [value is None for value in values], name
    assert list(groups.columns[:4]) == list(frame.columns) and "race_ethnicity" not in frame.columns
    assert set(groups["minority_tract"].dropna()) == {
        f"{group} / {tract}" for group in ("Minority", "White non-Hispanic")
        for tract in ("majority-minority tract", "other tract")
    }
