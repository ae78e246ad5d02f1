"""The report's ``provenance`` block from a :class:`ProvenanceResult` (used by ``analyze``): part of
building the report, so it sits with the report contract it fills, above provenance/."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from veracity.config import AnalysisSettings
from veracity.errors import VeracityError
from veracity.provenance.verify import ProvenanceResult, verify_file
from veracity.report.model import Provenance

_FACTS = ("generator", "software", "creator_tool", "camera_make", "camera_model", "captured_at")


def to_block(result: ProvenanceResult) -> Provenance:
    cred = result.c2pa
    m = cred.manifest
    facts = result.metadata.model_dump()
    return Provenance(
        credential_present=cred.present,
        validation_state=cred.validation_state,
        status_codes=list(dict.fromkeys(s.code for s in cred.status if s.kind == "failure")),
        digital_source_type=result.digital_source_type,
        watermarks=result.watermarks_found,
        checked=True,
        note=None if cred.supported else "format not supported by the C2PA reader",
        trust=result.trust,
        signer=m.signer if m else None,
        issuer=m.issuer if m else None,
        claim_generator=m.claim_generator if m else None,
        declares_ai=any(r in result.reasons for r in ("declared_ai_generated", "watermark_detected")),
        metadata={k: str(facts[k]) for k in _FACTS if facts.get(k)},
    )


def check(
    path: Path, settings: AnalysisSettings, frames: Sequence[npt.NDArray[np.uint8]] | None = None
) -> tuple[Provenance, list[str]]:
    """Provenance block and verdict reasons; a provenance failure never fails the analysis.
    ``frames``: video frames analyze already decoded (read for the watermark)."""
    try:
        result = verify_file(path, settings, frames=frames)
    except VeracityError as exc:
        return Provenance(checked=False, note=f"provenance not checked: {exc.message}"), []
    return to_block(result), list(result.reasons)
