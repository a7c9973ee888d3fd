"""The public engine API: ``reasoner.__init__``'s names, the README's example, typed errors,
limits as an argument."""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import reasoner
from reasoner import ArgumentError, LimitError, Limits, ReasonerError, RuleError, RuleFileError
from reasoner.limits import MemoryWatchdog, watched_memory_limit

ROOT = Path(__file__).resolve().parents[2]
SMOKERS = ROOT / "examples" / "smokers"
RULES = """\
person = {Anna, Bob}
Smokes(person)
Cancer(person)
Smokes(Anna).
1.5 Smokes(x) => Cancer(x)
"""


def test_the_readme_example_prints_what_the_readme_says(monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Using the engine from Python", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    output = re.search(r"```text\n(.*?)```", section, re.DOTALL)
    assert code is not None and output is not None
    monkeypatch.chdir(ROOT)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code.group(1), "README.md", "exec"), {"__name__": "readme"})
    assert printed.getvalue() == output.group(1)


def test_all_is_sorted_and_every_name_resolves() -> None:
    assert reasoner.__all__ == sorted(reasoner.__all__)
    for name in reasoner.__all__:
        assert getattr(reasoner, name) is not None, name
    with pytest.raises(AttributeError):
        reasoner.no_such_name  # noqa: B018


def test_the_functions_keep_their_names_beside_the_submodules_of_the_same_names() -> None:
    import reasoner.check
    import reasoner.explain
    import reasoner.parse  # noqa: F401

    for name in ("parse", "check", "explain", "run"):
        assert callable(getattr(reasoner, name)) and getattr(reasoner, name).__module__ == "reasoner.pipeline"
    from reasoner.parse import parse_text  # the module is still importable by name

    assert parse_text("P(t)\n").statements


def test_importing_the_package_loads_no_numerical_library() -> None:
    code = "import sys, reasoner; print(sorted({'numpy', 'pandas', 'duckdb', 'lark'} & set(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_rules_as_text_paths_and_sequences_of_both(tmp_path: Path) -> None:
    as_text = reasoner.run(RULES, queries=["Cancer", "Smokes"])
    file = tmp_path / "rules.mln"
    file.write_text(RULES, encoding="utf-8")
    as_path = reasoner.run(file, queries=["Cancer", "Smokes"])
    declarations, formulas = RULES.split("Smokes(Anna).\n")
    as_parts = reasoner.run([declarations, "Smokes(Anna).\n" + formulas], queries=["Cancer", "Smokes"])
    assert as_text.values == as_path.values == as_parts.values == {
        "Cancer(Anna)": True,
        "Cancer(Bob)": False,
        "Smokes(Anna)": True,
        "Smokes(Bob)": False,
    }
    assert as_text.status == "optimal" and as_text.total_cost == 0
    assert reasoner.parse(file).files == (str(file),) and reasoner.parse(RULES).files == ("<rules>",)
    assert [query.predicate for query in reasoner.check(RULES, queries=["Cancer"]).queries] == ["Cancer"]


def test_errors_are_typed_inherit_built_ins_and_name_arguments_not_flags(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as caught:
        reasoner.run(RULES)
    assert isinstance(caught.value, ArgumentError) and str(caught.value) == (
        "no query: name the query predicates with queries"
    )
    result = reasoner.run(RULES, queries=["Cancer"])
    with pytest.raises(ValueError, match=r"^explain: unknown predicate 'Nope'$"):
        reasoner.explain(result, "Nope(Anna)")
    with pytest.raises(ArgumentError, match=r"^explain: 'Zed' is not a constant of type 'person'$"):
        reasoner.explain(result, "Cancer(Zed)")
    with pytest.raises(ArgumentError, match=r"^margins: unknown predicate 'Nope'$"):
        reasoner.run(RULES, queries=["Cancer"], margins=["Nope"])
    with pytest.raises(ArgumentError, match="looks like a file name"):
        reasoner.run("rules.mln", queries=["Cancer"])
    with pytest.raises(ArgumentError, match="^time_limit must be a positive number of seconds$"):
        reasoner.run(RULES, queries=["Cancer"], time_limit=0)
    with pytest.raises(RuleError) as syntax:
        reasoner.run("Smokes(person)\n1 Smokes(x", queries=["Smokes"])
    assert isinstance(syntax.value, ValueError) and syntax.value.diagnostics[0].span.line == 2
    with pytest.raises(OSError) as missing:
        reasoner.run(tmp_path / "missing.mln", queries=["Smokes"])
    assert isinstance(missing.value, RuleFileError) and str(missing.value).endswith("no such rule file or directory")
    with pytest.raises(TypeError):
        reasoner.run([3], queries=["Smokes"])  # type: ignore[list-item]
    for error in (caught.value, syntax.value, missing.value):
        assert isinstance(error, ReasonerError) and "--" not in str(error)


def test_limits_are_validated_and_name_the_argument() -> None:
    with pytest.raises(ArgumentError, match="^max_groundings must be at least 1$"):
        Limits(max_groundings=0)
    with pytest.raises(ArgumentError, match="^memory_limit must be at least 64 MiB"):
        Limits(memory_limit=1000)
    with pytest.raises(ArgumentError, match="unknown limit 'max_rows'"):
        Limits().replaced(max_rows=3)
    assert Limits(max_groundings=1000, memory_limit=2**30).grounding_budget == 1000
    assert Limits(memory_limit=2**30).grounding_budget == 2**30 // 256


def test_rule_file_limits_are_arguments_with_positioned_errors(tmp_path: Path) -> None:
    domain = "person = {" + ", ".join(f"P{i}" for i in range(10_000)) + "}\nSmokes(person)\n"
    assert len(reasoner.check(domain).constants["person"]) == 10_000  # passes the default limits
    with pytest.raises(RuleError) as caught:
        reasoner.parse(domain, limits=Limits(max_statement_tokens=20_000))
    assert "statement has more than 20,000 tokens" in caught.value.render()
    assert all(len(line) < 200 for line in caught.value.render().splitlines())  # not the 88 KB line
    with pytest.raises(RuleError, match="line is"):
        reasoner.parse(domain, limits=Limits(max_line_length=10_000))
    with pytest.raises(RuleError, match="range has more than 10 constants"):
        reasoner.parse("t = {1, ..., 11}\n", limits=Limits(max_range=10))
    with pytest.raises(RuleError, match="nested deeper than 3 levels"):
        reasoner.parse("P(t)\n1 !!!!P(x)\n", limits=Limits(max_nesting=3))
    big = tmp_path / "big.mln"
    big.write_text(domain, encoding="utf-8")
    with pytest.raises(LimitError, match=r"rule file is [\d,]+ bytes; the limit is 1,000 \(max_rule_bytes\)"):
        reasoner.parse(big, limits=Limits(max_rule_bytes=1_000))
    assert reasoner.parse("P(t)\n1 !!!!P(x)\n").statements  # the next call has the default limits again


def test_the_memory_watchdog_stops_its_thread_and_restores_the_signal() -> None:
    import signal

    before = signal.getsignal(signal.SIGUSR1)
    threads = set(threading.enumerate())
    with MemoryWatchdog(2**50, interval=0.01) as watchdog:
        assert watched_memory_limit() == 2**50
        assert any(thread.name == "reasoner-memory-limit" for thread in threading.enumerate())
    assert set(threading.enumerate()) <= threads and watched_memory_limit() is None
    assert signal.getsignal(signal.SIGUSR1) == before and not watchdog.reached


def test_a_library_error_raised_after_the_limit_was_passed_is_the_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """The watchdog's signal can land inside a library call (DuckDB raises 'Query interrupted'):
    leaving the watchdog turns that error into the limit's. Watched from another thread (no
    signal), so the library error is raised here, after the limit was seen."""
    from reasoner import limits

    monkeypatch.setattr(limits, "_reached", None)  # the process-wide record of a reached limit, restored after
    raised: list[BaseException] = []

    def watched() -> None:
        try:
            with MemoryWatchdog(1, interval=0.01) as watchdog:  # 1 byte: passed at the first look
                while not watchdog.reached:
                    threading.Event().wait(0.01)
                raise RuntimeError("Query interrupted")
        except BaseException as error:  # noqa: BLE001 - recorded for the assertions
            raised.append(error)

    thread = threading.Thread(target=watched)
    thread.start()
    thread.join(timeout=30)
    assert len(raised) == 1 and isinstance(raised[0], LimitError), raised
    assert "the memory limit" in str(raised[0]) and isinstance(raised[0].__cause__, RuntimeError)
    with pytest.raises(ValueError, match="not the limit"), MemoryWatchdog(2**60):  # a limit not passed
        raise ValueError("not the limit")


@pytest.mark.slow
def test_the_memory_watchdog_stops_a_run_past_its_limit() -> None:
    """In a fresh process: a limit below what is already resident stops the run at once."""
    code = (
        "import reasoner\n"
        "try:\n"
        f"    reasoner.run({RULES!r}, queries=['Cancer'], limits=reasoner.Limits(memory_limit=64 * 2**20))\n"
        "except reasoner.LimitError as error:\n"
        "    print('stopped:', error)\n"
    )
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=environment)
    assert done.stdout.startswith("stopped: the memory limit (0.06 GiB, memory_limit) was reached"), done.stderr
