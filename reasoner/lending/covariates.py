"""What a model controls for (``Covariates``), set in ``audit.toml`` and read by the statistics.

Kept apart from ``evidence.statistics`` so that reading the configuration needs no data library.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from reasoner.errors import UsageError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["MAX_LEVELS", "MISSING_LEVEL", "Covariates", "as_covariates", "category_levels", "level_text"]

MAX_LEVELS = 64  # values a categorical covariate may take (one indicator each)


@dataclass(frozen=True, slots=True)
class Covariates:
    """What a model controls for: ``numeric`` columns (dollar amounts as logarithms), ``bands``
    of numeric columns (one indicator per interval between the cut points, so underwriting
    thresholds such as DTI 43% or CLTV 80% can shift the odds; the lowest band is the base),
    and ``categorical`` columns (one indicator per value, a missing value a level of its own;
    at most ``MAX_LEVELS`` values)."""

    numeric: tuple[str, ...] = ()
    categorical: tuple[str, ...] = ()
    bands: tuple[tuple[str, tuple[float, ...]], ...] = ()
    levels: tuple[tuple[str, tuple[str, ...]], ...] = ()  # per categorical column, its values register-wide

    def with_levels(self, frame: pd.DataFrame) -> Covariates:
        """The same model with the values of each categorical covariate taken from ``frame`` (the
        whole register), so that every partition builds the same indicator columns."""
        return Covariates(
            self.numeric,
            self.categorical,
            self.bands,
            tuple((name, category_levels(frame[name])) for name in self.categorical),
        )

    @property
    def columns(self) -> tuple[str, ...]:
        """Every input column the model reads."""
        return tuple(dict.fromkeys((*self.numeric, *(name for name, _ in self.bands), *self.categorical)))

    def phrases(self) -> tuple[str, ...]:
        """The controls in words: ('income', 'dti bands (cut at 36, 43, 50)', 'loan_type (categories)')."""
        parts = list(self.numeric)
        parts += [f"{name} bands (cut at {', '.join(f'{edge:g}' for edge in edges)})" for name, edges in self.bands]
        parts += [f"{name} (categories)" for name in self.categorical]
        return tuple(parts)


def as_covariates(covariates: Sequence[str] | Covariates) -> Covariates:
    """A plain list of names means numeric covariates."""
    return covariates if isinstance(covariates, Covariates) else Covariates(numeric=tuple(covariates))


MISSING_LEVEL = "\x00missing"


def category_levels(values: pd.Series) -> tuple[str, ...]:
    """The distinct values of a categorical covariate as text, sorted; missing is a value."""
    uniques = values.astype(object).where(values.notna(), None).unique()
    levels = sorted({MISSING_LEVEL if value is None else level_text(value) for value in uniques})
    if len(levels) > MAX_LEVELS:
        raise UsageError(
            f"categorical covariate '{values.name}' has more than {MAX_LEVELS} values ({len(levels)}): "
            "give it bands instead, or map its values to fewer categories"
        )
    return tuple(levels)


def level_text(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # a code read as a float (1.0) is the code (1)
    return str(value)
