"""Write one register in every format the audit reads (for tests): the formats' field lists come
from ``reasoner.lending.registers.formats`` (written from the FFIEC Filing Instructions Guide and the
Modified LAR field order), the values from a public-LAR frame of text columns.

A public value that a format spells otherwise is converted the way a filer would have reported
it: ages in years (the bucket's middle), debt-to-income as the number the public bucket stands
for, units as a number.
"""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import pandas as pd

from reasoner.lending.registers.fields import PUBLISHED_COLUMNS, normalize_name
from reasoner.lending.registers.formats import FILING_LAR_FIELDS, MODIFIED_LAR_FIELDS
from reasoner.lending.registers.groups import derive_groups

FORMATS = ("parquet", "csv", "csv.gz", "zip", "snapshot", "modified", "filing")
AGE_YEARS = {"<25": "22", "25-34": "30", "35-44": "40", "45-54": "50", "55-64": "60", "65-74": "70", ">74": "80"}
DTI_NUMBERS = {"<20%": "10", "20%-<30%": "25", "30%-<36%": "33", "50%-60%": "55", ">60%": "70"}
UNITS = {"5-24": "5", "25-49": "25", "50-99": "50", "100-149": "100", ">149": "150"}
# Public fields the filing format does not carry (census data, the derived fields): left NA in the
# register every format is written from, so that each holds the same information.
NOT_FILED = ("derived_msa-md", "tract_minority_population_percent", "tract_to_msa_income_percentage")


def consistent(public: pd.DataFrame) -> pd.DataFrame:
    """``public`` (text columns, Data Browser names) with its derived groups recomputed from the
    applicant codes and the fields the filing format lacks set to NA."""
    frame = public.astype(str).reset_index(drop=True)
    derived = derive_groups(frame, "register")
    assert derived is not None
    for name in derived.columns:
        frame[name] = derived[name]
    for name in NOT_FILED:
        frame[name] = "NA"
    return frame


def write(public: pd.DataFrame, path: Path, kind: str, *, institution: str = "Ficus Bank") -> Path:
    """``public`` written to ``path`` as ``kind`` (one of ``FORMATS``); returns the path."""
    if kind == "parquet":
        public.to_parquet(path, index=False)
    elif kind == "csv":
        public.to_csv(path, index=False)
    elif kind == "csv.gz":
        with gzip.open(path, "wt", encoding="utf-8", newline="") as handle:
            public.to_csv(handle, index=False)
    elif kind == "zip":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("lar.csv", public.to_csv(index=False))
    elif kind == "snapshot":
        _write_lines(path, _fields(public, PUBLISHED_COLUMNS))
    elif kind == "modified":
        _write_lines(path, _fields(public, MODIFIED_LAR_FIELDS))
    elif kind == "filing":
        _write_lines(path, _filing(public), first=_transmittal(public, institution))
    else:
        raise ValueError(kind)
    return path


def _write_lines(path: Path, rows: pd.DataFrame, first: str | None = None) -> None:
    lines = ([first] if first else []) + ["|".join(row) for row in rows.itertuples(index=False)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _fields(public: pd.DataFrame, names: tuple[str, ...]) -> pd.DataFrame:
    by_name = {normalize_name(column): column for column in public.columns}
    return pd.DataFrame({name: public[by_name[normalize_name(name)]] for name in names})


def _transmittal(public: pd.DataFrame, institution: str) -> str:
    lei = public["lei"].iloc[0]
    year = public["activity_year"].iloc[0]
    fields = ["1", institution, year, "4", "Mary Smith", "555-555-5555", "mary.smith@ficus.example",
              "1 Main St", "Springfield", "IL", "62701", "9", str(len(public)), "99-9999999", lei]
    return "|".join(fields)


def _filing(public: pd.DataFrame) -> pd.DataFrame:
    by_name = {normalize_name(column): column for column in public.columns}
    rows = len(public)
    filler = {
        "record_identifier": "2",
        "uli": "",
        "application_date": f"{public['activity_year'].iloc[0]}0115",
        "action_taken_date": f"{public['activity_year'].iloc[0]}0301",
        "street_address": "NA",
        "city": "NA",
        "zip_code": "NA",
        "applicant_credit_score": "700",
        "co-applicant_credit_score": "8888",
        "nmlsr_identifier": "NA",
    }
    columns = {}
    for name in FILING_LAR_FIELDS:
        key = normalize_name(name)
        if key in by_name:
            values = public[by_name[key]].astype(str)
        else:
            values = pd.Series([filler.get(name, "")] * rows, dtype=str)
        columns[name] = values.reset_index(drop=True)
    frame = pd.DataFrame(columns)
    frame["uli"] = [f"{lei}{index:08d}" for index, lei in enumerate(frame["lei"], start=1)]
    frame["applicant_age"] = frame["applicant_age"].map(lambda age: AGE_YEARS.get(age, age))
    frame["co-applicant_age"] = frame["co-applicant_age"].map(lambda age: AGE_YEARS.get(age, age))
    frame["debt_to_income_ratio"] = frame["debt_to_income_ratio"].map(lambda dti: DTI_NUMBERS.get(dti, dti))
    frame["total_units"] = frame["total_units"].map(lambda units: UNITS.get(units, units))
    return frame
