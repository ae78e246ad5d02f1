"""Made training fakes for the video detectors: a face swap, a lip-sync, a talking head from a
still (classical warps of a real train clip) and two dubs (a vocoded and a synthesised voice).

    python -m veracity.train.video_fakes OUT [--methods faceswap,lipsync,still] [--max-seconds 6]
    veracity train fusion --data ../shared/data --data ~/.cache/veracity/data --data OUT

Why: every fake train video we may use comes from one repository (DeepFaceLive), so no video
detector can show power across generators (the fusion's ``proven`` rule needs two fake
sources), and the face detector never sees a lip-sync or a reenactment. These three methods are
the pre-neural versions of what the eval generators do; they are crude, and a detector that
separates them has shown power on *them*, not on neural fakes: the eval sets say the rest.

- ``faceswap`` (FaceSwap-style): the face of a donor clip (another person, one still frame) is
  warped piecewise-affinely onto each frame's mesh, its colour matched in LAB, rendered at a
  swapper's face size (64-160 px) and blended through an eroded, feathered hull; the target's
  own mouth interior stays (swappers keep the teeth and tongue).
- ``lipsync`` (Wav2Lip-style): the lower face of another moment of the same clip (half the clip
  away, so the lips no longer follow the sound) is aligned by a similarity on the eyes and nose,
  rendered at 48-96 px face height and pasted through a feathered lower-face mask; the original
  sound is kept, so the lips and the speech disagree.
- ``still`` (talking head from one image): the first frame, warped piecewise-affinely over the
  whole picture (mesh plus fixed border points) to every later frame's mesh: the motion is real,
  the texture is frozen, the mouth interior and the background are the first frame's; the face
  region is rendered at 128-256 px and sometimes smoothed or sharpened like a face restorer.

- ``voice``: the frames untouched, the clip's own sound resynthesised by HiFi-GAN or WORLD (a
  dub by a voice converter: words, timing and lips still agree).
- ``tts``: the frames untouched, the sound replaced by sentences from a classic synthesiser
  (Debian's flite or festival, neither of which made any of synthetic_speech's training fakes),
  as in a talking head voiced by TTS; its twin is dubbed with a real voice of someone else, so
  lips and sound disagree in both and only where the voice came from differs.

Output: ``OUT/train/video_fake/made_<method>/<clip>.mp4`` (H.264 CRF 18-30, the source's frame
rate and sound); beside each, its real twin re-encoded alike (``OUT/train/video_twin/...``, a
real row: without it every made fake would also be "the one compressed twice"); and
``OUT/MANIFEST.tsv`` (``train`` rows only, source ``local/made-<method>``:
generated media is for training, never eval, never committed). Input: the real train videos of
the data roots (``train/video_real`` and the SOURCES train reals). Seeded: the same command
makes the same choices (donors, vocoders, CRFs, warps, masks) and the same manifest; the H.264
streams can still differ by a few grey levels from run to run (threaded x264 on a loaded machine:
measured on 4 of 48 clips between two runs), so files are the same media, not the same bytes.
"""

from __future__ import annotations

import argparse
import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from veracity.errors import ConfigError
from veracity.train.common import VIDEO_SUFFIXES, default_roots, read_manifest
from veracity.train.sbi import hull_mask
from veracity.train.speech_fakes import write_manifest

U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
Progress = Callable[[str], None]

METHODS = ("faceswap", "lipsync", "still", "voice", "tts")
VOICE_VOCODERS = ("hifigan", "world")  # voice: drawn per clip; each is a fake source of its own
# tts: the engine drawn per clip (a fake source each) and its voices. Neither engine made any of
# synthetic_speech's training fakes (Piper VITS, espeak-ng, the SOURCES TTS systems), so its
# scores on these dubs measure it on a synthesiser it never heard.
TTS_VOICES = {"flite": ("slt", "rms", "awb", "kal16"),
              "festival": ("voice_kal_diphone", "voice_cmu_us_slt_arctic_hts")}
TTS_ENGINES = tuple(TTS_VOICES)
VARIANTS = {"voice": VOICE_VOCODERS, "tts": TTS_ENGINES}  # drawn per clip by variant()
# MediaPipe mesh: the inner lip loop (the mouth opening) and points that do not move with speech.
INNER_LIPS = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178, 88, 95)
STABLE = (33, 133, 362, 263, 168, 6, 197, 195, 5, 4, 1, 10, 151, 9)
NOSE_TIP, BROW_MID = 1, 9
MAX_SIDE = 720
TWIN_DIR = "train/video_twin/"


@dataclass(frozen=True, slots=True)
class Clip:
    """Decoded frames (RGB, at most ``MAX_SIDE``), their times, the frame rate and, per frame,
    the largest face's 478 mesh points in pixels (None where no face was found)."""

    frames: list[U8]
    times: list[float]
    fps: Fraction
    points: list[F64 | None]


def working_frame(rgb: U8) -> U8:
    """A decoded frame as the generator works on it: at most ``MAX_SIDE``, even sides (H.264)."""
    h, w = rgb.shape[:2]
    if max(h, w) > MAX_SIDE:
        s = MAX_SIDE / max(h, w)
        rgb = np.asarray(cv2.resize(rgb, (int(w * s) // 2 * 2, int(h * s) // 2 * 2), interpolation=cv2.INTER_AREA),
                         dtype=np.uint8)
    return np.ascontiguousarray(rgb[: rgb.shape[0] // 2 * 2, : rgb.shape[1] // 2 * 2])


def read_frames(path: Path, max_seconds: float) -> tuple[list[U8], list[float], Fraction]:
    """Every frame of the first ``max_seconds`` (as :func:`working_frame` makes it), their times
    and the frame rate."""
    import av

    frames: list[U8] = []
    times: list[float] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = Fraction(stream.average_rate or 25).limit_denominator(1001)
        for frame in container.decode(stream):
            t = float(frame.time if frame.time is not None else len(frames) / fps)
            if t > max_seconds:
                break
            frames.append(working_frame(np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)))
            times.append(max(0.0, t))
    return frames, times, fps


Decoded = tuple[list[U8], list[float], Fraction]  # what read_frames gives


def read_clip(path: Path, max_seconds: float, decoded: Decoded | None = None) -> Clip:
    """The first ``max_seconds`` of a video, every frame, meshed with the pipeline's tracker
    (``decoded``: its :func:`read_frames` when already read)."""
    from veracity.faces.mesh import FaceMesher
    from veracity.media.types import Frame

    frames, times, fps = decoded or read_frames(path, max_seconds)
    mesher = FaceMesher(max_faces=2)
    try:
        found = mesher.sequence([Frame(t=t, rgb=f, role="dense", window=0) for t, f in zip(times, frames, strict=True)])
    finally:
        mesher.close()
    points: list[F64 | None] = []
    for seen, f in zip(found, frames, strict=True):
        faces = [o for o in seen if o.landmarks is not None]
        if not faces:
            points.append(None)
            continue
        o = max(faces, key=lambda o: o.box_size)
        pts = o.pixels()[:, :2] * np.array([f.shape[1] / o.frame_size[0], f.shape[0] / o.frame_size[1]])
        points.append(pts)
    return Clip(frames, times, fps, points)


def triangles(points: F64) -> npt.NDArray[np.int64]:
    """A Delaunay triangulation of ``points`` (kept for a whole clip: the mesh's points
    correspond frame to frame)."""
    from scipy.spatial import Delaunay

    return np.asarray(Delaunay(points).simplices, dtype=np.int64)


def piecewise_warp(src: U8, src_pts: F64, dst_pts: F64, tris: npt.NDArray[np.int64],
                   size: tuple[int, int]) -> tuple[U8, F32]:
    """``src`` warped so that ``src_pts`` land on ``dst_pts``, affinely within each triangle, on a
    ``size`` (width, height) canvas; and the canvas's coverage (1 inside the triangles)."""
    w, h = size
    index = np.zeros((h, w), dtype=np.uint16)
    inverse = np.zeros((len(tris) + 1, 2, 3), dtype=np.float64)
    for k, tri in enumerate(tris, start=1):
        d = dst_pts[tri].astype(np.float32)
        s = src_pts[tri].astype(np.float32)
        if abs(float(np.cross(d[1] - d[0], d[2] - d[0]))) < 1e-3:
            continue
        inverse[k] = cv2.getAffineTransform(d, s)
        cv2.fillConvexPoly(index, np.round(d).astype(np.int32), (k,))
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    a = inverse[index]
    map_x = (a[..., 0, 0] * xs + a[..., 0, 1] * ys + a[..., 0, 2]).astype(np.float32)
    map_y = (a[..., 1, 0] * xs + a[..., 1, 1] * ys + a[..., 1, 2]).astype(np.float32)
    out = cv2.remap(src, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
    return np.asarray(out, dtype=np.uint8), (index > 0).astype(np.float32)


def feather(mask: F32, face_px: float, rng: np.random.Generator) -> F32:
    """Erode by 2-6 % of the face size, then blur by 3-8 %: the soft seam of a blended face."""
    k = max(1, int(face_px * rng.uniform(0.02, 0.06))) | 1
    m = cv2.erode(mask, np.ones((k, k), np.uint8))
    sigma = max(0.8, face_px * rng.uniform(0.03, 0.08))
    return np.asarray(cv2.GaussianBlur(m, (0, 0), sigma), dtype=np.float32)


def colour_match(src: U8, ref: U8, mask: F32) -> U8:
    """``src``'s LAB mean and spread inside ``mask`` set to ``ref``'s (Reinhard transfer)."""
    sel = mask > 0.5
    if sel.sum() < 16:
        return src
    a = cv2.cvtColor(src, cv2.COLOR_RGB2LAB).astype(np.float32)
    b = cv2.cvtColor(ref, cv2.COLOR_RGB2LAB).astype(np.float32)
    am, asd = a[sel].mean(0), a[sel].std(0) + 1e-3
    bm, bsd = b[sel].mean(0), b[sel].std(0) + 1e-3
    out = np.clip((a - am) / asd * bsd + bm, 0, 255).astype(np.uint8)
    return np.asarray(cv2.cvtColor(out, cv2.COLOR_LAB2RGB), dtype=np.uint8)


def render_at(img: U8, box: tuple[int, int, int, int], side: float) -> U8:
    """The ``box`` region re-rendered as a generator at ``side`` px would: down to that size and
    back up (no change when the region is already smaller)."""
    x0, y0, x1, y1 = box
    region = img[y0:y1, x0:x1]
    bh, bw = region.shape[:2]
    s = side / max(bh, bw, 1)
    if s >= 1 or bh < 4 or bw < 4:
        return img
    small = cv2.resize(region, (max(2, int(bw * s)), max(2, int(bh * s))), interpolation=cv2.INTER_AREA)
    out = img.copy()
    out[y0:y1, x0:x1] = cv2.resize(small, (bw, bh), interpolation=cv2.INTER_LINEAR)
    return out


def restore_look(img: U8, rng: np.random.Generator) -> U8:
    """Sometimes what a face restorer leaves: smoothed skin (bilateral) or over-sharpened edges."""
    u = rng.random()
    if u < 0.3:
        return np.asarray(cv2.bilateralFilter(img, 7, 40, 5), dtype=np.uint8)
    if u < 0.5:
        blur = cv2.GaussianBlur(img, (0, 0), 1.2)
        return np.asarray(cv2.addWeighted(img, 1.7, blur, -0.7, 0), dtype=np.uint8)
    return img


def face_box(points: F64, size: tuple[int, int], grow: float = 1.15) -> tuple[int, int, int, int]:
    lo, hi = points.min(0), points.max(0)
    c, half = (lo + hi) / 2, (hi - lo).max() * grow / 2
    x0, y0 = np.floor(np.maximum(c - half, 0)).astype(int)
    x1, y1 = np.ceil(np.minimum(c + half, [size[0], size[1]])).astype(int)
    return int(x0), int(y0), int(x1), int(y1)


def blend(base: U8, top: U8, alpha: F32) -> U8:
    a = alpha[..., None]
    return np.asarray(np.clip(top * a + base * (1 - a), 0, 255).astype(np.uint8))


def shrunk(points: F64, factor: float) -> F64:
    """``points`` pulled towards their centroid by ``factor``."""
    c = points.mean(0)
    return np.asarray(c + factor * (points - c), dtype=np.float64)


def face_px(points: F64) -> float:
    return float((points.max(0) - points.min(0)).max())


def most_frontal(points: Sequence[F64 | None]) -> int | None:
    """The frame whose nose tip sits most nearly midway between the outer eye corners (a donor
    face seen from the side smears when warped onto a frontal one)."""
    best, best_k = np.inf, None
    for k, p in enumerate(points):
        if p is None:
            continue
        iod = float(np.linalg.norm(p[263] - p[33])) + 1e-6
        off = abs(float(p[NOSE_TIP, 0] - (p[33, 0] + p[263, 0]) / 2)) / iod
        if off < best:
            best, best_k = off, k
    return best_k


def make_faceswap(clip: Clip, donor: Clip, rng: np.random.Generator) -> list[U8] | None:
    k = most_frontal(donor.points)
    if k is None:
        return None
    d_img, d_pts = donor.frames[k], donor.points[k]
    assert d_pts is not None
    tris = triangles(d_pts)
    side = rng.uniform(64, 160)
    out: list[U8] = []
    for img, pts in zip(clip.frames, clip.points, strict=True):
        if pts is None:
            out.append(img)
            continue
        size = (img.shape[1], img.shape[0])
        warped, cover = piecewise_warp(d_img, d_pts, pts, tris, size)
        mask = hull_mask(shrunk(pts, 0.9), size) * cover  # inside the oval: no donor hair or background
        mask[hull_mask(pts[list(INNER_LIPS)], size) > 0] = 0
        warped = colour_match(warped, img, mask)
        warped = render_at(warped, face_box(pts, size), side)
        out.append(blend(img, warped, feather(mask, face_px(pts), rng)))
    return out


def make_lipsync(clip: Clip, rng: np.random.Generator) -> list[U8] | None:
    n = len(clip.frames)
    if n < 8 or sum(p is not None for p in clip.points) < n // 2:
        return None
    shift = n // 2
    side = rng.uniform(48, 96)
    out: list[U8] = []
    for i, (img, pts) in enumerate(zip(clip.frames, clip.points, strict=True)):
        j = (i + shift) % n
        src, spts = clip.frames[j], clip.points[j]
        if pts is None or spts is None:
            out.append(img)
            continue
        size = (img.shape[1], img.shape[0])
        m, _ = cv2.estimateAffinePartial2D(spts[list(STABLE)].astype(np.float32), pts[list(STABLE)].astype(np.float32))
        if m is None:
            out.append(img)
            continue
        moved = cv2.warpAffine(src, m, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
        mpts = spts @ m[:, :2].T + m[:, 2]
        cut = pts[NOSE_TIP, 1] - 0.25 * (pts[NOSE_TIP, 1] - pts[BROW_MID, 1])
        lower = np.vstack([pts[pts[:, 1] >= cut], mpts[mpts[:, 1] >= cut]])
        mask = hull_mask(lower, size)
        moved = colour_match(np.asarray(moved, dtype=np.uint8), img, mask)
        box = face_box(lower, size, grow=1.1)
        moved = restore_look(render_at(moved, box, side), rng)
        out.append(blend(img, moved, feather(mask, face_px(pts), rng)))
    return out


def make_still(clip: Clip, rng: np.random.Generator) -> list[U8] | None:
    k = next((i for i, p in enumerate(clip.points) if p is not None), None)
    if k is None or len(clip.frames) < 8:
        return None
    src, spts = clip.frames[k], clip.points[k]
    assert spts is not None
    h, w = src.shape[:2]
    border = np.array([[x, y] for x in (0, w / 2, w - 1) for y in (0, h / 2, h - 1) if not (x == w / 2 and y == h / 2)])
    tris = triangles(np.vstack([spts, border]))
    side = rng.uniform(128, 256)
    look = rng.random()
    out: list[U8] = []
    last = src
    for pts in clip.points:
        if pts is not None:
            warped, _ = piecewise_warp(src, np.vstack([spts, border]), np.vstack([pts, border]), tris, (w, h))
            box = face_box(pts, (w, h), grow=1.6)
            warped = render_at(warped, box, side)
            if look < 0.5:
                x0, y0, x1, y1 = box
                warped = warped.copy()
                warped[y0:y1, x0:x1] = restore_look(np.ascontiguousarray(warped[y0:y1, x0:x1]), rng)
            last = warped
        out.append(last)  # a frame without a face holds the last rendered one
    return out


def variant(method: str, rel: str, seed: int) -> str | None:
    """What a sound-only fake of a clip uses, drawn from a hash of its path (so the source is
    known without the file): the vocoder of ``voice``, the synthesiser of ``tts``; None for the
    other methods. Each variant is a fake source of its own (``local/made-voice-world``)."""
    choices = VARIANTS.get(method)
    return choices[zlib.crc32(f"{method}:{seed}:{rel}".encode()) % len(choices)] if choices else None


def make_voice(path: Path, max_seconds: float, vocoder: str) -> tuple[F32, int] | None:
    """The clip's own sound resynthesised by a vocoder (the words, timing and speaker stay, so the
    lips still match; only the voice is now synthetic, as in a dub by a voice clone): (samples,
    rate), or None for a clip without sound. Needs the train extra."""
    from veracity.detectors.synthetic_speech import RATE
    from veracity.errors import VeracityError
    from veracity.train.copy_synthesis import resample
    from veracity.train.synthetic_speech import read_samples
    from veracity.train.vocoders import HifiGan, World

    try:
        x = read_samples(path)[: int(max_seconds * RATE)]
    except VeracityError:
        return None
    if x.size < RATE or float(np.abs(x).max()) < 1e-3:
        return None
    if vocoder not in _VOCODERS:
        from veracity.config import Settings

        _VOCODERS[vocoder] = HifiGan.from_cache(Settings.from_env().cache_dir) if vocoder == "hifigan" else World()
    voc = _VOCODERS[vocoder]
    y = voc(resample(x, RATE, voc.rate))
    peak = float(np.abs(y).max()) if y.size else 0.0
    return np.asarray(y / peak * 0.9 if peak > 0.99 else y, dtype=np.float32), voc.rate


_VOCODERS: dict[str, Any] = {}  # loaded once per run


def make_tts(text: str, engine: str, voice: str, max_seconds: float) -> tuple[F32, int]:
    """``text`` spoken by Debian's flite or festival (``apt-get install flite festival
    festvox-kallpc16k festvox-us-slt-hts``), at most ``max_seconds``: (samples, rate)."""
    import shutil
    import subprocess
    import tempfile
    import wave

    tool = "flite" if engine == "flite" else "text2wave"
    if shutil.which(tool) is None:
        raise ConfigError(f"{tool} is not installed (apt-get install flite festival festvox-kallpc16k "
                          "festvox-us-slt-hts)")
    with tempfile.TemporaryDirectory(prefix="veracity-tts-") as tmp:
        wav = Path(tmp) / "out.wav"
        if engine == "flite":
            cmd = ["flite", "-voice", voice, "-t", text, "-o", str(wav)]
        else:
            (Path(tmp) / "in.txt").write_text(text, encoding="utf-8")
            cmd = ["text2wave", "-eval", f"({voice})", "-o", str(wav), str(Path(tmp) / "in.txt")]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)
        with wave.open(str(wav), "rb") as w:
            rate = w.getframerate()
            raw = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, w.getnchannels())
    x = raw.mean(axis=1).astype(np.float32)[: int(max_seconds * rate)] / 32768.0
    peak = float(np.abs(x).max()) if x.size else 0.0
    return (np.asarray(x / peak * 0.7, dtype=np.float32) if peak > 0 else x), rate


def tts_dub(rel: str, seed: int, max_seconds: float, texts: Sequence[str]) -> tuple[F32, int]:
    """The sound of a clip's ``tts`` fake: sentences (``texts``, drawn from a hash of its path)
    in one of its engine's voices, filling about ``max_seconds``."""
    engine = variant("tts", rel, seed) or TTS_ENGINES[0]
    rng = np.random.default_rng([seed, zlib.crc32(f"tts-text:{rel}".encode())])
    voices = TTS_VOICES[engine]
    start = int(rng.integers(len(texts)))
    words: list[str] = []
    for k in range(len(texts)):
        words += texts[(start + k) % len(texts)].split()
        if len(words) >= 2.6 * max_seconds:  # ~2.6 words a second, so the speech fills the clip
            break
    return make_tts(" ".join(words) + ".", engine, voices[int(rng.integers(len(voices)))], max_seconds)


def foreign_voice(videos: Sequence[tuple[Path, str, str]], rel: str, seed: int) -> Path | None:
    """A real clip of someone else that has a sound track: the voice of a ``tts`` fake's twin, so
    the twin is a dub too (lips and sound disagree in both; only the voice's origin differs)."""
    import av

    others = [v for v in videos if identity(v[1]) != identity(rel)]
    rng = np.random.default_rng([seed, zlib.crc32(f"foreign:{rel}".encode())])
    for k in rng.permutation(len(others)):
        path = others[int(k)][0]
        try:
            with av.open(str(path)) as c:
                if c.streams.audio and (c.duration or 0) > 2_000_000:
                    return path
        except av.error.FFmpegError:
            continue
    return None


def write_clip(path: Path, frames: Sequence[U8], fps: Fraction, sound_from: Path | tuple[F32, int], seconds: float,
               crf: int) -> None:
    """H.264 (yuv420p) at ``crf`` plus the first ``seconds`` of ``sound_from``'s audio (AAC), or
    of the given (mono samples, rate)."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.mp4")
    h, w = frames[0].shape[:2]
    with av.open(str(tmp), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.options = {"crf": str(crf), "preset": "veryfast"}
        audio_in: Any = None
        if isinstance(sound_from, tuple):
            samples, rate = sound_from
            audio_in = out.add_stream("aac", rate=rate)
            frame = av.AudioFrame.from_ndarray(np.clip(samples[: int(seconds * rate)], -1, 1).astype(np.float32)[None],
                                               format="fltp", layout="mono")
            frame.sample_rate = rate
            for p in audio_in.encode(frame):
                out.mux(p)
            for p in audio_in.encode(None):
                out.mux(p)
        else:
            _copy_sound(out, sound_from, seconds)
        for img in frames:
            for p in vs.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")):
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)
    tmp.replace(path)


def _copy_sound(out: Any, sound_from: Path, seconds: float) -> None:
    """The first ``seconds`` of ``sound_from``'s first audio stream, re-encoded as mono AAC (a
    file without sound gives a silent clip)."""
    import av

    with av.open(str(sound_from)) as src:
        if not src.streams.audio:
            return
        a = src.streams.audio[0]
        rate = int(a.rate or 16000)
        stream = out.add_stream("aac", rate=rate)
        resampler = av.AudioResampler(format="fltp", layout="mono", rate=rate)
        for frame in src.decode(a):
            if frame.time is not None and frame.time > seconds:
                break
            for r in resampler.resample(frame):
                r.pts = None
                for p in stream.encode(r):
                    out.mux(p)
        for p in stream.encode(None):
            out.mux(p)


def x264_crf(path: Path) -> int | None:
    """The CRF an x264-encoded file was written with (x264 stores its settings, ``crf=23.0``,
    in the stream), or None."""
    m = re.search(rb"crf=(\d+(?:\.\d+)?)", path.read_bytes()[:200_000])
    return int(float(m.group(1))) if m else None


def twin_path(out: Path, method: str, rel: str) -> Path:
    """Where the re-encoded real twin of a made fake goes: the same frames of the real clip through
    the same encoder at the same CRF, with the same sound, so that a fake differs from its twin
    by the manipulation and not by one more generation of compression."""
    return out / TWIN_DIR / f"made_{method}" / (Path(rel).stem + ".mp4")


def real_videos(roots: Sequence[Path]) -> list[tuple[Path, str, str]]:
    """(path, manifest path, source repository) of every real train video that is not a
    side-by-side composite, sorted."""
    from veracity.train.data import PANEL_MARK, is_composite

    out: list[tuple[Path, str, str]] = []
    for root in roots:
        for r in read_manifest(root):
            p = r["path"]
            if r["split"] != "train" or r["label"] != "real" or not p.lower().endswith(VIDEO_SUFFIXES):
                continue
            if is_composite(r) or PANEL_MARK in p or p.startswith(TWIN_DIR) or not (root / p).is_file():
                continue  # whole composites, their panels, and our own twins are no source clips
            out.append((root / p, p, r.get("source_repo", "")))
    return sorted(out, key=lambda x: x[1])


def identity(rel: str) -> str:
    """Who a clip shows, as far as its name says (``mead_W009_...`` -> ``mead_W009``,
    ``grid_id2_...`` -> ``grid_id2``): a donor must be someone else."""
    parts = Path(rel).stem.split("_")
    return "_".join(parts[:2]) if len(parts) > 2 else parts[0]


def generate(out: Path, roots: Sequence[Path], *, methods: Sequence[str] = METHODS, max_seconds: float = 6.0,
             seed: int = 0, limit: int | None = None, progress: Progress = print) -> int:
    """Write the made fakes and ``out/MANIFEST.tsv``; returns the number of clips written."""
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise ConfigError(f"unknown method(s) {', '.join(sorted(unknown))}; choose from {', '.join(METHODS)}")
    videos = real_videos(roots)[:limit]
    if not videos:
        raise ConfigError(f"no real train videos under {', '.join(map(str, roots))}")
    rows: list[dict[str, str]] = []
    donors: dict[Path, Clip] = {}
    texts: list[str] = []
    if "tts" in methods:
        from veracity.train.speech_fakes import sentences

        texts = sentences(seed)

    def donor_of(path: Path) -> Clip:
        if path not in donors:
            donors.clear()  # one donor in memory beside the target
            donors[path] = read_clip(path, max_seconds)
        return donors[path]

    for n, (path, rel, repo) in enumerate(videos):
        decoded: Decoded | None = None  # the real clip, decoded once for its fakes and their twins
        clip: Clip | None = None
        for method in methods:
            rng = np.random.default_rng([seed, zlib.crc32(f"{method}:{rel}".encode())])
            crf = int(np.random.default_rng([seed, zlib.crc32(f"crf:{method}:{rel}".encode())]).integers(18, 31))
            target = out / "train" / "video_fake" / f"made_{method}" / (Path(rel).stem + ".mp4")
            detail = f"made {method} of {rel}"
            foreign = foreign_voice(videos, rel, seed) if method == "tts" else None
            if method == "tts" and foreign is None:
                progress(f"[{n + 1}/{len(videos)}] tts {rel}: skipped (no other clip with sound for its twin)")
                continue
            if not target.is_file():
                made: list[U8] | None = None
                fps: Fraction = Fraction(25)
                sound: Path | tuple[F32, int] = path
                if method == "voice":
                    voiced = make_voice(path, max_seconds, variant("voice", rel, seed) or VOICE_VOCODERS[0])
                    if voiced is not None:
                        sound = voiced
                        decoded = decoded or read_frames(path, max_seconds)
                        made, _, fps = decoded
                elif method == "tts":
                    sound = tts_dub(rel, seed, max_seconds, texts)
                    decoded = decoded or read_frames(path, max_seconds)
                    made, _, fps = decoded
                else:
                    decoded = decoded or read_frames(path, max_seconds)
                    clip = clip or read_clip(path, max_seconds, decoded)
                    fps = clip.fps
                    if method == "faceswap":
                        others = [v for v in videos if identity(v[1]) != identity(rel)]
                        donor_path = others[int(rng.integers(len(others)))][0] if others else None
                        made = None if donor_path is None else make_faceswap(clip, donor_of(donor_path), rng)
                    elif method == "lipsync":
                        made = make_lipsync(clip, rng)
                    else:
                        made = make_still(clip, rng)
                if not made:
                    progress(f"[{n + 1}/{len(videos)}] {method} {rel}: skipped (too short, no face or no sound)")
                    continue
                write_clip(target, made, fps, sound, max_seconds, crf)
                progress(f"[{n + 1}/{len(videos)}] {method} {rel}: {len(made)} frames")
            twin = twin_path(out, method, rel)
            if not twin.is_file():
                decoded = decoded or read_frames(path, max_seconds)
                write_clip(twin, decoded[0], decoded[2], foreign or path, max_seconds, x264_crf(target) or crf)
            drawn = variant(method, rel, seed)
            source = f"local/made-{method}" + (f"-{drawn}" if drawn else "")
            common = {"split": "train", "kind": "video", "source_repo": source, "commit": "",
                      "source_path": rel, "license": "generated locally from a research-licensed clip, training only"}
            rows.append({"path": str(target.relative_to(out)), "label": "fake", "detail": detail, **common,
                         "notes": f"real twin: {rel} ({repo}); re-encoded twin: {twin.relative_to(out)}"})
            dubbed = "" if foreign is None else f", dubbed with the real voice of {foreign.name}"
            rows.append({"path": str(twin.relative_to(out)), "label": "real", **common,
                         "detail": f"{rel} re-encoded as its made {method} fake was{dubbed}",
                         "notes": f"twin of {detail}"})
    write_manifest(out, rows)
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    from veracity.config import Settings

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--data", type=Path, action="append", help="data root (repeat); default: the trainers' roots")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--max-seconds", type=float, default=6.0)
    ap.add_argument("--limit", type=int, default=None, help="only the first N real clips")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    roots = args.data or default_roots(Settings().cache_dir)
    n = generate(args.out, roots, methods=[m for m in args.methods.split(",") if m], max_seconds=args.max_seconds,
                 seed=args.seed, limit=args.limit)
    print(f"wrote {n} clips and {args.out / 'MANIFEST.tsv'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
