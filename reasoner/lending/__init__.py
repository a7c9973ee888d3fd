"""Fair-lending audit over HMDA loan-level data (and a bank's own loan file).

The subpackages follow the pipeline::

    registers   read and clean a register: formats, fields, values, derived groups, column map
    evidence    similar applicants and per-lender statistics, bound to the rules as tables
    audit       partitions through the engine (local workers or a cluster) → scored findings
    outputs     files written whole or not at all, the report, ``reason explain``, verification
    synthetic   registers with planted discrimination, the analyst's baseline, the evaluation

``config`` (``audit.toml``) is shared by all of them. Each subpackage re-exports what the others
may use; every name is imported on first use (``reasoner.lazy``), so importing a module such as
``reasoner.lending.config`` does not import pandas and pyarrow and the command line answers a
usage error or a missing file at once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reasoner.lazy import lazy_names

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

__getattr__, __dir__ = lazy_names(
    __name__,
    {name: "synthetic.synth" if name in ("synthesize", "write_synth") else "registers.hmda" for name in __all__},
)
