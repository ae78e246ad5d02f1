"""Jobs as database rows: create, read, list, review (API side) and claim, heartbeat, complete,
fail, re-queue (worker side).

Every transition is one conditional UPDATE, so a job is claimed by one worker at a time and
completed exactly once: a worker that lost its claim (it was presumed dead and the job handed to
another) finds its ``claim_token`` no longer matches and its late result is discarded. These
functions are what the routes and the web UI call; none of them commits (the caller owns the
transaction), except the worker-side ones that take a session factory.
"""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Update, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from veracity.config import Settings
from veracity.report.model import Report
from veracity.service import audit
from veracity.service.auth import Principal
from veracity.service.errors import BadRequest, Conflict, NotFound, echo, public_message
from veracity.service.fetch import Resolver, check_url, system_resolver
from veracity.service.models import Batch, DetectorScore, Job, utcnow
from veracity.service.schemas import (
    BatchPublic,
    ErrorDetail,
    JobAccepted,
    JobOptions,
    JobPublic,
    ReviewCreate,
    ReviewPublic,
    SourcePublic,
)

STATUSES = ("queued", "running", "succeeded", "failed")


@dataclass(frozen=True, slots=True)
class StoredMedia:
    """An upload already written to storage under a random name."""

    name: str
    sha256: str
    size: int
    original_name: str


def new_job_id() -> str:
    return str(uuid.uuid4())


def create_job(
    session: Session,
    principal: Principal,
    settings: Settings,
    *,
    media: StoredMedia | None = None,
    url: str | None = None,
    options: JobOptions | None = None,
    callback_url: str | None = None,
    keep_media: bool = False,
    idempotency_key: str | None = None,
    batch_id: str | None = None,
    resolver: Resolver = system_resolver,
) -> tuple[Job, bool]:
    """Insert a queued job; returns ``(job, created)``. With an ``Idempotency-Key`` already used by
    this key, the earlier job is returned and ``created`` is False (the caller drops its upload)."""
    if (media is None) == (url is None):
        raise BadRequest("give either an upload or a URL")
    # Resolve names before touching the database: no lock is held while DNS answers.
    if url is not None:
        check_url(url, settings, resolver)  # early answer; the worker checks every hop again
    if callback_url is not None:
        check_url(callback_url, settings, resolver)
    if idempotency_key is not None:
        if not 1 <= len(idempotency_key) <= 200:
            raise BadRequest("Idempotency-Key must be 1 to 200 characters")
        existing = session.scalar(
            select(Job).where(Job.owner_key_id == principal.key_id, Job.idempotency_key == idempotency_key)
        )
        if existing is not None:
            return existing, False
    opts = options or JobOptions()
    name = media.original_name if media else url.rsplit("/", 1)[-1].split("?", 1)[0] if url else ""
    job = Job(
        id=new_job_id(),
        status="queued",
        progress=0.0,
        owner_key_id=principal.key_id,
        batch_id=batch_id,
        idempotency_key=idempotency_key,
        source_url=url,
        source_name=(name or "upload")[:300],
        media_path=media.name if media else None,
        media_sha256=media.sha256 if media else None,
        media_bytes=media.size if media else None,
        keep_media=keep_media or settings.keep_media,
        options=opts.model_dump(mode="json"),
        callback_url=callback_url,
        attempts=0,
        webhook_attempts=0,
        created_at=utcnow(),
    )
    session.add(job)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:  # a concurrent request with the same Idempotency-Key won the race
        existing = session.scalar(
            select(Job).where(Job.owner_key_id == principal.key_id, Job.idempotency_key == idempotency_key)
        )
        if existing is None:
            raise
        return existing, False
    audit.append(
        session,
        actor=principal.actor,
        action="job.created",
        obj=f"job:{job.id}",
        detail={"source": "upload" if media else "url", "sha256": job.media_sha256, "batch": batch_id},
    )
    return job, True


def get_job(session: Session, principal: Principal, job_id: str) -> Job:
    job = session.get(Job, job_id)
    if job is None or not (principal.can("jobs:read_all") or job.owner_key_id == principal.key_id):
        raise NotFound(f"no job {echo(job_id)}")
    return job


def record_result_read(session: Session, principal: Principal, job: Job, how: str) -> None:
    audit.append(session, actor=principal.actor, action="job.result_read", obj=f"job:{job.id}", detail={"via": how})


def list_jobs(
    session: Session,
    principal: Principal,
    *,
    status: str | None = None,
    batch_id: str | None = None,
    label: str | None = None,
    media_kind: str | None = None,
    reviewed: bool | None = None,
    text: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Job], int]:
    """The jobs ``principal`` may read (its own, or all with ``jobs:read_all``), newest first,
    filtered in the query: status, batch, label, media kind, reviewed or not, and ``text`` (a
    job id, or part of the source name)."""
    query = select(Job)
    if not principal.can("jobs:read_all"):
        query = query.where(Job.owner_key_id == principal.key_id)
    if status is not None:
        query = query.where(Job.status == status)
    if batch_id is not None:
        query = query.where(Job.batch_id == batch_id)
    if label is not None:
        query = query.where(Job.label == label)
    if media_kind is not None:
        query = query.where(Job.media_kind == media_kind)
    if reviewed is not None:
        query = query.where(Job.review_label.is_not(None) if reviewed else Job.review_label.is_(None))
    if text:
        like = "%" + text.replace("\\", "").replace("%", "").replace("_", "") + "%"
        query = query.where(or_(Job.source_name.ilike(like), Job.id == text))
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(query.order_by(Job.created_at.desc(), Job.id).limit(limit).offset(offset))
    return list(rows), int(total)


def review_job(session: Session, principal: Principal, job_id: str, review: ReviewCreate) -> Job:
    job = get_job(session, principal, job_id)
    job.review_label = review.label
    job.review_comment = review.comment
    job.reviewed_by = principal.key_id
    job.reviewed_at = utcnow()
    audit.append(
        session,
        actor=principal.actor,
        action="job.reviewed",
        obj=f"job:{job.id}",
        detail={"label": review.label, "model_label": job.label},
    )
    return job


def create_batch(session: Session, principal: Principal) -> Batch:
    batch = Batch(id=new_job_id(), owner_key_id=principal.key_id, created_at=utcnow())
    session.add(batch)
    session.flush()
    audit.append(session, actor=principal.actor, action="batch.created", obj=f"batch:{batch.id}")
    return batch


def batch_status(session: Session, principal: Principal, batch_id: str, base: str = "/api/v1") -> BatchPublic:
    batch = session.get(Batch, batch_id)
    if batch is None or not (principal.can("jobs:read_all") or batch.owner_key_id == principal.key_id):
        raise NotFound(f"no batch {echo(batch_id)}")
    jobs = list(session.scalars(select(Job).where(Job.batch_id == batch_id).order_by(Job.created_at, Job.id)))
    counts = dict.fromkeys(STATUSES, 0)
    for j in jobs:
        counts[j.status] = counts.get(j.status, 0) + 1
    return BatchPublic(
        batch_id=batch.id,
        created_at=batch.created_at,
        total=len(jobs),
        counts=counts,
        done=all(j.status in ("succeeded", "failed") for j in jobs),
        jobs=[accepted(j, base) for j in jobs],
    )


def accepted(job: Job, base: str = "/api/v1") -> JobAccepted:
    return JobAccepted(
        job_id=job.id,
        status=job.status,  # type: ignore[arg-type]
        status_url=f"{base}/jobs/{job.id}",
        source_name=job.source_name,
        error=ErrorDetail(code=job.error_code, message=job.error_message or "") if job.error_code else None,
    )


def create_rejected_job(
    session: Session,
    principal: Principal,
    *,
    name: str,
    code: str,
    message: str,
    batch_id: str,
    options: JobOptions | None = None,
    url: str | None = None,
) -> Job:
    """A batch member refused on arrival (not media, a URL the rules refuse): recorded as a failed
    job that names the file, so the rest of the batch goes on and the client sees which one."""
    now = utcnow()
    job = Job(
        id=new_job_id(),
        status="failed",
        stage="rejected",
        progress=0.0,
        owner_key_id=principal.key_id,
        batch_id=batch_id,
        source_url=url,
        source_name=(name or "upload")[:300],
        keep_media=False,
        options=(options or JobOptions()).model_dump(mode="json"),
        attempts=0,
        webhook_attempts=0,
        error_code=code[:40],
        error_message=public_message(f"{name}: {message}"),
        created_at=now,
        finished_at=now,
    )
    session.add(job)
    session.flush()
    audit.append(
        session,
        actor=principal.actor,
        action="job.rejected",
        obj=f"job:{job.id}",
        detail={"code": code, "name": name[:200], "batch": batch_id},
    )
    return job


def to_public(job: Job, *, include_result: bool = True, base: str = "/api/v1") -> JobPublic:
    review = None
    if job.review_label is not None and job.reviewed_at is not None:
        review = ReviewPublic(
            label=job.review_label,  # type: ignore[arg-type]
            comment=job.review_comment or "",
            reviewer=f"key:{job.reviewed_by}",
            reviewed_at=job.reviewed_at,
        )
    result = Report.model_validate_json(job.result) if include_result and job.result else None
    return JobPublic(
        job_id=job.id,
        status=job.status,  # type: ignore[arg-type]
        media_kind=job.media_kind,  # type: ignore[arg-type]
        stage=job.stage,
        progress=job.progress,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        source=SourcePublic(
            name=job.source_name, url=job.source_url, sha256=job.media_sha256, size_bytes=job.media_bytes
        ),
        options=JobOptions.model_validate(job.options),
        batch_id=job.batch_id,
        attempts=job.attempts,
        deepfake_score=job.deepfake_score,
        label=job.label,  # type: ignore[arg-type]
        result=result,
        error=ErrorDetail(code=job.error_code, message=job.error_message or "") if job.error_code else None,
        review=review,
        webhook_status=job.webhook_status,
        report_url=f"{base}/jobs/{job.id}/report" if job.status == "succeeded" else None,
    )


# --- worker side: each call is its own short transaction ------------------------------------


def _update_job() -> Update:
    """An UPDATE of jobs for the functions below. Each runs in a fresh session that holds no Job
    objects, so SQLAlchemy's session synchronisation (by default it compiles the WHERE clause into
    a Python evaluator and runs it over the session's objects: ~20 % of the worker's own CPU per
    small job) has nothing to update: switched off."""
    return update(Job).execution_options(synchronize_session=False)


def claim(sessions: sessionmaker[Session], job_id: str, worker: str, max_attempts: int = 1_000_000) -> str | None:
    """Take a queued job; return the claim token, or None when it is not queued (done, or taken)
    or has used up its ``max_attempts`` (then it is failed for good: a poison job is not retried)."""
    token = secrets.token_hex(16)
    now = utcnow()
    with sessions.begin() as s:
        # The usual case first: one statement. The two conditions exclude each other (attempts
        # below or at the cap), and both run under the one write lock, so the order is free.
        res = s.execute(
            _update_job()
            .where(Job.id == job_id, Job.status == "queued", Job.attempts < max_attempts)
            .values(
                status="running",
                claim_token=token,
                claimed_by=worker[:200],
                attempts=Job.attempts + 1,
                heartbeat_at=now,
                started_at=now,
                stage="claimed",
            )
        )
        if res.rowcount == 1:  # type: ignore[attr-defined]
            return token
        spent = s.execute(
            _update_job()
            .where(Job.id == job_id, Job.status == "queued", Job.attempts >= max_attempts)
            .values(
                status="failed",
                stage="failed",
                error_code="analysis_timeout",
                error_message=f"the job stopped its worker {max_attempts} times; it is not retried",
                finished_at=now,
                claim_token=None,
            )
        )
        if spent.rowcount == 1:  # type: ignore[attr-defined]
            audit.append(
                s, actor="system", action="job.abandoned", obj=f"job:{job_id}", detail={"attempts": max_attempts}
            )
        return None


def heartbeat(
    sessions: sessionmaker[Session], job_id: str, token: str, stage: str | None = None, progress: float | None = None
) -> bool:
    values: dict[str, object] = {"heartbeat_at": utcnow()}
    if stage is not None:
        values["stage"] = stage[:40]
    if progress is not None:
        values["progress"] = max(0.0, min(1.0, progress))
    with sessions.begin() as s:
        res = s.execute(_update_job().where(Job.id == job_id, Job.claim_token == token).values(**values))
        return bool(res.rowcount == 1)  # type: ignore[attr-defined]


def record_media(
    sessions: sessionmaker[Session], job_id: str, token: str, *, sha256: str, size: int, name: str | None
) -> None:
    with sessions.begin() as s:
        s.execute(
            _update_job()
            .where(Job.id == job_id, Job.claim_token == token)
            .values(media_sha256=sha256, media_bytes=size, **({"media_path": name} if name else {}))
        )


def complete(sessions: sessionmaker[Session], job_id: str, token: str, report: Report, worker: str) -> bool:
    """Store the result if we still hold the claim; exactly one completion per job."""
    now = utcnow()
    with sessions.begin() as s:
        res = s.execute(
            _update_job()
            .where(Job.id == job_id, Job.claim_token == token, Job.status == "running")
            .values(
                status="succeeded",
                stage="done",
                progress=1.0,
                result=report.model_dump_json(),
                media_kind=report.media.kind,
                deepfake_score=report.deepfake_score,
                label=report.label,
                media_sha256=report.source.sha256,
                finished_at=now,
                elapsed_ms=report.elapsed_ms,
                claim_token=None,
                webhook_status=None,
            )
        )
        if res.rowcount != 1:  # type: ignore[attr-defined]
            return False
        for d in report.detectors:
            if d.score is not None:
                s.add(DetectorScore(job_id=job_id, detector=d.name, score=d.score))
        audit.append(
            s,
            actor=f"worker:{worker}"[:64],
            action="job.completed",
            obj=f"job:{job_id}",
            detail={"label": report.label, "score": report.deepfake_score, "sha256": report.source.sha256},
        )
        return True


def fail(sessions: sessionmaker[Session], job_id: str, token: str, code: str, message: str, worker: str) -> bool:
    with sessions.begin() as s:
        res = s.execute(
            _update_job()
            .where(Job.id == job_id, Job.claim_token == token, Job.status == "running")
            .values(
                status="failed",
                stage="failed",
                error_code=code[:40],
                error_message=public_message(message),
                finished_at=utcnow(),
                claim_token=None,
            )
        )
        if res.rowcount != 1:  # type: ignore[attr-defined]
            return False
        audit.append(s, actor=f"worker:{worker}"[:64], action="job.failed", obj=f"job:{job_id}", detail={"code": code})
        return True


def requeue_stale(sessions: sessionmaker[Session], stale_s: float, max_attempts: int = 1_000_000) -> list[str]:
    """Put running jobs whose worker stopped sending heartbeats back in the queue, unless they
    have used up ``max_attempts``: a job that killed (or hung) its worker that often is failed
    for good with ``analysis_timeout``, so a poison file cannot take every restart down."""
    cutoff = utcnow() - timedelta(seconds=stale_s)
    with sessions.begin() as s:
        ids = list(s.scalars(select(Job.id).where(Job.status == "running", Job.heartbeat_at < cutoff)))
        requeued = []
        for job_id in ids:
            stale = (Job.id == job_id, Job.status == "running", Job.heartbeat_at < cutoff)
            spent = s.execute(
                _update_job()
                .where(*stale, Job.attempts >= max_attempts)
                .values(
                    status="failed",
                    stage="failed",
                    error_code="analysis_timeout",
                    error_message=f"the job stopped its worker {max_attempts} times; it is not retried",
                    finished_at=utcnow(),
                    claim_token=None,
                )
            )
            if spent.rowcount == 1:  # type: ignore[attr-defined]
                audit.append(
                    s, actor="system", action="job.abandoned", obj=f"job:{job_id}", detail={"attempts": max_attempts}
                )
                continue
            res = s.execute(_update_job().where(*stale).values(status="queued", claim_token=None, stage="requeued"))
            if res.rowcount == 1:  # type: ignore[attr-defined]
                requeued.append(job_id)
                audit.append(s, actor="system", action="job.requeued", obj=f"job:{job_id}")
        return requeued


def requeue_all_running(sessions: sessionmaker[Session], max_attempts: int = 1_000_000) -> list[str]:
    """Embedded start-up: nothing can be running in a process that just started."""
    return requeue_stale(sessions, stale_s=-1e9, max_attempts=max_attempts)


def cancel_job(session: Session, principal: Principal, job_id: str) -> tuple[Job, str]:
    """Owner or admin: a queued or running job becomes ``failed`` with code ``cancelled``.

    Its claim token is cleared, so a worker still analysing it finds at its next heartbeat that
    the job is no longer its own, stops, and its late result is discarded. Returns the job and
    the status it had."""
    job = session.get(Job, job_id)
    if job is None or not (principal.role == "admin" or job.owner_key_id == principal.key_id):
        raise NotFound(f"no job {echo(job_id)}")
    was = job.status
    res = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status.in_(("queued", "running")))
        .values(
            status="failed",
            stage="cancelled",
            error_code="cancelled",
            error_message=f"cancelled by {principal.actor}",
            finished_at=utcnow(),
            claim_token=None,
        )
        .execution_options(synchronize_session="fetch")
    )
    if res.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(f"job is {was}; only queued or running jobs can be cancelled")
    audit.append(session, actor=principal.actor, action="job.cancelled", obj=f"job:{job_id}", detail={"was": was})
    session.refresh(job)
    return job, was


def media_in_use(sessions: sessionmaker[Session]) -> set[str]:
    """Stored names some job still needs (queued, running, or kept after analysis)."""
    with sessions.begin() as s:
        needed = (Job.status.in_(("queued", "running"))) | (Job.keep_media.is_(True))
        return set(s.scalars(select(Job.media_path).where(Job.media_path.is_not(None), needed)))


def queued_ids(sessions: sessionmaker[Session]) -> list[str]:
    with sessions.begin() as s:
        return list(s.scalars(select(Job.id).where(Job.status == "queued").order_by(Job.created_at)))


def pending_webhooks(sessions: sessionmaker[Session]) -> list[tuple[str, int]]:
    """(job id, tries made) of finished jobs whose webhook is still owed: an embedded restart
    takes them up again (their scheduled retries died with the old process)."""
    query = select(Job.id, Job.webhook_attempts).where(
        Job.webhook_status == "pending", Job.callback_url.is_not(None), Job.status.in_(("succeeded", "failed"))
    )
    with sessions.begin() as s:
        return [(job_id, int(n or 0)) for job_id, n in s.execute(query.order_by(Job.finished_at))]


def set_webhook_status(sessions: sessionmaker[Session], job_id: str, status: str, attempts: int) -> None:
    with sessions.begin() as s:
        s.execute(_update_job().where(Job.id == job_id).values(webhook_status=status, webhook_attempts=attempts))


def load(sessions: sessionmaker[Session], job_id: str) -> Job | None:
    with sessions.begin() as s:
        return s.get(Job, job_id)


def result_json(job: Job) -> dict[str, object]:
    return json.loads(job.result) if job.result else {}
