"""Training data → Kamiran–Calders reweighing sample weights.

Kamiran & Calders (2012), "Data preprocessing techniques for classification without
discrimination", Knowledge and Information Systems 33(1): each row of group *g* with outcome
*y* gets weight ``P(g) · P(y) / P(g, y)`` (expected over observed frequency of its cell), so
that in the weighted data the outcome is independent of the group. This is AIF360's
``Reweighing`` (there computed for privileged/unprivileged; here for every group, which gives
the same weights for two groups). Rows without a group or an outcome get weight 1.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["reweighing_weights"]


def reweighing_weights(group: pd.Series, outcome: pd.Series) -> np.ndarray:
    """One weight per row: ``P(g) P(y) / P(g, y)`` over the rows with a group and an outcome."""
    group = group.astype(object).reset_index(drop=True)
    outcome = pd.to_numeric(outcome.reset_index(drop=True), errors="coerce")
    usable = group.notna().to_numpy() & outcome.notna().to_numpy()
    weights = np.ones(len(group), dtype=np.float64)
    if not usable.any():
        return weights
    cells = pd.DataFrame({"g": group[usable].astype(str).to_numpy(), "y": outcome[usable].to_numpy()})
    total = len(cells)
    p_group = cells["g"].value_counts() / total
    p_outcome = cells["y"].value_counts() / total
    p_joint = cells.groupby(["g", "y"]).size() / total
    expected = p_group.reindex(cells["g"]).to_numpy() * p_outcome.reindex(cells["y"]).to_numpy()
    observed = p_joint.reindex(pd.MultiIndex.from_frame(cells)).to_numpy()
    weights[usable] = expected / observed
    return weights
