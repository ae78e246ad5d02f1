"""Training code for synthetic_speech v2 on a tiny synthetic data folder (no shared data, no
fetched encoder: a stand-in encoder from the detector tests), and the codec round trips."""

from __future__ import annotations

import csv
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from tests.detectors.test_synthetic_speech import StandIn, voiced

from veracity.detectors.synthetic_speech import (
    AUDIO_CARD_NAME,
    AUDIO_VERSION,
    CARD_NAME,
    N_FEATURES,
    RATE,
    SpeechHead,
    file_features,
    score_features,
)
from veracity.errors import ConfigError
from veracity.models.cards import read_card
from veracity.models.whisper import BASE
from veracity.train import heldout
from veracity.train.common import Item
from veracity.train.synthetic_speech import (
    EVAL_VARIANTS,
    codec_round_trip,
    source_of,
    train_synthetic_speech,
    train_variant,
)

COLUMNS = ["path", "split", "label", "detail", "kind", "source_repo", "commit", "source_path",
           "license", "notes"]


def buzzy(seconds: float, seed: int) -> npt.NDArray[np.float32]:
    """A 'vocoder': the crude voice with a strong 3 kHz whine, easy for any head to find."""
    x = voiced(seconds, seed=seed, f0=180.0)
    t = np.arange(x.size) / RATE
    return np.asarray(x + 0.05 * np.sin(2 * np.pi * 3000 * t) * (np.abs(x) > 0.01), dtype=np.float32)


def write_wav(path: Path, x: npt.NDArray[np.float32]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes((np.clip(x, -1, 1) * 32767).astype("<i2").tobytes())


def make_data(root: Path) -> Path:
    rows = []
    plan = [("train", "train/audio_real/a", "real", 4, voiced), ("train", "train/audio_fake/a", "fake", 4, buzzy),
            ("train", "train/audio_real/b", "real", 4, voiced), ("train", "train/audio_fake/b", "fake", 4, buzzy),
            ("eval", "eval/audio/real", "real", 3, voiced), ("eval", "eval/audio/fake", "fake", 3, buzzy)]
    for k, (split, folder, label, count, make) in enumerate(plan):
        for i in range(count):
            rel = f"{folder}/{label}_{i}.wav"
            write_wav(root / rel, make(2.0 + 0.5 * i, 10 * k + i))
            rows.append({"path": rel, "split": split, "label": label, "detail": "test voice" if label == "fake" else "",
                         "kind": "audio", "source_repo": f"test/{folder.split('/')[-1]}", "commit": "0" * 40,
                         "source_path": rel, "license": "CC0", "notes": ""})
    with (root / "MANIFEST.tsv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS, delimiter="\t")
        writer.writeheader()
        writer.writerows(rows)
    return root


@pytest.mark.parametrize(("codec", "kbps"), [("mp3", 64), ("opus", 24), ("aac", 96)])
def test_codec_round_trip_keeps_the_voice(codec: str, kbps: int) -> None:
    x = voiced(2.0)
    y = codec_round_trip(x, codec, kbps)
    assert y.dtype == np.float32
    assert abs(y.size - x.size) < 0.15 * RATE  # codec delay / padding only
    rms = float(np.sqrt(np.mean(x**2)))
    assert float(np.sqrt(np.mean(y**2))) == pytest.approx(rms, rel=0.25)
    assert not np.array_equal(y[: x.size], x)  # it did go through the codec


def test_train_variant_is_seeded_and_codec_only() -> None:
    item = Item(Path("x.wav"), "train/audio_real/a/x.wav", 0, "train/audio_real/a", "", "r", "")
    assert train_variant(item, 0) == train_variant(item, 0)
    codec, _, kbps = train_variant(item, 0).partition("@")
    assert codec in ("mp3", "opus", "aac") and 16 <= int(kbps) <= 128
    # Further copies (--codec-copies) are other seeded draws; copy 0 stays the one every head had.
    items = [Item(Path("x.wav"), f"train/audio_real/a/{i}.wav", 0, "g", "", "r", "") for i in range(20)]
    firsts, seconds = [train_variant(it, 0) for it in items], [train_variant(it, 0, copy=1) for it in items]
    assert firsts == [train_variant(it, 0, copy=0) for it in items] and firsts != seconds
    assert seconds == [train_variant(it, 0, copy=1) for it in items]
    gt = Item(Path("x.wav"), "train/audio_real/hifigan_demo_gt/x.wav", 0, "g", "", "r", "")
    assert source_of(gt) == "hifigan_demo"
    src = Item(Path("x.wav"), "train/audio/fake/x.wav", 1, "g", "", "Edresson/YourTTS", "")
    assert source_of(src) == "Edresson/YourTTS"


def test_train_writes_a_card_the_detector_can_use(tmp_path: Path) -> None:
    data = make_data(tmp_path / "data")
    out = tmp_path / "card" / f"{CARD_NAME}.json"
    enc = StandIn()
    card = train_synthetic_speech(data, out, encoder=enc, cache_root=tmp_path / "cache")
    again = read_card(out)
    assert again.sha256 == card.sha256 and again.name == CARD_NAME
    loso = card.metrics["train_leave_one_source_out"]
    assert set(loso["clean"]) >= {"all", "a", "b"}  # each source held out once
    assert set(card.metrics["eval"]) >= set(EVAL_VARIANTS)
    assert card.metrics["eval"]["clean"]["all"]["n_real"] == 3
    assert sum(t.count for t in card.training_data) == 16
    head = SpeechHead.from_card(card)
    fake = score_features(head, file_features(enc, buzzy(3.0, 99))[0])[0]
    real = score_features(head, file_features(enc, voiced(3.0, 98))[0])[0]
    assert fake > real
    calls = enc.calls
    train_synthetic_speech(data, out, encoder=enc, cache_root=tmp_path / "cache")
    assert enc.calls == calls  # the second fit reads every encoding from the cache

    # Two other encoder layers: encoded anew (the cache holds the default layer's encodings).
    two = train_synthetic_speech(data, out, encoder=enc, cache_root=tmp_path / "cache", layers=(4, 2),
                                 measure_eval=False)
    assert enc.calls > calls
    head2 = SpeechHead.from_card(two)
    assert head2.layers == (2, 4) and head2.width() == 2 * N_FEATURES
    assert "blocks 2, 4" in two.input
    with pytest.raises(ConfigError, match="distinct"):
        train_synthetic_speech(data, out, encoder=enc, cache_root=tmp_path / "cache", layers=(5,))


def test_the_audio_head_is_its_own_card_with_its_own_held_out_table(tmp_path: Path) -> None:
    data = make_data(tmp_path / "data")
    enc, cache = StandIn(), tmp_path / "cache"
    video = train_synthetic_speech(data, tmp_path / "v.json", encoder=enc, cache_root=cache, measure_eval=False)
    audio = train_synthetic_speech(data, tmp_path / "a.json", encoder=StandIn(BASE.width), cache_root=cache,
                                   measure_eval=False, head_kind="audio")  # the audio head reads Whisper base
    assert (audio.name, audio.version) == (AUDIO_CARD_NAME, AUDIO_VERSION)
    head = SpeechHead.from_card(audio)
    assert head.layers == (1,) and head.encoder == BASE.card and "block 1 of 6" in audio.input
    assert (video.name, SpeechHead.from_card(video).layers) == (CARD_NAME, (4,))
    # Both heads' tables are kept, each for its own weights.
    a, v = heldout.load(cache, AUDIO_CARD_NAME, audio.sha256), heldout.load(cache, CARD_NAME, video.sha256)
    assert a is not None and v is not None and a.trained_on == v.trained_on and a.scores
    with pytest.raises(ConfigError, match="unknown speech head"):
        train_synthetic_speech(data, tmp_path / "x.json", encoder=enc, cache_root=cache, head_kind="image")


def test_generated_fakes_text_is_seeded_sentences() -> None:
    from veracity.train import speech_fakes

    if not speech_fakes.TEXT.is_dir():
        pytest.skip("no Debian licence texts on this machine")
    a, b = speech_fakes.sentences(0), speech_fakes.sentences(0)
    assert a == b and len(a) >= 240  # enough for the default 160 + 80 files
    assert all(6 <= len(s.split()) <= 28 for s in a)
    assert speech_fakes.sentences(1) != a


def test_noise_is_added_at_the_asked_snr_of_the_speech() -> None:
    from veracity.train.synthetic_speech import add_noise

    x = voiced(2.0, seed=5)
    y = add_noise(x, 10.0, seed=1)
    speech = np.abs(x) > 0.01
    snr = 10 * np.log10(np.mean(x[speech] ** 2) / np.mean((y - x)[speech] ** 2))
    assert 7.0 < snr < 13.0  # the level is set on the VAD's speech frames, so within a few dB
    assert np.array_equal(add_noise(x, 10.0, seed=1), y)  # seeded


def test_variant_steps_apply_left_to_right() -> None:
    from veracity.train.synthetic_speech import variant_samples

    x = voiced(1.0, seed=6)
    assert variant_samples(x, "clean") is x
    noisy = variant_samples(x, "noise@20")
    assert not np.array_equal(noisy, x) and noisy.shape == x.shape
    both = variant_samples(x, "noise@20+mp3@64")
    assert abs(both.size - x.size) < 0.15 * RATE


def test_noise_option_keeps_the_old_variants_and_noises_about_half() -> None:
    items = [Item(Path("x.wav"), f"train/audio_real/a/{i}.wav", 0, "train/audio_real/a", "", "r", "")
             for i in range(400)]
    plain = [train_variant(it, 0) for it in items]
    noisy = [train_variant(it, 0, noise=True) for it in items]
    assert [v.split("+")[-1] for v in noisy] == plain  # the same codec draws, cached features reused
    share = sum(v.startswith("noise@") for v in noisy) / len(items)
    assert 0.4 < share < 0.6


def test_video_reals_count_per_corpus_and_in_their_repository() -> None:
    lrs2 = Item(Path("x.mp4"), "train/video_real/lrs2_00001.mp4", 0, "train/video_real", "", "r", "")
    grid = Item(Path("x.mp4"), "train/video_real/grid_bbaf2n.mpg", 0, "train/video_real", "", "r", "")
    dfl = Item(Path("x.mp4"), "train/video/real/d__panel1of2.mp4", 0, "g", "", "iperov/DeepFaceLive", "")
    assert source_of(lrs2) == "video_real/lrs2" and source_of(grid) == "video_real/grid"
    assert source_of(dfl) == "iperov/DeepFaceLive"


def test_real_video_items_take_only_real_train_videos(tmp_path: Path) -> None:
    from veracity.train.synthetic_speech import real_video_items

    rows = []
    for rel, split, label in [("train/video_real/lrs2_1.mp4", "train", "real"),
                              ("train/video/fake/d__panel2of2.mp4", "train", "fake"),
                              ("eval/video/real/e.mp4", "eval", "real")]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
        rows.append({"path": rel, "split": split, "label": label, "detail": "", "kind": "video",
                     "source_repo": "o/r", "commit": "", "source_path": rel, "license": "", "notes": ""})
    with (tmp_path / "MANIFEST.tsv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS, delimiter="\t")
        writer.writeheader()
        writer.writerows(rows)
    assert [it.rel for it in real_video_items(tmp_path, lambda _m: None)] == ["train/video_real/lrs2_1.mp4"]
