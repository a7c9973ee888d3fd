"""Paths and a subprocess runner shared by the tests (importable: ``from support import ...``)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

TESTS = Path(__file__).resolve().parent
REPOSITORY = TESTS.parent
GOLDEN = TESTS / "golden"
DATA = TESTS / "data"
RULES = REPOSITORY / "rules"
SAMPLE = REPOSITORY / "examples" / "hmda" / "sample.parquet"

__all__ = ["DATA", "GOLDEN", "REPOSITORY", "RULES", "SAMPLE", "TESTS", "run_reason"]


def run_reason(
    args: Sequence[str | Path], cwd: Path | str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m reasoner ARGS`` in a subprocess and capture its output."""
    environment = dict(os.environ)
    environment["PYTHONHASHSEED"] = "0"
    environment.pop("PYTHONWARNINGS", None)
    return subprocess.run(
        [sys.executable, "-m", "reasoner", *(str(arg) for arg in args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment,
    )


def two_group_register(seed: int, count: int = 600) -> pd.DataFrame:
    """A cleaned register of ``count`` applications at two lenders, White non-Hispanic and Black
    applicants (60/40), denial odds and rate spread rising with DTI and with the Black group."""
    rng = np.random.default_rng(seed)
    group = rng.choice(["White non-Hispanic", "Black or African American"], count, p=[0.6, 0.4])
    income = np.exp(rng.normal(11, 0.4, count))
    dti = rng.uniform(10, 60, count)
    logit = -2 + 0.04 * (dti - 35) - 0.5 * np.log(income / 60000) + 0.6 * (group != "White non-Hispanic")
    denied = rng.random(count) < 1 / (1 + np.exp(-logit))
    return pd.DataFrame(
        {
            "application_id": [f"A{index:05d}" for index in range(count)],
            "lei": rng.choice(["L1", "L2"], count),
            "excluded": "",
            "decision": np.where(denied, "denied", "approved"),
            "action_taken": np.where(denied, 3, 1),
            "race_ethnicity": group,
            "income": income,
            "dti": dti,
            "loan_amount": income * rng.uniform(2, 4, count),
            "rate_spread": 0.5 + 0.01 * dti + 0.2 * (group != "White non-Hispanic") + rng.normal(0, 0.2, count),
        }
    )
