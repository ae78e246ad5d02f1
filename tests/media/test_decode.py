"""Frame sampling, audio extraction and image orientation on synthetic media."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests.synth import make_video

from veracity.config import Limits, Options
from veracity.errors import CorruptMedia
from veracity.media import decode, load, plan_sampling, probe
from veracity.media.types import SamplePlan
from veracity.media.video import sample_video, scaled_size


def test_probe_video(sample_video: Path) -> None:
    info = probe(sample_video, Limits())
    assert info.kind == "video"
    assert (info.width, info.height) == (160, 120)
    assert info.has_audio
    assert info.duration_s == pytest.approx(2.0, abs=0.1)
    assert len(info.sha256) == 64


def test_plan_short_clip_is_one_window(sample_video: Path) -> None:
    info = probe(sample_video, Limits())
    plan = plan_sampling(info, Options(frames=8))
    assert len(plan.sparse) == 8
    assert plan.windows == ((0.0, pytest.approx(info.duration_s)),)


def test_plan_long_clip_spreads_windows(tmp_path: Path) -> None:
    path = make_video(tmp_path / "long.mp4", seconds=30.0, fps=10, size=(64, 48), audio=False)
    info = probe(path, Limits())
    plan = plan_sampling(info, Options(max_windows=3, window_s=4.0))
    assert len(plan.windows) == 3
    assert all(end - start == pytest.approx(4.0) for start, end in plan.windows)
    assert plan.windows[0][0] < 10 < plan.windows[1][0] < 20 < plan.windows[2][0]


def test_sampled_frames_match_requested_times(tmp_path: Path) -> None:
    # Frame i has blue channel (i*5) % 256, so the frame index is recoverable from the pixels.
    path = make_video(tmp_path / "indexed.mp4", seconds=4.0, fps=25, size=(64, 48), audio=False)
    info = probe(path, Limits())
    plan = SamplePlan(sparse=(0.0, 1.0, 2.52, 3.8), windows=((1.0, 1.4),), dense_fps=25.0)
    frames, warnings = sample_video(info, plan, Limits())
    assert not warnings
    sparse = [f for f in frames if f.role == "sparse"]
    assert [round(f.t, 2) for f in sparse] == [0.0, 1.0, 2.52, 3.8]
    for f in sparse:
        expected_index = round(f.t * 25)
        blue = int(np.median(f.rgb[..., 2]))
        assert abs(blue - (expected_index * 5) % 256) <= 6
    dense = [f for f in frames if f.role == "dense"]
    assert len(dense) == 10
    assert np.allclose(np.diff([f.t for f in dense]), 0.04, atol=1e-3)


def test_audio_is_16k_mono(sample_video: Path) -> None:
    info = probe(sample_video, Limits())
    media = decode(info, plan_sampling(info, Options(frames=2)), Limits())
    assert media.audio is not None
    assert media.audio.sample_rate == 16000
    assert media.audio.samples.dtype == np.float32
    assert media.audio.duration_s == pytest.approx(2.0, abs=0.15)
    # A 220 Hz tone: the spectrum peaks there.
    spec = np.abs(np.fft.rfft(media.audio.samples[4000:12000]))
    assert np.fft.rfftfreq(8000, 1 / 16000)[int(np.argmax(spec))] == pytest.approx(220, abs=4)


def test_video_without_audio_is_a_result(tmp_path: Path) -> None:
    path = make_video(tmp_path / "silent.mp4", audio=False)
    info = probe(path, Limits())
    media = decode(info, plan_sampling(info, Options(frames=2)), Limits())
    assert media.audio is None
    assert not media.warnings


def test_broken_audio_track_degrades_to_warning(sample_video: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_a: object, **_k: object) -> None:
        raise CorruptMedia("audio stream cannot be decoded: invalid data")

    monkeypatch.setattr(load, "load_audio", broken)
    info = probe(sample_video, Limits())
    media = decode(info, plan_sampling(info, Options(frames=2)), Limits())
    assert media.frames
    assert media.audio is None
    assert any(w.startswith("audio_undecodable") for w in media.warnings)


def test_exif_orientation_applied(tmp_path: Path) -> None:
    img = Image.fromarray(np.zeros((40, 100, 3), np.uint8))  # landscape pixels
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 CW to display
    img.save(tmp_path / "rotated.jpg", exif=exif.tobytes())
    info = probe(tmp_path / "rotated.jpg", Limits())
    media = decode(info, plan_sampling(info, Options()), Limits())
    assert media.frames[0].rgb.shape[:2] == (100, 40)


@pytest.mark.parametrize(
    ("size", "side", "expected"),
    [((1920, 1080), 640, (640, 360)), ((320, 240), 640, (320, 240)), ((1081, 1921), 1280, (720, 1280))],
)
def test_scaled_size(size: tuple[int, int], side: int, expected: tuple[int, int]) -> None:
    assert scaled_size(*size, side) == expected
