"""Every documented limit of reasoner, in one place.

A limit protects the process from input that would otherwise exhaust memory or
time (a 10 MB line, formulas nested thousands deep, a formula with billions of
groundings). Reaching one is never a crash: the rule-file limits are positioned
``RuleError`` diagnostics, the others ``LimitError`` s whose message says what to
do. The README's "Reliability" section lists them with the same values.

Two limits can be changed per run from the command line: ``--max-groundings``
(``max_groundings``) and ``--memory-limit`` (``memory_limit``, a watchdog on the
resident memory), through ``configure``; the others are fixed.
"""

from __future__ import annotations

import os
import re
import resource
import signal
import sys
import threading
import time
from dataclasses import dataclass, replace

from reasoner.errors import LimitError, UsageError

__all__ = [
    "memory_limit_reached",
    "raise_if_memory_limit_reached",
    "MAX_CLAUSE_FILTERS",
    "MAX_DERIVED_ROWS",
    "MAX_EXPANSION",
    "MAX_FIELD_LENGTH",
    "MAX_FORMULA_LEAVES",
    "MAX_KEY",
    "MAX_LINE_LENGTH",
    "MAX_NESTING",
    "MAX_PRUNING_CLAUSES",
    "MAX_RANGE",
    "MAX_RULE_FILE_BYTES",
    "MAX_STATEMENT_TOKENS",
    "MAX_WEIGHT",
    "MAX_WEIGHT_PLACES",
    "RunLimits",
    "configure",
    "current",
    "parse_size",
    "peak_memory",
    "resident_bytes",
]

# -- rule files (positioned diagnostics) ------------------------------------
MAX_RULE_FILE_BYTES = 2_000_000  # one rule file; ~100,000 short statements parse in about a minute
MAX_LINE_LENGTH = 100_000  # characters on one line
MAX_STATEMENT_TOKENS = 20_000  # tokens in one statement (a formula of ~5,000 atoms)
MAX_NESTING = 200  # parentheses, negations, quantifiers and implications inside one another
MAX_RANGE = 1_000_000  # constants in one '{A, ..., B}' range

# -- facts tables (EvidenceError) ---------------------------------------------
MAX_FIELD_LENGTH = 1_000  # characters of one value of an HMDA register (the longest field has 45)

# -- grounding and encoding (LimitError) ------------------------------------
DEFAULT_MAX_GROUNDINGS = 20_000_000  # groundings of one formula (up to 2 variables; fewer beyond) left undecided
MAX_EXPANSION = 100_000  # cases a quantifier expands to
MAX_FORMULA_LEAVES = 1_000_000  # literals of one formula once '<=>' and quantifiers are rewritten
MAX_PRUNING_CLAUSES = 64  # CNF clauses used to prune groundings (beyond it: no pruning, not an error)
MAX_CLAUSE_FILTERS = 32  # literals of a clause checked in SQL beyond its joins
MAX_DERIVED_ROWS = 50_000_000  # facts one derived rule may produce
MAX_KEY = 2**62  # atoms of one predicate the engine can number
MAX_WEIGHT = 2**62  # a weight scaled to an integer
MAX_WEIGHT_PLACES = 12  # decimal places of a weight


@dataclass(frozen=True, slots=True)
class RunLimits:
    """The limits a run may change: groundings per formula and the address-space budget (bytes)."""

    max_groundings: int = DEFAULT_MAX_GROUNDINGS
    memory_limit: int | None = None


_current = RunLimits()


def current() -> RunLimits:
    """The limits in force in this process."""
    return _current


def configure(*, max_groundings: int | None = None, memory_limit: int | None = None) -> RunLimits:
    """Change the per-run limits of this process (call it from the main thread).

    ``memory_limit`` (bytes) starts a watchdog thread that reads the resident memory of the
    process every ``WATCH_SECONDS``; past the limit it signals the main thread, which raises
    a ``LimitError`` at its next Python instruction (nothing is written: outputs are moved into
    place only at the end). The grounding budget shrinks with the limit and DuckDB gets half of
    it, so that a formula whose groundings cannot fit is refused before they are computed. The
    address space is not capped (``RLIMIT_AS``): thread pools that cannot map their stacks hang
    instead of failing.
    """
    global _current
    changes: dict[str, int] = {}
    if max_groundings is not None:
        if max_groundings < 1:
            raise UsageError("--max-groundings must be at least 1")
        changes["max_groundings"] = max_groundings
    if memory_limit is not None:
        changes["memory_limit"] = memory_limit
        # A grounding row costs about 8 bytes per variable several times over (SQL result,
        # numpy copy, leaf states); a quarter of the budget at ~64 bytes a row is conservative.
        budget = max(1, memory_limit // 4 // 64)
        changes["max_groundings"] = min(changes.get("max_groundings", _current.max_groundings), budget)
        _watch(memory_limit)
    _current = replace(_current, **changes)
    return _current


WATCH_SECONDS = 0.1


def resident_bytes() -> int:
    """Resident memory of this process now (Linux), else its peak so far."""
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            return int(handle.read().split()[1]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        return peak_memory()


def peak_memory() -> int:
    """Peak resident memory of this process so far, in bytes."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # bytes on macOS, KiB on Linux


_reached: LimitError | None = None


def memory_limit_reached() -> LimitError | None:
    """The error of a memory limit reached in this process, if one was: a library interrupted
    by the watchdog's signal (DuckDB: 'Query interrupted') raises its own error instead."""
    return _reached


def raise_if_memory_limit_reached() -> None:
    """Re-raise the memory limit's error if the watchdog fired: for handlers of a library's own
    errors, which the watchdog's signal may have caused."""
    if _reached is not None:
        raise _reached


def _watch(limit: int) -> None:
    def reached(signum: int, frame: object) -> None:
        global _reached
        _reached = LimitError(
            f"the memory limit ({limit / 2**30:.2f} GiB, --memory-limit) was reached; nothing was written. "
            "Give more memory, or lower --max-groundings to be refused earlier (README: Reliability)"
        )
        raise _reached

    signal.signal(signal.SIGUSR1, reached)
    pid = os.getpid()

    def watch() -> None:
        while resident_bytes() <= limit:
            time.sleep(WATCH_SECONDS)
        os.kill(pid, signal.SIGUSR1)

    threading.Thread(target=watch, name="reasoner-memory-limit", daemon=True).start()


_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*\Z", re.IGNORECASE)
_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def parse_size(text: str, option: str = "--memory-limit") -> int:
    """Bytes from '4G', '512M', '1.5g', '2GiB' or a plain number of bytes."""
    match = _SIZE.match(text)
    if match is None:
        raise UsageError(f"{option} {text}: expected a size such as 4G, 512M or 2000000000")
    size = int(float(match.group(1)) * _UNITS[match.group(2).lower()])
    if size < 64 * 2**20:
        raise UsageError(f"{option} {text}: at least 64M is needed to load the libraries")
    return size
