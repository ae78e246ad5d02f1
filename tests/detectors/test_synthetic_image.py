"""synthetic_image v2 on synthetic arrays: native crops, calibration, the heatmap, the detector
contract with stand-in encoder / CNN, card checks, and the unavailable-model path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from veracity.config import Options, Settings
from veracity.detectors import registry
from veracity.detectors.base import AnalysisContext, Detector, run_detector, sigmoid
from veracity.detectors.synthetic_image import (
    CARD_NAME,
    CLIP_CROP,
    CNN_CROP,
    CNN_GRID,
    GRID,
    SPECTRUM_CROP,
    SPECTRUM_GRID,
    SPECTRUM_KEY,
    UNAVAILABLE,
    Calibration,
    CnnHead,
    ImageModel,
    LinearHead,
    SpectrumHead,
    SyntheticImageDetector,
    crop_boxes,
    native_crops,
    preprocessing_config,
    score_map,
)
from veracity.errors import ModelUnavailable
from veracity.faces.types import FaceResult
from veracity.media.types import Audio, DecodedMedia, Frame, MediaInfo, MediaKind
from veracity.models.cards import load_card, params_sha256
from veracity.models.clip import EMBED_DIM
from veracity.models.patch_cnn import FEATURE_DIM
from veracity.models.residual_spectrum import N_BINS, N_FEATURES, batch_features

U8 = npt.NDArray[np.uint8]


def noise(h: int, w: int, seed: int = 0) -> U8:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def context(kind: MediaKind = "image", frames: list[Frame] | None = None, settings: Settings | None = None,
            audio: Audio | None = None) -> AnalysisContext:
    frames = [Frame(t=0.0, rgb=noise(240, 320), role="still")] if frames is None else frames
    w, h = (frames[0].width, frames[0].height) if frames else (None, None)
    info = MediaInfo(path=Path("x"), kind=kind, container="png", size_bytes=1, sha256="",
                     width=None if kind == "audio" else w, height=None if kind == "audio" else h)
    return AnalysisContext(media=DecodedMedia(info=info, frames=frames, audio=audio),
                           faces=FaceResult(tracks=[], frames_seen=len(frames), frames_with_faces=0),
                           options=Options(), settings=settings or Settings())


class StubEncoder:
    """Embeddings from the crop's mean brightness (stands in for CLIP), recording crop shapes."""

    def __init__(self) -> None:
        self.shapes: list[tuple[int, ...]] = []

    def embed(self, images: list[U8]) -> npt.NDArray[np.float32]:
        out = np.zeros((len(images), EMBED_DIM), dtype=np.float32)
        for i, im in enumerate(images):
            self.shapes.append(im.shape)
            out[i, 0] = float(im.mean()) / 255.0
            out[i, 1] = 1.0
        return out


class StubCnn:
    """Feature 0 = mean brightness of the crop - 0.5 (stands in for the patch CNN extractor)."""

    def __init__(self) -> None:
        self.shapes: list[tuple[int, ...]] = []

    def features(self, crops: list[U8]) -> npt.NDArray[np.float64]:
        self.shapes.extend(c.shape for c in crops)
        out = np.zeros((len(crops), FEATURE_DIM))
        out[:, 0] = [float(c.mean()) / 255.0 - 0.5 for c in crops]
        return out


def simple_head(w0: float = 4.0, b: float = -2.0) -> LinearHead:
    coef = np.zeros(EMBED_DIM)
    coef[0] = w0
    return LinearHead(version="2.0.0", mean=np.zeros(EMBED_DIM), std=np.ones(EMBED_DIM), coef=coef, intercept=b)


def model(views: tuple[str, ...] = ("clip",), coef: tuple[float, ...] = (1.0,), threshold: float = 0.5,
          intercept: float = 0.0) -> ImageModel:
    cnn_coef = np.zeros(FEATURE_DIM)
    cnn_coef[0] = 1.0
    cnn_head = CnnHead(version="2.0.0", mean=np.zeros(FEATURE_DIM), std=np.ones(FEATURE_DIM), coef=cnn_coef,
                       intercept=0.0)
    return ImageModel(version="2.0.0", calibration=Calibration(views, coef, intercept, threshold),
                      head=simple_head() if "clip" in views else None,
                      cnn_head=cnn_head if "cnn" in views else None,
                      cnn_path=Path("unused.onnx") if "cnn" in views else None,
                      spectrum_head=spectrum_head() if "spectrum" in views else None)


def spectrum_head(w: float = 1.0) -> SpectrumHead:
    """Logit = w x the N/2 on-axis peak feature (the first after the radial profile)."""
    coef = np.zeros(N_FEATURES)
    coef[N_BINS] = w
    return SpectrumHead(version="2.0.0", mean=np.zeros(N_FEATURES), std=np.ones(N_FEATURES), coef=coef,
                        intercept=0.0)


# -- crops -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("h", "w"), [(1024, 1024), (300, 1200), (500, 224), (128, 128), (100, 90)])
def test_crop_boxes_stay_inside_and_touch_the_edges(h: int, w: int) -> None:
    boxes = crop_boxes(h, w, CLIP_CROP, GRID)
    s = min(CLIP_CROP, h, w)
    assert boxes and all(b[2] == s for b in boxes)
    assert all(y >= 0 and y + s <= h and x >= 0 and x + s <= w for y, x, _ in boxes)
    assert min(y for y, _, _ in boxes) == 0 and max(y for y, _, _ in boxes) == h - s
    assert min(x for _, x, _ in boxes) == 0 and max(x for _, x, _ in boxes) == w - s
    assert len(boxes) == len(set(boxes)) <= GRID * GRID


def test_small_axis_gives_one_row_and_centre_for_grid_one() -> None:
    assert crop_boxes(224, 1000, 224, 2) == [(0, 0, 224), (0, 776, 224)]
    assert crop_boxes(300, 400, 128, 1) == [(86, 136, 128)]
    assert len(crop_boxes(1000, 1000, CNN_CROP, CNN_GRID)) == CNN_GRID * CNN_GRID


def test_native_crops_are_the_image_pixels_unresized() -> None:
    rgb = noise(400, 600)
    crops, boxes = native_crops(rgb, CLIP_CROP, GRID)
    for c, (y, x, s) in zip(crops, boxes, strict=True):
        assert c.shape == (CLIP_CROP, CLIP_CROP, 3)
        np.testing.assert_array_equal(c, rgb[y:y + s, x:x + s])
    grey, _ = native_crops(noise(300, 300)[:, :, 0], CLIP_CROP, GRID)
    assert grey[0].shape == (CLIP_CROP, CLIP_CROP, 3)


# -- calibration and heatmap ------------------------------------------------------------------------

def test_calibration_is_logistic_on_view_logits_and_validates() -> None:
    cal = Calibration(("clip", "cnn"), (0.5, 2.0), -0.25, 0.6)
    assert cal.logit({"clip": 1.0, "cnn": -1.0}) == pytest.approx(0.5 - 2.0 - 0.25)
    assert cal.prob({"clip": 1.0, "cnn": -1.0}) == pytest.approx(sigmoid(-1.75))
    assert Calibration.from_params(cal.params()) == cal
    with pytest.raises(ValueError, match="one coefficient"):
        Calibration(("clip",), (1.0, 2.0), 0.0, 0.5)
    with pytest.raises(ValueError, match="threshold"):
        Calibration(("clip",), (1.0,), 0.0, 1.5)
    with pytest.raises(ModelUnavailable, match="malformed"):
        Calibration.from_params({"views": ["clip"]})
    with pytest.raises(ModelUnavailable, match="no calibration"):
        Calibration.from_params(None)


def test_score_map_averages_overlaps_and_leaves_unseen_blank() -> None:
    boxes = [(0, 0, 100), (0, 50, 100)]
    m = score_map((100, 300), boxes, [0.2, 0.8], side=300)
    assert m.shape == (100, 300)
    assert m[50, 10] == pytest.approx(0.2) and m[50, 120] == pytest.approx(0.8)
    assert m[50, 75] == pytest.approx(0.5)  # both crops cover it
    assert np.isnan(m[50, 200])  # no crop looked there


def test_head_logits_and_shape_check() -> None:
    rng = np.random.default_rng(0)
    mean, std, coef = rng.normal(size=EMBED_DIM), rng.uniform(0.5, 2, EMBED_DIM), rng.normal(size=EMBED_DIM)
    head = LinearHead(version="2", mean=mean, std=std, coef=coef, intercept=0.3)
    emb = rng.normal(size=(3, EMBED_DIM))
    np.testing.assert_allclose(head.logits(emb), ((emb - mean) / std) @ coef + 0.3)
    with pytest.raises(ValueError, match="512"):
        head.logits(np.zeros((1, 10)))


# -- the detector -----------------------------------------------------------------------------------

def test_registered_lazily_and_honours_protocol() -> None:
    det = registry.create("synthetic_image")
    assert isinstance(det, Detector)
    assert det._encoder is None and det._model is None  # type: ignore[attr-defined]


def test_applies_to_still_images_only() -> None:
    det = SyntheticImageDetector(model=model(), encoder=StubEncoder())  # type: ignore[arg-type]
    assert det.applies(context("image"))
    video = run_detector(det, context("video", [Frame(t=0.5, rgb=noise(240, 320), role="sparse")]))
    assert not video.applied and video.not_applicable == "not_image"
    verdict = run_detector(det, context("audio", [], audio=Audio(samples=np.zeros(16000, dtype=np.float32))))
    assert not verdict.applied and verdict.not_applicable == "not_image"


def test_clip_view_scores_native_crops_and_calibrates_the_mean_logit() -> None:
    enc = StubEncoder()
    rgb = np.zeros((600, 800, 3), dtype=np.uint8)
    rgb[:, 400:] = 255  # right half bright: its crops score high
    det = SyntheticImageDetector(model=model(coef=(1.0,), intercept=0.1), encoder=enc)  # type: ignore[arg-type]
    res = det.run(context("image", [Frame(t=0.0, rgb=rgb, role="still")]))
    assert enc.shapes == [(CLIP_CROP, CLIP_CROP, 3)] * (GRID * GRID)  # native crops, no resize
    crops, _ = native_crops(rgb, CLIP_CROP, GRID)
    z = simple_head().logits(enc.embed(crops))
    assert res.score == pytest.approx(sigmoid(float(np.mean(z)) + 0.1))
    assert res.evidence["n_crops"] == GRID * GRID
    scores = res.evidence["crop_scores"]
    assert isinstance(scores, list) and scores[1] > scores[0]  # top-right brighter than top-left
    assert res.evidence["crop_boxes"] == [v for b in crop_boxes(600, 800, CLIP_CROP, GRID) for v in b]


def test_two_views_fuse_and_the_heatmap_comes_with_the_reason() -> None:
    cnn = StubCnn()
    det = SyntheticImageDetector(model=model(("clip", "cnn"), (1.0, 3.0), threshold=0.5),  # type: ignore[arg-type]
                                 encoder=StubEncoder(), cnn=cnn)  # type: ignore[arg-type]
    bright = Frame(t=0.0, rgb=np.full((500, 500, 3), 240, dtype=np.uint8), role="still")
    res = det.run(context("image", [bright]))
    assert len(cnn.shapes) == CNN_GRID * CNN_GRID and cnn.shapes[0] == (CNN_CROP, CNN_CROP, 3)
    z_clip = 4.0 * (240 / 255) - 2.0
    z_cnn = 240 / 255 - 0.5
    assert res.score == pytest.approx(sigmoid(z_clip + 3.0 * z_cnn), rel=1e-5)
    assert res.reasons == ("ai_generated_image",)
    (heat,) = res.heatmaps
    assert max(heat.image.shape[:2]) == 160 and heat.score == pytest.approx(res.score) and heat.track_id is None
    dark = Frame(t=0.0, rgb=np.full((500, 500, 3), 10, dtype=np.uint8), role="still")
    low = det.run(context("image", [dark]))
    assert low.reasons == () and low.heatmaps == ()


def test_a_view_without_its_model_is_unavailable_not_a_crash() -> None:
    broken = ImageModel(version="2.0.0", calibration=Calibration(("cnn",), (1.0,), 0.0, 0.5), head=None)
    res = run_detector(SyntheticImageDetector(model=broken, encoder=StubEncoder()), context())  # type: ignore[arg-type]
    assert res.score is None and res.not_applicable == UNAVAILABLE


def test_tiny_images_are_not_scored() -> None:
    det = SyntheticImageDetector(model=model(), encoder=StubEncoder())  # type: ignore[arg-type]
    res = det.run(context("image", [Frame(t=0.0, rgb=noise(32, 40), role="still")]))
    assert res.score is None and res.not_applicable == "image_too_small"


def test_missing_encoder_is_reported_not_guessed(tmp_path: Path) -> None:
    res = run_detector(SyntheticImageDetector(), context("image", settings=Settings(cache_dir=tmp_path)))
    assert res.score is None
    assert res.not_applicable == UNAVAILABLE
    assert "veracity models fetch" in str(res.evidence["error"])


# -- the packaged card ------------------------------------------------------------------------------

def test_packaged_card_matches_detector_and_preprocessing() -> None:
    card = load_card(CARD_NAME)
    assert card.version == SyntheticImageDetector.version
    assert card.params is not None and card.params["preprocessing"] == preprocessing_config()
    assert {"train_leave_one_generator_out", "train_holdout", "eval_image"} <= set(card.metrics)
    assert "resave_stability" in card.metrics["eval_image"]
    m = ImageModel.from_card(card)
    assert 0 < m.calibration.threshold < 1
    assert ("clip" in m.calibration.views) == (m.head is not None)
    assert ("cnn" in m.calibration.views) == (m.cnn_path is not None and m.cnn_path.is_file())


def test_card_for_other_preprocessing_is_refused() -> None:
    card = load_card(CARD_NAME)
    assert card.params is not None
    params = {**card.params, "preprocessing": {**card.params["preprocessing"], "crop": 176}}
    other = card.model_copy(update={"params": params, "sha256": params_sha256(params)})
    if "clip" in ImageModel.from_card(card).calibration.views:
        with pytest.raises(ModelUnavailable, match="other preprocessing"):
            ImageModel.from_card(other)


# -- the spectrum view ------------------------------------------------------------------------------

def test_spectrum_view_alone_needs_no_encoder_and_scores_native_crops() -> None:
    det = SyntheticImageDetector(model=model(("spectrum",), (1.0,), threshold=0.5))
    rgb = noise(500, 700)
    res = det.run(context("image", [Frame(t=0.0, rgb=rgb, role="still")]))
    crops, boxes = native_crops(rgb, SPECTRUM_CROP, SPECTRUM_GRID)
    expected = float(np.mean(spectrum_head().logits(batch_features(crops))))
    assert res.score == pytest.approx(sigmoid(expected))
    assert res.evidence["views"] == ["spectrum"] and res.evidence["n_crops"] == SPECTRUM_GRID ** 2
    assert res.evidence["crop_boxes"] == [v for b in boxes for v in b]
    assert det._encoder is None  # the CLIP encoder was never asked for


def test_three_views_fuse_with_one_coefficient_each() -> None:
    det = SyntheticImageDetector(model=model(("clip", "cnn", "spectrum"), (1.0, 0.5, 2.0)),
                                 encoder=StubEncoder(), cnn=StubCnn())  # type: ignore[arg-type]
    rgb = noise(400, 400, seed=3)
    logits, boxes, per_crop = det.view_logits(rgb, Settings(), det.get_model())
    assert set(logits) == {"clip", "cnn", "spectrum"}
    assert len(boxes) == len(per_crop) == CNN_GRID ** 2  # the heatmap shows the CNN's crops
    res = det.run(context("image", [Frame(t=0.0, rgb=rgb, role="still")]))
    assert res.score == pytest.approx(sigmoid(logits["clip"] + 0.5 * logits["cnn"] + 2.0 * logits["spectrum"]))


def test_spectrum_probe_round_trips_inline_and_other_features_are_refused() -> None:
    head = spectrum_head(2.0)
    again = SpectrumHead.from_params(head.params(), version="2.0.0", name="x")
    np.testing.assert_array_equal(again.coef, head.coef)
    other = {**head.params(), "features": {"id": "other"}}
    with pytest.raises(ModelUnavailable, match="other features"):
        SpectrumHead.from_params(other, version="2.0.0", name="x")
    with pytest.raises(ModelUnavailable, match="no head"):
        SpectrumHead.from_params(None, version="2.0.0", name="x")


def test_card_listing_spectrum_loads_its_inline_probe() -> None:
    card = load_card(CARD_NAME)
    assert card.params is not None
    cal = {"views": ["spectrum"], "coef": [1.0], "intercept": 0.0, "threshold": 0.5}
    params = {**card.params, "calibration": cal, SPECTRUM_KEY: spectrum_head().params()}
    listed = card.model_copy(update={"params": params, "sha256": params_sha256(params)})
    m = ImageModel.from_card(listed)
    assert m.spectrum_head is not None and m.head is None and m.calibration.views == ("spectrum",)
    bare = {**params}
    del bare[SPECTRUM_KEY]
    with pytest.raises(ModelUnavailable, match="no head"):
        ImageModel.from_card(card.model_copy(update={"params": bare, "sha256": params_sha256(bare)}))
