"""The ``reason`` command end to end, through a subprocess (``python -m reasoner``).

Starting the engine costs a second or two of imports, so the runs of this
module are started together, in threads, the first time a test needs one;
each test then reads its run's result.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from support import GOLDEN, REPOSITORY, run_reason

from reasoner.cli import main

Reason = Callable[..., subprocess.CompletedProcess[str]]
Runs = Callable[[str], subprocess.CompletedProcess[str]]

EXAMPLE_SMOKE = REPOSITORY / "examples" / "tuffy-smoke"
SHARED_SMOKE = Path("/work/shared/peers/tuffy-smoke")
EXPLAIN = GOLDEN / "explain"
ERRORS = GOLDEN / "errors"

SMOKE_ARGS = ["prog.mln", "evidence.db", "--query-file", "query.db"]
SMOKE_JSON = [*SMOKE_ARGS, "--json", "--no-timings", "--explain", "Cancer(Bob)"]

UNSATISFIABLE_RULES = """\
Smokes(person)
Cancer(person)
Friends(person, person)
Smokes(x) => Cancer(x).
Friends(x, y) ^ Smokes(x) => !Cancer(y).
1 Cancer(x)
"""

BOUND_RULES = """\
// Evidence from a CSV file and a parquet file.
Person(person)
Smokes(person)
Friends(person, person)
Cancer(person)
bind Person(name) from people
bind Smokes("name") from people where smoker = 1 and @row >= 1
bind Friends(a, b) from friends where weight > 0.5
1.5 Smokes(x) => Cancer(x)
0.4 Friends(x, y) ^ Cancer(x) => Cancer(y)
-1 Cancer(x)
"""


@dataclass(frozen=True)
class Command:
    args: tuple[str, ...]
    cwd: Path


def _write_unsatisfiable(folder: Path) -> None:
    (folder / "rules.mln").write_text(UNSATISFIABLE_RULES)
    (folder / "evidence.db").write_text("Smokes(Anna)\nFriends(Anna, Anna)\nFriends(Bob, Anna)\n")


def _write_bound(folder: Path) -> None:
    (folder / "rules.mln").write_text(BOUND_RULES)
    people = pd.DataFrame({"name": ["Anna", "Bob", "Chris", "Dora"], "smoker": [1, 0, 0, 1]})
    people.to_csv(folder / "people.csv", index=False)
    friends = pd.DataFrame({"a": ["Anna", "Bob", "Dora"], "b": ["Bob", "Chris", "Chris"], "weight": [0.9, 0.2, 0.7]})
    friends.to_parquet(folder / "links.parquet", index=False)


def _commands(tmp: Path) -> dict[str, Command]:
    unsatisfiable = tmp / "unsatisfiable"
    bound = tmp / "bound"
    for folder, write in ((unsatisfiable, _write_unsatisfiable), (bound, _write_bound)):
        folder.mkdir()
        write(folder)
    (tmp / "notes.txt").write_text("not an input\n")
    rules = str(EXAMPLE_SMOKE / "prog.mln")
    evidence = str(EXAMPLE_SMOKE / "evidence.db")
    commands = {
        "smoke json": Command(tuple(SMOKE_JSON), EXAMPLE_SMOKE),
        # From the shared folder when it is there: Tuffy's files as published, run unchanged.
        "smoke json again": Command(tuple(SMOKE_JSON), SHARED_SMOKE if SHARED_SMOKE.is_dir() else EXAMPLE_SMOKE),
        "smoke json workers 2": Command((*SMOKE_JSON, "--workers", "2"), EXAMPLE_SMOKE),
        "smoke explain text": Command((*SMOKE_ARGS, "--explain", "Cancer(Bob)"), EXAMPLE_SMOKE),
        "unsatisfiable": Command(("rules.mln", "evidence.db", "--query", "Cancer"), unsatisfiable),
        "bound": Command(
            ("rules.mln", "people.csv", "--table", "friends=links.parquet")
            + ("--query", "Cancer", "--json", "--explain", "Cancer(Anna)"),
            bound,
        ),
        "check ok": Command(("check", rules), tmp),
        "check failing": Command(("check", "rules.mln", "--query", "Smokes,Cancr"), ERRORS / "query_undeclared"),
        # every kind of bad input or usage: exit code 2, a message, no traceback
        "bad: no arguments": Command((), tmp),
        "bad: missing file": Command(("missing.mln",), tmp),
        "bad: missing evidence": Command((rules, "missing.db", "--query", "Cancer"), tmp),
        "bad: a table and no query": Command((rules, "notes.txt"), tmp),
        "bad: --table without =": Command((rules, evidence, "--table", "friends"), tmp),
        "bad: --table missing file": Command((rules, evidence, "--table", "friends=nowhere.csv"), tmp),
        "bad: --query name": Command((rules, evidence, "--query", "Can cer"), tmp),
        "bad: --workers 0": Command((rules, evidence, "--query", "Cancer", "--workers", "0"), tmp),
        "bad: --workers x": Command((rules, evidence, "--query", "Cancer", "--workers", "x"), tmp),
        "bad: unknown option": Command((rules, "--frobnicate"), tmp),
        "bad: check without rules": Command(("check",), tmp),
        "bad: only evidence": Command((evidence,), tmp),
    }
    return commands


BAD_INPUTS = [
    "bad: no arguments",
    "bad: missing file",
    "bad: missing evidence",
    "bad: a table and no query",
    "bad: --table without =",
    "bad: --table missing file",
    "bad: --query name",
    "bad: --workers 0",
    "bad: --workers x",
    "bad: unknown option",
    "bad: check without rules",
    "bad: only evidence",
    "check failing",
]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, reason: Reason) -> Iterator[Runs]:
    """``runs(name)``: the finished run of a command of ``_commands``, all started at once."""
    commands = _commands(tmp_path_factory.mktemp("cli"))
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures: dict[str, Future[subprocess.CompletedProcess[str]]] = {
            name: pool.submit(reason, command.args, command.cwd, 120) for name, command in commands.items()
        }

        def result(name: str) -> subprocess.CompletedProcess[str]:
            return futures[name].result()

        yield result


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr
    assert result.returncode == 0, result.stderr
    return result.stdout


# -- Tuffy's smokers program, unchanged ---------------------------------------------


def test_examples_copy_of_tuffy_smoke_is_unchanged() -> None:
    if not SHARED_SMOKE.is_dir():
        pytest.skip("/work/shared/peers/tuffy-smoke is absent; the copy in examples/ is tested on its own")
    for name in ("prog.mln", "evidence.db", "query.db"):
        assert (EXAMPLE_SMOKE / name).read_bytes() == (SHARED_SMOKE / name).read_bytes(), name


@pytest.mark.slow
def test_tuffy_smoke_runs_and_reports_every_query_atom(runs: Runs) -> None:
    blocks = _ok(runs("smoke explain text")).split("\n\n")
    assert blocks[0].splitlines()[:2] == ["status: optimal", "cost: 0"]
    atoms = {line.split()[0]: line.split()[1] for line in blocks[1].splitlines()}
    # Smokes is unstarred, so open world (Tuffy): the smokers' friends may smoke at no cost.
    assert atoms == {
        "Cancer(Anna)": "true",
        "Cancer(Bob)": "true",
        "Cancer(Edward)": "true",
        "Cancer(Frank)": "true",
        "Cancer(Gary)": "false",
        "Cancer(Helen)": "false",
    }


@pytest.mark.slow
def test_tuffy_smoke_from_shared_folder_gives_the_same_output(runs: Runs) -> None:
    if not SHARED_SMOKE.is_dir():
        pytest.skip("/work/shared/peers/tuffy-smoke is absent")
    output = json.loads(_ok(runs("smoke json again")))
    assert output["status"] == "optimal"
    assert len(output["query_atoms"]) == 6
    assert _ok(runs("smoke json again")) == _ok(runs("smoke json"))


# -- JSON output ---------------------------------------------------------------------------


@pytest.mark.slow
def test_json_output_shape(runs: Runs) -> None:
    output = json.loads(_ok(runs("smoke json")))
    assert list(output) == ["status", "cost", "query_atoms", "margins", "stats", "explanations"]
    assert output["status"] == "optimal"
    assert output["cost"] == 0
    atoms = output["query_atoms"]
    assert sorted(atoms) == [f"Cancer({name})" for name in ("Anna", "Bob", "Edward", "Frank", "Gary", "Helen")]
    assert all(isinstance(value, bool) for value in atoms.values())
    assert set(output["margins"]) == set(atoms)
    assert output["margins"]["Cancer(Anna)"] == 0.5
    assert output["margins"]["Cancer(Bob)"] == 0.4
    assert output["margins"]["Cancer(Gary)"] == 0  # a tie
    stats = output["stats"]
    for key in ("ground_formulas", "groundings", "unknown_atoms", "clauses", "variables", "components"):
        assert isinstance(stats[key], int) and stats[key] >= 0, key
    assert "seconds" not in stats  # --no-timings


def test_same_run_twice_is_byte_identical(runs: Runs) -> None:
    assert _ok(runs("smoke json")) == _ok(runs("smoke json again"))


def test_two_workers_give_the_same_output_as_one(runs: Runs) -> None:
    assert _ok(runs("smoke json workers 2")) == _ok(runs("smoke json"))


# -- explanations (golden) --------------------------------------------------------------------


def test_explain_text_golden(runs: Runs, golden: Callable[[Path, str], None]) -> None:
    golden(EXPLAIN / "tuffy-smoke-cancer-bob.txt", _ok(runs("smoke explain text")))


def test_explain_json_golden(runs: Runs, golden: Callable[[Path, str], None]) -> None:
    output = _ok(runs("smoke json"))
    explanation = json.loads(output)["explanations"]
    assert [item["atom"] for item in explanation] == ["Cancer(Bob)"]
    golden(EXPLAIN / "tuffy-smoke-cancer-bob.json", output)


# -- tables ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_csv_and_parquet_bindings_end_to_end(runs: Runs) -> None:
    output = json.loads(_ok(runs("bound")))
    assert output["status"] == "optimal"
    # Anna and Dora smoke (CSV); Anna-Bob and Dora-Chris are friends (parquet, weight > 0.5),
    # which is too weak to beat the prior against cancer.
    assert output["query_atoms"] == {
        "Cancer(Anna)": True,
        "Cancer(Bob)": False,
        "Cancer(Chris)": False,
        "Cancer(Dora)": True,
    }
    proof = output["explanations"][0]
    assert proof["atom"] == "Cancer(Anna)" and proof["value"] is True
    sources = {atom["atom"]: atom["source"] for item in proof["supporting"] for atom in item["atoms"]}
    assert sources["Smokes(Anna)"] == "people.csv row 1"


# -- exit codes and messages ----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", BAD_INPUTS)
def test_bad_input_exits_2_with_a_message_and_no_traceback(name: str, runs: Runs) -> None:
    result = runs(name)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert "error:" in result.stderr.splitlines()[0]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("bad: missing file", "error: missing.mln: no such file or directory\n"),
        (
            "bad: a table and no query",
            "error: no query: name the query predicates with --query P,Q or --query-file FILE\n",
        ),
        ("bad: --table without =", "error: --table friends: expected NAME=PATH\n"),
        ("bad: --query name", "error: --query: 'Can cer' is not a predicate name\n"),
        ("bad: --workers 0", "error: --workers must be at least 1\n"),
    ],
)
def test_usage_messages(name: str, message: str, runs: Runs) -> None:
    assert runs(name).stderr == message


def test_golden_error_is_the_same_through_a_subprocess(runs: Runs) -> None:
    assert runs("check failing").stderr == (ERRORS / "query_undeclared" / "expected.txt").read_text()


def test_unsatisfiable_exits_3_and_prints_the_core(runs: Runs) -> None:
    result = runs("unsatisfiable")
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout.startswith("status: unsatisfiable\n")
    assert "the hard formulas cannot all hold" in result.stdout
    assert "Smokes(x) => Cancer(x).    (rules.mln:4)" in result.stdout
    assert "Friends(x, y) ^ Smokes(x) => !Cancer(y).    (rules.mln:5)" in result.stdout
    assert "Smokes(Anna) = true  [evidence.db:1]" in result.stdout
    assert "Friends(Anna,Anna) = true  [evidence.db:2]" in result.stdout


# In-process (the same ``main`` as the command, without a second start-up cost).


def test_unsatisfiable_json_has_the_core(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _write_unsatisfiable(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert main(["rules.mln", "evidence.db", "--query", "Cancer", "--json"]) == 3
    output = json.loads(capsys.readouterr().out)
    assert output["status"] == "unsatisfiable"
    assert "query_atoms" not in output
    assert sorted(item["location"] for item in output["unsat_core"]) == ["rules.mln:4", "rules.mln:5"]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--query", "Cancr"], "--query:1:1: error: query predicate 'Cancr' is not declared\n"),
        (
            ["--query", "Cancer", "--explain", "Cancer(Zed)"],
            "error: --explain: 'Zed' is not a constant of type 'person'\n",
        ),
        (
            ["--query", "Cancer", "--explain", "Cancer"],
            "error: --explain: 'Cancer' is not an atom such as 'Cancer(Anna)'\n",
        ),
        (["--query", "Cancer", "--explain", "Nope(Bob)"], "error: --explain: unknown predicate 'Nope'\n"),
        (
            ["--query", "Cancer", "--explain", "Cancer(Bob, Anna)"],
            "error: --explain: 'Cancer' takes 1 argument, got 2\n",
        ),
        (["--query", "Cancer", "--margins", "Nope"], "error: --margins: unknown predicate 'Nope'\n"),
        (["--query", "Cancer", "--time-limit", "0"], "error: --time-limit must be a positive number of seconds\n"),
    ],
)
def test_bad_options_after_parsing(
    arguments: list[str], message: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(EXAMPLE_SMOKE)
    assert main(["prog.mln", "evidence.db", *arguments]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(message), captured.err


def test_check_ok(runs: Runs) -> None:
    assert _ok(runs("check ok")) == "ok: 1 file(s), 3 predicates, 3 formulas\n"


def test_python_dash_m_and_console_script_agree(tmp_path: Path) -> None:
    script = shutil.which("reason", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("the 'reason' console script is not installed next to this Python")
    result = subprocess.run([script, "missing.mln"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stderr) == (2, "error: missing.mln: no such file or directory\n")


def test_a_subcommand_is_chosen_by_name_not_by_a_path_that_exists(tmp_path: Path) -> None:
    (tmp_path / "check").mkdir()  # a folder named like the subcommand, in the current directory
    rules = tmp_path / "ok.mln"
    rules.write_text("Smokes(person)\n1.5 Smokes(x)\n", encoding="utf-8")
    done = run_reason(["check", rules], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok: 1 file(s)")
