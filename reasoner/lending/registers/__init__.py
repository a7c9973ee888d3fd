"""Reading registers: the HMDA formats told apart by content, the published fields and their values,
derived groups, a bank's own column map, and the cleaned frame the audit works on.

The names below are imported on first use (``reasoner.lazy``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reasoner.lazy import lazy_names

if TYPE_CHECKING:
    from reasoner.lending.registers.fields import PUBLISHED_COLUMNS
    from reasoner.lending.registers.files import read_hmda, register_format
    from reasoner.lending.registers.groups import derive_groups
    from reasoner.lending.registers.hmda import (
        CLEAN_COLUMNS,
        EXCLUSION_REASONS,
        INPUT_COLUMNS,
        CleanedHMDA,
        clean_hmda,
        read_clean,
    )
    from reasoner.lending.registers.values import describe_rows

__all__ = [
    "CLEAN_COLUMNS",
    "CleanedHMDA",
    "EXCLUSION_REASONS",
    "INPUT_COLUMNS",
    "PUBLISHED_COLUMNS",
    "clean_hmda",
    "derive_groups",
    "describe_rows",
    "read_clean",
    "read_hmda",
    "register_format",
]

__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "PUBLISHED_COLUMNS": "fields",
        "read_hmda": "files",
        "register_format": "files",
        "derive_groups": "groups",
        "CLEAN_COLUMNS": "hmda",
        "CleanedHMDA": "hmda",
        "EXCLUSION_REASONS": "hmda",
        "INPUT_COLUMNS": "hmda",
        "clean_hmda": "hmda",
        "read_clean": "hmda",
        "describe_rows": "values",
    },
)
