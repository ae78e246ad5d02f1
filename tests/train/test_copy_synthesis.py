"""Copy-synthesis training fakes (train/copy_synthesis.py) and the vocoders behind them
(train/vocoders.py), on synthetic voices: no shared data, no downloaded weights."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from tests.detectors.test_synthetic_speech import voiced
from tests.train.test_synthetic_speech_train import COLUMNS, write_wav

from veracity.errors import ConfigError
from veracity.train import copy_synthesis
from veracity.train.common import list_items
from veracity.train.synthetic_speech import RATE, source_of
from veracity.train.vocoders import GriffinLim, istft, mel_magnitude, stft


def log_spectrum(x: np.ndarray) -> np.ndarray:
    return np.log(np.abs(stft(np.asarray(x, dtype=np.float32), 512, 128)).mean(axis=0) + 1e-6)


def test_stft_istft_round_trip() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(4096).astype(np.float32)
    y = istft(stft(x, 512, 128), 512, 128, x.size)
    assert np.abs(y[512:-512] - x[512:-512]).max() < 1e-4


def test_mel_magnitude_puts_a_tone_in_its_band() -> None:
    t = np.arange(RATE) / RATE
    mel, filters = mel_magnitude(np.sin(2 * np.pi * 1000 * t).astype(np.float32), RATE,
                                 {"n_fft": 512, "hop": 128, "n_mels": 40, "fmin": 0.0, "fmax": 8000.0})
    band = int(np.argmax(mel.mean(axis=1)))
    centre = int(np.argmax(filters[band])) * RATE / 512
    assert abs(centre - 1000) < 150


def test_griffin_lim_keeps_length_and_spectral_envelope() -> None:
    x = voiced(2.0, seed=3, f0=150.0)
    y = GriffinLim(seed=0)(x)
    assert y.shape == x.shape and np.isfinite(y).all()
    assert np.corrcoef(log_spectrum(x), log_spectrum(y))[0, 1] > 0.9
    assert np.abs(y - x).mean() > 0.01 * np.abs(x).mean()  # the phase is new: not a copy


def test_world_resynthesises_a_voice() -> None:
    pytest.importorskip("pyworld")
    from veracity.train.vocoders import World

    x = voiced(1.5, seed=4, f0=140.0)
    y = World()(x)
    assert abs(y.size - x.size) <= 400 and np.isfinite(y).all()
    n = min(x.size, y.size)
    assert np.corrcoef(log_spectrum(x[:n]), log_spectrum(y[:n]))[0, 1] > 0.8


def test_weight_norm_folding_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    from veracity.train.vocoders import _fold

    conv = torch.nn.utils.parametrizations.weight_norm(torch.nn.ConvTranspose1d(6, 4, 5))
    p = conv.parametrizations.weight  # the checkpoint's weight_g / weight_v, in the new API's names
    sd = {"c.weight_g": p.original0.detach(), "c.weight_v": p.original1.detach(), "c.bias": conv.bias.detach()}
    w, b = _fold(sd, "c")
    x = torch.randn(1, 6, 20)
    with torch.no_grad():
        assert torch.allclose(conv(x), torch.nn.functional.conv_transpose1d(x, w, b), atol=1e-5)


def test_resample_keeps_a_tone() -> None:
    t = np.arange(RATE) / RATE
    y = copy_synthesis.resample(np.sin(2 * np.pi * 440 * t).astype(np.float32), RATE, 22_050)
    assert y.size == 22_050
    assert abs(int(np.argmax(np.abs(np.fft.rfft(y)))) - 440) <= 1


def test_vocoder_choice_is_seeded_and_shared() -> None:
    names = [copy_synthesis.vocoder_for(f"train/audio_real/x/{i}.wav", 0) for i in range(2000)]
    assert names == [copy_synthesis.vocoder_for(f"train/audio_real/x/{i}.wav", 0) for i in range(2000)]
    for name, share in copy_synthesis.SHARES:
        assert abs(names.count(name) / len(names) - share) < 0.05


def test_generate_writes_fakes_in_their_real_twins_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "data"
    rows = []
    for i in range(3):
        rel = f"train/audio_real/lj/r{i}.wav"
        write_wav(data / rel, voiced(1.5 + 0.2 * i, seed=i))
        rows.append({"path": rel, "split": "train", "label": "real", "detail": "", "kind": "audio",
                     "source_repo": "test/lj", "commit": "", "source_path": rel, "license": "CC0", "notes": ""})
    rows.append({**rows[0], "path": "eval/audio/real/e.wav", "split": "eval"})  # eval rows are never copied
    write_wav(data / "eval/audio/real/e.wav", voiced(1.5, seed=9))
    with (data / "MANIFEST.tsv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS, delimiter="\t")
        w.writeheader()
        w.writerows(rows)
    monkeypatch.setattr(copy_synthesis, "SHARES", (("griffinlim", 1.0),))
    out = tmp_path / "out"
    assert copy_synthesis.generate(out, [data], max_seconds=1.0) == 3
    fakes = list_items([out], "train", ("train/audio_fake/",), (".wav",), lambda _m: None)
    assert len(fakes) == 3 and all(f.label == 1 for f in fakes)
    assert {f.group for f in fakes} == {"train/audio_fake/copysynth_griffinlim"}
    assert {source_of(f) for f in fakes} == {"lj"}  # the folder source of the real twins
    assert all("eval" not in f.rel for f in fakes)
    # --every adds vocoders per file; the one its hash drew is not written twice; unknown names refused
    assert copy_synthesis.generate(out, [data], max_seconds=1.0, every=["griffinlim"]) == 3
    with pytest.raises(ConfigError, match="unknown vocoder"):
        copy_synthesis.generate(out, [data], every=["wavenet"])


def test_trainer_fits_on_copies_but_judges_without_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.detectors.test_synthetic_speech import StandIn
    from tests.train.test_synthetic_speech_train import make_data

    from veracity.train.synthetic_speech import train_synthetic_speech

    data = make_data(tmp_path / "data")
    out = tmp_path / "copies"
    monkeypatch.setattr(copy_synthesis, "SHARES", (("griffinlim", 1.0),))  # no weights to fetch
    copy_synthesis.generate(out, [data], max_seconds=2.0)
    card = train_synthetic_speech([data, out], tmp_path / "card.json", encoder=StandIn(),
                                  cache_root=tmp_path / "cache", measure_eval=False)
    loso = card.metrics["train_leave_one_source_out"]
    assert loso["copy_synthesis_files"] == 8  # one copy of each of the 8 real train files
    assert {k for k in loso["clean"] if k.startswith("copies: ")} == {"copies: copysynth_griffinlim"}
    assert loso["clean"]["all"]["n_fake"] == 8  # the original fakes only
