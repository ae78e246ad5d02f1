"""Provenance endpoints: ``POST /api/v1/verify`` (read credentials, watermarks, metadata) and
``POST /api/v1/sign`` (watermark + signed C2PA manifest for consented synthetic media).

Both run synchronously: verifying one file takes well under a second, and signing hands the
signed file straight back, so there is no job to poll. Media arrives as a streamed upload (or,
for verify, a URL fetched under the same SSRF rules as jobs) and is deleted before the response
ends: these endpoints keep nothing but the audit entry and, for sign, the signing record.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from veracity.errors import VeracityError
from veracity.provenance import ProvenanceResult
from veracity.service import audit, fetch
from veracity.service.context import ServiceContext
from veracity.service.deps import Analyst, ContextDep, Signer
from veracity.service.errors import BadRequest
from veracity.service.routes.common import body_kind, errors, media_body, read_json_body
from veracity.service.schemas import VerifyCreate
from veracity.service.uploads import UploadForm, read_multipart, sniff

router = APIRouter(prefix="/api/v1", tags=["provenance"])

_SUFFIX = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "video/mp4": ".mp4",
    "video/quicktime": ".mov",
    "audio/wav": ".wav",
    "audio/x-wav": ".wav",
}


BODY_MODELS: list[type[BaseModel]] = [VerifyCreate]


async def _one_upload(ctx: ServiceContext, request: Request) -> tuple[Path, str, UploadForm]:
    """The single uploaded file, sniffed as media; the caller deletes it."""
    form = await read_multipart(request, ctx.settings, ctx.storage)
    if len(form.files) != 1:
        form.discard()
        raise BadRequest(f"send exactly one file part, got {len(form.files)}")
    media = (await run_in_threadpool(sniff, form, ctx.settings))[0]
    return ctx.storage.path(media.name), media.original_name, form


def _fetch(ctx: ServiceContext, url: str) -> Path:
    with ctx.storage.writer(ctx.settings.limits.max_bytes) as w:
        fetch.download(url, w.write, ctx.settings, max_bytes=ctx.settings.limits.max_bytes)
    return w.path


def _verify(ctx: ServiceContext, principal: Any, path: Path, name: str, via: str) -> ProvenanceResult:
    """Verify, audit (what was checked and what was found, or why it failed), delete the file."""
    from veracity.provenance import verify_file

    try:
        try:
            result = verify_file(path, ctx.settings)
        except VeracityError as exc:
            exc.path = None  # our storage path, not the client's business
            with ctx.tx() as s:
                audit.append(
                    s,
                    actor=principal.actor,
                    action="verify.failed",
                    obj=f"file:{name[:150]}",
                    detail={"via": via, "code": exc.code},
                )
            raise
        with ctx.tx() as s:
            audit.append(
                s,
                actor=principal.actor,
                action="verify",
                obj=f"file:{name[:150]}",
                detail={
                    "via": via,
                    "format": result.format,
                    "validation_state": result.c2pa.validation_state,
                    "reasons": result.reasons,
                },
            )
        return result
    finally:
        path.unlink(missing_ok=True)


@router.post(
    "/verify",
    operation_id="verifyProvenance",
    summary="Read and validate content credentials, watermarks and generator metadata",
    response_model=ProvenanceResult,
    responses=errors(400, 401, 403, 413, 415, 422, 429),
    openapi_extra=media_body("VerifyCreate", job_fields=False),
)
async def verify(request: Request, ctx: ContextDep, principal: Analyst) -> Any:
    if body_kind(request) == "json":
        body = await read_json_body(request, VerifyCreate)
        path = await run_in_threadpool(_fetch, ctx, body.url)
        name, via = body.url.rsplit("/", 1)[-1].split("?", 1)[0][:200] or "remote", "url"
    else:
        path, name, _ = await _one_upload(ctx, request)
        via = "upload"
    result = await run_in_threadpool(_verify, ctx, principal, path, name, via)
    return result.model_copy(update={"name": name})


@router.post(
    "/sign",
    operation_id="signMedia",
    summary="Watermark and sign consented synthetic media; answers with the signed file",
    response_class=FileResponse,
    responses={
        200: {"description": "The signed file; headers X-Veracity-Signing-Id and X-Veracity-Consent-Id."},
        **errors(400, 401, 403, 413, 415, 422, 429),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file", "consent_id"],
                        "properties": {
                            "file": {"type": "string", "format": "binary"},
                            "consent_id": {"type": "string"},
                            "generator": {"type": "string"},
                            "scope": {"type": "string"},
                        },
                    }
                }
            },
        }
    },
)
async def sign(request: Request, ctx: ContextDep, principal: Signer) -> Any:
    from veracity.provenance import sign_file
    from veracity.provenance.sniff import sniff as sniff_format

    if body_kind(request) != "multipart":
        raise BadRequest("sign takes a multipart/form-data upload with a file and a consent_id")
    src, name, form = await _one_upload(ctx, request)
    consent_id = form.fields.get("consent_id", "").strip()
    generator = form.fields.get("generator", "").strip() or "unspecified generator"
    scope = form.fields.get("scope", "").strip() or None
    try:
        if not consent_id:
            raise BadRequest("consent_id is required: sign only media whose subject consented")
        mime = await run_in_threadpool(sniff_format, src)
        out = ctx.storage.path(src.name + "-signed" + _SUFFIX.get(mime or "", ""))

        def run() -> Any:
            try:
                result = sign_file(
                    src, out, consent_id=consent_id, generator=generator, settings=ctx.settings, scope=scope
                )
            except VeracityError as exc:
                with ctx.tx() as s:
                    audit.append(
                        s,
                        actor=principal.actor,
                        action="sign.refused",
                        obj=f"consent:{consent_id}",
                        detail={"code": exc.code, "file": name},
                    )
                raise
            with ctx.tx() as s:
                audit.append(
                    s,
                    actor=principal.actor,
                    action="sign",
                    obj=f"signing:{result.signing_id}",
                    detail={"consent": consent_id, "scope": result.scope, "sha256": result.sha256, "file": name},
                )
            return result

        result = await run_in_threadpool(run)
    finally:
        src.unlink(missing_ok=True)
    stem = Path(name).stem or "signed"
    return FileResponse(
        result.out,
        media_type=result.format,
        filename=f"{stem}-signed{result.out.suffix}",
        headers={
            "X-Veracity-Signing-Id": result.signing_id,
            "X-Veracity-Consent-Id": result.consent_id,
            "X-Veracity-Validation-State": str(result.validation_state),
            "X-Veracity-Watermarked": "true" if result.watermarked else "false",
        },
        background=BackgroundTask(result.out.unlink, missing_ok=True),
    )
