"""``verify_file``: content credentials, invisible watermarks and generator metadata of one file.

The stable entry point for the CLI, ``analyze`` and the service. Nothing found is a normal
result; only unreadable or unknown input raises (``InputError`` subclasses).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from veracity.config import AnalysisSettings
from veracity.errors import CorruptMedia, SourceNotFound, UnsupportedMedia
from veracity.provenance import vwm
from veracity.provenance.c2pa import C2paResult, read_credentials, trust_message
from veracity.provenance.metadata import MetadataFacts, read_metadata
from veracity.provenance.sniff import sniff
from veracity.provenance.watermark import WatermarkHit, detect_all, load_rgb, vwm_hit

# Reasons that analyze's verdict carries (see fusion.provenance).
DECLARED_AI = "declared_ai_generated"
WATERMARK = "watermark_detected"
CREDENTIAL_INVALID = "credential_invalid"
METADATA_AI = "metadata_declares_ai"

_VIDEO = ("video/mp4", "video/quicktime")
_STILL = ("image/jpeg", "image/png", "image/webp", "image/gif", "image/tiff", "image/avif", "image/heic")


class ProvenanceResult(BaseModel):
    """Everything ``verify`` found in one file. Validated, frozen, JSON-serialisable."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    format: str = Field(description="MIME type detected from the content.")
    c2pa: C2paResult
    trust: str = Field(description="One line for people, e.g. 'signed, signer not on your trust list'.")
    watermarks: list[WatermarkHit] = Field(default_factory=list)
    metadata: MetadataFacts = Field(default_factory=MetadataFacts)
    reasons: list[str] = Field(default_factory=list, description="declared_ai_generated, watermark_detected, ...")
    signing_record: dict[str, str] | None = Field(
        default=None,
        description="Our signing record named by a veracity_v1 watermark, from this installation's database "
        "(works even when the C2PA manifest was stripped).",
    )

    @property
    def watermarks_found(self) -> list[str]:
        return [w.name for w in self.watermarks if w.found]

    @property
    def digital_source_type(self) -> str | None:
        if self.c2pa.manifest is not None and self.c2pa.manifest.digital_source_type:
            return self.c2pa.manifest.digital_source_type
        return self.metadata.digital_source_type


def verify_file(
    path: Path,
    settings: AnalysisSettings,
    *,
    sidecar: Path | None = None,
    fragments: list[Path] | None = None,
    watermarks: bool = True,
    frames: Sequence[npt.NDArray[np.uint8]] | None = None,
) -> ProvenanceResult:
    """Check one file. ``sidecar``: a detached ``.c2pa`` manifest store; ``fragments``: media
    segments that belong to a fragmented-MP4 init segment; ``frames``: RGB frames of a video that
    the caller already decoded (analyze), read for the watermark instead of decoding again."""
    if not path.is_file():
        raise SourceNotFound("no such file", path=str(path))
    if path.stat().st_size == 0:
        raise CorruptMedia("empty file (0 bytes)", path=str(path))
    mime = sniff(path)
    if mime is None:
        raise UnsupportedMedia("not a media format Veracity recognises", path=str(path))
    with path.open("rb") as fh:
        head = fh.read(12)
    if head[4:8] in (b"styp", b"moof") and not fragments:
        raise UnsupportedMedia("a media fragment: verify its init segment with --fragment", path=str(path))
    cred = read_credentials(path, settings, mime=mime, sidecar=sidecar, fragments=fragments)
    hits: list[WatermarkHit] = []
    meta = MetadataFacts()
    if mime in _STILL:
        meta = read_metadata(path, max_pixels=settings.limits.max_pixels)
        if watermarks:
            rgb = load_rgb(path)
            if rgb is not None:
                hits = detect_all(rgb)
    elif mime in _VIDEO and watermarks:
        det = _video_mark(path, frames)
        if det is not None:
            hits = [vwm_hit(det)]
    reasons: list[str] = []
    if cred.declares_ai:
        reasons.append(DECLARED_AI)
    if any(w.found and w.declares_ai for w in hits):
        reasons.append(WATERMARK)
    if cred.validation_state == "Invalid":
        reasons.append(CREDENTIAL_INVALID)
    if meta.declares_ai:
        reasons.append(METADATA_AI)
    ours = next((w for w in hits if w.name == "veracity_v1" and w.found and w.payload), None)
    record = _signing_record(ours.payload, settings) if ours is not None and ours.payload else None
    return ProvenanceResult(
        signing_record=record,
        name=path.name,
        format=mime,
        c2pa=cred,
        trust=trust_message(cred),
        watermarks=hits,
        metadata=meta,
        reasons=reasons,
    )


def _video_mark(path: Path, frames: Sequence[npt.NDArray[np.uint8]] | None) -> vwm.Detection | None:
    if not frames:
        from veracity.provenance.videowm import detect_video

        return detect_video(path)
    # Every frame carries the same mark: one frame from the middle keeps analyze fast.
    return vwm.detect(frames[len(frames) // 2])


def _signing_record(signing_id: str, settings: AnalysisSettings) -> dict[str, str] | None:
    """Look the watermark's id up in the local registry, if there is one (never creates it)."""
    if settings.database_url is None and not (settings.data_dir / "veracity.db").is_file():
        return None
    from sqlalchemy.exc import SQLAlchemyError

    from veracity.provenance.consent import ConsentStore

    try:
        store = ConsentStore.open(settings)
        try:
            rec = store.get_signing(signing_id)
        finally:
            store.close()
    except SQLAlchemyError:
        return None  # an unreachable registry must not turn a verification into an error
    if rec is None:
        return None
    return {
        "signing_id": rec.id,
        "consent_id": rec.consent_id,
        "scope": rec.scope,
        "generator": rec.generator,
        "output_name": rec.output_name,
        "output_sha256": rec.output_sha256,
        "signed_at": rec.created_at.isoformat(),
    }
