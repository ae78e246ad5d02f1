"""Turn a :class:`Report` and job metadata into what the templates draw.

Pure functions over validated models: no I/O, no scoring. The templates only loop and print;
every decision about wording, colours, geometry and which optional fields exist lives here, so
it is unit-tested on synthetic reports without a server or a browser.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from markupsafe import Markup

from veracity.report.html import (
    LABEL_COLOURS,
    fmt_bytes,
    fmt_seconds,
    series_colours,
    timeline_message,
    timeline_svg,
)
from veracity.report.model import DetectorReport, FaceSummary, Provenance, Report
from veracity.web.text import LABEL_TEXT, detector_looks_at, not_applicable_text, reason_text

__all__ = [
    "DetectorCard",
    "FaceView",
    "Gauge",
    "HeatmapView",
    "JobView",
    "ProvenanceView",
    "ReviewView",
    "TreeNode",
    "data_uri",
    "detector_cards",
    "face_views",
    "fmt_bytes",
    "fmt_seconds",
    "gauge",
    "media_rows",
    "provenance_view",
    "result_context",
    "tree",
]

GROUND_TRUTH = ("authentic", "manipulated", "synthetic", "unsure")
_B64 = re.compile(r"^[A-Za-z0-9+/]+={0,2}$")
_DATA_URI = re.compile(r"^data:image/(png|jpeg|webp|gif);base64,([A-Za-z0-9+/]+={0,2})$")
_SIGNATURES = {"iVBORw0KGgo": "png", "/9j/": "jpeg", "UklGR": "webp", "R0lGOD": "gif"}


# --------------------------------------------------------------------------- job metadata


@dataclass(frozen=True, slots=True)
class ReviewView:
    ground_truth: str
    comment: str
    reviewer: str
    at: datetime | None = None


@dataclass(frozen=True, slots=True)
class JobView:
    """What the UI knows about a job, whatever stores it (the service adapts its rows to this)."""

    id: str
    status: str  # queued | running | done | failed
    source_name: str
    created_at: datetime | None = None
    progress: float | None = None  # 0..1 while running
    stage: str | None = None
    kind: str | None = None
    label: str | None = None
    score: float | None = None
    error: str | None = None
    review: ReviewView | None = None
    owner: str | None = None

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed", "succeeded", "error", "cancelled")

    @property
    def uncertainty(self) -> float:
        """1 at a score of 0.5 (a coin toss), 0 at either end; unknown scores count as certain."""
        if self.score is None:
            return 0.0
        return 1.0 - abs(self.score - 0.5) * 2.0


def review_queue_order(jobs: Sequence[JobView]) -> list[JobView]:
    """Most uncertain first (in tiers of 0.1, so near-ties go by date), then most recent: where a
    reviewer's label teaches calibration most."""

    def key(j: JobView) -> tuple[float, float]:
        ts = j.created_at.timestamp() if j.created_at else 0.0
        return (-round(j.uncertainty, 1), -ts)

    return sorted(jobs, key=key)


# --------------------------------------------------------------------------- formatting


def score_colour(score: float | None) -> str:
    """Green through amber to red along 0..1; grey when there is no score."""
    if score is None or not math.isfinite(score):
        return "#6b7280"
    s = min(max(score, 0.0), 1.0)
    return f"hsl({round(130 * (1 - s))},70%,38%)"


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


def data_uri(value: object) -> str | None:
    """A safe ``data:image/...`` URI from a data URI or bare base64 PNG/JPEG/WebP/GIF, else None.

    Evidence is untrusted: anything that is not plainly an image in base64 is dropped rather
    than put into a ``src`` attribute.
    """
    if not isinstance(value, str) or not value:
        return None
    m = _DATA_URI.match(value)
    if m:
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


@dataclass(frozen=True, slots=True)
class FaceCrop:
    src: str
    heatmap: str | None
    alt: str


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


@dataclass(frozen=True, slots=True)
class FaceView:
    track_id: int
    span: str
    observations: int
    crops: list[FaceCrop]
    score: float | None = None
    heatmaps: list[HeatmapView] = field(default_factory=list)

    @property
    def has_heatmap(self) -> bool:
        return bool(self.heatmaps) or any(c.heatmap for c in self.crops)


def _heatmaps_of(face: FaceSummary) -> list[str | None]:
    """Heatmaps a face summary carries in any ``*heatmap*`` field (one per crop, or one for all)."""
    found: list[str | None] = []
    for name, value in face.model_dump().items():
        if "heatmap" not in name:
            continue
        values = value if isinstance(value, list) else [value]
        found = [data_uri(v) for v in values]
        break
    return found


def _score_of(face: FaceSummary) -> float | None:
    value = face.model_dump().get("score")
    return float(value) if isinstance(value, int | float) else None


def face_views(report: Report) -> list[FaceView]:
    """Each tracked face with its crops, and the detectors' heatmaps for that track."""
    by_track: dict[int, list[HeatmapView]] = {}
    for hm in evidence_heatmaps(report):
        if hm.track_id is not None:
            by_track.setdefault(hm.track_id, []).append(hm)
    views = []
    still = report.media.kind == "image"
    for f in report.faces:
        heat = _heatmaps_of(f)
        crops = []
        for i, b64 in enumerate(f.crop_jpeg_b64):
            src = data_uri(b64 if b64.startswith("data:") else f"data:image/jpeg;base64,{b64}")
            if src is None:
                continue
            h = heat[i] if i < len(heat) else (heat[0] if len(heat) == 1 else None)
            crops.append(FaceCrop(src, h, f"face {f.track_id}, crop {i + 1}"))
        span = fmt_seconds(f.first_s) if still else f"{fmt_seconds(f.first_s)} – {fmt_seconds(f.last_s)}"
        views.append(FaceView(f.track_id, span, f.observations, crops, _score_of(f), by_track.get(f.track_id, [])))
    return views


def _nth(values: object, i: int) -> object:
    return values[i] if isinstance(values, list) and i < len(values) else None


def evidence_heatmaps(report: Report) -> list[HeatmapView]:
    """Every heatmap image a detector put in its evidence (any ``*heatmap*`` key holding images),
    matched by position with the ``heatmap_track_ids`` / ``heatmap_t`` / ``heatmap_scores`` lists
    when the detector gives them (face_artifacts does)."""
    out: list[HeatmapView] = []
    for d in report.detectors:
        ev = d.evidence
        for key, value in ev.items():
            if "heatmap" not in key.lower():
                continue
            for i, v in enumerate(value if isinstance(value, list) else [value]):
                uri = data_uri(v)
                if uri is None:
                    continue
                track, t, score = _nth(ev.get("heatmap_track_ids"), i), _nth(ev.get("heatmap_t"), i), None
                score = _nth(ev.get("heatmap_scores"), i)
                out.append(
                    HeatmapView(
                        detector=d.name,
                        src=uri,
                        track_id=track if isinstance(track, int) and not isinstance(track, bool) else None,
                        t=float(t) if isinstance(t, int | float) and not isinstance(t, bool) else None,
                        score=float(score) if isinstance(score, int | float) and not isinstance(score, bool) else None,
                    )
                )
    return out


# --------------------------------------------------------------------------- detectors


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
    reasons: list[tuple[str, str]]
    evidence: list[tuple[str, str]]
    elapsed_ms: float
    series_colour: str | None


def _fmt_evidence(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    if isinstance(value, list):
        shown = [_fmt_evidence(v) for v in value[:6]]
        more = f", … ({len(value)} items)" if len(value) > 6 else ""
        return "[" + ", ".join(shown) + more + "]"
    text = str(value)
    return text if len(text) <= 120 else text[:117] + "…"


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


def detector_cards(report: Report) -> list[DetectorCard]:
    colours = series_colours(report)
    cards = []
    for d in report.detectors:
        evidence = [(k, _fmt_evidence(v)) for k, v in d.evidence.items() if "heatmap" not in k.lower()]
        cards.append(
            DetectorCard(
                name=d.name,
                version=d.version,
                applied=d.applied,
                score=d.score,
                score_text="—" if d.score is None else f"{d.score:.2f}",
                colour=score_colour(d.score),
                confidence=d.confidence,
                weight_pct=round(d.weight * 100),
                looks_at=detector_looks_at(d.name),
                why=_why(d),
                reasons=[(r, reason_text(r)) for r in d.reasons],
                evidence=evidence,
                elapsed_ms=d.elapsed_ms,
                series_colour=colours.get(d.name),
            )
        )
    # Applied detectors first, strongest signal first; the rest keep report order.
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
            return TreeNode(key, ", ".join(_fmt_evidence(v) for v in value))
        kids = [
            tree(v, _title_of(v) if isinstance(v, Mapping) else f"#{i + 1}", depth + 1) for i, v in enumerate(value)
        ]
        return TreeNode(key, f"{len(value)} item{'s' if len(value) != 1 else ''}", kids)
    return TreeNode(key, _fmt_evidence(value))


_KNOWN_PROV = {
    "trust",
    "credential_present",
    "validation_state",
    "status_codes",
    "digital_source_type",
    "watermarks",
    "checked",
    "note",
    "declares_ai",  # the label and the digital source type already say it
}
_SIGNER_KEYS = ("signer", "issuer", "signed_by", "signature_issuer", "common_name")
_DST_PREFIX = "http://cv.iptc.org/newscodes/digitalsourcetype/"
_DST_TEXT = {
    "trainedAlgorithmicMedia": "Generated by a trained AI model",
    "compositeWithTrainedAlgorithmicMedia": "Composite that includes AI-generated parts",
    "algorithmicMedia": "Generated by an algorithm (not AI-trained)",
    "digitalCapture": "Captured by a digital camera",
    "compositeCapture": "Composite of camera captures",
    "digitalArt": "Digital art made by a person",
    "minorHumanEdits": "Captured, with minor human edits",
    "composite": "Composite of several sources",
    "compositeSynthetic": "Composite including synthetic elements",
}


@dataclass(frozen=True, slots=True)
class ProvenanceView:
    checked: bool
    credential_present: bool
    state: str | None
    state_text: str
    state_tone: str  # good | warn | bad | none
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
    codes = _explained(p, credential)
    text, tone = _state(p)
    trust = data.get("trust")
    if isinstance(trust, str) and trust.strip() and p.checked:
        # Provenance words its own verdict (e.g. "signed, signer not on your trust list").
        text = trust.strip()[0].upper() + trust.strip()[1:] + ("" if trust.strip().endswith(".") else ".")
    signer = _find(full, _SIGNER_KEYS)
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
    facts = [tree(v, k) for k, v in extra.items()]
    wms = [tree(w, f"#{i + 1}") if not isinstance(w, str) else TreeNode(w) for i, w in enumerate(p.watermarks)]
    return ProvenanceView(
        checked=p.checked,
        credential_present=p.credential_present,
        state=p.validation_state,
        state_text=text,
        state_tone=tone,
        signer=signer if isinstance(signer, str) else (None if signer is None else _fmt_evidence(signer)),
        digital_source_type=dst if isinstance(dst, str) else None,
        digital_source_text=_DST_TEXT.get(dst_short or "") if dst_short else None,
        status_codes=codes,
        watermarks=wms,
        actions=tree(actions, "actions").children if isinstance(actions, list) else [],
        ingredients=tree(ingredients, "ingredients").children if isinstance(ingredients, list) else [],
        facts=facts,
        note=p.note,
    )


# --------------------------------------------------------------------------- media


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
    rows.append(("SHA-256", report.source.sha256))
    return rows


# --------------------------------------------------------------------------- the result page


def result_context(
    report: Report,
    job: JobView | None = None,
    *,
    frames_url: str | None = None,
    credential: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything ``result.html`` needs, as plain values (strings from the report stay unescaped
    here: Jinja's autoescape does that; only the SVG drawn by :mod:`veracity.report.html`, which
    escapes its own text, is marked safe)."""
    svg = timeline_svg(report)
    return {
        "report": report,
        "job": job,
        "gauge": gauge(report.deepfake_score, report.label),
        "label_text": LABEL_TEXT.get(report.label, ""),
        "label_colour": LABEL_COLOURS.get(report.label, LABEL_COLOURS["inconclusive"]),
        "reasons": [(code, reason_text(code)) for code in report.reasons],
        "detectors": detector_cards(report),
        "timeline_svg": Markup(svg),  # drawn and escaped by report.html
        "timeline_message": timeline_message(report),
        "timeline_colours": series_colours(report),
        "timeline_points": [
            {"t": p.t, "faces": p.faces, "scores": p.scores} for p in sorted(report.timeline, key=lambda p: p.t)
        ],
        "frames_url": frames_url,
        "faces": face_views(report),
        "evidence_heatmaps": [
            h for h in evidence_heatmaps(report) if h.track_id not in {f.track_id for f in report.faces}
        ],
        "provenance": provenance_view(report.provenance, credential),
        "media_rows": media_rows(report),
        "warnings": list(report.warnings),
    }
