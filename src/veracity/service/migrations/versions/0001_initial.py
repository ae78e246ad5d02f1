"""Initial schema: api_keys, batches, jobs, detector_scores, audit_log.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("revoked_at", TS, nullable=True),
        sa.Column("last_used_at", TS, nullable=True),
    )
    op.create_table(
        "batches",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("owner_key_id", sa.String(32), nullable=True),
        sa.Column("created_at", TS, nullable=False),
    )
    op.create_table(
        "jobs",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("stage", sa.String(40), nullable=True),
        sa.Column("progress", sa.Float, nullable=False),
        sa.Column("owner_key_id", sa.String(32), nullable=True),
        sa.Column("batch_id", sa.String(36), sa.ForeignKey("batches.id"), nullable=True),
        sa.Column("idempotency_key", sa.String(200), nullable=True),
        sa.Column("source_url", sa.Text, nullable=True),
        sa.Column("source_name", sa.String(300), nullable=False),
        sa.Column("media_path", sa.Text, nullable=True),
        sa.Column("media_sha256", sa.String(64), nullable=True),
        sa.Column("media_bytes", sa.BigInteger, nullable=True),
        sa.Column("keep_media", sa.Boolean, nullable=False),
        sa.Column("options", sa.JSON, nullable=False),
        sa.Column("callback_url", sa.Text, nullable=True),
        sa.Column("result", sa.Text, nullable=True),
        sa.Column("deepfake_score", sa.Float, nullable=True),
        sa.Column("label", sa.String(20), nullable=True),
        sa.Column("error_code", sa.String(40), nullable=True),
        sa.Column("error_message", sa.Text, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("claim_token", sa.String(64), nullable=True),
        sa.Column("claimed_by", sa.String(200), nullable=True),
        sa.Column("heartbeat_at", TS, nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("finished_at", TS, nullable=True),
        sa.Column("elapsed_ms", sa.Float, nullable=True),
        sa.Column("webhook_status", sa.String(20), nullable=True),
        sa.Column("webhook_attempts", sa.Integer, nullable=False),
        sa.Column("review_label", sa.String(20), nullable=True),
        sa.Column("review_comment", sa.Text, nullable=True),
        sa.Column("reviewed_by", sa.String(32), nullable=True),
        sa.Column("reviewed_at", TS, nullable=True),
        sa.UniqueConstraint("owner_key_id", "idempotency_key", name="uq_jobs_owner_idempotency"),
    )
    op.create_index("ix_jobs_status_created", "jobs", ["status", "created_at"])
    op.create_index("ix_jobs_batch", "jobs", ["batch_id"])
    op.create_table(
        "detector_scores",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("job_id", sa.String(36), sa.ForeignKey("jobs.id"), nullable=False),
        sa.Column("detector", sa.String(60), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
    )
    op.create_index("ix_detector_scores_detector", "detector_scores", ["detector"])
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("at", TS, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("object", sa.String(200), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False, unique=True),
    )


def downgrade() -> None:
    op.drop_table("audit_log")
    op.drop_index("ix_detector_scores_detector", "detector_scores")
    op.drop_table("detector_scores")
    op.drop_index("ix_jobs_batch", "jobs")
    op.drop_index("ix_jobs_status_created", "jobs")
    op.drop_table("jobs")
    op.drop_table("batches")
    op.drop_table("api_keys")
