"""Outputs and processes a careless or hostile user cannot break (issue 19): ``--force`` never
deletes an input or arbitrary files, one writer per OUT, file-system errors are exit 2 with one
line and leave nothing behind, workers die with the run, and values from the data reach the
terminal and report.md escaped.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from support import REPOSITORY

from reasoner.errors import UsageError
from reasoner.lending.outputs.write import check_output, output_lock, staged

pytestmark = pytest.mark.slow  # end-to-end audits: outside the inner loop, pytest -m "not slow"

ROOT = REPOSITORY
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


# --- 2. workers die with the run; the next run cleans up after a killed one ----------------------


def _descendants(root: int) -> set[int]:
    """Every process below ``root`` (Linux: from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _environment(temporary: Path) -> dict[str, str]:
    environment = dict(os.environ, PYTHONHASHSEED="0", TMPDIR=str(temporary))
    environment.pop("PYTHONWARNINGS", None)
    return environment


def _leftovers(temporary: Path, out: Path) -> list[str]:
    found = [path.name for path in temporary.iterdir() if path.name.startswith("reasoner-")]
    return found + [path.name for path in out.parent.iterdir() if path.name != out.name]


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("sent", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_multi_worker_audit_leaves_no_process_and_the_next_run_no_leftovers(
    tmp_path: Path, reason: Reason, sent: signal.Signals
) -> None:
    temporary, outputs_folder = tmp_path / "tmp", tmp_path / "outputs"
    temporary.mkdir()
    outputs_folder.mkdir()
    out = outputs_folder / "out"
    command = [
        sys.executable,
        "-m",
        "reasoner",
        ROOT / "rules",
        SAMPLE,
        "-o",
        out,
        "--workers",
        "2",
        "--partition-rows",
        "200",
    ]
    with (tmp_path / "stdout").open("w") as stdout, (tmp_path / "stderr").open("w") as stderr:
        run = subprocess.Popen(
            [str(part) for part in command], stdout=stdout, stderr=stderr, env=_environment(temporary)
        )
        deadline = time.monotonic() + 120
        processes: set[int] = set()
        while time.monotonic() < deadline and run.poll() is None:
            processes |= _descendants(run.pid)
            workers = [pid for pid in _descendants(run.pid) if os.getppid() != pid and pid not in _children(run.pid)]
            if len(workers) >= 2:  # the forkserver's children: the pool is working
                break
            time.sleep(0.05)
        assert run.poll() is None, "the audit ended before its workers were seen"
        processes |= _descendants(run.pid)
        run.send_signal(sent)
        status = run.wait(timeout=30)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_alive(pid) for pid in processes):
        time.sleep(0.05)
    assert not [pid for pid in processes if _alive(pid)], "processes of the killed run are alive after 5 s"
    if sent == signal.SIGTERM:  # handled like Ctrl-C: cleaned up, nothing written
        assert status == 128 + signal.SIGTERM, (tmp_path / "stderr").read_text()
        assert (tmp_path / "stderr").read_text().strip().endswith("terminated")
        assert _leftovers(temporary, out) == [] and not out.exists()
    small = tmp_path / "small.parquet"
    pd.read_parquet(SAMPLE).head(300).to_parquet(small)
    environment = _environment(temporary)
    done = subprocess.run(
        [sys.executable, "-m", "reasoner", str(ROOT / "rules"), str(small), "-o", str(out), "--quiet"],
        capture_output=True,
        text=True,
        env=environment,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert _leftovers(temporary, out) == []


def _children(pid: int) -> set[int]:
    return {child for child in _descendants(pid) if Path(f"/proc/{child}/stat").exists() and _parent(child) == pid}


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except OSError:
        return -1


def test_spill_directories_of_killed_runs_are_removed_and_running_ones_kept(tmp_path: Path) -> None:
    from reasoner.lending.audit.explanations import SPILL_LOCK, SPILL_PREFIX, Explanations, remove_abandoned

    abandoned = tmp_path / f"{SPILL_PREFIX}dead"
    abandoned.mkdir()
    (abandoned / SPILL_LOCK).write_text("")  # its holder was killed: the kernel released the lock
    (abandoned / "00000000.jsonl").write_text("{}\n")
    previous = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = str(tmp_path)
    import tempfile

    tempfile.tempdir = None
    try:
        running = Explanations()
        assert not abandoned.exists()
        assert remove_abandoned(tmp_path) == [] and running.directory.exists()  # held: kept
        running.close()
        assert not running.directory.exists()
    finally:
        if previous is None:
            del os.environ["TMPDIR"]
        else:
            os.environ["TMPDIR"] = previous
        tempfile.tempdir = None


# --- 7. audit.toml that is not UTF-8; [findings] naming an undeclared predicate --------------------


@pytest.mark.parametrize("content", [b"[comparisons]\n# caf\xe9\n", bytes(range(256))])
def test_an_audit_toml_that_is_not_utf8_names_the_file_and_byte(project: Path, reason: Reason, content: bytes) -> None:
    (project / "rules" / "audit.toml").write_bytes(content)
    done = reason(["rules", "data/sample.parquet", "-o", "out"], cwd=project)
    assert done.returncode == 2, done.stderr
    offset = content.index(next(bytes([b]) for b in content if b >= 0x80))
    assert done.stderr == f"error: rules/audit.toml: not UTF-8 text (byte {offset}); save it as UTF-8\n"


def test_findings_naming_an_undeclared_predicate_point_at_audit_toml(project: Path, reason: Reason) -> None:
    config = project / "rules" / "audit.toml"
    config.write_text(config.read_text().replace('lender_verdict = "Flagged"', 'lender_verdict = "Flaged"'))
    number = next(i for i, line in enumerate(config.read_text().splitlines(), 1) if "Flaged" in line)
    done = reason(["rules", "data/sample.parquet", "-o", "out"], cwd=project)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"rules/audit.toml:{number}:"), done.stderr
    assert "'Flaged'" in done.stderr and "Flagged" in done.stderr and "<query>" not in done.stderr


# --- 4, 5 and 8. values from the data: escaped in messages, `reason explain` and report.md --------

HOSTILE_ID = 'A"{}\\\x1b]0;owned\x07\n|<b>'
HOSTILE_LEI = "<script>alert(1)</script>|[x](javascript:alert(1))\n# forged heading"
RENAMED_LEI = "5493000009FFYP0H7429"


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The audit of the sample with every application id and one lender's LEI made hostile."""
    folder = tmp_path_factory.mktemp("hostile")
    frame = pd.read_parquet(SAMPLE)
    frame["lei"] = frame["lei"].astype(str).replace(RENAMED_LEI, HOSTILE_LEI)
    frame["application_id"] = [HOSTILE_ID.format(number) for number in range(len(frame))]
    frame.to_parquet(folder / "hostile.parquet")
    environment = dict(os.environ, PYTHONHASHSEED="0")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "reasoner",
            str(ROOT / "rules"),
            "hostile.parquet",
            "-o",
            "out",
            "--quiet",
            "--no-timings",
        ],
        cwd=folder,
        capture_output=True,
        text=True,
        env=environment,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return folder / "out"


def _application_ids(out: Path) -> list[str]:
    return [str(value) for value in pd.read_parquet(out / "applications.parquet")["application_id"]]


def _explain(out: Path, identifier: str) -> subprocess.CompletedProcess[str]:
    environment = dict(os.environ, PYTHONHASHSEED="0")
    return subprocess.run(
        [sys.executable, "-m", "reasoner", "explain", str(out), identifier],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
    )


def _raw_controls(text: str) -> list[str]:
    return [char for char in text if (ord(char) < 0x20 and char != "\n") or 0x7F <= ord(char) < 0xA0]


def test_explain_finds_ids_holding_quotes_backslashes_and_control_characters(hostile: Path) -> None:
    identifier = _application_ids(hostile)[0]
    done = _explain(hostile, identifier)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith('Application A"') and "\\x1b]0;owned\\x07\\n|<b>" in done.stdout
    assert _raw_controls(done.stdout) == []


def test_explain_finds_a_flagged_lender_whose_lei_holds_a_newline(hostile: Path) -> None:
    done = _explain(hostile, HOSTILE_LEI)
    assert done.returncode == 0, done.stderr
    first = done.stdout.splitlines()[0]
    assert first.startswith("Lender <script>") and ": flagged" in first and "\\n# forged heading" in first
    assert not any(line.startswith("# forged") for line in done.stdout.splitlines())


def test_an_unknown_hostile_id_is_one_escaped_line_and_not_suggested_back(hostile: Path) -> None:
    identifier = "zz\x1b[2J\nerror: forged"
    done = _explain(hostile, identifier)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and _raw_controls(done.stderr) == []
    assert "zz\\x1b[2J\\nerror: forged" in done.stderr


def test_messages_show_control_characters_escaped_on_one_line() -> None:
    error = UsageError("facts.csv: column 'x': got '\x1b]0;owned\x07\nerror: forged' (row 3)")
    assert error.render() == "error: facts.csv: column 'x': got '\\x1b]0;owned\\x07\\nerror: forged' (row 3)"
    from reasoner.errors import printable

    assert printable("a\u202eb\tc\x9b") == "a\\u202eb\\tc\\x9b"
    assert printable("one\ntwo\x1b", keep="\n") == "one\ntwo\\x1b"


def test_a_bad_value_with_control_characters_is_reported_escaped(tmp_path: Path, reason: Reason) -> None:
    frame = pd.read_parquet(SAMPLE).head(50)
    frame["action_taken"] = frame["action_taken"].astype(str)
    frame.loc[3, "action_taken"] = "\x1b[2J\nerror: forged"
    frame.to_parquet(tmp_path / "facts.parquet")
    done = reason([ROOT / "rules", tmp_path / "facts.parquet", "-o", tmp_path / "out"])
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and _raw_controls(done.stderr) == [], done.stderr
    assert "\\x1b[2J\\nerror: forged" in done.stderr


def test_report_md_shows_hostile_values_as_text(hostile: Path) -> None:
    text = (hostile / "report.md").read_text(encoding="utf-8")
    assert "<script>" not in text and "<b>" not in text
    assert not re.search(r"(?<!\\)\]\(javascript:", text)  # '\](' is text, not a link
    assert _raw_controls(text) == []
    assert (
        "\n# forged" not in text
        and "## Lender &lt;script&gt;alert(1)&lt;/script&gt;\\|\\[x\\](javascript:alert(1))" in text
    )
    for line in text.splitlines():  # every table row keeps its columns: no raw '|' from a value
        if line.startswith("| &lt;script"):
            cells = [cell for cell in re.split(r"(?<!\\)\|", line)[1:-1]]
            assert len(cells) == 7, line


def test_markdown_escaping_leaves_ordinary_values_alone() -> None:
    from reasoner.lending.outputs.report import escape_markdown, markdown_code

    assert escape_markdown("Black or African American") == "Black or African American"
    assert escape_markdown("TIER_1_CRITICAL") == "TIER_1_CRITICAL"
    assert escape_markdown("a|b<i>&[x](y)`z`\\\n") == "a\\|b&lt;i&gt;&amp;\\[x\\](y)\\`z\\`\\\\\\\\n"
    assert markdown_code("lar.csv") == "`lar.csv`"
    assert markdown_code("a`b") == "`` a`b ``"


# --- 9. a lender that denies every application --------------------------------------------------


@pytest.mark.slow
def test_a_lender_denying_every_application_is_not_tested_rather_than_flagged(tmp_path: Path) -> None:
    from reasoner.lending.audit.run import audit

    frame = pd.read_parquet(SAMPLE)
    frame["lei"] = frame["lei"].astype(str)
    frame["action_taken"] = frame["action_taken"].astype(str)
    frame.loc[frame["lei"] == RENAMED_LEI, "action_taken"] = "3"
    frame.to_parquet(tmp_path / "denied.parquet")
    lenders = audit([ROOT / "rules"], tmp_path / "denied.parquet", workers=1).findings.lenders
    row = lenders[lenders["lei"] == RENAMED_LEI].iloc[0]
    assert row["denial_rate"] == 1.0
    assert not row["flagged"] and row["risk_tier"] == "NOT_TESTED" and row["confidence"] == "INSUFFICIENT_EVIDENCE"
    flagged = lenders[lenders["flagged"]]
    assert not (flagged["confidence"] == "INSUFFICIENT_EVIDENCE").any()  # never flagged and insufficient at once


# --- 10. signed manifests ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A small audit signed with a new Ed25519 key: (OUT, private key, public key)."""
    pytest.importorskip("cryptography")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    folder = tmp_path_factory.mktemp("signed")
    key = Ed25519PrivateKey.generate()
    private, public = folder / "key.pem", folder / "key.pub"
    private.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    public.write_bytes(
        key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    pd.read_parquet(SAMPLE).head(300).to_parquet(folder / "facts.parquet")
    environment = dict(os.environ, PYTHONHASHSEED="0")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "reasoner",
            str(ROOT / "rules"),
            "facts.parquet",
            "-o",
            "out",
            "--quiet",
            "--sign",
            "key.pem",
        ],
        cwd=folder,
        capture_output=True,
        text=True,
        env=environment,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    return folder / "out", private, public


def _copy(source: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(source, target)
    return target


def test_a_signed_manifest_verifies_with_its_public_key(signed: tuple[Path, Path, Path], reason: Reason) -> None:
    out, _, public = signed
    assert (out / "manifest.json.sig").is_file()
    done = reason(["verify", out, "--key", public])
    assert done.returncode == 0, done.stderr
    assert "signed by the key SHA256:" in done.stdout
    assert "manifest.json.sig not checked" in reason(["verify", out]).stdout


def test_rewriting_an_output_with_its_digests_passes_verify_but_not_the_signature(
    signed: tuple[Path, Path, Path], reason: Reason, tmp_path: Path
) -> None:
    import hashlib

    out = _copy(signed[0], tmp_path)
    (out / "report.md").write_text("# nothing to see\n")
    record = json.loads((out / "manifest.json").read_text())
    record["outputs"]["report.md"]["sha256"] = hashlib.sha256(b"# nothing to see\n").hexdigest()
    digests = {name: entry["sha256"] for name, entry in record["outputs"].items()}
    record["outputs_digest"] = hashlib.sha256(
        "".join(f"{n}:{d}\n" for n, d in sorted(digests.items())).encode()
    ).hexdigest()
    (out / "manifest.json").write_text(json.dumps(record, indent=2) + "\n")
    assert reason(["verify", out]).returncode == 0  # the digests alone cannot tell
    done = reason(["verify", out, "--key", signed[2]])
    assert done.returncode == 4
    assert "its signature does not match the key" in done.stderr


def test_a_missing_signature_or_another_key_fails_verify(
    signed: tuple[Path, Path, Path], reason: Reason, tmp_path: Path
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    other = tmp_path / "other.pub"
    other.write_bytes(
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    assert reason(["verify", signed[0], "--key", other]).returncode == 4
    out = _copy(signed[0], tmp_path)
    (out / "manifest.json.sig").unlink()
    done = reason(["verify", out, "--key", signed[2]])
    assert done.returncode == 4 and "manifest.json.sig: missing" in done.stderr


@pytest.mark.parametrize("content", [b"not a key\n", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"])
def test_a_bad_signing_key_is_a_usage_error_before_the_work(tmp_path: Path, reason: Reason, content: bytes) -> None:
    pytest.importorskip("cryptography")
    (tmp_path / "key.pem").write_bytes(content)
    done = reason([ROOT / "rules", SAMPLE, "-o", tmp_path / "out", "--sign", tmp_path / "key.pem"])
    assert done.returncode == 2 and done.stderr.startswith("error: --sign ") and done.stderr.count("\n") == 1, (
        done.stderr
    )
    assert not (tmp_path / "out").exists()


def test_force_replaces_a_signed_previous_output(signed: tuple[Path, Path, Path]) -> None:
    check_output(signed[0], True)  # manifest.json.sig is a previous run's output too
