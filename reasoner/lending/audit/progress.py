"""Progress of a long audit on stderr: one tqdm bar per stage, with counts and rates.

``Progress(enabled)`` hands out bars (``bar(description, total, unit)``) and notes; when it is
disabled (``--quiet``, or stderr is not a terminal) every bar is silent and nothing is printed.
``timing_table(rows)`` renders the final table of stages, seconds, counts and rates.

tqdm is the progress bar users of data tools know (pandas, Hugging Face, pip); it draws on a
terminal, keeps one line per bar and computes rates, so the audit does not hand-write any of it.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

from tqdm import tqdm

__all__ = ["Progress", "StageTiming", "timing_table"]

MIN_RATE_SECONDS = 0.05  # shorter stages get no rate (it would be noise)


@dataclass(frozen=True, slots=True)
class StageTiming:
    """One line of the timing table: a stage, its seconds and how much it did."""

    stage: str
    seconds: float
    count: int = 0
    unit: str = ""


class Progress:
    """Bars and notes on ``stream`` (stderr), or nothing at all when not ``enabled``."""

    def __init__(self, enabled: bool, stream: TextIO | None = None) -> None:
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr

    @classmethod
    def for_terminal(cls, quiet: bool) -> Progress:
        """Enabled when not ``quiet`` and stderr is a terminal."""
        return cls(not quiet and sys.stderr.isatty())

    def bar(self, description: str, total: int | None, unit: str) -> tqdm:  # type: ignore[type-arg]
        return tqdm(
            total=total,
            desc=f"reason: {description}",
            unit=f" {unit}",
            unit_scale=True,
            dynamic_ncols=True,
            leave=True,
            file=self.stream,
            disable=not self.enabled,
        )

    def note(self, message: str) -> None:
        if self.enabled:
            print(f"reason: {message}", file=self.stream)


def timing_table(rows: Sequence[StageTiming]) -> str:
    """Stages as a plain-text table: seconds, count and rate per second."""
    header = ("stage", "seconds", "count", "per second")
    body = [
        (
            row.stage,
            f"{row.seconds:.1f}",
            f"{row.count:,} {row.unit}".strip() if row.count else "",
            f"{row.count / row.seconds:,.0f}" if row.count and row.seconds >= MIN_RATE_SECONDS else "",
        )
        for row in rows
    ]
    widths = [max(len(line[column]) for line in (header, *body)) for column in range(len(header))]
    lines = [
        "  ".join(
            cell.ljust(width) if column == 0 else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(line, widths, strict=True))
        )
        for line in (header, *body)
    ]
    return "\n".join(lines)
