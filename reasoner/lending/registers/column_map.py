"""A bank's own register through the ``[columns]`` section of ``audit.toml`` (``config.ColumnMap``).

``mapped_register(raw, column_map, source)`` turns a frame read with the register's own column
names into the published fields ``hmda.clean_hmda`` reads: each mapped column renamed to its
field, its values translated by ``[columns.values.FIELD]`` (a decision value not listed there is
an error naming the column and rows; other unlisted values are kept as they are, so a register
already using the published values or codes needs no table), income divided into thousands
(``income_unit``). Product, purpose and lien default to one code each when not mapped: the
register is then one product, as an examiner's focal point is (audit auto and card lending as
separate files). A register that reports no race, ethnicity or sex (``[columns]`` maps a surname or
ZIP code for the race and ethnicity proxy instead) reads as 'Race Not Available', 'Ethnicity Not
Available' and 'Sex Not Available'. Unsecured lending (no ``ltv`` mapped) reads a loan-to-value of 0.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from reasoner.errors import EvidenceError
from reasoner.lending.config import COLUMN_FIELDS, ColumnMap
from reasoner.lending.registers.values import describe_bad, factorize_column

__all__ = ["mapped_columns", "mapped_register", "require_mapped_columns"]

ONE_PRODUCT = {"loan_type": "1", "loan_purpose": "1", "lien_status": "1"}
UNSECURED = {"combined_loan_to_value_ratio": "0"}  # no ltv mapped: unsecured lending (cards, personal loans)
NOT_REPORTED = {
    "derived_race": "Race Not Available",
    "derived_ethnicity": "Ethnicity Not Available",
    "derived_sex": "Sex Not Available",
}


def mapped_columns(column_map: ColumnMap) -> tuple[str, ...]:
    """The register's own names of the mapped columns (what to read)."""
    return tuple(name for _, name, _ in column_map.columns)


def require_mapped_columns(names: list[str], column_map: ColumnMap, source: str) -> None:
    """An ``EvidenceError`` naming each mapped column the register lacks, by its mapped name."""
    present = set(names)
    mapped = (*column_map.columns, *column_map.proxy_columns)
    missing = [(field, name, where) for field, name, where in mapped if name not in present]
    if missing:
        listed = ", ".join(f"'{name}' (mapped to {field} in {where})" for field, name, where in missing)
        plural = "s" if len(missing) > 1 else ""
        raise EvidenceError(f"{source}: missing column{plural} {listed}")


def mapped_register(raw: pd.DataFrame, column_map: ColumnMap, source: str) -> pd.DataFrame:
    """``raw`` (the register's own columns, as text) as the published fields ``clean_hmda`` reads."""
    values = {field: dict(pairs) for field, pairs in column_map.values}
    out: dict[str, pd.Series] = {}
    for field, name, where in column_map.columns:
        column = raw[name]
        if field in values:
            column = _translated(column, values[field], name, field, where, source, strict=field == "decision")
        if field == "income":
            column = _income(column, column_map.income_divisor)
        out[COLUMN_FIELDS[field]] = column
    for target, code in (ONE_PRODUCT | NOT_REPORTED | UNSECURED).items():
        out.setdefault(target, pd.Series(code, index=raw.index, dtype="str"))
    return pd.DataFrame(out, index=raw.index)


def _translated(
    column: pd.Series, table: dict[str, str], name: str, field: str, where: str, source: str, *, strict: bool
) -> pd.Series:
    values = factorize_column(column, name)
    known = np.array([text in table for text in values.texts], dtype=bool)
    if strict and not known.all():
        listed = ", ".join(f"'{value}'" for value in list(table)[:6])
        raise EvidenceError(
            f"{source}: column '{name}': expected a {field} value listed in [columns.values.{field}] ({listed}; "
            f"{where}), got {describe_bad(values, ~known)}"
        )
    return values.take_strings([table.get(text, text) for text in values.texts])


def _income(column: pd.Series, divisor: float) -> pd.Series:
    """Income in thousands as text (numbers divided; 'NA' and other text left for the cleaner)."""
    if divisor == 1.0:
        return column
    numbers = pd.to_numeric(column, errors="coerce")
    scaled = (numbers / divisor).map(lambda value: repr(float(value)))
    return scaled.where(numbers.notna(), column).astype("str")
