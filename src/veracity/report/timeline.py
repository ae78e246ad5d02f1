"""The timeline chart as geometry: per-detector score lines, dense windows, the face strip.

Numbers are laid out and formatted here; the SVG markup is the ``timeline_svg`` macro in
``report/templates/_report.html``, shared by the HTML export and the web result page.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from veracity.report.model import Report, TimelinePoint

__all__ = ["TimelineView", "series_colours", "timeline_message", "timeline_view"]

_PALETTE = (
    "#2563eb",
    "#dc2626",
    "#059669",
    "#d97706",
    "#7c3aed",
    "#0891b2",
    "#db2777",
    "#65a30d",
    "#92400e",
    "#475569",
)



def _series_names(report: Report) -> list[str]:
    present: dict[str, None] = {}
    for p in report.timeline:
        for name in p.scores:
            present.setdefault(name, None)
    ordered = [d.name for d in report.detectors if d.name in present]
    return ordered + sorted(n for n in present if n not in ordered)


def series_colours(report: Report) -> dict[str, str]:
    """Detector -> line colour, the same in the timeline, the detector cards and the page script."""
    return {n: _PALETTE[i % len(_PALETTE)] for i, n in enumerate(_series_names(report))}


def timeline_message(report: Report) -> str:
    """Why there is no timeline for this report, or "" when there is one to draw."""
    points = report.timeline
    media = report.media
    still = media.kind == "image" and not media.animated
    if still or (points and max(p.t for p in points) <= 0):
        return "No timeline for a still image."
    if not points:
        return "No timeline: nothing was analysed over time for this input."
    return ""


def _f(v: float) -> str:
    return f"{v:.1f}"


@dataclass(frozen=True, slots=True)
class LegendItem:
    kind: str  # line | box
    colour: str
    label: str
    x: float
    y: float


@dataclass(frozen=True, slots=True)
class Dot:
    cx: str
    cy: str
    t: str
    title: str


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    colour: str
    points: str
    r: float
    dots: list[Dot]


@dataclass(frozen=True, slots=True)
class Rect:
    x: str
    y: str
    w: str
    h: str
    fill: str
    title: str


@dataclass(frozen=True, slots=True)
class Tick:
    pos: str  # x for time ticks, y for score ticks
    label: str
    dashed: bool = False


@dataclass(frozen=True, slots=True)
class TimelineView:
    """The per-detector score chart as geometry (numbers already formatted); the SVG markup is
    the ``timeline_svg`` macro. The root carries the plot geometry (``data-left``, ``data-plot-w``,
    ``data-span``, ``data-width``) and every dot its time (``data-t``), so a page script can map a
    pointer position back to a time; the static export simply ignores those attributes."""

    width: str
    height: str
    left: str
    plot_w: str
    plot_h: str
    span: str
    top: str
    bottom: str
    mid_y: str
    right_x: str
    centre_x: str
    legend: list[LegendItem]
    dense: list[Rect]
    score_ticks: list[Tick]
    time_ticks: list[Tick]
    axis_y: str
    time_unit: str
    series: list[Series]
    faces: bool
    strip_top: str
    strip_h: str
    strip_label_y: str
    face_bars: list[Rect]
    max_faces: int


def _nice_step(span: float, target: int = 8) -> float:
    raw = span / max(target, 1)
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    for m in (1.0, 2.0, 5.0, 10.0):
        if m * mag >= raw:
            return m * mag
    return 10 * mag  # pragma: no cover


def _tick_label(v: float, minutes: bool) -> str:
    if minutes:
        m, s = divmod(round(v), 60)
        return f"{int(m)}:{int(s):02d}"
    return f"{round(v, 6):g}"


def _legend(items: Sequence[tuple[str, str, str]], x0: float, width: float) -> tuple[list[LegendItem], float]:
    """Lay legend entries (kind, colour, label) left to right, wrapping; return them and the height."""
    out: list[LegendItem] = []
    x, y, row_h = x0, 14.0, 18.0
    for kind, colour, label in items:
        w = 36 + 7.0 * len(label)
        if x + w > x0 + width and x > x0:
            x, y = x0, y + row_h
        out.append(LegendItem(kind, colour, label, x, y))
        x += w
    return out, y + 10


def timeline_view(report: Report) -> TimelineView | None:
    """The chart's geometry, or None when there is no timeline (see :func:`timeline_message`)."""
    if timeline_message(report):
        return None
    points: list[TimelinePoint] = sorted(report.timeline, key=lambda p: p.t)
    media = report.media
    names = _series_names(report)
    colours = series_colours(report)
    show_faces = media.kind != "audio"

    width, left, right = 960.0, 46.0, 18.0
    plot_w = width - left - right
    items = [("line", colours[n], n) for n in names]
    if media.dense_windows:
        items.append(("box", "#fde7b0", "dense window"))
    if show_faces:
        items.append(("box", "#94a3b8", "faces per frame"))
    legend, legend_h = _legend(items, left, plot_w)
    top = legend_h + 10
    plot_h = 230.0
    strip_gap, strip_h = 8.0, 30.0 if show_faces else 0.0
    strip_top = top + plot_h + strip_gap
    axis_y = strip_top + strip_h if show_faces else top + plot_h
    span = max(media.duration_s or 0.0, points[-1].t)
    span = span if span > 0 else 1.0

    def sx(t: float) -> float:
        return left + plot_w * min(max(t, 0.0), span) / span

    def sy(v: float) -> float:
        return top + plot_h * (1.0 - min(max(v, 0.0), 1.0))

    bottom = (strip_top + strip_h) if show_faces else top + plot_h
    dense = [
        Rect(_f(sx(a)), _f(top), _f(max(sx(b) - sx(a), 2.0)), _f(bottom - top), "#fde7b0",
             f"dense window {a:.2f}–{b:.2f} s")
        for a, b in media.dense_windows
    ]
    score_ticks = [Tick(_f(sy(i / 4)), f"{i / 4:g}", dashed=i == 2) for i in range(5)]
    minutes = span >= 120
    step = _nice_step(span)
    if minutes:
        step = max(step, 10.0)
    n_ticks = math.floor(span / step + 1e-9)
    time_ticks = [Tick(_f(sx(i * step)), _tick_label(i * step, minutes)) for i in range(n_ticks + 1)]

    series = []
    for name in names:
        pts = [(p.t, p.scores[name]) for p in points if name in p.scores]
        r = 3.0 if len(pts) <= 80 else 2.0 if len(pts) <= 300 else 1.3
        series.append(
            Series(
                name,
                colours[name],
                " ".join(f"{sx(t):.1f},{sy(v):.1f}" for t, v in pts),
                r,
                [Dot(_f(sx(t)), _f(sy(v)), f"{t:.3f}", f"{name} · {t:.2f} s · {v:.3f}") for t, v in pts],
            )
        )

    bars: list[Rect] = []
    max_faces = max((p.faces for p in points), default=0) if show_faces else 0
    if show_faces:
        gaps = [b.t - a.t for a, b in itertools.pairwise(points) if b.t > a.t]
        min_gap = min(gaps) if gaps else span
        bar_w = min(max(plot_w * min_gap / span * 0.7, 1.2), 8.0)
        for p in points:
            x = sx(p.t)
            if p.faces > 0 and max_faces > 0:
                h = (strip_h - 4) * p.faces / max_faces
                bars.append(Rect(_f(x - bar_w / 2), _f(strip_top + strip_h - h), _f(bar_w), _f(h), "#94a3b8",
                                 f"{p.t:.2f} s · {p.faces} face(s)"))
            else:
                bars.append(Rect(_f(x - 0.6), _f(strip_top + strip_h - 3), "1.2", "3", "#f87171",
                                 f"{p.t:.2f} s · no face"))
    return TimelineView(
        width=f"{width:.0f}",
        height=f"{axis_y + 40:.0f}",
        left=_f(left),
        plot_w=_f(plot_w),
        plot_h=_f(plot_h),
        span=f"{span:.4f}",
        top=_f(top),
        bottom=_f(axis_y),
        mid_y=_f(top + plot_h / 2),
        right_x=_f(left + plot_w),
        centre_x=_f(left + plot_w / 2),
        legend=legend,
        dense=dense,
        score_ticks=score_ticks,
        time_ticks=time_ticks,
        axis_y=_f(axis_y),
        time_unit="m:ss" if minutes else "s",
        series=series,
        faces=show_faces,
        strip_top=_f(strip_top),
        strip_h=_f(strip_h),
        strip_label_y=_f(strip_top + strip_h / 2 + 4),
        face_bars=bars,
        max_faces=max_faces,
    )
