"""Work packed for worker processes: items in order, cut into batches of about a size."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

__all__ = ["in_batches"]

T = TypeVar("T")


def in_batches(items: Sequence[T], size: Callable[[T], int], limit: int) -> list[list[T]]:
    """``items`` in order, a new batch started once the current one holds ``limit`` or more
    (``size`` of each item summed); concatenated, the batches are ``items``."""
    batches: list[list[T]] = [[]]
    held = 0
    for item in items:
        if held >= limit and batches[-1]:
            batches.append([])
            held = 0
        batches[-1].append(item)
        held += size(item)
    return batches if items else []
