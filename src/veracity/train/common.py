"""Pieces every trainer shares: listing labelled files from MANIFEST.tsv, seeded subsets, and a
per-item feature cache on disk (so retraining a head does not re-run an expensive encoder)."""

from __future__ import annotations

import csv
import hashlib
import json
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from veracity.errors import ConfigError
from veracity.models.cards import TrainingSet

Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Item:
    """One labelled file from MANIFEST.tsv."""

    path: Path
    rel: str
    label: int  # 1 fake, 0 real
    group: str  # train: the folder (train/images_fake/sdxl_style_preview); eval: source repository
    detail: str
    source_repo: str
    license: str


Roots = Path | Sequence[Path]

SHARED_DATA = Path("../shared/data")  # the copied media beside the checkout (docs/data.md)
VIDEO_REAL_DIR = "train/video_real/"  # ../shared/data's real train videos
VIDEO_SUFFIXES = (".mp4", ".mpg", ".mov", ".avi", ".webm", ".mkv")


def default_roots(cache_dir: Path) -> list[Path]:
    """The data roots a trainer reads when none is given: ``../shared/data`` and the materialised
    SOURCES cache (``cache_dir/data``), each when it holds a MANIFEST.tsv."""
    return [p for p in (SHARED_DATA, cache_dir / "data") if (p / "MANIFEST.tsv").is_file()]


def as_roots(data: Roots) -> list[Path]:
    """One data root or several, as a list (a trainer reads each root's MANIFEST.tsv)."""
    return [data] if isinstance(data, Path) else list(data)


def read_manifest(data_root: Path) -> list[dict[str, str]]:
    """The rows of ``<data_root>/MANIFEST.tsv``."""
    path = data_root / "MANIFEST.tsv"
    if not path.is_file():
        raise ConfigError(f"no MANIFEST.tsv under {data_root}")
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def group_of(row: dict[str, str]) -> str:
    """The group a row counts in. Train rows: their folder (``train/images_fake/sd15_cheatsheet``);
    in the materialised SOURCES layout (``train/<kind>/<label>/file``) the folder says nothing, so
    the source repository is added (``train/audio/fake/Edresson/YourTTS``). Eval rows: the
    source repository."""
    parts = row["path"].split("/")
    if row["split"] != "train":
        return row["source_repo"]
    if len(parts) >= 4 and parts[2] in ("real", "fake"):
        return "/".join([*parts[:3], row["source_repo"]])
    return "/".join(parts[:3])


def list_items(data_roots: Roots, split: str, prefixes: Sequence[str], suffixes: Sequence[str],
               log: Progress, *, rows: Sequence[dict[str, str]] | None = None, require: bool = True,
               kinds: Sequence[str] = ()) -> list[Item]:
    """The rows of ``split`` whose files exist, sorted by path, from every root. A row is taken
    when its path starts with one of ``prefixes`` or, for the materialised SOURCES layout, when
    its ``kind`` column is one of ``kinds`` (``audio``, ``image``, ``video``). ``rows`` are the
    manifest's when already read (one root only); ``require`` makes an empty result a
    ConfigError. Rows labelled other than real/fake (c2pa, watermarked) are never taken."""
    roots = as_roots(data_roots)
    if rows is not None and len(roots) != 1:
        raise ValueError("rows= needs exactly one data root")
    out: list[Item] = []
    missing = 0
    for root in roots:
        for row in read_manifest(root) if rows is None else rows:
            rel = row["path"]
            if row["split"] != split or row["label"] not in ("real", "fake"):
                continue
            sources_layout = row.get("kind") in kinds and rel.split("/")[1:2] == [row["kind"]]
            if not (rel.startswith(tuple(prefixes)) or sources_layout):
                continue
            if not rel.lower().endswith(tuple(suffixes)):
                continue
            path = root / rel
            if not path.is_file():
                missing += 1
                continue
            out.append(Item(path, rel, int(row["label"] == "fake"), group_of(row), row["detail"] or "unspecified",
                            row["source_repo"], row["license"]))
    if missing:
        log(f"warning: {missing} {split} rows listed in MANIFEST.tsv have no file")
    if require and not out:
        raise ConfigError(f"no {split} files under {', '.join(map(str, roots))} for {', '.join(prefixes)}")
    return sorted(out, key=lambda i: i.rel)


def cap_per_group(items: Sequence[Item], caps: dict[str, int], rng: np.random.Generator) -> list[Item]:
    """At most ``caps[group]`` items of each group (a random, seeded subset); groups not named in
    ``caps`` are kept whole; a cap of 0 drops the group."""
    by_group: dict[str, list[Item]] = defaultdict(list)
    for it in items:
        by_group[it.group].append(it)
    out: list[Item] = []
    for group, members in sorted(by_group.items()):
        cap = caps.get(group)
        if cap is not None and len(members) > cap:
            keep = sorted(rng.choice(len(members), size=cap, replace=False).tolist())
            out.extend(members[i] for i in keep)
        else:
            out.extend(members)
    return sorted(out, key=lambda i: i.rel)


def training_sets(items: Sequence[Item], counts: Mapping[str, int],
                  sources: Mapping[str, str] | None = None) -> list[TrainingSet]:
    """A card's ``training_data``: one entry per group of ``counts`` (files used), by name, with
    its label. Source repository and licence come from the group's manifest rows, unless
    ``sources`` names the source of a group drawn from several."""
    origin = {it.group: (it.source_repo, it.license, it.label) for it in items}
    return [TrainingSet(name=g, label="fake" if origin[g][2] else "real", count=n,
                        source=(sources or {}).get(g, origin[g][0]), license=origin[g][1][:200])
            for g, n in sorted(counts.items())]


class FeatureCache:
    """``<root>/<config hash>/<item hash>.npy``: one array per (file, configuration)."""

    def __init__(self, root: Path, config: dict[str, Any]) -> None:
        digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]
        self.folder = root / digest
        self.config = config

    def _path(self, key: str) -> Path:
        return self.folder / (hashlib.sha1(key.encode(), usedforsecurity=False).hexdigest() + ".npy")

    def get(self, key: str) -> npt.NDArray[Any] | None:
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            return np.asarray(np.load(path, allow_pickle=False))
        except (OSError, ValueError):
            return None

    def put(self, key: str, value: npt.NDArray[Any]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "config.json").write_text(json.dumps(self.config, sort_keys=True, indent=1))
        tmp = self._path(key).with_suffix(".tmp.npy")
        np.save(tmp, value, allow_pickle=False)
        tmp.replace(self._path(key))
