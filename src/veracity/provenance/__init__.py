"""Provenance: C2PA content credentials, invisible watermarks, generator metadata, signing.

Stable API for the CLI and the service::

    verify_file(path: Path, settings: Settings) -> ProvenanceResult
    sign_file(src: Path, out: Path, *, consent_id: str, generator: str, settings: Settings) -> SignResult

Submodules import their heavy parts (the C2PA native library, the database) inside functions.
"""

from __future__ import annotations

from veracity.provenance.sign import SignResult, sign_file
from veracity.provenance.verify import ProvenanceResult, verify_file

__all__ = ["ProvenanceResult", "SignResult", "sign_file", "verify_file"]
