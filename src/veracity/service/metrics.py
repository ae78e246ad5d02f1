"""Prometheus metrics on a registry owned by the app (no global default registry).

Request counters and latencies are counted in the API process. Job counts, queue depth, job
durations and the per-detector score histograms are read from the database at scrape time, so
they are right in the scaled-out mode too (the work happens in other processes) and survive a
restart. A shift in a detector's score histogram is the drift signal; ``veracity_score_psi``
says it in one number per detector and media kind: the population stability index of the scores
of the most recent finished jobs against the train-side reference stored in the default fusion
file (rule of thumb: < 0.1 stable, 0.1-0.25 watch, > 0.25 drifted).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import Session, sessionmaker

from veracity.service.models import DetectorScore, Job

RECENT_JOBS = 500  # the window the drift index is computed over
_KIND_RE = re.compile(r'"media"\s*:\s*\{\s*"kind"\s*:\s*"(video|image|audio)"')

SCORE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
JOB_SECONDS_BUCKETS = (0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _bucket_columns(column: Any, bounds: Iterable[float]) -> list[ColumnElement[int]]:
    return [func.sum(case((column <= b, 1), else_=0)) for b in bounds]


class _DatabaseCollector(Collector):
    def __init__(self, sessions: sessionmaker[Session], queue_depth: Callable[[], int | None]) -> None:
        self._sessions = sessions
        self._queue_depth = queue_depth
        self._reference: dict[str, dict[str, list[float]]] | None = None  # kind -> detector -> bin shares

    def collect(self) -> Iterator[Metric]:
        with self._sessions.begin() as s:
            counted = s.execute(select(Job.status, func.count()).group_by(Job.status))
            by_status = {row[0]: int(row[1]) for row in counted}
            jobs = GaugeMetricFamily("veracity_jobs", "Jobs by status (database rows).", labels=["status"])
            for status in ("queued", "running", "succeeded", "failed"):
                jobs.add_metric([status], float(by_status.get(status, 0)))
            yield jobs
            depth = self._queue_depth()
            yield GaugeMetricFamily(
                "veracity_queue_depth",
                "Jobs waiting for a worker.",
                value=float(by_status.get("queued", 0) if depth is None else max(depth, by_status.get("queued", 0))),
            )

            seconds = Job.elapsed_ms / 1000.0
            row = s.execute(
                select(
                    func.count(), func.coalesce(func.sum(seconds), 0.0), *_bucket_columns(seconds, JOB_SECONDS_BUCKETS)
                ).where(Job.status == "succeeded", Job.elapsed_ms.is_not(None))
            ).one()
            hist = HistogramMetricFamily("veracity_job_analysis_seconds", "Analysis time of finished jobs.")
            hist.add_metric(
                [],
                buckets=[
                    *((str(b), float(c or 0)) for b, c in zip(JOB_SECONDS_BUCKETS, row[2:], strict=True)),
                    ("+Inf", float(row[0])),
                ],
                sum_value=float(row[1] or 0.0),
            )
            yield hist

            scores = HistogramMetricFamily(
                "veracity_detector_score", "Scores per detector on finished jobs (drift).", labels=["detector"]
            )
            for det, count, total, *cum in s.execute(
                select(
                    DetectorScore.detector,
                    func.count(),
                    func.sum(DetectorScore.score),
                    *_bucket_columns(DetectorScore.score, SCORE_BUCKETS),
                ).group_by(DetectorScore.detector)
            ):
                scores.add_metric(
                    [det],
                    buckets=[
                        *((str(b), float(c or 0)) for b, c in zip(SCORE_BUCKETS, cum, strict=True)),
                        ("+Inf", float(count)),
                    ],
                    sum_value=float(total or 0.0),
                )
            yield scores
            yield from self._drift(s)

    def _drift(self, s: Session) -> Iterator[Metric]:
        """PSI of recent scores per (detector, kind) against the fusion file's reference."""
        from veracity.fusion.drift import histogram, psi
        from veracity.fusion.fuse import FusionParams

        if self._reference is None:
            params = FusionParams.load()
            self._reference = {k: dict(m.reference) for k, m in params.kinds.items()}
        gauge = GaugeMetricFamily("veracity_score_psi", "Population stability index of the scores of the last "
                                  f"{RECENT_JOBS} finished jobs against the fusion file's train-side reference.",
                                  labels=["detector", "kind"])
        count = GaugeMetricFamily("veracity_score_psi_samples", "Scores the drift index was computed on.",
                                  labels=["detector", "kind"])
        if not self._reference:
            yield gauge
            yield count
            return
        # The report JSON starts with source and media, so the kind sits in its first characters.
        recent = s.execute(
            select(Job.id, func.substr(Job.result, 1, 1200), Job.deepfake_score)
            .where(Job.status == "succeeded").order_by(Job.finished_at.desc()).limit(RECENT_JOBS)
        ).all()
        kind_of: dict[str, str] = {}
        values: dict[tuple[str, str], list[float]] = {}
        for job_id, head, fused in recent:
            m = _KIND_RE.search(head or "")
            if m is None:
                continue
            kind_of[job_id] = m.group(1)
            if fused is not None:
                values.setdefault(("fused", m.group(1)), []).append(float(fused))
        if kind_of:
            for job_id, det, score in s.execute(
                select(DetectorScore.job_id, DetectorScore.detector, DetectorScore.score)
                .where(DetectorScore.job_id.in_(list(kind_of)))
            ):
                values.setdefault((det, kind_of[job_id]), []).append(float(score))
        for (det, kind), vals in sorted(values.items()):
            ref = self._reference.get(kind, {}).get(det)
            if not ref or not vals:
                continue
            gauge.add_metric([det, kind], round(psi(ref, histogram(vals)), 5))
            count.add_metric([det, kind], float(len(vals)))
        yield gauge
        yield count


class Metrics:
    def __init__(self, sessions: sessionmaker[Session], queue_depth: Callable[[], int | None]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "veracity_http_requests", "HTTP requests.", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "veracity_http_request_duration_seconds", "HTTP latency.", ["method", "route"], registry=self.registry
        )
        self.jobs_submitted = Counter("veracity_jobs_submitted", "Jobs accepted by this API.", registry=self.registry)
        self.registry.register(_DatabaseCollector(sessions, queue_depth))

    def render(self) -> bytes:
        return generate_latest(self.registry)
