"""reasoner: exact MAP inference for Markov logic, and a fair-lending audit on top.

The engine's public API (the lending audit and the model audit are applications on top)::

    from pathlib import Path
    import reasoner

    result = reasoner.run(Path("examples/smokers/smokers.mln"), Path("examples/smokers/evidence.db"),
                          queries=["Cancer"])
    result.status                      # 'optimal'
    result.values["Cancer(Anna)"]      # True
    print(reasoner.explain(result, "Cancer(Anna)").atom)

``parse`` → ``Program``, ``check`` → ``CheckedProgram``, ``run`` → ``Run`` (the MAP world and
every stage's output), ``explain`` → ``Proof``; ``Limits`` bounds a call. Errors derive from
``ReasonerError`` and from the built-in that fits (``RuleError`` and ``ArgumentError`` are
``ValueError`` s, ``LimitError`` a ``RuntimeError``, ``RuleFileError`` an ``OSError``).

Names are imported on first use (PEP 562), so ``import reasoner`` loads no numerical library.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import TYPE_CHECKING

from reasoner.lazy import lazy_names

__version__ = "0.1.0"

# public name → the module of this package that defines it
_EXPORTS = {
    "ArgumentError": "errors",
    "CheckedProgram": "check",
    "Diagnostic": "errors",
    "EvidenceError": "errors",
    "LimitError": "errors",
    "Limits": "limits",
    "MemoryTable": "evidence",
    "Program": "syntax",
    "Proof": "explain",
    "QueryAtom": "pipeline",
    "QueryPattern": "check",
    "ReasonerError": "errors",
    "RuleError": "errors",
    "RuleFileError": "errors",
    "Run": "pipeline",
    "Solution": "solve",
    "check": "pipeline",
    "explain": "pipeline",
    "parse": "pipeline",
    "run": "pipeline",
}

__all__ = [
    "ArgumentError",
    "CheckedProgram",
    "Diagnostic",
    "EvidenceError",
    "LimitError",
    "Limits",
    "MemoryTable",
    "Program",
    "Proof",
    "QueryAtom",
    "QueryPattern",
    "ReasonerError",
    "RuleError",
    "RuleFileError",
    "Run",
    "Solution",
    "__version__",
    "check",
    "explain",
    "parse",
    "run",
]

if TYPE_CHECKING:
    from reasoner.check import CheckedProgram, QueryPattern
    from reasoner.errors import (
        ArgumentError,
        Diagnostic,
        EvidenceError,
        LimitError,
        ReasonerError,
        RuleError,
        RuleFileError,
    )
    from reasoner.evidence import MemoryTable
    from reasoner.explain import Proof
    from reasoner.limits import Limits
    from reasoner.pipeline import QueryAtom, Run, check, explain, parse, run
    from reasoner.solve import Solution
    from reasoner.syntax import Program


__getattr__, __dir__ = lazy_names(__name__, _EXPORTS)


class _Package(ModuleType):
    """The package's module: ``parse``, ``check`` and ``explain`` name both a function of the API
    and a submodule (``reasoner.parse``). Importing the submodule binds its name on the package;
    here the function keeps it (``from reasoner.parse import ...`` still finds the module)."""

    def __setattr__(self, name: str, value: object) -> None:
        if isinstance(value, ModuleType) and name in _EXPORTS and f"reasoner.{_EXPORTS[name]}" != value.__name__:
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
