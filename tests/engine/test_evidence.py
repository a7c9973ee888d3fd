"""Evidence that contradicts itself is refused with both places that say it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from reasoner.errors import EvidenceError
from reasoner.evidence import MemoryTable, distinct_by_codes, is_coded, isin, isin_rows, load_evidence
from reasoner.pipeline import check


def test_an_atom_both_true_and_false_names_where_each_is_said(tmp_path: Path) -> None:
    rules = tmp_path / "rules.mln"
    rules.write_text("P(t)\nQ(t)\nbind P(x) from people\n1 P(x) => Q(x)\n", encoding="utf-8")
    db = tmp_path / "facts.db"
    db.write_text("P(Bob)\n!P(Anna)\n", encoding="utf-8")
    people = MemoryTable.of(pd.DataFrame({"x": pd.Series(["Carl", "Anna"], dtype="str")}), "people.csv")
    with pytest.raises(EvidenceError) as raised:
        load_evidence(check([rules]), [db], {"people": people})
    assert str(raised.value) == (
        f"evidence says both P(Anna) (people.csv row 2) and !P(Anna) ({db}:2); "
        "an atom is either true or false: remove one of them"
    )


def test_a_proposition_both_true_and_false_names_both_lines(tmp_path: Path) -> None:
    rules = tmp_path / "rules.mln"
    rules.write_text("Rain()\nWet()\n1 Rain() => Wet()\n", encoding="utf-8")
    db = tmp_path / "facts.db"
    db.write_text("Rain()\n!Rain()\n", encoding="utf-8")
    with pytest.raises(EvidenceError, match=rf"Rain\(\) \({db}:1\) and !Rain\(\) \({db}:2\)"):
        load_evidence(check([rules]), [db])


@pytest.mark.parametrize(
    "ages",
    [
        pd.Series([40, None, 20, 31, 30], dtype="Int64"),
        pd.Series([40.0, float("nan"), 20.5, 31.0, 30.0]),
        pd.Series([40, 0, 20, 31, 30], dtype="int64"),
        pd.Series(["40", "x", "20", "31", "30"], dtype="str"),
    ],
)
def test_conditions_on_text_and_numbers_keep_the_rows_they_say(tmp_path: Path, ages: pd.Series) -> None:
    # Text compared by Arrow, numbers read as they are: a missing value is equal to nothing and
    # unequal to nothing, a value that is no number compares with nothing.
    rules = tmp_path / "rules.mln"
    rules.write_text(
        "P(t)\nQ(t)\nR(t)\nS(t)\nT(t)\n"
        'bind P(x) from people where city = "Oslo"\n'
        'bind Q(x) from people where city != "Oslo"\n'
        'bind R(x) from people where city in ("Oslo", "Rome")\n'
        "bind S(x) from people where age > 30\n"
        "bind T(x) from people where age <= 30\n"
        "1 P(x) ^ Q(x) ^ R(x) ^ S(x) => T(x)\n",
        encoding="utf-8",
    )
    city = pd.Series(["Oslo", None, "Rome", "Paris", "Oslo"], dtype="str")
    people = pd.DataFrame({"x": pd.Series(list("abcde"), dtype="str"), "city": city})
    people["age"] = ages
    evidence = load_evidence(check([rules]), [], {"people": MemoryTable(people, "people.csv", "")})
    found = {name: evidence.relations[name].frame["a0"].tolist() for name in "PQRST"}
    low = ["c", "e"] if ages.dtype.kind != "i" or ages.dtype == "Int64" else ["b", "c", "e"]
    assert found == {"P": ["a", "e"], "Q": ["c", "d"], "R": ["a", "c", "e"], "S": ["a", "d"], "T": low}


@pytest.mark.parametrize("rows", [3, 3000])  # a few rows (checked as Python tuples) and many (by pandas)
def test_an_atom_bound_twice_is_kept_once_with_its_first_source(tmp_path: Path, rows: int) -> None:
    rules = tmp_path / "rules.mln"
    rules.write_text(
        "P(t, u)\nQ(t)\nbind P(x, y) from first\nbind P(x, y) from second\n1 P(x, y) => Q(x)\n", encoding="utf-8"
    )
    names = pd.Series([f"n{i}" for i in range(rows)], dtype="str")
    first = pd.DataFrame({"x": names, "y": [0.5 + i for i in range(rows)]})
    second = pd.DataFrame({"x": names[::-1].reset_index(drop=True), "y": [0.5 + i for i in range(rows)][::-1]})
    second.loc[0, "y"] = 0.25  # one atom of its own
    tables = {"first": MemoryTable(first, "first", ""), "second": MemoryTable(second, "second", "")}
    evidence = load_evidence(check([rules]), [], tables)
    frame = evidence.relations["P"].frame
    assert len(frame) == rows + 1
    assert frame[["a0", "a1"]].drop_duplicates().shape[0] == rows + 1
    labels = [evidence.sources[source].path for source in frame["source"]]
    assert labels == ["first"] * rows + ["second"]
    assert frame["row"].tolist() == [*range(1, rows + 1), 1]


def test_bound_text_is_coded_in_one_dictionary_and_compared_by_code(tmp_path: Path) -> None:
    # Every bound text column (of any table) holds codes into one dictionary sorted by code point;
    # membership and distinctness read the codes and agree with the values.
    rules = tmp_path / "rules.mln"
    rules.write_text(
        "P(t, u)\nQ(t)\nbind P(x, y) from first\nbind Q(x) from second\n1 P(x, y) => Q(x)\n", encoding="utf-8"
    )
    first = pd.DataFrame({"x": pd.Series(["b", "é", "a", "b"], dtype="str"), "y": pd.Series(list("wxyw"), dtype="str")})
    second = pd.DataFrame({"x": pd.Series(["é", "z", "a"], dtype="str")})
    tables = {"first": MemoryTable(first, "first", ""), "second": MemoryTable(second, "second", "")}
    evidence = load_evidence(check([rules]), [], tables)
    p, q = evidence.relations["P"].frame, evidence.relations["Q"].frame
    assert is_coded(p["a0"]) and is_coded(p["a1"]) and p["a0"].dtype == q["a0"].dtype
    assert list(q["a0"].dtype.categories) == sorted({"b", "é", "a", "w", "x", "y", "z"})
    assert p["a0"].tolist() == ["b", "é", "a"] and p["a1"].tolist() == ["w", "x", "y"]  # the repeat dropped
    assert isin(p["a0"], q["a0"]).tolist() == [False, True, True]
    assert isin(q["a0"], p["a0"]).tolist() == [True, False, True]
    assert distinct_by_codes(p, ["a0", "a1"]) and distinct_by_codes(p, ["a0"])
    repeated = pd.concat([p, p.iloc[:1]], ignore_index=True)
    assert is_coded(repeated["a0"]) and not distinct_by_codes(repeated, ["a0", "a1"])


def test_a_missing_text_argument_skips_its_row_and_codes_the_rest(tmp_path: Path) -> None:
    rules = tmp_path / "rules.mln"
    rules.write_text("P(t)\nQ(t)\nbind P(x) from people\n1 P(x) => Q(x)\n", encoding="utf-8")
    people = pd.DataFrame({"x": pd.Series(["b", None, "a", "b"], dtype="str")})
    evidence = load_evidence(check([rules]), [], {"people": MemoryTable(people, "people", "")})
    frame = evidence.relations["P"].frame
    assert is_coded(frame["a0"]) and frame["a0"].tolist() == ["b", "a"] and frame["row"].tolist() == [1, 3]
    assert list(frame["a0"].dtype.categories) == ["a", "b"] and list(evidence.skipped.values()) == [1]


def test_bound_columns_keep_their_dtypes_and_rows(tmp_path: Path) -> None:
    """A whole object column of strings stays Python values (not inferred as text), numbers stay int64."""
    rules = tmp_path / "rules.mln"
    rules.write_text("P(t, n)\nQ(t)\nbind P(x, n) from people\n1 P(x, n) => Q(x)\n", encoding="utf-8")
    people = pd.DataFrame({"x": pd.Series(["b", "c", "a"], dtype=object), "n": [1, 2, 3]})
    evidence = load_evidence(check([rules]), [], {"people": MemoryTable(people, "people", "")})
    frame = evidence.relations["P"].frame
    assert frame["a0"].dtype == object and frame["a1"].dtype == "int64" and frame["row"].tolist() == [1, 2, 3]
    assert frame["a0"].tolist() == ["b", "c", "a"] and frame["a1"].tolist() == [1, 2, 3]
    assert list(frame.index) == [0, 1, 2] and list(frame.columns) == ["a0", "a1", "truth", "source", "row"]


def test_rows_of_coded_columns_are_looked_up_together(tmp_path: Path) -> None:
    # ``isin_rows`` (several coded columns at once) agrees with membership of the rows' values; a
    # column that is not coded, or of another dictionary, leaves it to pandas (None).
    rules = tmp_path / "rules.mln"
    rules.write_text(
        "P(t, t)\nR(t, t)\nN(t, n)\nbind P(x, y) from first\nbind R(x, y) from second\nbind N(x, k) from first\n"
        "1 P(x, y) => R(x, y)\n",
        encoding="utf-8",
    )
    first = pd.DataFrame({"x": pd.Series(list("abcab"), dtype="str"), "y": pd.Series(list("bcaaa"), dtype="str"),
                          "k": [1, 2, 3, 4, 5]})
    second = pd.DataFrame({"x": pd.Series(list("acbz"), dtype="str"), "y": pd.Series(list("aabz"), dtype="str")})
    tables = {"first": MemoryTable(first, "first", ""), "second": MemoryTable(second, "second", "")}
    evidence = load_evidence(check([rules]), [], tables)
    p, r = evidence.relations["P"].frame, evidence.relations["R"].frame
    found = isin_rows([p["a0"], p["a1"]], [r["a0"], r["a1"]])
    pairs = set(zip(r["a0"].tolist(), r["a1"].tolist(), strict=True))
    expected = [(x, y) in pairs for x, y in zip(p["a0"].tolist(), p["a1"].tolist(), strict=True)]
    assert found is not None and found.tolist() == expected and any(expected) and not all(expected)
    assert isin_rows([p["a1"], p["a0"]], [r["a0"], r["a1"]]).tolist() == [  # type: ignore[union-attr]
        (y, x) in pairs for x, y in zip(p["a0"].tolist(), p["a1"].tolist(), strict=True)
    ]
    numbers = evidence.relations["N"].frame
    assert isin_rows([p["a0"], numbers["a1"]], [r["a0"], r["a1"]]) is None
    assert isin_rows([p["a0"]], [pd.Series(p["a0"].tolist(), dtype="category")]) is None
    # the same texts in another order: codes that mean other texts (an unordered dtype compares equal)
    reordered = r["a0"].cat.reorder_categories(list(r["a0"].dtype.categories)[::-1])
    assert isin_rows([p["a0"]], [reordered]) is None
