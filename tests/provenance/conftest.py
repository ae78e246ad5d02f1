"""Fixtures for provenance tests: a fresh data dir with dev keys and a consent, small media."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from tests.synth import make_video

from veracity.config import Settings
from veracity.provenance.consent import ConsentRecord, ConsentStore
from veracity.provenance.keys import KeyPaths, init_dev_keys


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def keys(settings: Settings) -> KeyPaths:
    return init_dev_keys(settings)


@pytest.fixture
def evidence(tmp_path: Path) -> Path:
    p = tmp_path / "release.txt"
    p.write_text("I, Alice, agree that my likeness and voice may be used for this test.\n")
    return p


@pytest.fixture
def consent(settings: Settings, evidence: Path) -> ConsentRecord:
    store = ConsentStore.open(settings)
    try:
        return store.add(subject="Alice", scopes="likeness,voice", granted_by="Alice", evidence=evidence)
    finally:
        store.close()


def textured_rgb(h: int = 320, w: int = 384, seed: int = 0) -> np.ndarray:
    """A photo-like test image: smooth gradients plus texture, no flat clipping areas."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = 110 + 50 * np.sin(xx / 23.0) * np.cos(yy / 31.0)
    noise = rng.normal(0, 12, (h, w))
    img = np.stack([base + noise, base * 0.9 + noise, base * 0.8 + noise + 20], axis=-1)
    return np.clip(img, 0, 255).astype(np.uint8)


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("signmedia")
    rgb = textured_rgb()
    Image.fromarray(rgb).save(d / "gen.jpg", quality=92)
    Image.fromarray(rgb).save(d / "gen.png")
    make_video(d / "gen.mp4", seconds=1.0, size=(320, 256))  # big enough for the watermark
    t = np.arange(16000) / 16000.0
    pcm = (np.sin(2 * np.pi * 220 * t) * 8000).astype("<i2")
    with wave.open(str(d / "gen.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(pcm.tobytes())
    return {"jpg": d / "gen.jpg", "png": d / "gen.png", "mp4": d / "gen.mp4", "wav": d / "gen.wav"}
