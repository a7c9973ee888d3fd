"""Fuzzing the rule parser and checker, and the documented limits on pathological rule files.

Any text yields either a checked program or a ``RuleError`` whose diagnostics are positioned
(``file:line:col: error: ...``, the line inside the text): never another exception, never a
hang. Inputs: text drawn from the grammar's alphabet, and mutations (insertions, deletions,
duplications, moves, shuffled lines) of the real rule files of the repository and of a Tuffy
program. Each example runs under a per-example time limit (SIGALRM).
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import REPOSITORY

from reasoner.check import check_program
from reasoner.errors import LimitError, RuleError, RuleFileError
from reasoner.limits import MAX_LINE_LENGTH, MAX_NESTING, MAX_RULE_FILE_BYTES, Limits
from reasoner.parse import parse_program, parse_text

ROOT = REPOSITORY
CORPUS = sorted(
    [
        *(ROOT / "rules").glob("*.mln"),
        *(ROOT / "examples").rglob("*.mln"),
        *(ROOT / "tests" / "golden").rglob("*.mln"),
        *(ROOT / "tests" / "data" / "fuzz").glob("*.mln"),
    ]
)
TEXTS = [path.read_text(encoding="utf-8") for path in CORPUS]
PIECES = [
    *"()!^v=>,.{}@*\"\\ \n\t\r:<#/-+e0123456789abcxyzABCXYZ_é\x00\u2028",
    "=>", "<=>", "!=", "<=", ">=", "...", ":-", "EXIST ", "FORALL ", "bind ", " from ", " where ", " and ",
    " in ", "@row", "//", "/*", "*/", "1.5 ", "-2 ", "@5 ", "1e309 ", "NaN ", "inf ", '"a b"', "P(x)", "Q(x, y)",
    "x = {A, B}\n", "t = {1, ..., 3}\n", "P(t)\n", "*E(t, t)\n",
]
SECONDS_PER_EXAMPLE = 10


class _Hang(Exception):
    pass


@contextmanager
def _deadline(seconds: int) -> Iterator[None]:
    def alarm(signum: int, frame: object) -> None:
        raise _Hang(f"no result within {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


_HEAD = re.compile(r"(?P<file>[^\n]+?):(?P<line>\d+):(?P<column>\d+): (error|warning): \S")


def assert_result_or_positioned_error(text: str, file: str = "fuzz.mln") -> None:
    """Parse and check ``text``: a program, or positioned diagnostics inside the text."""
    with _deadline(SECONDS_PER_EXAMPLE):
        try:
            check_program(parse_text(text, file))
        except RuleError as error:
            assert error.diagnostics, "a RuleError without diagnostics"
            lines = max(1, len(text.splitlines()))
            for diagnostic in error.diagnostics:
                span = diagnostic.span
                assert span.file == file
                assert 1 <= span.line <= lines + 1 and span.column >= 1, diagnostic.render()
                assert _HEAD.match(diagnostic.render()), diagnostic.render()
        except LimitError as error:
            assert re.match(rf"{re.escape(file)}:\d+:\d+: ", str(error)), str(error)


def _mutate(text: str, edits: list[tuple[int, int, int, int, int]]) -> str:
    for operation, start, length, where, piece in edits:
        i = start % (len(text) + 1)
        j = min(len(text), i + length)
        if operation == 0:
            text = text[:i] + PIECES[piece % len(PIECES)] + text[i:]
        elif operation == 1:
            text = text[:i] + text[j:]
        elif operation == 2:
            text = text[:i] + text[i:j] * 2 + text[j:]
        elif operation == 3:
            k = where % (len(text) + 1)
            text = text[:k] + text[i:j] + text[k:]
        else:
            lines = text.split("\n")
            k = where % len(lines)
            lines[k], lines[-1 - k] = lines[-1 - k], lines[k]
            text = "\n".join(lines)
    return text


POSITION = st.integers(0, 10_000)
EDIT = st.tuples(st.integers(0, 4), POSITION, st.integers(0, 40), POSITION, st.integers(0, 200))
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


def test_the_seed_corpus_is_there() -> None:
    assert len(CORPUS) >= 20 and any(path.name == "tuffy-rc1000.mln" for path in CORPUS)
    for path, text in zip(CORPUS, TEXTS, strict=True):
        assert_result_or_positioned_error(text, str(path))


@pytest.mark.slow
@settings(FUZZ, max_examples=600)
@given(st.integers(0, len(TEXTS) - 1), st.lists(EDIT, min_size=1, max_size=8))
def test_mutated_rule_files_give_a_program_or_a_positioned_error(which: int, edits: list) -> None:
    assert_result_or_positioned_error(_mutate(TEXTS[which], edits))


@FUZZ
@given(st.lists(st.sampled_from(PIECES), max_size=60).map("".join))
def test_text_from_the_grammar_alphabet_gives_a_program_or_a_positioned_error(text: str) -> None:
    assert_result_or_positioned_error(text)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.text(max_size=200))
def test_any_unicode_text_gives_a_program_or_a_positioned_error(text: str) -> None:
    assert_result_or_positioned_error(text)


@pytest.mark.slow
@FUZZ
@given(st.lists(EDIT, min_size=1, max_size=4), st.integers(0, len(TEXTS) - 1))
def test_mutated_rule_files_in_a_directory_give_a_program_or_a_positioned_error(
    tmp_path_factory: pytest.TempPathFactory, edits: list, which: int
) -> None:
    """Through ``parse_program`` (files on disk), as the command line reads them."""
    folder = tmp_path_factory.mktemp("fuzz")
    (folder / "a.mln").write_text(_mutate(TEXTS[which], edits), encoding="utf-8")
    (folder / "b.mln").write_text(TEXTS[(which + 1) % len(TEXTS)], encoding="utf-8")
    with _deadline(SECONDS_PER_EXAMPLE):
        try:
            check_program(parse_program([folder]))
        except RuleError as error:
            assert all(d.span.file.endswith(".mln") and d.span.line >= 1 for d in error.diagnostics)
        except RuleFileError:  # e.g. no longer UTF-8 text
            pass


# -- regressions found by fuzzing and by the pathological inputs below ---------------------------


def parse_error(text: str, limits: Limits = Limits()) -> str:  # noqa: B008 (frozen)
    with pytest.raises(RuleError) as caught:
        check_program(parse_text(text, "p.mln", limits=limits))
    return caught.value.render()


def test_a_long_chain_of_implications_is_a_positioned_error_not_a_recursion_crash() -> None:
    # Was: "internal error: VisitError: ... maximum recursion depth exceeded".
    message = parse_error("P(t)\n1 " + " => ".join(["P(x)"] * 3000) + "\n")
    assert message.startswith("p.mln:2:") and f"formula nested deeper than {MAX_NESTING} levels" in message
    assert "split the formula into several" in message


@pytest.mark.parametrize(
    "body",
    [
        "!" * 5000 + "P(x)",
        "EXIST y " * 2000 + "P(y)",
        "(" * 5000 + "P(x)" + ")" * 5000,
        "!(" * 150 + "P(x)" + ")" * 150,
        " <=> ".join(["P(x)"] * 300),
    ],
    ids=["negations", "quantifiers", "parentheses", "negated-parentheses", "equivalences"],
)
def test_deep_nesting_of_every_kind_is_refused_at_the_line_where_it_happens(body: str) -> None:
    # Was "formula nested too deeply to parse" at line 1 (the wrong line) for '!' and EXIST.
    message = parse_error("P(t)\n\n1 " + body + "\n")
    assert message.startswith("p.mln:3:"), message
    assert f"formula nested deeper than {MAX_NESTING} levels" in message


def test_nesting_just_under_the_limit_runs_through_every_stage(tmp_path: Path) -> None:
    from reasoner.check import QueryPattern
    from reasoner.pipeline import run

    depth = MAX_NESTING // 2 - 1
    text = "t = {A, B}\nP(t)\n1 " + "!(" * depth + "P(x)" + ")" * depth + "\n"
    path = tmp_path / "deep.mln"
    path.write_text(text)
    result = run([path], queries=[QueryPattern("P")])
    assert result.solution.status == "optimal"


def test_a_10_megabyte_line_is_refused_before_parsing() -> None:
    started = time.perf_counter()
    message = parse_error("P(t)\nQ(t)\n1 P(x) v " + " v ".join(["Q(x)"] * 2_000_000) + "\n")
    assert time.perf_counter() - started < 5
    assert message.startswith("p.mln:3:1: error: line is 14,000,006 characters long")
    assert f"the limit is {MAX_LINE_LENGTH:,}" in message


def test_a_statement_of_10000_variables_is_refused_with_what_to_do() -> None:
    atoms = " v\n".join(f"R(x{i}, x{i + 1})" for i in range(10_000))
    message = parse_error(f"R(t, t)\n1 ({atoms})\n", Limits(max_statement_tokens=20_000))
    assert "statement has more than 20,000 tokens" in message
    assert "split it into several formulas" in message


def test_a_huge_rule_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "big.mln"
    path.write_text("P(t)\n" + "1 P(x)\n" * (MAX_RULE_FILE_BYTES // 7 + 1))
    with pytest.raises(LimitError, match=r"big.mln: rule file is [\d,]+ bytes; the limit is"):
        parse_program([path])


@pytest.mark.slow
def test_a_formula_whose_groundings_explode_is_refused_before_grounding(tmp_path: Path) -> None:
    from reasoner.check import QueryPattern
    from reasoner.limits import Limits
    from reasoner.pipeline import run

    path = tmp_path / "wide.mln"
    path.write_text("t = {A, B}\nR(t, t)\n1 " + " v ".join(f"R(x{i}, x{i + 1})" for i in range(40)) + "\n")
    started = time.perf_counter()
    with pytest.raises(LimitError, match=r"wide.mln:3:1: formula has more than [\d,]+ groundings .*max_groundings"):
        run([path], queries=[QueryPattern("R")])
    assert time.perf_counter() - started < 60
    small = tmp_path / "small.mln"
    small.write_text("t = {1, ..., 40}\nR(t, t)\n1 R(x, y) v R(y, x)\n")
    expected = r"small.mln:3:1: formula has more than 1,000 groundings .*\(limit 1,000\)"
    with pytest.raises(LimitError, match=expected):
        run([small], queries=[QueryPattern("R")], limits=Limits(max_groundings=1000))


def test_an_equivalence_chain_is_refused_before_its_normal_form_is_built(tmp_path: Path) -> None:
    from reasoner.check import QueryPattern
    from reasoner.pipeline import run

    path = tmp_path / "equiv.mln"
    path.write_text("t = {A, B}\nP(t)\n1 " + " <=> ".join(["P(x)"] * 60) + "\n")
    with pytest.raises(LimitError, match=r"equiv.mln:3:1: formula expands to [\d,]+ literals .*limit 1,000,000"):
        run([path], queries=[QueryPattern("P")])
