"""The composition root: the API app, the dispatcher the settings ask for, the web UI on top.

Everything below is wired here and nowhere else: :mod:`veracity.service` builds the API and
knows only its embedded pool; the Celery dispatcher and the web UI (:mod:`veracity.web`) are
chosen and mounted here, so neither lower floor imports the other. ``veracity serve`` runs
:func:`serve`.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import RedirectResponse

from veracity.config import Settings
from veracity.service import app as api
from veracity.service.context import DispatcherFactory, ServiceContext, embedded_pool
from veracity.service.dispatch import Dispatcher

__all__ = ["create_app", "dispatcher_for", "mount_ui", "serve"]


def dispatcher_for(settings: Settings) -> DispatcherFactory:
    """Celery messages when a broker is configured (scale-out), else the in-process pool."""
    if not settings.broker_url:
        return embedded_pool

    def celery(ctx: ServiceContext) -> Dispatcher:
        from veracity.service.celery_dispatch import CeleryDispatcher

        return CeleryDispatcher(ctx.settings, ctx.sessions)

    return celery


def _to_ui() -> RedirectResponse:
    return RedirectResponse("/ui/", status_code=307)


def mount_ui(app: FastAPI) -> FastAPI:
    """The web UI (cookie sessions, pages under ``/ui``) on the API app; ``/`` leads there."""
    from veracity.web.service_backend import web_router

    app.include_router(web_router())
    app.add_api_route("/", _to_ui, methods=["GET"], include_in_schema=False)
    return app


def create_app(
    settings: Settings | None = None, *, start_workers: bool = True, context: ServiceContext | None = None
) -> FastAPI:
    """The whole service: API, the dispatcher for these settings, and the web UI."""
    settings = settings or Settings.from_env()
    app = api.create_app(settings, start_workers=start_workers, context=context, dispatcher=dispatcher_for(settings))
    return mount_ui(app)


def serve(settings: Settings, host: str, port: int, workers: int | None, log_level: str) -> None:
    import uvicorn

    from veracity.service.webhooks import resolve_secret

    resolve_secret(settings)  # refuse a missing/default secret outside development before binding a port
    if workers is not None:
        settings = settings.with_(workers=workers)
    from veracity.service.guard import guarded_protocol

    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level=log_level,
        access_log=log_level == "debug",
        http=guarded_protocol(settings),  # header and body deadlines (slowloris)
        h11_max_incomplete_event_size=64 * 1024,  # request line + headers
    )
