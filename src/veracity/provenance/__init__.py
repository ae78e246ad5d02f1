"""Provenance: C2PA content credentials, invisible watermarks, generator metadata, signing.

Stable API for the CLI and the service::

    verify_file(path: Path, settings: Settings) -> ProvenanceResult
    sign_file(src: Path, out: Path, *, consent_id: str, generator: str, settings: Settings) -> SignResult

Names are resolved lazily (PEP 562) so ``import veracity.provenance.x`` does not pull in the
database layer or the C2PA native library; submodules import those inside functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from veracity.provenance.sign import SignResult, sign_file
    from veracity.provenance.verify import ProvenanceResult, verify_file

__all__ = ["ProvenanceResult", "SignResult", "sign_file", "verify_file"]


def __getattr__(name: str) -> Any:
    if name in ("SignResult", "sign_file"):
        from veracity.provenance import sign

        return getattr(sign, name)
    if name in ("ProvenanceResult", "verify_file"):
        from veracity.provenance import verify

        return getattr(verify, name)
    raise AttributeError(f"module 'veracity.provenance' has no attribute {name!r}")
