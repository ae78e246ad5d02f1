"""Spectral detector: feature function, packaged card, regions, and the detector contract."""

from __future__ import annotations

import io
import json
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

from veracity.config import Options, Settings
from veracity.detectors import registry
from veracity.detectors.base import AnalysisContext, Detector
from veracity.detectors.spectral import (
    CARD_NAME,
    N_FEATURES,
    SIZE,
    SpectralDetector,
    SpectralModel,
    face_square,
    feature_config,
    regions,
    spectrum_features,
)
from veracity.errors import ModelUnavailable
from veracity.faces.types import FaceObservation, FaceResult, FaceTrack
from veracity.media.types import DecodedMedia, Frame, MediaInfo, MediaKind
from veracity.models.cards import load_card, params_sha256, read_card

U8 = npt.NDArray[np.uint8]


def pink_noise(seed: int, n: int = 512) -> U8:
    """A colour image with a natural 1/f spectrum."""
    rng = np.random.default_rng(seed)
    f = np.fft.fftfreq(n)
    r = np.hypot(*np.meshgrid(f, f))
    r[0, 0] = 1.0
    chans = []
    for _ in range(3):
        x = np.real(np.fft.ifft2(np.fft.fft2(rng.normal(size=(n, n))) / r))
        chans.append((x - x.mean()) / x.std())
    return np.clip(np.stack(chans, -1) * 40 + 128, 0, 255).astype(np.uint8)


def round_trip(rgb: U8, fmt: str, **kw: object) -> U8:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format=fmt, **kw)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"), dtype=np.uint8)


def context(kind: MediaKind = "image", frames: list[Frame] | None = None,
            faces: FaceResult | None = None) -> AnalysisContext:
    frames = [Frame(t=0.0, rgb=pink_noise(0, 320), role="still")] if frames is None else frames
    w, h = (640, 480) if not frames else (frames[0].width, frames[0].height)
    info = MediaInfo(path=Path("x"), kind=kind, container="png", size_bytes=1, sha256="",
                     width=None if kind == "audio" else w, height=None if kind == "audio" else h)
    return AnalysisContext(
        media=DecodedMedia(info=info, frames=frames),
        faces=faces or FaceResult(tracks=[], frames_seen=len(frames), frames_with_faces=0),
        options=Options(), settings=Settings(),
    )


# -- features -------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(300, 400, 3), (64, 64, 3), (1000, 700, 3), (120, 90)])
def test_features_have_fixed_length_and_are_finite(shape: tuple[int, ...]) -> None:
    rgb = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    f = spectrum_features(rgb)
    assert f.shape == (N_FEATURES,)
    assert np.all(np.isfinite(f))


@pytest.mark.parametrize("value", [0, 128, 255])
def test_constant_image_gives_zero_features(value: int) -> None:
    f = spectrum_features(np.full((300, 300, 3), value, dtype=np.uint8))
    assert f.shape == (N_FEATURES,)
    np.testing.assert_array_equal(f, 0.0)


def test_bad_shape_is_refused() -> None:
    with pytest.raises(ValueError, match="HxWx3"):
        spectrum_features(np.zeros((10, 10, 5), dtype=np.uint8))


def test_resaving_as_jpeg_barely_moves_features() -> None:
    """The normalisation (fixed size, one JPEG round trip) absorbs a PNG -> JPEG q95 re-save;
    a real spectral change (2x nearest-neighbour up-sampling) moves features far more."""
    model = SpectralModel.from_card(load_card(CARD_NAME))
    for seed in range(3):
        png = round_trip(pink_noise(seed), "PNG")
        jpg = round_trip(png, "JPEG", quality=95)
        upsampled = cv2.resize(png[::2, ::2], (512, 512), interpolation=cv2.INTER_NEAREST)
        f_png, f_jpg, f_up = (spectrum_features(x) for x in (png, jpg, upsampled))
        resave = float(np.max(np.abs(f_png - f_jpg) / model.std))
        change = float(np.max(np.abs(f_png - f_up) / model.std))
        assert resave < 0.2
        assert resave < change / 3
        assert abs(model.predict(f_png) - model.predict(f_jpg)) < 0.05


# -- card -----------------------------------------------------------------------------------------

def test_packaged_card_loads_and_matches_the_detector() -> None:
    card = load_card(CARD_NAME)
    assert card.version == SpectralDetector.version
    assert card.params is not None
    assert card.params["features"] == feature_config()
    assert {"validation", "eval_image"} <= set(card.metrics)
    model = SpectralModel.from_card(card)
    assert model.coef.shape == (N_FEATURES,)


def test_tampered_payload_is_rejected(tmp_path: Path) -> None:
    text = load_card(CARD_NAME).model_dump_json()
    good = tmp_path / "good.json"
    good.write_text(text)
    assert read_card(good).sha256 == params_sha256(json.loads(text)["params"])
    data = json.loads(text)
    data["params"]["coef"][0] += 0.5
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(ModelUnavailable, match="sha256"):
        read_card(bad)


def test_card_for_other_features_is_refused() -> None:
    card = load_card(CARD_NAME)
    assert card.params is not None
    params = {**card.params, "features": {**card.params["features"], "size": SIZE * 2}}
    other = card.model_copy(update={"params": params, "sha256": params_sha256(params)})
    with pytest.raises(ModelUnavailable, match="other spectral features"):
        SpectralModel.from_card(other)


# -- detector -------------------------------------------------------------------------------------

def test_registry_builds_it_without_loading_the_model() -> None:
    det = registry.create("spectral")
    assert isinstance(det, Detector)
    assert isinstance(det, SpectralDetector)
    assert det._model is None


def test_image_without_faces_is_scored_on_the_centre_square() -> None:
    ctx = context()
    det = SpectralDetector()
    assert det.applies(ctx)
    result = det.run(ctx)
    assert result.score is not None
    assert 0.0 <= result.score <= 1.0
    assert 0.0 < result.confidence <= 0.5
    assert result.confidence == pytest.approx(0.25)  # one region: half the base
    assert set(result.frame_scores) == {0.0}
    assert result.evidence["n_regions"] == 1
    assert result.evidence["region_source"] == "frame"
    assert result.version == load_card(CARD_NAME).version
    assert (result.score >= 0.6) == ("spectral_artifacts" in result.reasons)


def test_faces_are_cut_at_native_resolution() -> None:
    frame = Frame(t=0.0, rgb=pink_noise(2, 800), role="still")
    obs = FaceObservation(t=0.0, role="still", window=None, box=(0.3, 0.3, 0.6, 0.6),
                          landmarks=None, frame_size=(800, 800), track_id=0)
    faces = FaceResult(tracks=[FaceTrack(track_id=0, observations=[obs])], frames_seen=1,
                       frames_with_faces=1)
    ctx = context(frames=[frame], faces=faces)
    regs = regions(ctx.media, ctx.faces)
    assert [r.source for r in regs] == ["face"]
    assert abs(regs[0].side - 0.3 * 800 * 1.3) <= 2  # 1.3x the box, no resampling
    result = SpectralDetector().run(ctx)
    assert result.evidence["region_source"] == "face"
    assert result.evidence["n_upsampled"] == 0


@pytest.mark.parametrize(("box", "corner"), [((0.45, 0.45, 0.55, 0.55), (272, 172)),
                                             ((0.0, 0.0, 0.1, 0.1), (0, 0)),
                                             ((0.9, 0.85, 1.0, 0.95), (800 - SIZE, 600 - SIZE))])
def test_small_faces_get_context_instead_of_upsampling(
        box: tuple[float, float, float, float], corner: tuple[int, int]) -> None:
    rgb = np.zeros((600, 800, 3), dtype=np.uint8)
    rgb[:, :, 0] = np.arange(800)[None, :] % 256
    rgb[:, :, 1] = np.arange(600)[:, None] % 256
    sq = face_square(rgb, box)
    assert sq.shape == (SIZE, SIZE, 3)
    assert (int(sq[0, 0, 0]), int(sq[0, 0, 1])) == (corner[0] % 256, corner[1] % 256)


def test_image_smaller_than_the_feature_size_is_used_whole() -> None:
    rgb = np.zeros((100, 120, 3), dtype=np.uint8)
    assert face_square(rgb, (0.2, 0.2, 0.5, 0.5)).shape == (100, 100, 3)


def test_video_frames_give_frame_scores() -> None:
    frames = [Frame(t=t, rgb=pink_noise(i, 300), role="sparse") for i, t in enumerate((0.0, 1.5, 3.0))]
    result = SpectralDetector().run(context(kind="video", frames=frames))
    assert sorted(result.frame_scores) == [0.0, 1.5, 3.0]
    assert result.evidence["n_regions"] == 3
    assert result.score == pytest.approx(np.mean(list(result.frame_scores.values())))


@pytest.mark.parametrize(("kind", "frames", "reason"), [("audio", [], "no_frames"),
                                                        ("video", [], "no_frames")])
def test_not_applicable_gives_none_with_reason(kind: MediaKind, frames: list[Frame],
                                               reason: str) -> None:
    from veracity.pipeline import run_detector

    result = run_detector(SpectralDetector(), context(kind=kind, frames=frames))
    assert result.score is None
    assert result.not_applicable == reason
