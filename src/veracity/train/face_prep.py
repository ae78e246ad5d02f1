"""Aligned face crops and their mesh, cut once from the training data and cached.

The crops are made exactly as the pipeline makes them at inference (MediaPipe mesh through
:class:`~veracity.faces.FaceMesher`, :func:`~veracity.faces.align.align_crop` at 224 px), and
the 478 landmarks are mapped into crop pixels with the same similarity transform, so the
self-blending masks follow each face. Sources: ``train/faces_real`` (every image) and sparse
frames of every ``train/video_real`` clip. Nothing from ``eval/`` is read.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageOps

from veracity.errors import ConfigError

Progress = Callable[[str], None]
CROP = 224
PREP_VERSION = "face-prep/1"
FACE_DIRS = ("train/faces_real/",)
VIDEO_DIRS = ("train/video_real/",)


@dataclass(frozen=True, slots=True)
class FaceSet:
    """``crops`` (N, 224, 224, 3) uint8, ``points`` (N, 478, 2) crop pixels, one group per crop
    (the clip or the image folder: validation holds out whole groups or images)."""

    crops: npt.NDArray[np.uint8]
    points: npt.NDArray[np.float32]
    groups: list[str]
    items: list[str]  # source file (and frame time) of each crop

    def __post_init__(self) -> None:
        n = self.crops.shape[0]
        if self.crops.shape[1:] != (CROP, CROP, 3) or self.points.shape != (n, 478, 2):
            raise ValueError(f"bad shapes {self.crops.shape} / {self.points.shape}")
        if len(self.groups) != n or len(self.items) != n:
            raise ValueError("one group and one item name per crop")

    def __len__(self) -> int:
        return int(self.crops.shape[0])


def _rows(data_root: Path, prefixes: tuple[str, ...]) -> list[str]:
    path = data_root / "MANIFEST.tsv"
    if not path.is_file():
        raise ConfigError(f"no MANIFEST.tsv under {data_root}")
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    out = [r["path"] for r in rows if r["split"] == "train" and r["label"] == "real"
           and r["path"].startswith(prefixes) and (data_root / r["path"]).is_file()]
    return sorted(out)


def _largest(found: list[object]) -> object | None:
    from veracity.faces.types import FaceObservation

    faces = [f for f in found if isinstance(f, FaceObservation) and f.landmarks is not None]
    return max(faces, key=lambda f: f.box_size) if faces else None


def crop_and_points(rgb: npt.NDArray[np.uint8], obs: object) -> tuple[npt.NDArray[np.uint8],
                                                                     npt.NDArray[np.float32]] | None:
    """The 224 px aligned crop and the mesh in its pixels, or None without an alignment."""
    import cv2

    from veracity.faces.align import alignment_matrix
    from veracity.faces.types import FaceObservation

    if not isinstance(obs, FaceObservation):
        return None
    h, w = rgb.shape[:2]
    matrix = alignment_matrix(obs, w, h, CROP)
    if matrix is None:
        return None
    crop = cv2.warpAffine(rgb, matrix, (CROP, CROP), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REFLECT101)
    pix = obs.pixels()[:, :2] * np.array([w / obs.frame_size[0], h / obs.frame_size[1]])
    pts = pix @ matrix[:, :2].T + matrix[:, 2]
    return np.asarray(crop, dtype=np.uint8), pts.astype(np.float32)


def build(data_root: Path, *, frames_per_clip: int = 16, log: Progress | None = None) -> FaceSet:
    """Run the face stage over the training reals (minutes on 2 cores)."""
    from veracity.config import Limits, Options
    from veracity.faces import FaceMesher
    from veracity.media import decode, plan_sampling, probe
    from veracity.media.types import Frame

    note = log or (lambda _m: None)
    crops: list[npt.NDArray[np.uint8]] = []
    points: list[npt.NDArray[np.float32]] = []
    groups: list[str] = []
    items: list[str] = []
    mesher = FaceMesher(max_faces=1)
    started = time.perf_counter()
    try:
        images = _rows(data_root, FACE_DIRS)
        for i, rel in enumerate(images):
            with Image.open(data_root / rel) as im:
                rgb = np.ascontiguousarray(np.asarray(ImageOps.exif_transpose(im).convert("RGB"), dtype=np.uint8))
            got = crop_and_points(rgb, _largest(list(mesher.still(Frame(t=0.0, rgb=rgb, role="still")))))
            if got is not None:
                crops.append(got[0])
                points.append(got[1])
                groups.append("/".join(rel.split("/")[:3]))
                items.append(rel)
            if (i + 1) % 500 == 0:
                note(f"faces_real: {i + 1}/{len(images)} images, {len(crops)} faces "
                     f"({time.perf_counter() - started:.0f} s)")
        clips = _rows(data_root, VIDEO_DIRS)
        options = Options(frames=frames_per_clip, max_windows=0)
        for j, rel in enumerate(clips):
            info = probe(data_root / rel, Limits())
            media = decode(info, plan_sampling(info, options), Limits())
            for frame in media.sparse:
                got = crop_and_points(frame.rgb, _largest(list(mesher.still(frame))))
                if got is not None:
                    crops.append(got[0])
                    points.append(got[1])
                    groups.append(rel)
                    items.append(f"{rel}@{frame.t:.2f}")
            note(f"video_real: {j + 1}/{len(clips)} clips, {len(crops)} faces in all")
    finally:
        mesher.close()
    if not crops:
        raise ConfigError(f"no faces found in the training reals under {data_root}")
    return FaceSet(np.stack(crops), np.stack(points), groups, items)


def load_or_build(data_root: Path, cache: Path, *, frames_per_clip: int = 16,
                  log: Progress | None = None) -> FaceSet:
    """The cached set when it was built with the same version and settings, else build it."""
    note = log or (lambda _m: None)
    tag = f"{PREP_VERSION};frames={frames_per_clip};root={data_root.resolve()}"
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as z:
            if str(z["tag"]) == tag:
                note(f"face crops from cache {cache}")
                return FaceSet(z["crops"], z["points"], [str(g) for g in z["groups"]],
                               [str(i) for i in z["items"]])
    fs = build(data_root, frames_per_clip=frames_per_clip, log=log)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, tag=np.asarray(tag), crops=fs.crops, points=fs.points,
             groups=np.asarray(fs.groups), items=np.asarray(fs.items))
    tmp.replace(cache)
    note(f"cached {len(fs)} face crops in {cache}")
    return fs
