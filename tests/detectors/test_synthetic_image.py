"""synthetic_image on synthetic arrays: preparation, head math, card checks, the detector contract
with a stand-in encoder, and the unavailable-model path."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from veracity.config import Options, Settings
from veracity.detectors import registry
from veracity.detectors.base import AnalysisContext, Detector, sigmoid
from veracity.detectors.synthetic_image import (
    BOTTLENECK_SIDE,
    CARD_NAME,
    MAX_VIDEO_FRAMES,
    UNAVAILABLE,
    LinearHead,
    SyntheticImageDetector,
    inference_views,
    pick_frames,
    prepare,
    preprocessing_config,
    random_view,
)
from veracity.errors import ModelUnavailable
from veracity.faces.types import FaceResult
from veracity.media.types import Audio, DecodedMedia, Frame, MediaInfo, MediaKind
from veracity.models.cards import load_card, params_sha256
from veracity.models.clip import EMBED_DIM, INPUT_SIZE, clip_input

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
    """Deterministic embeddings from the image mean, counting calls (stands in for CLIP)."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def embed(self, images: list[U8]) -> npt.NDArray[np.float32]:
        self.calls.append(len(images))
        out = np.zeros((len(images), EMBED_DIM), dtype=np.float32)
        for i, im in enumerate(images):
            assert im.shape == (BOTTLENECK_SIDE, BOTTLENECK_SIDE, 3)
            out[i, 0] = float(im.mean()) / 255.0
            out[i, 1] = 1.0
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def simple_head(w0: float = 2.0, b: float = -0.5) -> LinearHead:
    coef = np.zeros(EMBED_DIM)
    coef[0] = w0
    return LinearHead(version="1.0.0", mean=np.zeros(EMBED_DIM), std=np.ones(EMBED_DIM), coef=coef, intercept=b)


@pytest.mark.parametrize("shape", [(100, 100, 3), (1024, 768, 3), (300, 1200, 4), (200, 250)])
def test_prepare_gives_one_fixed_square(shape: tuple[int, ...]) -> None:
    rgb = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    out = prepare(rgb)
    assert out.shape == (BOTTLENECK_SIDE, BOTTLENECK_SIDE, 3)
    assert out.dtype == np.uint8


def test_random_views_vary_but_stay_in_range() -> None:
    rng = np.random.default_rng(0)
    rgb = noise(512, 640)
    sides = {random_view(rgb, rng).shape[0] for _ in range(20)}
    assert len(sides) > 3
    assert all(144 <= s <= 208 for s in sides)


def test_clip_input_is_normalised_nchw() -> None:
    x = clip_input([noise(176, 176), np.full((300, 200, 3), 255, dtype=np.uint8)])
    assert x.shape == (2, 3, INPUT_SIZE, INPUT_SIZE)
    assert x.dtype == np.float32
    # white -> (1 - mean) / std per channel
    np.testing.assert_allclose(x[1, :, 100, 100], (1 - np.array([0.48145466, 0.4578275, 0.40821073]))
                               / np.array([0.26862954, 0.26130258, 0.27577711]), rtol=1e-4)


def test_head_is_standardise_then_logistic() -> None:
    rng = np.random.default_rng(0)
    mean, std, coef = rng.normal(size=EMBED_DIM), rng.uniform(0.5, 2, EMBED_DIM), rng.normal(size=EMBED_DIM)
    head = LinearHead(version="1", mean=mean, std=std, coef=coef, intercept=0.3)
    emb = rng.normal(size=(4, EMBED_DIM))
    expected = [sigmoid(float(((e - mean) / std) @ coef) + 0.3) for e in emb]
    np.testing.assert_allclose(head.predict(emb), expected, rtol=1e-9)
    with pytest.raises(ValueError, match="512"):
        head.logits(np.zeros((1, 10)))
    two = head.predict_views(np.vstack([emb, emb[::-1]]), 4)
    assert two[0] == pytest.approx(sigmoid(float(np.mean(head.logits(emb)))))
    assert two[1] == pytest.approx(two[0])
    with pytest.raises(ValueError, match="finite"):
        LinearHead(version="1", mean=mean, std=std, coef=np.full(EMBED_DIM, math.nan), intercept=0.0)


def test_packaged_card_matches_detector_and_preprocessing() -> None:
    card = load_card(CARD_NAME)
    assert card.version == SyntheticImageDetector.version
    assert card.params is not None
    assert card.params["preprocessing"] == preprocessing_config()
    assert {"train_leave_one_fake_source_out", "eval_image", "eval_image_resave_invariance"} <= set(card.metrics)
    head = LinearHead.from_card(card)
    assert head.coef.shape == (EMBED_DIM,)


def test_card_for_other_preprocessing_is_refused() -> None:
    card = load_card(CARD_NAME)
    assert card.params is not None
    params = {**card.params, "preprocessing": {**card.params["preprocessing"], "side": 224}}
    other = card.model_copy(update={"params": params, "sha256": params_sha256(params)})
    with pytest.raises(ModelUnavailable, match="other preprocessing"):
        LinearHead.from_card(other)


def test_registered_lazily_and_honours_protocol() -> None:
    det = registry.create("synthetic_image")
    assert isinstance(det, Detector)
    assert det._encoder is None and det._head is None  # type: ignore[attr-defined]


def test_applies_to_still_images_only() -> None:
    det = SyntheticImageDetector(head=simple_head(), encoder=StubEncoder())  # type: ignore[arg-type]
    assert det.applies(context("image"))
    video = det.applies(context("video", [Frame(t=0.5, rgb=noise(240, 320), role="sparse")]))
    assert not video and video.reason == "not_image"
    audio_ctx = context("audio", [], audio=Audio(samples=np.zeros(16000, dtype=np.float32)))
    verdict = det.applies(audio_ctx)
    assert not verdict
    assert verdict.reason == "not_image"


def test_run_scores_with_the_head_and_caps_video_frames() -> None:
    enc = StubEncoder()
    head = simple_head()
    det = SyntheticImageDetector(head=head, encoder=enc)  # type: ignore[arg-type]
    bright = Frame(t=0.0, rgb=np.full((240, 320, 3), 230, dtype=np.uint8), role="still")
    res = det.run(context("image", [bright]))
    emb = enc.embed(inference_views(bright.rgb))
    # the mean logit over the TTA copies, through the sigmoid
    assert res.score == pytest.approx(sigmoid(float(np.mean(head.logits(emb)))))
    assert res.frame_scores == {0.0: pytest.approx(res.score)}
    frames = [Frame(t=float(i), rgb=noise(240, 320, i), role="sparse") for i in range(16)]
    enc2 = StubEncoder()
    res2 = SyntheticImageDetector(head=head, encoder=enc2).run(context("video", frames))  # type: ignore[arg-type]
    assert enc2.calls == [MAX_VIDEO_FRAMES]  # video: a few frames, one copy each
    assert len(res2.frame_scores) == MAX_VIDEO_FRAMES
    assert res2.evidence["n_frames"] == MAX_VIDEO_FRAMES


def test_reason_only_above_threshold() -> None:
    frame = [Frame(t=0.0, rgb=np.full((240, 320, 3), 250, dtype=np.uint8), role="still")]
    high = SyntheticImageDetector(head=simple_head(20.0, 0.0), encoder=StubEncoder())  # type: ignore[arg-type]
    low = SyntheticImageDetector(head=simple_head(-20.0, 0.0), encoder=StubEncoder())  # type: ignore[arg-type]
    assert high.run(context("image", frame)).reasons == ("ai_generated_image",)
    assert low.run(context("image", frame)).reasons == ()


def test_tiny_images_are_not_scored() -> None:
    det = SyntheticImageDetector(head=simple_head(), encoder=StubEncoder())  # type: ignore[arg-type]
    res = det.run(context("image", [Frame(t=0.0, rgb=noise(32, 40), role="still")]))
    assert res.score is None
    assert res.not_applicable == "image_too_small"


def test_missing_encoder_is_reported_not_guessed(tmp_path: Path) -> None:
    det = SyntheticImageDetector()
    res = det.run(context("image", settings=Settings(cache_dir=tmp_path)))
    assert res.score is None
    assert res.not_applicable == UNAVAILABLE
    assert "veracity models fetch" in str(res.evidence["error"])


def test_pick_frames_spreads_evenly() -> None:
    assert pick_frames(2) == [0, 1]
    assert pick_frames(16, 4) == [3, 6, 9, 12]
    assert pick_frames(16, 3) == [4, 8, 11]
    assert len(pick_frames(16)) == MAX_VIDEO_FRAMES
    assert pick_frames(0) == []
