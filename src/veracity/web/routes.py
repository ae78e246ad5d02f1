"""The UI's routes, under ``/ui``: pages rendered on the server, a few JSON/image helpers.

``build_router(get_backend)`` returns an ``APIRouter`` the service's app factory includes.
Handlers check the session and CSRF, call the backend, and render; they decide nothing about
jobs, keys or reviews themselves.
"""

import inspect
import re
from collections.abc import Callable
from importlib import resources
from typing import Annotated, Any, get_args
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from veracity.errors import VeracityError
from veracity.report.html import render_html
from veracity.service.schemas import JobStatus
from veracity.web.backend import JobQuery, Principal, UiBackend, UiError, can_open
from veracity.web.security import (
    CSRF_FIELD,
    PRE_CSRF_COOKIE,
    SESSION_COOKIE,
    cookie_kwargs,
    csrf_token,
    new_pre_token,
    same_token,
    security_headers,
)
from veracity.web.templating import environment
from veracity.web.text import stage_text
from veracity.web.view import GROUND_TRUTH, result_context, review_queue_order

__all__ = ["PREFIX", "build_router"]

PREFIX = "/ui"
_STATIC_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*\.(css|js|svg|png|ico)$")
_STATIC_TYPES = {
    "css": "text/css; charset=utf-8",
    "js": "text/javascript; charset=utf-8",
    "svg": "image/svg+xml",
    "png": "image/png",
    "ico": "image/x-icon",
}
_NAV = [
    ("analyze", "Analyze"),
    ("history", "History"),
    ("review", "Review queue"),
    ("audit", "Audit log"),
    ("keys", "API keys"),
    ("consent", "Consent"),
]
_ROLES = ("analyst", "reviewer", "signer", "admin")

BackendGetter = Callable[[Request], UiBackend]


class _Redirect(Exception):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url


def _is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def _page(request: Request, template: str, who: Principal | None, status: int = 200, **ctx: Any) -> HTMLResponse:
    key = request.cookies.get(SESSION_COOKIE)
    nav = [(slug, title) for slug, title in _NAV if who is not None and can_open(who, slug)]
    html = (
        environment()
        .get_template(template)
        .render(
            request_path=request.url.path,
            who=who,
            nav=nav,
            prefix=PREFIX,
            csrf=csrf_token(key) if key and who else "",
            csrf_field=CSRF_FIELD,
            **ctx,
        )
    )
    return HTMLResponse(html, status_code=status, headers=security_headers())


def _error_page(request: Request, who: Principal | None, status: int, title: str, message: str) -> HTMLResponse:
    return _page(request, "error.html", who, status=status, title=title, message=message)


def build_router(get_backend: BackendGetter) -> APIRouter:
    """The UI router; ``get_backend(request)`` gives the service adapter for one request."""
    router = APIRouter(prefix=PREFIX, include_in_schema=False)

    def backend(request: Request) -> UiBackend:
        return get_backend(request)

    Backend = Annotated[UiBackend, Depends(backend)]  # noqa: N806 - a dependency alias, named like a type

    def principal(request: Request, b: Backend) -> Principal | None:
        key = request.cookies.get(SESSION_COOKIE)
        return b.authenticate(key) if key else None

    Who = Annotated[Principal | None, Depends(principal)]  # noqa: N806 - a dependency alias, named like a type

    def need(request: Request, who: Principal | None, page: str) -> Principal:
        if who is None:
            raise _Redirect(f"{PREFIX}/signin?next={quote(request.url.path)}")
        if not can_open(who, page):
            raise UiError(403, "forbidden", f"Your role ({who.role}) cannot open this page.")
        return who

    def check_origin(request: Request) -> None:
        origin = request.headers.get("origin")
        if origin and origin != "null" and origin.rstrip("/") != str(request.base_url).rstrip("/"):
            raise UiError(403, "csrf", "Cross-site form submission refused.")

    def check_token(request: Request, token: object) -> None:
        key = request.cookies.get(SESSION_COOKIE)
        if not key or not isinstance(token, str) or not same_token(token, csrf_token(key)):
            raise UiError(403, "csrf", "The form expired or did not come from this site; reload and try again.")

    async def form_checked(request: Request) -> dict[str, Any]:
        """A small url-encoded form, after the Origin (when sent) and the CSRF token are checked."""
        check_origin(request)
        form = await request.form()
        check_token(request, form.get(CSRF_FIELD))
        return dict(form)

    # ---------------------------------------------------------------- errors as pages

    async def run(request: Request, who: Principal | None, fn: Callable[[], Any]) -> Response:
        try:
            # Page handlers call the backend, which does blocking database work: plain functions
            # run in the thread pool; async ones (forms) hand their backend calls to it themselves.
            result = await fn() if inspect.iscoroutinefunction(fn) else await run_in_threadpool(fn)
            if not isinstance(result, Response):  # pragma: no cover - a handler bug
                raise TypeError("page handler returned no response")
            return result
        except _Redirect as r:
            return RedirectResponse(r.url, status_code=303)
        except UiError as e:
            return _error_page(request, who, e.status, "Not allowed" if e.status == 403 else "Error", e.message)
        finally:
            await request.close()  # closes a parsed form's spooled upload files

    # ---------------------------------------------------------------- static assets

    @router.get("/static/{name}")
    def static(name: str) -> Response:
        if not _STATIC_NAME.match(name):
            return Response(status_code=404)
        # The UI's own assets, then the stylesheet it shares with the HTML export (report/static).
        res = resources.files("veracity.web").joinpath("static", name)
        if not res.is_file():
            res = resources.files("veracity.report").joinpath("static", name)
        if not res.is_file():
            return Response(status_code=404)
        return Response(
            res.read_bytes(),
            media_type=_STATIC_TYPES[name.rsplit(".", 1)[1]],
            headers={"Cache-Control": "max-age=300", "X-Content-Type-Options": "nosniff"},
        )

    # ---------------------------------------------------------------- sign in / out

    @router.get("/signin")
    def signin_form(request: Request, who: Who, next: str = "") -> Response:
        token = new_pre_token()
        resp = _page(request, "signin.html", who, next=_safe_next(next), pre_csrf=token, error="")
        resp.set_cookie(PRE_CSRF_COOKIE, token, **cookie_kwargs(secure=_is_https(request), max_age=3600))  # type: ignore[arg-type]
        return resp

    @router.post("/signin")
    async def signin(request: Request, b: Backend) -> Response:
        form = await request.form()
        await request.close()
        token = form.get(CSRF_FIELD)
        nxt = _safe_next(str(form.get("next") or ""))
        if not isinstance(token, str) or not same_token(token, request.cookies.get(PRE_CSRF_COOKIE)):
            return _error_page(request, None, 403, "Not allowed", "The sign-in form expired; reload and try again.")
        key = str(form.get("api_key") or "").strip()
        who = await run_in_threadpool(b.authenticate, key) if key else None
        if who is None:
            new = new_pre_token()
            resp = _page(
                request,
                "signin.html",
                None,
                status=401,
                next=nxt,
                pre_csrf=new,
                error="That API key is not valid or has been revoked.",
            )
            resp.set_cookie(PRE_CSRF_COOKIE, new, **cookie_kwargs(secure=_is_https(request), max_age=3600))  # type: ignore[arg-type]
            return resp
        done = RedirectResponse(nxt or f"{PREFIX}/", status_code=303)
        done.set_cookie(SESSION_COOKIE, key, **cookie_kwargs(secure=_is_https(request)))  # type: ignore[arg-type]
        done.delete_cookie(PRE_CSRF_COOKIE, path=PREFIX)
        return done

    @router.post("/signout")
    async def signout(request: Request, who: Who) -> Response:
        async def go() -> Response:
            await form_checked(request)
            resp = RedirectResponse(f"{PREFIX}/signin", status_code=303)
            resp.delete_cookie(SESSION_COOKIE, path=PREFIX)
            return resp

        return await run(request, who, go)

    # ---------------------------------------------------------------- analyze

    @router.get("/")
    def home(request: Request, who: Who) -> Response:
        if who is None:
            return RedirectResponse(f"{PREFIX}/signin", status_code=303)
        first = "analyze" if can_open(who, "analyze") else "consent"
        return RedirectResponse(f"{PREFIX}/{first}", status_code=303)

    @router.get("/analyze")
    async def analyze_form(request: Request, who: Who) -> Response:
        def go() -> Response:
            user = need(request, who, "analyze")
            return _page(request, "analyze.html", user, error="")

        return await run(request, who, go)

    @router.post("/analyze")
    async def analyze(request: Request, who: Who, b: Backend) -> Response:
        async def go() -> Response:
            user = need(request, who, "analyze")
            check_origin(request)
            if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
                raise UiError(415, "unsupported_media_type", "Send the analyze form as multipart/form-data.")
            posted = await b.read_upload(request)  # streamed to storage by the service, size-capped
            url = posted.fields.get("url", "").strip()
            keep = posted.fields.get("keep_media", "").lower() in ("1", "on", "true", "yes")
            try:
                check_token(request, posted.fields.get(CSRF_FIELD))
                if not posted.file_name and not url:
                    raise UiError(400, "bad_request", "Choose a file or paste a URL to analyze.")
            except UiError:
                await run_in_threadpool(b.discard, posted)
                raise
            if posted.file_name:
                job_id = await run_in_threadpool(b.submit_upload, user, posted, keep)
            else:
                await run_in_threadpool(b.discard, posted)
                job_id = await run_in_threadpool(b.submit_url, user, url, keep)
            return RedirectResponse(f"{PREFIX}/jobs/{quote(job_id)}", status_code=303)

        return await run(request, who, go)

    # ---------------------------------------------------------------- a job

    @router.get("/jobs/{job_id}")
    async def job_page(request: Request, job_id: str, who: Who, b: Backend) -> Response:
        def go() -> Response:
            user = need(request, who, "history")
            job = b.job(user, job_id)
            if job is None:
                raise UiError(404, "not_found", "No such job.")
            if job.status != "succeeded":
                return _page(request, "progress.html", user, job=job)
            report = b.report(user, job_id)
            if report is None:
                return _page(request, "progress.html", user, job=job)
            kept = b.media_path(user, job_id)
            frames = f"{PREFIX}/jobs/{quote(job_id)}/frame" if kept and report.media.kind != "audio" else None
            credential = b.credential(user, job_id) if kept and report.provenance.credential_present else None
            ctx = result_context(report, job, frames_url=frames, credential=credential)
            can_review = can_open(user, "review")
            return _page(request, "result.html", user, can_review=can_review, ground_truth=GROUND_TRUTH, **ctx)

        return await run(request, who, go)

    @router.get("/jobs/{job_id}/status")
    def job_status(request: Request, job_id: str, who: Who, b: Backend) -> Response:
        if who is None:
            return JSONResponse({"error": {"code": "unauthorized", "message": "sign in"}}, status_code=401)
        job = b.job(who, job_id)
        if job is None:
            return JSONResponse({"error": {"code": "not_found", "message": "no such job"}}, status_code=404)
        return JSONResponse(
            {
                "id": job.id,
                "status": job.status,
                "progress": job.progress,
                "stage": stage_text(job.stage, job.status),
                "finished": job.finished,
                "error": job.error,
            },
            headers={"Cache-Control": "no-store"},
        )

    @router.get("/jobs/{job_id}/report.html")
    async def job_report_html(request: Request, job_id: str, who: Who, b: Backend) -> Response:
        def go() -> Response:
            user = need(request, who, "history")
            report = b.report(user, job_id)
            if report is None:
                raise UiError(404, "not_found", "No report for this job yet.")
            return HTMLResponse(render_html(report), headers={"X-Content-Type-Options": "nosniff"})

        return await run(request, who, go)

    @router.get("/jobs/{job_id}/report.json")
    async def job_report_json(request: Request, job_id: str, who: Who, b: Backend) -> Response:
        def go() -> Response:
            user = need(request, who, "history")
            report = b.report(user, job_id)
            if report is None:
                raise UiError(404, "not_found", "No report for this job yet.")
            return Response(
                report.model_dump_json(indent=2),
                media_type="application/json",
                headers={"Content-Disposition": f'inline; filename="{_safe_file(job_id)}.json"'},
            )

        return await run(request, who, go)

    @router.get("/jobs/{job_id}/frame")
    async def job_frame(
        request: Request, job_id: str, who: Who, b: Backend, t: Annotated[float, Query(ge=0, le=86400)] = 0.0
    ) -> Response:
        def go() -> Response:
            from veracity.media.still import frame_jpeg

            user = need(request, who, "history")
            path = b.media_path(user, job_id)
            if path is None:
                raise UiError(404, "not_found", "The media of this job was not kept.")
            try:
                jpeg = frame_jpeg(path, t)
            except VeracityError as exc:  # audio, a still image's codec PyAV cannot seek, a broken file
                raise UiError(404, "no_frame", f"No frame to show: {exc}") from exc
            return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})

        return await run(request, who, go)

    @router.post("/jobs/{job_id}/review")
    async def job_review(request: Request, job_id: str, who: Who, b: Backend) -> Response:
        async def go() -> Response:
            user = need(request, who, "review")
            form = await form_checked(request)
            truth = str(form.get("ground_truth") or "")
            if truth not in GROUND_TRUTH:
                raise UiError(400, "bad_input", "Pick one of: " + ", ".join(GROUND_TRUTH) + ".")
            comment = str(form.get("comment") or "")[:4000]
            await run_in_threadpool(b.submit_review, user, job_id, truth, comment)
            back = str(form.get("back") or "")
            return RedirectResponse(_safe_next(back) or f"{PREFIX}/jobs/{quote(job_id)}#review", status_code=303)

        return await run(request, who, go)

    # ---------------------------------------------------------------- lists

    @router.get("/history")
    async def history(
        request: Request,
        who: Who,
        b: Backend,
        q: str = "",
        status: str = "",
        label: str = "",
        kind: str = "",
        reviewed: str = "",
        page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    ) -> Response:
        def go() -> Response:
            user = need(request, who, "history")
            query = JobQuery(
                text=q[:200], status=status, label=label, kind=kind, reviewed=reviewed, limit=50, offset=(page - 1) * 50
            )
            jobs = b.jobs(user, query)
            return _page(
                request,
                "history.html",
                user,
                jobs=jobs,
                query=query,
                page=page,
                labels=("authentic", "suspicious", "manipulated", "synthetic", "inconclusive"),
                statuses=get_args(JobStatus),
                kinds=("video", "image", "audio"),
            )

        return await run(request, who, go)

    @router.get("/review")
    async def review_queue(request: Request, who: Who, b: Backend) -> Response:
        def go() -> Response:
            user = need(request, who, "review")
            jobs = review_queue_order(b.review_queue(user, 100))
            return _page(request, "review.html", user, jobs=jobs, ground_truth=GROUND_TRUTH)

        return await run(request, who, go)

    @router.get("/audit")
    async def audit(
        request: Request, who: Who, b: Backend, page: Annotated[int, Query(ge=1, le=100_000)] = 1
    ) -> Response:
        def go() -> Response:
            user = need(request, who, "audit")
            rows = b.audit(user, 100, (page - 1) * 100)
            return _page(request, "audit.html", user, rows=rows, page=page)

        return await run(request, who, go)

    @router.get("/keys")
    async def keys(request: Request, who: Who, b: Backend) -> Response:
        def go() -> Response:
            user = need(request, who, "keys")
            return _page(request, "keys.html", user, keys=b.keys(user), roles=_ROLES, created=None)

        return await run(request, who, go)

    @router.post("/keys")
    async def create_key(request: Request, who: Who, b: Backend) -> Response:
        async def go() -> Response:
            user = need(request, who, "keys")
            form = await form_checked(request)
            role = str(form.get("role") or "")
            name = str(form.get("name") or "").strip()[:100]
            if role not in _ROLES or not name:
                raise UiError(400, "bad_input", "A key needs a name and one of the roles: " + ", ".join(_ROLES) + ".")
            row, secret = await run_in_threadpool(b.create_key, user, name, role)
            keys = await run_in_threadpool(b.keys, user)
            return _page(request, "keys.html", user, keys=keys, roles=_ROLES, created=(row, secret))

        return await run(request, who, go)

    @router.post("/keys/{key_id}/revoke")
    async def revoke_key(request: Request, key_id: str, who: Who, b: Backend) -> Response:
        async def go() -> Response:
            user = need(request, who, "keys")
            await form_checked(request)
            await run_in_threadpool(b.revoke_key, user, key_id)
            return RedirectResponse(f"{PREFIX}/keys", status_code=303)

        return await run(request, who, go)

    @router.get("/consent")
    async def consent(request: Request, who: Who, b: Backend) -> Response:
        def go() -> Response:
            user = need(request, who, "consent")
            return _page(request, "consent.html", user, rows=b.consents(user))

        return await run(request, who, go)

    return router


def _safe_next(value: str) -> str:
    """Only local UI paths: an open redirect would let a link bounce a signed-in user anywhere."""
    if value.startswith(PREFIX + "/") and not value.startswith("//") and "\\" not in value and "://" not in value:
        return value
    return ""


def _safe_file(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", value)[:80] or "report"
