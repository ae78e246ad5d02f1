"""FastAPI dependencies as ``Annotated`` aliases: context, caller, permission checks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from veracity.service.auth import Permission, Principal, authenticate
from veracity.service.context import ServiceContext
from veracity.service.errors import Forbidden, Unauthorized

bearer = HTTPBearer(auto_error=False, description="An API key: `veracity apikey create --role analyst`.")


def get_context(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


ContextDep = Annotated[ServiceContext, Depends(get_context)]


def get_principal(
    request: Request,
    ctx: ContextDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("missing API key: send Authorization: Bearer <key>")
    with ctx.tx() as session:
        principal = authenticate(session, credentials.credentials)
    ctx.limiter.check(principal.key_id)
    request.state.principal = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require(permission: Permission) -> Callable[[Principal], Principal]:
    def check(principal: PrincipalDep) -> Principal:
        if not principal.can(permission):
            raise Forbidden(f"role {principal.role!r} may not do this ({permission})")
        return principal

    check.__name__ = f"require_{permission.replace(':', '_')}"
    return check


Analyst = Annotated[Principal, Depends(require("jobs:create"))]
Reviewer = Annotated[Principal, Depends(require("jobs:review"))]
KeyAdmin = Annotated[Principal, Depends(require("keys:manage"))]
AuditReader = Annotated[Principal, Depends(require("audit:read"))]
MetricsReader = Annotated[Principal, Depends(require("metrics:read"))]
Signer = Annotated[Principal, Depends(require("sign"))]
