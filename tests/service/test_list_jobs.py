"""jobs.list_jobs filters in the query (status, label, media kind, reviewed, text) under the
ownership rule; media_kind is stored when a job completes and filled by the migration for jobs
stored before it."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text
from tests.reports import SHA, video_report
from tests.web.synthetic import audio_report, image_report

from veracity.config import Settings
from veracity.report.model import Report
from veracity.service import jobs
from veracity.service.auth import Principal
from veracity.service.context import ServiceContext, open_context
from veracity.service.db import MIGRATIONS, make_engine, migrate
from veracity.service.schemas import ReviewCreate

ANA = Principal("ana", "analyst")
BOB = Principal("bob", "analyst")
REVIEWER = Principal("rev", "reviewer")


def _done(ctx: ServiceContext, who: Principal, name: str, report: Report) -> str:
    with ctx.tx() as s:
        job, _ = jobs.create_job(s, who, ctx.settings, media=jobs.StoredMedia(name, SHA, 1, name))
        job_id = job.id
    token = jobs.claim(ctx.sessions, job_id, "test")
    assert token is not None
    assert jobs.complete(ctx.sessions, job_id, token, report, "test")
    return job_id


def _names(ctx: ServiceContext, who: Principal, **filters: object) -> set[str]:
    with ctx.tx() as s:
        rows, total = jobs.list_jobs(s, who, **filters)  # type: ignore[arg-type]
        assert total == len(rows)
        return {r.source_name for r in rows}


def test_filters_run_in_the_query_under_the_ownership_rule(tmp_path: Path) -> None:
    ctx = open_context(Settings(data_dir=tmp_path))
    try:
        clip = _done(ctx, ANA, "clip.mp4", video_report())
        _done(ctx, ANA, "photo.jpg", image_report())
        _done(ctx, BOB, "voice.wav", audio_report())
        with ctx.tx() as s:
            jobs.review_job(s, REVIEWER, clip, ReviewCreate(label="manipulated", comment=""))
            assert jobs.to_public(jobs.get_job(s, ANA, clip)).media_kind == "video"
        assert _names(ctx, ANA) == {"clip.mp4", "photo.jpg"}  # not bob's
        assert _names(ctx, REVIEWER) == {"clip.mp4", "photo.jpg", "voice.wav"}
        assert _names(ctx, REVIEWER, media_kind="image") == {"photo.jpg"}
        assert _names(ctx, REVIEWER, media_kind="audio") == {"voice.wav"}
        assert _names(ctx, ANA, media_kind="audio") == set()
        assert _names(ctx, REVIEWER, label="authentic") == {"photo.jpg"}
        assert _names(ctx, REVIEWER, reviewed=True) == {"clip.mp4"}
        assert _names(ctx, REVIEWER, reviewed=False, status="succeeded") == {"photo.jpg", "voice.wav"}
        assert _names(ctx, REVIEWER, text="VOI") == {"voice.wav"}
        assert _names(ctx, REVIEWER, text=clip) == {"clip.mp4"}
        assert _names(ctx, REVIEWER, text="%") == {"clip.mp4", "photo.jpg", "voice.wav"}  # no wildcards from users
        with ctx.engine.connect() as conn:
            plan = conn.execute(
                text("EXPLAIN QUERY PLAN SELECT id FROM jobs WHERE media_kind = 'image' ORDER BY created_at DESC")
            ).all()
        assert "ix_jobs_media_kind_created" in " ".join(str(row) for row in plan)
    finally:
        ctx.engine.dispose()


def test_migration_fills_media_kind_of_stored_reports(tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config

    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        for job_id, result in (("a", image_report().model_dump_json()), ("b", None), ("c", "not json")):
            conn.execute(
                text(
                    "INSERT INTO jobs (id, status, progress, source_name, keep_media, options, attempts,"
                    " webhook_attempts, created_at, result) VALUES (:id, 'succeeded', 1, :id, 0, '{}', 0, 0,"
                    " '2026-01-01 00:00:00', :result)"
                ),
                {"id": job_id, "result": result},
            )
    migrate(engine)
    with engine.connect() as conn:
        kinds = dict(conn.execute(text("SELECT id, media_kind FROM jobs")).all())
    engine.dispose()
    assert kinds == {"a": "image", "b": None, "c": None}
