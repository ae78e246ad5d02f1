"""Made video fakes: the warps, masks and clip writer on synthetic frames (no media needed)."""

from __future__ import annotations

import shutil
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import numpy.typing as npt
import pytest

from veracity.errors import ConfigError
from veracity.train import video_fakes as vf


def _face_points(cx: float, cy: float, r: float, n: int = 478, seed: int = 0) -> npt.NDArray[np.float64]:
    """478 points filling a disc (a stand-in for the mesh), landmark 1 at the centre."""
    rng = np.random.default_rng(seed)
    ang = rng.uniform(0, 2 * np.pi, n)
    rad = r * np.sqrt(rng.uniform(0, 1, n))
    pts = np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)], 1)
    pts[1] = (cx, cy)
    return np.asarray(pts, dtype=np.float64)


def _textured(h: int = 96, w: int = 128, seed: int = 1) -> npt.NDArray[np.uint8]:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 255, (h // 8, w // 8, 3), dtype=np.uint8)
    return np.asarray(np.kron(img, np.ones((8, 8, 1), dtype=np.uint8)), dtype=np.uint8)


def test_identity_warp_reproduces_the_image_inside_the_triangles() -> None:
    img = _textured()
    pts = _face_points(64, 48, 30)
    tris = vf.triangles(pts)
    out, cover = vf.piecewise_warp(img, pts, pts, tris, (128, 96))
    inside = cover > 0
    assert inside.sum() > 0.5 * np.pi * 30 * 30
    diff = np.abs(out.astype(int) - img.astype(int))[inside]
    assert np.median(diff) == 0


def test_shifted_points_move_the_texture() -> None:
    img = _textured()
    pts = _face_points(60, 48, 25)
    out, cover = vf.piecewise_warp(img, pts, pts + np.array([6.0, 0.0]), vf.triangles(pts), (128, 96))
    # a pixel inside the moved face shows what was 6 px to its left
    assert cover[48, 70] == 1
    assert np.array_equal(out[48, 70], img[48, 64])


def test_render_at_blurs_only_a_larger_region() -> None:
    img = _textured(64, 64)
    assert np.array_equal(vf.render_at(img, (0, 0, 64, 64), 80), img)
    low = vf.render_at(img, (0, 0, 64, 64), 16)
    assert low.shape == img.shape and not np.array_equal(low, img)
    assert np.abs(np.diff(low.astype(float), axis=1)).mean() < np.abs(np.diff(img.astype(float), axis=1)).mean()


def test_colour_match_moves_the_masked_mean() -> None:
    src = np.full((32, 32, 3), 60, np.uint8)
    src[::2] = 80
    ref = np.full((32, 32, 3), (200, 120, 90), np.uint8)
    mask = np.ones((32, 32), np.float32)
    out = vf.colour_match(src, ref, mask)
    assert np.abs(out.reshape(-1, 3).mean(0) - ref.reshape(-1, 3).mean(0)).max() < 6


def test_most_frontal_picks_the_centred_nose() -> None:
    side = _face_points(50, 50, 20)
    side[[33, 263]] = [[40, 45], [60, 45]]
    side[1] = [58, 50]
    front = side.copy()
    front[1] = [50, 50]
    assert vf.most_frontal([None, side, front]) == 2


def _clip(n: int = 12) -> vf.Clip:
    frames = [_textured(seed=i % 3) for i in range(n)]
    pts: list[npt.NDArray[np.float64] | None] = [_face_points(60 + (i % 4), 48, 25) for i in range(n)]
    pts[3] = None
    return vf.Clip(frames, [i / 25 for i in range(n)], Fraction(25), pts)


@pytest.mark.parametrize("method", ["faceswap", "lipsync", "still"])
def test_each_method_keeps_length_and_size_and_changes_the_face(method: str) -> None:
    clip, rng = _clip(), np.random.default_rng(0)
    if method == "faceswap":
        made = vf.make_faceswap(clip, _clip(), rng)
    elif method == "lipsync":
        made = vf.make_lipsync(clip, rng)
    else:
        made = vf.make_still(clip, rng)
    assert made is not None and len(made) == len(clip.frames)
    assert all(m.shape == f.shape and m.dtype == np.uint8 for m, f in zip(made, clip.frames, strict=True))
    changed = [not np.array_equal(m, f) for m, f in zip(made, clip.frames, strict=True)]
    assert sum(changed) >= len(made) // 2
    if method != "still":  # the frame without a face passes through unchanged
        assert np.array_equal(made[3], clip.frames[3])


def test_too_short_or_faceless_clips_are_skipped() -> None:
    rng = np.random.default_rng(0)
    short = vf.Clip([_textured()] * 4, [0, 0.04, 0.08, 0.12], Fraction(25), [None] * 4)
    assert vf.make_lipsync(short, rng) is None
    assert vf.make_still(short, rng) is None
    assert vf.make_faceswap(_clip(), short, rng) is None


def _sound(tmp_path: Path) -> Path:
    """A 2 s AAC file to take sound from."""
    src = tmp_path / "src.mp4"
    with av.open(str(src), "w") as out:
        a = out.add_stream("aac", rate=16000)
        t = np.arange(16000 * 2) / 16000
        frame = av.AudioFrame.from_ndarray((0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None],
                                           format="fltp", layout="mono")
        frame.sample_rate = 16000
        for p in a.encode(frame):
            out.mux(p)
        for p in a.encode(None):
            out.mux(p)
    return src


def test_write_clip_writes_h264_with_the_source_sound(tmp_path: Path) -> None:
    src = _sound(tmp_path)
    frames = [_textured(seed=i % 3) for i in range(10)]
    target = tmp_path / "out" / "made.mp4"
    vf.write_clip(target, frames, Fraction(25), src, 1.0, 23)
    with av.open(str(target)) as c:
        assert c.streams.video[0].codec_context.name == "h264"
        assert len(c.streams.audio) == 1
        assert sum(1 for _ in c.decode(video=0)) == 10
    assert not list(target.parent.glob("*.tmp.mp4"))


def test_identity_and_unknown_method() -> None:
    assert vf.identity("train/video_real/mead_W009_front_sad_level3_001.mp4") == "mead_W009"
    assert vf.identity("train/video_real/grid_bbaf2n.mpg") == "grid"
    with pytest.raises(ConfigError):
        vf.generate(Path("/nonexistent"), [], methods=["morph"])


def test_x264_crf_is_read_back_from_the_stream(tmp_path: Path) -> None:
    src = _sound(tmp_path)
    target = tmp_path / "v.mp4"
    vf.write_clip(target, [_textured(seed=i) for i in range(4)], Fraction(25), src, 1.0, 27)
    assert vf.x264_crf(target) == 27
    plain = tmp_path / "plain.bin"
    plain.write_bytes(b"no settings here")
    assert vf.x264_crf(plain) is None


def test_made_videos_pair_each_fake_with_its_reencoded_twin(tmp_path: Path) -> None:
    from veracity.train.face_prep import made_videos
    from veracity.train.speech_fakes import write_manifest

    shared, made = tmp_path / "shared", tmp_path / "made"
    (shared / "train/video_real").mkdir(parents=True)
    (shared / "train/video_real/a.mp4").write_bytes(b"x")
    (shared / "train/video_real/b.mp4").write_bytes(b"x")
    common = {"split": "train", "kind": "video", "source_repo": "local/made-lipsync", "commit": "", "license": ""}
    rows = []
    for stem in ("a", "b"):
        fake = f"train/video_fake/made_lipsync/{stem}.mp4"
        twin = vf.twin_path(made, "lipsync", f"train/video_real/{stem}.mp4")
        (made / fake).parent.mkdir(parents=True, exist_ok=True)
        (made / fake).write_bytes(b"x")
        if stem == "a":  # b's twin was never written: the original clip stands in
            twin.parent.mkdir(parents=True, exist_ok=True)
            twin.write_bytes(b"x")
        rows.append({**common, "path": fake, "label": "fake", "detail": "",
                     "source_path": f"train/video_real/{stem}.mp4",
                     "notes": f"real twin: train/video_real/{stem}.mp4; re-encoded twin: {twin.relative_to(made)}"})
    write_manifest(made, rows)
    got = made_videos(made, [shared, made])
    assert got == [
        ("train/video_fake/made_lipsync/a.mp4", made, "train/video_twin/made_lipsync/a.mp4", "train/video_real/a.mp4"),
        ("train/video_fake/made_lipsync/b.mp4", shared, "train/video_real/b.mp4", "train/video_real/b.mp4"),
    ]


def test_tts_engine_is_seeded_and_one_of_the_engines() -> None:
    rels = [f"train/video_real/clip_{i}.mp4" for i in range(40)]
    engines = [vf.variant("tts", r, 0) for r in rels]
    assert engines == [vf.variant("tts", r, 0) for r in rels]
    assert set(engines) == set(vf.TTS_ENGINES)
    assert {vf.variant("voice", r, 0) for r in rels} == set(vf.VOICE_VOCODERS)
    assert vf.variant("faceswap", rels[0], 0) is None


@pytest.mark.skipif(shutil.which("flite") is None, reason="Debian flite not installed")
def test_make_tts_speaks_within_the_clip_length() -> None:
    x, rate = vf.make_tts("The licence grants permission to copy and to change the work.", "flite", "slt", 2.0)
    assert rate == 16000 and 0.5 * rate < x.size <= 2 * rate
    assert 0.6 < float(np.abs(x).max()) <= 0.7001


def _tone(seconds: float) -> tuple[npt.NDArray[np.float32], int]:
    t = np.arange(int(16000 * seconds)) / 16000
    return (0.2 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), 16000


def test_foreign_voice_is_someone_else_with_sound(tmp_path: Path) -> None:
    frames = [_textured(seed=i % 3) for i in range(75)]
    short, voiced, mute = tmp_path / "short.mp4", tmp_path / "voiced.mp4", tmp_path / "mute.mp4"
    vf.write_clip(short, frames[:25], Fraction(25), _tone(1.0), 1.0, 23)  # too short to lend its voice
    vf.write_clip(voiced, frames, Fraction(25), _tone(3.0), 3.0, 23)
    still = tmp_path / "still.png"
    cv2.imwrite(str(still), frames[0])
    vf.write_clip(mute, frames, Fraction(25), still, 3.0, 23)  # an image has no sound to copy
    videos = [(short, "train/video_real/mead_W001_a.mp4", ""), (voiced, "train/video_real/mead_W002_a.mp4", ""),
              (mute, "train/video_real/mead_W003_a.mp4", "")]
    assert vf.foreign_voice(videos, "train/video_real/mead_W001_b.mp4", 0) == voiced
    assert vf.foreign_voice(videos, "train/video_real/mead_W002_b.mp4", 0) is None
