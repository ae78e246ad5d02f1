"""jobs.media_kind: the analysed media's kind as a column (indexed with created_at), so listing
jobs by kind is a query instead of parsing every stored report; existing rows are filled from
their stored report.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_KINDS = frozenset({"video", "image", "audio"})


def _kind(result: str | None) -> str | None:
    try:
        media = json.loads(result or "null") or {}
        kind = media.get("media", {}).get("kind") if isinstance(media, dict) else None
    except (ValueError, AttributeError):
        return None
    return kind if kind in _KINDS else None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("media_kind", sa.String(8), nullable=True))
        batch.create_index("ix_jobs_media_kind_created", ["media_kind", "created_at"])
    jobs = sa.table(
        "jobs", sa.column("id", sa.String), sa.column("result", sa.Text), sa.column("media_kind", sa.String)
    )
    conn = op.get_bind()
    rows = conn.execute(sa.select(jobs.c.id, jobs.c.result).where(jobs.c.result.is_not(None)))
    for job_id, result in rows.fetchall():  # once, at upgrade time
        kind = _kind(result)
        if kind is not None:
            conn.execute(sa.update(jobs).where(jobs.c.id == job_id).values(media_kind=kind))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_index("ix_jobs_media_kind_created")
        batch.drop_column("media_kind")
