"""Hostile files at the media stage (issue 15): typed errors, bounded time, evidence recorded."""

from __future__ import annotations

import resource
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests.synth import (
    SVG,
    make_truncated_mkv,
    make_unknown_audio_codec_mkv,
    make_unknown_codec_mkv,
    make_video,
    make_zero_frame_avi,
)

from veracity.config import Limits, Options
from veracity.errors import AnalysisTimeout, CorruptMedia, UnsupportedMedia
from veracity.media import decode, plan_sampling, probe
from veracity.media.image import STILL_MAX_SIDE
from veracity.media.types import AUDIO_UNDECODABLE, MEDIA_TRUNCATED, warning_code


def _decode(path: Path, limits: Limits | None = None) -> list[str]:
    limits = limits or Limits()
    info = probe(path, limits)
    return decode(info, plan_sampling(info, Options()), limits).warnings


def test_zero_frame_avi_fails_fast(tmp_path: Path) -> None:
    """Run in a daemon thread: before the fix this spun forever, and the test must fail, not hang."""
    path = make_zero_frame_avi(tmp_path / "zero.avi")
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            _decode(path)
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=10.0)
    assert outcome, "decoding a zero-frame AVI did not return within 10 s"
    assert isinstance(outcome[0], CorruptMedia) and "no frames" in outcome[0].message


@pytest.mark.parametrize("name", ["unknown.mkv", "unknown.mp4"])
def test_unknown_codec_is_unsupported_not_a_crash(tmp_path: Path, name: str) -> None:
    with pytest.raises(UnsupportedMedia, match="no decoder"):
        probe(make_unknown_codec_mkv(tmp_path / name), Limits())


@pytest.mark.parametrize("name", ["drawing.svg", "drawing.png", "drawing"])
def test_svg_is_unsupported_whatever_its_name(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(SVG)
    with pytest.raises(UnsupportedMedia):
        probe(tmp_path / name, Limits())


def test_undecodable_audio_is_recorded(tmp_path: Path) -> None:
    warnings = _decode(make_unknown_audio_codec_mkv(tmp_path / "mute.mkv"))
    assert AUDIO_UNDECODABLE in {warning_code(w) for w in warnings}


def test_truncated_clip_is_recorded(tmp_path: Path) -> None:
    warnings = _decode(make_truncated_mkv(tmp_path / "half.mkv"))
    assert MEDIA_TRUNCATED in {warning_code(w) for w in warnings}


def test_whole_clip_has_no_truncation_warning(tmp_path: Path) -> None:
    warnings = _decode(make_video(tmp_path / "whole.mkv", seconds=3.0, container="matroska"))
    assert MEDIA_TRUNCATED not in {warning_code(w) for w in warnings}


def test_decode_wall_clock_cap(tmp_path: Path) -> None:
    path = make_video(tmp_path / "clip.mp4", seconds=2.0)
    with pytest.raises(AnalysisTimeout):
        _decode(path, Limits(max_decode_s=1e-9))


def test_ffmpeg_errors_carry_no_path(tmp_path: Path) -> None:
    path = tmp_path / "secret-dir" / "cut.mp4"
    path.parent.mkdir()
    data = make_video(tmp_path / "full.mp4", seconds=1.0).read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(CorruptMedia) as info:
        probe(path, Limits())
    assert "secret-dir" not in info.value.message


def test_large_still_is_decoded_at_detector_size(tmp_path: Path) -> None:
    side = 8900
    rgb = np.zeros((side, side, 3), np.uint8)
    rgb[::50] = 255
    Image.fromarray(rgb).save(tmp_path / "big.png", optimize=True)
    del rgb
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    info = probe(tmp_path / "big.png", Limits())
    media = decode(info, plan_sampling(info, Options()), Limits())
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert (info.width, info.height) == (side, side)  # the report keeps the real size
    assert max(media.frames[0].rgb.shape[:2]) <= STILL_MAX_SIDE
    assert grown_mb < 600  # one decode (237 MB of RGB), not several full-size copies


def test_large_jpeg_uses_dct_scaling(tmp_path: Path) -> None:
    Image.fromarray(np.full((4000, 6000, 3), 90, np.uint8)).save(tmp_path / "big.jpg", quality=70)
    info = probe(tmp_path / "big.jpg", Limits())
    frame = decode(info, plan_sampling(info, Options()), Limits()).frames[0]
    assert max(frame.rgb.shape[:2]) <= STILL_MAX_SIDE
    assert frame.rgb.shape[1] > frame.rgb.shape[0]  # aspect kept
