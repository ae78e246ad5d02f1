"""Run ``analyze`` over a labelled set and keep one record per file.

The records hold every detector's score and confidence, not only the fused one, so the same run
both measures the detectors and feeds the fusion fit (``train/fusion_fit.py``), and re-fusing with other
parameters needs no second analysis.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from veracity.config import Options, Settings
from veracity.errors import InputError
from veracity.evaluation.dataset import LabelledItem

if TYPE_CHECKING:
    from veracity.pipeline import Analyzer

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
    key: str = ""  # the file's resolved path: the cache key of incremental runs
    versions: dict[str, str] = field(default_factory=dict)  # detector fingerprints it was analysed with

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Record:
        dets = {k: DetectorScore(**v) for k, v in obj.get("detectors", {}).items()}
        return cls(**{**obj, "detectors": dets})


def run_set(items: Sequence[LabelledItem], *, options: Options | None = None, settings: Settings | None = None,
            fusion: str | None = None, progress: Progress | None = None,
            sink: Callable[[Record], None] | None = None) -> list[Record]:
    """Analyse every item with one reusable :class:`~veracity.pipeline.Analyzer`. A file that
    cannot be read is recorded with its error and left out of the metrics, never scored 0.5.
    ``sink`` receives each record as soon as it exists (an incremental cache appends it)."""
    from veracity.pipeline import Analyzer

    analyzer = Analyzer(settings, fusion=fusion)
    out: list[Record] = []
    try:
        for i, item in enumerate(items):
            if progress is not None:
                progress(i, len(items), item.rel)
            out.append(_analyse_one(analyzer, item, options))
            if sink is not None:
                sink(out[-1])
        if progress is not None:
            progress(len(items), len(items), "")
    finally:
        analyzer.close()
    return out


def _analyse_one(analyzer: Analyzer, item: LabelledItem, options: Options | None) -> Record:
    key = str(item.path.resolve())
    try:
        rep = analyzer.analyze(item.path, options)
    except InputError as exc:
        return Record(rel=item.rel, label=item.y, source=item.source, method=item.method, kind=item.kind,
                      error=f"{exc.code}: {exc.message}", key=key)
    dets = {d.name: DetectorScore(score=d.score, confidence=d.confidence, reasons=list(d.reasons),
                                  not_applicable=d.not_applicable) for d in rep.detectors}
    return Record(rel=item.rel, label=item.y, source=item.source, method=item.method,
                  kind=item.kind or rep.media.kind, fused=rep.deepfake_score, verdict=rep.label,
                  detectors=dets, elapsed_ms=rep.elapsed_ms, key=key)


def latest_records(path: Path) -> list[Record]:
    """An incremental cache read back: the last record per file (a cache appended to after a
    detector retrain holds the older analysis too)."""
    by_key: dict[str, Record] = {}
    for r in load_records(path, tolerant=True):
        by_key.pop(r.key or r.rel, None)
        by_key[r.key or r.rel] = r
    return list(by_key.values())


def detector_fingerprints() -> dict[str, str]:
    """Per registered detector, its class version plus the sha256 of its model cards (which name
    the weights' sha256; several when a media kind has a card of its own, hashed one after the
    other, so a one-card detector's fingerprint is its card's hash): a retrained detector gets a
    new fingerprint without a version bump."""
    import hashlib
    from importlib import resources

    from veracity.detectors import registry

    out: dict[str, str] = {}
    for name in registry.names():
        spec = registry.spec(name)
        module_name, _, cls_name = spec.target.partition(":")
        import importlib

        version = str(getattr(getattr(importlib.import_module(module_name), cls_name), "version", "?"))
        card = ""
        if spec.cards():
            try:
                digest = hashlib.sha256()
                for card_name in spec.cards():
                    digest.update(resources.files("veracity.models").joinpath("data", f"{card_name}.json").read_bytes())
                card = digest.hexdigest()[:16]
            except FileNotFoundError:
                card = "missing"
        out[name] = f"{version}+{card}" if card else version
    return out


def run_cached(items: Sequence[LabelledItem], cache: Path, *, options: Options | None = None,
               settings: Settings | None = None, fusion: str | None = None, progress: Progress | None = None,
               log: Callable[[str], None] | None = None) -> list[Record]:
    """:func:`run_set` with an append-only cache: a file already analysed with the same detector
    fingerprints (and no error) is taken from ``cache``, the rest is analysed and appended line
    by line, so a killed run resumes where it stopped and a refit after one retrained detector
    re-runs only that detector on the files (its scores replace the old ones) while a second refit
    re-analyses nothing."""
    prints = detector_fingerprints()
    done: dict[str, Record] = {}
    stale: dict[str, Record] = {}  # analysed before, with some detectors since retrained
    if cache.is_file():
        for r in latest_records(cache):
            if not r.key or r.error is not None:
                continue
            if r.versions == prints:
                done[r.key] = r
            elif set(r.versions) == set(prints):
                stale[r.key] = r
    keys = [str(i.path.resolve()) for i in items]  # a record's key (resolved once per file)
    todo = [(i, k) for i, k in zip(items, keys, strict=True) if k not in done]
    refresh = [(i, k) for i, k in todo if k in stale]
    whole = [i for i, k in todo if k not in stale]
    if log is not None:
        log(f"{len(items) - len(todo)} of {len(items)} files cached in {cache}; analysing {len(whole)}, "
            f"re-running only the retrained detectors on {len(refresh)}")
    cache.parent.mkdir(parents=True, exist_ok=True)
    fresh: list[Record] = []
    with cache.open("a", encoding="utf-8") as fh:
        def sink(r: Record) -> None:
            fh.write(json.dumps(replace(r, versions=prints).to_json()) + "\n")
            fh.flush()

        # One pass per set of retrained detectors: only they run, and their scores replace the
        # old ones (the fused score of such a record is recomputed by whoever refits or rescores).
        by_changed: dict[tuple[str, ...], list[LabelledItem]] = {}
        for item, key in refresh:
            old = stale[key]
            changed = tuple(sorted(n for n in prints if old.versions.get(n) != prints[n]))
            by_changed.setdefault(changed, []).append(item)
        for changed, group in by_changed.items():
            opts = (options or Options()).with_(detectors=changed)

            def merge(r: Record, changed: tuple[str, ...] = changed) -> None:
                if r.error is None:
                    old = stale[r.key]
                    r = replace(old, detectors={**old.detectors, **{n: r.detectors[n] for n in changed
                                                                    if n in r.detectors}})
                fresh.append(r)
                sink(r)

            run_set(group, options=opts, settings=settings, fusion=fusion, progress=progress, sink=merge)
        fresh += run_set(whole, options=options, settings=settings, fusion=fusion, progress=progress, sink=sink)
    by_key = {**done, **{r.key: replace(r, versions=prints) for r in fresh}}
    return [by_key[k] for k in keys]


def save_records(records: Sequence[Record], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r.to_json()) + "\n" for r in records), encoding="utf-8")


def load_records(path: Path, *, tolerant: bool = False) -> list[Record]:
    """The records of a JSONL file; ``tolerant`` skips a torn last line (a killed writer)."""
    out: list[Record] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line:
            continue
        try:
            out.append(Record.from_json(json.loads(line)))
        except (ValueError, TypeError):
            if not tolerant:
                raise
    return out
