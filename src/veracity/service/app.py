"""The API's app factory: ``create_app(settings)``.

The API routers are included in one place (:func:`include_routers`). Every error leaves as
``{"error": {"code", "message"}}``. This factory knows neither the web UI nor the scaled-out
dispatcher: the composition root (:mod:`veracity.server`) passes the dispatcher in and mounts
the UI on the app it gets back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic.json_schema import models_json_schema
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from veracity import __version__
from veracity.config import Settings
from veracity.errors import VeracityError
from veracity.service.context import DispatcherFactory, ServiceContext, open_context
from veracity.service.errors import RateLimited, http_status, public_message
from veracity.service.metrics import Metrics

log = logging.getLogger("veracity.service")

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "media_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def include_routers(app: FastAPI) -> None:
    from veracity.service.routes import admin, jobs, ops, provenance

    app.include_router(ops.router)
    app.include_router(jobs.router)
    app.include_router(admin.router)
    app.include_router(provenance.router)


class MetricsMiddleware:
    """Count and time every request by its route template (not the raw path: bounded labels)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            metrics: Metrics | None = getattr(scope["app"].state, "metrics", None)
            if metrics is not None:
                metrics.requests.labels(scope["method"], template, str(status[0])).inc()
                metrics.latency.labels(scope["method"], template).observe(time.perf_counter() - started)


def _install_handlers(app: FastAPI) -> None:
    @app.exception_handler(VeracityError)
    async def _veracity(request: Request, exc: VeracityError) -> JSONResponse:
        headers = {"Retry-After": str(max(1, round(exc.retry_after)))} if isinstance(exc, RateLimited) else None
        if exc.code == "unauthorized":
            headers = {"WWW-Authenticate": "Bearer"}
        status = http_status(exc)
        if status >= 500:
            log.error("request failed: %s", exc)
        return error_response(status, exc.code, public_message(exc.message), headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errs = exc.errors()
        first = errs[0] if errs else {}
        where = ".".join(str(p) for p in first.get("loc", ())) or "request"
        return error_response(422, "validation_error", f"{where}: {first.get('msg', 'invalid')}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, public_message(str(exc.detail)), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", "internal error; see the server log")


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
    from veracity.service.routes import jobs, provenance

    body_models = [*jobs.BODY_MODELS, *provenance.BODY_MODELS]
    _, defs = models_json_schema([(m, "validation") for m in body_models], ref_template="#/components/schemas/{model}")
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for name, body in defs.get("$defs", {}).items():
        components.setdefault(name, body)
    app.openapi_schema = schema
    return schema


def _install_docs(app: FastAPI) -> None:
    """``/docs`` with Swagger UI from our own package (swagger-ui-dist 5, Apache-2.0), so the API
    documentation works offline and the page makes no third-party request."""
    from pathlib import Path

    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles

    static = Path(__file__).parent / "static" / "swagger"
    app.mount("/static/swagger", StaticFiles(directory=static), name="swagger")

    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Veracity API",
            swagger_js_url="/static/swagger/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger/swagger-ui.css",
            swagger_favicon_url="/static/swagger/favicon-32x32.png",
        )

    app.add_api_route("/docs", docs, methods=["GET"], include_in_schema=False)


def create_app(
    settings: Settings | None = None,
    *,
    start_workers: bool = True,
    context: ServiceContext | None = None,
    dispatcher: DispatcherFactory | None = None,
) -> FastAPI:
    """Build the API app. The database is opened (and migrated) and ``dispatcher(ctx)`` (default:
    the embedded pool) starts in the lifespan."""
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        ctx = context or open_context(settings)
        ctx.start(workers=start_workers, dispatcher=dispatcher)
        app.state.ctx = ctx
        app.state.metrics = Metrics(ctx.read_sessions, ctx.queue_depth)
        try:
            yield
        finally:
            ctx.stop()

    app = FastAPI(
        title="Veracity",
        version=__version__,
        description="Offline deepfake forensics and media provenance. Authenticate with "
        '`Authorization: Bearer <API key>`; errors are `{"error": {"code", "message"}}`.',
        lifespan=lifespan,
        docs_url=None,  # FastAPI's default pages load Swagger UI / ReDoc from a CDN: served locally below
        redoc_url=None,
    )
    _install_docs(app)
    app.add_middleware(MetricsMiddleware)
    _install_handlers(app)
    include_routers(app)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app
