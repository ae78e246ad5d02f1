"""face_artifacts: the packaged ONNX model on synthetic crops, aggregation, CAM evidence."""

from __future__ import annotations

import numpy as np
import pytest

from veracity.config import Options, Settings
from veracity.detectors import registry
from veracity.detectors.base import AnalysisContext, Detector, run_detector
from veracity.detectors.face_artifacts import (
    CARD_NAME,
    INPUT,
    FaceArtifactsDetector,
    FaceModel,
    boundary_share,
    heatmap_overlay,
    media_score,
    preprocess,
    track_score,
)
from veracity.faces.align import template
from veracity.faces.types import FaceObservation, FaceResult, FaceTrack
from veracity.media.types import DecodedMedia, Frame, MediaInfo
from veracity.models.cards import load_card

CELLS = INPUT // 32


@pytest.fixture(scope="module")
def model() -> FaceModel:
    return FaceModel.from_card(load_card(CARD_NAME))


def _crops(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=(224, 224, 3), dtype=np.uint8) for _ in range(n)]


def test_card_matches_detector_and_registry() -> None:
    card = load_card(CARD_NAME)
    assert card.kind == "onnx" and card.file and card.file.endswith(".onnx")
    assert card.version == FaceArtifactsDetector.version
    assert registry.spec("face_artifacts").card == CARD_NAME
    det = registry.create("face_artifacts")
    assert isinstance(det, Detector)


def test_model_outputs_logits_a_consistent_cam_and_calibrated_probabilities(model: FaceModel) -> None:
    logits, cams = model.predict(_crops(3))
    cells = model.input_side() // 32
    assert logits.shape == (3,) and cams.shape == (3, cells, cells)
    # The CAM is the head applied per cell: its mean is the logit.
    assert np.allclose(cams.mean(axis=(1, 2)), logits, atol=1e-3)
    probs = model.probability(logits)
    assert np.all((probs >= 0) & (probs <= 1))
    a, b = model.calibration
    assert a > 0  # a higher logit is always more suspicious
    assert np.allclose(probs, 1 / (1 + np.exp(-(a * logits + b))))


def test_calibration_comes_from_the_card() -> None:
    card = load_card(CARD_NAME)
    cal = card.metrics["calibration"]
    m = FaceModel.from_card(card)
    assert m.calibration == (pytest.approx(cal["a"]), pytest.approx(cal["b"]))
    assert FaceModel(path=__import__("pathlib").Path("x"), version="0", calibration=(2.0, -1.0)).probability(0.5) \
        == pytest.approx(0.5)


def test_batching_does_not_change_scores(model: FaceModel) -> None:
    crops = _crops(5, seed=1)
    together, _ = model.predict(crops, batch=16)
    alone = np.concatenate([model.predict([c])[0] for c in crops])
    assert np.allclose(together, alone, atol=1e-5)


def test_preprocess_shape_and_norm() -> None:
    x = preprocess([np.full((224, 224, 3), 255, np.uint8), np.zeros((100, 100, 3), np.uint8)])
    assert x.shape == (2, 3, INPUT, INPUT) and x.dtype == np.float32
    assert x[0, 0].max() == pytest.approx((1 - 0.485) / 0.229, rel=1e-4)
    assert x[1, 2].min() == pytest.approx(-0.406 / 0.225, rel=1e-4)


def test_aggregation_rules() -> None:
    assert track_score([0.1, 0.9, 0.8, 0.2]) == pytest.approx(0.85)  # top third of four is two
    assert track_score([-1.0, 2.0, 0.0, 1.0, -2.0, 3.0]) == pytest.approx(2.5)
    assert track_score([0.3]) == pytest.approx(0.3)
    score, tid = media_score({1: [0.1, 0.2, 0.1], 2: [0.7, 0.9], 3: [0.99]})
    assert tid == 2 and score == pytest.approx(0.9)  # top half of two is one; the one-frame track is passed over
    assert media_score({3: [0.99]}) == (pytest.approx(0.99), 3)
    with pytest.raises(ValueError, match="at least one"):
        track_score([])


def _ring_points(cx: float = 112, cy: float = 120, r: float = 70) -> np.ndarray:
    ang = np.linspace(0, 2 * np.pi, 60, endpoint=False)
    return np.stack([cx + r * np.cos(ang), cy + r * np.sin(ang)], axis=1)


def test_boundary_share_tells_edge_from_interior() -> None:
    pts = _ring_points()
    yy, xx = np.mgrid[0:CELLS, 0:CELLS]
    centre = (CELLS - 1) / 2
    dist = np.hypot(yy - centre, xx - centre)
    inner = np.where(dist < 0.8, 3.0, -1.0).astype(np.float32)
    edge = np.where((dist > 1.2) & (dist < 2.2), 3.0, -1.0).astype(np.float32)
    s_inner = boundary_share(inner, pts)
    s_edge = boundary_share(edge, pts)
    assert s_inner is not None and s_edge is not None
    assert s_edge > 0.5 > s_inner
    assert boundary_share(inner, None) is None
    assert boundary_share(np.full((CELLS, CELLS), -2.0, np.float32), pts) is None


def test_heatmap_overlay_marks_the_hot_cell() -> None:
    crop = np.full((224, 224, 3), 128, np.uint8)
    cam = np.zeros((CELLS, CELLS), np.float32)
    cam[0, 0] = 5.0
    over = heatmap_overlay(crop, cam, side=112)
    assert over.shape == (112, 112, 3)
    hot = np.abs(over[:15, :15].astype(int) - 128).mean()
    cold = np.abs(over[-15:, -15:].astype(int) - 128).mean()
    assert hot > 20 and cold < 2


def _observation(t: float) -> FaceObservation:
    """A face whose five mesh points sit exactly on the alignment template."""
    lm = np.zeros((478, 3), np.float32)
    tpl = template(224) / 224.0
    rng = np.random.default_rng(0)
    lm[:, :2] = 0.5 + rng.normal(0, 0.12, size=(478, 2))
    for idx, p in zip(((33, 133), (362, 263), (1,), (61,), (291,)), tpl, strict=True):
        for i in idx:
            lm[i, :2] = p
    return FaceObservation(t=t, role="sparse", window=None, box=(0.2, 0.2, 0.8, 0.8), landmarks=lm,
                           frame_size=(224, 224), score=0.9, track_id=0)


def _ctx(kind: str = "video", n: int = 3, keep_crops: bool = True) -> AnalysisContext:
    rng = np.random.default_rng(2)
    frames = [Frame(t=float(i), rgb=rng.integers(0, 256, (224, 224, 3), dtype=np.uint8), role="sparse")
              for i in range(n)]
    obs = [_observation(f.t) for f in frames]
    track = FaceTrack(track_id=0, observations=obs)
    if keep_crops:
        track.crops = {f.t: f.rgb for f in frames}
    info = MediaInfo(path=__import__("pathlib").Path("x.mp4"), kind=kind, container="mp4", size_bytes=1,
                     sha256="", width=224, height=224, duration_s=float(n), fps=1.0)
    media = DecodedMedia(info=info, frames=frames)
    faces = FaceResult(tracks=[track], frames_seen=n, frames_with_faces=n)
    return AnalysisContext(media=media, faces=faces, options=Options(), settings=Settings())


@pytest.mark.parametrize("keep_crops", [True, False])
def test_detector_runs_on_synthetic_faces(keep_crops: bool) -> None:
    det = FaceArtifactsDetector()
    ctx = _ctx(keep_crops=keep_crops)
    assert det.applies(ctx)
    res = det.run(ctx)
    assert res.score is not None and 0 <= res.score <= 1
    assert res.evidence["n_crops"] == 3 and res.evidence["n_tracks"] == 1
    assert set(res.frame_scores) == {0.0, 1.0, 2.0}
    assert res.version == FaceArtifactsDetector.version


def test_flagged_face_gets_a_heatmap_and_a_reason() -> None:
    """A model that flags everything: every face gets a decodable heatmap and a reason."""

    class Always(FaceModel):
        def predict(self, crops: list[np.ndarray], batch: int = 16) -> tuple[np.ndarray, np.ndarray]:
            cam = np.full((len(crops), CELLS, CELLS), -1.0, np.float32)
            cam[:, 0, :] = 6.0  # top rows: the forehead edge of the crop
            return np.full(len(crops), 3.0), cam  # logits

    det = FaceArtifactsDetector(model=Always(path=__import__("pathlib").Path("unused"), version="2.0.0"))
    res = det.run(_ctx())
    assert res.score == pytest.approx(1 / (1 + np.exp(-3.0)))
    assert res.evidence["media_logit"] == pytest.approx(3.0)
    assert res.reasons and res.reasons[0] in ("blending_boundary", "texture_artifacts")
    (heat,) = res.heatmaps
    assert heat.image.shape == (112, 112, 3) and heat.image.dtype == np.uint8
    assert heat.track_id == 0 and heat.score == pytest.approx(res.score)
    assert not any("heatmap" in k for k in res.evidence)  # images travel typed, not as evidence


def test_no_face_is_not_applicable() -> None:
    ctx = _ctx()
    ctx.faces = FaceResult(tracks=[], frames_seen=3, frames_with_faces=0)
    verdict = FaceArtifactsDetector().applies(ctx)
    assert not verdict and verdict.reason == "no_face"


def test_missing_model_is_reported_not_scored() -> None:
    res = run_detector(FaceArtifactsDetector(card="no-such-card"), _ctx())
    assert res.score is None and res.not_applicable == "model_unavailable"
