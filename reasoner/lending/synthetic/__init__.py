"""Registers with known truth and how the audit scores on them: the generator (in the published
format), the analyst's baseline, and the evaluation.

The names below are imported on first use (``reasoner.lazy``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reasoner.lazy import lazy_names

if TYPE_CHECKING:
    from reasoner.lending.synthetic.baseline import analyst_baseline
    from reasoner.lending.synthetic.evaluate import Evaluation, evaluate, render_evaluation
    from reasoner.lending.synthetic.synth import synthesize, write_synth

__all__ = [
    "Evaluation",
    "analyst_baseline",
    "evaluate",
    "render_evaluation",
    "synthesize",
    "write_synth",
]

__getattr__, __dir__ = lazy_names(
    __name__,
    {
        "analyst_baseline": "baseline",
        "Evaluation": "evaluate",
        "evaluate": "evaluate",
        "render_evaluation": "evaluate",
        "synthesize": "synth",
        "write_synth": "synth",
    },
)
