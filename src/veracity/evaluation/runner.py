"""Run ``analyze`` over a labelled set and keep one record per file.

The records hold every detector's score and confidence, not only the fused one, so the same run
both measures the detectors and feeds the fusion fit (``fusion/fit.py``), and re-fusing with other
parameters needs no second analysis.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from veracity.config import Options, Settings
from veracity.errors import InputError
from veracity.evaluation.dataset import LabelledItem

Progress = Callable[[int, int, str], None]  # done, total, current file


@dataclass(frozen=True, slots=True)
class DetectorScore:
    score: float | None
    confidence: float
    reasons: list[str] = field(default_factory=list)
    not_applicable: str | None = None


@dataclass(frozen=True, slots=True)
class Record:
    """One analysed (or failed) file of a labelled set."""

    rel: str
    label: int  # 1 fake, 0 real
    source: str
    method: str
    kind: str
    fused: float | None = None
    verdict: str = ""
    detectors: dict[str, DetectorScore] = field(default_factory=dict)
    error: str | None = None
    elapsed_ms: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Record:
        dets = {k: DetectorScore(**v) for k, v in obj.get("detectors", {}).items()}
        return cls(**{**obj, "detectors": dets})


def run_set(items: Sequence[LabelledItem], *, options: Options | None = None, settings: Settings | None = None,
            fusion: str | None = None, progress: Progress | None = None) -> list[Record]:
    """Analyse every item with one reusable :class:`~veracity.pipeline.Analyzer`. A file that
    cannot be read is recorded with its error and left out of the metrics, never scored 0.5."""
    from veracity.pipeline import Analyzer

    analyzer = Analyzer(settings, fusion=fusion)
    out: list[Record] = []
    try:
        for i, item in enumerate(items):
            if progress is not None:
                progress(i, len(items), item.rel)
            try:
                rep = analyzer.analyze(item.path, options)
            except InputError as exc:
                out.append(Record(rel=item.rel, label=item.y, source=item.source, method=item.method,
                                  kind=item.kind, error=f"{exc.code}: {exc.message}"))
                continue
            dets = {d.name: DetectorScore(score=d.score, confidence=d.confidence, reasons=list(d.reasons),
                                          not_applicable=d.not_applicable) for d in rep.detectors}
            out.append(Record(rel=item.rel, label=item.y, source=item.source, method=item.method,
                              kind=item.kind or rep.media.kind, fused=rep.deepfake_score, verdict=rep.label,
                              detectors=dets, elapsed_ms=rep.elapsed_ms))
        if progress is not None:
            progress(len(items), len(items), "")
    finally:
        analyzer.close()
    return out


def save_records(records: Sequence[Record], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r.to_json()) + "\n" for r in records), encoding="utf-8")


def load_records(path: Path) -> list[Record]:
    return [Record.from_json(json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line]
