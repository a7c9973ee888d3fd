"""Markdown escaping of values the report did not write (``reasoner.reporting.markdown``)."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from reasoner.errors import printable
from reasoner.reporting.markdown import escape_markdown

SPECIAL = "ab1.,-&<>|[]`\\*_\n\t\x00\x1b\x7f\x85\u2028\u202e\u2066é "
ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def _escaped(text: str) -> str:
    """The escapes in turn: controls shown escaped, HTML as entities, Markdown's characters backslashed."""
    value = re.sub(r"[&<>]", lambda match: ENTITIES[match.group()], printable(text))
    return re.sub(r"[\\`\[\]|]", lambda match: "\\" + match.group(), value)


@given(st.text(alphabet=st.sampled_from(SPECIAL)) | st.text())
def test_escaping_is_the_escapes_in_turn_whatever_the_text(text: str) -> None:
    """The shortcut for a text without a special character (the text itself) gives what the escapes give."""
    assert escape_markdown(text) == _escaped(text)


def test_ordinary_values_are_left_alone_and_others_escaped() -> None:
    assert escape_markdown(1234.5) == "1234.5"
    assert escape_markdown("TIER_1_CRITICAL") == "TIER_1_CRITICAL"
    assert escape_markdown("a\u202eb") == "a\\\\u202eb"
    assert escape_markdown("x|y") == "x\\|y"
