"""Charts as inline SVG, written by hand so the same data gives the same bytes.

Coordinates are rounded to 0.1 px and every number is formatted explicitly (``px``): no hash
salts, dates, clip-path ids or font subsetting to pin, and no change of bytes with a plotting
library's version. Chart text is real text in the page's own font. ``forest`` draws points with
interval bars against a reference line (linear or log axis); the primitives (``svg``,
``svg_text``, ``svg_line``, ``svg_rect``) serve the reports' other charts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from reasoner.reporting.markup import escape_html

__all__ = [
    "BLUE",
    "GREY",
    "INK",
    "MUTED",
    "RED",
    "Point",
    "clip",
    "estimate_label",
    "finite",
    "forest",
    "nice_step",
    "px",
    "svg",
    "svg_line",
    "svg_rect",
    "svg_text",
    "tick_label",
]


RED, BLUE, GREY, INK, MUTED = "#b2182b", "#2166ac", "#8a8f96", "#1f2328", "#5c636b"


def px(value: float) -> str:
    text = f"{value:.1f}"
    return "0" if text in ("0.0", "-0.0") else text.removesuffix(".0")


def svg(width: float, height: float, title: str, body: list[str]) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {px(width)} {px(height)}" width="{px(width)}" height="{px(height)}" '
        f'font-size="12" fill="{INK}" dominant-baseline="central" role="img" aria-label="{escape_html(title)}">'
        f"<title>{escape_html(title)}</title>" + "".join(body) + "</svg>"
    )


def svg_text(
    x: float,
    y: float,
    text: str,
    *,
    anchor: str = "start",
    size: float = 12,
    fill: str = INK,
    weight: str = "",
    italic: bool = False,
) -> str:
    """Text centred vertically on ``y``; attributes equal to the chart's defaults (``svg``) are left out."""
    extra = "" if anchor == "start" else f' text-anchor="{anchor}"'
    extra += "" if size == 12 else f' font-size="{px(size)}"'
    extra += "" if fill == INK else f' fill="{fill}"'
    extra += (f' font-weight="{weight}"' if weight else "") + (' font-style="italic"' if italic else "")
    return f'<text x="{px(x)}" y="{px(y)}"{extra}>{escape_html(text)}</text>'


def svg_line(x1: float, y1: float, x2: float, y2: float, stroke: str, width: float = 1, dash: str = "") -> str:
    extra = f' stroke-dasharray="{dash}"' if dash else ""
    extra += "" if width == 1 else f' stroke-width="{px(width)}"'
    ends = f'x1="{px(x1)}" y1="{px(y1)}" x2="{px(x2)}" y2="{px(y2)}"'
    return f'<line {ends} stroke="{stroke}"{extra}/>'


def svg_rect(x: float, y: float, width: float, height: float, fill: str, title: str = "") -> str:
    tip = f"<title>{escape_html(title)}</title>" if title else ""
    end = f">{tip}</rect>" if tip else "/>"
    return f'<rect x="{px(x)}" y="{px(y)}" width="{px(max(width, 0))}" height="{px(height)}" fill="{fill}"{end}'


def clip(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: chars - 1] + "…"


def finite(value: object) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def nice_step(span: float, count: int = 5) -> float:
    raw = span / max(count, 1)
    power = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)


def tick_label(value: float) -> str:
    text = f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return "0" if text in ("0", "-0") else text.replace("-", "−")


def estimate_label(value: float) -> str:
    """A chart's value label: two decimals, a true minus sign."""
    if math.isnan(value):
        return "–"
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    text = f"{value:.2f}" if value == 0 or 0.005 <= abs(value) < 10_000 else f"{value:.1e}"
    return "0.00" if text == "-0.00" else text.replace("-", "−")


@dataclass(frozen=True, slots=True)
class Point:
    label: str
    estimate: float
    low: float
    high: float
    note: str = ""  # shown instead of a point when there is no estimate


def forest(points: list[Point], *, log: bool, reference: float, axis: str, left: str, right: str, title: str) -> str:
    """Points with interval bars, one row each, and a dashed reference line."""
    if not any(not p.note for p in points):
        return ""
    width, label_w, plot_x0, plot_x1 = 760, 160, 170, 590
    row_h, top = 24, 30
    height = top + row_h * len(points) + 46
    values = [v for p in points if not p.note for v in (p.estimate, p.low, p.high) if finite(v) and (v > 0 or not log)]
    if log:
        ticks_all = [float(f"{m}e{e}") for e in range(-2, 3) for m in (1, 2, 5)][:-2]  # 0.01 … 100
        low = max(min([*values, reference]), ticks_all[0])
        high = min(max([*values, reference]), ticks_all[-1])
        first = max(i for i, t in enumerate(ticks_all) if t <= low * 1.0001)
        last = min(i for i, t in enumerate(ticks_all) if t >= high * 0.9999)
        if first == last:
            first, last = max(first - 1, 0), min(last + 1, len(ticks_all) - 1)
        ticks = ticks_all[first : last + 1]
        start, stop = ticks[0], ticks[-1]
        if len(ticks) > 9:  # powers of ten only
            ticks = [t for t in ticks if f"{t:g}".lstrip("0.").startswith("1")]
        lo, hi = math.log(start), math.log(stop)

        def scale(v: float) -> float:
            return plot_x0 + (math.log(v) - lo) / (hi - lo) * (plot_x1 - plot_x0)

        domain = (start, stop)
    else:
        low, high = min([*values, reference]), max([*values, reference])
        step = nice_step(high - low or 1.0)
        first, last = math.floor(low / step), math.ceil(high / step)
        if first == last:
            first, last = first - 1, last + 1
        ticks = [k * step for k in range(first, last + 1)]
        start, stop = ticks[0], ticks[-1]

        def scale(v: float) -> float:
            return plot_x0 + (v - start) / (stop - start) * (plot_x1 - plot_x0)

        domain = (start, stop)

    def clamp(v: float) -> tuple[float, int]:
        """x of v inside the plot, and -1/+1 when v lies beyond the axis."""
        if log and v <= 0:
            return plot_x0, -1
        if v < domain[0]:
            return plot_x0, -1
        if v > domain[1]:
            return plot_x1, 1
        return scale(v), 0

    body = [svg_rect(plot_x0, top - 6, plot_x1 - plot_x0, row_h * len(points) + 6, "#f7f8fa")]
    bottom = top + row_h * len(points)
    for t in ticks:
        x = scale(t)
        body.append(svg_line(x, top - 6, x, bottom, "#dfe3e8"))
        body.append(svg_text(x, bottom + 12, tick_label(t), anchor="middle", size=11, fill=MUTED))
    ref_x = scale(reference)
    body.append(svg_line(ref_x, top - 10, ref_x, bottom, INK, 1.2, "4 3"))
    body.append(svg_text(ref_x - 6, top - 18, "← " + left, anchor="end", size=11, fill=MUTED))
    body.append(svg_text(ref_x + 6, top - 18, right + " →", anchor="start", size=11, fill=MUTED))
    body.append(svg_text((plot_x0 + plot_x1) / 2, bottom + 32, axis, anchor="middle", size=11.5, fill=INK))
    body.append(svg_text(plot_x1 + 12, top - 18, "estimate (95% CI)", size=11, fill=MUTED))
    for i, p in enumerate(points):
        y = top + row_h * i + row_h / 2 - 3
        body.append(svg_text(label_w, y, clip(p.label, 26), anchor="end"))
        if p.note:
            body.append(
                svg_text(plot_x0 + 8, y, clip("not estimated: " + p.note, 62), size=11, fill=MUTED, italic=True)
            )
            continue
        colour = (
            RED if finite(p.low) and p.low > reference else BLUE if finite(p.high) and p.high < reference else "#3d4349"
        )
        if not (math.isnan(p.low) or math.isnan(p.high)):
            x1, beyond1 = clamp(p.low)
            x2, beyond2 = clamp(p.high)
            body.append(svg_line(x1, y, x2, y, colour, 1.6))
            for x, beyond in ((x1, beyond1), (x2, beyond2)):
                if beyond:
                    tip = x + 5 * beyond
                    body.append(
                        f'<path d="M{px(tip)} {px(y)}L{px(x)} {px(y - 4)}L{px(x)} {px(y + 4)}Z" fill="{colour}"/>'
                    )
                else:
                    body.append(svg_line(x, y - 4, x, y + 4, colour, 1.6))
        if not math.isnan(p.estimate):
            x, _ = clamp(p.estimate)
            point = (
                f"{p.label}: {estimate_label(p.estimate)} (95% CI {estimate_label(p.low)} to {estimate_label(p.high)})"
            )
            body.append(
                f'<rect x="{px(x - 4.5)}" y="{px(y - 4.5)}" width="9" height="9" '
                f'fill="{colour}"><title>{escape_html(point)}</title></rect>'
            )
        label = f"{estimate_label(p.estimate)} ({estimate_label(p.low)} to {estimate_label(p.high)})"
        body.append(svg_text(plot_x1 + 12, y, label, size=11.5))
    return svg(width, height, title, body)
