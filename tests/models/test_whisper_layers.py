"""Intermediate Whisper encoder layers: the truncated CTranslate2 models ``derive_truncated``
writes. The file surgery is checked on a small synthetic model file; where the real encoder is
fetched, each truncated model's output is checked against a numpy forward pass of the same
blocks (so "layer k" means what the docstring says)."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from tests.detectors.test_synthetic_speech import whisper  # noqa: F401 (a fixture)

from veracity.config import Settings
from veracity.models.fetch import load_card_unverified, models_dir
from veracity.models.whisper import (
    ENCODER_LAYERS,
    FIRST_SPECIAL_TOKEN,
    MODEL_CARD,
    LayeredEncoder,
    WhisperEncoder,
    derive_truncated,
    log_mel,
    truncated_dir,
)

F16 = 4  # CTranslate2's dtype id of float16
DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
Vars = dict[str, npt.NDArray[Any]]


def write_ct2(path: Path, variables: Vars, aliases: list[tuple[str, str]]) -> None:
    """A CTranslate2 binary (version 6) holding ``variables`` (float16) and ``aliases``."""
    def string(s: str) -> bytes:
        raw = s.encode() + b"\0"
        return struct.pack("<H", len(raw)) + raw

    out = struct.pack("<I", 6) + string("WhisperSpec") + struct.pack("<I", 3) + struct.pack("<I", len(variables))
    for name, arr in variables.items():
        data = np.ascontiguousarray(arr, dtype=np.float16).tobytes()
        out += string(name) + struct.pack("<B", arr.ndim) + struct.pack(f"<{arr.ndim}I", *arr.shape)
        out += struct.pack("<B", F16) + struct.pack("<I", len(data)) + data
    out += struct.pack("<I", len(aliases)) + b"".join(string(a) + string(b) for a, b in aliases)
    path.write_bytes(out)


def read_ct2(path: Path) -> tuple[Vars, list[tuple[str, str]]]:
    with open(path, "rb") as f:
        def string() -> str:
            (n,) = struct.unpack("<H", f.read(2))
            return f.read(n)[:-1].decode()

        assert struct.unpack("<I", f.read(4))[0] == 6
        string()
        f.read(4)
        (count,) = struct.unpack("<I", f.read(4))
        variables: Vars = {}
        for _ in range(count):
            name = string()
            (rank,) = struct.unpack("<B", f.read(1))
            dims = struct.unpack(f"<{rank}I", f.read(4 * rank))
            (dtype,) = struct.unpack("<B", f.read(1))
            (nbytes,) = struct.unpack("<I", f.read(4))
            variables[name] = np.frombuffer(f.read(nbytes), dtype=DTYPES[dtype]).reshape(dims)
        (n_alias,) = struct.unpack("<I", f.read(4))
        return variables, [(string(), string()) for _ in range(n_alias)]


def test_derive_truncated_keeps_the_first_blocks_and_an_identity_norm(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vocab_size, width = FIRST_SPECIAL_TOKEN + 5, 4
    variables: Vars = {"encoder/conv1/weight": rng.standard_normal((width, 2, 3))}
    for side, blocks in (("encoder", ENCODER_LAYERS), ("decoder", 3)):
        for i in range(blocks):
            variables[f"{side}/layer_{i}/ffn/linear_0/weight"] = np.full((2, width), i)
        variables[f"{side}/layer_norm/gamma"] = rng.standard_normal(width)
        variables[f"{side}/layer_norm/beta"] = rng.standard_normal(width)
    emb = np.arange(vocab_size * width, dtype=np.float64).reshape(vocab_size, width) % 1000
    variables["decoder/embeddings/weight"] = emb
    src = tmp_path / "model"
    src.mkdir()
    write_ct2(src / "model.bin", variables, [("decoder/projection/weight", "decoder/embeddings/weight")])
    (src / "vocabulary.txt").write_text("".join(f"tok{i}\n" for i in range(vocab_size)))

    out = derive_truncated(src, 2, tmp_path / "l2")
    got, aliases = read_ct2(out / "model.bin")
    assert sorted(k for k in got if k.startswith("encoder/layer_") and "norm" not in k) == [
        "encoder/layer_0/ffn/linear_0/weight", "encoder/layer_1/ffn/linear_0/weight"]
    decoder_blocks = [k for k in got if k.startswith("decoder/layer_") and "norm" not in k]
    assert decoder_blocks == ["decoder/layer_0/ffn/linear_0/weight"]
    np.testing.assert_array_equal(got["encoder/layer_norm/gamma"], np.ones(width))
    np.testing.assert_array_equal(got["encoder/layer_norm/beta"], np.zeros(width))
    kept = variables["decoder/layer_norm/gamma"].astype(np.float16)
    np.testing.assert_array_equal(got["decoder/layer_norm/gamma"], kept)
    np.testing.assert_array_equal(got["encoder/conv1/weight"], variables["encoder/conv1/weight"].astype(np.float16))
    np.testing.assert_array_equal(got["decoder/embeddings/weight"], emb[FIRST_SPECIAL_TOKEN:].astype(np.float16))
    assert aliases == [("decoder/projection/weight", "decoder/embeddings/weight")]
    assert (out / "vocabulary.txt").read_text().split() == [f"tok{i}" for i in range(FIRST_SPECIAL_TOKEN, vocab_size)]
    assert not list(out.glob(".model.*"))  # written atomically, no temporary left

    derived = truncated_dir(src, 2)
    assert derived == tmp_path / "model-l2" and (derived / "model.bin").is_file()
    with pytest.raises(ValueError, match=r"1\.\.3"):
        derive_truncated(src, 0, tmp_path / "l0")  # CTranslate2 loads no encoder without blocks
    with pytest.raises(ValueError, match=r"1\.\.3"):
        derive_truncated(src, ENCODER_LAYERS, tmp_path / "l4")  # the fetched model is layer 4


# -- the real encoder, where it is fetched --------------------------------------------------------


def _erf(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Abramowitz-Stegun 7.1.26 (error below 1.5e-7)."""
    t = 1.0 / (1.0 + 0.3275911 * np.abs(x))
    poly = ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t
    return np.asarray(np.sign(x) * (1.0 - poly * np.exp(-x * x)), dtype=np.float64)


def _gelu(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return 0.5 * x * (1.0 + _erf(x / np.sqrt(2.0)))


def _norm(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    m = x.mean(-1, keepdims=True)
    return np.asarray((x - m) / np.sqrt(((x - m) ** 2).mean(-1, keepdims=True) + 1e-5))


def _conv(x: npt.NDArray[np.float64], w: npt.NDArray[np.float64], b: npt.NDArray[np.float64],
          stride: int) -> npt.NDArray[np.float64]:
    xp = np.pad(x, ((1, 1), (0, 0)))
    n = (x.shape[0] - 1) // stride + 1
    cols = np.concatenate([xp[k: k + stride * (n - 1) + 1: stride] for k in range(3)], axis=1)
    return np.asarray(cols @ w.transpose(2, 1, 0).reshape(-1, w.shape[0]) + b)


def numpy_blocks(variables: Vars, mel: npt.NDArray[np.float32], blocks: int) -> npt.NDArray[np.float64]:
    """Whisper's encoder in numpy (conv, conv, positions, pre-norm blocks), cut after ``blocks``,
    normalised without gain or bias."""
    w = {k[len("encoder/"):]: v.astype(np.float64) for k, v in variables.items() if k.startswith("encoder/")}
    heads = 6
    x = _gelu(_conv(mel.T.astype(np.float64), w["conv1/weight"], w["conv1/bias"], 1))
    x = _gelu(_conv(x, w["conv2/weight"], w["conv2/bias"], 2))
    x = x + w["position_encodings/encodings"][: x.shape[0]]
    for i in range(blocks):
        p = f"layer_{i}/"
        y = _norm(x) * w[p + "self_attention/layer_norm/gamma"] + w[p + "self_attention/layer_norm/beta"]
        qkv = y @ w[p + "self_attention/linear_0/weight"].T + w[p + "self_attention/linear_0/bias"]
        q, k, v = (a.reshape(a.shape[0], heads, -1).transpose(1, 0, 2) for a in np.split(qkv, 3, axis=1))
        att = q @ k.transpose(0, 2, 1) / np.sqrt(q.shape[-1])
        att = np.exp(att - att.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        o = (att @ v).transpose(1, 0, 2).reshape(x.shape[0], -1)
        x = x + o @ w[p + "self_attention/linear_1/weight"].T + w[p + "self_attention/linear_1/bias"]
        y = _norm(x) * w[p + "ffn/layer_norm/gamma"] + w[p + "ffn/layer_norm/beta"]
        hidden = _gelu(y @ w[p + "ffn/linear_0/weight"].T + w[p + "ffn/linear_0/bias"])
        x = x + hidden @ w[p + "ffn/linear_1/weight"].T + w[p + "ffn/linear_1/bias"]
    return _norm(x)


@pytest.fixture(scope="module")
def fetched(request: pytest.FixtureRequest) -> Path:
    """The cache the fetched encoder is in (the ``whisper`` fixture skips, or fails under CI,
    without it)."""
    request.getfixturevalue("whisper")
    return Settings.from_env().cache_dir


def test_truncated_models_give_the_outputs_of_their_blocks(fetched: Path) -> None:
    rng = np.random.default_rng(1)
    t = np.arange(32_000) / 16_000
    voice = (np.sin(2 * np.pi * 140 * t) * (1 + np.sin(2 * np.pi * 3 * t)) * 0.2).astype(np.float32)
    mel = log_mel(voice + 0.01 * rng.standard_normal(t.size).astype(np.float32))
    model = load_card_unverified(MODEL_CARD).file_path(models_dir(fetched))
    variables, _ = read_ct2(model)
    for layer in range(1, ENCODER_LAYERS + 1):
        out = WhisperEncoder.from_cache(fetched, threads=1, layer=layer).encode(mel).astype(np.float64)
        ref = numpy_blocks(variables, mel, layer)
        if layer == ENCODER_LAYERS:  # the fetched model keeps its learned final gain and bias
            ref = ref * variables["encoder/layer_norm/gamma"] + variables["encoder/layer_norm/beta"]
        cos = (out * ref).sum(1) / np.linalg.norm(out, axis=1) / np.linalg.norm(ref, axis=1)
        assert out.shape == (100, 384) and cos.min() > 0.98, (layer, float(cos.min()))
    joined = LayeredEncoder.from_cache(fetched, (2, 4), threads=1).encode(mel)
    assert joined.shape == (100, 768)
    with pytest.raises(ValueError, match=r"1\.\.4"):
        WhisperEncoder.from_cache(fetched, layer=0)
