"""The one orchestration: ``analyze(source) -> Report``, used by the CLI, the service and eval.

An :class:`Analyzer` owns the heavy, lazily built parts (face graphs, detector models) so a batch
or a worker reuses them; it holds no per-analysis state between calls.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np

from veracity import __version__
from veracity.config import AnalysisSettings, Options, Settings
from veracity.detectors import registry
from veracity.detectors.base import AnalysisContext, Detector, DetectorResult, run_detector
from veracity.faces import FaceMesher, FaceResult, find_faces
from veracity.fusion import FusionParams, Verdict, apply_provenance, fuse
from veracity.fusion.evidence import apply_missing_evidence
from veracity.media import DecodedMedia, decode, plan_sampling, probe
from veracity.report.checked import with_text
from veracity.report.images import heatmap_image, jpeg_b64
from veracity.report.model import (
    CheckedDetector,
    DetectorReport,
    Explanation,
    FaceSummary,
    LabelThresholds,
    MediaSummary,
    Provenance,
    Report,
    SourceInfo,
    TimelinePoint,
)
from veracity.report.provenance import check as check_provenance

Progress = Callable[[str], None]
_CROPS_PER_TRACK = 4
_CROP_SIDE = 112  # px of the face crops a report carries


class Analyzer:
    """Reusable analysis engine. Not thread-safe: one per worker thread."""

    def __init__(self, settings: AnalysisSettings | None = None, *, fusion: str | None = None) -> None:
        # Only the analysis part: detectors never see the service's secrets.
        self.settings = (settings or Settings.from_env()).analysis
        self.fusion = FusionParams.load(fusion) if fusion else FusionParams.load()
        self._mesher: FaceMesher | None = None
        self._detectors: dict[str, Detector] = {}

    def _get_mesher(self, options: Options) -> FaceMesher:
        if self._mesher is None or self._mesher.max_faces != options.max_faces:
            if self._mesher is not None:
                self._mesher.close()
            self._mesher = FaceMesher(max_faces=options.max_faces)
        return self._mesher

    def _get_detectors(self, options: Options) -> list[Detector]:
        wanted = options.detectors if options.detectors is not None else tuple(registry.names())
        for name in wanted:
            if name not in self._detectors:
                self._detectors[name] = registry.create(name)
        return [self._detectors[n] for n in wanted]

    def close(self) -> None:
        if self._mesher is not None:
            self._mesher.close()
            self._mesher = None

    def analyze(self, source: Path | str, options: Options | None = None, progress: Progress | None = None) -> Report:
        options = options or Options()
        note = progress or (lambda _stage: None)
        started = time.perf_counter()
        timings: dict[str, float] = {}

        note("probe")
        t = time.perf_counter()
        info = probe(Path(source), self.settings.limits)
        timings["probe"] = _ms(t)

        note("decode")
        media = decode(info, plan_sampling(info, options), self.settings.limits)
        timings["decode"] = media.decode_ms

        note("faces")
        if media.frames:
            faces = find_faces(media, self._get_mesher(options), keep_crops=options.keep_crops)
        else:
            faces = FaceResult(tracks=[], frames_seen=0, frames_with_faces=0)
        timings["faces"] = faces.elapsed_ms

        ctx = AnalysisContext(media=media, faces=faces, options=options, settings=self.settings)
        results: list[DetectorResult] = []
        for det in self._get_detectors(options):
            note(det.name)
            results.append(run_detector(det, ctx))
            timings[det.name] = results[-1].elapsed_ms

        note("provenance")
        t = time.perf_counter()
        video_frames = [f.rgb for f in media.frames] if info.kind == "video" else None
        provenance, provenance_reasons = check_provenance(Path(source), self.settings, video_frames)
        timings["provenance"] = _ms(t)

        note("fusion")
        verdict = apply_provenance(fuse(results, self.fusion, info.kind), provenance_reasons, self.fusion)
        verdict = apply_missing_evidence(verdict, media.warnings)
        timings["total"] = _ms(started)
        return build_report(media, faces, results, verdict, self.fusion.version, timings, provenance=provenance)


def _ms(t: float) -> float:
    return (time.perf_counter() - t) * 1000.0


def build_report(
    media: DecodedMedia,
    faces: FaceResult,
    results: list[DetectorResult],
    verdict: Verdict,
    fusion_version: str,
    timings: dict[str, float],
    *,
    provenance: Provenance | None = None,
) -> Report:
    info = media.info
    windows = sorted({f.window for f in media.frames if f.window is not None})
    dense_windows = []
    for w in windows:
        ts = [f.t for f in media.window(w)]
        dense_windows.append((round(min(ts), 3), round(max(ts), 3)))

    # Timeline: one point per analysed timestamp, with faces seen and per-detector frame scores.
    # Distinct tracks per instant: a frame sampled both sparse and dense holds each face twice.
    tracks_at: dict[float, set[int]] = defaultdict(set)
    for track in faces.tracks:
        for obs in track.observations:
            tracks_at[round(obs.t, 3)].add(track.track_id)
    faces_at = {ts: len(ids) for ts, ids in tracks_at.items()}
    stamps = {round(f.t, 3) for f in media.frames}
    scores_at: dict[float, dict[str, float]] = defaultdict(dict)
    for r in results:
        for when, value in r.frame_scores.items():
            key = round(when, 3)
            stamps.add(key)
            scores_at[key][r.name] = round(float(value), 4)
    timeline = [TimelinePoint(t=ts, faces=faces_at.get(ts, 0), scores=scores_at.get(ts, {})) for ts in sorted(stamps)]

    face_summaries = []
    for track in faces.tracks:
        if not track.observations:
            continue
        crop_times = sorted(track.crops)
        picks = (
            [
                crop_times[i]
                for i in np.linspace(0, len(crop_times) - 1, min(_CROPS_PER_TRACK, len(crop_times))).astype(int)
            ]
            if crop_times
            else []
        )
        face_summaries.append(
            FaceSummary(
                track_id=track.track_id,
                first_s=round(track.start, 3),
                last_s=round(track.end, 3),
                observations=len(track.observations),
                crop_jpeg_b64=[jpeg_b64(track.crops[tc], size=_CROP_SIDE) for tc in dict.fromkeys(picks)],
            )
        )

    detectors = [
        DetectorReport(
            name=r.name,
            version=r.version,
            applied=r.applied,
            score=None if r.score is None else round(r.score, 4),
            confidence=round(r.confidence, 4),
            reasons=list(r.reasons),
            not_applicable=r.not_applicable,
            evidence=dict(r.evidence),
            heatmaps=[heatmap_image(h) for h in r.heatmaps],
            weight=round(verdict.weights.get(r.name, 0.0), 4),
            elapsed_ms=round(r.elapsed_ms, 2),
        )
        for r in results
    ]
    return Report(
        veracity_version=__version__,
        source=SourceInfo(name=info.path.name, sha256=info.sha256, size_bytes=info.size_bytes),
        media=MediaSummary(
            kind=info.kind,
            container=info.container,
            width=info.width,
            height=info.height,
            duration_s=info.duration_s,
            fps=info.fps,
            frame_count=info.frame_count,
            video_codec=info.video_codec,
            audio_codec=info.audio_codec,
            has_audio=media.audio is not None,
            audio_sample_rate=info.audio_sample_rate,
            animated=info.animated,
            frames_analysed=len(media.frames),
            dense_windows=dense_windows,
        ),
        deepfake_score=None if verdict.score is None else round(verdict.score, 4),
        label=verdict.label,
        reasons=list(verdict.reasons),
        provenance=provenance or Provenance(note="provenance checks did not run"),
        detectors=detectors,
        timeline=timeline,
        faces=face_summaries,
        warnings=list(media.warnings),
        checked=[with_text(CheckedDetector(
            detector=c.detector, applied=c.applied, fused=c.fused, weight=round(c.weight, 4), proven=c.proven,
            auc_train_cv=c.auc_cv, auc_eval=c.auc_eval, n_eval=c.n_eval, not_applicable=c.not_applicable,
            contribution=None if c.contribution is None else round(c.contribution, 4)), info.kind)
            for c in verdict.checked],
        not_checked=verdict.not_checked,
        explanations=[Explanation(detector=e.detector, text=e.text, reasons=list(e.reasons),
                                  contribution=e.contribution, t=None if e.t is None else round(e.t, 3),
                                  region=e.region) for e in verdict.explanations],
        thresholds=None if verdict.thresholds is None else LabelThresholds(
            suspicious=verdict.thresholds.suspicious, manipulated=verdict.thresholds.manipulated,
            target_fpr_suspicious=verdict.thresholds.target_fpr_suspicious,
            target_fpr_manipulated=verdict.thresholds.target_fpr_manipulated),
        model_versions={r.name: r.version for r in results},
        fusion_version=fusion_version,
        timings_ms={k: round(v, 2) for k, v in timings.items()},
        elapsed_ms=round(timings.get("total", 0.0), 2),
    )


def analyze(source: Path | str, options: Options | None = None, settings: AnalysisSettings | None = None) -> Report:
    """One-shot convenience: build an Analyzer, analyse, release the graphs."""
    analyzer = Analyzer(settings)
    try:
        return analyzer.analyze(source, options)
    finally:
        analyzer.close()
