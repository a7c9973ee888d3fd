"""The audit run: partitions (lenders) through the engine, on local workers or a cluster, scored into
findings with their explanations.

The names below are imported on first use (``reasoner.lazy``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reasoner.lazy import lazy_names

if TYPE_CHECKING:
    from reasoner.lending.audit.explanations import Explanations
    from reasoner.lending.audit.progress import Progress, StageTiming, timing_table
    from reasoner.lending.audit.run import PARTITION_ROWS, Audit, AuditTables, audit, builtin_rules, default_workers
    from reasoner.lending.audit.score import Findings

__all__ = [
    "Audit",
    "AuditTables",
    "Explanations",
    "Findings",
    "PARTITION_ROWS",
    "Progress",
    "StageTiming",
    "audit",
    "builtin_rules",
    "default_workers",
    "timing_table",
]

__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "Explanations": "explanations",
        "Progress": "progress",
        "StageTiming": "progress",
        "timing_table": "progress",
        "Audit": "run",
        "AuditTables": "run",
        "PARTITION_ROWS": "run",
        "audit": "run",
        "builtin_rules": "run",
        "default_workers": "run",
        "Findings": "score",
    },
)
