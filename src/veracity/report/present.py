"""The presentation model: a :class:`Report` turned once into what a page draws.

Both renderings of a report, the self-contained HTML export (:mod:`veracity.report.html`) and the
web result page (:mod:`veracity.web`), are Jinja templates over the :class:`ReportView` built
here, sharing the partials in ``report/templates/_report.html`` and the wording in
:mod:`veracity.report.wording`. Pure functions over validated models: no I/O, no scoring; every
decision about wording, colours, geometry and which optional fields exist lives here, so it is
unit-tested on synthetic reports without a server or a browser. Strings from the report stay
unescaped here: Jinja's autoescape escapes them where they are printed.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from veracity.report.model import DetectorReport, Provenance, Report
from veracity.report.timeline import TimelineView, series_colours, timeline_message, timeline_view
from veracity.report.wording import (
    DST_TEXT,
    LABEL_TEXT,
    detector_looks_at,
    not_applicable_text,
    reason_text,
)

__all__ = [
    "LABEL_COLOURS",
    "DetectorCard",
    "FaceCrop",
    "FaceView",
    "Gauge",
    "HeatmapView",
    "ProvenanceView",
    "Reason",
    "ReportView",
    "TimelineView",
    "TreeNode",
    "data_uri",
    "detector_cards",
    "evidence_heatmaps",
    "face_views",
    "fmt_bytes",
    "fmt_evidence",
    "fmt_score",
    "fmt_seconds",
    "gauge",
    "media_rows",
    "present",
    "provenance_view",
    "score_colour",
    "series_colours",
    "timeline_message",
    "timeline_view",
    "tree",
]

LABEL_COLOURS: dict[str, str] = {
    "authentic": "#1a7f37",
    "suspicious": "#c77700",
    "manipulated": "#c62828",
    "synthetic": "#6f42c1",
    "inconclusive": "#6b7280",
}

_EVIDENCE_LIST_ITEMS = 4  # a list in the evidence shows this many items, then "… (n items)"
_EVIDENCE_TEXT_CHARS = 120

# --------------------------------------------------------------------------- formatting


def fmt_bytes(n: int | None) -> str:
    """A byte count for people (KiB, MiB, GiB); a dash when unknown."""
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


def fmt_score(value: float | None, digits: int = 2) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:.{digits}f}"


def score_colour(score: float | None) -> str:
    """Green through amber to red along 0..1; grey when there is no score."""
    if score is None or not math.isfinite(score):
        return "#6b7280"
    s = min(max(score, 0.0), 1.0)
    return f"hsl({round(130 * (1 - s))},70%,38%)"


def fmt_evidence(value: object) -> str:
    """One evidence value as short text: lists cut after a few items, long text cut."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    if isinstance(value, list | tuple):
        shown = [fmt_evidence(v) for v in value[:_EVIDENCE_LIST_ITEMS]]
        more = f", … ({len(value)} items)" if len(value) > _EVIDENCE_LIST_ITEMS else ""
        return "[" + ", ".join(shown) + more + "]"
    text = str(value)
    return text if len(text) <= _EVIDENCE_TEXT_CHARS else text[: _EVIDENCE_TEXT_CHARS - 3] + "…"


# --------------------------------------------------------------------------- gauge


@dataclass(frozen=True, slots=True)
class Gauge:
    """A half-circle gauge: the track, the filled arc up to the score and the needle tip."""

    score: float | None
    label: str
    colour: str
    track: str
    arc: str  # "" when there is no score
    tip_x: float
    tip_y: float
    text: str


def gauge(score: float | None, label: str, *, cx: float = 100.0, cy: float = 100.0, r: float = 80.0) -> Gauge:
    track = f"M {cx - r:.1f} {cy:.1f} A {r:.1f} {r:.1f} 0 0 1 {cx + r:.1f} {cy:.1f}"
    colour = LABEL_COLOURS.get(label, LABEL_COLOURS["inconclusive"])
    if score is None:
        return Gauge(None, label, colour, track, "", cx, cy, "—")
    s = min(max(score, 0.0), 1.0)
    theta = math.pi * (1.0 - s)
    x, y = cx + r * math.cos(theta), cy - r * math.sin(theta)
    arc = f"M {cx - r:.1f} {cy:.1f} A {r:.1f} {r:.1f} 0 0 1 {x:.1f} {y:.1f}" if s > 0 else ""
    return Gauge(s, label, colour, track, arc, round(x, 1), round(y, 1), f"{s:.2f}")


# --------------------------------------------------------------------------- images

_B64 = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")
_DATA_URI = re.compile(r"^data:image/(png|jpeg|webp|gif);base64,([A-Za-z0-9+/]+={0,2})$")
_SIGNATURES = {"iVBORw0KGgo": "png", "/9j/": "jpeg", "UklGR": "webp", "R0lGOD": "gif"}


def data_uri(value: object) -> str | None:
    """A safe ``data:image/...`` URI from a data URI or bare base64 PNG/JPEG/WebP/GIF, else None.

    Evidence is untrusted: anything that is not plainly an image in base64 is dropped rather
    than put into a ``src`` attribute.
    """
    if not isinstance(value, str) or not value:
        return None
    if _DATA_URI.match(value):
        return value
    if not _B64.match(value):
        return None
    for prefix, kind in _SIGNATURES.items():
        if value.startswith(prefix):
            try:
                base64.b64decode(value[:64] + "=" * (-len(value[:64]) % 4), validate=True)
            except (binascii.Error, ValueError):
                return None
            return f"data:image/{kind};base64,{value}"
    return None


# --------------------------------------------------------------------------- heatmaps


@dataclass(frozen=True, slots=True)
class HeatmapView:
    """One heatmap a detector drew (already blended over its face crop), with where and when."""

    detector: str
    src: str
    track_id: int | None = None
    t: float | None = None
    score: float | None = None

    @property
    def caption(self) -> str:
        parts = [f"{self.detector} heatmap"]
        if self.t is not None:
            parts.append(f"at {fmt_seconds(self.t)}")
        if self.score is not None:
            parts.append(f"score {self.score:.2f}")
        return " · ".join(parts)

    @property
    def alt(self) -> str:
        """The caption as a phrase, for the image's alternative text."""
        text = f"{self.detector} heatmap"
        if self.t is not None:
            text += f" at {fmt_seconds(self.t)}"
        if self.score is not None:
            text += f", score {self.score:.2f}"
        return text


def evidence_heatmaps(report: Report) -> list[HeatmapView]:
    """Every detector's heatmaps, in report order (an image that is not plainly one is dropped)."""
    return [HeatmapView(detector=d.name, src=src, track_id=h.track_id, t=h.t, score=h.score)
            for d in report.detectors for h in d.heatmaps
            if (src := data_uri(h.jpeg_b64)) is not None]


# --------------------------------------------------------------------------- faces


@dataclass(frozen=True, slots=True)
class FaceCrop:
    src: str
    alt: str


@dataclass(frozen=True, slots=True)
class FaceView:
    track_id: int
    span: str
    observations: int
    crops: list[FaceCrop]
    heatmaps: list[HeatmapView] = field(default_factory=list)

    @property
    def has_heatmap(self) -> bool:
        return bool(self.heatmaps)


def face_views(report: Report, heatmaps: Sequence[HeatmapView] | None = None) -> list[FaceView]:
    """Each tracked face with its crops, and the detectors' heatmaps for that track."""
    by_track: dict[int, list[HeatmapView]] = {}
    for hm in evidence_heatmaps(report) if heatmaps is None else heatmaps:
        if hm.track_id is not None:
            by_track.setdefault(hm.track_id, []).append(hm)
    views = []
    still = report.media.kind == "image"
    for f in report.faces:
        crops = []
        for i, b64 in enumerate(f.crop_jpeg_b64):
            src = data_uri(b64 if b64.startswith("data:") else f"data:image/jpeg;base64,{b64}")
            if src is None:
                continue
            crops.append(FaceCrop(src, f"face track {f.track_id} crop {i + 1}"))
        span = fmt_seconds(f.first_s) if still else f"{fmt_seconds(f.first_s)} – {fmt_seconds(f.last_s)}"
        views.append(FaceView(f.track_id, span, f.observations, crops, by_track.get(f.track_id, [])))
    return views


# --------------------------------------------------------------------------- detectors


class Reason(NamedTuple):
    code: str
    text: str


@dataclass(frozen=True, slots=True)
class DetectorCard:
    name: str
    version: str
    applied: bool
    score: float | None
    score_text: str
    colour: str
    confidence: float
    weight_pct: int
    looks_at: str
    why: str
    not_applicable: str | None
    reasons: list[Reason]
    evidence: list[tuple[str, str]]
    heatmaps: list[HeatmapView]
    elapsed_ms: float
    series_colour: str | None


def _why(d: DetectorReport) -> str:
    if not d.applied:
        return not_applicable_text(d.not_applicable)
    if d.score is None:
        return "Applied but produced no score."
    if d.reasons:
        return "Flagged: " + " ".join(reason_text(r) for r in d.reasons)
    if d.score >= 0.5:
        return "Scored high, but below the level at which it names a reason."
    return "Looked and found nothing unusual."


def detector_cards(report: Report, heatmaps: Sequence[HeatmapView] | None = None) -> list[DetectorCard]:
    """One card per detector: applied ones first, strongest signal first; the rest keep report order."""
    colours = series_colours(report)
    found = evidence_heatmaps(report) if heatmaps is None else heatmaps
    cards = []
    for d in report.detectors:
        cards.append(
            DetectorCard(
                name=d.name,
                version=d.version,
                applied=d.applied,
                score=d.score,
                score_text=fmt_score(d.score),
                colour=score_colour(d.score),
                confidence=d.confidence,
                weight_pct=round(d.weight * 100),
                looks_at=detector_looks_at(d.name),
                why=_why(d),
                not_applicable=None if d.applied else (d.not_applicable or "not_applicable"),
                reasons=[Reason(r, reason_text(r)) for r in d.reasons],
                evidence=[(k, fmt_evidence(v)) for k, v in d.evidence.items()],
                heatmaps=[h for h in found if h.detector == d.name],
                elapsed_ms=d.elapsed_ms,
                series_colour=colours.get(d.name),
            )
        )
    return sorted(cards, key=lambda c: (not c.applied, -(c.score or 0.0) * c.weight_pct if c.applied else 0))


# --------------------------------------------------------------------------- provenance


@dataclass(frozen=True, slots=True)
class TreeNode:
    """One row of a generic nested value: a key, a printable value, and children."""

    key: str
    value: str = ""
    children: list[TreeNode] = field(default_factory=list)


def _title_of(item: Mapping[str, Any]) -> str:
    for k in ("title", "name", "label", "action", "id"):
        v = item.get(k)
        if isinstance(v, str) and v:
            return v
    return ""


def tree(value: object, key: str = "", depth: int = 0) -> TreeNode:
    """Any JSON-like value as a tree (ingredients of ingredients, action lists, metadata)."""
    if depth > 12:
        return TreeNode(key, "…")
    if isinstance(value, Mapping):
        title = _title_of(value)
        kids = [
            tree(v, str(k), depth + 1)
            for k, v in value.items()
            if v not in (None, [], {}, "") and not (title and v == title and key in ("", title))
        ]
        return TreeNode(key or title, "", kids)
    if isinstance(value, list | tuple):
        if all(isinstance(v, str | int | float | bool) for v in value):
            return TreeNode(key, ", ".join(fmt_evidence(v) for v in value))
        kids = [
            tree(v, _title_of(v) if isinstance(v, Mapping) else f"#{i + 1}", depth + 1) for i, v in enumerate(value)
        ]
        return TreeNode(key, f"{len(value)} item{'s' if len(value) != 1 else ''}", kids)
    return TreeNode(key, fmt_evidence(value))


_KNOWN_PROV = {
    "trust",
    "credential_present",
    "validation_state",
    "status_codes",
    "digital_source_type",
    "watermarks",
    "checked",
    "note",
    "issuer",  # shown with the signer
    "declares_ai",  # the label and the digital source type already say it
}
_SIGNER_KEYS = ("signer", "issuer", "signed_by", "signature_issuer", "common_name")


@dataclass(frozen=True, slots=True)
class ProvenanceView:
    checked: bool
    credential_present: bool
    state: str | None
    state_text: str
    state_tone: str  # good | warn | bad | none
    trust: str | None  # provenance's own one-line wording of the credential
    signer: str | None
    digital_source_type: str | None
    digital_source_text: str | None
    status_codes: list[tuple[str, str]]  # (code, explanation or "")
    watermarks: list[TreeNode]
    actions: list[TreeNode]
    ingredients: list[TreeNode]
    facts: list[TreeNode]
    note: str | None


def _find(data: Mapping[str, Any], keys: Sequence[str]) -> Any:
    """First non-empty value under any of ``keys``, searching nested mappings (manifest summaries)."""
    for k in keys:
        v = data.get(k)
        if v not in (None, "", [], {}):
            return v
    for v in data.values():
        if isinstance(v, Mapping):
            found = _find(v, keys)
            if found not in (None, "", [], {}):
                return found
    return None


def _state(p: Provenance) -> tuple[str, str]:
    """The credential's state in words: "Valid" means a good signature by a signer not on the
    trust list, which must not read as "invalid" (nor as "trusted")."""
    if not p.checked:
        return "Provenance was not checked for this input.", "none"
    if not p.credential_present:
        return "No content credential. (Absent credentials prove nothing either way.)", "none"
    if p.validation_state == "Trusted":
        return "Signed by a signer on your trust list.", "good"
    if p.validation_state == "Valid":
        return "Signed, signer not on your trust list.", "warn"
    if p.validation_state == "Invalid":
        return "Credential present but invalid: the file or its manifest was altered.", "bad"
    return "Credential present; validation state unknown.", "warn"


def _explained(p: Provenance, credential: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """(code, explanation) for each status code; explanations come from the full credential."""
    explained: dict[str, str] = {}
    for entry in (credential or {}).get("status") or []:
        if isinstance(entry, Mapping) and isinstance(entry.get("code"), str):
            explained.setdefault(entry["code"], str(entry.get("explanation") or ""))
    codes = [str(c) for c in p.status_codes] or list(explained)
    return [(c, explained.get(c, "")) for c in dict.fromkeys(codes)]


def provenance_view(p: Provenance, credential: Mapping[str, Any] | None = None) -> ProvenanceView:
    """The provenance block in words. ``credential`` is the full manifest summary when the media
    was kept and can be read again (actions, ingredients, signer); the report carries a summary."""
    data = p.model_dump()
    manifest = (credential or {}).get("manifest")
    full: dict[str, Any] = {**data, "manifest": manifest} if isinstance(manifest, Mapping) else data
    text, tone = _state(p)
    signer = _find(full, _SIGNER_KEYS)
    signer_text = signer if isinstance(signer, str) else (None if signer is None else fmt_evidence(signer))
    if signer_text and p.issuer and p.issuer != signer_text:
        signer_text += f" (issuer {p.issuer})"
    dst = p.digital_source_type or _find(full, ("digital_source_type", "digitalSourceType"))
    dst_short = dst.rsplit("/", 1)[-1] if isinstance(dst, str) else None
    actions = _find(full, ("actions",))
    ingredients = _find(full, ("ingredients",))
    extra = {
        k: v
        for k, v in data.items()
        if k not in _KNOWN_PROV
        and k not in ("actions", "ingredients", "signer")  # shown in their own rows
        and v not in (None, "", [], {})
    }
    trust = p.trust.strip() if p.checked and isinstance(p.trust, str) and p.trust.strip() else None
    return ProvenanceView(
        checked=p.checked,
        credential_present=p.credential_present,
        state=p.validation_state,
        state_text=text,
        state_tone=tone,
        trust=trust,
        signer=signer_text,
        digital_source_type=dst if isinstance(dst, str) else None,
        digital_source_text=DST_TEXT.get(dst_short or "") if dst_short else None,
        status_codes=_explained(p, credential),
        watermarks=[TreeNode(w) if isinstance(w, str) else tree(w, f"#{i + 1}") for i, w in enumerate(p.watermarks)],
        actions=tree(actions, "actions").children if isinstance(actions, list) else [],
        ingredients=tree(ingredients, "ingredients").children if isinstance(ingredients, list) else [],
        facts=[tree(v, k) for k, v in extra.items()],
        note=p.note,
    )


# --------------------------------------------------------------------------- media, timings, versions


def media_rows(report: Report) -> list[tuple[str, str]]:
    m = report.media
    rows = [
        ("File", report.source.name),
        ("Kind", m.kind + (" (animated)" if m.animated else "")),
        ("Container", m.container),
        ("Size", fmt_bytes(report.source.size_bytes)),
    ]
    if m.width and m.height:
        rows.append(("Resolution", f"{m.width} × {m.height}"))
    if m.duration_s is not None:
        rows.append(("Duration", fmt_seconds(m.duration_s)))
    if m.fps:
        rows.append(("Frame rate", f"{m.fps:.3g} fps"))
    if m.frame_count is not None:
        rows.append(("Frames", str(m.frame_count)))
    if m.video_codec:
        rows.append(("Video codec", m.video_codec))
    if m.has_audio or m.audio_codec:
        rate = f" · {m.audio_sample_rate} Hz" if m.audio_sample_rate else ""
        rows.append(("Audio", (m.audio_codec or "present") + rate))
    elif m.kind != "image":
        rows.append(("Audio", "none"))
    rows.append(("Frames analysed", str(m.frames_analysed)))
    if m.dense_windows:
        rows.append(("Dense windows", ", ".join(f"{a:.2f}–{b:.2f} s" for a, b in m.dense_windows)))
    rows.append(("SHA-256", report.source.sha256))
    return rows


@dataclass(frozen=True, slots=True)
class TimingRow:
    stage: str
    ms: float
    share_pct: float | None  # of the total; None on the total row


def timing_rows(report: Report) -> list[TimingRow]:
    total = report.timings_ms.get("total", report.elapsed_ms) or 0.0
    rows = [
        TimingRow(stage, ms, None if stage == "total" else (min(max(ms / total, 0.0), 1.0) * 100 if total > 0 else 0.0))
        for stage, ms in report.timings_ms.items()
    ]
    if "total" not in report.timings_ms:
        rows.append(TimingRow("total", report.elapsed_ms, None))
    return rows


def version_rows(report: Report) -> list[tuple[str, str]]:
    rows = [
        ("veracity", report.veracity_version),
        ("Report schema", report.schema_version),
        ("Fusion", report.fusion_version),
    ]
    return rows + list(report.model_versions.items())


# --------------------------------------------------------------------------- the whole report


@dataclass(frozen=True, slots=True)
class ReportView:
    """Everything either rendering of a report draws, built once by :func:`present`."""

    report: Report
    label_text: str
    label_colour: str
    score_text: str
    gauge: Gauge
    reasons: list[Reason]
    detectors: list[DetectorCard]
    timeline: TimelineView | None
    timeline_message: str
    timeline_points: list[dict[str, Any]]
    faces: list[FaceView]
    loose_heatmaps: list[HeatmapView]  # heatmaps whose track is not among the faces
    provenance: ProvenanceView
    media_rows: list[tuple[str, str]]
    warnings: list[str]
    timings: list[TimingRow]
    versions: list[tuple[str, str]]


def present(report: Report, credential: Mapping[str, Any] | None = None) -> ReportView:
    """Build the presentation model of ``report``. ``credential`` is the full content credential
    re-read from kept media, when there is one (the report carries a summary)."""
    heat = evidence_heatmaps(report)
    tracks = {f.track_id for f in report.faces}
    return ReportView(
        report=report,
        label_text=LABEL_TEXT.get(report.label, ""),
        label_colour=LABEL_COLOURS.get(report.label, LABEL_COLOURS["inconclusive"]),
        score_text=fmt_score(report.deepfake_score),
        gauge=gauge(report.deepfake_score, report.label),
        reasons=[Reason(code, reason_text(code)) for code in report.reasons],
        detectors=detector_cards(report, heat),
        timeline=timeline_view(report),
        timeline_message=timeline_message(report),
        timeline_points=[
            {"t": p.t, "faces": p.faces, "scores": p.scores} for p in sorted(report.timeline, key=lambda p: p.t)
        ],
        faces=face_views(report, heat),
        loose_heatmaps=[h for h in heat if h.track_id not in tracks],
        provenance=provenance_view(report.provenance, credential),
        media_rows=media_rows(report),
        warnings=list(report.warnings),
        timings=timing_rows(report),
        versions=version_rows(report),
    )
