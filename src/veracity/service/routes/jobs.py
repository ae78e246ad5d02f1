"""Analysis endpoints: analyze_video (the seed contract), jobs, batches, reviews, reports.

Route bodies only translate HTTP to the service functions in :mod:`veracity.service.jobs`.
Bodies that may carry media are read by hand (JSON or a streamed multipart upload), so their
OpenAPI request bodies are declared explicitly with ``openapi_extra``.
"""

from __future__ import annotations

import contextlib
import time
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from veracity.errors import InputError, VeracityError
from veracity.report.html import render_html
from veracity.report.model import Report
from veracity.service import jobs
from veracity.service.context import ServiceContext
from veracity.service.deps import Analyst, ContextDep, Reviewer
from veracity.service.errors import BadRequest, Conflict
from veracity.service.fetch import check_url
from veracity.service.models import Job
from veracity.service.routes.common import body_kind, errors, media_body, read_json_body
from veracity.service.schemas import (
    AnalyzeVideoCreate,
    AnalyzeVideoPublic,
    BatchCreate,
    BatchPublic,
    JobAccepted,
    JobCreate,
    JobList,
    JobPublic,
    JobStatus,
    ReviewCreate,
)
from veracity.service.uploads import read_multipart, sniff, sniff_each

router = APIRouter(prefix="/api/v1", tags=["analysis"])
BODY_MODELS: list[type[BaseModel]] = [JobCreate, AnalyzeVideoCreate, BatchCreate]

# HTTP status for a failed job's error code (the job itself keeps the code and message).
_JOB_ERROR_STATUS = {
    "unsupported_media": 415,
    "corrupt_media": 422,
    "media_too_large": 413,
    "url_not_allowed": 400,
    "fetch_failed": 400,
    "bad_input": 400,
    "config_error": 422,
    "not_found": 404,
    "model_unavailable": 503,
}


async def _submit(
    ctx: ServiceContext,
    request: Request,
    principal: Any,
    *,
    url_field: str,
    idempotency_key: str | None,
    json_model: type[BaseModel],
) -> Job:
    """Create one job from a JSON URL body or a single-file multipart upload."""
    if body_kind(request) == "json":
        body = await read_json_body(request, json_model)
        url, options = getattr(body, url_field), body.options
        callback, keep = getattr(body, "callback_url", None), getattr(body, "keep_media", False)

        def create_url() -> Job:
            with ctx.tx() as s:
                job, _ = jobs.create_job(
                    s,
                    principal,
                    ctx.settings,
                    url=url,
                    options=options,
                    callback_url=callback,
                    keep_media=keep,
                    idempotency_key=idempotency_key,
                )
                return job

        job = await run_in_threadpool(create_url)
    else:
        form = await read_multipart(request, ctx.settings, ctx.storage)
        try:
            if len(form.files) != 1:
                raise BadRequest(f"send exactly one file part, got {len(form.files)}")
            options = form.options()
            callback = form.fields.get("callback_url") or None
        except VeracityError:
            form.discard()
            raise
        media = (await run_in_threadpool(sniff, form, ctx.settings))[0]

        def create_upload() -> tuple[Job, bool]:
            with ctx.tx() as s:
                return jobs.create_job(
                    s,
                    principal,
                    ctx.settings,
                    media=media,
                    options=options,
                    callback_url=callback,
                    keep_media=form.flag("keep_media"),
                    idempotency_key=idempotency_key,
                )

        try:
            job, created = await run_in_threadpool(create_upload)
        except BaseException:
            ctx.storage.delete(media.name)
            raise
        if not created:
            ctx.storage.delete(media.name)
    if job.status == "queued":
        ctx.submit(job.id)
    metrics = request.app.state.metrics
    metrics.jobs_submitted.inc()
    return job


# Waiting on a job that runs in this process: woken by the pool when it ran, with a slow
# re-read as a safety net (a watchdog or the sweeper ended it without a run finishing). Jobs run
# elsewhere (Celery) are polled from _POLL_FIRST_S, doubling up to _POLL_MAX_S: short jobs still
# answer promptly, long ones cost a read every half second instead of twenty.
_SIGNALLED_RECHECK_S = 1.0
_POLL_FIRST_S = 0.05
_POLL_MAX_S = 0.5


async def wait_final(ctx: ServiceContext, job_id: str, wait_s: float) -> Job:
    """The job once it succeeded or failed, or as it stands after ``wait_s`` seconds."""
    deadline = time.monotonic() + wait_s
    signals = ctx.signals()
    # Subscribe before the first read: a completion between the read and the wait sets the event.
    with signals.watch(job_id) if signals is not None else contextlib.nullcontext() as woken:
        poll = _POLL_FIRST_S
        while True:
            if woken is not None:
                woken.clear()  # before the read: a notice after it is kept for the wait below
            current = await run_in_threadpool(jobs.load, ctx.read_sessions, job_id)
            assert current is not None
            left = deadline - time.monotonic()
            if current.status in ("succeeded", "failed") or left <= 0:
                return current
            if woken is None:
                await anyio.sleep(min(poll, left))
                poll = min(poll * 2, _POLL_MAX_S)
            else:
                with anyio.move_on_after(min(_SIGNALLED_RECHECK_S, left)):
                    await woken.wait()


IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]


@router.post(
    "/analyze_video",
    operation_id="analyzeVideo",
    summary="Analyse one video (or image/audio) and wait for the verdict",
    response_model=AnalyzeVideoPublic,
    status_code=200,
    responses={
        202: {"model": JobAccepted, "description": "Still running: poll the job"},
        **errors(400, 401, 403, 413, 415, 422, 429),
    },
    openapi_extra=media_body("AnalyzeVideoCreate"),
)
async def analyze_video(
    request: Request,
    ctx: ContextDep,
    principal: Analyst,
    wait: Annotated[float | None, Query(ge=0, le=600, description="Seconds to wait (default: server setting).")] = None,
) -> Any:
    job = await _submit(
        ctx, request, principal, url_field="video_url", idempotency_key=None, json_model=AnalyzeVideoCreate
    )
    current = await wait_final(ctx, job.id, ctx.settings.sync_wait_s if wait is None else wait)
    if current.status == "succeeded" and current.result:

        def read() -> None:
            with ctx.tx() as s:
                jobs.record_result_read(s, principal, current, "analyze_video")

        await run_in_threadpool(read)
        report = Report.model_validate_json(current.result)
        return AnalyzeVideoPublic(**report.model_dump(), job_id=current.id)
    if current.status == "failed":
        code = current.error_code or "internal_error"
        return JSONResponse(
            {"error": {"code": code, "message": current.error_message or ""}, "job_id": current.id},
            status_code=_JOB_ERROR_STATUS.get(code, 500),
        )
    return JSONResponse(jobs.accepted(current).model_dump(mode="json"), status_code=202)


@router.post(
    "/jobs",
    operation_id="createJob",
    summary="Submit media (upload or URL) for analysis",
    status_code=202,
    response_model=JobAccepted,
    responses=errors(400, 401, 403, 413, 415, 422, 429),
    openapi_extra=media_body("JobCreate"),
)
async def create_job(
    request: Request, ctx: ContextDep, principal: Analyst, idempotency_key: IdempotencyKey = None
) -> JobAccepted:
    job = await _submit(ctx, request, principal, url_field="url", idempotency_key=idempotency_key, json_model=JobCreate)
    return jobs.accepted(job)


@router.get(
    "/jobs",
    operation_id="listJobs",
    summary="List jobs (own jobs; all for reviewers and admins)",
    response_model=JobList,
    responses=errors(401, 403, 422, 429),
)
def list_jobs(
    ctx: ContextDep,
    principal: Analyst,
    status: Annotated[JobStatus | None, Query()] = None,
    batch_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> JobList:
    with ctx.read() as s:
        rows, total = jobs.list_jobs(s, principal, status=status, batch_id=batch_id, limit=limit, offset=offset)
        return JobList(
            items=[jobs.to_public(j, include_result=False) for j in rows], total=total, limit=limit, offset=offset
        )


@router.get(
    "/jobs/{job_id}",
    operation_id="getJob",
    summary="Job status, progress and result",
    response_model=JobPublic,
    responses=errors(401, 403, 404, 422, 429),
)
def get_job(ctx: ContextDep, principal: Analyst, job_id: str) -> JobPublic:
    with ctx.read() as s:
        job = jobs.get_job(s, principal, job_id)
    if job.status == "succeeded":
        with ctx.tx() as s:
            jobs.record_result_read(s, principal, job, "get_job")
    return jobs.to_public(job)


@router.get(
    "/jobs/{job_id}/report",
    operation_id="getJobReport",
    summary="The HTML report of a finished job",
    response_class=HTMLResponse,
    responses={
        200: {"content": {"text/html": {"schema": {"type": "string"}}}},
        **{
            code: {**spec, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}}
            for code, spec in errors(401, 403, 404, 409, 422, 429).items()
        },
    },
)
def get_job_report(ctx: ContextDep, principal: Analyst, job_id: str) -> HTMLResponse:
    with ctx.tx() as s:
        job = jobs.get_job(s, principal, job_id)
        if job.status != "succeeded" or not job.result:
            raise Conflict(f"job is {job.status}; the report exists once it succeeded")
        jobs.record_result_read(s, principal, job, "report")
        report = Report.model_validate_json(job.result)
    html = render_html(report)
    return HTMLResponse(
        html,
        headers={
            "Content-Security-Policy": "default-src 'none'; img-src data:; "
            "style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
        },
    )


@router.post(
    "/jobs/{job_id}/review",
    operation_id="reviewJob",
    summary="Add a reviewer's ground-truth label",
    response_model=JobPublic,
    responses=errors(400, 401, 403, 404, 422, 429),
)
def review_job(ctx: ContextDep, principal: Reviewer, job_id: str, review: ReviewCreate) -> JobPublic:
    with ctx.tx() as s:
        job = jobs.review_job(s, principal, job_id, review)
        return jobs.to_public(job, include_result=False)


@router.post(
    "/jobs/{job_id}/cancel",
    operation_id="cancelJob",
    summary="Cancel a queued or running job (its owner or an admin)",
    response_model=JobPublic,
    responses=errors(401, 403, 404, 409, 422, 429),
)
def cancel_job(ctx: ContextDep, principal: Analyst, job_id: str) -> JobPublic:
    with ctx.tx() as s:
        job, was = jobs.cancel_job(s, principal, job_id)
        media, keep = job.media_path, job.keep_media
    ctx.notify_final(job_id)  # after the commit: a sync request waiting on it answers now
    if media and not keep and was == "queued":
        ctx.storage.delete(media)  # no worker will pick it up; a running one deletes its own
    return jobs.to_public(job, include_result=False)


@router.post(
    "/batches",
    operation_id="createBatch",
    summary="Submit many URLs or files: one job each",
    status_code=202,
    response_model=BatchPublic,
    responses=errors(400, 401, 403, 413, 415, 422, 429),
    openapi_extra=media_body("BatchCreate", files="files", many=True),
)
async def create_batch(request: Request, ctx: ContextDep, principal: Analyst) -> BatchPublic:
    if body_kind(request) == "json":
        body: BatchCreate = await read_json_body(request, BatchCreate)

        if body.callback_url is not None:
            await run_in_threadpool(check_url, body.callback_url, ctx.settings)  # one for the whole batch

        def create_urls() -> tuple[str, list[str]]:
            with ctx.tx() as s:
                batch = jobs.create_batch(s, principal)
                ids = []
                for url in body.urls:
                    try:
                        job, _ = jobs.create_job(
                            s,
                            principal,
                            ctx.settings,
                            url=url,
                            options=body.options,
                            callback_url=body.callback_url,
                            keep_media=body.keep_media,
                            batch_id=batch.id,
                        )
                    except InputError as exc:  # this URL is refused; the others go on
                        jobs.create_rejected_job(
                            s,
                            principal,
                            name=url[:300],
                            url=url[:2000],
                            code=exc.code,
                            message=exc.message,
                            batch_id=batch.id,
                            options=body.options,
                        )
                        continue
                    ids.append(job.id)
                return batch.id, ids

        batch_id, ids = await run_in_threadpool(create_urls)
    else:
        form = await read_multipart(request, ctx.settings, ctx.storage)
        try:
            if not form.files:
                raise BadRequest("no file parts in the batch")
            options = form.options()
            callback = form.fields.get("callback_url") or None
        except VeracityError:
            form.discard()
            raise
        media, rejected = await run_in_threadpool(sniff_each, form, ctx.settings)

        def create_files() -> tuple[str, list[str]]:
            with ctx.tx() as s:
                batch = jobs.create_batch(s, principal)
                for r in rejected:
                    jobs.create_rejected_job(
                        s, principal, name=r.original_name, code=r.code, message=r.message, batch_id=batch.id
                    )
                ids = [
                    jobs.create_job(
                        s,
                        principal,
                        ctx.settings,
                        media=m,
                        options=options,
                        callback_url=callback,
                        keep_media=form.flag("keep_media"),
                        batch_id=batch.id,
                    )[0].id
                    for m in media
                ]
                return batch.id, ids

        try:
            batch_id, ids = await run_in_threadpool(create_files)
        except BaseException:
            for m in media:
                ctx.storage.delete(m.name)
            raise
    for job_id in ids:
        ctx.submit(job_id)
    request.app.state.metrics.jobs_submitted.inc(len(ids))

    def status() -> BatchPublic:
        with ctx.tx() as s:
            return jobs.batch_status(s, principal, batch_id)

    return await run_in_threadpool(status)


@router.get(
    "/batches/{batch_id}",
    operation_id="getBatch",
    summary="Status of every job in a batch",
    response_model=BatchPublic,
    responses=errors(401, 403, 404, 422, 429),
)
def get_batch(ctx: ContextDep, principal: Analyst, batch_id: str) -> BatchPublic:
    with ctx.read() as s:
        return jobs.batch_status(s, principal, batch_id)
