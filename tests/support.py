"""Paths and a subprocess runner shared by the tests (importable: ``from support import ...``)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

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
