"""Fair-lending audit over HMDA loan-level data: ingest, synthetic registers with known truth.

Stages (each a module with one public verb): ``files.read_hmda`` → ``hmda.clean_hmda``;
``synth.synthesize`` / ``synth.write_synth`` make registers in the published format with
planted discrimination and a truth table per lender.

The names below are imported on first use (PEP 562 ``__getattr__``): importing a submodule such
as ``reasoner.lending.config`` then does not import pandas and pyarrow, so the command line
answers a usage error or a missing file at once.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reasoner.lending.registers.hmda import (
        CLEAN_COLUMNS,
        EXCLUSION_REASONS,
        INPUT_COLUMNS,
        CleanedHMDA,
        clean_hmda,
        read_hmda,
    )
    from reasoner.lending.synthetic.synth import synthesize, write_synth

__all__ = [
    "CLEAN_COLUMNS",
    "EXCLUSION_REASONS",
    "INPUT_COLUMNS",
    "CleanedHMDA",
    "clean_hmda",
    "read_hmda",
    "synthesize",
    "write_synth",
]

_SYNTH = ("synthesize", "write_synth")
_MODULE_OF = {name: "reasoner.lending.synthetic.synth" if name in _SYNTH else "reasoner.lending.registers.hmda" for name in __all__}


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'reasoner.lending' has no attribute '{name}'")
    value = getattr(importlib.import_module(_MODULE_OF[name]), name)
    globals()[name] = value
    return value
