"""Shared test options and helpers.

``pytest --update-golden`` rewrites the expected files of the golden cases
(``tests/golden/**/expected*``) from the current output; review the diff
before committing.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from support import REPOSITORY, SAMPLE, run_reason


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite the expected output of golden test cases instead of comparing",
    )


@pytest.fixture(scope="session")
def reason() -> Callable[..., subprocess.CompletedProcess[str]]:
    return run_reason


@pytest.fixture
def golden(request: pytest.FixtureRequest) -> Callable[[Path, str], None]:
    """``golden(path, actual)``: compare with the expected file, or rewrite it (``--update-golden``)."""
    update = bool(request.config.getoption("--update-golden"))

    def compare(path: Path, actual: str) -> None:
        _compare_golden(path, actual, update)

    return compare


def _compare_golden(path: Path, actual: str, update: bool) -> None:
    if update:
        path.write_text(actual, encoding="utf-8")
        return
    if not path.exists():
        pytest.fail(f"{path} is missing; run pytest with --update-golden to create it")
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, f"output differs from {path} (run pytest --update-golden to accept)"


@pytest.fixture(scope="session")
def sample_audit(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(folder, OUT) of one audit of the bundled HMDA sample, run once per session.

    The facts are copied into ``folder`` and the audit runs there with relative paths, so
    outputs name ``sample.parquet`` and nothing of the temporary directory. Tests must not
    modify OUT.
    """
    import shutil

    folder = tmp_path_factory.mktemp("sample-audit")
    shutil.copy(SAMPLE, folder / "sample.parquet")
    shutil.copy(SAMPLE.with_name("sample.truth.csv"), folder / "sample.truth.csv")
    done = run_reason([REPOSITORY / "rules", "sample.parquet", "-o", "out", "--no-timings"], cwd=folder, timeout=300)
    assert done.returncode == 0, done.stderr
    return folder, folder / "out"
