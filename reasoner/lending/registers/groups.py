"""``derived_race``, ``derived_ethnicity`` and ``derived_sex`` from the applicant and co-applicant codes.

The filing format and the Modified LAR carry the codes each applicant gave (up to five races and
five ethnicities each, one sex) and not the groups the public data derives from them. The groups
are derived here by the CFPB's published rules for the public HMDA data (as the HMDA platform
applies them, ``RaceCategorization``, ``EthnicityCategorization``, ``SexCategorization`` of
cfpb/hmda-platform), in the order of the rules, the first that applies:

Race (codes: 1 American Indian or Alaska Native, 2 Asian and 21–27 its subgroups, 3 Black or
African American, 4 Native Hawaiian or Other Pacific Islander and 41–44 its subgroups, 5 White,
6 information not provided, 7 not applicable, 8 no co-applicant; empty: not reported):

1. applicant race 1 empty (only free-form text given): 'Free Form Text Only';
2. applicant race 1 is 6 or 7: 'Race Not Available';
3. the applicant reported two or more of the four minority races (Asian and Pacific Islander
   subgroups count as their race) and the co-applicant no White: '2 or more minority races';
4. the applicant reported a minority race and the co-applicant White, or the applicant White
   alone and the co-applicant a minority race: 'Joint';
5. the applicant White alone, the co-applicant White alone, not available or absent: 'White';
6. a single minority race (or it and White in the first two fields with nothing after, or only
   Asian or only Pacific Islander codes) and no co-applicant White: that race; with White and
   more fields, or a White co-applicant: 'Joint';
7. anything else: 'Joint'.

Two details of the published implementation are kept so that a register derives exactly the groups
the public data shows for it: "the co-applicant reported White" looks at race fields 1, 2, 3 and
5 (not 4), and the Pacific Islander rule of step 6 asks about the applicant's own White, not the
co-applicant's.

Ethnicity (1 Hispanic or Latino and 11–14 its subgroups, 2 Not Hispanic or Latino, 3 not
provided, 4 not applicable, 5 no co-applicant): empty first field 'Free Form Text Only'; 3 or 4
'Ethnicity Not Available'; only Hispanic codes and no co-applicant 'Not Hispanic' (2) 'Hispanic
or Latino'; 2 alone and no Hispanic co-applicant 'Not Hispanic or Latino'; Hispanic on one side
and not-Hispanic (or a missing third to fifth field, as published) on the other 'Joint'; else
'Ethnicity Not Available'.

Sex (1 male, 2 female, 3 not provided, 4 not applicable, 5 no co-applicant, 6 both selected):
3 or 4 'Sex Not Available'; male (female) with a co-applicant neither female (male) nor both:
'Male' ('Female'); one of each, or 6: 'Joint'.

Codes are read as text; '' (and 'NA') is empty. The derivation runs once per distinct combination
of codes, which a register has a few hundred of (1,000,000 rows: 5.1 s, most of it factorizing the
22 code columns).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from reasoner.errors import EvidenceError
from reasoner.lending.registers.fields import normalize_name
from reasoner.lending.registers.values import Column, describe_bad, factorize_column

__all__ = ["GROUP_CODE_COLUMNS", "derive_ethnicity", "derive_groups", "derive_race", "derive_sex"]

RACE_COLUMNS = tuple(f"applicant_race_{index}" for index in range(1, 6))
CO_RACE_COLUMNS = tuple(f"co_applicant_race_{index}" for index in range(1, 6))
ETHNICITY_COLUMNS = tuple(f"applicant_ethnicity_{index}" for index in range(1, 6))
CO_ETHNICITY_COLUMNS = tuple(f"co_applicant_ethnicity_{index}" for index in range(1, 6))
SEX_COLUMNS = ("applicant_sex", "co_applicant_sex")
GROUP_CODE_COLUMNS = RACE_COLUMNS + CO_RACE_COLUMNS + ETHNICITY_COLUMNS + CO_ETHNICITY_COLUMNS + SEX_COLUMNS

EMPTY = ""
AMERICAN_INDIAN, BLACK, WHITE = "1", "3", "5"
ASIAN = frozenset({"2", "21", "22", "23", "24", "25", "26", "27"})
PACIFIC = frozenset({"4", "41", "42", "43", "44"})
RACE_NOT_AVAILABLE = frozenset({"6", "7"})
CO_RACE_WHITE_OR_ABSENT = frozenset({WHITE, "6", "7", "8"})
RACE_NAMES = {
    AMERICAN_INDIAN: "American Indian or Alaska Native",
    "2": "Asian",
    BLACK: "Black or African American",
    "4": "Native Hawaiian or Other Pacific Islander",
}
HISPANIC = frozenset({"1", "11", "12", "13", "14"})
NOT_HISPANIC = "2"

Codes = tuple[str, ...]


def _minority_races(races: Codes) -> list[str]:
    """The minority races (by their main code) among ``races``, subgroups counted as their race."""
    present = []
    if any(race in PACIFIC for race in races):
        present.append("4")
    if any(race in ASIAN for race in races):
        present.append("2")
    if BLACK in races:
        present.append(BLACK)
    if AMERICAN_INDIAN in races:
        present.append(AMERICAN_INDIAN)
    return present


def _reports_white(races: Codes) -> bool:
    return WHITE in (races[0], races[1], races[2], races[4])  # field 4 not looked at, as published


def derive_race(applicant: Codes, co_applicant: Codes) -> str:
    """``derived_race`` of one application from the five race codes of each applicant."""
    first = applicant[0]
    if first == EMPTY:
        return "Free Form Text Only"
    if first in RACE_NOT_AVAILABLE:
        return "Race Not Available"
    co_white = _reports_white(co_applicant)
    minorities = _minority_races(applicant)
    only_first = all(race == EMPTY for race in applicant[1:])
    after_second_empty = all(race == EMPTY for race in applicant[2:])
    if len(minorities) > 1 and not co_white:
        return "2 or more minority races"
    if minorities and co_white:
        return "Joint"
    if _minority_races(co_applicant) and first == WHITE and only_first:
        return "Joint"
    co_only_first = all(race == EMPTY for race in co_applicant[1:])
    if first == WHITE and only_first and co_only_first and co_applicant[0] in CO_RACE_WHITE_OR_ABSENT:
        return "White"
    for code, members in (
        (AMERICAN_INDIAN, frozenset({AMERICAN_INDIAN})),
        ("2", ASIAN),
        ("4", PACIFIC),
        (BLACK, frozenset({BLACK})),
    ):
        # the Pacific Islander rule asks about the applicant's own White, as published
        white_elsewhere = _reports_white(applicant) if code == "4" else co_white
        if first in members and only_first and not white_elsewhere:
            return RACE_NAMES[code]
        if code in ("2", "4") and minorities == [code] and not co_white:
            return RACE_NAMES[code]
        if (first in members and applicant[1] == WHITE) or (applicant[1] in members and first == WHITE):
            return RACE_NAMES[code] if after_second_empty and not co_white else "Joint"
    return "Joint"


def derive_ethnicity(applicant: Codes, co_applicant: Codes) -> str:
    """``derived_ethnicity`` of one application from the five ethnicity codes of each applicant."""
    first = applicant[0]
    if first == EMPTY:
        return "Free Form Text Only"
    if first in ("3", "4"):
        return "Ethnicity Not Available"

    def not_hispanic_flag(codes: Codes) -> bool:  # as published: a missing 3rd-5th field counts
        return NOT_HISPANIC in codes[:2] or EMPTY in codes[2:]

    hispanic = any(code in HISPANIC for code in applicant)
    co_hispanic = any(code in HISPANIC for code in co_applicant)
    only_first = all(code == EMPTY for code in applicant[1:])
    if first in HISPANIC and only_first and not not_hispanic_flag(co_applicant):
        return "Hispanic or Latino"
    if hispanic and NOT_HISPANIC not in applicant and NOT_HISPANIC not in co_applicant:
        return "Hispanic or Latino"
    if first == NOT_HISPANIC and only_first and not co_hispanic:
        return "Not Hispanic or Latino"
    if (hispanic and not_hispanic_flag(co_applicant)) or (not_hispanic_flag(applicant) and co_hispanic):
        return "Joint"
    if (not_hispanic_flag(applicant) and hispanic) or (not_hispanic_flag(co_applicant) and co_hispanic):
        return "Joint"
    return "Ethnicity Not Available"


def derive_sex(applicant: str, co_applicant: str) -> str:
    """``derived_sex`` of one application from the applicant's and co-applicant's sex codes."""
    if applicant in ("1", "2"):
        other = "2" if applicant == "1" else "1"
        return "Joint" if co_applicant in (other, "6") else ("Male" if applicant == "1" else "Female")
    return "Joint" if applicant == "6" else "Sex Not Available"


def derive_groups(raw: pd.DataFrame, source: str) -> pd.DataFrame | None:
    """``derived_race``, ``derived_ethnicity``, ``derived_sex`` for each row of ``raw`` (a register read
    as text) from its applicant codes; None when ``raw`` lacks any of the code columns. A code outside
    the published lists is an ``EvidenceError`` naming ``source``, the column and the rows."""
    labels = {normalize_name(label): label for label in raw.columns}
    if not all(name in labels for name in GROUP_CODE_COLUMNS):
        return None
    columns = {name: factorize_column(raw[labels[name]], str(labels[name])) for name in GROUP_CODE_COLUMNS}
    codes = {name: _normalized(column.texts) for name, column in columns.items()}
    for name, column in columns.items():
        _check_codes(column, codes[name], name, source)

    def derived(names: Sequence[str], derive: Callable[[Codes], str]) -> np.ndarray:
        return _per_combination([columns[name] for name in names], [codes[name] for name in names], derive)

    return pd.DataFrame(
        {
            "derived_race": derived(RACE_COLUMNS + CO_RACE_COLUMNS, lambda c: derive_race(c[:5], c[5:])),
            "derived_ethnicity": derived(
                ETHNICITY_COLUMNS + CO_ETHNICITY_COLUMNS, lambda c: derive_ethnicity(c[:5], c[5:])
            ),
            "derived_sex": derived(SEX_COLUMNS, lambda c: derive_sex(c[0], c[1])),
        },
        index=raw.index,
    )


def _allowed(name: str) -> frozenset[str]:
    if "race" in name:
        codes = {AMERICAN_INDIAN, BLACK, WHITE} | ASIAN | PACIFIC
        first = name.endswith("_1")
        absent = {"8"} if first and name.startswith("co") else set()
        return frozenset(codes | ({"6", "7"} if first else set()) | absent)
    if "ethnicity" in name:
        first = name.endswith("_1")
        extra = {"3", "4"} if first else set()
        return frozenset(HISPANIC | {NOT_HISPANIC} | extra | ({"5"} if first and name.startswith("co") else set()))
    return frozenset({"1", "2", "3", "4", "6"} | ({"5"} if name.startswith("co") else set()))


def _check_codes(column: Column, codes: list[str], name: str, source: str) -> None:
    allowed = _allowed(name)
    required = name.endswith("_sex")  # an empty race or ethnicity is allowed: free-form text only, or unused
    bad = ~np.isin(np.array(codes, dtype=object), list(allowed | (set() if required else {EMPTY})))
    if bad.any():
        listed = ", ".join(sorted(allowed, key=lambda code: (len(code), code)))
        raise EvidenceError(
            f"{source}: column '{column.label}': expected one of {listed}{'' if required else ' or empty'}, "
            f"got {describe_bad(column, bad)}"
        )


def _normalized(texts: np.ndarray) -> list[str]:
    """Distinct codes as compared: '' for empty and 'NA'; '5.0' (a parquet float) as '5'."""
    out = []
    for text in texts:
        text = str(text).strip()
        if text.upper() in ("NA", "N/A"):
            text = EMPTY
        elif text.endswith(".0") and text[:-2].isdigit():
            text = text[:-2]
        out.append(text)
    return out


def _per_combination(
    columns: Sequence[Column], codes: Sequence[list[str]], derive: Callable[[Codes], str]
) -> np.ndarray:
    """``derive`` once per distinct combination of the columns' codes, spread back to the rows."""
    key = np.zeros(columns[0].codes.size, dtype=np.int64)
    for column in columns:  # one number per distinct combination so far (never more than the rows)
        key, _ = pd.factorize(key * column.texts.size + column.codes, sort=False)
        key = np.asarray(key, dtype=np.int64)
    _, first_rows, inverse = np.unique(key, return_index=True, return_inverse=True)
    pairs = list(zip(columns, codes, strict=True))
    combinations = [tuple(code[column.codes[row]] for column, code in pairs) for row in first_rows]
    derived = np.array([derive(combination) for combination in combinations], dtype=object)
    result: np.ndarray = derived[inverse.reshape(-1)]
    return result


def group_notes(race: pd.Series, ethnicity: pd.Series, sex: pd.Series) -> tuple[str, ...]:
    """How applicants whose race or ethnicity is not reported are treated, with their counts (for the
    report): the groups of ``tables.add_group_columns`` applied to the cleaned columns."""
    race_missing = race.isin(("Race Not Available", "Free Form Text Only")).fillna(False)
    hispanic = ethnicity.eq("Hispanic or Latino").fillna(False)
    binary_sex = sex.isin(("Male", "Female")).fillna(False)
    white_unknown = race.eq("White").fillna(False) & ~ethnicity.isin(("Hispanic or Latino", "Not Hispanic or Latino"))
    notes = []
    count = int((race_missing & hispanic).sum())
    if count:
        notes.append(
            f"{count:,} Hispanic or Latino applicants did not report a race: they are compared as Hispanic (the "
            "Hispanic and minority comparisons) and by sex"
        )
    count = int((race_missing & ~hispanic & binary_sex).sum())
    if count:
        notes.append(
            f"{count:,} applicants with neither race nor Hispanic ethnicity reported are compared by sex only"
        )
    count = int(white_unknown.sum())
    if count:
        notes.append(
            f"{count:,} White applicants whose ethnicity is not available, joint or free-form text are in no race or "
            "ethnicity comparison (neither White non-Hispanic nor Hispanic) and are compared by sex"
        )
    return tuple(notes)
