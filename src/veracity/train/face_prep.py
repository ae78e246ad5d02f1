"""Aligned face crops and their mesh, cut once from the training data and cached.

The crops are made as the pipeline makes them at inference (MediaPipe mesh through
:class:`~veracity.faces.FaceMesher`, the similarity of :func:`~veracity.faces.align.alignment_matrix`)
but at ``CROP`` = 256 px (the pipeline's 224 px framing, finer), and the 478 landmarks are mapped
into crop pixels with the same transform, so the self-blending masks follow each face. A training
step then costs only the blend and the network, never decoding or meshing.

Sources (train split only; nothing from ``eval/`` is read):
- ``train/faces_real`` (every image) and ``train/video_real`` (``frames_real`` frames per clip);
- the DeepFaceLive composites of the materialised SOURCES cache, cut at half width: the
  original (left, real) and the swap (right, fake) of the same frame, ``frames_dfl`` frames per
  clip, so every fake crop has its real twin (``pair``); see :func:`sources_videos` for why the
  materialised panels are not used; other SOURCES train videos join as real or fake;
- the made fakes of ``train/video_fakes.py`` (a root holding ``train/video_fake/``), each frame
  beside the same frame of the real clip it was made from (``made_fake`` / ``made_real``).

The cache is a folder: ``crops.npy`` (N, 256, 256, 3) uint8 (memory-mapped when read: ~1 GB
stays on disk), ``points.npy`` (N, 478, 2) float32 and ``meta.json`` (per crop: group,
item, label, pair, source). It is rebuilt only when its tag (version, settings, roots) changes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps

from veracity.errors import ConfigError
from veracity.train.common import read_manifest
from veracity.train.data import PANEL_MARK, is_composite

Progress = Callable[[str], None]
CROP = 256
N_POINTS = 478
PREP_VERSION = "face-prep/2.3"
FACE_DIRS = ("train/faces_real/",)
VIDEO_DIRS = ("train/video_real/",)
SOURCES_VIDEO = "train/video/"
MADE_VIDEO = "train/video_fake/"  # train/video_fakes.py output: each clip names its real twin
# Made fakes whose frames are their twin's (only the sound was changed): no face fakes.
SOUND_ONLY = ("train/video_fake/made_voice/", "train/video_fake/made_tts/")


@dataclass(frozen=True, slots=True)
class FaceSet:
    """``crops`` (N, CROP, CROP, 3) uint8, ``points`` (N, 478, 2) crop pixels; per crop its
    ``group`` (the clip, the identity or the image folder: validation holds out whole groups),
    ``item`` (source file and frame time), ``label`` (0 real, 1 fake), ``pair`` (the index of
    its twin of the other label, -1 if none) and ``source`` (``faces_real``, ``video_real``,
    ``dfl_real``, ``dfl_fake``, ``sources_real``, ``sources_fake``, and ``made_real`` / ``made_fake``:
    a made fake of train/video_fakes.py and the same frame of its real twin)."""

    crops: npt.NDArray[np.uint8]
    points: npt.NDArray[np.float32]
    groups: list[str]
    items: list[str]
    labels: npt.NDArray[np.int64]
    pairs: npt.NDArray[np.int64]
    sources: list[str]

    def __post_init__(self) -> None:
        n = self.crops.shape[0]
        if self.crops.shape[1:] != (CROP, CROP, 3) or self.points.shape != (n, N_POINTS, 2):
            raise ValueError(f"bad shapes {self.crops.shape} / {self.points.shape}")
        if not (len(self.groups) == len(self.items) == len(self.sources) == n
                and self.labels.shape == self.pairs.shape == (n,)):
            raise ValueError("one group, item, label, pair and source per crop")

    def __len__(self) -> int:
        return int(self.crops.shape[0])

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for s in self.sources:
            out[s] = out.get(s, 0) + 1
        return out


def _rows(root: Path, prefixes: tuple[str, ...], label: str = "real") -> list[str]:
    out = [r["path"] for r in read_manifest(root) if r["split"] == "train" and r["label"] == label
           and r["path"].startswith(prefixes) and (root / r["path"]).is_file()]
    return sorted(out)


def sources_videos(root: Path) -> tuple[list[str], list[str], list[str]]:
    """From a materialised SOURCES root: the DeepFaceLive side-by-side composites, other real
    videos, other fake videos (train split).

    The composites are read whole and cut here at half width (left: original, right: swap), so
    each real/swap crop pair comes from one decoded frame; the materialised panel clips of the
    same composites would give the same pixels re-encoded and unpaired, so they are skipped."""
    rows = [r for r in read_manifest(root) if r["split"] == "train" and r.get("kind") == "video"
            and r["path"].startswith(SOURCES_VIDEO) and r["label"] in ("real", "fake")
            and (root / r["path"]).is_file()]
    composites: list[str] = []
    singles: dict[str, list[str]] = {"real": [], "fake": []}
    for r in rows:
        dfl = "deepfacelive" in r["source_repo"].lower()
        if is_composite(r):
            if dfl:
                composites.append(r["path"])
        elif not (dfl and PANEL_MARK in r["path"]):
            singles[r["label"]].append(r["path"])
    return sorted(composites), sorted(singles["real"]), sorted(singles["fake"])


def made_videos(root: Path, roots: Sequence[Path]) -> list[tuple[str, Path, str, str]]:
    """The made face fakes of a root (``train/video_fakes.py``; the dubs, whose frames are
    untouched, are left out) with their real twin: the re-encoded
    twin beside them when written, else the original clip (``source_path``) under one of
    ``roots``: (fake path, twin's root, twin path, original clip's path), sorted."""
    out: list[tuple[str, Path, str, str]] = []
    for r in read_manifest(root):
        if r["split"] != "train" or r["label"] != "fake" or not r["path"].startswith(MADE_VIDEO):
            continue
        if r["path"].startswith(SOUND_ONLY):
            continue  # the same frames as its twin: a face crop of it is no face fake
        _, marked, encoded = r["notes"].partition("re-encoded twin: ")
        twin_root: Path | None
        if marked and (root / encoded).is_file():  # the twin compressed as its fake was
            twin_root, twin = root, encoded
        else:
            twin = r["source_path"]
            twin_root = next((x for x in roots if (x / twin).is_file()), None)
        if twin_root is not None and (root / r["path"]).is_file():
            out.append((r["path"], twin_root, twin, r["source_path"]))
    return sorted(out)


def _paired_frames(fake: Path, twin: Path, frames: int
                   ) -> list[tuple[float, npt.NDArray[np.uint8], npt.NDArray[np.uint8]]]:
    """``frames`` evenly spaced frames of a made fake and the same frames (by index: the fake was
    made frame for frame from the twin's start) of its real twin, brought to the fake's size as the
    generator brought it (so the twin is not resampled differently from its fake)."""
    import av

    from veracity.train.video_fakes import working_frame

    with av.open(str(fake)) as c:
        fakes = [(float(f.time or 0.0), f.to_ndarray(format="rgb24")) for f in c.decode(video=0)]
    if not fakes:
        return []
    want = sorted(set(np.linspace(0, len(fakes) - 1, min(frames, len(fakes))).round().astype(int).tolist()))
    reals: dict[int, npt.NDArray[np.uint8]] = {}
    with av.open(str(twin)) as c:
        for k, f in enumerate(c.decode(video=0)):
            if k > want[-1]:
                break
            if k in want:
                reals[k] = working_frame(np.asarray(f.to_ndarray(format="rgb24"), dtype=np.uint8))
    out = []
    for k in want:
        t, rgb = fakes[k]
        if k in reals and reals[k].shape == rgb.shape:
            out.append((t, np.asarray(rgb, dtype=np.uint8), reals[k]))
    return out


def dfl_identity(path: str) -> str:
    """``deepfacelive_Ava_de_Addario_1.mp4`` -> ``Ava_de_Addario`` (the person filmed and swapped
    in, so validation can hold out whole identities)."""
    stem = Path(path).stem.split(PANEL_MARK)[0]
    if stem.startswith("deepfacelive_"):
        stem = stem[len("deepfacelive_"):]
    head, _, tail = stem.rpartition("_")
    return head if tail.isdigit() and head else stem


def _largest(found: Sequence[object]) -> object | None:
    from veracity.faces.types import FaceObservation

    faces = [f for f in found if isinstance(f, FaceObservation) and f.landmarks is not None]
    return max(faces, key=lambda f: f.box_size) if faces else None


def crop_and_points(rgb: npt.NDArray[np.uint8], obs: object, size: int = CROP
                    ) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float32]] | None:
    """The aligned ``size`` px crop and the mesh in its pixels, or None without an alignment."""
    import cv2

    from veracity.faces.align import alignment_matrix
    from veracity.faces.types import FaceObservation

    if not isinstance(obs, FaceObservation):
        return None
    h, w = rgb.shape[:2]
    matrix = alignment_matrix(obs, w, h, size)
    if matrix is None:
        return None
    crop = cv2.warpAffine(rgb, matrix, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT101)
    pix = obs.pixels()[:, :2] * np.array([w / obs.frame_size[0], h / obs.frame_size[1]])
    pts = pix @ matrix[:, :2].T + matrix[:, 2]
    return np.asarray(crop, dtype=np.uint8), pts.astype(np.float32)


class _Writer:
    """Appends crops to a growing list of chunks (kept small: crops are 196 kB each)."""

    def __init__(self) -> None:
        self.crops: list[npt.NDArray[np.uint8]] = []
        self.points: list[npt.NDArray[np.float32]] = []
        self.meta: list[dict[str, object]] = []

    def add(self, crop: npt.NDArray[np.uint8], pts: npt.NDArray[np.float32], *, group: str, item: str,
            label: int, source: str, pair: int = -1) -> int:
        self.crops.append(crop)
        self.points.append(pts)
        self.meta.append({"group": group, "item": item, "label": label, "source": source, "pair": pair})
        return len(self.meta) - 1


def _video_frames(path: Path, frames: int) -> list[tuple[float, npt.NDArray[np.uint8]]]:
    from veracity.config import Limits, Options
    from veracity.media import decode, plan_sampling, probe

    info = probe(path, Limits())
    media = decode(info, plan_sampling(info, Options(frames=frames, max_windows=0)), Limits())
    return [(f.t, f.rgb) for f in media.sparse]


def build(roots: Sequence[Path], *, frames_real: int = 12, frames_dfl: int = 24,
          log: Progress | None = None) -> FaceSet:
    """Run the face stage over the training data of every root (tens of minutes on one core)."""
    from veracity.faces import FaceMesher
    from veracity.media.types import Frame

    note = log or (lambda _m: None)
    out = _Writer()
    mesher = FaceMesher(max_faces=1)
    started = time.perf_counter()

    def face(rgb: npt.NDArray[np.uint8], t: float, role: str = "sparse"
             ) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float32]] | None:
        frame = Frame(t=t, rgb=np.ascontiguousarray(rgb), role=role)  # type: ignore[arg-type]
        return crop_and_points(frame.rgb, _largest(mesher.still(frame)))

    try:
        for root in roots:
            if not (root / "MANIFEST.tsv").is_file():
                continue
            composites, other_real, other_fake = sources_videos(root)
            for k, rel in enumerate(composites):
                ident = dfl_identity(rel)
                for t, rgb in _video_frames(root / rel, frames_dfl):
                    half = rgb.shape[1] // 2
                    r = face(rgb[:, :half], t)
                    f = face(rgb[:, half:2 * half], t)
                    if r is None or f is None:
                        continue
                    i = out.add(*r, group=f"dfl/{ident}", item=f"{rel}@{t:.2f}#left", label=0, source="dfl_real")
                    j = out.add(*f, group=f"dfl/{ident}", item=f"{rel}@{t:.2f}#right", label=1,
                                source="dfl_fake", pair=i)
                    out.meta[i]["pair"] = j
                if (k + 1) % 10 == 0 or k + 1 == len(composites):
                    note(f"deepfacelive composites: {k + 1}/{len(composites)}, {len(out.meta)} crops "
                         f"({time.perf_counter() - started:.0f} s)")
            for rel, label in [(p, 0) for p in other_real] + [(p, 1) for p in other_fake]:
                for t, rgb in _video_frames(root / rel, frames_real):
                    got = face(rgb, t)
                    if got is not None:
                        src = "sources_fake" if label else "sources_real"
                        out.add(*got, group=f"clip/{rel}", item=f"{rel}@{t:.2f}", label=label, source=src)
            clips = _rows(root, VIDEO_DIRS)
            for j, rel in enumerate(clips):
                for t, rgb in _video_frames(root / rel, frames_real):
                    got = face(rgb, t)
                    if got is not None:
                        out.add(*got, group=rel, item=f"{rel}@{t:.2f}", label=0, source="video_real")
                if (j + 1) % 10 == 0:
                    note(f"video_real: {j + 1}/{len(clips)} clips, {len(out.meta)} crops in all")
            images = _rows(root, FACE_DIRS)
            for i, rel in enumerate(images):
                with Image.open(root / rel) as im:
                    rgb = np.asarray(ImageOps.exif_transpose(im).convert("RGB"), dtype=np.uint8)
                got = face(rgb, 0.0, "still")
                if got is not None:
                    out.add(*got, group="/".join(rel.split("/")[:3]), item=rel, label=0, source="faces_real")
                if (i + 1) % 500 == 0:
                    note(f"faces_real: {i + 1}/{len(images)} images, {len(out.meta)} crops in all "
                         f"({time.perf_counter() - started:.0f} s)")
        for root in roots:
            made = made_videos(root, roots)
            for k, (rel, twin_root, twin, original) in enumerate(made):
                group = original if original.startswith(VIDEO_DIRS) else f"clip/{original}"
                for t, fake_rgb, real_rgb in _paired_frames(root / rel, twin_root / twin, frames_real):
                    r = face(real_rgb, t)
                    f = face(fake_rgb, t)
                    if r is None or f is None:
                        continue
                    i = out.add(*r, group=group, item=f"{twin}@{t:.2f}", label=0, source="made_real")
                    j = out.add(*f, group=group, item=f"{rel}@{t:.2f}", label=1, source="made_fake", pair=i)
                    out.meta[i]["pair"] = j
                if (k + 1) % 20 == 0 or k + 1 == len(made):
                    note(f"made fakes: {k + 1}/{len(made)} clips, {len(out.meta)} crops in all "
                         f"({time.perf_counter() - started:.0f} s)")
    finally:
        mesher.close()
    if not out.meta:
        raise ConfigError(f"no faces found in the training data under {[str(r) for r in roots]}")
    return FaceSet(np.stack(out.crops), np.stack(out.points),
                   [str(m["group"]) for m in out.meta], [str(m["item"]) for m in out.meta],
                   np.asarray([m["label"] for m in out.meta], np.int64),
                   np.asarray([m["pair"] for m in out.meta], np.int64),
                   [str(m["source"]) for m in out.meta])


def cache_tag(roots: Sequence[Path], frames_real: int, frames_dfl: int) -> str:
    names = ",".join(str(r.resolve()) for r in roots)
    return f"{PREP_VERSION};crop={CROP};frames={frames_real}/{frames_dfl};roots={names}"


def save(fs: FaceSet, folder: Path, tag: str) -> None:
    """Write atomically enough: the meta file (with the tag) goes last, so a half-written cache
    is never taken for a complete one."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "meta.json").unlink(missing_ok=True)
    np.save(folder / "crops.npy", fs.crops)
    np.save(folder / "points.npy", fs.points)
    meta = {"tag": tag, "groups": fs.groups, "items": fs.items, "labels": fs.labels.tolist(),
            "pairs": fs.pairs.tolist(), "sources": fs.sources}
    tmp = folder / "meta.json.tmp"
    tmp.write_text(json.dumps(meta), encoding="utf-8")
    tmp.replace(folder / "meta.json")


def load(folder: Path, tag: str | None = None) -> FaceSet | None:
    """The cached set (crops memory-mapped), or None when absent or built with another tag."""
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        return None
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if tag is not None and meta.get("tag") != tag:
        return None
    crops = np.load(folder / "crops.npy", mmap_mode="r")
    points = np.load(folder / "points.npy")
    return FaceSet(crops, points, list(meta["groups"]), list(meta["items"]),
                   np.asarray(meta["labels"], np.int64), np.asarray(meta["pairs"], np.int64),
                   list(meta["sources"]))


def load_or_build(roots: Sequence[Path], folder: Path, *, frames_real: int = 12, frames_dfl: int = 24,
                  log: Progress | None = None) -> FaceSet:
    """The cached set when it was built with the same version, settings and roots, else build it."""
    note = log or (lambda _m: None)
    tag = cache_tag(roots, frames_real, frames_dfl)
    cached = load(folder, tag)
    if cached is not None:
        note(f"{len(cached)} face crops from cache {folder}")
        return cached
    fs = build(roots, frames_real=frames_real, frames_dfl=frames_dfl, log=log)
    save(fs, folder, tag)
    note(f"cached {len(fs)} face crops in {folder}: {fs.counts()}")
    loaded = load(folder, tag)
    if loaded is None:
        raise ConfigError(f"face crop cache {folder} could not be read back")
    return loaded


def main(argv: list[str] | None = None) -> int:
    """``python -m veracity.train.face_prep [--data ROOT ...]``: build (or confirm) the crop cache
    where ``veracity train face_artifacts`` and the fusion's held-out table look for it, without
    training (a fresh machine's setup, ``scripts/training_data.sh``)."""
    import argparse

    from veracity.config import Settings
    from veracity.train.common import default_roots

    ap = argparse.ArgumentParser(description=(main.__doc__ or "").splitlines()[0])
    ap.add_argument("--data", type=Path, action="append", help="data root (repeat); default: the trainers' roots")
    args = ap.parse_args(argv)
    cache = Settings.from_env().cache_dir
    roots = args.data or default_roots(cache)
    fs = load_or_build(roots, cache / "train" / "face_artifacts" / "crops", log=print)
    print(f"{len(fs)} face crops: {fs.counts()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
