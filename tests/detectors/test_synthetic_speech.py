"""synthetic_speech on synthetic signals: feature shapes, the confounds the features must ignore
(silence, level, the band above 4 kHz), model math, segments and the detector contract."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from veracity.config import Options, Settings
from veracity.detectors import registry
from veracity.detectors.base import AnalysisContext, Detector, sigmoid
from veracity.detectors.synthetic_speech import (
    CARD_NAME,
    N_FEATURES,
    RATE,
    SpeechModel,
    SyntheticSpeechDetector,
    feature_config,
    score_samples,
    segments,
    speech_features,
)
from veracity.errors import ModelUnavailable
from veracity.faces.types import FaceResult
from veracity.media.types import Audio, DecodedMedia, Frame, MediaInfo, MediaKind
from veracity.models.cards import load_card, params_sha256

F32 = npt.NDArray[np.float32]


def voiced(seconds: float, seed: int = 0, f0: float = 140.0) -> F32:
    """A crude voice: harmonics of a wobbling f0 under a syllable-rate envelope, plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    f = f0 * (1 + 0.05 * np.sin(2 * np.pi * 3 * t))
    phase = 2 * np.pi * np.cumsum(f) / RATE
    x = sum(np.sin(k * phase) / k for k in range(1, 25))
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2
    return np.asarray(0.1 * env * x + 0.002 * rng.normal(size=t.size), dtype=np.float32)


def context(kind: MediaKind, audio: Audio | None) -> AnalysisContext:
    frames = [] if kind == "audio" else [Frame(t=0.0, rgb=np.zeros((64, 64, 3), np.uint8), role="still")]
    info = MediaInfo(path=Path("x"), kind=kind, container="wav", size_bytes=1, sha256="",
                     width=None if kind == "audio" else 64, height=None if kind == "audio" else 64,
                     has_audio=audio is not None)
    return AnalysisContext(media=DecodedMedia(info=info, frames=frames, audio=audio),
                           faces=FaceResult(tracks=[], frames_seen=0, frames_with_faces=0),
                           options=Options(), settings=Settings())


def test_features_have_fixed_length_and_are_finite() -> None:
    for seconds in (0.4, 2.0, 9.0):
        f = speech_features(voiced(seconds))
        assert f is not None
        assert f.shape == (N_FEATURES,)
        assert np.all(np.isfinite(f))


def test_silence_and_near_silence_have_no_features() -> None:
    assert speech_features(np.zeros(RATE * 2, dtype=np.float32)) is None
    assert speech_features(voiced(0.1)) is None  # under the minimum of active speech


def test_leading_silence_and_level_do_not_change_features() -> None:
    x = voiced(3.0)
    base = speech_features(x)
    padded = speech_features(np.concatenate([np.zeros(RATE * 2, dtype=np.float32), x,
                                             np.zeros(RATE, dtype=np.float32)]))
    quiet = speech_features((x * 0.25).astype(np.float32))
    assert base is not None and padded is not None and quiet is not None
    np.testing.assert_allclose(padded, base, atol=0.03, rtol=0.03)
    np.testing.assert_allclose(quiet, base, atol=0.05, rtol=0.05)


def test_content_above_4khz_is_ignored() -> None:
    x = voiced(3.0)
    t = np.arange(x.size) / RATE
    hiss = (0.02 * np.sin(2 * np.pi * 6000 * t) * (x != 0)).astype(np.float32)
    a, b = speech_features(x), speech_features(x + hiss)
    assert a is not None and b is not None
    np.testing.assert_allclose(a, b, atol=0.02, rtol=0.02)


def test_segments_cover_the_active_speech() -> None:
    segs = segments(voiced(10.0))
    assert len(segs) == 3  # ~10 s in 3 s pieces, the short tail joined to the last
    starts = [t for t, _ in segs]
    assert starts == sorted(starts)
    assert sum(p.shape[0] for _, p in segs) > 900


def test_model_math_and_card() -> None:
    card = load_card(CARD_NAME)
    assert card.version == SyntheticSpeechDetector.version
    assert card.params is not None and card.params["features"] == feature_config()
    assert "eval_audio" in card.metrics
    model = SpeechModel.from_card(card)
    f = speech_features(voiced(2.0))
    assert f is not None
    z = float(((f - model.mean) / model.std) @ model.coef) + model.intercept
    assert model.logit(f) == pytest.approx(z)
    scored = score_samples(model, voiced(2.0))
    assert scored is not None
    assert scored[0] == pytest.approx(sigmoid(z), abs=1e-9)
    params = {**card.params, "features": {**card.params["features"], "n_mels": 64}}
    with pytest.raises(ModelUnavailable, match="other speech features"):
        SpeechModel.from_card(card.model_copy(update={"params": params, "sha256": params_sha256(params)}))
    with pytest.raises(ValueError, match="finite"):
        SpeechModel(version="1", mean=model.mean, std=model.std, coef=np.full(N_FEATURES, math.nan), intercept=0.0)


def test_detector_contract() -> None:
    det = registry.create("synthetic_speech")
    assert isinstance(det, Detector)
    assert not det.applies(context("video", None))
    assert det.applies(context("video", None)).reason == "no_audio"
    silent = context("audio", Audio(samples=np.zeros(RATE, dtype=np.float32)))
    assert det.applies(silent)
    res = det.run(silent)
    assert res.score is None and res.not_applicable == "no_speech"
    speech = det.run(context("audio", Audio(samples=voiced(7.0))))
    assert speech.score is not None
    assert 0.0 < speech.confidence <= 0.6
    assert len(speech.frame_scores) == 2
    assert speech.evidence["active_speech_s"] == pytest.approx(7.0, abs=0.5)
