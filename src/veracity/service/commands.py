"""What the ``serve``, ``worker``, ``apikey``, ``audit`` and ``migrate`` commands do; cli.py wraps these."""

from __future__ import annotations

import os
import socket
from dataclasses import replace
from typing import Any

from sqlalchemy import func, select

from veracity.config import Settings
from veracity.service import audit, auth
from veracity.service.context import open_context
from veracity.service.models import ApiKey


def key_row(row: ApiKey) -> dict[str, Any]:
    return {
        "key_id": row.id,
        "name": row.name,
        "role": row.role,
        "created_at": row.created_at.isoformat(),
        "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
    }


def create_key(settings: Settings, role: str, name: str) -> dict[str, Any]:
    ctx = open_context(settings, secrets=False)
    try:
        with ctx.tx() as s:
            row, secret = auth.create_key(s, role=role, name=name, actor=f"cli:{os.getenv('USER', 'local')}")
            return {**key_row(row), "api_key": secret}
    finally:
        ctx.engine.dispose()


def list_keys(settings: Settings) -> list[dict[str, Any]]:
    ctx = open_context(settings, secrets=False)
    try:
        with ctx.tx() as s:
            return [key_row(r) for r in auth.list_keys(s)]
    finally:
        ctx.engine.dispose()


def revoke_key(settings: Settings, key_id: str) -> dict[str, Any]:
    ctx = open_context(settings, secrets=False)
    try:
        with ctx.tx() as s:
            return key_row(auth.revoke_key(s, key_id, actor=f"cli:{os.getenv('USER', 'local')}"))
    finally:
        ctx.engine.dispose()


def verify_audit(settings: Settings, expect_head: str | None) -> audit.Verification:
    ctx = open_context(settings, secrets=False)
    try:
        with ctx.tx() as s:
            return audit.verify(s, expect_head=expect_head)
    finally:
        ctx.engine.dispose()


def migrate(settings: Settings) -> str | None:
    from veracity.service.db import current_revision

    ctx = open_context(settings, run_migrations=True, secrets=False)
    try:
        return current_revision(ctx.engine)
    finally:
        ctx.engine.dispose()


def bootstrap_admin(settings: Settings) -> str | None:
    """On a database with no keys at all, create an admin key and return it (printed once)."""
    ctx = open_context(settings, secrets=False)
    try:
        with ctx.tx() as s:
            if s.scalar(select(func.count()).select_from(ApiKey)):
                return None
            _, secret = auth.create_key(s, role="admin", name="bootstrap admin", actor="serve:first-start")
            return secret
    finally:
        ctx.engine.dispose()


def serve(settings: Settings, host: str, port: int, workers: int | None, log_level: str) -> None:
    import uvicorn

    from veracity.service.app import create_app
    from veracity.service.webhooks import resolve_secret

    resolve_secret(settings)  # refuse a missing/default secret outside development before binding a port
    if workers is not None:
        settings = replace(settings, workers=workers)
    from veracity.service.guard import guarded_protocol

    app = create_app(settings)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level=log_level,
        access_log=log_level == "debug",
        http=guarded_protocol(settings),  # header and body deadlines (slowloris)
        h11_max_incomplete_event_size=64 * 1024,  # request line + headers
    )


def worker(settings: Settings, log_level: str, pool: str, concurrency: int) -> None:
    import sys

    from celery.signals import worker_ready

    from veracity.service.tasks import make_celery

    app = make_celery(settings)

    def announce(**_: object) -> None:
        print(f"veracity worker ready (pid {os.getpid()}, queue {settings.queue_name})", file=sys.stderr, flush=True)

    worker_ready.connect(announce, weak=False)
    app.worker_main(
        [
            "worker",
            f"--pool={pool}",
            f"--concurrency={concurrency}",
            "-Q",
            settings.queue_name,
            "-n",
            f"veracity-{os.getpid()}@{socket.gethostname()}",
            "--without-gossip",
            "--without-mingle",
            f"--loglevel={log_level.upper()}",
        ]
    )
