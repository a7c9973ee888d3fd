"""The HTML report: deterministic, self-contained, escaped, and rendered by a real headless Chromium."""

from __future__ import annotations

import dataclasses
import re
import shutil
import struct
import subprocess
import zlib
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pytest
from support import REPOSITORY

from reasoner.lending.audit.run import Audit, audit
from reasoner.lending.config import STATUS_TIERS, TIERS
from reasoner.lending.outputs import report
from reasoner.lending.outputs.report import MAX_LENDER_SECTIONS, render_html, render_markdown
from reasoner.lending.synthetic.synth import write_synth

pytestmark = pytest.mark.slow  # end-to-end audits: outside the inner loop, pytest -m "not slow"

RULES = REPOSITORY / "rules"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
WINDOW = (1280, 4000)
# Chromium without these flags tries to reach Google's services (and waits on refused connections).
QUIET = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--hide-scrollbars",
)


@pytest.fixture(scope="module")
def small_audit(tmp_path_factory: pytest.TempPathFactory) -> Audit:
    path = tmp_path_factory.mktemp("report") / "synth.parquet"
    write_synth(path, 6000, 12, 5, simple=True)  # the planted effects these reports were written for
    return audit([RULES], path)


@pytest.fixture(scope="module")
def page(small_audit: Audit) -> str:
    return render_html(small_audit)


def test_the_audit_has_flagged_lenders_to_report(small_audit: Audit) -> None:
    # the other tests are only meaningful when there are per-lender sections with charts
    assert small_audit.findings.lenders["flagged"].sum() >= 1


def test_render_html_is_deterministic(small_audit: Audit, page: str) -> None:
    assert render_html(small_audit) == page
    assert render_markdown(small_audit) == render_markdown(small_audit)


def test_both_reports_at_once_are_each_alone(small_audit: Audit, page: str) -> None:
    from reasoner.lending.outputs.report import render_reports

    assert render_reports(small_audit) == (render_markdown(small_audit), page)


def test_page_references_nothing_outside_itself(page: str) -> None:
    assert re.findall(r"https?://", page) == []  # not even an SVG namespace: inline SVG needs none
    assert all(target.startswith("#") for target in re.findall(r"""\bhref\s*=\s*["']?([^"'\s>]*)""", page))
    assert re.search(r"\bsrc\s*=", page, re.IGNORECASE) is None
    lowered = page.lower()
    for construct in ("@import", "url(", "<script", "<link", "<img", "<iframe", "<object", "<embed", "@font-face"):
        assert construct not in lowered, construct
    assert "content-security-policy" in lowered and "default-src 'none'" in page


class _Tags(HTMLParser):
    """Element counts, ids, heading texts and internal link targets of a page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: Counter[str] = Counter()
        self.ids: list[str] = []
        self.links: list[str] = []
        self.headings: dict[str, list[str]] = {}
        self._heading: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] += 1
        values = dict(attrs)
        if values.get("id"):
            self.ids.append(str(values["id"]))
        if tag == "a" and values.get("href"):
            self.links.append(str(values["href"]))
        if tag in ("h1", "h2", "h3", "h4"):
            self._heading, self._text = tag, []

    def handle_endtag(self, tag: str) -> None:
        if tag == self._heading:
            self.headings.setdefault(tag, []).append(" ".join("".join(self._text).split()))
            self._heading = None

    def handle_data(self, data: str) -> None:
        if self._heading:
            self._text.append(data)


def _parse(text: str) -> _Tags:
    parser = _Tags()
    parser.feed(text)
    parser.close()
    return parser


def test_page_structure(small_audit: Audit, page: str) -> None:
    tags = _parse(page)
    lenders = small_audit.findings.lenders
    flagged = lenders[lenders["flagged"]].head(MAX_LENDER_SECTIONS)
    assert tags.headings["h1"] == ["Fair-lending audit report"]
    assert tags.headings["h2"][:3] == ["Summary", "Lenders by tier", "Flagged lenders"]
    assert tags.headings["h2"][-2:] == ["Data quality", "Method"]
    assert len(tags.ids) == len(set(tags.ids))
    assert {link[1:] for link in tags.links} <= set(tags.ids)  # every anchor link lands
    for lei in flagged["lei"]:
        assert f'href="#lender-{lei}"' in page and f'id="lender-{lei}"' in page
        assert any(lei in heading for heading in tags.headings["h3"])
    # a risk histogram, then per flagged lender a chart for each kind of evidence it has
    assert tags.tags["svg"] >= 1 + len(flagged)
    assert "Approval controlled for financials: adjusted denial odds" in tags.headings["h4"]
    assert "Matched-pair outcomes" in tags.headings["h4"]
    for tier in TIERS:
        assert f">{tier}</span>" in page


def test_long_reports_are_capped_with_a_note(small_audit: Audit, monkeypatch: pytest.MonkeyPatch) -> None:
    lenders = small_audit.findings.lenders
    flagged = int(lenders["flagged"].sum())
    listed = int((~lenders["risk_tier"].isin((TIERS[-1], *STATUS_TIERS))).sum())  # untested ones have their own table
    redlining = small_audit.tables.redlining
    tested = redlining[(redlining["reason"] == "") & (redlining["market_kind"] != "pooled") & (redlining["band"] == 50)]
    msas = tested.groupby("lei")["market"].nunique()
    monkeypatch.setattr(report, "MAX_LENDER_SECTIONS", 1)
    monkeypatch.setattr(report, "MAX_LENDER_ROWS", 1)
    monkeypatch.setattr(report, "MAX_MSAS", 1)
    page = render_html(small_audit)
    tags = _parse(page)
    assert tags.tags["article"] == 1
    top = lenders["lei"].iat[0]  # highest risk first
    assert f'id="lender-{top}"' in page
    if flagged > 1:
        assert "the 1 with the highest risk scores have a section here" in page
    if listed > 1:
        assert f"The 1 highest-risk of {listed:,} lenders in tiers 1–4 are listed" in page
    if msas.get(top, 0) > 1:
        assert f"The 1 of {msas[top]:,} markets with the smallest p-values" in page
    assert render_markdown(small_audit).count("\n## Lender ") == flagged  # the Markdown keeps every lender


def test_data_is_escaped(small_audit: Audit) -> None:
    hostile = dataclasses.replace(small_audit, facts=small_audit.facts.with_name('x<script>alert("&")<script>.parquet'))
    page = render_html(hostile)
    assert "<script" not in page
    assert "x&lt;script&gt;alert(&quot;&amp;&quot;)&lt;script&gt;.parquet" in page


def _browser() -> str | None:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


def _png_rows(data: bytes) -> tuple[int, int, bytes]:
    """Width, height and the decompressed (still filtered) image data of a PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, width, height, chunks = 8, 0, 0, []
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            chunks.append(body)
        position += 12 + length
    return width, height, zlib.decompress(b"".join(chunks))


def test_renders_in_headless_chromium(page: str, tmp_path: Path) -> None:
    browser = _browser()
    if browser is None:
        pytest.skip(f"no headless browser: none of {', '.join(BROWSERS)} is on PATH (CI installs Debian's chromium)")
    report = tmp_path / "report.html"
    report.write_text(page, encoding="utf-8")
    shot = tmp_path / "report.png"
    done = subprocess.run(
        [
            browser,
            *QUIET,
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--window-size={WINDOW[0]},{WINDOW[1]}",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
            f"--screenshot={shot}",
            report.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    # the DOM as Chromium parsed it: the page's headings, tables and charts are all there
    dom = _parse(done.stdout)
    source = _parse(page)
    assert dom.headings["h1"] == ["Fair-lending audit report"]
    assert dom.headings["h2"] == source.headings["h2"]
    assert dom.headings["h3"] == source.headings["h3"]
    for tag in ("svg", "table", "figure", "article", "rect", "text"):
        assert dom.tags[tag] == source.tags[tag] > 0, tag
    # nothing was blocked by the page's Content-Security-Policy: it tried to load nothing
    console = [line for line in done.stderr.splitlines() if "CONSOLE" in line]
    assert not [line for line in console if "Content Security Policy" in line or "Failed to load" in line], console
    # a screenshot of the rendered page, not of a blank one
    width, height, pixels = _png_rows(shot.read_bytes())
    assert (width, height) == WINDOW
    assert len(set(pixels)) > 64 and sum(1 for value in pixels if value) > len(pixels) // 100
