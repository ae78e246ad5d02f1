"""The scaled-out deployment for real: API + two Celery workers + Redis + PostgreSQL.

Twenty jobs are submitted, one worker is killed with SIGKILL while it holds a job, and every job
still completes exactly once (one ``job.completed`` audit entry each, one stored result).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, select, text
from tests.service.helpers import WEBHOOK_SECRET, MediaServer, Server, server_env
from tests.synth import make_video

from veracity.config import Settings
from veracity.service import audit, webhooks
from veracity.service.commands import create_key
from veracity.service.models import AuditEntry, Job

PG = os.environ.get("VERACITY_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432")
REDIS = os.environ.get("VERACITY_TEST_REDIS", "redis://127.0.0.1:6379/11")  # a db of its own


def _reachable() -> str | None:
    probe = create_engine(f"{PG}/postgres")
    try:
        with probe.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        return f"PostgreSQL unreachable at {PG}: {type(exc).__name__}"
    finally:
        probe.dispose()
    try:
        import redis

        redis.Redis.from_url(REDIS, socket_timeout=2).ping()
    except Exception as exc:
        return f"Redis unreachable at {REDIS}: {type(exc).__name__}"
    return None


@pytest.fixture
def database() -> Iterator[str]:
    why = _reachable()
    if why:
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    name = f"veracity_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(f"{PG}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{PG}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _spawn_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as fh:
        return subprocess.Popen(
            [sys.executable, "-m", "veracity.cli", "worker", "--log-level", "warning"],
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
        )


@pytest.mark.slow
def test_kill_a_worker_mid_job_and_every_job_completes_once(database: str, tmp_path: Path) -> None:
    import redis

    queue = f"veracity-test-{uuid.uuid4().hex[:8]}"
    env = server_env(
        tmp_path,
        VERACITY_DATABASE_URL=database,
        VERACITY_BROKER_URL=REDIS,
        VERACITY_QUEUE=queue,
        VERACITY_JOB_STALE_S="4",
    )
    clip = make_video(tmp_path / "clip.mp4", seconds=2.0, size=(160, 120)).read_bytes()
    server = Server(tmp_path, env).start()
    workers: list[subprocess.Popen[bytes]] = []
    engine = create_engine(database)
    hooks = MediaServer().__enter__()
    hooks.fail_next = 1  # the first delivery fails: the Celery webhook task retries it
    try:
        settings = Settings(data_dir=tmp_path, database_url=database, broker_url=REDIS, queue_name=queue)
        key = create_key(settings, "admin", "scaled test")["api_key"]
        workers = [_spawn_worker(env, tmp_path / f"worker{i}.log") for i in range(2)]
        deadline = time.monotonic() + 120
        for i, w in enumerate(workers):  # both consuming before any job exists
            while "veracity worker ready" not in (tmp_path / f"worker{i}.log").read_text():
                assert w.poll() is None and time.monotonic() < deadline, (tmp_path / f"worker{i}.log").read_text()
                time.sleep(0.1)
        ids = []
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as c:
            ready = c.get("/readyz").json()
            assert ready["checks"]["broker"] == "ok", ready
            for i in range(20):
                data = {"callback_url": hooks.url(f"/hook/{i}")} if i < 3 else {}
                r = c.post("/api/v1/jobs", files={"file": (f"{i}.mp4", clip)}, data=data)
                assert r.status_code == 202, r.text
                ids.append(r.json()["job_id"])

            # Kill the first worker the moment it holds a job.
            victim = workers[0]
            deadline = time.monotonic() + 120
            killed_job = None
            while killed_job is None:
                assert time.monotonic() < deadline, "worker 0 never picked up a job"
                assert victim.poll() is None, (tmp_path / "worker0.log").read_text()[-2000:]
                with engine.connect() as conn:
                    killed_job = conn.execute(
                        select(Job.id).where(Job.status == "running", Job.claimed_by.like(f"%:{victim.pid}:%"))
                    ).scalar()
                if killed_job is None:
                    time.sleep(0.02)
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=10)

            deadline = time.monotonic() + 240
            while True:
                states = Counter(c.get(f"/api/v1/jobs/{j}").json()["status"] for j in ids)
                if states["succeeded"] + states["failed"] == len(ids):
                    break
                assert time.monotonic() < deadline, states
                time.sleep(0.5)
        assert states["succeeded"] == 20, states
        with engine.connect() as conn:
            completed = Counter(
                conn.execute(select(AuditEntry.object).where(AuditEntry.action == "job.completed")).scalars()
            )
            attempts = {row[0]: row[1] for row in conn.execute(select(Job.id, Job.attempts))}
            results = conn.execute(select(Job.id).where(Job.result.is_not(None))).scalars().all()
        assert {f"job:{j}" for j in ids} == set(completed)
        assert all(n == 1 for n in completed.values()), completed  # exactly once
        assert len(results) == 20
        assert attempts[killed_job] >= 2  # it was re-run by the surviving worker
        # Webhooks from the workers: one signed, successful delivery per job that asked (after retries).
        posts = hooks.wait_posts(4, timeout=60)
        assert {p.path for p in posts} == {f"/hook/{i}" for i in range(3)}
        for p in posts:
            assert webhooks.verify_signature(
                WEBHOOK_SECRET, p.headers["x-veracity-timestamp"], p.body, p.headers["x-veracity-signature"]
            )
        from sqlalchemy.orm import Session

        with Session(engine, info={audit.KEY_INFO: audit.resolve_key(settings)}) as s:  # the chain is keyed
            assert audit.verify(s).ok
    finally:
        for w in workers:
            if w.poll() is None:
                w.terminate()
                try:
                    w.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    w.kill()
                    w.wait()
        server.stop()
        engine.dispose()
        hooks.__exit__()
        r = redis.Redis.from_url(REDIS)
        r.delete(queue)
        r.close()
