"""Constants: canonical values, their printed form and their order.

A constant is an ``int``, a ``float`` or a ``str``. ``Anna`` and ``"Anna"`` are the
same constant; a float with an integral value is the integer (``1.0`` is ``1``).
Constants print bare when they are a name (``Anna``, ``person1``) and quoted
otherwise (``"a b"``, ``"01001"``); numbers print as numbers. Numbers sort before
strings, numbers by value, strings by code point.
"""

from __future__ import annotations

import json
import math
import re

__all__ = ["GROUND_ATOM", "ConstantValue", "canonical", "display", "order_key"]

# A ground atom as evidence files, queries, ``--explain`` and the audit's proofs write it:
# group 1 a negation ('!' or empty), group 2 the predicate, group 3 the argument text
# (split by ``evidence.split_args``).
GROUND_ATOM = re.compile(r"\s*(!?)\s*([A-Za-z_][A-Za-z0-9_]*)\s*\((.*)\)\s*$")

ConstantValue = int | float | str

_BARE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def canonical(value: object) -> ConstantValue:
    """The canonical constant for a Python value; raises ValueError for NaN/inf/None."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise ValueError(f"{value!r} is not a usable constant")
        return int(value) if value.is_integer() and -(2**63) <= value < 2**63 else value
    if isinstance(value, str):
        return value
    if hasattr(value, "item"):  # numpy scalars
        return canonical(value.item())
    if value is None:
        raise ValueError("a missing value is not a constant")
    return str(value)


def display(value: ConstantValue) -> str:
    """How a constant is printed: bare name, number, or JSON-quoted string."""
    if isinstance(value, str):
        return value if _BARE.match(value) else json.dumps(value, ensure_ascii=False)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def order_key(value: ConstantValue) -> tuple[int, float, str]:
    """Sort key: numbers by value first, then strings."""
    if isinstance(value, str):
        return (1, 0.0, value)
    return (0, float(value), "" if isinstance(value, int) else "f")
