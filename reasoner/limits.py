"""Every documented limit of reasoner, in one place.

A limit protects the process from input that would otherwise exhaust memory or
time (a 100 MB line, formulas nested thousands deep, a formula with billions of
groundings). Reaching one is never a crash: the rule-file limits are positioned
``RuleError`` diagnostics, the others ``LimitError`` s whose message says what to
do. The README's "Errors and limits" section lists them with the same values.

The limits a run may change are the fields of ``Limits``, a frozen value passed to
``parse``, ``check``, ``ground`` and ``run``; the others are fixed constants. A memory
limit is watched by ``MemoryWatchdog``, a context manager that ``run`` enters.
"""

from __future__ import annotations

import os
import re
import resource
import signal
import sys
import threading
from dataclasses import dataclass, fields
from types import FrameType, TracebackType
from typing import Any

from reasoner.errors import ArgumentError, LimitError, Option

__all__ = [
    "DEFAULT_MAX_GROUNDINGS",
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
    "Limits",
    "MemoryWatchdog",
    "configure",
    "current",
    "memory_limit_reached",
    "watched_memory_limit",
    "parse_size",
    "peak_memory",
    "raise_if_memory_limit_reached",
    "resident_bytes",
]

# -- rule files (positioned diagnostics; defaults of ``Limits``) ----------------
# Parsing takes about 15 s and 220 MB per MB of rules (a 2.3 MB program: 34 s, 520 MB peak).
MAX_RULE_FILE_BYTES = 8_000_000  # one rule file (pracmln's largest example is 2.4 MB)
MAX_LINE_LENGTH = 1_000_000  # characters on one line (a domain of ~100,000 constants)
MAX_STATEMENT_TOKENS = 1_000_000  # tokens in one statement (a domain of 10,000 constants is 20,000)
MAX_NESTING = 200  # parentheses, negations, quantifiers and implications inside one another (the stack)
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

MIN_MEMORY_LIMIT = 64 * 2**20  # the libraries alone need this much
GROUNDING_ROW_BYTES = 4 * 64  # memory budget per grounding row (see ``Limits.grounding_budget``)


@dataclass(frozen=True, slots=True)
class Limits:
    """The limits one call may change; every field is at least 1.

    ``max_rule_bytes``, ``max_line_length``, ``max_statement_tokens``, ``max_nesting`` and
    ``max_range`` bound a rule file (positioned errors); ``max_groundings`` the groundings of
    one formula the evidence leaves undecided (scaled down beyond 2 variables);
    ``memory_limit`` (bytes, or ``None``) the resident memory of the process while ``run``
    works: past it the run stops with a ``LimitError``.
    """

    max_rule_bytes: int = MAX_RULE_FILE_BYTES
    max_line_length: int = MAX_LINE_LENGTH
    max_statement_tokens: int = MAX_STATEMENT_TOKENS
    max_nesting: int = MAX_NESTING
    max_range: int = MAX_RANGE
    max_groundings: int = DEFAULT_MAX_GROUNDINGS
    memory_limit: int | None = None

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if value is None and item.name == "memory_limit":
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                raise ArgumentError(Option(item.name), f" must be an integer, not {type(value).__name__}")
            if value < 1:
                raise ArgumentError(Option(item.name), " must be at least 1")
        if self.memory_limit is not None and self.memory_limit < MIN_MEMORY_LIMIT:
            raise ArgumentError(Option("memory_limit"), " must be at least 64 MiB (the libraries need it)")

    @property
    def grounding_budget(self) -> int:
        """``max_groundings``, lowered so that the groundings of one formula fit in a quarter of
        ``memory_limit`` (a row costs about 64 bytes several times over: SQL result, numpy copy,
        leaf states)."""
        if self.memory_limit is None:
            return self.max_groundings
        return min(self.max_groundings, max(1, self.memory_limit // GROUNDING_ROW_BYTES))

    def replaced(self, **changes: Any) -> Limits:
        """A copy with ``changes`` (field names as keywords), validated."""
        unknown = sorted(set(changes) - {item.name for item in fields(self)})
        if unknown:
            raise ArgumentError(f"unknown limit '{unknown[0]}'; the limits are {', '.join(limit_names())}")
        values = {item.name: getattr(self, item.name) for item in fields(self)}
        values.update(changes)
        return Limits(**values)


def limit_names() -> tuple[str, ...]:
    """The names of the limits a call may change, in the order of ``Limits``."""
    return tuple(item.name for item in fields(Limits))


_current = Limits()
_process_watchdog: MemoryWatchdog | None = None


def current() -> Limits:
    """The limits this process's ``configure`` set: for applications whose run spans worker
    processes (the lending audit), which pass them on to the engine's calls."""
    return _current


def configure(*, max_groundings: int | None = None, memory_limit: int | None = None, **others: int) -> Limits:
    """Set this process's limits (``current``), for a run that spans worker processes; the
    engine's functions take theirs as an argument. ``memory_limit`` starts this process's
    watchdog (stopping the one a previous call started); call it from the main thread."""
    global _current, _process_watchdog
    changes: dict[str, int] = dict(others)
    if max_groundings is not None:
        changes["max_groundings"] = max_groundings
    if memory_limit is not None:
        changes["memory_limit"] = memory_limit
    limits = _current.replaced(**changes)
    if memory_limit is not None:
        limits = limits.replaced(max_groundings=limits.grounding_budget)
        if _process_watchdog is not None:
            _process_watchdog.stop()
        _process_watchdog = MemoryWatchdog(memory_limit)
        _process_watchdog.start()
    _current = limits
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
_watching: list[MemoryWatchdog] = []  # the watchdogs running in this process


def watched_memory_limit() -> int | None:
    """The lowest memory limit a running watchdog of this process watches, if any."""
    return min((watchdog.limit for watchdog in _watching), default=None)


def memory_limit_reached() -> LimitError | None:
    """The error of a memory limit reached in this process, if one was: a library interrupted
    by the watchdog's signal (DuckDB: 'Query interrupted') raises its own error instead."""
    return _reached


def raise_if_memory_limit_reached() -> None:
    """Re-raise the memory limit's error if the watchdog fired: for handlers of a library's own
    errors, which the watchdog's signal may have caused."""
    if _reached is not None:
        raise _reached


def memory_limit_error(limit: int | None) -> LimitError:
    """The one out-of-memory message: the budget reached, or the machine's memory when none was set."""
    if limit is None:
        return LimitError(
            "out of memory (no ",
            Option("memory_limit"),
            " was set: the machine's memory ran out); nothing was written. Give more memory, or set ",
            Option("memory_limit"),
            " and lower ",
            Option("max_groundings"),
            " to be refused earlier (README: Reliability)",
        )
    return LimitError(
        f"the memory limit ({limit / 2**30:.2f} GiB, ",
        Option("memory_limit"),
        ") was reached; nothing was written. Give more memory, or lower ",
        Option("max_groundings"),
        " to be refused earlier (README: Reliability)",
    )


class MemoryWatchdog:
    """Watches the resident memory of this process while it is entered (a context manager).

    A thread reads the resident memory every ``WATCH_SECONDS``; past ``limit`` bytes it
    signals the main thread (SIGUSR1), which raises a ``LimitError`` at its next Python
    instruction. Leaving the context stops the thread and restores the previous handler.
    Entered from another thread, it cannot interrupt: ``check()`` raises the error once the
    limit was passed. The address space is not capped (``RLIMIT_AS``): thread pools that
    cannot map their stacks hang instead of failing.
    """

    def __init__(self, limit: int, *, interval: float = WATCH_SECONDS) -> None:
        self.limit = limit
        self.interval = interval
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        self._previous: Any = None
        self._signals = False
        self.reached = False

    def __enter__(self) -> MemoryWatchdog:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
        if isinstance(error, Exception) and not isinstance(error, LimitError) and self.reached:
            # A library call the watchdog's signal interrupted raised its own error (DuckDB: 'Query
            # interrupted', pyarrow: 'Interrupted'): the limit is what happened.
            raise self._error() from error

    def start(self) -> None:
        """Start watching (once)."""
        if self._thread is not None:
            return
        self._signals = threading.current_thread() is threading.main_thread()
        if self._signals:
            self._previous = signal.signal(signal.SIGUSR1, self._interrupt)
        pid = os.getpid()

        def watch() -> None:
            while not self._stopped.wait(self.interval):
                if resident_bytes() > self.limit:
                    self.reached = True
                    if self._signals:
                        os.kill(pid, signal.SIGUSR1)
                    return

        self._thread = threading.Thread(target=watch, name="reasoner-memory-limit", daemon=True)
        self._thread.start()
        _watching.append(self)

    def stop(self) -> None:
        """Stop the thread and give the signal back to its previous handler."""
        self._stopped.set()
        if self in _watching:
            _watching.remove(self)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        if self._signals:
            signal.signal(signal.SIGUSR1, self._previous)
            self._signals = False

    def check(self) -> None:
        """Raise the limit's error if the limit was passed (for watchdogs that cannot signal), or
        is passed now (a run shorter than the watching interval is checked once at its end)."""
        if self.reached or resident_bytes() > self.limit:
            self.reached = True
            raise self._error()

    def _error(self) -> LimitError:
        global _reached
        _reached = memory_limit_error(self.limit)
        return _reached

    def _interrupt(self, signum: int, frame: FrameType | None) -> None:
        raise self._error()


_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*\Z", re.IGNORECASE)
_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


def parse_size(text: str, option: str = "memory_limit") -> int:
    """Bytes from '4G', '512M', '1.5g', '2GiB' or a plain number of bytes; ``option`` names
    the argument in the error."""
    match = _SIZE.match(text)
    if match is None:
        raise ArgumentError(Option(option), f" {text}: expected a size such as 4G, 512M or 2000000000")
    size = int(float(match.group(1)) * _UNITS[match.group(2).lower()])
    if size < MIN_MEMORY_LIMIT:
        raise ArgumentError(Option(option), f" {text}: at least 64M is needed to load the libraries")
    return size
