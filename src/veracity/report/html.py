"""Render a :class:`Report` as one self-contained HTML file.

Everything is inline: CSS in a ``<style>`` block, the timeline as an SVG drawn here, face crops
as ``data:`` URIs. No script runs and nothing is fetched, and a Content-Security-Policy says so,
so the file can be mailed, archived or opened offline. Every string taken from the report is
escaped: file names, reasons and evidence keys are untrusted input.
"""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

from veracity.report.checked import checked_section
from veracity.report.model import DetectorReport, Report, TimelinePoint

__all__ = [
    "LABEL_COLOURS",
    "LABEL_TEXT",
    "REASON_TEXT",
    "fmt_bytes",
    "fmt_seconds",
    "render_html",
    "series_colours",
    "timeline_message",
    "timeline_svg",
    "write_html",
]

LABEL_COLOURS: dict[str, str] = {
    "authentic": "#1a7f37",
    "suspicious": "#c77700",
    "manipulated": "#c62828",
    "synthetic": "#6f42c1",
    "inconclusive": "#6b7280",
}

LABEL_TEXT: dict[str, str] = {
    "authentic": "No sign of manipulation was found by the detectors that applied.",
    "suspicious": "Some detectors found signs of manipulation; review the evidence below.",
    "manipulated": "The detectors agree this media has most likely been manipulated.",
    "synthetic": "The media is most likely generated (synthetic) rather than recorded.",
    "inconclusive": "No detector could apply to this input, so there is no verdict.",
}

REASON_TEXT: dict[str, str] = {
    "lip_audio_mismatch": "Lip movements do not follow the speech in the audio track.",
    "texture_artifacts": "Face texture shows artefacts typical of generated or re-rendered faces.",
    "blending_boundary": "A seam was found where a face appears blended into the original frame.",
    "synthetic_voice": "The voice has traits of text-to-speech or voice cloning.",
    "abnormal_blinking": "Blinking is unusually rare, regular or misshapen for a real person.",
    "head_pose_inconsistency": "The central face and the whole head point in different directions.",
    "landmark_jitter": "Facial landmarks jitter between frames more than a real face moves.",
    "box_flicker": "The face region flickers in size or position from frame to frame.",
    "spectral_artifacts": "The image spectrum shows periodic peaks left by generative up-sampling.",
    "declared_ai_generated": "A valid content credential declares the media as made by a generative model.",
    "watermark_detected": "An invisible watermark that generators embed in their output was found.",
    "credential_invalid": "The content credential does not verify: the file changed after it was signed.",
}

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

_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"

_CSS = """
:root{--fg:#1f2937;--muted:#6b7280;--line:#e5e7eb;--bg:#f4f5f7;--card:#fff;--accent:#2563eb}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.5 system-ui,-apple-system,
"Segoe UI",Roboto,"Helvetica Neue",Arial,"Noto Sans",sans-serif}
main{max-width:1180px;margin:0 auto;padding:24px 20px 40px}
h1{font-size:20px;margin:0 0 2px;font-weight:650}
h2{font-size:15px;margin:0 0 12px;font-weight:650;letter-spacing:.01em}
h3{font-size:13px;margin:0 0 6px;font-weight:600}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:18px 20px;
margin:0 0 16px;box-shadow:0 1px 2px rgba(16,24,40,.05)}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(340px,1fr));gap:16px}
.grid>.card{margin:0}
.muted{color:var(--muted)}
.small{font-size:12px}
.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;
font-size:12px}
.break{word-break:break-all}
header.card{display:flex;gap:24px;align-items:center;justify-content:space-between;flex-wrap:wrap}
.kicker{font-size:11px;text-transform:uppercase;letter-spacing:.08em;color:var(--muted);
font-weight:600}
.filename{font-size:22px;font-weight:700;margin:2px 0 4px;word-break:break-all}
.verdict{display:flex;align-items:center;gap:22px}
.badge{display:inline-block;color:#fff;border-radius:999px;padding:5px 14px;font-weight:700;
font-size:13px;text-transform:uppercase;letter-spacing:.06em}
.score{text-align:right;min-width:210px}
.score .big{font-size:44px;font-weight:750;line-height:1;font-variant-numeric:tabular-nums}
.scorebar{position:relative;height:10px;border-radius:5px;background:#e5e7eb;margin:8px 0 2px;
overflow:hidden}
.scorebar>span{position:absolute;left:0;top:0;bottom:0;border-radius:5px}
.scale{display:flex;justify-content:space-between;font-size:10px;color:var(--muted)}
.reasons{list-style:none;padding:0;margin:0;display:grid;gap:8px}
.reasons li{display:flex;gap:12px;align-items:baseline}
.chip{display:inline-block;border:1px solid #d1d5db;background:#f9fafb;border-radius:999px;
padding:1px 10px;font-size:12px;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;
white-space:nowrap}
.chip.flag{border-color:#fecaca;background:#fef2f2;color:#991b1b}
.chips{display:flex;flex-wrap:wrap;gap:4px}
.chart svg{display:block;width:100%;height:auto}
.empty{padding:28px;text-align:center;color:var(--muted);border:1px dashed var(--line);
border-radius:8px;background:#fafafa}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:7px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:11px;text-transform:uppercase;letter-spacing:.05em;color:var(--muted);
font-weight:600;white-space:nowrap}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr:last-child td{border-bottom:0}
.scroll{overflow-x:auto}
.minibar{display:inline-block;width:70px;height:7px;border-radius:4px;background:#e5e7eb;
vertical-align:middle;margin-right:6px;overflow:hidden}
.minibar>span{display:block;height:100%;border-radius:4px}
.pill{display:inline-block;border-radius:4px;padding:0 7px;font-size:11px;font-weight:600}
.pill.yes{background:#dcfce7;color:#166534}
.pill.no{background:#f3f4f6;color:#4b5563}
.ev{display:grid;grid-template-columns:auto 1fr;gap:0 10px;font-size:11.5px;margin:0}
.ev dt{color:var(--muted);font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.ev dd{margin:0;font-variant-numeric:tabular-nums;overflow-wrap:break-word}
td.evc{min-width:190px}
details summary{cursor:pointer;color:var(--accent);font-size:11.5px}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:5px 16px;margin:0}
dl.kv dt{color:var(--muted)}
dl.kv dd{margin:0;overflow-wrap:anywhere}
.tracks{display:grid;grid-template-columns:repeat(auto-fill,minmax(390px,1fr));gap:12px}
.track{border:1px solid var(--line);border-radius:8px;padding:10px 12px}
.crops{display:flex;flex-wrap:wrap;gap:6px;margin-top:6px}
.crops img{width:84px;height:84px;object-fit:cover;border-radius:6px;border:1px solid var(--line);
background:#eee}
.crops img.heat{outline:2px solid #c62828}
figure.heatfig{margin:0;display:flex;flex-direction:column;align-items:center;width:96px}
figure.heatfig figcaption{font-size:10px;color:var(--muted);text-align:center;line-height:1.2}
.evc .crops img{width:64px;height:64px}
.warn{list-style:none;margin:0;padding:0}
.warn li{background:#fffbeb;border:1px solid #fde68a;border-radius:6px;padding:6px 10px;
margin:0 0 6px;color:#78350f}
footer{color:var(--muted);font-size:12px;text-align:center;margin-top:8px}
@media print{
body{background:#fff;font-size:12px}
main{max-width:none;padding:0}
.card{box-shadow:none;break-inside:avoid;page-break-inside:avoid;border-color:#ccc}
.badge,.scorebar>span,.minibar>span,.pill,.chip,.warn li{-webkit-print-color-adjust:exact;
print-color-adjust:exact}
details>summary{display:none}
@page{margin:12mm}
h2{break-after:avoid;page-break-after:avoid}
.chip{white-space:normal}
.scroll{overflow:visible}
#detectors{break-inside:auto;page-break-inside:auto}
table.dets{font-size:10px}
table.dets th{white-space:normal}
table.dets tr{break-inside:avoid;page-break-inside:avoid}
table.dets .minibar{width:36px}
.ev{font-size:9.5px}
}
"""


def _e(value: object) -> str:
    """Escape anything for HTML text or a quoted attribute."""
    return html.escape(str(value), quote=True)


def _fmt(value: float | None, digits: int = 3, dash: str = "—") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return dash
    return f"{value:.{digits}f}"


def fmt_bytes(n: int | None) -> str:
    """A byte count for people (KiB, MiB, GiB); a dash when unknown. Shared with the web UI."""
    if n is None:
        return "—"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # pragma: no cover


def fmt_seconds(t: float | None) -> str:
    """Seconds as ``1.23 s`` or, from a minute on, ``m:ss.ss``; a dash when unknown."""
    if t is None:
        return "—"
    if t >= 60:
        m, s = divmod(t, 60)
        return f"{int(m)}:{s:05.2f}"
    return f"{t:.2f} s"


def _score_colour(score: float) -> str:
    """Green through amber to red along 0..1."""
    s = min(max(score, 0.0), 1.0)
    return f"hsl({round(130 * (1 - s))},70%,43%)"


def _reason_text(code: str) -> str:
    return REASON_TEXT.get(code, "")


def _chip(code: str, *, flag: bool = False) -> str:
    title = _reason_text(code)
    cls = "chip flag" if flag else "chip"
    tip = f' title="{_e(title)}"' if title else ""
    return f'<span class="{cls}"{tip}>{_e(code)}</span>'


def _minibar(value: float | None, colour: str | None = None) -> str:
    if value is None:
        return '<span class="muted">—</span>'
    width = min(max(value, 0.0), 1.0) * 100
    fill = colour or _score_colour(value)
    return f'<span class="minibar"><span style="width:{width:.1f}%;background:{fill}"></span></span>{_fmt(value)}'


# --------------------------------------------------------------------------- header / verdict


def _header(report: Report) -> str:
    media = report.media
    colour = LABEL_COLOURS.get(report.label, LABEL_COLOURS["inconclusive"])
    facts = [media.kind, media.container]
    if media.width and media.height:
        facts.append(f"{media.width}×{media.height}")
    if media.duration_s is not None and media.kind != "image":
        facts.append(fmt_seconds(media.duration_s))
    if media.fps:
        facts.append(f"{media.fps:.3g} fps")
    facts.append(fmt_bytes(report.source.size_bytes))
    if report.deepfake_score is None:
        big = '<div class="big muted">—</div>'
        bar = '<div class="scorebar"></div>'
        caption = '<div class="small muted">no detector applied</div>'
    else:
        s = report.deepfake_score
        big = f'<div class="big" style="color:{colour}">{s:.2f}</div>'
        bar = (
            f'<div class="scorebar" role="img" aria-label="deepfake score {s:.2f} of 1">'
            f'<span style="width:{s * 100:.1f}%;background:{colour}"></span></div>'
        )
        caption = '<div class="scale"><span>0 · authentic</span><span>1 · fake</span></div>'
    warn = ""
    if report.warnings:
        n = len(report.warnings)
        warn = (
            f'<div class="small" style="color:#92400e;margin-top:4px">'
            f'<a href="#warnings" style="color:inherit">{n} warning{"s" if n > 1 else ""}</a>'
            "</div>"
        )
    return f"""<header class="card">
<div style="min-width:0;flex:1 1 420px">
<div class="kicker">Veracity forensic report</div>
<div class="filename">{_e(report.source.name)}</div>
<div class="muted">{_e(" · ".join(facts))}</div>
<div class="small muted" style="margin-top:6px">{_e(LABEL_TEXT.get(report.label, ""))}</div>
{warn}
</div>
<div class="verdict">
<span class="badge" style="background:{colour}"
 data-label="{_e(report.label)}">{_e(report.label)}</span>
<div class="score">
<div class="kicker">Deepfake score</div>
{big}{bar}{caption}
</div>
</div>
</header>"""


def _reasons(report: Report) -> str:
    if not report.reasons:
        body = '<p class="muted" style="margin:0">No detector raised a reason.</p>'
    else:
        items = []
        for code in report.reasons:
            text = _reason_text(code)
            expl = _e(text) if text else '<span class="muted">(no description for this code)</span>'
            items.append(f"<li>{_chip(code, flag=True)}<span>{expl}</span></li>")
        body = f'<ul class="reasons">{"".join(items)}</ul>'
    return f'<section class="card"><h2>Why</h2>{body}</section>'


# --------------------------------------------------------------------------- timeline SVG


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


def _series_names(report: Report) -> list[str]:
    present: dict[str, None] = {}
    for p in report.timeline:
        for name in p.scores:
            present.setdefault(name, None)
    ordered = [d.name for d in report.detectors if d.name in present]
    return ordered + sorted(n for n in present if n not in ordered)


def _legend(items: Sequence[tuple[str, str]], x0: float, width: float) -> tuple[str, float]:
    """Lay legend entries (kind:colour, label) left to right, wrapping; return svg and height."""
    out: list[str] = []
    x, y, row_h = x0, 14.0, 18.0
    for spec, label in items:
        kind, _, colour = spec.partition(":")
        w = 36 + 7.0 * len(label)
        if x + w > x0 + width and x > x0:
            x, y = x0, y + row_h
        if kind == "line":
            out.append(
                f'<line x1="{x:.1f}" y1="{y - 4:.1f}" x2="{x + 18:.1f}" y2="{y - 4:.1f}" '
                f'stroke="{colour}" stroke-width="2.2"/>'
                f'<circle cx="{x + 9:.1f}" cy="{y - 4:.1f}" r="3" fill="{colour}"/>'
            )
        elif kind == "box":
            out.append(f'<rect x="{x:.1f}" y="{y - 10:.1f}" width="18" height="11" fill="{colour}"/>')
        out.append(f'<text x="{x + 24:.1f}" y="{y:.1f}" class="lg">{_e(label)}</text>')
        x += w
    return "".join(out), y + 10


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


def series_colours(report: Report) -> dict[str, str]:
    """Detector -> line colour, the same in the report, its timeline and the web UI."""
    return {n: _PALETTE[i % len(_PALETTE)] for i, n in enumerate(_series_names(report))}


def timeline_svg(report: Report) -> str:
    """The per-detector score chart as one ``<svg>`` element, or "" when there is no timeline.

    The root carries the plot geometry (``data-left``, ``data-plot-w``, ``data-span``,
    ``data-width``) and every dot its time (``data-t``), so a page script can map a pointer
    position back to a time; the static report simply ignores those attributes.
    """
    if timeline_message(report):
        return ""
    return _timeline_svg(report, sorted(report.timeline, key=lambda p: p.t))


def _timeline(report: Report) -> str:
    msg = timeline_message(report)
    if msg:
        return (
            f'<section class="card chart" id="timeline"><h2>Timeline</h2><div class="empty">{_e(msg)}</div></section>'
        )
    return f'<section class="card chart" id="timeline"><h2>Timeline</h2>{timeline_svg(report)}</section>'


def _timeline_svg(report: Report, points: list[TimelinePoint]) -> str:
    media = report.media
    names = _series_names(report)
    colours = series_colours(report)
    show_faces = media.kind != "audio"

    width, left, right = 960.0, 46.0, 18.0
    plot_w = width - left - right
    legend_items: list[tuple[str, str]] = [(f"line:{colours[n]}", n) for n in names]
    if media.dense_windows:
        legend_items.append(("box:#fde7b0", "dense window"))
    if show_faces:
        legend_items.append(("box:#94a3b8", "faces per frame"))
    legend, legend_h = _legend(legend_items, left, plot_w)
    top = legend_h + 10
    plot_h = 230.0
    strip_gap, strip_h = 8.0, 30.0 if show_faces else 0.0
    strip_top = top + plot_h + strip_gap
    axis_y = strip_top + strip_h if show_faces else top + plot_h
    height = axis_y + 40

    span = max(media.duration_s or 0.0, points[-1].t)
    span = span if span > 0 else 1.0

    def sx(t: float) -> float:
        return left + plot_w * min(max(t, 0.0), span) / span

    def sy(v: float) -> float:
        return top + plot_h * (1.0 - min(max(v, 0.0), 1.0))

    parts: list[str] = [
        f'<svg viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
        f'aria-label="Per-detector scores over time" font-family="system-ui,sans-serif" '
        f'data-left="{left:.1f}" data-plot-w="{plot_w:.1f}" data-span="{span:.4f}" '
        f'data-width="{width:.0f}" data-top="{top:.1f}" data-bottom="{axis_y:.1f}">',
        "<style>.lg{font-size:12px;fill:#374151}.tk{font-size:11px;fill:#6b7280}"
        ".ax{font-size:11px;fill:#374151;font-weight:600}</style>",
        legend,
        f'<rect x="{left}" y="{top:.1f}" width="{plot_w}" height="{plot_h}" fill="#fcfcfd" stroke="#e5e7eb"/>',
    ]
    # Dense windows, shaded across the plot and the face strip.
    for start, end in media.dense_windows:
        x0, x1 = sx(start), sx(end)
        bottom = (strip_top + strip_h) if show_faces else top + plot_h
        parts.append(
            f'<rect class="dense" x="{x0:.1f}" y="{top:.1f}" '
            f'width="{max(x1 - x0, 2.0):.1f}" height="{bottom - top:.1f}" '
            f'fill="#fde7b0" fill-opacity="0.55">'
            f"<title>dense window {start:.2f}–{end:.2f} s</title></rect>"
        )
    # Horizontal grid and y ticks.
    for i in range(5):
        v = i / 4
        y = sy(v)
        dash = ' stroke-dasharray="4 3"' if i == 2 else ""
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#e5e7eb"{dash}/>')
        parts.append(f'<text class="tk" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{v:g}</text>')
    parts.append(
        f'<text class="ax" x="12" y="{top + plot_h / 2:.1f}" text-anchor="middle" '
        f'transform="rotate(-90 12 {top + plot_h / 2:.1f})">score</text>'
    )
    # Vertical grid and x ticks.
    minutes = span >= 120
    step = _nice_step(span)
    if minutes:
        step = max(step, 10.0)
    n_ticks = math.floor(span / step + 1e-9)
    for i in range(n_ticks + 1):
        t = i * step
        x = sx(t)
        parts.append(f'<line x1="{x:.1f}" y1="{top:.1f}" x2="{x:.1f}" y2="{axis_y:.1f}" stroke="#eef0f3"/>')
        parts.append(f'<line x1="{x:.1f}" y1="{axis_y:.1f}" x2="{x:.1f}" y2="{axis_y + 4:.1f}" stroke="#9ca3af"/>')
        parts.append(
            f'<text class="tk" x="{x:.1f}" y="{axis_y + 16:.1f}" text-anchor="middle">{_tick_label(t, minutes)}</text>'
        )
    parts.append(f'<line x1="{left}" y1="{axis_y:.1f}" x2="{left + plot_w}" y2="{axis_y:.1f}" stroke="#9ca3af"/>')
    parts.append(
        f'<text class="ax" x="{left + plot_w / 2:.1f}" y="{axis_y + 34:.1f}" '
        f'text-anchor="middle">time ({"m:ss" if minutes else "s"})</text>'
    )

    # One polyline + dots per detector.
    if not names:
        parts.append(
            f'<text class="tk" x="{left + plot_w / 2:.1f}" y="{top + plot_h / 2:.1f}" '
            f'text-anchor="middle">no per-frame detector scores</text>'
        )
    for name in names:
        series = [(p.t, p.scores[name]) for p in points if name in p.scores]
        colour = colours[name]
        coords = " ".join(f"{sx(t):.1f},{sy(v):.1f}" for t, v in series)
        r = 3.0 if len(series) <= 80 else 2.0 if len(series) <= 300 else 1.3
        parts.append(f'<g class="series" data-detector="{_e(name)}">')
        parts.append(
            f'<polyline points="{coords}" fill="none" stroke="{colour}" '
            f'stroke-width="1.8" stroke-linejoin="round" stroke-opacity="0.9"/>'
        )
        for t, v in series:
            parts.append(
                f'<circle cx="{sx(t):.1f}" cy="{sy(v):.1f}" r="{r}" fill="{colour}" data-t="{t:.3f}">'
                f"<title>{_e(name)} · {t:.2f} s · {v:.3f}</title></circle>"
            )
        parts.append("</g>")

    # Face-count strip.
    if show_faces:
        max_faces = max((p.faces for p in points), default=0)
        parts.append(
            f'<rect x="{left}" y="{strip_top:.1f}" width="{plot_w}" height="{strip_h}" '
            f'fill="#f8fafc" stroke="#e5e7eb"/>'
        )
        parts.append(
            f'<text class="tk" x="{left - 6}" y="{strip_top + strip_h / 2 + 4:.1f}" text-anchor="end">faces</text>'
        )
        gaps = [b.t - a.t for a, b in itertools.pairwise(points) if b.t > a.t]
        min_gap = min(gaps) if gaps else span
        bar_w = min(max(plot_w * min_gap / span * 0.7, 1.2), 8.0)
        for p in points:
            x = sx(p.t)
            if p.faces > 0 and max_faces > 0:
                h = (strip_h - 4) * p.faces / max_faces
                parts.append(
                    f'<rect x="{x - bar_w / 2:.1f}" y="{strip_top + strip_h - h:.1f}" '
                    f'width="{bar_w:.1f}" height="{h:.1f}" fill="#94a3b8">'
                    f"<title>{p.t:.2f} s · {p.faces} face(s)</title></rect>"
                )
            else:
                parts.append(
                    f'<rect x="{x - 0.6:.1f}" y="{strip_top + strip_h - 3:.1f}" '
                    f'width="1.2" height="3" fill="#f87171">'
                    f"<title>{p.t:.2f} s · no face</title></rect>"
                )
        parts.append(f'<text class="tk" x="{left + plot_w + 4}" y="{strip_top + 9:.1f}">{max_faces}</text>')
    parts.append("</svg>")
    return "".join(parts)


# --------------------------------------------------------------------------- detectors


def _fmt_evidence(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    if isinstance(value, list):
        shown = [_fmt_evidence(v) for v in value[:4]]
        more = f", … ({len(value)} items)" if len(value) > 4 else ""
        return "[" + ", ".join(shown) + more + "]"
    return str(value)


_B64 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")


def _is_image_key(key: str) -> bool:
    """Evidence keys ending in ``_jpeg_b64`` hold images (e.g. face_artifacts heatmaps)."""
    return key.endswith("_jpeg_b64")


def _jpeg_imgs(value: object, alt: str) -> str:
    """``<img>`` tags for a base64 JPEG or a list of them; anything not plain base64 is dropped."""
    items = value if isinstance(value, list) else [value]
    out = []
    for i, b64 in enumerate(items):
        if isinstance(b64, str) and b64 and set(b64) <= _B64:
            out.append(f'<img class="heat" alt="{_e(alt)} {i + 1}" src="data:image/jpeg;base64,{b64}">')
    return "".join(out)


def heatmaps_by_track(report: Report) -> dict[int, list[tuple[str, str, float | None, float | None]]]:
    """track id -> (detector, base64 JPEG, t, score) from detectors' ``heatmap_*`` evidence."""
    out: dict[int, list[tuple[str, str, float | None, float | None]]] = {}
    for d in report.detectors:
        imgs = d.evidence.get("heatmap_jpeg_b64")
        ids = d.evidence.get("heatmap_track_ids")
        if not isinstance(imgs, list) or not isinstance(ids, list) or len(imgs) != len(ids):
            continue
        times = d.evidence.get("heatmap_t")
        scores = d.evidence.get("heatmap_scores")
        for k, (img, tid) in enumerate(zip(imgs, ids, strict=True)):
            t = times[k] if isinstance(times, list) and k < len(times) else None
            sc = scores[k] if isinstance(scores, list) and k < len(scores) else None
            if isinstance(img, str) and isinstance(tid, int):
                out.setdefault(tid, []).append((d.name, img, float(t) if t is not None else None,
                                                float(sc) if sc is not None else None))
    return out


def _evidence(det: DetectorReport, keep: int = 6) -> str:
    if not det.evidence:
        return '<span class="muted">—</span>'
    images = "".join(_jpeg_imgs(v, f"{det.name} {k}") for k, v in det.evidence.items() if _is_image_key(k))
    rows = [f"<dt>{_e(k)}</dt><dd>{_e(_fmt_evidence(v))}</dd>" for k, v in det.evidence.items()
            if not _is_image_key(k)]
    pics = f'<div class="crops">{images}</div>' if images else ""
    head = f'{pics}<dl class="ev">{"".join(rows[:keep])}</dl>'
    if len(rows) <= keep:
        return head
    return (
        f'{head}<details><summary>{len(rows) - keep} more</summary><dl class="ev">{"".join(rows[keep:])}</dl></details>'
    )


def _detectors(report: Report) -> str:
    if not report.detectors:
        return (
            '<section class="card" id="detectors"><h2>Detectors</h2>'
            '<p class="muted" style="margin:0">No detector was run.</p></section>'
        )
    names = _series_names(report)
    colours = {n: _PALETTE[i % len(_PALETTE)] for i, n in enumerate(names)}
    rows = []
    for d in report.detectors:
        dot = ""
        if d.name in colours:
            dot = (
                f'<svg width="10" height="10" style="margin-right:6px" aria-hidden="true">'
                f'<circle cx="5" cy="5" r="4.5" fill="{colours[d.name]}"/></svg>'
            )
        if d.applied:
            applied = '<span class="pill yes">applied</span>'
        else:
            why = d.not_applicable or "not applicable"
            applied = f'<span class="pill no">not applied</span><div class="small muted mono">{_e(why)}</div>'
        reasons = "".join(_chip(r) for r in d.reasons) if d.reasons else '<span class="muted">—</span>'
        weight = f"{d.weight * 100:.0f}%" if d.weight > 0 else '<span class="muted">—</span>'
        rows.append(
            "<tr>"
            f'<td><div style="white-space:nowrap">{dot}<b>{_e(d.name)}</b></div>'
            f'<div class="small muted mono">{_e(d.version)}</div></td>'
            f"<td>{applied}</td>"
            f'<td class="num">{_minibar(d.score)}</td>'
            f'<td class="num">{_fmt(d.confidence, 2)}</td>'
            f'<td class="num">{weight}</td>'
            f'<td><div class="chips">{reasons}</div></td>'
            f'<td class="evc">{_evidence(d)}</td>'
            f'<td class="num">{d.elapsed_ms:,.0f}</td>'
            "</tr>"
        )
    return f"""<section class="card" id="detectors"><h2>Detectors</h2>
<div class="scroll"><table class="dets">
<thead><tr><th>Detector</th><th>Status</th><th class="num">Score</th><th class="num">Confidence</th>
<th class="num">Weight</th><th>Reasons</th><th>Key evidence</th><th class="num">ms</th></tr></thead>
<tbody>{"".join(rows)}</tbody></table></div>
<p class="small muted" style="margin:10px 0 0">Weight is the detector's share of the fused
score (fusion {_e(report.fusion_version)}); detectors that did not apply are left out of it.</p>
</section>"""


# --------------------------------------------------------------------------- faces


def _faces(report: Report) -> str:
    if not report.faces:
        body = '<p class="muted" style="margin:0">No face was tracked.</p>'
    else:
        cards = []
        heat = heatmaps_by_track(report)
        for f in report.faces:
            imgs = "".join(
                f'<img alt="face track {f.track_id} crop {i + 1}" '
                f'src="data:image/jpeg;base64,{_e(b64)}">'
                for i, b64 in enumerate(f.crop_jpeg_b64)
            ) or '<span class="small muted">no crops kept</span>'
            for det_name, b64, t, sc in heat.get(f.track_id, []):
                caption = f"{det_name} heatmap" + (f" at {fmt_seconds(t)}" if t is not None else "") + (
                    f", score {sc:.2f}" if sc is not None else "")
                imgs += (f'<figure class="heatfig">{_jpeg_imgs(b64, caption)}'
                         f'<figcaption>{_e(caption)}</figcaption></figure>')
            span = (f"{fmt_seconds(f.first_s)}" if report.media.kind == "image"
                    else f"{fmt_seconds(f.first_s)} – {fmt_seconds(f.last_s)}")
            cards.append(
                f'<div class="track"><h3>Track {_e(f.track_id)}</h3>'
                f'<div class="small muted">{_e(span)} · {_e(f.observations)} observation'
                f'{"s" if f.observations != 1 else ""}</div><div class="crops">{imgs}</div></div>'
            )
        body = f'<div class="tracks">{"".join(cards)}</div>'
    return f'<section class="card" id="faces"><h2>Faces</h2>{body}</section>'


# --------------------------------------------------------------------------- facts


def _kv(rows: Iterable[tuple[str, str]]) -> str:
    return '<dl class="kv">' + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows) + "</dl>"


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def _provenance(report: Report) -> str:
    p = report.provenance
    rows = [
        ("Checked", _yes_no(p.checked)),
        ("Content credential", _yes_no(p.credential_present)),
        ("Validation state", _e(p.validation_state) if p.validation_state else "—"),
    ]
    if p.trust:
        rows.append(("Credential", _e(p.trust)))
    if p.signer:
        rows.append(("Signer", _e(p.signer + (f" (issuer {p.issuer})" if p.issuer else ""))))
    for key, value in p.metadata.items():
        rows.append((_e(key.replace("_", " ").capitalize()), _e(value)))
    if p.digital_source_type:
        source_type = f'<span class="mono">{_e(p.digital_source_type)}</span>'
        rows.append(("Digital source type", source_type))
    if p.status_codes:
        rows.append(("Status codes", "".join(_chip(c) for c in p.status_codes)))
    if p.watermarks:
        rows.append(("Watermarks", "".join(_chip(w) for w in p.watermarks)))
    if p.note:
        rows.append(("Note", f'<span class="muted">{_e(p.note)}</span>'))
    return f'<section class="card" id="provenance"><h2>Provenance</h2>{_kv(rows)}</section>'


def _media(report: Report) -> str:
    m = report.media
    rows: list[tuple[str, str]] = [
        ("Kind", _e(m.kind + (" (animated)" if m.animated else ""))),
        ("Container", _e(m.container)),
    ]
    if m.width and m.height:
        rows.append(("Resolution", f"{m.width} × {m.height}"))
    if m.duration_s is not None:
        rows.append(("Duration", _e(fmt_seconds(m.duration_s))))
    if m.fps:
        rows.append(("Frame rate", f"{m.fps:.3f} fps"))
    if m.frame_count is not None:
        rows.append(("Frames", _e(m.frame_count)))
    if m.video_codec:
        rows.append(("Video codec", _e(m.video_codec)))
    audio = "none"
    if m.has_audio or m.audio_codec:
        audio = " · ".join(
            x for x in (m.audio_codec or "present", f"{m.audio_sample_rate} Hz" if m.audio_sample_rate else "") if x
        )
    rows.append(("Audio", _e(audio)))
    rows.append(("Frames analysed", _e(m.frames_analysed)))
    if m.dense_windows:
        wins = ", ".join(f"{a:.2f}–{b:.2f} s" for a, b in m.dense_windows)
        rows.append(("Dense windows", _e(wins)))
    return f'<section class="card" id="media"><h2>Media</h2>{_kv(rows)}</section>'


def _warnings(report: Report) -> str:
    if not report.warnings:
        body = '<p class="muted" style="margin:0">No warnings.</p>'
    else:
        body = '<ul class="warn">' + "".join(f"<li>{_e(w)}</li>" for w in report.warnings) + "</ul>"
    return f'<section class="card" id="warnings"><h2>Warnings</h2>{body}</section>'


def _timings(report: Report) -> str:
    total = report.timings_ms.get("total", report.elapsed_ms) or 0.0
    rows = []
    for stage, ms in report.timings_ms.items():
        frac = ms / total if total > 0 else 0.0
        bold = ' style="font-weight:600"' if stage == "total" else ""
        bar = "" if stage == "total" else _minibar_plain(frac)
        rows.append(f'<tr{bold}><td>{_e(stage)}</td><td>{bar}</td><td class="num">{ms:,.1f}</td></tr>')
    if "total" not in report.timings_ms:
        rows.append(
            f'<tr style="font-weight:600"><td>total</td><td></td><td class="num">{report.elapsed_ms:,.1f}</td></tr>'
        )
    return (
        f'<section class="card" id="timings"><h2>Timings</h2><table>'
        f'<thead><tr><th>Stage</th><th></th><th class="num">ms</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></section>"
    )


def _minibar_plain(frac: float) -> str:
    width = min(max(frac, 0.0), 1.0) * 100
    return (
        f'<span class="minibar" style="width:120px"><span style="width:{width:.1f}%;background:#93c5fd"></span></span>'
    )


def _versions(report: Report) -> str:
    rows = [
        ("File", f'<span class="break">{_e(report.source.name)}</span>'),
        ("SHA-256", f'<span class="mono break">{_e(report.source.sha256)}</span>'),
        (
            "Size",
            f"{_e(fmt_bytes(report.source.size_bytes))} "
            f'<span class="muted">({report.source.size_bytes:,} bytes)</span>',
        ),
        ("veracity", f'<span class="mono">{_e(report.veracity_version)}</span>'),
        ("Report schema", f'<span class="mono">{_e(report.schema_version)}</span>'),
        ("Fusion", f'<span class="mono">{_e(report.fusion_version)}</span>'),
    ]
    for name, version in report.model_versions.items():
        rows.append((f'<span class="mono">{_e(name)}</span>', f'<span class="mono">{_e(version)}</span>'))
    return f'<section class="card" id="versions"><h2>Source and versions</h2>{_kv(rows)}</section>'


# --------------------------------------------------------------------------- entry points


def render_html(report: Report) -> str:
    """Return the report as one self-contained HTML document (no scripts, no external loads)."""
    title = f"Veracity report — {report.source.name}"
    body = "\n".join(
        [
            _header(report),
            _reasons(report),
            checked_section(report),
            _timeline(report),
            _detectors(report),
            _faces(report),
            f'<div class="grid">{_provenance(report)}{_media(report)}</div>',
            f'<div class="grid" style="margin-top:16px">{_warnings(report)}{_timings(report)}</div>',
            f'<div style="margin-top:16px">{_versions(report)}</div>',
            f"<footer>Generated offline by veracity {_e(report.veracity_version)}. Scores are "
            "forensic indicators, not proof; read them with the evidence above.</footer>",
        ]
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{_CSP}">
<meta name="generator" content="veracity {_e(report.veracity_version)}">
<title>{_e(title)}</title>
<style>{_CSS}</style>
</head>
<body>
<main>
{body}
</main>
</body>
</html>
"""


def write_html(report: Report, path: Path) -> Path:
    """Write :func:`render_html` output to ``path`` (UTF-8), creating parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(report), encoding="utf-8")
    return path
