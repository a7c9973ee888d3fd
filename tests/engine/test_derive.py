"""Derived predicates (Datalog rules) against an independent evaluation in plain Python sets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reasoner.constants import order_key
from reasoner.evidence import MemoryTable, is_coded, load_evidence
from reasoner.pipeline import check

PROGRAM = """\
Edge(node, node)
Mark(node)
Len(node, node, num)
Hop(node, node)
Near(node, node)
Lone(node)
Reach(node, node)
Hop(x, z) :- Edge(x, y), Edge(y, z), x != z.
Near(x, y) :- Len(x, y, d), d <= 2, Mark(x), Mark(y).
Lone(x) :- Mark(x), !Edge(x, x).
Reach(x, y) :- Edge(x, y).
Reach(x, z) :- Reach(x, y), Edge(y, z).
Mark(x) => Mark(x).
"""

NODES = ["A", "B", "C", "D", "E"]
pairs = st.tuples(st.sampled_from(NODES), st.sampled_from(NODES))


def _oracle(
    edges: set[tuple[str, str]], marks: set[str], lengths: set[tuple[str, str, int]]
) -> dict[str, set[tuple[object, ...]]]:
    hop = {(x, z) for x, y in edges for y2, z in edges if y == y2 and x != z}
    near = {(x, y) for x, y, d in lengths if d <= 2 and x in marks and y in marks}
    lone = {(x,) for x in marks if (x, x) not in edges}
    reach = set(edges)
    while True:
        more = reach | {(x, z) for x, y in reach for y2, z in edges if y == y2}
        if more == reach:
            break
        reach = more
    return {"Hop": hop, "Near": near, "Lone": lone, "Reach": reach}


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(
    st.sets(pairs, max_size=12),
    st.sets(st.sampled_from(NODES), min_size=1, max_size=5),
    st.sets(st.tuples(st.sampled_from(NODES), st.sampled_from(NODES), st.integers(0, 4)), max_size=10),
)
def test_derived_relations_are_the_least_fixpoint(
    tmp_path_factory,
    edges: set[tuple[str, str]],
    marks: set[str],
    lengths: set[tuple[str, str, int]],  # type: ignore[no-untyped-def]
) -> None:
    folder = tmp_path_factory.mktemp("derive")
    rules = folder / "program.mln"
    rules.write_text(PROGRAM, encoding="utf-8")
    facts = [f"Edge({x}, {y})" for x, y in sorted(edges)] + [f"Mark({x})" for x in sorted(marks)]
    facts += [f"Len({x}, {y}, {d})" for x, y, d in sorted(lengths)]
    db = folder / "facts.db"
    db.write_text("\n".join(facts) + "\n", encoding="utf-8")
    evidence = load_evidence(check([rules]), [db])
    expected = _oracle(edges, marks, lengths)
    for name, rows in expected.items():
        relation = evidence.relations.get(name)
        found = (
            set()
            if relation is None
            else {
                tuple(row)
                for row in relation.frame[[c for c in relation.frame.columns if c.startswith("a")]].itertuples(
                    index=False
                )
            }
        )
        assert found == rows, name
        if relation is not None:  # sorted by the canonical order, one row per atom
            listed = [
                tuple(row)
                for row in relation.frame[[c for c in relation.frame.columns if c.startswith("a")]].itertuples(
                    index=False
                )
            ]
            assert listed == sorted(listed) and len(listed) == len(set(listed)), name


def test_the_program_parses(tmp_path: Path) -> None:
    rules = tmp_path / "program.mln"
    rules.write_text(PROGRAM, encoding="utf-8")
    assert [rule.head.predicate for stratum in check([rules]).derived_strata for rule in stratum]


TABLES = PROGRAM.replace(
    "Mark(x) => Mark(x).\n",
    "Mark(x) => Mark(x).\n"
    "bind Edge(x, y) from edges\n"
    "bind Edge(x, y) from more_edges\n"
    "bind Len(x, y, d) from lengths\n",
)
mixed_nodes = st.sampled_from(["A", "B", "C", 1, 2])


def _table(rows: list[tuple[object, ...]], names: list[str], dtype: str | None) -> pd.DataFrame:
    frame = pd.DataFrame({name: [row[i] for row in rows] for i, name in enumerate(names)})
    for name in names[:2]:
        if dtype == "str" and all(isinstance(value, str) for value in frame[name]):
            frame[name] = frame[name].astype("str")
        elif all(isinstance(value, int) for value in frame[name]):
            frame[name] = frame[name].astype(np.int64)
        else:
            frame[name] = frame[name].astype(object)
    return frame


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(
    st.sets(st.tuples(mixed_nodes, mixed_nodes), max_size=10),
    st.sets(st.tuples(mixed_nodes, mixed_nodes), max_size=6),
    st.sets(mixed_nodes, min_size=1, max_size=5),
    st.sets(st.tuples(mixed_nodes, mixed_nodes, st.sampled_from([0, 1.5, 2, 3.25])), max_size=8),
)
def test_typed_table_columns_derive_as_python_values_do(
    tmp_path_factory,
    edges: set[tuple[object, object]],
    more: set[tuple[object, object]],
    marks: set[object],
    lengths: set[tuple[object, object, float]],  # type: ignore[no-untyped-def]
) -> None:
    """Text, int64 and object columns of one type, one predicate bound from two tables of
    different dtypes, a number column with floats and integers: the least fixpoint still."""
    folder = tmp_path_factory.mktemp("typed")
    rules = folder / "program.mln"
    rules.write_text(TABLES, encoding="utf-8")
    db = folder / "facts.db"
    db.write_text("".join(f"Mark({x})\n" for x in sorted(marks, key=str)), encoding="utf-8")
    tables = {
        "edges": MemoryTable.of(_table(sorted(edges, key=str), ["x", "y"], "str"), "edges"),
        "more_edges": MemoryTable.of(_table(sorted(more, key=str), ["x", "y"], None), "more_edges"),
        "lengths": MemoryTable.of(_table(sorted(lengths, key=str), ["x", "y", "d"], "str"), "lengths"),
    }
    evidence = load_evidence(check([rules]), [db], tables)
    canonical_lengths = {(x, y, int(d) if float(d).is_integer() else d) for x, y, d in lengths}
    expected = _oracle(edges | more, marks, canonical_lengths)  # type: ignore[arg-type]
    expected["Edge"] = edges | more
    for name, rows in expected.items():
        relation = evidence.relations.get(name)
        frame = pd.DataFrame() if relation is None else relation.frame
        arguments = frame[[c for c in frame.columns if c.startswith("a")]].itertuples(index=False)
        found = {tuple(value.item() if hasattr(value, "item") else value for value in row) for row in arguments}
        assert found == rows, name
        assert all(type(value) is not bool for row in found for value in row)
        if name in ("Hop", "Near", "Lone", "Reach"):  # derived: sorted by the canonical order (typed or not)
            listed = [
                tuple(value.item() if hasattr(value, "item") else value for value in row)
                for row in frame[[c for c in frame.columns if c.startswith("a")]].itertuples(index=False)
            ]
            assert listed == sorted(listed, key=lambda row: tuple(order_key(value) for value in row)), name


def test_derived_text_sorts_by_code_point(tmp_path: Path) -> None:
    """A text column sorted by Arrow (its UTF-8 bytes) is in Python's order of the strings."""
    rules = tmp_path / "program.mln"
    rules.write_text(PROGRAM + "bind Edge(x, y) from edges\n", encoding="utf-8")
    names = ["z", "Z", "a", "é", "e", "日本", "\U0001f600", "ab", "a b", "ﬀ"]
    edges = pd.DataFrame({"x": pd.Series(names, dtype="str"), "y": pd.Series(names[::-1], dtype="str")})
    evidence = load_evidence(check([rules]), [], {"edges": MemoryTable.of(edges, "edges")})
    frame = evidence.relations["Reach"].frame
    listed = list(zip(frame["a0"].tolist(), frame["a1"].tolist(), strict=True))
    assert listed == sorted(set(zip(names, names[::-1], strict=True)) | set(listed))
    assert len(listed) > len(names)
    # text stays columnar: codes into the one dictionary of the bound text, sorted by code point
    assert is_coded(frame["a0"]) and frame["a0"].dtype == evidence.relations["Edge"].frame["a0"].dtype
    assert list(frame["a0"].dtype.categories) == sorted(names)


def test_a_predicate_bound_from_text_and_from_integers_derives(tmp_path: Path) -> None:
    """Edge bound from a table of text and from one of text and integers (a column's dtype differs
    between the bindings and between Edge's two columns): the repeated variable of ``!Edge(x, x)``
    and the joins compare values across both (a crash before the shared dictionary; found by the
    review of engine6)."""
    rules = tmp_path / "program.mln"
    rules.write_text(
        PROGRAM + "bind Edge(x, y) from words\nbind Edge(y, x) from numbers\nbind Mark(x) from marks\n",
        encoding="utf-8",
    )
    words = pd.DataFrame(
        {"x": pd.Series(["A", "A", "B", "é"], dtype="str"), "y": pd.Series(["A", "B", "C", "é"], dtype="str")}
    )
    numbers = pd.DataFrame({"x": [1, 2, 3], "y": pd.Series(["A", "B", "Z"], dtype="str")})  # Edge(text, integer)
    marks = pd.DataFrame({"x": pd.Series(["A", "B", "é", 1, 2, 3], dtype=object)})
    frames = {"words": words, "numbers": numbers, "marks": marks}
    tables = {name: MemoryTable.of(frame, name) for name, frame in frames.items()}
    evidence = load_evidence(check([rules]), [], tables)
    edges: set[tuple[object, object]] = {("A", "A"), ("A", "B"), ("B", "C"), ("é", "é"), ("A", 1), ("B", 2), ("Z", 3)}
    expected = _oracle(edges, {"A", "B", "é", 1, 2, 3}, set())  # type: ignore[arg-type]

    def listed(name: str) -> set[tuple[object, ...]]:
        frame = evidence.relations[name].frame
        columns = [column for column in frame.columns if column.startswith("a")]
        rows = frame[columns].itertuples(index=False)
        return {tuple(value.item() if hasattr(value, "item") else value for value in row) for row in rows}

    for name in ("Hop", "Lone", "Reach"):
        assert listed(name) == expected[name], name
