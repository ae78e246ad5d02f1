"""``sign_file``: watermark + signed C2PA manifest for consented synthetic media.

Order matters and nothing is written on refusal: consent is checked first, keys second; the
watermark (still images) is embedded, the manifest signed in memory and validated, and only then
is the output written (atomically) and the signing record stored. The manifest declares
``c2pa.created`` with ``digitalSourceType`` trainedAlgorithmicMedia, the generator, a consent
assertion (id, scope, evidence hash) and, for images and MP4 video, the watermark as a soft
binding (MP4 video is re-encoded with the mark in every frame; audio keeps its packets).
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from veracity import __version__
from veracity.config import Settings
from veracity.errors import ConfigError, ProvenanceError, SourceNotFound, UnsupportedMedia
from veracity.provenance import vwm
from veracity.provenance.c2pa import CONSENT_ASSERTION, IPTC, ValidationState, make_context, read_bytes
from veracity.provenance.consent import ConsentStore, SigningRecord, now_utc
from veracity.provenance.keys import resolve_keys
from veracity.provenance.sniff import sniff

SOFT_BINDING_ALG = "org.veracity.vwm1"
_SIGNABLE = {"image/jpeg", "image/png", "image/webp", "video/mp4", "video/quicktime", "audio/wav"}
_WATERMARKABLE = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}


@dataclass(frozen=True, slots=True)
class SignResult:
    out: Path
    signing_id: str
    consent_id: str
    scope: str
    format: str
    sha256: str
    validation_state: ValidationState
    watermarked: bool
    note: str | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "out": str(self.out),
            "signing_id": self.signing_id,
            "consent_id": self.consent_id,
            "scope": self.scope,
            "format": self.format,
            "sha256": self.sha256,
            "validation_state": self.validation_state,
            "watermarked": self.watermarked,
            "note": self.note,
        }


def default_scope(mime: str) -> str:
    """Audio carries a voice; images and video a likeness."""
    return "voice" if mime.startswith("audio/") else "likeness"


def build_manifest(
    *, title: str, generator: str, consent_id: str, scope: str, evidence_sha256: str, signing_id: str, watermarked: bool
) -> dict[str, object]:
    assertions: list[dict[str, object]] = [
        {
            "label": "c2pa.actions.v2",
            "data": {
                "actions": [
                    {
                        "action": "c2pa.created",
                        "digitalSourceType": IPTC + "trainedAlgorithmicMedia",
                        "softwareAgent": {"name": generator},
                    }
                ]
            },
        },
        {
            "label": CONSENT_ASSERTION,
            "data": {
                "consent_id": consent_id,
                "scope": scope,
                "evidence_sha256": evidence_sha256,
                "signing_id": signing_id,
            },
        },
    ]
    if watermarked:
        assertions.append(
            {
                "label": "c2pa.soft-binding",
                "data": {"alg": SOFT_BINDING_ALG, "blocks": [{"scope": {}, "value": signing_id}]},
            }
        )
    return {
        "claim_generator_info": [{"name": "veracity", "version": __version__}],
        "title": title,
        "assertions": assertions,
    }


def _watermark(data: bytes, fmt: str, signing_id: str) -> tuple[bytes, str | None]:
    """Embed vwm1 and re-encode in the same format; (bytes, note when it could not be applied)."""
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        if img.mode not in ("RGB", "L", "P"):
            return data, f"watermark not applied: {img.mode} images keep their alpha/bit depth untouched"
        rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
    try:
        marked = vwm.embed(rgb, int(signing_id, 16))
    except ValueError as exc:
        return data, f"watermark not applied: {exc}"
    buf = io.BytesIO()
    options: dict[str, object] = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    Image.fromarray(marked).save(buf, format=fmt, **options)
    return buf.getvalue(), None


def sign_file(
    src: Path,
    out: Path,
    *,
    consent_id: str,
    generator: str,
    settings: Settings,
    scope: str | None = None,
    cert: Path | None = None,
    key: Path | None = None,
) -> SignResult:
    """Sign ``src`` into ``out`` for the holder of ``consent_id``. Raises before writing anything
    when consent, keys or format are not right."""
    import c2pa as sdk

    if not src.is_file():
        raise SourceNotFound("no such file", path=str(src))
    if out.resolve() == src.resolve():
        raise ConfigError("the output must be a new file, not the input")
    if not generator.strip():
        raise ConfigError("generator must not be empty")
    mime = sniff(src)
    if mime not in _SIGNABLE:
        raise UnsupportedMedia(
            f"cannot sign {mime or 'unknown'} content (JPEG, PNG, WebP, MP4, MOV, WAV)", path=str(src)
        )
    scope = scope or default_scope(mime)
    store = ConsentStore.open(settings)
    try:
        consent = store.check(consent_id, scope)
        chain, pkey = resolve_keys(settings, cert, key).read()
        signing_id = store.new_signing_id()
        data = src.read_bytes()
        note = None
        watermarked = False
        if mime in _WATERMARKABLE:
            data, note = _watermark(data, _WATERMARKABLE[mime], signing_id)
            watermarked = note is None
        elif mime == "video/mp4":
            from veracity.provenance.videowm import embed_mp4

            data, note = embed_mp4(data, int(signing_id, 16))
            watermarked = note is None
        else:
            note = "watermark not applied: audio (and MOV) carry the signed manifest only"
        manifest = build_manifest(
            title=out.name,
            generator=generator.strip(),
            consent_id=consent.id,
            scope=scope,
            evidence_sha256=consent.evidence_sha256,
            signing_id=signing_id,
            watermarked=watermarked,
        )
        signed = io.BytesIO()
        try:
            signer = sdk.Signer.from_info(sdk.C2paSignerInfo(sdk.C2paSigningAlg.ES256, chain, pkey, None))
            with sdk.Builder(manifest, context=make_context(settings)) as builder:
                builder.sign(signer, mime, io.BytesIO(data), signed)
        except sdk.C2paError as exc:
            raise ProvenanceError(f"C2PA signing failed: {exc}") from None
        payload = signed.getvalue()
        check = read_bytes(payload, mime, settings)
        if check.validation_state not in ("Valid", "Trusted"):
            raise ProvenanceError(f"the signed output did not validate: {', '.join(check.failure_codes)}")
        digest = hashlib.sha256(payload).hexdigest()
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.partial")
        tmp.write_bytes(payload)
        try:
            store.record_signing(
                SigningRecord(
                    id=signing_id,
                    consent_id=consent.id,
                    scope=scope,
                    generator=generator.strip(),
                    output_name=out.name,
                    output_sha256=digest,
                    format=mime,
                    created_at=now_utc(),
                )
            )
            os.replace(tmp, out)
        finally:
            tmp.unlink(missing_ok=True)
    finally:
        store.close()
    assert check.validation_state is not None
    return SignResult(
        out=out,
        signing_id=signing_id,
        consent_id=consent.id,
        scope=scope,
        format=mime,
        sha256=digest,
        validation_state=check.validation_state,
        watermarked=watermarked,
        note=note,
    )
