"""``veracity train fusion``: analyse a capped, seeded sample of the TRAIN split of several data
roots, fit one calibrated combination per media kind on it (``train/fusion_fit.py``), measure it on the
eval sets (reported, never tuned on) and write ``fusion/data/fusion-v3.json``.

    veracity train fusion --data ../shared/data --data ~/.cache/veracity/data \\
        --records ~/.cache/veracity/fusion/train.jsonl \\
        --eval ../shared/data --eval ~/.cache/veracity/data --eval-records ~/.cache/veracity/fusion/eval.jsonl

Record step: every registered detector runs on every selected file; records are appended to
``--records`` as they are made, keyed by file and detector fingerprints, so an interrupted run
resumes and a refit after a detector retrain re-analyses only what changed (``--reuse``: fit from
the records alone, analysing nothing). Whole side-by-side composites are skipped, their panels
are used. The new file becomes the packaged default only when it beats the current default on
the eval records (the comparison is written into the file).
"""

from __future__ import annotations

import json
import re
import zlib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from veracity.config import Options, Settings, shown_path
from veracity.errors import ConfigError
from veracity.evaluation.dataset import LabelledItem
from veracity.evaluation.runner import Progress, Record, latest_records, run_cached
from veracity.fusion.fuse import FusionParams, default_name, write_default
from veracity.train import heldout
from veracity.train.common import group_of, read_manifest
from veracity.train.data import PANEL_MARK, is_composite, panel_rel
from veracity.train.fusion_fit import (
    KindFit,
    compare_on_eval,
    fit_kinds,
    in_sample_kinds,
    read_reviews,
    refuse_in_sample,
    with_eval_power,
)

if TYPE_CHECKING:
    from veracity.detectors.registry import DetectorSpec

Log = Callable[[str], None]
DEFAULT_VERSION = "fusion-v3"
KINDS = ("video", "image", "audio")
# Files per group (folder, or kind/label/source repository in the SOURCES layout): keeps the
# record step near 20 minutes on 2 shared cores while every source still counts.
PER_GROUP = {"video": 60, "image": 30, "audio": 60}


def fusion_data_dir() -> Path:
    return Path(__file__).resolve().parents[1] / "fusion" / "data"


def select_items(roots: Sequence[Path], split: str, *, per_group: dict[str, int] | None = None, seed: int = 0,
                 kinds: Sequence[str] = KINDS) -> list[LabelledItem]:
    """Real/fake files of ``split`` from every root, whole composites skipped, at most
    ``per_group[kind]`` per group (seeded); ``per_group=None`` keeps everything (eval)."""
    groups: dict[str, list[LabelledItem]] = {}
    for root in roots:
        for row in read_manifest(root):
            if row["split"] != split or row["label"] not in ("real", "fake") or row.get("kind") not in kinds:
                continue
            if is_composite(row) or not (root / row["path"]).is_file():
                continue
            item = LabelledItem(path=root / row["path"], rel=row["path"], label="fake" if row["label"] == "fake"
                                else "real", source=row.get("source_repo") or "unknown",
                                method=(row.get("detail") or "unknown")[:80] if row["label"] == "fake" else "real",
                                kind=row["kind"])
            groups.setdefault(group_of(row), []).append(item)
    out: list[LabelledItem] = []
    for name, members in sorted(groups.items()):
        cap = None if per_group is None else per_group.get(members[0].kind)
        if cap is not None and len(members) > cap:
            # One generator per group (seeded by its name): changing one kind's cap leaves the
            # other groups' picks, and so the cached records, as they were.
            rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
            out.extend(members[i] for i in sorted(rng.choice(len(members), size=cap, replace=False).tolist()))
        else:
            out.extend(members)
    if split == "train" and any(i.rel.startswith("eval/") for i in out):  # belt and braces: never eval
        raise ConfigError("fusion fit refused: eval files in the train selection")
    return sorted(out, key=lambda i: (i.kind, i.rel))


def cv_group(record: Record) -> str:
    """The cross-validation group: the source repository; the panels of one DeepFaceLive-style
    composite set (one swap model, e.g. ``deepfacelive_Albica_Johns``) form a group of their own,
    real and fake panel together, because all fake train videos come from a single repository."""
    name = Path(record.rel).name
    if PANEL_MARK in name:
        stem = re.sub(r"_\d+$", "", name.split(PANEL_MARK)[0])
        return f"{record.source}:{stem}"
    return record.source


def collect(roots: Sequence[Path], split: str, cache: Path, *, per_group: dict[str, int] | None, seed: int,
            settings: Settings | None, progress: Progress | None, log: Log) -> list[Record]:
    items = select_items(roots, split, per_group=per_group, seed=seed)
    if not items:
        raise ConfigError(f"no {split} files under {', '.join(map(str, roots))}")
    by_kind = Counter((i.kind, i.label) for i in items)
    log(f"{split}: {len(items)} files " + ", ".join(f"{k} {lab} {n}" for (k, lab), n in sorted(by_kind.items())))
    return run_cached(items, cache, options=Options(), settings=settings, progress=progress, log=log)


def data_summary(records: Sequence[Record]) -> dict[str, Any]:
    """Counts per kind, class and source: what the fit saw."""
    out: dict[str, Any] = {}
    for r in records:
        k = out.setdefault(r.kind, {"n_real": 0, "n_fake": 0, "sources": {}})
        k["n_fake" if r.label else "n_real"] += 1
        s = k["sources"].setdefault(r.source, {"real": 0, "fake": 0})
        s["fake" if r.label else "real"] += 1
    return out


def trained_groups(detector: str) -> set[str]:
    """The groups a learned detector's packaged card says its weights were fitted on (its
    ``training_data`` names); every group when the card names none (then every kind counts as
    in-sample: nothing is assumed)."""
    from veracity.detectors import registry
    from veracity.models.cards import load_card

    card = registry.spec(detector).card
    data = load_card(card).training_data if card else []
    names = {t.name for t in data} if isinstance(data, list) else set()
    return names or {"*"}


def sound_only_copies(roots: Sequence[Path], trained: set[str]) -> set[str]:
    """The made dubs (``train/video_fakes.py`` voice and tts) and their twins whose frames are a
    trained clip's frames re-encoded: the face detector has seen those faces, though not these
    files, so their face scores are in-sample too."""
    from veracity.train.face_prep import SOUND_ONLY

    twins = tuple(s.replace("/video_fake/", "/video_twin/") for s in SOUND_ONLY)
    out: set[str] = set()
    for root in roots:
        if not (root / "MANIFEST.tsv").is_file():
            continue
        for r in read_manifest(root):
            if r["path"].startswith(SOUND_ONLY + twins) and r.get("source_path") in trained:
                out.add(r["path"])
    return out


def face_artifacts_table(work: Path, card_name: str, log: Log,
                         roots: Sequence[Path] = ()) -> heldout.HeldOut | None:
    """From the crop cache's groups (``train face_artifacts`` prepares it) and the trainer's own
    split: every file with a crop outside the validation groups was trained on, and so were the
    dubs of those clips under ``roots`` (:func:`sound_only_copies`). None when the crop cache or
    torch (the trainer's module) is missing."""
    try:
        from veracity.train import face_artifacts as trainer
        from veracity.train import face_prep
    except ModuleNotFoundError:
        return None
    fs = face_prep.load(work / "crops")
    if fs is None:
        return None
    tr, va = trainer.split(fs)

    def files(item: str) -> set[str]:
        # A DeepFaceLive crop names its composite and side (``...x.mp4@1.50#left``); the fusion
        # sees the halves cut from it as panel rows of their own.
        rel = heldout.base_rel(item)
        if item.endswith(("#left", "#right")):
            split = rel.split("/", 1)[0]
            return {rel, panel_rel(rel, split, 0, 2, "real"), panel_rel(rel, split, 1, 2, "fake")}
        return {rel}

    trained = set().union(*(files(fs.items[int(i)]) for i in tr))
    trained |= sound_only_copies(roots, trained)
    held = set().union(*(files(fs.items[int(i)]) for i in va)) - trained
    log(f"face_artifacts: {len(trained)} train files trained on, {len(held)} held out (validation groups)")
    return heldout.HeldOut(
        "face_artifacts", card_name, heldout.card_sha(card_name), frozenset(trained),
        how="the trainer's validation groups (every 5th DeepFaceLive identity, every 8th video_real clip with its "
            "made fakes and their twins, 10% of faces_real) were never trained on; every other file with a crop was")


def synthetic_image_table(roots: Sequence[Path], card_name: str, log: Log, seed: int = 0) -> heldout.HeldOut:
    """Without the trainer's own table: the probe was fitted on the three quarters of the
    training images outside ``is_holdout`` (the quarter fits only the calibration's numbers)."""
    from veracity.train import synthetic_image as trainer

    items = trainer.train_items(list(roots), lambda _m: None, seed)
    trained = {heldout.base_rel(it.rel) for it in items if not trainer.is_holdout(it)}
    held = {heldout.base_rel(it.rel) for it in items if trainer.is_holdout(it)} - trained
    log(f"synthetic_image: {len(trained)} train files trained on, {len(held)} in the held-out quarter")
    return heldout.HeldOut("synthetic_image", card_name, heldout.card_sha(card_name), frozenset(trained),
                           how="the probe's held-out quarter of the training images (is_holdout) was never fitted on")


def kind_card_table(spec: DetectorSpec, cache: Path, log: Log) -> heldout.HeldOut | None:
    """For a detector with a card per media kind: the stored table of the first of its cards (the
    kind cards first: a head of its own is fitted on files of its kind) that has one for the
    packaged weights, limited to the kinds that card scores. Records of its other kinds keep their
    scores; the log says which heads had no table."""
    ordered = tuple(dict.fromkeys([spec.kind_cards[k] for k in sorted(spec.kind_cards)] + list(spec.cards())))
    found: heldout.HeldOut | None = None
    for card in ordered:
        served = frozenset(k for k in KINDS if spec.card_for(k) == card)
        table = heldout.load(cache, card, heldout.card_sha(card))
        if table is not None and found is None:
            found = replace(table, kinds=served)
            log(f"{spec.name}: held-out table of {card} applies to {', '.join(sorted(served))} records")
        elif table is None:
            log(f"{spec.name}: no held-out table for {card} ({', '.join(sorted(served))}): its train scores are "
                "used as they are")
    return found


def held_out_tables(roots: Sequence[Path], settings: Settings | None, log: Log) -> dict[str, heldout.HeldOut]:
    """Per learned detector, its table of train files fitted on / scored out of fold: written by
    its trainer (speech), or rebuilt from the trainer's fixed hold-out (image, face). A detector
    for which neither is possible here is left out, with a warning."""
    from veracity.detectors import registry

    cache = (settings or Settings.from_env()).cache_dir
    out: dict[str, heldout.HeldOut] = {}
    for name in heldout.learned():
        spec = registry.spec(name)
        if spec.kind_cards:
            kind_table = kind_card_table(spec, cache, log)
            if kind_table is not None:
                out[name] = kind_table
            continue
        card = spec.card
        if card is None:
            continue
        table = heldout.load(cache, card, heldout.card_sha(card))
        stored = table is not None
        if table is None and name == "synthetic_image":
            try:
                table = synthetic_image_table(roots, card, log)
            except ConfigError:  # no train images under these roots
                table = None
        elif table is None and name == "face_artifacts":
            table = face_artifacts_table(cache / "train" / "face_artifacts", card, log, roots)
        if table is not None and not stored:
            heldout.save(table, cache)  # fixed for these weights from now on (replaces a stale one)
        if table is None:
            log(f"warning: {name}: no held-out table for {card} (no crop cache / data here); its train scores "
                "are used as they are, which is optimistic (recorded in the fusion file)")
            continue
        out[name] = table
    return out


def train_fusion(roots: Sequence[Path], *, version: str = DEFAULT_VERSION, records_path: Path,
                 reuse_records: bool = False, eval_roots: Sequence[Path] = (), eval_records: Path | None = None,
                 reviews: Path | None = None, per_group: dict[str, int] | None = None, seed: int = 0,
                 calibration: str = "platt", out: Path | None = None, make_default: bool = True,
                 settings: Settings | None = None, progress: Progress | None = None,
                 held_out: Mapping[str, heldout.HeldOut | None] | None = None,
                 log: Log | None = None) -> FusionParams:
    """Record (or reuse), fit, compare on eval, write. ``held_out`` (``held_out_tables``, which
    the CLI always passes): per learned detector, the train files it was fitted on and its
    out-of-fold scores, applied to the train records before the fit; None uses them as they are
    (synthetic records in tests)."""
    note = log or (lambda _m: None)
    caps = per_group or PER_GROUP
    if reuse_records:
        if not records_path.is_file():
            raise ConfigError(f"--reuse: no records at {records_path}")
        train = latest_records(records_path)
        try:  # the records of today's selection when the data is here (the cache may hold more)
            keys = {str(i.path.resolve()) for i in select_items(roots, "train", per_group=caps, seed=seed)}
        except ConfigError:
            keys = set()
        if keys and any(r.key in keys for r in train):
            train = [r for r in train if r.key in keys]
        note(f"reusing {len(train)} train records from {records_path}")
    else:
        train = collect(roots, "train", records_path, per_group=caps, seed=seed, settings=settings,
                        progress=progress, log=note)
    if any(r.rel.startswith("eval/") for r in train):
        raise ConfigError("fusion fit refused: eval records among the train records")
    held_counts: dict[str, dict[str, int]] = {}
    if held_out is not None:
        train, held_counts = heldout.apply(train, held_out)
    for name, c in sorted(held_counts.items()):
        note(f"{name} on train records: {c.get('kept', 0)} never seen, {c.get('replaced', 0)} out-of-fold, "
             f"{c.get('withdrawn', 0)} withdrawn (in-sample)"
             + (f", {c['other_head']} of kinds its table's card does not score" if c.get("other_head") else ""))
    review_rows = read_reviews(reviews) if reviews is not None else []
    if review_rows:
        note(f"adding {len(review_rows)} reviewed jobs from {reviews}")
    evals: list[Record] = []
    if eval_records is not None:
        if eval_roots and not reuse_records:
            evals = collect(eval_roots, "eval", eval_records, per_group=None, seed=seed, settings=settings,
                            progress=progress, log=note)
        elif eval_records.is_file():
            evals = latest_records(eval_records)
    not_cross = sorted(n for n, t in (held_out or {}).items() if t is None or t.level != "source")
    fits: dict[str, KindFit] = fit_kinds(train + review_rows, group_of=cv_group, calibration=calibration, seed=seed,
                                         log=note, not_cross_source=not_cross)
    current = default_name()
    base = FusionParams.load(current)
    params = base.model_copy(update={
        "version": version, "fitted": True, "kinds": {k: f.model for k, f in fits.items()},
        "note": (f"Per-kind logistic fusion of detector logits with {calibration} calibration, fitted on the train "
                 f"split ({len(train)} files) with cross-validation by source; thresholds chosen on train-side "
                 f"out-of-fold scores for a stated false-positive rate. Eval figures are measured, never tuned on."),
    })
    if evals:
        params = with_eval_power(params, evals)
    missing = [] if held_out is None else [n for n in heldout.learned() if n not in held_out]
    trained_kinds = in_sample_kinds(train, {n: trained_groups(n) for n in missing})
    comparison = (refuse_in_sample(compare_on_eval(evals, params, base), params, missing, trained_kinds) if evals
                  else {"note": "no eval records given"})
    beats = bool(comparison.get("beats_current", False))
    promote = beats and make_default and out is None
    if beats:
        # Only the kinds that won go into the file; every other kind keeps the current file's rule
        # (its fitted model where it has one, else the legacy weights, which the file also copies),
        # so a promotion never makes a kind worse.
        won = set(comparison.get("kinds_won", []))
        kept = {k: m for k, m in base.kinds.items() if k not in won}
        params = params.model_copy(update={"kinds": {**kept, **{k: m for k, m in params.kinds.items() if k in won}}})
        comparison = {**comparison, "kinds_kept_from_current": sorted(kept)}
    params = params.model_copy(update={"fit": {
        "method": f"logistic on clipped detector logits (L2, class- and source-balanced) + {calibration}",
        "cv": "grouped k-fold by source (panels of one composite set form one group)",
        "data": {"split": "train", "per_group": caps, "seed": seed, "roots": [shown_path(r) for r in roots],
                 "kinds": data_summary(train), "records": shown_path(records_path)},
        "held_out": {"rule": ("a learned detector's score on a train file its weights were fitted on is replaced "
                              "by its out-of-fold score, or withdrawn (neutral) when it has none"),
                     "applied": held_out is not None, "per_detector": held_counts,
                     "missing": missing,
                     "missing_in_sample_kinds": {n: sorted(k) for n, k in trained_kinds.items()}},
        "reviews": {"file": shown_path(reviews), "n": len(review_rows)} if reviews is not None else None,
        "kinds": {k: f.report for k, f in fits.items()},
        "eval_comparison": {**comparison, "current_default": current, "became_default": promote},
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "veracity train fusion " + " ".join(
            [*(f"--data {shown_path(r)}" for r in roots), f"--records {shown_path(records_path)}",
             *(f"--eval {shown_path(r)}" for r in eval_roots),
             *([f"--eval-records {shown_path(eval_records)}"] if eval_records else []),
             *([f"--reviews {shown_path(reviews)}"] if reviews else [])]),
    }})
    target = out or fusion_data_dir() / f"{version}.json"
    if out is None and version == current and not beats:
        # Never replace the default with a file that does not beat it: keep it as a candidate.
        target = fusion_data_dir() / f"{version}-candidate.json"
        params = params.model_copy(update={"version": target.stem})
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(params.model_dump(mode="json", exclude_none=False), indent=2) + "\n", encoding="utf-8")
    note(f"wrote {target}")
    if promote:
        write_default(version, f"beats {current} on the eval records for {', '.join(comparison.get('kinds_won', []))} "
                               f"(AUC gain per kind {comparison.get('auc_gain_per_kind')}); the other kinds keep "
                               f"{current}'s rule (fit.eval_comparison in {target.name})")
        note(f"{version} beats {current} on the eval records: it is now the default")
    else:
        note(f"{version} is not the default ({'kept ' + current if not beats else 'not asked'})")
    return params
