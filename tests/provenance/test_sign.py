"""sign -> verify round trips (JPEG, PNG, MP4, WAV), tampering, trust anchors, consent refusals."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import av
import pytest
from PIL import Image

from veracity.config import Settings
from veracity.errors import ConsentRefused, SigningKeyError, UnsupportedMedia
from veracity.provenance import sign_file, verify_file
from veracity.provenance.c2pa import UNTRUSTED
from veracity.provenance.consent import ConsentRecord, ConsentStore
from veracity.provenance.keys import KeyPaths, init_dev_keys

# Where the media payload starts in each container: a byte flipped there breaks the hard binding.
PAYLOAD = {"jpg": b"\xff\xda", "png": b"IDAT", "mp4": b"mdat", "wav": b"data"}
HASH_CODE = {
    "jpg": "assertion.dataHash.mismatch",
    "png": "assertion.dataHash.mismatch",
    "mp4": "assertion.bmffHash.mismatch",
    "wav": "assertion.dataHash.mismatch",
}


def _riff_data_offset(data: bytes) -> int:
    """Offset of the 'data' chunk body, walking RIFF chunks (the manifest may contain 'data' too)."""
    pos = 12
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        if cid == b"data":
            return pos + 8
        pos += 8 + size + (size & 1)
    raise AssertionError("no data chunk")


def flip_payload_byte(path: Path, kind: str) -> None:
    data = bytearray(path.read_bytes())
    start = _riff_data_offset(bytes(data)) if kind == "wav" else data.rfind(PAYLOAD[kind]) + len(PAYLOAD[kind])
    data[start + 64] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("kind", ["jpg", "png", "mp4", "wav"])
def test_round_trip(
    kind: str, media: dict[str, Path], settings: Settings, keys: KeyPaths, consent: ConsentRecord, tmp_path: Path
) -> None:
    out = tmp_path / f"signed.{kind}"
    res = sign_file(media[kind], out, consent_id=consent.id, generator="TestGen 2.1", settings=settings)
    assert out.is_file() and res.validation_state == "Valid"
    assert res.scope == ("voice" if kind == "wav" else "likeness")
    assert res.watermarked == (kind != "wav")

    plain = verify_file(out, settings)
    cred = plain.c2pa
    assert cred.validation_state == "Valid"
    assert UNTRUSTED in cred.failure_codes and cred.failure_codes == [UNTRUSTED]
    assert plain.trust == "signed, signer not on your trust list"
    m = cred.manifest
    assert m is not None
    created = [a for a in m.actions if a.action == "c2pa.created"]
    assert created and created[0].digital_source_type == (
        "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
    )
    assert created[0].software_agent == "TestGen 2.1"
    assert m.consent == {
        "consent_id": consent.id,
        "scope": res.scope,
        "evidence_sha256": consent.evidence_sha256,
        "signing_id": res.signing_id,
    }
    assert "declared_ai_generated" in plain.reasons
    if res.watermarked:
        assert m.soft_bindings == [{"alg": "org.veracity.vwm1", "value": res.signing_id}]
        ours = [w for w in plain.watermarks if w.name == "veracity_v1"]
        assert ours and ours[0].found and ours[0].payload == res.signing_id
        assert "watermark_detected" in plain.reasons
        # The watermark alone leads back to the signing record, even with the manifest stripped.
        assert plain.signing_record is not None
        assert plain.signing_record["consent_id"] == consent.id
    if kind == "mp4":
        # analyze hands over the frames it decoded; the mark is read from them, not re-decoded.
        with av.open(str(out)) as container:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        from_frames = verify_file(out, settings, frames=frames)
        assert [w.payload for w in from_frames.watermarks if w.found] == [res.signing_id]
    if kind in ("jpg", "png"):
        stripped = tmp_path / f"stripped.{kind}"
        with Image.open(out) as im:  # re-saving drops the manifest (APP11 / caBX) and keeps the pixels
            if kind == "jpg":
                im.convert("RGB").save(stripped, quality=90)
            else:
                im.save(stripped)
        again = verify_file(stripped, settings)
        assert not again.c2pa.present
        assert again.signing_record is not None and again.signing_record["signing_id"] == res.signing_id
        assert "watermark_detected" in again.reasons

    assert keys.ca is not None
    trusted = verify_file(out, settings.with_(trust_anchors=keys.ca), watermarks=False)
    assert trusted.c2pa.validation_state == "Trusted"
    assert trusted.trust == "signed, signer on your trust list"

    flip_payload_byte(out, kind)
    broken = verify_file(out, settings, watermarks=False)
    assert broken.c2pa.validation_state == "Invalid"
    assert HASH_CODE[kind] in broken.c2pa.failure_codes
    assert "credential_invalid" in broken.reasons


def _refused(settings: Settings, src: Path, out: Path, consent_id: str, **kw: str) -> ConsentRefused:
    with pytest.raises(ConsentRefused) as info:
        sign_file(src, out, consent_id=consent_id, generator="g", settings=settings, **kw)
    assert not out.exists()
    assert not list(out.parent.glob(".*partial"))
    return info.value


def test_refuses_missing_expired_revoked_and_out_of_scope(
    media: dict[str, Path], settings: Settings, keys: KeyPaths, evidence: Path, tmp_path: Path
) -> None:
    out = tmp_path / "never.png"
    assert "does not exist" in _refused(settings, media["png"], out, "nope").message
    store = ConsentStore.open(settings)
    try:
        past = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
        expired = store.add(subject="Bob", scopes="likeness", granted_by="Bob", evidence=evidence, expires_at=past)
        revoked = store.revoke(store.add(subject="Cy", scopes="likeness", granted_by="Cy", evidence=evidence).id)
        voice_only = store.add(subject="Di", scopes="voice", granted_by="Di", evidence=evidence)
    finally:
        store.close()
    assert "expired" in _refused(settings, media["png"], out, expired.id).message
    assert "revoked" in _refused(settings, media["png"], out, revoked.id).message
    assert "not likeness" in _refused(settings, media["png"], out, voice_only.id).message
    assert "not likeness" in _refused(settings, media["wav"], out, voice_only.id, scope="likeness").message
    # The voice consent does cover audio.
    res = sign_file(media["wav"], tmp_path / "ok.wav", consent_id=voice_only.id, generator="tts", settings=settings)
    assert res.scope == "voice"


def test_refuses_without_keys_and_writes_nothing(
    media: dict[str, Path], settings: Settings, consent: ConsentRecord, tmp_path: Path
) -> None:
    out = tmp_path / "x.jpg"
    with pytest.raises(SigningKeyError):
        sign_file(media["jpg"], out, consent_id=consent.id, generator="g", settings=settings)
    assert not out.exists()


def test_refuses_unsupported_input(settings: Settings, consent: ConsentRecord, tmp_path: Path) -> None:
    txt = tmp_path / "a.jpg"
    txt.write_text("not an image")
    with pytest.raises(UnsupportedMedia):
        sign_file(txt, tmp_path / "b.jpg", consent_id=consent.id, generator="g", settings=settings)


def test_user_chain_and_key(media: dict[str, Path], settings: Settings, consent: ConsentRecord, tmp_path: Path) -> None:
    # "User" keys: made elsewhere, passed explicitly; the default location stays empty.
    theirs = init_dev_keys(Settings(data_dir=tmp_path / "elsewhere"))
    res = sign_file(
        media["png"],
        tmp_path / "u.png",
        consent_id=consent.id,
        generator="g",
        settings=settings,
        cert=theirs.chain,
        key=theirs.key,
    )
    assert res.validation_state == "Valid"
    other = init_dev_keys(Settings(data_dir=tmp_path / "third"))
    with pytest.raises(SigningKeyError, match="does not belong"):
        sign_file(
            media["png"],
            tmp_path / "v.png",
            consent_id=consent.id,
            generator="g",
            settings=settings,
            cert=theirs.chain,
            key=other.key,
        )


def test_private_key_is_0600_and_not_overwritten(settings: Settings, keys: KeyPaths) -> None:
    assert stat.S_IMODE(keys.key.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" in keys.key.read_bytes()
    with pytest.raises(SigningKeyError, match="already exist"):
        init_dev_keys(settings)
    again = init_dev_keys(settings, force=True)
    assert stat.S_IMODE(again.key.stat().st_mode) == 0o600
