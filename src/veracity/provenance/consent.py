"""Consent registry: who agreed to what, proven by which evidence, until when.

Stored in the project's database through SQLAlchemy 2 (``Settings.effective_database_url``;
embedded SQLite under ``data_dir`` by default). The tables live on :data:`metadata` so the
service's Alembic migrations can include them. ``sign`` calls :meth:`ConsentStore.check` and
refuses a missing, expired, revoked or out-of-scope consent.
Signing records (one per signed file) sit beside consents: the watermark carries their 32-bit id.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    ForeignKey,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    insert,
    select,
    update,
)
from sqlalchemy.engine import RowMapping

from veracity.config import AnalysisSettings
from veracity.errors import ConfigError, ConsentNotFound, ConsentRefused, SourceNotFound

SCOPES = frozenset({"likeness", "voice", "image", "video", "audio", "name"})

metadata = MetaData()

consents = Table(
    "consents",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("subject", String(200), nullable=False),
    Column("scopes", String(200), nullable=False, doc="Comma-separated, e.g. 'likeness,voice'."),
    Column("granted_by", String(200), nullable=False),
    Column("evidence_sha256", String(64), nullable=False),
    Column("evidence_name", String(255), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("revoked_reason", Text, nullable=True),
)

signings = Table(
    "provenance_signings",
    metadata,
    Column("id", String(8), primary_key=True, doc="32-bit id in hex: the watermark payload."),
    Column("consent_id", String(32), ForeignKey("consents.id"), nullable=False),
    Column("scope", String(40), nullable=False),
    Column("generator", String(200), nullable=False),
    Column("output_name", String(255), nullable=False),
    Column("output_sha256", String(64), nullable=False),
    Column("format", String(80), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite hands datetimes back naive; every stored time is UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True, slots=True)
class ConsentRecord:
    id: str
    subject: str
    scopes: tuple[str, ...]
    granted_by: str
    evidence_sha256: str
    evidence_name: str | None
    created_at: dt.datetime
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None
    revoked_reason: str | None

    @classmethod
    def from_row(cls, row: RowMapping) -> ConsentRecord:
        created = _utc(row["created_at"])
        assert created is not None
        return cls(
            id=row["id"],
            subject=row["subject"],
            scopes=tuple(s for s in row["scopes"].split(",") if s),
            granted_by=row["granted_by"],
            evidence_sha256=row["evidence_sha256"],
            evidence_name=row["evidence_name"],
            created_at=created,
            expires_at=_utc(row["expires_at"]),
            revoked_at=_utc(row["revoked_at"]),
            revoked_reason=row["revoked_reason"],
        )

    def status(self, at: dt.datetime | None = None) -> str:
        at = at or now_utc()
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= at:
            return "expired"
        return "active"

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "subject": self.subject,
            "scopes": list(self.scopes),
            "granted_by": self.granted_by,
            "evidence_sha256": self.evidence_sha256,
            "evidence_name": self.evidence_name,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
            "revoked_reason": self.revoked_reason,
            "status": self.status(),
        }


@dataclass(frozen=True, slots=True)
class SigningRecord:
    id: str
    consent_id: str
    scope: str
    generator: str
    output_name: str
    output_sha256: str
    format: str
    created_at: dt.datetime


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def parse_scopes(raw: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    scopes = tuple(dict.fromkeys(s.strip().lower() for s in items if s.strip()))
    bad = [s for s in scopes if s not in SCOPES]
    if not scopes or bad:
        raise ConfigError(f"scope must be some of {', '.join(sorted(SCOPES))} (got {', '.join(bad) or 'none'})")
    return scopes


class ConsentStore:
    """Consents and signing records on one SQLAlchemy engine (no global session)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, settings: AnalysisSettings) -> ConsentStore:
        """The configured database; the embedded SQLite file's folder is made if missing."""
        url = settings.effective_database_url
        if settings.database_url is None:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        store = cls(create_engine(url))
        store.create_schema()
        return store

    def create_schema(self) -> None:
        metadata.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def add(
        self,
        *,
        subject: str,
        scopes: str | list[str] | tuple[str, ...],
        granted_by: str,
        evidence: Path,
        expires_at: dt.datetime | None = None,
    ) -> ConsentRecord:
        if not subject.strip() or not granted_by.strip():
            raise ConfigError("subject and granted_by must not be empty")
        if not evidence.is_file():
            raise SourceNotFound("consent evidence file not found", path=str(evidence))
        scope_t = parse_scopes(scopes)
        if expires_at is not None and expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=dt.UTC)
        cid = secrets.token_hex(8)
        row = {
            "id": cid,
            "subject": subject.strip(),
            "scopes": ",".join(scope_t),
            "granted_by": granted_by.strip(),
            "evidence_sha256": sha256_file(evidence),
            "evidence_name": evidence.name,
            "created_at": now_utc(),
            "expires_at": expires_at,
            "revoked_at": None,
            "revoked_reason": None,
        }
        with self.engine.begin() as conn:
            conn.execute(insert(consents).values(**row))
        return self.get(cid)

    def get(self, consent_id: str) -> ConsentRecord:
        with self.engine.connect() as conn:
            row = conn.execute(select(consents).where(consents.c.id == consent_id)).mappings().first()
        if row is None:
            raise ConsentNotFound(f"no consent record {consent_id!r}")
        return ConsentRecord.from_row(row)

    def list(self, *, include_revoked: bool = True) -> list[ConsentRecord]:
        q = select(consents).order_by(consents.c.created_at)
        if not include_revoked:
            q = q.where(consents.c.revoked_at.is_(None))
        with self.engine.connect() as conn:
            return [ConsentRecord.from_row(r) for r in conn.execute(q).mappings()]

    def revoke(self, consent_id: str, reason: str | None = None) -> ConsentRecord:
        record = self.get(consent_id)
        if record.revoked_at is None:
            with self.engine.begin() as conn:
                conn.execute(
                    update(consents)
                    .where(consents.c.id == consent_id)
                    .values(revoked_at=now_utc(), revoked_reason=reason)
                )
        return self.get(consent_id)

    def check(self, consent_id: str, scope: str, at: dt.datetime | None = None) -> ConsentRecord:
        """The consent if it allows ``scope`` now; otherwise ConsentRefused saying why."""
        try:
            record = self.get(consent_id)
        except ConsentNotFound as exc:
            raise ConsentRefused(f"consent {consent_id!r} does not exist") from exc
        state = record.status(at)
        if state == "revoked":
            when = record.revoked_at.isoformat() if record.revoked_at else "?"
            raise ConsentRefused(f"consent {consent_id} was revoked on {when}")
        if state == "expired":
            when = record.expires_at.isoformat() if record.expires_at else "?"
            raise ConsentRefused(f"consent {consent_id} expired on {when}")
        if scope not in record.scopes:
            raise ConsentRefused(f"consent {consent_id} covers {', '.join(record.scopes)}, not {scope}")
        return record

    def new_signing_id(self) -> str:
        """A fresh 32-bit id (8 hex digits) not used by any signing record yet."""
        with self.engine.connect() as conn:
            for _ in range(64):
                sid = secrets.token_hex(4)
                if conn.execute(select(signings.c.id).where(signings.c.id == sid)).first() is None:
                    return sid
        raise ConsentRefused("could not allocate a signing id")  # 2^32 ids: practically unreachable

    def record_signing(self, record: SigningRecord) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                insert(signings).values(
                    id=record.id,
                    consent_id=record.consent_id,
                    scope=record.scope,
                    generator=record.generator,
                    output_name=record.output_name,
                    output_sha256=record.output_sha256,
                    format=record.format,
                    created_at=record.created_at,
                )
            )

    def get_signing(self, signing_id: str) -> SigningRecord | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(signings).where(signings.c.id == signing_id)).mappings().first()
        if row is None:
            return None
        created = _utc(row["created_at"])
        assert created is not None
        return SigningRecord(
            id=row["id"],
            consent_id=row["consent_id"],
            scope=row["scope"],
            generator=row["generator"],
            output_name=row["output_name"],
            output_sha256=row["output_sha256"],
            format=row["format"],
            created_at=created,
        )
