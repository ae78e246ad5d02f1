"""The service seen through :class:`~veracity.web.backend.UiBackend`: an adapter, no new rules.

Every call opens one transaction on the app's :class:`ServiceContext` and calls the service's own
functions (``auth``, ``jobs``, ``audit``) with the service's own types (``auth.Principal``,
``JobPublic``, its statuses), so the UI gets exactly the API's permissions, ownership rule, audit
entries and SSRF checks. The only query here is the audit listing, which the service has no
function for.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import select

from veracity.errors import VeracityError
from veracity.report.model import Report
from veracity.service import auth, jobs
from veracity.service.auth import Permission, Principal
from veracity.service.context import ServiceContext
from veracity.service.errors import Forbidden, NotFound, Unauthorized, http_status
from veracity.service.models import ApiKey, AuditEntry, Job
from veracity.service.schemas import ReviewCreate
from veracity.service.uploads import UploadForm, read_multipart, sniff
from veracity.web.backend import AuditRow, ConsentRow, JobQuery, KeyRow, PostedForm, UiError
from veracity.web.routes import build_router
from veracity.web.view import JobView

__all__ = ["ServiceUiBackend", "web_router"]

@contextmanager
def _translated() -> Iterator[None]:
    """Service errors become :class:`UiError` with the same status and stable code."""
    try:
        yield
    except VeracityError as exc:
        raise UiError(http_status(exc), exc.code, exc.message) from exc


def _need(who: Principal, permission: Permission) -> Principal:
    if not who.can(permission):
        raise Forbidden(f"role {who.role!r} may not do this ({permission})")
    return who


def _view(job: Job) -> JobView:
    return JobView.of(jobs.to_public(job, include_result=False))


class ServiceUiBackend:
    """One per request; holds nothing but the app's context."""

    def __init__(self, ctx: ServiceContext, metrics: Any = None) -> None:
        self.ctx = ctx
        self.metrics = metrics

    # ------------------------------------------------------------------ keys and sessions

    def authenticate(self, api_key: str) -> Principal | None:
        try:
            with self.ctx.tx() as s:
                return auth.authenticate(s, api_key)
        except Unauthorized:
            return None

    # ------------------------------------------------------------------ submitting

    async def read_upload(self, request: Request) -> PostedForm:
        """The analyze form, streamed to storage under the service's size cap."""
        with _translated():
            form = await read_multipart(request, self.ctx.settings, self.ctx.storage)
        name = form.files[0][1] if form.files else None
        return PostedForm(fields=dict(form.fields), file_name=name or None, payload=form)

    def discard(self, form: PostedForm) -> None:
        if isinstance(form.payload, UploadForm):
            form.payload.discard()

    def submit_upload(self, who: Principal, form: PostedForm, keep_media: bool) -> str:
        payload = form.payload
        if not isinstance(payload, UploadForm) or len(payload.files) != 1:
            self.discard(form)
            raise UiError(400, "bad_request", "Send exactly one file.")
        with _translated():
            try:
                p = _need(who, "jobs:create")
                self.ctx.limiter.check(p.key_id)
            except BaseException:  # refused before the sniff: the upload must not stay behind
                payload.discard()
                raise
            media = sniff(payload, self.ctx.settings)[0]
            try:
                with self.ctx.tx() as s:
                    job, _ = jobs.create_job(s, p, self.ctx.settings, media=media, keep_media=keep_media)
                    job_id = job.id
            except BaseException:
                self.ctx.storage.delete(media.name)
                raise
        return self._queued(job_id)

    def submit_url(self, who: Principal, url: str, keep_media: bool) -> str:
        with _translated():
            p = _need(who, "jobs:create")
            self.ctx.limiter.check(p.key_id)
            with self.ctx.tx() as s:
                job, _ = jobs.create_job(s, p, self.ctx.settings, url=url, keep_media=keep_media)
                job_id = job.id
        return self._queued(job_id)

    def _queued(self, job_id: str) -> str:
        self.ctx.submit(job_id)
        if self.metrics is not None:
            self.metrics.jobs_submitted.inc()
        return job_id

    # ------------------------------------------------------------------ reading jobs

    def job(self, who: Principal, job_id: str) -> JobView | None:
        try:
            with self.ctx.tx() as s:
                return _view(jobs.get_job(s, who, job_id))
        except NotFound:
            return None

    def report(self, who: Principal, job_id: str) -> Report | None:
        try:
            with self.ctx.tx() as s:
                job = jobs.get_job(s, who, job_id)
                if job.status != "succeeded" or not job.result:
                    return None
                jobs.record_result_read(s, who, job, "web")
                return Report.model_validate_json(job.result)
        except NotFound:
            return None

    def media_path(self, who: Principal, job_id: str) -> Path | None:
        try:
            with self.ctx.tx() as s:
                job = jobs.get_job(s, who, job_id)
                name, keep = job.media_path, job.keep_media
        except NotFound:
            return None
        if not keep or not name:
            return None
        path = self.ctx.storage.path(name)
        return path if path.is_file() else None

    def credential(self, who: Principal, job_id: str) -> dict[str, Any] | None:
        """Re-read the content credential of kept media with the provenance package (when it is
        installed): the report keeps a summary, the page shows the whole manifest."""
        path = self.media_path(who, job_id)
        if path is None:
            return None
        try:
            from veracity.provenance.verify import verify_file  # type: ignore[import-not-found,unused-ignore]
        except ImportError:
            return None
        try:
            result = verify_file(path, self.ctx.settings, watermarks=False)
        except VeracityError:
            return None
        c2pa = result.c2pa
        return {
            "manifest": c2pa.manifest.model_dump(mode="json") if c2pa.manifest is not None else None,
            "status": [s.model_dump(mode="json") for s in c2pa.status],
        }

    def jobs(self, who: Principal, query: JobQuery) -> list[JobView]:
        reviewed = {"yes": True, "no": False}.get(query.reviewed)
        with self.ctx.tx() as s:
            rows, _ = jobs.list_jobs(
                s,
                who,
                status=query.status or None,
                label=query.label or None,
                media_kind=query.kind or None,
                reviewed=reviewed,
                text=query.text or None,
                limit=query.limit,
                offset=query.offset,
            )
            return [_view(j) for j in rows]

    def review_queue(self, who: Principal, limit: int) -> list[JobView]:
        with _translated():
            _need(who, "jobs:review")
        with self.ctx.tx() as s:
            rows, _ = jobs.list_jobs(s, who, status="succeeded", reviewed=False, limit=limit)
            return [_view(j) for j in rows]

    def submit_review(self, who: Principal, job_id: str, ground_truth: str, comment: str) -> None:
        with _translated():
            p = _need(who, "jobs:review")
            review = ReviewCreate.model_validate({"label": ground_truth, "comment": comment})
            with self.ctx.tx() as s:
                jobs.review_job(s, p, job_id, review)

    # ------------------------------------------------------------------ admin

    def audit(self, who: Principal, limit: int, offset: int) -> list[AuditRow]:
        with _translated():
            _need(who, "audit:read")
        q = select(AuditEntry).order_by(AuditEntry.seq.desc()).limit(limit).offset(offset)
        with self.ctx.tx() as s:
            return [
                AuditRow(e.seq, e.at, e.actor, e.action, e.object, "" if e.detail == "{}" else e.detail, e.hash)
                for e in s.scalars(q)
            ]

    def keys(self, who: Principal) -> list[KeyRow]:
        with _translated():
            _need(who, "keys:manage")
            with self.ctx.tx() as s:
                return [_key_row(k) for k in auth.list_keys(s)]

    def create_key(self, who: Principal, name: str, role: str) -> tuple[KeyRow, str]:
        with _translated():
            p = _need(who, "keys:manage")
            with self.ctx.tx() as s:
                row, secret = auth.create_key(s, role=role, name=name, actor=p.actor)
                return _key_row(row), secret

    def revoke_key(self, who: Principal, key_id: str) -> None:
        with _translated():
            p = _need(who, "keys:manage")
            with self.ctx.tx() as s:
                auth.revoke_key(s, key_id, actor=p.actor)

    def consents(self, who: Principal) -> list[ConsentRow]:
        """Consent records live with provenance signing; none until that package is installed."""
        if not (who.can("sign") or who.can("keys:manage")):
            raise UiError(403, "forbidden", f"role {who.role!r} may not read consent records")
        try:
            from veracity.provenance.consent import ConsentStore  # type: ignore[import-not-found,unused-ignore]
        except ImportError:
            return []
        with _translated():
            store = ConsentStore.open(self.ctx.settings)
            try:
                records = store.list()
            finally:
                store.close()
        return [
            ConsentRow(
                id=r.id,
                subject=r.subject,
                scope=tuple(r.scopes),
                granted_by=r.granted_by,
                expires=r.expires_at,
                state=r.status(),
                evidence_sha256=r.evidence_sha256,
            )
            for r in records
        ]


def _key_row(row: ApiKey) -> KeyRow:
    return KeyRow(
        id=row.id,
        name=row.name,
        role=row.role,
        created_at=row.created_at,
        revoked=row.revoked_at is not None,
        prefix=f"vk_{row.id}_…",
    )


def web_router() -> APIRouter:
    """The UI router wired to the app's service context (``app.state.ctx``)."""

    def backend(request: Request) -> ServiceUiBackend:
        return ServiceUiBackend(request.app.state.ctx, getattr(request.app.state, "metrics", None))

    return build_router(backend)
