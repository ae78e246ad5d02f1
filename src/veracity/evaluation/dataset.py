"""Labelled media for evaluation and fusion fitting: our MANIFEST.tsv format, or real/ + fake/.

A MANIFEST row carries ``path``, ``split``, ``label`` (real/fake; others such as ``c2pa`` are
skipped), ``detail`` (the manipulation method or generator), ``kind`` and ``source_repo``; rows are
filtered by split, kind and path prefix. A plain folder is searched for sub-folders named
``real`` and ``fake`` (at any depth); the method is the sub-folder below them, the source the
folder above.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from veracity.errors import ConfigError

Label = Literal["real", "fake"]
MEDIA_SUFFIXES = frozenset({
    ".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".gif", ".jpg", ".jpeg", ".png",
    ".webp", ".bmp", ".tif", ".tiff", ".wav", ".mp3", ".m4a", ".flac", ".ogg", ".opus",
})


@dataclass(frozen=True, slots=True)
class LabelledItem:
    path: Path
    rel: str  # path relative to the set's root (stable key in results)
    label: Label
    source: str = "unknown"  # upstream repository or data set
    method: str = "unknown"  # manipulation method / generator; "real" for reals
    kind: str = ""  # video | image | audio, when the manifest says

    @property
    def y(self) -> int:
        return 1 if self.label == "fake" else 0


def read_manifest(path: Path, *, split: str | None = None, kinds: Sequence[str] = (),
                  prefixes: Sequence[str] = ()) -> list[LabelledItem]:
    """Rows of a MANIFEST.tsv with a real/fake label whose file exists, filtered."""
    if not path.is_file():
        raise ConfigError(f"no manifest at {path}")
    root = path.parent
    out: list[LabelledItem] = []
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        missing = {"path", "split", "label"} - set(reader.fieldnames or [])
        if missing:
            raise ConfigError(f"{path}: manifest lacks columns {sorted(missing)}")
        for row in reader:
            label = row.get("label", "")
            rel = row["path"]
            if label not in ("real", "fake"):
                continue
            if split is not None and row.get("split") != split:
                continue
            if kinds and row.get("kind", "") not in kinds:
                continue
            if prefixes and not rel.startswith(tuple(prefixes)):
                continue
            file = root / rel
            if not file.is_file():
                continue
            out.append(LabelledItem(
                path=file, rel=rel, label="fake" if label == "fake" else "real",
                source=row.get("source_repo") or "unknown",
                method=(row.get("detail") or "unknown") if label == "fake" else "real",
                kind=row.get("kind", ""),
            ))
    return sorted(out, key=lambda i: i.rel)


def read_folders(root: Path) -> list[LabelledItem]:
    """Media under every folder named ``real`` or ``fake`` below ``root`` (``root`` itself may
    hold them)."""
    if not root.is_dir():
        raise ConfigError(f"{root} is not a folder")
    out: list[LabelledItem] = []
    for class_dir in sorted(p for p in [root, *root.rglob("*")] if p.is_dir() and p.name in ("real", "fake")):
        label: Label = "fake" if class_dir.name == "fake" else "real"
        above = class_dir.parent
        source = above.name if above not in (root.parent, root) else root.name
        for f in sorted(class_dir.rglob("*")):
            if not f.is_file() or f.suffix.lower() not in MEDIA_SUFFIXES:
                continue
            inner = f.relative_to(class_dir).parts
            method = "real" if label == "real" else (inner[0] if len(inner) > 1 else "fake")
            out.append(LabelledItem(path=f, rel=f.relative_to(root).as_posix(), label=label,
                                    source=source, method=method))
    return out


def load_set(target: Path, *, split: str | None = None, kinds: Sequence[str] = (),
             prefixes: Sequence[str] = ()) -> list[LabelledItem]:
    """A manifest file, a folder holding MANIFEST.tsv (then ``split`` etc. filter it), or a
    folder with real/ and fake/ sub-folders."""
    if target.is_file():
        return read_manifest(target, split=split, kinds=kinds, prefixes=prefixes)
    if (target / "MANIFEST.tsv").is_file():
        return read_manifest(target / "MANIFEST.tsv", split=split, kinds=kinds, prefixes=prefixes)
    if target.is_dir():
        # A folder inside a manifest's tree (../shared/data/eval/video): its rows, with sources.
        for parent in target.resolve().parents:
            manifest = parent / "MANIFEST.tsv"
            if manifest.is_file():
                inside = target.resolve().relative_to(parent).as_posix().rstrip("/") + "/"
                rows = read_manifest(manifest, split=split, kinds=kinds, prefixes=(inside,))
                if rows:
                    return rows
                break
        return read_folders(target)
    raise ConfigError(f"{target}: not a manifest or a folder")
