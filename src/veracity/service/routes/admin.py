"""Administration: API keys and the audit log (role admin)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from veracity.service import audit, auth
from veracity.service.deps import AuditReader, ContextDep, KeyAdmin
from veracity.service.errors import Conflict
from veracity.service.models import ApiKey
from veracity.service.routes.common import errors
from veracity.service.schemas import AuditProblemPublic, AuditVerifyPublic, KeyCreate, KeyCreated, KeyPublic

router = APIRouter(prefix="/api/v1", tags=["admin"])


def key_public(row: ApiKey) -> KeyPublic:
    return KeyPublic(key_id=row.id, name=row.name, role=row.role, created_at=row.created_at, revoked_at=row.revoked_at)


@router.get(
    "/keys",
    operation_id="listKeys",
    summary="List API keys",
    response_model=list[KeyPublic],
    responses=errors(401, 403, 429),
)
def list_keys(ctx: ContextDep, principal: KeyAdmin) -> list[KeyPublic]:
    with ctx.tx() as s:
        return [key_public(k) for k in auth.list_keys(s)]


@router.post(
    "/keys",
    operation_id="createKey",
    summary="Create an API key (the secret is shown once)",
    status_code=201,
    response_model=KeyCreated,
    responses=errors(400, 401, 403, 422, 429),
)
def create_key(ctx: ContextDep, principal: KeyAdmin, body: KeyCreate) -> KeyCreated:
    with ctx.tx() as s:
        row, secret = auth.create_key(s, role=body.role, name=body.name, actor=principal.actor)
        return KeyCreated(**key_public(row).model_dump(), api_key=secret)


@router.delete(
    "/keys/{key_id}",
    operation_id="revokeKey",
    summary="Revoke an API key",
    response_model=KeyPublic,
    responses=errors(401, 403, 404, 409, 422, 429),
)
def revoke_key(ctx: ContextDep, principal: KeyAdmin, key_id: str) -> KeyPublic:
    if key_id == principal.key_id:
        raise Conflict("a key cannot revoke itself; use another admin key or the CLI")
    with ctx.tx() as s:
        return key_public(auth.revoke_key(s, key_id, actor=principal.actor))


@router.get(
    "/audit/verify",
    operation_id="verifyAudit",
    summary="Check the audit log's hash chain",
    response_model=AuditVerifyPublic,
    responses=errors(401, 403, 422, 429),
)
def verify_audit(
    ctx: ContextDep,
    principal: AuditReader,
    expect_head: Annotated[str | None, Query(max_length=64, pattern=r"^[0-9a-f]{64}$")] = None,
) -> AuditVerifyPublic:
    with ctx.tx() as s:
        v = audit.verify(s, expect_head=expect_head)
    return AuditVerifyPublic(
        ok=v.ok,
        entries=v.entries,
        head_seq=v.head_seq,
        head_hash=v.head_hash,
        problems=[AuditProblemPublic(seq=p.seq, kind=p.kind, message=p.message) for p in v.problems],
    )
