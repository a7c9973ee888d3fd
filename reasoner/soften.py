"""``--hard-weight W``: hard formulas as soft ones of weight ``W`` (Tuffy's treatment).

An inconsistent program then still gets its best world, and the run reports how many hard
ground formulas that world breaks. Each hard ground formula becomes a soft one of weight
``W`` before encoding, so it is encoded exactly like any soft formula (one soft clause, or an
auxiliary variable with one soft unit) and a broken one costs ``W`` once, the evidence's
included. Without ``--hard-weight`` nothing changes: a contradiction is exit code 3 with a
minimal core.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import numpy as np

from reasoner.encode import Encoding
from reasoner.errors import UsageError
from reasoner.ground import FALSE, GroundNetwork

__all__ = ["broken_hard_formulas", "soften"]


def soften(network: GroundNetwork, weight: Decimal) -> tuple[GroundNetwork, frozenset[int]]:
    """The network with every hard formula soft with ``weight`` (positive), and the indices
    of the blocks that were hard."""
    if not weight.is_finite() or weight <= 0:
        raise UsageError(f"--hard-weight must be a positive number, got {weight}")
    hard = frozenset(index for index, block in enumerate(network.blocks) if block.hard)
    blocks = tuple(
        dataclasses.replace(block, weight=weight) if index in hard else block
        for index, block in enumerate(network.blocks)
    )
    return dataclasses.replace(network, blocks=blocks), hard


def broken_hard_formulas(
    network: GroundNetwork, encoding: Encoding, hard_blocks: frozenset[int], values: np.ndarray
) -> int:
    """Ground formulas of ``hard_blocks`` (soft now) that the world ``values`` breaks: those the
    evidence breaks, and those whose soft clause ``values`` leaves unsatisfied."""
    broken = sum(int((network.blocks[index].root_state == FALSE).sum()) for index in hard_blocks)
    literals = encoding.literals
    if not len(literals) or not hard_blocks:
        return broken
    true = np.where(literals > 0, values[np.abs(literals)], ~values[np.abs(literals)])
    satisfied = np.logical_or.reduceat(true, encoding.offsets[:-1])
    soft = encoding.weights > 0
    was_hard = np.isin(encoding.formula_block[encoding.formula_of], np.fromiter(hard_blocks, dtype=np.int64))
    return broken + int((soft & was_hard & ~satisfied).sum())
