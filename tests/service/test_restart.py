"""Jobs are rows: a server killed with work queued or running resumes it after a restart."""

from __future__ import annotations

import signal
from collections import Counter
from pathlib import Path

from sqlalchemy import select
from tests.service.helpers import Server, make_keys, png_bytes, server_env, wait_job

from veracity.config import Settings
from veracity.service import jobs
from veracity.service.auth import Principal
from veracity.service.context import open_context
from veracity.service.models import AuditEntry


def test_restart_resumes_queued_and_interrupted_jobs(tmp_path: Path, tiny_video: bytes) -> None:
    env = server_env(tmp_path)
    keys = make_keys(tmp_path, env)
    server = Server(tmp_path, env).start()
    ids = []
    try:
        with server.client(keys["analyst"]) as c:
            for i in range(6):
                files = {"file": (f"{i}.mp4", tiny_video)} if i % 2 else {"file": (f"{i}.png", png_bytes(20 + i))}
                r = c.post("/api/v1/jobs", files=files)
                assert r.status_code == 202
                ids.append(r.json()["job_id"])
    finally:
        server.stop(signal.SIGKILL)  # no shutdown: queued and running jobs are left as rows

    # A job a dead worker had claimed ("running", heartbeat long ago) must be picked up again.
    settings = Settings(data_dir=tmp_path)
    ctx = open_context(settings)
    with ctx.storage.writer(10**7) as w:
        w.write(png_bytes(99))
    with ctx.tx() as s:
        job, _ = jobs.create_job(
            s, Principal("someone", "analyst"), settings, media=jobs.StoredMedia(w.name, w.sha256, w.size, "orphan.png")
        )
    assert jobs.claim(ctx.sessions, job.id, "dead-worker") is not None
    ids.append(job.id)
    ctx.engine.dispose()

    server = Server(tmp_path, env).start()
    try:
        with server.client(keys["admin"]) as c:
            done = [wait_job(c, job_id) for job_id in ids]
    finally:
        server.stop()
    assert [d["status"] for d in done] == ["succeeded"] * len(ids), [d.get("error") for d in done]
    ctx = open_context(settings)
    with ctx.tx() as s:
        completed = Counter(s.scalars(select(AuditEntry.object).where(AuditEntry.action == "job.completed")))
    ctx.engine.dispose()
    assert all(completed[f"job:{job_id}"] == 1 for job_id in ids), completed  # exactly once each
