"""``reason explain OUT ID``: the derivation of one audit finding in prose.

The session's audit of the bundled sample (``sample_audit`` in conftest) is explained. The texts of one application
finding and one flagged lender are golden files under ``tests/golden/findings/``; they depend
on the rule files, so after a change to ``rules/`` run ``pytest --update-golden
tests/lending/test_explain_finding.py`` and review the diff.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from support import GOLDEN as GOLDEN_ROOT
from support import REPOSITORY

from reasoner.errors import UsageError
from reasoner.lending.outputs.explain_finding import explain_finding

Reason = Callable[..., subprocess.CompletedProcess[str]]

RULES = REPOSITORY / "rules"
GOLDEN = GOLDEN_ROOT / "findings"


@dataclass(frozen=True)
class Audit:
    folder: Path
    out: Path
    lenders: pd.DataFrame
    applications: pd.DataFrame


@pytest.fixture(scope="module")
def audit(sample_audit: tuple[Path, Path]) -> Audit:
    folder, out = sample_audit
    return Audit(folder, out, pd.read_parquet(out / "lenders.parquet"), pd.read_parquet(out / "applications.parquet"))


def _flagged(audit: Audit) -> pd.DataFrame:
    return audit.lenders[audit.lenders["flagged"]]


def _application(audit: Audit) -> str:
    """A short-proof application finding at a flagged lender, disparate treatment if there is one."""
    apps = audit.applications
    if apps.empty:
        pytest.skip("the audit has no application finding")
    at_flagged = apps[apps["lei"].isin(_flagged(audit)["lei"])]
    apps = at_flagged if not at_flagged.empty else apps
    preferred = apps[apps["finding"] == "disparate treatment"]
    apps = preferred if not preferred.empty else apps
    apps = apps.assign(key=apps["application_id"].astype(str)).sort_values(["violation_score", "key"], kind="stable")
    return str(apps["key"].iat[0])


def _lender(audit: Audit) -> str:
    flagged = _flagged(audit)
    if flagged.empty:
        pytest.skip("the audit flagged no lender")
    return str(flagged["lei"].iat[0])


def test_application_finding(audit: Audit, golden: Callable[[Path, str], None]) -> None:
    identifier = _application(audit)
    text = explain_finding(audit.out, identifier)
    assert text.startswith(f"Application {identifier} (input row ")
    assert "of sample.parquet" in text and "Confidence:" in text and "For:" in text
    assert str(audit.folder) not in text and str(RULES) not in text
    golden(GOLDEN / "expected_application.txt", text + "\n")


def test_flagged_lender(audit: Audit, golden: Callable[[Path, str], None]) -> None:
    lei = _lender(audit)
    row = audit.lenders.set_index("lei").loc[lei]
    text = explain_finding(audit.out, lei)
    assert text.startswith(f"Lender {lei}: flagged")
    assert row["risk_tier"] in text and row["confidence"] in text
    for violation in row["violations"]:
        assert f": {violation}" in text
    assert str(audit.folder) not in text and str(RULES) not in text
    golden(GOLDEN / "expected_lender.txt", text + "\n")


def test_unflagged_lender(audit: Audit) -> None:
    unflagged = audit.lenders[~audit.lenders["flagged"]]
    if unflagged.empty:
        pytest.skip("the audit flagged every lender")
    row = unflagged.iloc[0]
    text = explain_finding(audit.out, str(row["lei"]))
    assert text.startswith(f"Lender {row['lei']}: not flagged")
    assert f"Tier {row['risk_tier']}" in text and str(row["confidence"]) in text
    assert f"risk score {row['risk_score']:g}" in text


def test_application_ids_match_as_text(audit: Audit) -> None:
    identifier = _application(audit)
    assert explain_finding(audit.out, f" {identifier} ") == explain_finding(audit.out, identifier)


def test_unknown_id_through_the_command_line(audit: Audit, reason: Reason) -> None:
    result = reason(["explain", audit.out, "nonsense"])
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error: 'nonsense' is neither an application")
    assert "explanations.jsonl" in result.stderr and "Traceback" not in result.stderr


def test_near_miss_gets_did_you_mean(audit: Audit, reason: Reason) -> None:
    lei = str(audit.lenders["lei"].iat[0])
    result = reason(["explain", audit.out, lei[:-1]])
    assert result.returncode == 2
    assert f"did you mean '{lei}'" in result.stderr


def test_missing_out(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such directory"):
        explain_finding(tmp_path / "missing", "1")
    with pytest.raises(UsageError, match=r"explanations\.jsonl: not found"):
        explain_finding(tmp_path, "1")


def test_reading_stops_at_the_match(audit: Audit, tmp_path: Path) -> None:
    """A damaged line after the match is never read; one before an unknown id is reported."""
    lei = _lender(audit)
    out = tmp_path / "out"
    shutil.copytree(audit.out, out)
    with (out / "explanations.jsonl").open("a", encoding="utf-8") as handle:
        handle.write('{"finding": "lender", "lei": "' + lei + '", damaged\n')
    assert explain_finding(out, lei) == explain_finding(audit.out, lei)
    with pytest.raises(UsageError, match=r"explanations\.jsonl:\d+: not a JSON record"):
        explain_finding(out, "nonsense")
