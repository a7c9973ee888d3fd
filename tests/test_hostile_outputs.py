"""Outputs and processes a careless or hostile user cannot break (issue 19): ``--force`` never
deletes an input or arbitrary files, one writer per OUT, file-system errors are exit 2 with one
line and leave nothing behind, workers die with the run, and values from the data reach the
terminal and report.md escaped.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from reasoner.errors import UsageError
from reasoner.lending import outputs
from reasoner.lending.outputs import check_output, output_lock, staged

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "examples" / "hmda" / "sample.parquet"
Reason = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project folder: the rule library and a small facts file in ``data/``."""
    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    (tmp_path / "data").mkdir()
    pd.read_parquet(SAMPLE).head(300).to_parquet(tmp_path / "data" / "sample.parquet")
    return tmp_path


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


# --- 1. --force never replaces an input or arbitrary files -------------------------------------


@pytest.mark.parametrize(
    ("out", "named"),
    [
        ("data", "data/sample.parquet"),  # OUT contains the facts
        ("rules", "rules"),  # OUT is the rule directory
        ("data/sample.parquet", "data/sample.parquet"),  # OUT is the facts file
        ("rules/out", "rules"),  # OUT lies inside an input
        (".", "."),  # the working directory (holds the inputs)
    ],
)
def test_force_refuses_an_output_that_is_contains_or_lies_inside_an_input(
    project: Path, reason: Reason, out: str, named: str
) -> None:
    before = _snapshot(project)
    done = reason(["rules", "data/sample.parquet", "-o", out, "--force"], cwd=project)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("error: "), done.stderr
    assert named in done.stderr and "Traceback" not in done.stderr
    assert _snapshot(project) == before


@pytest.mark.parametrize("where", ["/", "home", "mount"])
def test_force_refuses_the_root_the_home_directory_and_mount_points(tmp_path: Path, where: str) -> None:
    target = {"/": Path("/"), "home": Path.home(), "mount": Path("/proc")}[where]
    with pytest.raises(UsageError, match="refusing"):
        check_output(target, True, inputs=[tmp_path])


def test_force_replaces_only_a_previous_runs_outputs(tmp_path: Path) -> None:
    arbitrary = tmp_path / "mine"
    arbitrary.mkdir()
    (arbitrary / "thesis.tex").write_text("years of work")
    with pytest.raises(UsageError, match="not the outputs of a previous run"):
        check_output(arbitrary, True)
    previous = tmp_path / "previous"
    previous.mkdir()
    (previous / "report.md").write_text("# report\n")
    manifest = {"tool": "reasoner", "outputs": {"report.md": {"sha256": "0" * 64}}}
    (previous / "manifest.json").write_text(json.dumps(manifest))
    check_output(previous, True)  # a previous run's outputs: replaced
    (previous / "notes.txt").write_text("added by hand")
    with pytest.raises(UsageError, match="notes.txt"):
        check_output(previous, True)  # a file the run did not write: kept
    assert (arbitrary / "thesis.tex").read_text() == "years of work"


# --- 3. one writer per OUT ----------------------------------------------------------------------


def test_a_second_run_into_the_same_output_is_refused(project: Path, reason: Reason) -> None:
    out = project / "out"
    with output_lock(out):
        done = reason(["rules", "data/sample.parquet", "-o", out], cwd=project)
        assert (project / "out.lock").exists()
    assert done.returncode == 2, done.stderr
    assert "another run" in done.stderr and str(out) in done.stderr
    assert not out.exists()
    assert not (project / "out.lock").exists()  # removed with the lock


def test_the_lock_is_taken_again_after_a_run_that_died(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (tmp_path / "out.lock").write_text("12345\n")  # left by a killed run: no process holds it
    with output_lock(out):
        pass
    assert not (tmp_path / "out.lock").exists()


# --- 6 and 9. file-system errors, leftovers, permissions -----------------------------------------


def _write(staging: Path) -> None:
    (staging / "report.md").write_text("new\n")


def test_a_killed_runs_staging_directory_is_removed_by_the_next_run(tmp_path: Path) -> None:
    out = tmp_path / "out"
    for leftover in (tmp_path / ".out.partial", tmp_path / ".out.old"):
        leftover.mkdir()
        (leftover / "report.md").write_text("half\n")
    with output_lock(out), staged(out) as staging:
        _write(staging)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out"]


def test_output_directories_follow_the_umask(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        with staged(tmp_path / "out") as staging:
            _write(staging)
    finally:
        os.umask(previous)
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o755


def test_a_dangling_symlink_as_output_is_a_usage_error(tmp_path: Path) -> None:
    link = tmp_path / "out"
    link.symlink_to(tmp_path / "nowhere")
    with pytest.raises(UsageError, match="symbolic link"):
        check_output(link, True)


@pytest.mark.parametrize("where", ["parent-is-a-file", "proc"])
def test_an_output_that_cannot_be_created_is_one_line_and_exit_2(tmp_path: Path, reason: Reason, where: str) -> None:
    (tmp_path / "file").write_text("x")
    out = tmp_path / "file" / "out" if where == "parent-is-a-file" else Path("/proc/x/out")
    done = reason([ROOT / "rules", SAMPLE, "-o", out])
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and str(out.parent) in done.stderr, done.stderr
    assert "bug" not in done.stderr


def test_a_full_disk_keeps_the_previous_outputs_and_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    with staged(out) as staging:
        (staging / "report.md").write_text("previous\n")

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(UsageError) as caught, staged(out) as staging:
        monkeypatch.setattr(Path, "write_text", full)
        staging.joinpath("report.md").write_text("new\n")
    monkeypatch.undo()
    message = caught.value.render()
    assert "No space left on device" in message and "previous outputs" in message and str(out) in message
    assert "\n" not in message
    assert (out / "report.md").read_text() == "previous\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["out"]
