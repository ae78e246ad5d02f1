"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import text

from veracity.service.db import current_revision, head_revision
from veracity.service.deps import ContextDep, MetricsReader
from veracity.service.metrics import CONTENT_TYPE
from veracity.service.routes.common import errors
from veracity.service.schemas import Health, Readiness

router = APIRouter(tags=["operations"])


@router.get("/healthz", operation_id="healthz", summary="The process is up", response_model=Health)
def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    operation_id="readyz",
    summary="Database, broker/workers and models are ready",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Not ready"}},
)
def readyz(ctx: ContextDep) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        with ctx.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        rev = current_revision(ctx.engine)
        checks["database"] = "ok" if rev == head_revision() else f"schema at {rev}, not {head_revision()}"
    except Exception as exc:
        checks["database"] = f"unreachable: {type(exc).__name__}"
    checks["workers" if ctx.dispatcher is None or ctx.dispatcher.kind == "embedded" else "broker"] = (
        ctx.dispatcher.check() if ctx.dispatcher is not None else "not started"
    )
    if ctx.extras.get("models_ok"):  # cards verified once (checksums): no re-hash per probe
        checks["models"] = "ok"
    else:
        try:
            from veracity.detectors import registry
            from veracity.models.cards import load_card

            for spec in registry.SPECS:
                for card in spec.cards():
                    load_card(card)
            checks["models"] = "ok"
            ctx.extras["models_ok"] = True
        except Exception as exc:
            checks["models"] = f"unavailable: {exc}"
    ready = all(v == "ok" for v in checks.values())
    body = Readiness(ready=ready, checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@router.get(
    "/metrics",
    operation_id="metrics",
    summary="Prometheus metrics (role admin)",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}}, **errors(401, 403, 429)},
)
def metrics(request: Request, principal: MetricsReader) -> Response:
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE)
