"""HMDA ingest: read a public loan/application register and clean it for the audit.

``read_hmda(path)`` returns the file as published, every column as text (codes keep their
leading zeros): parquet (a file or a dataset directory), CSV, or the pipe-delimited text the
HMDA platform publishes (the delimiter is detected; ``.gz``/``.bz2`` and a ``.zip`` holding
one file are read as well); ``read_hmda(path, columns=INPUT_COLUMNS)`` reads only the
columns ``clean_hmda`` uses.

``clean_hmda(raw, source_name)`` returns a ``CleanedHMDA`` whose ``frame`` has one row per
input row, never dropping any, with these columns:

====================  =========  ================================================================
column                type       meaning
====================  =========  ================================================================
row                   int64      1-based data row of the input (the header is not counted)
application_id        str        ``application_id`` or ``uli`` when the input has one, else ``row``
lei                   str        the lender's Legal Entity Identifier
activity_year         str        as published (null when absent)
state_code            str        two-letter state code; null for NA
county_code           str        5-digit state+county FIPS with leading zeros; null for NA
census_tract          str        11-digit tract with leading zeros; null for NA
msa                   str        ``derived_msa-md`` as published; null for NA
race                  str        ``derived_race``, published spelling
ethnicity             str        ``derived_ethnicity``, published spelling
sex                   str        ``derived_sex``, published spelling
age                   str        ``applicant_age`` bucket ('<25' … '>74'); null for 8888/9999/NA
action_taken          int64      1 … 8
decision              str        'approved' (1, 2), 'denied' (3), 'other' (4 … 8)
loan_type             int64      1 conventional, 2 FHA, 3 VA, 4 FSA/RHS
loan_purpose          int64      1, 2, 31, 32, 4, 5
lien_status           int64      1 first lien, 2 subordinate lien
occupancy_type        float64    1 principal residence, 2 second, 3 investment (optional, below)
open_end_line_of_credit  float64 1 yes, 2 no
business_or_commercial_purpose  float64  1 yes, 2 no
reverse_mortgage      float64    1 yes, 2 no
preapproval           float64    1 requested, 2 not requested
construction_method   float64    1 site-built, 2 manufactured home
loan_term             float64    months
total_units           float64    units; a published bucket becomes its lower bound ('5-24' → 5)
loan_amount           float64    dollars; published as the midpoint of its $10,000 interval
income                float64    dollars (the published value is in thousands: multiplied by 1000)
dti                   float64    debt-to-income, percent; buckets become a number (below)
cltv                  float64    combined loan-to-value, percent
property_value        float64    dollars, $10,000-interval midpoint as published
interest_rate         float64    percent
rate_spread           float64    percentage points over APOR
tract_minority_pct    float64    ``tract_minority_population_percent``
tract_income_pct      float64    ``tract_to_msa_income_percentage``
denial_reason_1       float64    1 … 9; NaN for 10 (not applicable), 1111 (exempt) and NA
denial_reason_2 … 4   float64    the same, for the second to fourth reasons
excluded              str        '' when usable for treatment rules, else the first reason
====================  =========  ================================================================

The product and population fields (``occupancy_type`` … ``total_units``) and ``denial_reason_2``
… ``_4`` are optional: NaN when absent, and NaN for 'NA', 'Exempt' and 1111 (exempt); a code
outside the dictionary is an error. Text columns use pandas' ``str`` dtype, null where the
value is missing; every float is NaN when the published value is ``NA``, ``Exempt`` or empty.
``raw`` may hold text (as ``read_hmda`` gives), categoricals (as ``synthesize`` gives) or
numbers. Published DTI buckets become numbers: '<20%' → 10, '20%-<30%' → 25, '30%-<36%' → 33, '36' … '49' (with
or without '%') → themselves, '50%-60%' → 55, '>60%' → 70 (the open-ended buckets are closed
at 0 % and 80 %); any other number is taken as it is.

A row's ``excluded`` reason is the first that applies, in this order: 'not a decision'
(action 4 … 8: withdrawn, incomplete, purchased, preapprovals), 'missing income', 'missing
dti', 'exempt dti', 'missing cltv', 'exempt cltv', 'missing loan amount', 'unknown race
code' (a ``derived_race`` outside the dictionary), 'no group known' (race not available or
free-form text only, not Hispanic, and sex neither male nor female: no comparison of race,
ethnicity or sex can place the row; a Hispanic applicant of unreported race is Hispanic, an
applicant of unreported race is still compared by sex). Pricing fields are never a reason: the HMDA edits make
``rate_spread`` NA for every denial (V657), so only pricing analyses may require them.

Required input columns (either spelling; ``loan_to_value_ratio`` stands in for
``combined_loan_to_value_ratio``): ``lei``, ``action_taken``, ``derived_race``,
``derived_ethnicity``, ``derived_sex``, ``loan_type``, ``loan_purpose``, ``lien_status``,
``loan_amount``, ``income``, ``debt_to_income_ratio``, ``combined_loan_to_value_ratio``; a
register without the three ``derived_*`` columns (the filing format, the Modified LAR) gets them
from its applicant and co-applicant codes (``groups.derive_groups``). The others used are
optional: when absent their output is all missing and they are listed in
``CleanedHMDA.absent_columns``.

Every problem is an ``EvidenceError`` naming the source, column and rows: a missing column
(with a did-you-mean), no rows, no usable row, a value that is neither a number nor a
documented code, an undocumented code, an empty LEI, and empty or duplicate application ids.
"""

from __future__ import annotations

import ctypes
import dataclasses
import sys
from collections.abc import Callable, Hashable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from reasoner.errors import EvidenceError, closest
from reasoner.lending.config import ColumnMap
from reasoner.lending.registers import files
from reasoner.lending.registers.column_map import mapped_columns, mapped_register, require_mapped_columns
from reasoner.lending.registers.compact import Coded, CompactFrame, concat
from reasoner.lending.registers.compact import compact as compact_frame
from reasoner.lending.registers.fields import (
    ACTION_TAKEN,
    DERIVED_ETHNICITY,
    DERIVED_RACE,
    DERIVED_SEX,
    LIEN_STATUS,
    LOAN_PURPOSE,
    LOAN_TYPE,
    RACE_NOT_AVAILABLE,
    normalize_name,
)
from reasoner.lending.registers.files import (
    KNOWN_NAMES,
    column_names,
    parquet_rows,
    read_hmda,
    read_hmda_batches,
    register_format,
)
from reasoner.lending.registers.formats import RegisterFormat, TransmittalSheet
from reasoner.lending.registers.groups import GROUP_CODE_COLUMNS, derive_groups, group_notes
from reasoner.lending.registers.values import (
    MISSING_TEXT,
    Column,
    canonical_texts,
    describe_bad,
    describe_rows,
    factorize_column,
    is_in,
    parse_code,
    parse_denial_reason,
    parse_dti,
    parse_number,
    strings,
    upper_texts,
)

__all__ = [
    "CLEAN_COLUMNS",
    "EXCLUSION_REASONS",
    "INPUT_COLUMNS",
    "CleanedHMDA",
    "clean_hmda",
    "read_clean",
    "read_hmda",
]

# Codes of the product and population fields kept for the rules' controls; any other value is
# an error. 1111 (exempt) is missing, as 'NA' and 'Exempt' are.
PRODUCT_CODES = {
    "occupancy_type": (1, 2, 3),
    "open_end_line_of_credit": (1, 2),
    "business_or_commercial_purpose": (1, 2),
    "reverse_mortgage": (1, 2),
    "preapproval": (1, 2),
    "construction_method": (1, 2),
}
PRODUCT_FIELDS = (
    "occupancy_type",
    "open_end_line_of_credit",
    "business_or_commercial_purpose",
    "reverse_mortgage",
    "preapproval",
    "construction_method",
    "loan_term",
    "total_units",
)
# total_units is published in buckets above 4 units: each becomes its lower bound
TOTAL_UNITS_BUCKETS = {"5-24": 5.0, "25-49": 25.0, "50-99": 50.0, "100-149": 100.0, ">149": 150.0}

CLEAN_COLUMNS = (
    "row",
    "application_id",
    "lei",
    "activity_year",
    "state_code",
    "county_code",
    "census_tract",
    "msa",
    "race",
    "ethnicity",
    "sex",
    "age",
    "action_taken",
    "decision",
    "loan_type",
    "loan_purpose",
    "lien_status",
    *PRODUCT_FIELDS,
    "loan_amount",
    "income",
    "dti",
    "cltv",
    "property_value",
    "interest_rate",
    "rate_spread",
    "tract_minority_pct",
    "tract_income_pct",
    "denial_reason_1",
    "denial_reason_2",
    "denial_reason_3",
    "denial_reason_4",
    "excluded",
)
EXCLUSION_REASONS = (
    "not a decision",
    "missing income",
    "missing dti",
    "exempt dti",
    "missing cltv",
    "exempt cltv",
    "missing loan amount",
    "unknown race code",
    "no group known",
)
REQUIRED = (
    "lei",
    "action_taken",
    "derived_race",
    "derived_ethnicity",
    "derived_sex",
    "loan_type",
    "loan_purpose",
    "lien_status",
    "loan_amount",
    "income",
    "debt_to_income_ratio",
    "combined_loan_to_value_ratio",
)
OPTIONAL = (
    "activity_year",
    "derived_msa_md",
    "state_code",
    "county_code",
    "census_tract",
    "applicant_age",
    "property_value",
    "interest_rate",
    "rate_spread",
    "tract_minority_population_percent",
    "tract_to_msa_income_percentage",
    "denial_reason_1",
    "denial_reason_2",
    "denial_reason_3",
    "denial_reason_4",
    *PRODUCT_FIELDS,
)
DENIAL_REASONS = ("denial_reason_1", "denial_reason_2", "denial_reason_3", "denial_reason_4")
ID_COLUMNS = ("application_id", "uli")
ALIASES = {"loan_to_value_ratio": "combined_loan_to_value_ratio"}
DECISIONS = ("approved", "denied", "other")
DERIVED_GROUPS = ("derived_race", "derived_ethnicity", "derived_sex")
INPUT_COLUMNS = REQUIRED + OPTIONAL + ID_COLUMNS + tuple(ALIASES)  # what ``clean_hmda`` reads
# ... and, when the register has no derived groups, the applicant codes they are derived from
GROUP_INPUT_COLUMNS = INPUT_COLUMNS + GROUP_CODE_COLUMNS


@dataclass(frozen=True, slots=True)
class CleanedHMDA:
    """A cleaned register: ``frame`` (``CLEAN_COLUMNS``), exclusion counts and provenance.

    ``exclusions`` counts rows per reason (every reason of ``EXCLUSION_REASONS``, zeros
    included); ``id_column`` is 'application_id', 'uli' or 'row'; ``rows_read`` the input rows.
    """

    frame: pd.DataFrame
    exclusions: dict[str, int]
    id_column: str
    rows_read: int
    source: str = ""
    absent_columns: tuple[str, ...] = ()
    groups_derived: bool = False  # derived_race/_ethnicity/_sex derived from the applicant codes
    register_format: str = ""  # ``formats.RegisterFormat.description`` of a text register
    transmittal: TransmittalSheet | None = None  # the filing's transmittal sheet
    held: CompactFrame | None = None  # ``read_clean(compact=True)``: the rows, held compact; ``frame`` has none
    # columns of ``frame`` as ``clean_hmda`` made them from its input's codes (``compact.compact`` holds them so)
    coded: dict[str, Coded] = dataclasses.field(default_factory=dict)

    def warnings(self) -> tuple[str, ...]:
        """What the user must be told now, not only in the report (a filing whose line count
        disagrees with its transmittal sheet)."""
        mismatch = None if self.transmittal is None else self.transmittal.count_mismatch(self.rows_read)
        return () if mismatch is None else (mismatch,)

    def provenance_notes(self) -> tuple[str, ...]:
        """What the report says about the register: its format, the transmittal sheet, where the
        groups come from, and how applicants without a reported race or ethnicity are compared."""
        notes = [f"Format: {self.register_format}." if self.register_format else ""]
        if self.transmittal is not None:
            notes.append(f"Transmittal sheet: {self.transmittal.describe()}; {self.rows_read:,} read.")
            notes += [f"Warning: {warning}." for warning in self.warnings()]
        if self.groups_derived:
            notes.append(
                "derived_race, derived_ethnicity and derived_sex were not in the register: they were derived from "
                "the applicant and co-applicant codes by the CFPB's rules for the public data."
            )
        # as held (categoricals of the texts: compared by their few categories, not a text a row)
        frame = self.frame if self.held is None else self.held.restore(["race", "ethnicity", "sex"], text_as_held=True)
        notes += [note + "." for note in group_notes(frame["race"], frame["ethnicity"], frame["sex"])]
        return tuple(note for note in notes if note)

    @property
    def usable(self) -> pd.DataFrame:
        """Rows usable for treatment rules (``excluded == ''``)."""
        frame = self.frame if self.held is None else self.held.restore()
        return frame[frame["excluded"] == ""]


def read_clean(
    path: Path,
    source_name: str,
    progress: Callable[[int], None] | None = None,
    *,
    column_map: ColumnMap | None = None,
    extra_numeric: tuple[str, ...] = (),
    extra_text: tuple[str, ...] = (),
    groups_estimated: bool = False,
    compact: bool = False,
) -> CleanedHMDA:
    """``clean_hmda(read_hmda(path, INPUT_COLUMNS), source_name)``, read and cleaned piece by piece
    (``files.read_hmda_batches``) so that only the cleaned columns of the whole register and one
    raw piece are in memory at a time. The result is the same frame. When a piece is refused,
    the register is cleaned again in one piece, so the message names rows of the whole input and
    counts all of them (an error is rare; an exact message is worth the second read).

    ``extra_numeric`` and ``extra_text``: columns of the register that are no HMDA field (a
    bank's credit score, its AUS result) kept in the cleaned frame under their own names, as
    numbers (missing: NaN; anything else that is not a number is an ``EvidenceError`` naming
    the column and rows) or as text (missing: null).

    ``groups_estimated``: race and ethnicity will be estimated (``reasoner.lending.proxies``), so rows
    excluded as 'no group known' do not count against the check that some row is usable: the
    caller checks once the estimates are in.

    ``compact``: each piece is held compact as soon as it is cleaned (``compact.compact``: text
    and codes as dictionaries, about an eighth of the bytes), and the result's rows are in
    ``held``, its ``frame`` has the columns and dtypes and no rows; ``held.restore(columns, rows)``
    gives any part of the same frame."""
    parts: list[CleanedHMDA] = []
    first = 1
    layout = register_format(path)
    if column_map is not None:  # a bank's own register: its columns by the names [columns] gives
        require_mapped_columns(column_names(path), column_map, str(source_name))
        columns: tuple[str, ...] = mapped_columns(column_map)
    else:
        columns = INPUT_COLUMNS if _has_derived_groups(path, layout) else GROUP_INPUT_COLUMNS
    # read as categoricals: the columns clean_hmda only factorizes (not a bank's mapped ones, not the
    # extra ones kept as they are, none when the groups are derived from the applicant codes)
    extras = {normalize_name(name) for name in (*extra_numeric, *extra_text)}
    factorized = () if columns != INPUT_COLUMNS else tuple(name for name in INPUT_COLUMNS if name not in extras)

    columns = tuple(dict.fromkeys((*columns, *extra_numeric, *extra_text)))

    def cleaned(raw: pd.DataFrame, **options: Any) -> CleanedHMDA:
        kept = raw[[*extra_numeric, *extra_text]]
        if column_map is not None:
            raw = mapped_register(raw, column_map, str(source_name))
        result = clean_hmda(raw, source_name, **options)
        for name in (*extra_numeric, *extra_text):  # its own column now, not the cleaning's
            result.coded.pop(name, None)
        first_row = options.get("first_row", 1)
        for name in extra_numeric:
            result.frame[name] = _extra_number(kept[name], name, str(source_name), first_row)
        for name in extra_text:
            texts = kept[name].astype("str")
            result.frame[name] = texts.where(
                ~texts.str.strip().isin(MISSING_TEXT) & kept[name].notna(), None
            ).to_numpy()
        return result

    try:
        for raw in read_hmda_batches(path, columns, progress, dictionaries=factorized):
            part = cleaned(raw, first_row=first, whole=False, keep_codes=compact)
            parts.append(_held(part) if compact else part)
            del part
            first += len(raw)
            del raw
            release_arrow_memory()  # the raw piece's pages, before the next piece is read
        combined = _combined(parts, source_name, groups_estimated)
        parts.clear()
        release_arrow_memory()
        return _with_provenance(combined, layout, column_map)
    except EvidenceError as error:
        error.__traceback__ = None  # frees the refused piece before the input is read again
        rows = parquet_rows(path)
        if rows is None or rows <= files.piece_rows(rows):
            raise  # the register was one piece: the message is exact
        del parts
    whole = cleaned(read_hmda(path, columns), whole=not groups_estimated, keep_codes=compact)
    return _with_provenance(_held(whole) if compact else whole, layout, column_map)


def _held(cleaned: CleanedHMDA) -> CleanedHMDA:
    """``cleaned`` with its rows held compact (``CleanedHMDA.held``) and a frame without rows."""
    held = compact_frame(cleaned.frame, cleaned.coded)
    # not ``frame.iloc[:0]``: a view of the piece's columns, it would keep every piece's bytes
    return dataclasses.replace(cleaned, frame=held.restore(rows=np.arange(0)), held=held, coded={})


def release_arrow_memory() -> None:
    """Give the memory pyarrow's allocator keeps after frees back to the system. Its pool
    (mimalloc) holds on to freed pages: after reading 1,000,000 rows in pieces the process held
    1,078 MB for a 400 MB register, 629 MB once released; at 12,000,000 rows, gigabytes."""
    pa.default_memory_pool().release_unused()
    _trim_malloc()


def _trim_malloc() -> None:
    """Give glibc's free heap pages back to the system (numpy and pandas allocate with malloc:
    after the pieces are joined the heap keeps their freed pages; ``malloc_trim`` releases them)."""
    if not sys.platform.startswith("linux"):
        return
    with suppress(OSError, AttributeError):  # another C library (musl) has no malloc_trim
        ctypes.CDLL(None).malloc_trim(0)


def _extra_number(values: pd.Series, name: str, source: str, first_row: int) -> np.ndarray:
    """A register column that is no HMDA field, as numbers; 'NA', 'N/A' and empty are missing."""
    texts = values.astype("str").str.strip()
    missing = values.isna().to_numpy() | texts.isin(MISSING_TEXT).to_numpy()
    numbers = pd.to_numeric(texts.where(~missing, None), errors="coerce").to_numpy(dtype=np.float64)
    bad = ~missing & ~np.isfinite(numbers)
    if bad.any():
        rows = np.flatnonzero(bad) + first_row
        example = texts.to_numpy()[np.flatnonzero(bad)[0]]
        raise EvidenceError(
            f"{source}: column '{name}': expected a number or 'NA', got {example!r} ({describe_rows(rows)})"
        )
    return numbers


def _with_provenance(
    cleaned: CleanedHMDA, layout: RegisterFormat | None, column_map: ColumnMap | None = None
) -> CleanedHMDA:
    """The cleaned register with its format and transmittal sheet; a filing's rows take the
    activity year of its transmittal sheet (its loan lines carry none)."""
    described = "parquet" if layout is None else layout.description
    if column_map is not None:
        mapped = ", ".join(f"{field} ← '{name}'" for field, name, _ in column_map.columns)
        described = f"{described}, columns mapped by [columns] of {column_map.path.name} ({mapped})"
    sheet = None if layout is None else layout.transmittal
    if sheet is None or "activity_year" not in cleaned.absent_columns:
        return dataclasses.replace(cleaned, register_format=described, transmittal=sheet)
    if cleaned.held is not None:  # a filing is text, read in one piece: held again once the year is in
        whole = dataclasses.replace(cleaned, frame=cleaned.held.restore(), held=None)
        return _held(_with_provenance(whole, layout, column_map))
    frame = cleaned.frame.assign(activity_year=pd.Series(sheet.year, index=cleaned.frame.index, dtype="str"))
    absent = tuple(name for name in cleaned.absent_columns if name != "activity_year")
    return dataclasses.replace(
        cleaned, frame=frame, absent_columns=absent, register_format=described, transmittal=sheet, coded={}
    )


def _has_derived_groups(path: Path, layout: RegisterFormat | None) -> bool:
    """Whether the register names all three derived group columns (then the codes are not read)."""
    if layout is not None and layout.columns is not None:
        names = set(layout.columns)
    else:
        names = set(column_names(path))
    return {normalize_name(name) for name in names} >= set(DERIVED_GROUPS)


def _combined(parts: list[CleanedHMDA], source_name: str, groups_estimated: bool = False) -> CleanedHMDA:
    """Consecutive pieces of a register as one (a repeated id or no usable row → ``EvidenceError``;
    ``groups_estimated``: rows with no group known may yet become usable)."""
    if len(parts) == 1:
        only = parts[0]
        _check_usable(only.exclusions, only.rows_read, str(source_name), groups_estimated)
        return only
    held = None if parts[0].held is None else concat([part.held for part in parts if part.held is not None])
    frame = parts[0].frame if held is not None else pd.concat([part.frame for part in parts], ignore_index=True)
    parts_ids = {part.id_column for part in parts}
    ids = None if parts_ids == {"row"} else frame["application_id"] if held is None else held.column("application_id")
    if ids is not None and ids.duplicated().any():
        raise EvidenceError(f"{source_name}: duplicate application ids")  # re-cleaned whole for the message
    exclusions = {reason: sum(part.exclusions[reason] for part in parts) for reason in parts[0].exclusions}
    count = sum(part.rows_read for part in parts)
    _check_usable(exclusions, count, str(source_name), groups_estimated)
    first = parts[0]
    return CleanedHMDA(
        frame,
        exclusions,
        first.id_column,
        count,
        first.source,
        first.absent_columns,
        groups_derived=first.groups_derived,
        held=held,
    )


def _check_usable(exclusions: dict[str, int], count: int, source: str, groups_estimated: bool = False) -> None:
    excluded = sum(rows for reason, rows in exclusions.items() if not (groups_estimated and reason == "no group known"))
    if excluded == count:
        listed = ", ".join(f"{reason} {rows}" for reason, rows in exclusions.items() if rows)
        raise EvidenceError(f"{source}: no usable rows: {count} read; excluded: {listed}")


def clean_hmda(
    raw: pd.DataFrame, source_name: str, *, first_row: int = 1, whole: bool = True, keep_codes: bool = False
) -> CleanedHMDA:
    """Typed, documented columns and an exclusion reason per row (see the module docstring).

    ``first_row``: the input row of ``raw``'s first row, when it is a piece of the input
    (``read_clean``); ``whole=False`` leaves the checks that need every row (no usable row)
    to the caller; ``keep_codes``: the result's ``coded`` holds each column as the codes it was
    made from (``read_clean``'s compact pieces are held from them), else it is empty; then the frame's
    coded columns only stand in (their dtype, no rows: 25 text and float columns a piece not built,
    ``compact.compact`` makes its dictionaries or rows from the codes).
    """
    source = str(source_name)
    count = len(raw)
    raw, groups_derived = _with_derived_groups(raw, source)
    labels, absent_columns = _resolve_columns(raw, source)  # before counting rows: a register of other columns says so
    if count == 0:
        raise EvidenceError(f"{source}: no rows")
    columns = {name: factorize_column(raw[label], str(label)) for name, label in labels.items()}
    coded: dict[str, Coded] = {}  # each column made from its input's codes, as made (``compact.compact`` holds them so)

    def absent(value: str | float | None) -> Coded:
        return Coded(np.zeros(count, dtype=np.int32), np.array([value], dtype=object if value is None else np.float64))

    def text(name: str, canonical: tuple[str, ...] = (), missing: tuple[str, ...] = ()) -> Coded:
        if name not in columns:
            return absent(None)
        column = columns[name]
        return column.coded(canonical_texts(column.texts, canonical, missing))

    def number(name: str) -> tuple[Coded, Coded]:
        if name not in columns:
            return absent(np.nan), Coded(np.zeros(count, dtype=np.int32), np.zeros(1, dtype=bool))
        return parse_number(columns[name], source)

    action_coded = parse_code(columns["action_taken"], source, ACTION_TAKEN)
    action = action_coded.rows()
    decision = np.select([np.isin(action, (1, 2)), action == 3], [0, 1], 2)
    income_coded = number("income")[0]
    income_coded = Coded(income_coded.codes, income_coded.values * 1000.0)
    income = income_coded.rows()
    loan_amount_coded = number("loan_amount")[0]
    loan_amount = loan_amount_coded.rows()
    dti_coded, dti_exempt_coded = parse_dti(columns["debt_to_income_ratio"], source)
    dti, dti_exempt = dti_coded.rows(), dti_exempt_coded.rows()
    cltv_coded, cltv_exempt_coded = number("combined_loan_to_value_ratio")
    cltv, cltv_exempt = cltv_coded.rows(), cltv_exempt_coded.rows()
    race_column = columns["derived_race"]
    known_race = pd.Series(race_column.texts, dtype=object).str.lower().isin([race.lower() for race in DERIVED_RACE])
    coded["race"] = text("derived_race", DERIVED_RACE)
    coded["ethnicity"] = text("derived_ethnicity", DERIVED_ETHNICITY)
    coded["sex"] = text("derived_sex", DERIVED_SEX)
    # keep_codes: the coded columns' rows are held from their codes (``compact.compact``), not built as text here
    rows_of = _stand_ins(count) if keep_codes else _as_rows
    ids, id_column, id_coded = _application_ids(raw, source, first_row)
    if id_coded is not None:
        coded["application_id"] = id_coded
    coded.update(
        {
            "lei": _lei(columns["lei"], source),
            "activity_year": text("activity_year"),
            "state_code": text("state_code"),
            "county_code": _fips(columns.get("county_code"), 5, count, source, "county (state + county FIPS)"),
            "census_tract": _fips(columns.get("census_tract"), 11, count, source, "census tract"),
            "msa": text("derived_msa_md"),
            "age": _age(columns.get("applicant_age"), source, text),
            "decision": Coded(decision, np.array(DECISIONS, dtype=object)),
        }
    )
    coded.update(
        {
            "action_taken": action_coded,
            "loan_type": parse_code(columns["loan_type"], source, LOAN_TYPE),
            "loan_purpose": parse_code(columns["loan_purpose"], source, LOAN_PURPOSE),
            "lien_status": parse_code(columns["lien_status"], source, LIEN_STATUS),
            "loan_amount": loan_amount_coded,
            "income": income_coded,
            "dti": dti_coded,
            "cltv": cltv_coded,
            "property_value": number("property_value")[0],
            "interest_rate": number("interest_rate")[0],
            "rate_spread": number("rate_spread")[0],
            "tract_minority_pct": number("tract_minority_population_percent")[0],
            "tract_income_pct": number("tract_to_msa_income_percentage")[0],
            **{
                name: parse_denial_reason(columns[name], source) if name in columns else absent(np.nan)
                for name in DENIAL_REASONS
            },
        }
    )
    places = ("lei", "activity_year", "state_code", "county_code", "census_tract", "msa")
    products = {name: _product_field(columns.get(name), name, count, source) for name in PRODUCT_FIELDS}
    frame = pd.DataFrame(
        {
            "row": np.arange(first_row, first_row + count, dtype=np.int64),
            "application_id": ids,
            **{
                name: rows_of(products[name] if name in products else coded[name])
                for name in (
                    *places, "race", "ethnicity", "sex", "age", "action_taken", "decision", "loan_type",
                    "loan_purpose", "lien_status", *PRODUCT_FIELDS, "loan_amount", "income", "dti", "cltv",
                    "property_value", "interest_rate", "rate_spread", "tract_minority_pct", "tract_income_pct",
                    *DENIAL_REASONS,
                )
            },
        },
        copy=not keep_codes,  # stand-ins not stacked into blocks (25 columns of zeros copied: 0.4 CPU s a million rows)
    )
    coded.update(products)  # in the frame before the loan amount (not inserted there: a copy of each column)
    reasons = {
        "not a decision": decision == 2,
        "missing income": np.isnan(income),
        "missing dti": np.isnan(dti) & ~dti_exempt,
        "exempt dti": dti_exempt,
        "missing cltv": np.isnan(cltv) & ~cltv_exempt,
        "exempt cltv": cltv_exempt,
        "missing loan amount": np.isnan(loan_amount),
        "unknown race code": ~race_column.take(known_race.to_numpy(dtype=bool)),
        "no group known": _no_group_known(coded["race"], coded["ethnicity"], coded["sex"]),
    }
    reason_codes, exclusions = _first_reasons(reasons, count)
    coded["excluded"] = Coded(reason_codes, np.array(("", *EXCLUSION_REASONS), dtype=object))
    frame["excluded"] = rows_of(coded["excluded"])
    if whole:
        _check_usable(exclusions, count, source)
    return CleanedHMDA(
        frame, exclusions, id_column, count, source, absent_columns, groups_derived=groups_derived,
        coded=coded if keep_codes else {},
    )


def _strings(coded: Coded) -> pd.Series:
    """A text column of ``coded`` (``values.strings``)."""
    return strings(coded.codes, list(coded.values))


def _as_rows(coded: Coded) -> pd.Series | np.ndarray:
    """The cleaned frame's column of ``coded``: text (its values are objects) or numbers."""
    return _strings(coded) if coded.values.dtype == object else coded.rows()


def _stand_ins(count: int) -> Callable[[Coded], pd.Series | np.ndarray]:
    """Per coded column a column of ``_as_rows(coded)``'s dtype and ``count`` rows, all missing text or zeros:
    what ``clean_hmda(keep_codes=True)`` puts in its frame for a coded column, whose rows ``compact.compact``
    holds from the codes (it reads the frame's column for its dtype only). The zeros of a dtype and the
    nulls behind the text are made once and shared by the columns (never written: pandas copies on write), not
    once a column (25 columns a piece: 0.2 CPU s a million rows); each text column has its own dtype object,
    as before (a shared one would pickle the compact frame to other bytes)."""
    nulls = pa.nulls(count, pa.string())
    zeros: dict[Any, np.ndarray] = {}

    def stand_in(coded: Coded) -> pd.Series | np.ndarray:
        if coded.values.dtype == object:
            return nulls.to_pandas()  # the dtype ``values.strings`` gives
        if coded.values.dtype not in zeros:  # never read: zeros are the cheapest rows of any dtype
            zeros[coded.values.dtype] = np.zeros(count, dtype=coded.values.dtype)
        return zeros[coded.values.dtype]

    return stand_in


def _no_group_known(race: Coded, ethnicity: Coded, sex: Coded) -> np.ndarray:
    """``no_group_known`` of the three coded columns, decided once per value and taken to the rows."""

    def per_row(column: Coded, test: Callable[[pd.Series], pd.Series]) -> np.ndarray:
        return test(pd.Series(column.values, dtype=object)).to_numpy(dtype=bool)[column.codes]

    return (
        per_row(race, lambda values: values.isin(RACE_NOT_AVAILABLE))
        & ~per_row(ethnicity, lambda values: values.eq("Hispanic or Latino"))
        & ~per_row(sex, lambda values: values.isin(("Male", "Female")))
    )


def no_group_known(race: pd.Series, ethnicity: pd.Series, sex: pd.Series) -> np.ndarray:
    """Rows that no comparison of race, ethnicity or sex can place: race not available, not
    Hispanic (a Hispanic applicant of unreported race is Hispanic), and sex neither male nor female."""
    return (
        race.isin(RACE_NOT_AVAILABLE).to_numpy(dtype=bool)
        & ~ethnicity.eq("Hispanic or Latino").fillna(False).to_numpy(dtype=bool)
        & ~sex.isin(("Male", "Female")).to_numpy(dtype=bool)
    )


def _with_derived_groups(raw: pd.DataFrame, source: str) -> tuple[pd.DataFrame, bool]:
    """``raw`` with ``derived_race``/``_ethnicity``/``_sex`` derived from the applicant codes when
    it has the codes and not the groups (the filing format, the Modified LAR); and whether it did."""
    present = {normalize_name(label) for label in raw.columns}
    if all(name in present for name in DERIVED_GROUPS):
        return raw, False
    derived = derive_groups(raw, source)
    if derived is None:
        return raw, False
    return raw.assign(**{name: derived[name] for name in DERIVED_GROUPS if name not in present}), True


def _resolve_columns(raw: pd.DataFrame, source: str) -> tuple[dict[str, Hashable], tuple[str, ...]]:
    """Internal name → input label of every column used; and the optional ones absent."""
    normalized = [normalize_name(label) for label in raw.columns]
    by_name: dict[str, Hashable] = {}
    for label, name in zip(raw.columns, normalized, strict=True):
        if name in ALIASES and ALIASES[name] not in normalized:
            name = ALIASES[name]
        if name in by_name:
            raise EvidenceError(f"{source}: columns '{by_name[name]}' and '{label}' are the same field '{name}'")
        by_name[name] = label
    missing = [name for name in REQUIRED if name not in by_name]
    if missing:
        unknown = {normalize_name(label): label for name, label in by_name.items() if name not in KNOWN_NAMES}
        parts = []
        for name in missing:
            close = closest(name, unknown, cutoff=0.75)
            parts.append(f"'{name}'" + (f" (did you mean '{unknown[close]}'?)" if close else ""))
        note = (
            ""
            if any(name in KNOWN_NAMES for name in by_name)
            else (
                "; no column is named like an HMDA field (a register with its own columns: map them in [columns] of "
                "audit.toml)"
            )
        )
        plural = "s" if len(missing) > 1 else ""
        raise EvidenceError(f"{source}: missing column{plural} {', '.join(parts)}{note}")
    labels = {name: by_name[name] for name in REQUIRED + OPTIONAL if name in by_name}
    return labels, tuple(name for name in OPTIONAL if name not in by_name)


def _lei(column: Column, source: str) -> Coded:
    blank = np.isin(column.texts, list(MISSING_TEXT))
    rows = np.flatnonzero(column.take(blank)) + 1
    if rows.size:
        raise EvidenceError(
            f"{source}: column '{column.label}': expected an LEI, got an empty value ({describe_rows(rows)})"
        )
    return column.coded(list(column.texts))


def _fips(column: Column | None, width: int, count: int, source: str = "", what: str = "code") -> Coded:
    """FIPS codes with their leading zeros back (a number column loses them: 6037 → '06037').

    Anything but ``width`` digits (once padded) or a missing value is an ``EvidenceError``.
    """
    if column is None:
        return Coded(np.zeros(count, dtype=np.int32), np.array([None], dtype=object))
    texts = pa.array(column.texts, type=pa.string())
    if not pc.all(pc.string_is_ascii(texts)).as_py():  # Python's \d takes any script's digits, Arrow's [0-9] only
        return _fips_texts(column, width, source, what)
    digits = pc.match_substring_regex(texts, r"^[0-9]+(\.0+)?$")
    padded = pc.if_else(digits, pc.utf8_lpad(pc.replace_substring_regex(texts, r"\.0+$", ""), width, "0"), texts)
    missing = pc.is_in(pc.ascii_upper(texts), pa.array(sorted(MISSING_TEXT)))
    bad = pc.invert(pc.or_(missing, pc.match_substring_regex(padded, rf"^[0-9]{{{width}}}$"))).to_numpy(
        zero_copy_only=False
    )
    if bad.any():
        raise EvidenceError(
            f"{source}: column '{column.label}': expected a {what} of {width} digits or 'NA', "
            f"got {describe_bad(column, bad)}"
        )
    return column.coded(pc.if_else(missing, pa.scalar(None, pa.string()), padded).to_numpy(zero_copy_only=False))


def _fips_texts(column: Column, width: int, source: str, what: str) -> Coded:
    """``_fips`` of a column with texts that are not ASCII, by Python's string methods."""
    texts = column.series()
    digits = texts.str.fullmatch(r"\d+(\.0+)?").astype(bool)
    padded = texts.where(~digits, texts.str.split(".").str[0].str.zfill(width))
    missing = texts.str.upper().isin(MISSING_TEXT)
    bad = ~(missing | padded.str.fullmatch(rf"\d{{{width}}}").astype(bool))
    if bad.any():
        raise EvidenceError(
            f"{source}: column '{column.label}': expected a {what} of {width} digits or 'NA', "
            f"got {describe_bad(column, bad.to_numpy(dtype=bool))}"
        )
    return column.coded([None if gone else value for value, gone in zip(padded, missing, strict=True)])


def _product_field(column: Column | None, name: str, count: int, source: str) -> Coded:
    """A product or population field as a float: its code or number, NaN for NA, Exempt, 1111 and empty."""
    if column is None:
        return Coded(np.zeros(count, dtype=np.int32), np.full(1, np.nan))
    texts = column.series()
    if name == "total_units":
        texts = texts.map(lambda text: str(TOTAL_UNITS_BUCKETS.get(text, text)))
    upper = upper_texts(texts)
    numbers = pd.to_numeric(texts.where(~is_in(upper, MISSING_TEXT | {"EXEMPT"})), errors="coerce")
    values = np.array(numbers.to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)  # writable
    values[values == 1111] = np.nan
    if name in PRODUCT_CODES:
        bad = ~(np.isnan(values) | np.isin(values, PRODUCT_CODES[name]))
        expected = "one of " + ", ".join(str(code) for code in PRODUCT_CODES[name]) + ", 1111, 'NA' or 'Exempt'"
    else:
        bad = ~np.isnan(values) & ~(values >= 0)
        expected = "a number, 'NA' or 'Exempt'" + (" (or a bucket such as '5-24')" if name == "total_units" else "")
    bad |= np.isnan(values) & ~is_in(upper, MISSING_TEXT | {"EXEMPT", "1111"})
    if bad.any():
        raise EvidenceError(f"{source}: column '{column.label}': expected {expected}, got {describe_bad(column, bad)}")
    return column.coded(values)


AGE_BUCKETS = ("<25", "25-34", "35-44", "45-54", "55-64", "65-74", ">74")


def _age(column: Column | None, source: str, text: Callable[..., Coded]) -> Coded:
    """``applicant_age`` as its published bucket; 8888, 9999 and NA are missing; an age in years (the
    filing format reports it exact) goes into its bucket; nothing else."""
    if column is None:
        return text("applicant_age")
    years = pd.to_numeric(column.series().where(column.series().str.fullmatch(r"\d{1,3}")), errors="coerce")
    in_years = years.notna().to_numpy(dtype=bool) & ~np.isin(column.texts, ["8888", "9999"])
    allowed = set(AGE_BUCKETS) | {"8888", "9999"} | set(MISSING_TEXT)
    bad = ~np.isin(column.texts, list(allowed)) & ~in_years
    if bad.any():
        raise EvidenceError(
            f"{source}: column '{column.label}': expected one of {', '.join(AGE_BUCKETS)}, 8888, 9999 or 'NA' "
            f"(or an age in years), got {describe_bad(column, bad)}"
        )
    edges = np.array([25, 35, 45, 55, 65, 75])
    bucketed = [
        AGE_BUCKETS[int(np.searchsorted(edges, age, side="right"))] if known else None
        for age, known in zip(years.to_numpy(dtype=np.float64, na_value=np.nan), in_years, strict=True)
    ]
    spelled = canonical_texts(column.texts, missing=("8888", "9999"))
    return column.coded([bucket or value for bucket, value in zip(bucketed, spelled, strict=True)])


def _application_ids(raw: pd.DataFrame, source: str, first_row: int = 1) -> tuple[pd.Series, str, Coded | None]:
    """Ids from ``application_id`` or ``uli`` (checked: none empty, none repeated), else the row; and
    the ids as coded (None: the row)."""
    present = {normalize_name(label): label for label in raw.columns}
    name = next((name for name in ID_COLUMNS if name in present), None)
    if name is None:
        rows = pa.array(np.arange(first_row, first_row + len(raw), dtype=np.int64))
        return pc.cast(rows, pa.string()).to_pandas(), "row", None
    label = present[name]
    column = factorize_column(raw[label], str(label))
    ids = column.take_strings(list(column.texts))
    blank = column.take(np.isin(column.texts, list(MISSING_TEXT)))
    if blank.any():
        rows = np.flatnonzero(blank) + 1
        raise EvidenceError(
            f"{source}: column '{label}': expected an application id, got an empty value ({describe_rows(rows)})"
        )
    counts = np.bincount(column.codes, minlength=column.texts.size)
    if (counts > 1).any():
        repeated_rows = np.flatnonzero(counts[column.codes] > 1)
        first_codes = list(dict.fromkeys(column.codes[repeated_rows[:1000]].tolist()))
        described = ", ".join(
            f"'{column.texts[code]}' ({describe_rows(np.flatnonzero(column.codes == code) + 1)})"
            for code in first_codes[:3]
        )
        more = int((counts > 1).sum()) - min(3, len(first_codes))
        tail = f" and {more} more" if more > 0 else ""
        raise EvidenceError(f"{source}: column '{label}': duplicate application ids {described}{tail}")
    return ids, name, column.coded(list(column.texts))


def _first_reasons(reasons: dict[str, np.ndarray], count: int) -> tuple[np.ndarray, dict[str, int]]:
    """Per row: 0 when usable, else 1 + the index of its first reason; and rows per reason."""
    codes = np.zeros(count, dtype=np.int64)
    counts: dict[str, int] = {}
    for index, reason in enumerate(EXCLUSION_REASONS, start=1):
        mask = reasons[reason] & (codes == 0)
        codes[mask] = index
        counts[reason] = int(mask.sum())
    return codes, counts
