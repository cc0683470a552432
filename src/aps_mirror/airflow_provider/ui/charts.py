"""Bar charts as inline SVG, rendered on the server: the dashboard fetches nothing and runs no script.

Each chart is a stacked bar per day; a day without a value (no run that night) gets a grey
tick rather than a zero bar, so "nothing changed" and "nothing ran" look different. Every bar
carries a <title> (the browser's own tooltip) and the figures are also given as a table, for
screen readers and for anyone who wants the exact numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from typing import Callable, Sequence

WIDTH, HEIGHT = 440, 180
LEFT, RIGHT, TOP, BOTTOM = 56, 8, 16, 22  # room for y labels on the left, totals above bars
MAX_DAY_LABELS = 8
LABEL_CHAR_WIDTH = 5.5  # of a 9 px digit, to tell whether a bar's total fits above it


@dataclass(frozen=True)
class Series:
    name: str
    color: str
    values: Sequence[int | None]  # one per day; None = no run that day


def axis_step(value: float, base: int = 1000) -> float:
    """A round step for about 5 grid lines reaching `value`: 1, 2, 2.5 or 5 x 10^k, in units of
    base^n (1024 for bytes, so steps read 256 MB or 2 GB); counts never step below 1."""
    fifth = value / 5
    if fifth <= 1:
        return 1
    unit = base ** math.floor(math.log(fifth, base)) if base != 1000 else 1
    scaled = fifth / unit
    magnitude = 10 ** math.floor(math.log10(scaled))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= scaled)
    return unit * (base if base != 1000 and step >= 1000 else step)  # 1000 MB reads better as 1 GB


def bar_chart(chart_id: str, title: str, days: Sequence[str], series: Sequence[Series],
              fmt: Callable[[float], str] = lambda v: f"{v:,.0f}", base: int = 1000) -> str:
    """A <figure> with the SVG chart, an HTML legend and the figures table."""
    totals = [sum(s.values[i] or 0 for s in series) for i in range(len(days))]
    step = axis_step(max(totals, default=0), base)
    lines = max(1, math.ceil(max(totals, default=0) / step))
    top = step * lines
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / max(len(days), 1)
    bar_w = max(min(slot * 0.7, 28), 1)
    parts = [f"<svg viewBox='0 0 {WIDTH} {HEIGHT}' role='img' aria-labelledby='{chart_id}-title' "
             f"class='chart' id='{chart_id}'><title id='{chart_id}-title'>{escape(title)}</title>"]
    for i in range(lines + 1):  # horizontal grid lines with their values
        value = step * i
        y = TOP + plot_h - plot_h * i / lines
        parts.append(f"<line x1='{LEFT}' x2='{WIDTH - RIGHT}' y1='{y:.1f}' y2='{y:.1f}' class='grid'/>"
                     f"<text x='{LEFT - 4}' y='{y + 3.5:.1f}' class='ylabel'>{escape(fmt(value))}</text>")
    label_every = max(1, math.ceil(len(days) / MAX_DAY_LABELS))
    for i, day in enumerate(days):
        x = LEFT + slot * i + (slot - bar_w) / 2
        if all(s.values[i] is None for s in series):
            parts.append(f"<rect x='{x:.1f}' y='{TOP + plot_h - 2}' width='{bar_w:.1f}' height='2' "
                         f"class='norun'><title>{escape(day)}: no run</title></rect>")
        bar_top = TOP + plot_h  # stacks grow upwards from the axis
        for s in series:
            value = s.values[i] or 0
            if value <= 0:
                continue
            height = plot_h * value / top
            bar_top -= height
            parts.append(f"<rect x='{x:.1f}' y='{bar_top:.1f}' width='{bar_w:.1f}' height='{height:.1f}' "
                         f"fill='{s.color}'><title>{escape(day)}: {escape(s.name)} {escape(fmt(value))}"
                         "</title></rect>")
        label = fmt(totals[i])
        if totals[i] > 0 and len(label) * LABEL_CHAR_WIDTH <= slot:  # the total above its bar, if it fits
            parts.append(f"<text x='{x + bar_w / 2:.1f}' y='{bar_top - 3:.1f}' class='total'>"
                         f"{escape(label)}</text>")
        if i % label_every == 0:
            parts.append(f"<text x='{x + bar_w / 2:.1f}' y='{HEIGHT - 6}' class='xlabel'>"
                         f"{escape(day[5:])}</text>")
    parts.append("</svg>")
    legend = "".join(f"<span><i style='background:{s.color}'></i>{escape(s.name)}</span>" for s in series)
    return (f"<figure class='chart-box'><figcaption>{escape(title)}</figcaption>{''.join(parts)}"
            f"<div class='legend'>{legend}</div>{figures_table(chart_id, days, series, fmt)}</figure>")


def figures_table(chart_id: str, days: Sequence[str], series: Sequence[Series],
                  fmt: Callable[[float], str]) -> str:
    head = "".join(f"<th>{escape(s.name)}</th>" for s in series)
    rows = "".join(
        f"<tr data-day='{escape(day)}'><td>{escape(day)}</td>"
        + "".join(f"<td data-value='{'' if s.values[i] is None else s.values[i]}'>"
                  f"{'' if s.values[i] is None else escape(fmt(s.values[i]))}</td>" for s in series)
        + "</tr>"
        for i, day in reversed(list(enumerate(days))))  # newest night first
    return (f"<details><summary>Figures</summary><table class='figures' id='{chart_id}-figures'>"
            f"<tr><th>Night</th>{head}</tr>{rows}</table></details>")
