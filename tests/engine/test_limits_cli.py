"""The rule-file limits from the command line: ``--limit NAME=N``, and errors worded as flags."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = "person = {" + ", ".join(f"Person{i:06d}" for i in range(10_000)) + "}\nSmokes(person)\n"


def _reason(*arguments: object) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "reasoner", *map(str, arguments)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT)


@pytest.mark.slow
def test_a_domain_of_10000_constants_passes_and_a_lower_limit_refuses_it_near_the_column(tmp_path: Path) -> None:
    rules = tmp_path / "people.mln"
    rules.write_text(DOMAIN, encoding="utf-8")
    assert len(DOMAIN.splitlines()[0]) > 138_000  # the line of issue 16
    done = _reason("check", rules)
    assert done.returncode == 0 and done.stdout.startswith("ok: 1 file(s), 1 predicates"), done.stderr
    done = _reason("check", rules, "--limit", "max-statement-tokens=20000")
    assert done.returncode == 2
    first, source, caret, *_notes = done.stderr.splitlines()
    assert first.startswith(f"{rules}:1:") and first.endswith("error: statement has more than 20,000 tokens")
    assert len(source) < 120 and len(caret) < 120  # the neighbourhood of the column, not the 160 KB line
    assert source[caret.index("^")] != " "


def test_a_limit_reached_is_worded_with_its_option_and_unknown_limits_are_usage_errors(tmp_path: Path) -> None:
    rules = tmp_path / "people.mln"
    rules.write_text(DOMAIN, encoding="utf-8")
    done = _reason("check", rules, "--limit", "max_rule_bytes=1000")
    assert done.returncode == 2
    assert done.stderr == (
        f"error: {rules}: rule file is {len(DOMAIN):,} bytes; the limit is 1,000 (--limit max-rule-bytes=N): "
        "put facts in evidence files or tables (*.db, *.parquet, *.csv), not in rule files\n"
    )
    done = _reason("check", rules, "--limit", "max-rows=3")
    assert done.returncode == 2 and done.stderr.startswith("error: --limit max-rows=3: unknown limit 'max-rows'")
    done = _reason("check", rules, "--limit", "max-nesting=0")
    assert done.returncode == 2 and done.stderr == "error: --limit max-nesting must be at least 1\n"


def test_running_out_of_memory_without_a_budget_is_the_limits_message_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import reasoner.pipeline
    from reasoner import cli

    def exhausted(*_arguments: object, **_options: object) -> None:
        raise MemoryError

    monkeypatch.setattr(reasoner.pipeline, "run", exhausted)
    smokers = ROOT / "examples" / "smokers"
    arguments = [str(smokers / "smokers.mln"), str(smokers / "evidence.db"), "--query", "Smokes"]
    code = cli.main(arguments)
    err = capsys.readouterr().err
    assert code == 2
    assert err == (
        "error: out of memory (no --memory-limit was set: the machine's memory ran out); nothing was written. "
        "Give more memory, or set --memory-limit and lower --max-groundings to be refused earlier "
        "(README: Reliability)\n"
    )
    code = cli.main([*arguments, "--memory-limit", "3G"])
    assert code == 2
    assert capsys.readouterr().err.startswith("error: the memory limit (3.00 GiB, --memory-limit) was reached")
