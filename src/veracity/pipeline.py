"""The one orchestration: ``analyze(source) -> Report``, used by the CLI, the service and eval.

An :class:`Analyzer` owns the heavy, lazily built parts (face graphs, detector models) so a batch
or a worker reuses them; it holds no per-analysis state between calls.

A video is streamed (the default): one thread decodes frames into a short queue while this one
meshes them (:class:`~veracity.faces.stream.FaceStream`), a second decodes the audio and scores
the audio-only detectors, and the remaining detectors then share two threads. Dense frames keep
their pixels only until their window is meshed. ``Analyzer(streaming=False)`` runs the former
one-stage-after-another path on the whole :class:`DecodedMedia`; both give the same report
(tests/test_pipeline_stream.py), the streamed one in less time and memory.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import cast

import numpy as np
import numpy.typing as npt

from veracity import __version__, allocator
from veracity.config import AnalysisSettings, Options, Settings
from veracity.detectors import registry
from veracity.detectors.base import AnalysisContext, Detector, DetectorResult, run_detector
from veracity.errors import CorruptMedia
from veracity.faces import CROP_SIZE, FaceMesher, FaceResult, find_faces
from veracity.faces.stream import FaceStream
from veracity.fusion import FusionParams, Verdict, apply_provenance, fuse
from veracity.fusion.evidence import apply_missing_evidence
from veracity.media import Audio, DecodedMedia, Frame, MediaInfo, SamplePlan, decode, plan_sampling, probe
from veracity.media.audio import load_audio
from veracity.media.types import AUDIO_UNDECODABLE
from veracity.media.video import iter_video
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
# Detectors that read nothing but ``ctx.media.audio``: the streamed path scores them on the audio
# thread while the video is still decoding.
AUDIO_ONLY = frozenset({"synthetic_speech"})
# Fast (triage) mode: provenance and metadata as always, FAST_FRAMES sparse frames snapped to
# keyframes, no dense windows, and only these detectors (they read a few frames or the audio;
# synthetic_image reads its centre CLIP crop only). The rest are reported skipped, so the report
# keeps its shape. Measured against full on ../shared/data/eval in the README ("Speed").
FAST_DETECTORS = frozenset({"face_artifacts", "spectral", "synthetic_image", "synthetic_speech"})
FAST_FRAMES = 4
FAST_SKIPPED_REASON = "skipped_fast_mode"
ESCALATE_LABELS = frozenset({"suspicious", "manipulated", "synthetic", "inconclusive"})
_QUEUE_FRAMES = 8
_ProvenanceCheck = tuple[Provenance, list[str]]  # decoded frames waiting for the face stage (about 22 MB at 720p)
_DETECTOR_THREADS = 2


class Analyzer:
    """Reusable analysis engine. Not thread-safe: one per worker thread."""

    def __init__(
        self, settings: AnalysisSettings | None = None, *, fusion: str | None = None, streaming: bool = True
    ) -> None:
        # Only the analysis part: detectors never see the service's secrets.
        self.settings = (settings or Settings.from_env()).analysis
        self.fusion = FusionParams.load(fusion) if fusion else FusionParams.load()
        self.streaming = streaming
        if self.settings.low_memory:
            allocator.fix_mmap_threshold()  # frames go back to the system when freed (peak RSS)
        self._mesher: FaceMesher | None = None
        self._detectors: dict[str, Detector] = {}
        self._trim = allocator.HeapTrimmer()

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
        """Analyse one file. In fast mode with ``settings.escalate_fast``, a label other than
        authentic is analysed again in full and that report (``escalated=True``) returned."""
        options = options or Options()
        try:
            return self._analyze_maybe_escalated(source, options, progress)
        finally:
            self._trim()  # what the analysis freed, back to the system before the next one (if much)

    def _analyze_maybe_escalated(self, source: Path | str, options: Options, progress: Progress | None) -> Report:
        report = self._analyze(source, options, progress)
        if options.mode == "fast" and self.settings.escalate_fast and report.label in ESCALATE_LABELS:
            full = self._analyze(source, options.with_(mode="full"), progress)
            timings = {**full.timings_ms, "fast_pass": report.elapsed_ms}
            total = round(full.elapsed_ms + report.elapsed_ms, 2)
            return full.model_copy(update={"escalated": True, "timings_ms": timings, "elapsed_ms": total})
        return report

    def _analyze(self, source: Path | str, options: Options, progress: Progress | None) -> Report:
        note = progress or (lambda _stage: None)
        started = time.perf_counter()
        timings: dict[str, float] = {}

        note("probe")
        t = time.perf_counter()
        info = probe(Path(source), self.settings.limits)
        timings["probe"] = _ms(t)
        skipped: list[str] = []
        early: dict[str, DetectorResult] = {}
        detectors = self._get_detectors(options)
        if options.mode == "fast":
            if info.kind == "video" and options.max_windows > 0:
                skipped.append("dense_windows")
            for det in detectors:
                if det.name not in FAST_DETECTORS:
                    skipped.append(det.name)
                    early[det.name] = DetectorResult.skipped(det.name, det.version, FAST_SKIPPED_REASON)
            options = options.with_(frames=min(options.frames, FAST_FRAMES), max_windows=0)
        plan = plan_sampling(info, options)
        # Provenance (C2PA, metadata, watermark) runs beside the detectors on the streamed path:
        # for a still or audio file from the start (it reads the file), for a video once the
        # frame its watermark is read from has been decoded.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="veracity-prov") as side:
            prov_job: Future[tuple[_ProvenanceCheck, float]] | None = None
            if self.streaming and info.kind != "video":
                prov_job = side.submit(self._provenance, Path(source), None)
            if self.streaming and info.kind == "video":
                to_run = [d for d in detectors if d.name not in early]
                media, faces, ran = self._stream_video(info, plan, options, to_run, note, timings)
                early.update(ran)
                prov_job = side.submit(self._provenance, Path(source), watermark_frames(media))
            else:
                note("decode")
                media = decode(info, plan, self.settings.limits)
                timings["decode"] = media.decode_ms
                note("faces")
                if media.frames:
                    faces = find_faces(media, self._get_mesher(options), keep_crops=options.keep_crops)
                else:
                    faces = FaceResult(tracks=[], frames_seen=0, frames_with_faces=0)
            timings["faces"] = faces.elapsed_ms

            ctx = AnalysisContext(media=media, faces=faces, options=options, settings=self.settings)
            if self.streaming:
                results = self._run_parallel(detectors, ctx, early, note)
            else:
                results = []
                for det in detectors:
                    if det.name in early:
                        results.append(early[det.name])
                        continue
                    note(det.name)
                    results.append(run_detector(det, ctx))
            for r in results:
                if r.not_applicable != FAST_SKIPPED_REASON:
                    timings[r.name] = r.elapsed_ms

            note("provenance")
            if prov_job is None:
                prov_job = side.submit(self._provenance, Path(source), watermark_frames(media))
            (provenance, provenance_reasons), timings["provenance"] = prov_job.result()

        note("fusion")
        verdict = apply_provenance(fuse(results, self.fusion, info.kind), provenance_reasons, self.fusion)
        verdict = apply_missing_evidence(verdict, media.warnings)
        timings["total"] = _ms(started)
        report = build_report(media, faces, results, verdict, self.fusion.version, timings, provenance=provenance)
        if options.mode == "fast":
            report = report.model_copy(update={"mode": "fast", "skipped": skipped})
        return report

    def _provenance(
        self, path: Path, frames: list[npt.NDArray[np.uint8]] | None
    ) -> tuple[_ProvenanceCheck, float]:
        t = time.perf_counter()
        return check_provenance(path, self.settings, frames), _ms(t)

    def _stream_video(
        self,
        info: MediaInfo,
        plan: SamplePlan,
        options: Options,
        detectors: list[Detector],
        note: Progress,
        timings: dict[str, float],
    ) -> tuple[DecodedMedia, FaceResult, dict[str, DetectorResult]]:
        """Decode -> faces on two threads, audio (+ audio-only detectors) on a third.

        Returns the media as later stages see it (sparse frames whole, dense frames without
        pixels), the face result, and the results of the detectors already run.
        """
        limits = self.settings.limits
        wanted = len(plan.sparse) + sum(len(plan.dense_times(w)) for w in range(len(plan.windows)))
        if wanted > limits.max_frames:
            raise CorruptMedia(f"plan asks for {wanted} frames, over max_frames={limits.max_frames}")
        media = DecodedMedia(info=info, warnings=list(info.warnings))
        audio_only = [d for d in detectors if d.name in AUDIO_ONLY]
        video_warnings: list[str] = []
        note("decode")
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="veracity-audio") as pool:
            audio_job = pool.submit(self._audio_path, info, options, audio_only)
            frames = _Prefetch(iter_video(info, plan, limits, video_warnings), _QUEUE_FRAMES)
            stream = FaceStream(self._get_mesher(options), crop_size=CROP_SIZE, keep_crops=options.keep_crops)
            try:
                noted = False
                for frame in frames:
                    if not noted:
                        note("faces")
                        noted = True
                    stream.feed(frame)
                    media.frames.append(frame if frame.role != "dense" else frame.without_pixels())
            finally:
                frames.close()
            faces = stream.finish() if media.frames else FaceResult(tracks=[], frames_seen=0, frames_with_faces=0)
            audio, audio_warnings, audio_ms, early = audio_job.result()
        media.warnings.extend(video_warnings)
        media.warnings.extend(audio_warnings)
        media.audio = audio
        timings["decode_video"] = frames.busy_ms
        timings["decode_audio"] = audio_ms
        timings["decode"] = media.decode_ms = frames.busy_ms + audio_ms
        return media, faces, early

    def _audio_path(
        self, info: MediaInfo, options: Options, audio_only: list[Detector]
    ) -> tuple[Audio | None, list[str], float, dict[str, DetectorResult]]:
        """Decode the audio and run the audio-only detectors on it (the audio thread)."""
        t = time.perf_counter()
        warnings: list[str] = []
        audio = None
        try:
            audio, warnings = load_audio(info, max_decode_s=self.settings.limits.max_decode_s)
        except CorruptMedia as exc:
            warnings = [f"{AUDIO_UNDECODABLE}: {exc.message}"]
        elapsed = _ms(t)
        media = DecodedMedia(info=info, audio=audio, warnings=list(warnings))
        ctx = AnalysisContext(
            media=media,
            faces=FaceResult(tracks=[], frames_seen=0, frames_with_faces=0),
            options=options,
            settings=self.settings,
        )
        return audio, warnings, elapsed, {d.name: run_detector(d, ctx) for d in audio_only}

    def _run_parallel(
        self, detectors: list[Detector], ctx: AnalysisContext, early: dict[str, DetectorResult], note: Progress
    ) -> list[DetectorResult]:
        """The detectors not run yet, on two threads (onnxruntime and OpenCV release the GIL);
        results in registry order, as the sequential path gives them."""
        rest = [d for d in detectors if d.name not in early]
        jobs: dict[str, Future[DetectorResult]] = {}
        if rest:
            note("detectors")
            with ThreadPoolExecutor(max_workers=_DETECTOR_THREADS, thread_name_prefix="veracity-det") as pool:
                jobs = {d.name: pool.submit(run_detector, d, ctx) for d in rest}
        return [early[d.name] if d.name in early else jobs[d.name].result() for d in detectors]


class _Prefetch:
    """Iterate ``source`` on a background thread, ``size`` items ahead (PyAV decodes without the
    GIL, so decoding overlaps the consumer). ``busy_ms`` is the time spent inside ``source``.
    ``close`` stops the thread and closes the source (its container) whether or not it ran out."""

    _END = object()

    def __init__(self, source: Iterator[Frame], size: int) -> None:
        self._source = source
        self._queue: queue.Queue[object] = queue.Queue(maxsize=size)
        self._stop = threading.Event()
        self.busy_ms = 0.0
        self._thread = threading.Thread(target=self._run, name="veracity-decode", daemon=True)
        self._thread.start()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                t = time.perf_counter()
                try:
                    item: object = next(self._source)
                except StopIteration:
                    item = self._END
                finally:
                    self.busy_ms += _ms(t)
                if not self._put(item) or item is self._END:
                    break
        except BaseException as exc:  # handed to the consumer, raised there
            self._put(exc)
        finally:
            close = getattr(self._source, "close", None)
            if close is not None:
                close()

    def __iter__(self) -> Iterator[Frame]:
        while True:
            item = self._queue.get()
            if item is self._END:
                return
            if isinstance(item, BaseException):
                raise item
            yield cast(Frame, item)

    def close(self) -> None:
        self._stop.set()
        while True:  # unblock a producer waiting on a full queue
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join()


def watermark_frames(media: DecodedMedia) -> list[npt.NDArray[np.uint8]] | None:
    """The frame the video watermark is read from: the middle sparse frame (sampled at full
    size, and kept whole by the streamed path). None for stills and audio (provenance reads the
    file itself) and for a video with no frame decoded."""
    if media.info.kind != "video":
        return None
    sparse = media.sparse
    return [sparse[len(sparse) // 2].rgb] if sparse else None


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
            target_fpr_manipulated=verdict.thresholds.target_fpr_manipulated,
            authentic=verdict.thresholds.authentic, target_fnr_authentic=verdict.thresholds.target_fnr_authentic),
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
