"""Read and validate C2PA content credentials with the c2pa-python SDK, offline.

No manifest is a normal result (``present=False``). The SDK's verdict is kept as it is:
``Invalid`` / ``Valid`` / ``Trusted``; without trust anchors a good signature is ``Valid`` with
``signingCredential.untrusted``, which :func:`trust_message` phrases as "signed, signer not on your
trust list" rather than "invalid". Remote manifests and OCSP are never fetched.
The SDK is imported inside functions: it loads a native library, and imports must stay cheap.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from veracity.config import AnalysisSettings
from veracity.errors import ConfigError, CorruptMedia, ProvenanceError

ValidationState = Literal["Invalid", "Valid", "Trusted"]
IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
# IPTC digital source types that declare generative-AI involvement (trained models).
AI_SOURCE_TYPES = frozenset({"trainedAlgorithmicMedia", "compositeWithTrainedAlgorithmicMedia"})
CONSENT_ASSERTION = "org.veracity.consent"
UNTRUSTED = "signingCredential.untrusted"
StatusKind = Literal["success", "informational", "failure"]
# Success codes are many and say little; failures and informational notes are reported.
_REPORTED: tuple[StatusKind, ...] = ("failure", "informational")

# Short explanations for codes the SDK reports without one (C2PA 2.x spec, section 15).
_EXPLAIN = {
    UNTRUSTED: "the signing certificate does not chain to an anchor on your trust list",
    "signingCredential.trusted": "the signing certificate chains to a trusted anchor",
    "signingCredential.ocsp.skipped": "certificate revocation (OCSP) was not checked: offline",
    "claimSignature.mismatch": "the claim signature does not verify: the manifest was altered or forged",
    "claimSignature.validated": "the claim signature is valid",
    "assertion.dataHash.mismatch": "the asset's bytes changed after signing",
    "assertion.bmffHash.mismatch": "the video/audio bytes changed after signing",
    "assertion.boxesHash.mismatch": "the asset's boxes changed after signing",
    "assertion.hashedURI.mismatch": "an assertion changed after signing",
    "manifest.inaccessible": "the manifest is stored remotely and was not fetched (Veracity works offline)",
    "algorithm.unsupported": "the manifest uses a signing or hash algorithm that is not supported",
    "general.error": "the manifest could not be read",
    "timeStamp.untrusted": "the time-stamp authority is not on the trust list",
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StatusCode(_Model):
    code: str
    explanation: str = ""
    kind: StatusKind = "failure"
    scope: str = Field(default="active", description="'active' or 'ingredient: <title>'.")
    url: str | None = None


class Action(_Model):
    action: str
    digital_source_type: str | None = None
    software_agent: str | None = None
    when: str | None = None


class Ingredient(_Model):
    title: str | None = None
    format: str | None = None
    relationship: str | None = None
    manifest: str | None = Field(default=None, description="Label of the ingredient's own manifest, if any.")
    claim_generator: str | None = None
    signer: str | None = None
    validation_codes: list[str] = Field(default_factory=list, description="Codes recorded when it was ingested.")
    ingredients: list[Ingredient] = Field(default_factory=list)


class ManifestSummary(_Model):
    label: str
    claim_generator: str | None = None
    title: str | None = None
    signer: str | None = Field(default=None, description="Common name of the signing certificate.")
    issuer: str | None = None
    signing_time: str | None = None
    alg: str | None = None
    actions: list[Action] = Field(default_factory=list)
    digital_source_type: str | None = Field(default=None, description="IPTC digital source type (full URI).")
    assertions: list[str] = Field(default_factory=list)
    ingredients: list[Ingredient] = Field(default_factory=list)
    consent: dict[str, str] | None = None
    soft_bindings: list[dict[str, str]] = Field(default_factory=list)


class C2paResult(_Model):
    present: bool = Field(description="A manifest (embedded, sidecar or remote reference) was found.")
    supported: bool = Field(default=True, description="False when the SDK cannot read this format.")
    format: str | None = None
    validation_state: ValidationState | None = None
    status: list[StatusCode] = Field(default_factory=list)
    manifest: ManifestSummary | None = None
    remote_url: str | None = None
    error: str | None = Field(default=None, description="SDK message when a manifest was found but not readable.")

    @property
    def failure_codes(self) -> list[str]:
        return list(dict.fromkeys(s.code for s in self.status if s.kind == "failure"))

    @property
    def declares_ai(self) -> bool:
        """A cryptographically valid manifest says a trained model made (part of) this."""
        if self.validation_state not in ("Valid", "Trusted") or self.manifest is None:
            return False
        dst = self.manifest.digital_source_type or ""
        return (
            any(
                a.digital_source_type and _short(a.digital_source_type) in AI_SOURCE_TYPES
                for a in self.manifest.actions
            )
            or _short(dst) in AI_SOURCE_TYPES
        )


def _short(uri: str) -> str:
    return uri.rsplit("/", 1)[-1]


def trust_message(result: C2paResult) -> str:
    """One line for people: never call an untrusted but intact signature 'invalid'."""
    if not result.supported:
        return "no content credentials: format not supported by the C2PA reader"
    if not result.present:
        return "no content credentials"
    if result.validation_state is None:
        return f"content credentials could not be checked ({result.error or 'unreadable'})"
    ingredient_bad = sorted(
        {s.code for s in result.status if s.kind == "failure" and s.scope != "active"} - {UNTRUSTED}
    )
    note = f" (ingredient problems: {', '.join(ingredient_bad)})" if ingredient_bad else ""
    if result.validation_state == "Trusted":
        return "signed, signer on your trust list" + note
    if result.validation_state == "Valid":
        if UNTRUSTED in result.failure_codes:
            return "signed, signer not on your trust list" + note
        return "signed and intact" + note
    bad = [s.code for s in result.status if s.kind == "failure" and s.scope == "active" and s.code != UNTRUSTED]
    return "invalid: " + (", ".join(dict.fromkeys(bad)) or "see status codes")


def sdk_settings(settings: AnalysisSettings) -> dict[str, Any]:
    """c2pa-rs settings: offline, trust list from ``Settings.trust_anchors`` when given."""
    cfg: dict[str, Any] = {
        "verify": {"remote_manifest_fetch": False, "ocsp_fetch": False, "verify_trust": True},
    }
    if settings.trust_anchors is not None:
        try:
            pem = settings.trust_anchors.read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read trust anchors: {exc.strerror}", path=str(settings.trust_anchors)) from exc
        if "BEGIN CERTIFICATE" not in pem:
            raise ConfigError("trust anchors file holds no PEM certificate", path=str(settings.trust_anchors))
        cfg["trust"] = {"trust_anchors": pem}
    return cfg


def make_context(settings: AnalysisSettings) -> Any:
    import c2pa as sdk

    return sdk.Context(settings=sdk.Settings.from_dict(sdk_settings(settings)))


def read_credentials(
    path: Path,
    settings: AnalysisSettings,
    *,
    mime: str | None,
    sidecar: Path | None = None,
    fragments: list[Path] | None = None,
) -> C2paResult:
    """Validate the C2PA manifest of ``path`` (format ``mime``, sniffed by the caller)."""
    import c2pa as sdk

    ctx = make_context(settings)
    fmt = mime or ""
    try:
        with path.open("rb") as fh:
            manifest_data = sidecar.read_bytes() if sidecar is not None else None
            reader = sdk.Reader.try_create(fmt, fh, manifest_data, ctx)
            if reader is None:
                return C2paResult(present=False, format=mime)
            with reader:
                for frag in fragments or []:
                    with frag.open("rb") as fr:
                        fh.seek(0)
                        reader.with_fragment(fmt, fh, fr)
                data = json.loads(reader.json())
    except sdk.C2paError as exc:
        return _from_error(exc, path, mime)
    return _from_store(data, mime)


def _from_error(exc: Exception, path: Path, mime: str | None) -> C2paResult:
    message = str(exc)
    low = message.lower()
    if "manifestnotfound" in low or "no jumbf" in low:
        return C2paResult(present=False, format=mime)
    if "type is unsupported" in low or low.startswith("notsupported"):
        return C2paResult(present=False, supported=False, format=mime)
    if "could not be parsed" in low:
        raise CorruptMedia(f"container could not be parsed: {message.rsplit('parsed:', 1)[-1].strip()}", path=str(path))
    if "remote" in low and "url" in low:
        url = message.rsplit("url", 1)[-1].strip()
        return C2paResult(
            present=True,
            format=mime,
            remote_url=url,
            status=[
                StatusCode(code="manifest.inaccessible", explanation=f"{_EXPLAIN['manifest.inaccessible']}: {url}")
            ],
            error=message,
        )
    code = "algorithm.unsupported" if "unknown algorithm" in low else "general.error"
    return C2paResult(
        present=True,
        format=mime,
        validation_state="Invalid",
        status=[StatusCode(code=code, explanation=f"{_EXPLAIN[code]} ({message})")],
        error=message,
    )


def _status_list(entries: Any, kind: StatusKind, scope: str) -> list[StatusCode]:
    out = []
    for e in entries or []:
        if isinstance(e, Mapping) and "code" in e:
            code = str(e["code"])
            out.append(
                StatusCode(
                    code=code,
                    explanation=str(e.get("explanation") or _EXPLAIN.get(code, "")),
                    kind=kind,
                    scope=scope,
                    url=e.get("url"),
                )
            )
    return out


def _from_store(data: Mapping[str, Any], mime: str | None) -> C2paResult:
    state = data.get("validation_state")
    if state not in ("Invalid", "Valid", "Trusted"):
        raise ProvenanceError(f"unexpected validation state from the C2PA SDK: {state!r}")
    results = data.get("validation_results") or {}
    active = results.get("activeManifest") or {}
    status: list[StatusCode] = []
    for kind in _REPORTED:
        status += _status_list(active.get(kind), kind, "active")
    for delta in results.get("ingredientDeltas") or []:
        scope = f"ingredient: {delta.get('ingredientAssertionURI', '?')}"
        vd = delta.get("validationDeltas") or {}
        for kind in _REPORTED:
            status += _status_list(vd.get(kind), kind, scope)
    if not results:  # older stores: a flat validation_status list (failures only)
        status = _status_list(data.get("validation_status"), "failure", "active")
    manifests = data.get("manifests") or {}
    label = data.get("active_manifest")
    summary = _summarise(str(label), manifests, depth=0) if label in manifests else None
    # Codes each ingredient recorded when it was ingested (e.g. an ingredient with a bad signature).
    if summary is not None:
        status += _ingredient_codes(summary.ingredients)
    return C2paResult(present=True, format=mime, validation_state=state, status=status, manifest=summary)


def _ingredient_codes(ingredients: list[Ingredient]) -> list[StatusCode]:
    out = []
    for ing in ingredients:
        for code in ing.validation_codes:
            if code != UNTRUSTED:
                out.append(
                    StatusCode(
                        code=code,
                        explanation=_EXPLAIN.get(code, "recorded when this ingredient was added"),
                        kind="failure",
                        scope=f"ingredient: {ing.title or '?'}",
                    )
                )
        out += _ingredient_codes(ing.ingredients)
    return out


def _agent(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and value.get("name"):
        return " ".join(str(value[k]) for k in ("name", "version") if value.get(k))
    return None


def _summarise(label: str, manifests: Mapping[str, Any], depth: int) -> ManifestSummary:
    m = manifests[label]
    actions: list[Action] = []
    consent: dict[str, str] | None = None
    soft: list[dict[str, str]] = []
    labels: list[str] = []
    for a in m.get("assertions") or []:
        alabel = str(a.get("label", ""))
        labels.append(alabel)
        body = a.get("data") or {}
        if alabel.startswith("c2pa.actions"):
            for act in body.get("actions") or []:
                actions.append(
                    Action(
                        action=str(act.get("action", "")),
                        digital_source_type=(str(act["digitalSourceType"]).strip() or None)
                        if act.get("digitalSourceType")
                        else None,
                        software_agent=_agent(act.get("softwareAgent")),
                        when=act.get("when"),
                    )
                )
        elif alabel == CONSENT_ASSERTION and isinstance(body, Mapping):
            consent = {str(k): str(v) for k, v in body.items()}
        elif alabel.startswith("c2pa.soft-binding") and isinstance(body, Mapping):
            for block in body.get("blocks") or []:
                soft.append({"alg": str(body.get("alg", "")), "value": str(block.get("value", ""))})
    dst = next((a.digital_source_type for a in actions if a.action == "c2pa.created" and a.digital_source_type), None)
    dst = dst or next((a.digital_source_type for a in actions if a.digital_source_type), None)
    sig = m.get("signature_info") or {}
    gen = m.get("claim_generator")
    if not gen and m.get("claim_generator_info"):
        gen = _agent(m["claim_generator_info"][0])
    return ManifestSummary(
        label=label,
        claim_generator=gen,
        title=m.get("title"),
        signer=sig.get("common_name"),
        issuer=sig.get("issuer"),
        signing_time=sig.get("time"),
        alg=sig.get("alg"),
        actions=actions,
        digital_source_type=dst,
        assertions=labels,
        ingredients=[_ingredient(i, manifests, depth) for i in m.get("ingredients") or []],
        consent=consent,
        soft_bindings=soft,
    )


def _ingredient(ing: Mapping[str, Any], manifests: Mapping[str, Any], depth: int) -> Ingredient:
    label = ing.get("active_manifest")
    child = _summarise(str(label), manifests, depth + 1) if label in manifests and depth < 16 else None
    return Ingredient(
        title=ing.get("title"),
        format=ing.get("format"),
        relationship=ing.get("relationship"),
        manifest=label,
        claim_generator=child.claim_generator if child else None,
        signer=child.signer if child else None,
        validation_codes=[str(s.get("code")) for s in ing.get("validation_status") or [] if s.get("code")],
        ingredients=child.ingredients if child else [],
    )


def read_bytes(data: bytes, mime: str, settings: AnalysisSettings) -> C2paResult:
    """Validate an in-memory asset (used right after signing, before anything is written)."""
    import c2pa as sdk

    try:
        reader = sdk.Reader.try_create(mime, io.BytesIO(data), None, make_context(settings))
        if reader is None:
            return C2paResult(present=False, format=mime)
        with reader:
            return _from_store(json.loads(reader.json()), mime)
    except sdk.C2paError as exc:
        return _from_error(exc, Path("<memory>"), mime)
