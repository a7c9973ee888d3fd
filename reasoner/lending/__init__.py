"""Fair-lending audit over HMDA loan-level data: ingest, synthetic registers with known truth.

Stages (each a module with one public verb): ``files.read_hmda`` → ``hmda.clean_hmda``;
``synth.synthesize`` / ``synth.write_synth`` make registers in the published format with
planted discrimination and a truth table per lender.
"""

from reasoner.lending.hmda import CLEAN_COLUMNS, EXCLUSION_REASONS, INPUT_COLUMNS, CleanedHMDA, clean_hmda, read_hmda
from reasoner.lending.synth import synthesize, write_synth

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
