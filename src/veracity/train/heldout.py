"""Which train files a learned detector was fitted on, and its held-out scores on them.

The fusion is fitted on detector scores of train files. A learned detector scored on a file its
weights were fitted on is over-confident there (speech: pooled AUC 0.98 in-sample against 0.72
leave-one-source-out), so a fusion fitted on those scores trusts it too much and reads its
thresholds off reals that look cleaner than any unseen real will. This module keeps, per learned
detector, a small table written next to the weights it belongs to (``held_out/<card>.json`` in
the cache, keyed by the model card's sha256, so a retrained detector never meets a stale table;
per card, so a detector whose media kinds have cards of their own keeps one table per head):

- ``trained_on``: the manifest paths (``rel``) whose content entered the weights;
- ``scores``: for some of them, an out-of-fold probability (the file scored by a model fitted
  without its source, as the trainer's own cross-validation already does).

:func:`apply` rewrites train records before the fit: an out-of-fold score replaces the in-sample
one; a file the detector was fitted on without one loses that detector's score (``in_sample``:
treated as "did not apply", which is neutral in the fusion). A learned detector with no table at
all cannot be corrected: the fit then says so (``fit.held_out.missing``). Files a detector never
saw keep their score.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from veracity.detectors import registry
from veracity.evaluation.runner import DetectorScore, Record


def learned() -> tuple[str, ...]:
    """Detectors whose weights were fitted on train media with enough capacity to remember it
    (``DetectorSpec.held_out_scores``). The others are constants (physiology, temporal) or
    few-parameter models (spectral: 58 numbers; av_sync: a ridge over mel bands) whose in-sample
    optimism is small; the fusion file says so."""
    return tuple(s.name for s in registry.SPECS if s.held_out_scores)


IN_SAMPLE = "in_sample"


@dataclass(frozen=True, slots=True)
class HeldOut:
    detector: str
    card: str  # model card name (face_artifacts-v2)
    card_sha256: str  # the card's weights sha256 these sets belong to
    trained_on: frozenset[str]
    scores: Mapping[str, float] = field(default_factory=dict)
    how: str = ""
    # "source": each held-out score comes from a model fitted without the file's whole source
    # (leave-one-source/generator-out), so it measures power on unseen sources; "group": the file
    # itself was held out, but other files of its source were fitted on.
    level: str = "group"
    # The media kinds whose records its card scored (None: every kind). A detector with a card per
    # kind (synthetic_speech) scores other kinds with other weights, which this table does not
    # describe; derived from the registry when the fit loads it, never stored.
    kinds: frozenset[str] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"detector": self.detector, "card": self.card, "card_sha256": self.card_sha256, "how": self.how,
                "level": self.level,
                "trained_on": sorted(self.trained_on), "scores": {k: round(v, 6) for k, v in
                                                                  sorted(self.scores.items())}}

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> HeldOut:
        return cls(detector=str(obj["detector"]), card=str(obj["card"]), card_sha256=str(obj["card_sha256"]),
                   trained_on=frozenset(str(x) for x in obj.get("trained_on", [])),
                   scores={str(k): float(v) for k, v in dict(obj.get("scores", {})).items()},
                   how=str(obj.get("how", "")), level=str(obj.get("level", "group")))


def table_path(cache_dir: Path, card: str) -> Path:
    return cache_dir / "held_out" / f"{card}.json"


def save(table: HeldOut, cache_dir: Path) -> Path:
    """Write atomically (a trainer killed mid-write leaves the previous table)."""
    path = table_path(cache_dir, table.card)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(table.to_json(), indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def load(cache_dir: Path, card: str, card_sha256: str | None = None) -> HeldOut | None:
    """The table of ``card``, or None when absent or written for other weights than ``card_sha256``."""
    path = table_path(cache_dir, card)
    if not path.is_file():
        return None
    table = HeldOut.from_json(json.loads(path.read_text(encoding="utf-8")))
    if card_sha256 is not None and table.card_sha256 != card_sha256:
        return None
    return table


def base_rel(item_key: str) -> str:
    """``train/x.mp4@1.50#left`` (a crop or frame of a file, as trainers name them) -> the file."""
    return item_key.split("@", 1)[0].split("#", 1)[0]


def apply(records: Sequence[Record],
          tables: Mapping[str, HeldOut | None]) -> tuple[list[Record], dict[str, dict[str, int]]]:
    """Train records with in-sample scores of the tables' detectors replaced (out-of-fold score)
    or withdrawn (``in_sample``). Returns the records and, per detector, how many scores were kept
    (never seen), replaced and withdrawn, and ``other_head``: of a kind the table's card does not
    score (``HeldOut.kinds``), left as they are. ``tables[name] is None``: fitted on every file."""
    counts: dict[str, Counter[str]] = {}
    out: list[Record] = []
    for r in records:
        dets = dict(r.detectors)
        for name in tables:
            d = dets.get(name)
            if d is None or d.score is None:
                continue
            c = counts.setdefault(name, Counter())
            table = tables.get(name)
            if table is not None and table.kinds is not None and r.kind not in table.kinds:
                c["other_head"] += 1
            elif table is not None and r.rel in table.scores:
                dets[name] = replace(d, score=table.scores[r.rel])
                c["replaced"] += 1
            elif table is None or r.rel in table.trained_on:
                dets[name] = DetectorScore(score=None, confidence=0.0, reasons=[], not_applicable=IN_SAMPLE)
                c["withdrawn"] += 1
            else:
                c["kept"] += 1
        out.append(replace(r, detectors=dets) if dets != r.detectors else r)
    return out, {k: dict(v) for k, v in counts.items()}


def card_sha(card_name: str) -> str:
    """The packaged card's weights sha256 (what a table must have been written for)."""
    from veracity.models.cards import load_card

    return load_card(card_name).sha256
